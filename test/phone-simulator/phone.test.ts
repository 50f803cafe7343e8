/**
 * The simulated phone against a real (throwaway) TLS Aedes broker: the MQTT
 * contract (README.md, "MQTT contract (as built)") as the gateway sees it.
 */
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startPhone } from "../../tools/phone-simulator/phone.js";
import { createHarness, job, sleep, type Harness } from "./support/harness.js";

const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
let h: Harness;

beforeAll(async () => {
  h = await createHarness();
});
afterEach(async () => {
  await h.cleanUp();
});
afterAll(async () => {
  await h?.close();
});

function statusesOf(acks: Array<{ id: string; status: string }>, id: string): string[] {
  return acks.filter((ack) => ack.id === id).map((ack) => ack.status);
}

describe("connecting", () => {
  it("connects with clean=false, client id = username = device id, keepalive 30 and the offline will", async () => {
    const phone = await h.phone();
    expect(h.broker.clients).toContainEqual({ id: phone.deviceId, clean: false });
    const connect = h.broker.connects.find((packet) => packet.clientId === phone.deviceId);
    expect(connect).toMatchObject({ clean: false, keepalive: 30, username: phone.deviceId, protocolVersion: 4 });
    expect(connect?.password?.toString()).toBe(h.tokens[phone.deviceId]);
    expect(connect?.will).toMatchObject({ topic: `sms/device/${phone.deviceId}`, qos: 1, retain: true });
    expect(connect?.will?.payload.toString()).toBe('{"online":false}');
    expect(phone.connected).toBe(true);
  });

  it("publishes a retained QoS 1 online status and subscribes to its own sms/out at QoS 1", async () => {
    const phone = await h.phone({ battery: 57 });
    const [status] = h.broker.statuses(phone.deviceId);
    expect(status).toMatchObject({ retain: true, qos: 1, clientId: phone.deviceId });
    const body = JSON.parse(status?.payload ?? "{}");
    expect(body).toEqual({
      online: true,
      battery: 57,
      signal: expect.any(Number),
      sims: [{ slot: 0, carrier: "Sim", number: null }],
      app: expect.stringMatching(/^otpgate-sim\/\d+\.\d+\.\d+$/),
      at: expect.stringMatching(ISO),
    });
    expect(body.signal).toBeGreaterThanOrEqual(0);
    expect(body.signal).toBeLessThanOrEqual(4);
    expect(JSON.parse((await h.broker.retained(`sms/device/${phone.deviceId}`)) ?? "{}")).toMatchObject({ online: true });
    expect(h.broker.subscriptions.filter((sub) => sub.clientId === phone.deviceId)).toEqual([
      { clientId: phone.deviceId, topic: `sms/out/${phone.deviceId}`, qos: 1 },
    ]);
  });

  it("repeats the status every heartbeatSeconds", async () => {
    const phone = await h.phone({ heartbeatSeconds: 0.05 });
    await vi.waitFor(() => expect(h.broker.statuses(phone.deviceId).length).toBeGreaterThanOrEqual(4), { timeout: 2_000 });
  });

  it("refuses to start when the broker rejects the token", async () => {
    const { deviceId } = h.newDevice();
    await expect(
      startPhone({ url: h.broker.url, deviceId, token: "wrong", ca: h.ca.pem, connectTimeoutMs: 5_000 }),
    ).rejects.toThrow(/Bad username or password/i);
    expect(h.broker.clients.some((client) => client.id === deviceId)).toBe(false);
  });
});

