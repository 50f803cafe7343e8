/**
 * Jobs a node left behind (it died, or stopped and handed them back) are
 * taken over by any node's sweep once their lease lapses, and carried on from
 * the step they were in.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newJob, type Job } from "../../api/delivery/job-state.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";

const SID = "AC" + "2".repeat(32);
const TOKEN = "takeover-token";

describe.each(["sqlite", "memory", "redis"] as const)("taking over jobs whose lease lapsed (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const dead = (ms: number) => ({ owner: "node-dead", until: new Date(Date.now() - ms).toISOString() });

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    // A long sweep interval: the test calls sweep() itself.
    gw = await startGateway({ store: storeKind, env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), FAILOVER_ORDER: "twilio", SWEEP_INTERVAL_MS: "60000" } });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  function leftBehind(id: string, overrides: Partial<Job>, lease = dead(1_000)): Job {
    const created = new Date(Date.now() - 60_000);
    const job = newJob(
      { id, kind: "message", channel: "sms", to: "+254711000999", sealedBody: "", expiresAt: new Date(Date.now() + 600_000).toISOString() },
      created,
      lease,
    );
    return { ...job, ...overrides };
  }

  it("starts a job that was accepted but never started, and sends it once", async () => {
    const id = `never-started-${storeKind}`;
    const body = gw.gateway.sealer.seal(`hello from ${id}`);
    await gw.gateway.store.createJob(leftBehind(id, { sealedBody: body }), 600);
    expect(await gw.gateway.dispatcher.sweep()).toBe(1);
    await gw.gateway.dispatcher.drain();
    const view = (await gw.call("GET", `/v1/messages/${id}`)).json;
    expect(view.status).toBe("sent");
    expect(twilio.received.filter((m) => m.body === `hello from ${id}`)).toHaveLength(1);
    // Nothing left to take over, and a second sweep sends nothing more.
    expect(await gw.gateway.dispatcher.sweep()).toBe(0);
    expect(twilio.received.filter((m) => m.body === `hello from ${id}`)).toHaveLength(1);
  });

  it("leaves a job alone while another node's lease holds", async () => {
    const id = `held-${storeKind}`;
    await gw.gateway.store.createJob(leftBehind(id, { sealedBody: gw.gateway.sealer.seal("held") }, { owner: "node-alive", until: new Date(Date.now() + 30_000).toISOString() }), 600);
    expect(await gw.gateway.dispatcher.sweep()).toBe(0);
    expect((await gw.gateway.store.getJob(id))?.state).toBe("queued");
  });

  it("counts a cloud attempt its node died in as failed, and moves on to the next route", async () => {
    const id = `cloud-open-${storeKind}`;
    const at = new Date(Date.now() - 30_000).toISOString();
    await gw.gateway.store.createJob(
      leftBehind(id, { sealedBody: gw.gateway.sealer.seal("cloud"), state: "dispatched", attempts: [{ route: "twilio", state: "dispatched", at }] }),
      600,
    );
    expect(await gw.gateway.dispatcher.sweep()).toBe(1);
    await gw.gateway.dispatcher.drain();
    const view = (await gw.call("GET", `/v1/messages/${id}`)).json;
    // Twilio was the only route and it was tried: the job fails rather than send a second time.
    expect(view.status).toBe("failed");
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: "twilio", state: "failed", error: expect.stringContaining("node_lost") })]);
    expect(twilio.received.filter((m) => m.body === "cloud")).toHaveLength(0);
  });

  it("expires a job past its expiry, so every job ends settled", async () => {
    const id = `expired-${storeKind}`;
    const at = new Date(Date.now() - 120_000).toISOString();
    await gw.gateway.store.createJob(
      leftBehind(id, { state: "dispatched", attempts: [{ route: "twilio", state: "dispatched", at }], expiresAt: new Date(Date.now() - 1_000).toISOString() }, dead(5_000)),
      600,
    );
    expect(await gw.gateway.dispatcher.sweep()).toBe(1);
    await gw.gateway.dispatcher.drain();
    const view = (await gw.call("GET", `/v1/messages/${id}`)).json;
    expect(view.status).toBe("expired");
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: "twilio", state: "failed", error: "expired" })]);
  });
});
