/**
 * Take-backs that hold: when a job leaves a phone (here: the phone never
 * acknowledged it), the cancel is kept in the store, the job is removed from
 * the phone's offline queue in the broker's persistence (not only withheld),
 * and a node started later still refuses to hand that job to the phone.
 */
import { randomUUID } from "node:crypto";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import mqttPacket from "mqtt-packet";
import { afterEach, describe, expect, it } from "vitest";
import { collect, connectClient, endClient, sleep, subscribeCodes } from "../support/mqtt-clients.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { registerDevice, waitOnline, type RegisteredDevice } from "../support/phones.js";
import type { RedisStore } from "../../api/store/redis-store.js";

interface QueuedPacket {
  topic: string;
  payload?: Buffer | string;
}

/** What the broker's persistence holds for a client: its offline queue, in-flight packets included. */
async function queued(gw: TestGateway, clientId: string): Promise<string[]> {
  const { persistence } = gw.gateway.broker.aedes as unknown as { persistence: { outgoingStream(client: { id: string }): AsyncIterable<QueuedPacket> } };
  const payloads: string[] = [];
  for await (const packet of persistence.outgoingStream({ id: clientId })) payloads.push(String(packet.payload));
  return payloads;
}

/**
 * A phone that takes jobs and never answers them, not even with a PUBACK: a
 * raw MQTT 3.1.1 session over TLS, so each job stays in its queue.
 */
async function silentSession(gw: TestGateway, device: RegisteredDevice): Promise<{ socket: TLSSocket; received: string[] }> {
  const socket = tlsConnect({ host: "127.0.0.1", port: gw.mqtts, ca: gw.gateway.tls.caPem, servername: "localhost" });
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  const received: string[] = [];
  let subacked = false;
  parser.on("packet", (packet) => {
    if (packet.cmd === "publish") received.push(String(packet.payload));
    if (packet.cmd === "suback") subacked = true;
  });
  socket.on("data", (chunk: Buffer) => parser.parse(chunk));
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  socket.write(
    mqttPacket.generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: false, clientId: device.id, keepalive: 60, username: device.id, password: Buffer.from(device.token) }),
  );
  socket.write(mqttPacket.generate({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `sms/out/${device.id}`, qos: 1 }] }));
  await eventually(async () => subacked, 5_000, "SUBACK");
  return { socket, received };
}

const gateways: TestGateway[] = [];
afterEach(async () => {
  await Promise.all(gateways.splice(0).map((gw) => gw.close()));
});

describe.each(["sqlite", "redis"] as const)("take-backs (%s store)", (storeKind) => {
  it("a job that left a phone is cancelled in the store and removed from the phone's queue in the broker", async () => {
    const gw = await startGateway({ store: storeKind, env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "800", DEVICE_SENT_TIMEOUT_MS: "1000" } });
    gateways.push(gw);
    const device = await registerDevice(gw, { name: "never answers" });
    const session = await silentSession(gw, device);
    await waitOnline(gw, device.id);

    const created = await gw.call("POST", "/v1/messages", { to: "+254711000777", body: "take me back" });
    expect(created.status).toBe(202);
    const jobId = created.json.id as string;
    // The phone got it and said nothing: it sits in the queue until the deadline...
    await eventually(async () => session.received.some((p) => p.includes(jobId)), 3_000, "the job to reach the phone");
    expect((await queued(gw, device.id)).some((p) => p.includes("take me back"))).toBe(true);
    // ...then the gateway gives up on it: failed (no other route), the cancel kept, the job gone from the queue.
    await eventually(async () => (await gw.call("GET", `/v1/messages/${jobId}`)).json.status === "failed", 5_000, "the job to fail");
    expect(await gw.gateway.store.activeCancels(Date.now())).toEqual([expect.objectContaining({ jobId, deviceId: device.id })]);
    await eventually(async () => !(await queued(gw, device.id)).some((p) => p.includes("take me back")), 3_000, "the job to leave the queue");
    // The cancel itself went out to the phone.
    expect(session.received.some((p) => p.includes(jobId) && p.includes('"cancel":true'))).toBe(true);
    session.socket.destroy();
  });
});