describe("jobs", () => {
  it("acks received, sent, delivered in order, each with an ISO time", async () => {
    const phone = await h.phone({ deliveredAfterMs: 30 });
    await h.broker.publishOut(phone.deviceId, job("j1"));
    await vi.waitFor(() => expect(h.broker.acks(phone.deviceId)).toHaveLength(3));
    const acks = h.broker.acks(phone.deviceId);
    expect(acks.map((ack) => ack.status)).toEqual(["received", "sent", "delivered"]);
    for (const ack of acks) {
      expect(Object.keys(ack).sort()).toEqual(["at", "id", "status"]);
      expect(ack).toMatchObject({ id: "j1", at: expect.stringMatching(ISO) });
    }
    const times = acks.map((ack) => Date.parse(ack.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(phone.sent).toEqual([{ id: "j1", to: "+254712345678", body: "Your otpgate code is 482913", at: expect.stringMatching(ISO) }]);
    expect(phone.acks.map((ack) => ack.status)).toEqual(["received", "sent", "delivered"]);
  });

  it("waits latencyMs between received and sent", async () => {
    const phone = await h.phone({ latencyMs: 250 });
    await h.broker.publishOut(phone.deviceId, job("slow"));
    await phone.waitFor(() => phone.received.length === 1);
    await sleep(120);
    expect(phone.sent).toHaveLength(0);
    await phone.waitFor(() => phone.sent.length === 1);
    const [received, sent] = phone.acks;
    expect(Date.parse(sent?.at ?? "") - Date.parse(received?.at ?? "")).toBeGreaterThanOrEqual(240);
  });

  it("never acks delivered when deliveredAfterMs is null", async () => {
    const phone = await h.phone({ deliveredAfterMs: null });
    await h.broker.publishOut(phone.deviceId, job("nd"));
    await phone.waitFor(() => phone.sent.length === 1);
    await sleep(150);
    expect(statusesOf(h.broker.acks(phone.deviceId), "nd")).toEqual(["received", "sent"]);
  });

  it("sends a redelivered job id once, whether the repeat comes while queued or after delivery", async () => {
    const phone = await h.phone({ latencyMs: 100 });
    await h.broker.publishOut(phone.deviceId, job("dup"));
    await h.broker.publishOut(phone.deviceId, job("dup"));
    await phone.waitFor(() => phone.acks.some((ack) => ack.status === "delivered"));
    await h.broker.publishOut(phone.deviceId, job("dup"));
    await phone.waitFor(() => phone.received.length === 3);
    await sleep(200);
    expect(phone.received).toEqual(["dup", "dup", "dup"]);
    expect(phone.sent).toHaveLength(1);
    // A repeat only restates the latest status; nothing after "delivered" contradicts it.
    const statuses = statusesOf(h.broker.acks(phone.deviceId), "dup");
    expect(statuses.filter((status) => status === "sent")).toHaveLength(1);
    expect(statuses.at(-1)).toBe("delivered");
  });

  it("remembers a cancel that arrives before its job, and never sends that job", async () => {
    const phone = await h.phone();
    await h.broker.publishOut(phone.deviceId, { id: "c1", cancel: true });
    await sleep(50);
    await h.broker.publishOut(phone.deviceId, job("c1"));
    await vi.waitFor(() => expect(h.broker.acks(phone.deviceId)).toHaveLength(1));
    await sleep(100);
    expect(h.broker.acks(phone.deviceId)).toEqual([{ id: "c1", status: "failed", error: "CANCELLED", at: expect.stringMatching(ISO) }]);
    expect(phone.received).toEqual(["c1"]);
    expect(phone.sent).toHaveLength(0);
  });

  it("drops a queued job when its cancel arrives before it is sent", async () => {
    const phone = await h.phone({ latencyMs: 300 });
    await h.broker.publishOut(phone.deviceId, job("c2"));
    await phone.waitFor(() => phone.queued.includes("c2"));
    await h.broker.publishOut(phone.deviceId, { id: "c2", cancel: true });
    await vi.waitFor(() => expect(statusesOf(h.broker.acks(phone.deviceId), "c2")).toEqual(["received", "failed"]));
    await sleep(400);
    expect(phone.sent).toHaveLength(0);
    expect(h.broker.acks(phone.deviceId)[1]).toMatchObject({ status: "failed", error: "CANCELLED" });
  });

  it("refuses an expired job with EXPIRED and does not send it", async () => {
    const phone = await h.phone();
    await h.broker.publishOut(phone.deviceId, job("old", { expiresAt: new Date(Date.now() - 1_000).toISOString() }));
    await vi.waitFor(() => expect(h.broker.acks(phone.deviceId)).toHaveLength(1));
    await sleep(100);
    expect(h.broker.acks(phone.deviceId)).toEqual([{ id: "old", status: "failed", error: "EXPIRED", at: expect.stringMatching(ISO) }]);
    expect(phone.sent).toHaveLength(0);
  });

  it("expires a job that runs out of time while it waits in the queue", async () => {
    const phone = await h.phone({ latencyMs: 2_000 });
    await h.broker.publishOut(phone.deviceId, job("late", { expiresAt: new Date(Date.now() + 300).toISOString() }));
    // Reported at the expiry, not when the latency would have run out.
    await vi.waitFor(() => expect(statusesOf(h.broker.acks(phone.deviceId), "late")).toEqual(["received", "failed"]), {
      timeout: 1_500,
    });
    expect(h.broker.acks(phone.deviceId)[1]).toMatchObject({ error: "EXPIRED" });
    expect(phone.sent).toHaveLength(0);
  });

  it("refuses a job for a SIM slot it does not have", async () => {
    const phone = await h.phone();
    await h.broker.publishOut(phone.deviceId, job("sim1", { sim: 1 }));
    await vi.waitFor(() => expect(h.broker.acks(phone.deviceId)).toEqual([expect.objectContaining({ status: "failed", error: "SIM_NOT_AVAILABLE" })]));
  });

  it("ignores invalid payloads, logs them, and keeps working", async () => {
    const lines: string[] = [];
    const phone = await h.phone({ logger: (line) => lines.push(line) });
    const { to: _to, ...withoutTo } = job("bad-2");
    await h.broker.publishOut(phone.deviceId, "{this is not json");
    await h.broker.publishOut(phone.deviceId, withoutTo);
    await h.broker.publishOut(phone.deviceId, job("bad-3", { body: 123456 }));
    await h.broker.publishOut(phone.deviceId, job("bad-4", { body: "x".repeat(100 * 1024) }));
    await h.broker.publishOut(phone.deviceId, job("good"));
    await vi.waitFor(() => expect(statusesOf(h.broker.acks(phone.deviceId), "good")).toEqual(["received", "sent", "delivered"]));
    expect(lines.filter((line) => line.includes("ignored an invalid payload"))).toHaveLength(4);
    expect(h.broker.acks(phone.deviceId).every((ack) => ack.id === "good")).toBe(true);
    expect(phone.received).toEqual(["good"]);
    expect(phone.connected).toBe(true);
  });

  it("acks failed with RESULT_ERROR_GENERIC_FAILURE when every send fails", async () => {
    const phone = await h.phone({ failureRate: 1 });
    await h.broker.publishOut(phone.deviceId, job("f1"));
    await h.broker.publishOut(phone.deviceId, job("f2"));
    await vi.waitFor(() => expect(h.broker.acks(phone.deviceId)).toHaveLength(4));
    expect(h.broker.acks(phone.deviceId).filter((ack) => ack.status === "failed")).toEqual([
      { id: "f1", status: "failed", error: "RESULT_ERROR_GENERIC_FAILURE", at: expect.stringMatching(ISO) },
      { id: "f2", status: "failed", error: "RESULT_ERROR_GENERIC_FAILURE", at: expect.stringMatching(ISO) },
    ]);
    expect(phone.sent).toHaveLength(0);
  });

  it("fails the share of sends given by failureRate, using the injected random source", async () => {
    const draws = [0.1, 0.9]; // 0.1 < 0.5 fails, 0.9 sends
    const phone = await h.phone({ failureRate: 0.5, random: () => draws.shift() ?? 0.5 });
    await h.broker.publishOut(phone.deviceId, job("r1"));
    await h.broker.publishOut(phone.deviceId, job("r2"));
    await phone.waitFor(() => phone.acks.filter((ack) => ack.status !== "received").length >= 2);
    expect(phone.sent.map((sms) => sms.id)).toEqual(["r2"]);
  });

  it("a silent phone receives jobs but never acks or sends", async () => {
    const phone = await h.phone({ silent: true });
    await h.broker.publishOut(phone.deviceId, job("s1"));
    await h.broker.publishOut(phone.deviceId, { id: "s1", cancel: true });
    await phone.waitFor(() => phone.received.includes("s1"));
    await sleep(200);
    expect(h.broker.acks(phone.deviceId)).toEqual([]);
    expect(phone.acks).toEqual([]);
    expect(phone.sent).toEqual([]);
  });

  it("queues sends over maxPerMinute instead of sending them", async () => {
    const phone = await h.phone({ maxPerMinute: 2 });
    for (const id of ["m1", "m2", "m3"]) await h.broker.publishOut(phone.deviceId, job(id));
    await phone.waitFor(() => phone.sent.length === 2 && phone.received.length === 3);
    await sleep(300);
    expect(phone.sent.map((sms) => sms.id)).toEqual(["m1", "m2"]);
    expect(phone.queued).toEqual(["m3"]);
    expect(statusesOf(h.broker.acks(phone.deviceId), "m3")).toEqual(["received"]);
  });

  it("never logs the body's digits, a full number or the token", async () => {
    const lines: string[] = [];
    const phone = await h.phone({ logger: (line) => lines.push(line) });
    await h.broker.publishOut(phone.deviceId, job("log1"));
    await h.broker.publishOut(phone.deviceId, { id: "log2", cancel: true });
    await vi.waitFor(() => expect(lines.some((line) => line.includes("acked job log1: delivered"))).toBe(true));
    const all = lines.join("\n");
    expect(all).toContain("Your otpgate code is ******");
    expect(all).toContain("+**********78");
    expect(all).not.toContain("482913");
    expect(all).not.toContain("254712345678");
    expect(all).not.toContain(h.tokens[phone.deviceId]);
  });
});

describe("connection loss and restarts", () => {
  it("kill() drops the socket without DISCONNECT: the broker publishes the retained will", async () => {
    const phone = await h.phone();
    const will = () =>
      h.broker.publishes.find((seen) => seen.topic === `sms/device/${phone.deviceId}` && seen.payload === '{"online":false}');
    phone.kill();
    await vi.waitFor(() => expect(will()).toMatchObject({ retain: true, qos: 1 }));
    expect(await h.broker.retained(`sms/device/${phone.deviceId}`)).toBe('{"online":false}');
    await phone.waitFor(() => !phone.connected);
    // It stays down until asked: a killed phone does not come back by itself.
    await sleep(300);
    expect(h.broker.clients.filter((client) => client.id === phone.deviceId)).toHaveLength(1);
  });

  it("after kill(), a job published meanwhile arrives on reconnect() through the persistent session", async () => {
    const phone = await h.phone();
    phone.kill();
    await phone.waitFor(() => !phone.connected);
    await h.broker.publishOut(phone.deviceId, job("while-away"));
    await phone.reconnect();
    expect(phone.connected).toBe(true);
    await vi.waitFor(() => expect(statusesOf(h.broker.acks(phone.deviceId), "while-away")).toEqual(["received", "sent", "delivered"]));
    expect(JSON.parse((await h.broker.retained(`sms/device/${phone.deviceId}`)) ?? "{}")).toMatchObject({ online: true });
  });

  it("acks produced while killed are delivered, in order, after reconnect()", async () => {
    const phone = await h.phone({ latencyMs: 150 });
    await h.broker.publishOut(phone.deviceId, job("offline-send"));
    await phone.waitFor(() => phone.queued.includes("offline-send"));
    phone.kill();
    // The SMS goes out without data, like a real phone's.
    await phone.waitFor(() => phone.acks.some((ack) => ack.status === "delivered"));
    expect(statusesOf(h.broker.acks(phone.deviceId), "offline-send")).toEqual(["received"]);
    await phone.reconnect();
    // QoS 1 is at least once: "received" may arrive twice if its PUBACK was lost in the kill.
    await vi.waitFor(() =>
      expect([...new Set(statusesOf(h.broker.acks(phone.deviceId), "offline-send"))]).toEqual(["received", "sent", "delivered"]),
    );
  });

  it("disconnect() leaves cleanly: its own retained offline status, no will", async () => {
    const phone = await h.phone();
    await phone.disconnect();
    const statuses = h.broker.statuses(phone.deviceId).map((seen) => JSON.parse(seen.payload));
    expect(statuses.at(-1)).toEqual({ online: false, at: expect.stringMatching(ISO) });
    expect(JSON.parse((await h.broker.retained(`sms/device/${phone.deviceId}`)) ?? "{}")).toMatchObject({ online: false });
    await sleep(100);
    expect(h.broker.publishes.some((seen) => seen.payload === '{"online":false}' && seen.topic.endsWith(phone.deviceId))).toBe(false);
    expect(phone.connected).toBe(false);
  });

  it("reconnects by itself, with backoff, when the server drops the connection", async () => {
    const phone = await h.phone({ reconnectMinMs: 50, reconnectMaxMs: 200 });
    h.broker.dropClient(phone.deviceId);
    await vi.waitFor(() => expect(h.broker.clients.filter((client) => client.id === phone.deviceId)).toHaveLength(2), { timeout: 3_000 });
    await phone.waitFor(() => phone.connected);
    // The broker saw a lost connection (will published), then the phone announced itself again.
    const payloads = () => h.broker.statuses(phone.deviceId).map((seen) => JSON.parse(seen.payload).online);
    await vi.waitFor(() => expect(payloads()).toEqual([true, false, true]));
    await h.broker.publishOut(phone.deviceId, job("after-drop"));
    await phone.waitFor(() => phone.sent.length === 1);
  });

  it("with a stateFile, a restarted phone does not send a job id it already sent", async () => {
    const stateFile = path.join(h.tempDir(), "phone-state.json");
    const first = await h.phone({ stateFile });
    const { deviceId } = first;
    await h.broker.publishOut(deviceId, job("persisted"));
    await first.waitFor(() => first.sent.length === 1);
    await first.close();

    const second = await h.phone({ deviceId, stateFile });
    await h.broker.publishOut(deviceId, job("persisted"));
    await h.broker.publishOut(deviceId, job("fresh"));
    await second.waitFor(() => second.received.includes("persisted") && second.sent.length === 1);
    await sleep(100);
    expect(second.sent.map((sms) => sms.id)).toEqual(["fresh"]);
  });

  it("without a stateFile, the same restart sends the repeat again (the state file is what prevents it)", async () => {
    const first = await h.phone();
    const { deviceId } = first;
    await h.broker.publishOut(deviceId, job("forgotten"));
    await first.waitFor(() => first.sent.length === 1);
    await first.close();
    const second = await h.phone({ deviceId });
    await h.broker.publishOut(deviceId, job("forgotten"));
    await second.waitFor(() => second.sent.length === 1);
  });
});
