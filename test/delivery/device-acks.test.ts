import { describe, expect, it } from "vitest";
import { applyAck } from "../../api/delivery/device-acks.js";
import * as jobState from "../../api/delivery/job-state.js";

const at = new Date("2030-01-01T00:00:00Z");
const dispatched = () =>
  jobState.dispatch(
    jobState.newJob({ id: "j1", kind: "otp", channel: "sms", to: "+254711222333", sealedBody: "sealed", expiresAt: "2030-01-01T00:05:00Z" }, at),
    jobState.deviceTarget("p1"),
    at,
  );

describe("a phone's error text", () => {
  it("is recorded with numbers and addresses masked, as a provider's is", () => {
    const ack = { id: "j1", status: "failed" as const, error: "SMS to +254711222333 refused; report sent to ana@example.org" };
    const failed = applyAck(dispatched(), "p1", ack, at);
    const error = failed.attempts.at(-1)!.error!;
    expect(error).toMatch(/^device:/);
    expect(error).not.toContain("711222333");
    expect(error).not.toContain("ana@");
    expect(error).toContain("a***@example.org");
  });

  it("is masked on a late ack too", () => {
    const failed = jobState.markAttemptFailed(dispatched(), jobState.deviceTarget("p1"), at, "device:timeout");
    const late = applyAck(failed, "p1", { id: "j1", status: "failed", error: "number +254711222333 barred" }, at);
    expect(JSON.stringify(late.attempts)).toContain("barred");
    expect(JSON.stringify(late.attempts)).not.toContain("711222333");
  });
});

describe("a settled job's text", () => {
  it("is dropped at sent, delivered, failed and expired, and kept while the job may still be sent", () => {
    const route = jobState.deviceTarget("p1");
    const open = dispatched();
    expect(open.sealedBody).toBe("sealed");
    expect(jobState.markAttemptFailed(open, route, at, "device:timeout").sealedBody).toBe("sealed");
    const sent = jobState.markSent(open, route, at);
    expect(sent.sealedBody).toBe("");
    expect(jobState.markDelivered(sent, route, at).sealedBody).toBe("");
    expect(jobState.exhaust(open, at).sealedBody).toBe("");
    expect(jobState.expire(open, at).sealedBody).toBe("");
  });
});
