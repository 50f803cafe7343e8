import { describe, expect, it } from "vitest";
import * as state from "../../api/delivery/job-state.js";
import type { Job } from "../../api/delivery/job-state.js";
import { planRoutes } from "../../api/delivery/route-plan.js";

const t = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s));
const job: Job = {
  id: "j1",
  kind: "message",
  channel: "sms",
  to: "+254711000000",
  sealedBody: "x",
  state: "queued",
  attempts: [],
  createdAt: t(0).toISOString(),
  updatedAt: t(0).toISOString(),
  expiresAt: t(60).toISOString(),
};

describe("job state machine", () => {
  it("runs queued → dispatched → failed attempt → dispatched → sent → delivered", () => {
    let j = state.dispatch(job, "twilio", t(1));
    expect(j.state).toBe("dispatched");
    j = state.markAttemptFailed(j, "twilio", t(2), "twilio:500");
    expect(j.state).toBe("dispatched");
    j = state.dispatch(j, "africastalking", t(3));
    j = state.markSent(j, "africastalking", t(4), "ATXid_1");
    expect(state.isSettled(j)).toBe(true);
    expect(state.isTerminal(j)).toBe(false);
    j = state.markDelivered(j, "africastalking", t(5));
    expect(j.state).toBe("delivered");
    expect(j.attempts).toEqual([
      { route: "twilio", state: "failed", at: t(2).toISOString(), error: "twilio:500" },
      { route: "africastalking", state: "delivered", at: t(5).toISOString(), providerMessageId: "ATXid_1" },
    ]);
    expect(state.deliveryOf(j)).toEqual({ state: "delivered", route: "africastalking" });
  });

  it("refuses a second open attempt and anything after a terminal state", () => {
    const dispatched = state.dispatch(job, "twilio", t(1));
    expect(() => state.dispatch(dispatched, "africastalking", t(2))).toThrow(state.InvalidTransition);
    const failed = state.exhaust(dispatched, t(3));
    expect(failed.state).toBe("failed");
    expect(failed.attempts[0]).toMatchObject({ state: "failed", error: "no route delivered the message" });
    expect(() => state.dispatch(failed, "twilio", t(4))).toThrow(state.InvalidTransition);
    expect(() => state.expire(failed, t(4))).toThrow(state.InvalidTransition);
    expect(() => state.markSent(job, "twilio", t(4))).toThrow(state.InvalidTransition);
  });

  it("expires a waiting job and closes its open attempt", () => {
    const expired = state.expire(state.dispatch(job, "twilio", t(1)), t(61));
    expect(expired.state).toBe("expired");
    expect(expired.attempts[0]).toMatchObject({ state: "failed", error: "expired" });
    expect(() => state.expire(state.markSent(state.dispatch(job, "t", t(1)), "t", t(2)), t(3))).toThrow(state.InvalidTransition);
  });
});

describe("route planning", () => {
  const routes = [
    { name: "email" as const, channel: "email" as const },
    { name: "twilio" as const, channel: "sms" as const },
    { name: "africastalking" as const, channel: "sms" as const },
  ];
  const order = ["device", "twilio", "africastalking", "email"] as const;

  it("follows FAILOVER_ORDER and skips what is not configured", () => {
    expect(planRoutes(order, routes, { channel: "sms", to: "+1" }).map((r) => r.name)).toEqual(["twilio", "africastalking"]);
    expect(planRoutes(["africastalking", "twilio"], routes, { channel: "sms", to: "+1" }).map((r) => r.name)).toEqual(["africastalking", "twilio"]);
  });

  it("adds email only for email jobs or SMS jobs allowed to fall back", () => {
    expect(planRoutes(order, routes, { channel: "sms", to: "+1", email: "a@b.c" }).map((r) => r.name)).toEqual(["twilio", "africastalking"]);
    expect(planRoutes(order, routes, { channel: "sms", to: "+1", email: "a@b.c", emailFallback: true }).map((r) => r.name)).toEqual([
      "twilio",
      "africastalking",
      "email",
    ]);
    expect(planRoutes(order, routes, { channel: "email", email: "a@b.c" }).map((r) => r.name)).toEqual(["email"]);
    expect(planRoutes(order, [], { channel: "sms", to: "+1" })).toEqual([]);
  });
});
