import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../api/delivery/job-state.js";
import { startGateway, type TestGateway } from "../support/gateway.js";

describe.each(["memory", "redis"] as const)("jobs a crashed node left behind (%s store)", (storeKind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ store: storeKind });
  });
  afterAll(async () => gw?.close());

  it("are expired once past their deadline, so every job ends settled", async () => {
    const now = Date.now();
    const stuck: Job = {
      id: `stuck-${storeKind}`,
      kind: "message",
      channel: "sms",
      to: "+254711000999",
      sealedBody: "v1.a.b.c",
      state: "dispatched",
      attempts: [{ route: "twilio", state: "dispatched", at: new Date(now - 120_000).toISOString() }],
      createdAt: new Date(now - 120_000).toISOString(),
      updatedAt: new Date(now - 120_000).toISOString(),
      expiresAt: new Date(now - 1_000).toISOString(),
    };
    await gw.gateway.store.createJob(stuck, 600);
    expect(await gw.gateway.dispatcher.reapOverdue()).toBe(1);
    const view = (await gw.call("GET", `/v1/messages/${stuck.id}`)).json;
    expect(view.status).toBe("expired");
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: "twilio", state: "failed", error: "expired" })]);
    expect(await gw.gateway.dispatcher.reapOverdue()).toBe(0);
  });
});