describe("jobs queued for a phone in Redis", () => {
  it("are sealed in the broker's persistence, and replayed in clear to the phone when it reconnects", async () => {
    const gw = await startGateway({ store: "redis", env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "15000", DEVICE_SENT_TIMEOUT_MS: "15000" } });
    gateways.push(gw);
    const device = await registerDevice(gw, { name: "slow to answer" });
    const first = await silentSession(gw, device);
    await waitOnline(gw, device.id);
    const body = `queued secret ${randomUUID().slice(0, 8)}`;
    const created = await gw.call("POST", "/v1/messages", { to: "+254711000999", body });
    const jobId = created.json.id as string;
    await eventually(async () => first.received.some((p) => p.includes(body)), 3_000, "the live delivery, in clear");

    // Every key and value the broker keeps in Redis: the job is there, its text and number are not.
    const redis = (gw.gateway.store as RedisStore).redis;
    const dump: string[] = [];
    for (const key of await redis.keys("*")) {
      if ((await redis.type(key)) === "string") dump.push(key, (await redis.getBuffer(key))!.toString("latin1"));
    }
    expect((await queued(gw, device.id)).some((p) => p.includes(body))).toBe(true);
    expect(dump.join("\n")).not.toContain(body);
    expect(dump.join("\n")).not.toContain("254711000999");

    // The phone drops and comes back: the queue replays the job, opened again.
    first.socket.destroy();
    await waitOnline(gw, device.id, false);
    const second = await silentSession(gw, device);
    await eventually(async () => second.received.some((p) => p.includes(body) && p.includes(jobId)), 5_000, "the replayed job, in clear");
    second.socket.destroy();
  });
});

describe("take-backs across a restart (sqlite store)", () => {
  it("a node started after a take-back still never hands that job to the phone", async () => {
    const first = await startGateway({ env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "800", DEVICE_SENT_TIMEOUT_MS: "1000" } });
    gateways.push(first);
    const device = await registerDevice(first, { name: "drawer phone" });
    const publisher = await first.call("POST", "/v1/publishers", { name: "billing" });
    const jobId = `taken-back-${randomUUID()}`;
    await first.gateway.store.saveCancel({ jobId, deviceId: device.id, until: Date.now() + 600_000 });
    await first.close();
    gateways.splice(0);

    const second = await startGateway({ dataDir: first.dataDir, env: { FAILOVER_ORDER: "device" } });
    gateways.push(second);
    const phone = await connectClient(`mqtts://127.0.0.1:${second.mqtts}`, { ca: second.gateway.tls.caPem, clientId: device.id, username: device.id, password: device.token, clean: false });
    const got = collect(phone);
    expect(await subscribeCodes(phone, `sms/out/${device.id}`)).toEqual([1]);
    const sender = await connectClient(`mqtt://127.0.0.1:${second.mqtt}`, { clientId: "billing-1", username: "billing", password: publisher.json.mqtt.password });
    const job = (id: string) => JSON.stringify({ id, to: "+254711000888", body: "from billing", expiresAt: new Date(Date.now() + 60_000).toISOString() });
    await sender.publishAsync(`sms/out/${device.id}`, job(jobId), { qos: 1 });
    // A job that was not taken back goes through, so the phone is listening.
    const other = `not-taken-back-${randomUUID()}`;
    await sender.publishAsync(`sms/out/${device.id}`, job(other), { qos: 1 });
    await eventually(async () => got.some((m) => m.payload.includes(other)), 3_000, "the other job to arrive");
    await sleep(300);
    expect(got.some((m) => m.payload.includes(jobId))).toBe(false);
    await endClient(sender);
    await endClient(phone);
  });
});
