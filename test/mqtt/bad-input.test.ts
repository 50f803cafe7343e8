/**
 * A connected, authenticated device sending garbage on its own topics: the
 * gateway refuses or ignores it, counts it, leaves job states and presence
 * alone, and keeps working for everyone else.
 */
import { randomUUID } from "node:crypto";
import type { IClientOptions, MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { ackFor, closed, collect, connectClient, endClient, jobFor, metricValue, sleep, subscribeCodes } from "../support/mqtt-clients.js";
import { connectPhone, registerDevice, waitOnline, type RegisteredDevice } from "../support/phones.js";

const ACKS = "otpgate_device_acks_total";
const REFUSALS = "otpgate_mqtt_refusals_total";

describe.each(["sqlite", "redis"] as const)("bad input from a device (%s store)", (storeKind) => {
  let gw: TestGateway;
  let tlsUrl: string;
  /** The misbehaving device: a raw client, so it can send anything. Takes numbers from +254711. */
  let raw: RegisteredDevice;
  /** A well-behaved phone for +254722 and a silent one for +254733. */
  let good: RegisteredDevice;
  let goodPhone: SimulatedPhone;
  let quiet: RegisteredDevice;
  let quietPhone: SimulatedPhone;
  const clients: MqttClient[] = [];
  let serial = 0;
  const numberIn = (prefix: string) => `${prefix}${String(100_000 + ++serial)}`;

  const connectRaw = async (extra: IClientOptions = {}) => {
    const client = await connectClient(tlsUrl, { ca: gw.gateway.tls.caPem, clientId: raw.id, username: raw.id, password: raw.token, clean: false, ...extra });
    clients.push(client);
    return client;
  };
  const message = async (id: string) => (await gw.call("GET", `/v1/messages/${id}`)).json;
  const send = async (to: string, body: string): Promise<string> => {
    const created = await gw.call("POST", "/v1/messages", { to, body });
    expect(created.status).toBe(202);
    return created.json.id;
  };
  const ignoredAcks = (status: string) => metricValue(gw, ACKS, { status, outcome: "ignored" });

  beforeAll(async () => {
    gw = await startGateway({ store: storeKind, env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "1000", DEVICE_SENT_TIMEOUT_MS: "2500" } });
    tlsUrl = `mqtts://127.0.0.1:${gw.mqtts}`;
    raw = await registerDevice(gw, { name: "raw", prefixes: ["+254711"] });
    good = await registerDevice(gw, { name: "good", prefixes: ["+254722"] });
    quiet = await registerDevice(gw, { name: "quiet", prefixes: ["+254733"] });
    goodPhone = await connectPhone(gw, good);
    quietPhone = await connectPhone(gw, quiet, { silent: true });
    await waitOnline(gw, good.id);
    await waitOnline(gw, quiet.id);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map(endClient));
  });
  afterAll(async () => {
    await goodPhone?.close();
    await quietPhone?.close();
    await gw?.close();
  });

  it("malformed JSON and wrong types on sms/ack are refused and counted; the device stays connected", async () => {
    const refused = await metricValue(gw, REFUSALS, { what: "ack" });
    const acks = await metricValue(gw, ACKS);
    const client = await connectRaw();
    const at = new Date().toISOString();
    const payloads = [
      "{not json",
      "",
      "null",
      "42",
      "[]",
      "\"sent\"",
      JSON.stringify({ id: 123, status: "sent", at }),
      JSON.stringify({ id: "x", status: "done", at }),
      // A readable `at` does not make up for a missing id or error (a missing or unreadable `at` is fine: see below).
      JSON.stringify({ status: "sent", at: Date.now() }),
      JSON.stringify({ id: "x", status: "failed", at: Math.floor(Date.now() / 1000) }),
      JSON.stringify({ id: "", status: "sent", at }),
      JSON.stringify({ id: "x".repeat(129), status: "sent", at }),
      JSON.stringify({ id: "x", status: "failed", error: "e".repeat(201), at }),
      JSON.stringify({ id: ["x"], status: ["sent"], at: [at] }),
    ];
    for (const payload of payloads) await client.publishAsync(`sms/ack/${raw.id}`, payload, { qos: 1 });
    await eventually(async () => (await metricValue(gw, REFUSALS, { what: "ack" })) === refused + payloads.length, 3000, "every bad ack refused");
    expect(client.connected).toBe(true);
    expect(await metricValue(gw, ACKS)).toBe(acks); // none reached the job store
    expect((await gw.call("GET", "/healthz")).status).toBe(200);
  });

  it("an ack for an unknown job is ignored and counted; no job appears", async () => {
    const ignored = await ignoredAcks("sent");
    const client = await connectRaw();
    const id = randomUUID();
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "sent"), { qos: 1 });
    await eventually(async () => (await ignoredAcks("sent")) === ignored + 1, 3000, "the unknown ack to be counted");
    expect((await gw.call("GET", `/v1/messages/${id}`)).status).toBe(404);
    expect(await gw.gateway.store.getJob(id)).toBeNull();
  });

  it("an ack for a job sent to another device changes nothing, whether that job is waiting or done", async () => {
    const client = await connectRaw();

    // Waiting on the silent phone: a forged `received`+`sent` must not settle it.
    const waitingId = await send(numberIn("+254733"), "waiting on quiet");
    await eventually(async () => quietPhone.received.includes(waitingId), 5000, "the quiet phone to get the job");
    const waiting = await message(waitingId);
    const ignoredReceived = await ignoredAcks("received");
    const ignoredSent = await ignoredAcks("sent");
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(waitingId, "received"), { qos: 1 });
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(waitingId, "sent"), { qos: 1 });
    await eventually(async () => (await ignoredAcks("sent")) === ignoredSent + 1, 3000, "the forged sent to be ignored");
    expect(await ignoredAcks("received")).toBe(ignoredReceived + 1);
    const afterForgery = await message(waitingId);
    expect(afterForgery.status).toBe("dispatched");
    expect(afterForgery.updatedAt).toBe(waiting.updatedAt);
    expect(afterForgery.delivery.attempts).toEqual(waiting.delivery.attempts);
    // The route kept waiting for the phone it chose, and gave up on it.
    const failed = await eventually(async () => {
      const v = await message(waitingId);
      return v.status === "failed" && v;
    }, 8000, "the waiting job to fail");
    expect(failed.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${quiet.id}`, state: "failed", error: expect.stringMatching(/^device:no_sent_ack/) })]);

    // Done by the good phone: a forged `failed` must not undo it.
    const doneId = await send(numberIn("+254722"), "done by good");
    const done = await eventually(async () => {
      const v = await message(doneId);
      return v.status === "sent" && v;
    }, 5000, "the good phone to send");
    const ignoredFailed = await ignoredAcks("failed");
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(doneId, "failed", "RESULT_ERROR_GENERIC_FAILURE"), { qos: 1 });
    await eventually(async () => (await ignoredAcks("failed")) === ignoredFailed + 1, 3000, "the forged failed to be ignored");
    const still = await message(doneId);
    expect(still.status).toBe("sent");
    expect(still.updatedAt).toBe(done.updatedAt);
    expect(still.delivery.attempts).toEqual(done.delivery.attempts);
  });

  it("a repeated `sent` ack (and a `failed` after `sent`) for the device's own job changes nothing", async () => {
    const client = await connectRaw();
    const jobs = collect(client);
    expect(await subscribeCodes(client, `sms/out/${raw.id}`)).toEqual([1]);
    await waitOnline(gw, raw.id);
    const acks = await metricValue(gw, ACKS);

    const id = await send(numberIn("+254711"), "for the raw device");
    await eventually(async () => jobs.some((j) => j.payload.includes(id)), 3000, "the raw device to get its job");
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "received"), { qos: 1 });
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "sent"), { qos: 1 });
    // Acks are recorded concurrently (`received` may land after `sent`, and the route may record the
    // `sent` before the ack recorder does, which then counts it ignored): wait until both are through.
    const sent = await eventually(async () => {
      const v = await message(id);
      return v.status === "sent" && v.delivery.attempts[0]?.receivedAt && (await metricValue(gw, ACKS)) === acks + 2 && v;
    }, 3000, "the job to be sent, with both acks recorded");
    expect(sent.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${raw.id}`, state: "sent", receivedAt: expect.any(String) })]);
    const applied = await metricValue(gw, ACKS, { outcome: "applied" });

    const ignoredSent = await ignoredAcks("sent");
    const ignoredFailed = await ignoredAcks("failed");
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "sent"), { qos: 1 });
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "sent"), { qos: 1 });
    await client.publishAsync(`sms/ack/${raw.id}`, ackFor(id, "failed", "LATE"), { qos: 1 });
    await eventually(
      async () => (await ignoredAcks("failed")) === ignoredFailed + 1 && (await ignoredAcks("sent")) === ignoredSent + 2,
      3000,
      "the repeated sent and the late failed to be ignored",
    );
    const after = await message(id);
    expect(after.status).toBe("sent");
    expect(after.updatedAt).toBe(sent.updatedAt);
    expect(after.delivery.attempts).toEqual(sent.delivery.attempts);
    expect(await metricValue(gw, ACKS, { outcome: "applied" })).toBe(applied);
  });

  it("an ack is taken whatever its `at` says (missing, epoch seconds or ms, not a time): the gateway's clock decides", async () => {
    const client = await connectRaw();
    const jobs = collect(client);
    expect(await subscribeCodes(client, `sms/out/${raw.id}`)).toEqual([1]);
    await waitOnline(gw, raw.id);
    const refused = await metricValue(gw, REFUSALS, { what: "ack" });
    const ack = (id: string, status: "received" | "sent" | "delivered", at?: unknown) =>
      JSON.stringify({ id, status, ...(at === undefined ? {} : { at }) });

    const cases: Array<[string, unknown, unknown]> = [
      ["no at", undefined, undefined],
      ["epoch", Math.floor(Date.parse("1999-01-01T00:00:00Z") / 1000), Date.parse("1999-01-01T00:00:05Z")],
      ["garbage", "not a time", true],
    ];
    for (const [what, receivedAt, sentAt] of cases) {
      const started = Date.now();
      const id = await send(numberIn("+254711"), `at: ${what}`);
      await eventually(async () => jobs.some((j) => j.payload.includes(id)), 3000, `the raw device to get the ${what} job`);
      await client.publishAsync(`sms/ack/${raw.id}`, ack(id, "received", receivedAt), { qos: 1 });
      await client.publishAsync(`sms/ack/${raw.id}`, ack(id, "sent", sentAt), { qos: 1 });
      const sent = await eventually(async () => {
        const v = await message(id);
        return v.status === "sent" && v.delivery.attempts[0]?.receivedAt && v;
      }, 3000, `the ${what} job to be sent`);
      // One attempt, on this phone: no failover, so the code went out once.
      expect(sent.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${raw.id}`, state: "sent" })]);
      // Times are the gateway's, never the phone's 1999.
      const receivedAtMs = Date.parse(sent.delivery.attempts[0].receivedAt);
      expect(receivedAtMs).toBeGreaterThanOrEqual(started - 1000);
      expect(receivedAtMs).toBeLessThanOrEqual(Date.now() + 1000);
    }
    expect(await metricValue(gw, REFUSALS, { what: "ack" })).toBe(refused);
    expect(client.connected).toBe(true);
  });

  it("a 100 KB payload closes the connection; nothing else changes and the device can come back", async () => {
    const refused = await metricValue(gw, REFUSALS, { what: "publish" });
    const acks = await metricValue(gw, ACKS);
    const client = await connectRaw();
    const gone = closed(client);
    const huge = JSON.stringify({ id: randomUUID(), status: "sent", at: new Date().toISOString(), error: "x".repeat(100 * 1024) });
    client.publish(`sms/ack/${raw.id}`, huge, { qos: 1 });
    await gone;
    expect(await metricValue(gw, REFUSALS, { what: "publish" })).toBe(refused + 1);
    expect(await metricValue(gw, ACKS)).toBe(acks);
    // Just over the limit on the status topic too; just under it is fine.
    const again = await connectRaw();
    const goneAgain = closed(again);
    again.publish(`sms/device/${raw.id}`, JSON.stringify({ online: true, app: "y".repeat(16 * 1024) }), { qos: 1 });
    await goneAgain;
    expect(await metricValue(gw, REFUSALS, { what: "publish" })).toBe(refused + 2);
    const back = await connectRaw();
    await back.publishAsync(`sms/ack/${raw.id}`, JSON.stringify({ id: "padding", status: "sent", at: new Date().toISOString(), pad: "z".repeat(7 * 1024) }), { qos: 1 });
    expect(back.connected).toBe(true);
  });

  it("a status naming a SIM's own number is kept with the number masked, in presence and in the retained status", async () => {
    const client = await connectRaw();
    const number = "+254711000987";
    await client.publishAsync(`sms/device/${raw.id}`, JSON.stringify({ online: true, battery: 61, sims: [{ slot: 0, carrier: "Safaricom", number }, { slot: 1, number: null }] }), { qos: 1, retain: true });
    const view = await eventually(async () => {
      const v = (await gw.call("GET", `/v1/devices/${raw.id}`)).json;
      return v.presence?.battery === 61 && v;
    }, 3000, "the status with SIMs");
    expect(view.presence.sims).toEqual([{ slot: 0, carrier: "Safaricom", number: "*********0987" }, { slot: 1, number: null }]);
    // What the broker retains for the next subscriber (and its persistence keeps) is the masked status too.
    const retained = await new Promise<string>((resolve, reject) => {
      const { persistence } = gw.gateway.broker.aedes as unknown as { persistence: { createRetainedStream(pattern: string): NodeJS.ReadableStream } };
      const stream = persistence.createRetainedStream(`sms/device/${raw.id}`);
      let payload = "";
      stream.on("data", (packet: { payload: Buffer }) => (payload = String(packet.payload)));
      stream.on("end", () => resolve(payload));
      stream.on("error", reject);
    });
    expect(retained).toContain("*********0987");
    expect(retained).not.toContain(number);
    expect(JSON.stringify(view)).not.toContain(number);
  });

  it("a malformed status on sms/device is ignored: presence is unchanged", async () => {
    const client = await connectRaw();
    await client.publishAsync(`sms/device/${raw.id}`, JSON.stringify({ online: true, battery: 55, app: "raw/1" }), { qos: 1, retain: true });
    const before = await eventually(async () => {
      const v = (await gw.call("GET", `/v1/devices/${raw.id}`)).json;
      return v.presence?.battery === 55 && v;
    }, 3000, "the valid status");
    expect(before.online).toBe(true);

    const refused = await metricValue(gw, REFUSALS, { what: "status" });
    const malformed = [
      "{not json",
      "null",
      JSON.stringify({ online: "no" }),
      JSON.stringify({ online: false, signal: 2, at: Date.now() }), // an offline status that is malformed says nothing
      JSON.stringify({ online: false, battery: 150 }),
      JSON.stringify({ online: true, battery: "full" }),
      JSON.stringify({ online: true, signal: 9 }),
      JSON.stringify({ online: true, sims: new Array(9).fill({}) }),
      JSON.stringify({ battery: 10 }),
    ];
    for (const payload of malformed) await client.publishAsync(`sms/device/${raw.id}`, payload, { qos: 1 });
    await eventually(async () => (await metricValue(gw, REFUSALS, { what: "status" })) === refused + malformed.length, 3000, "every bad status refused");
    await gw.gateway.presence.settle();
    const after = (await gw.call("GET", `/v1/devices/${raw.id}`)).json;
    expect(after.online).toBe(true);
    expect(after.presence).toEqual(before.presence);
    expect(client.connected).toBe(true);
  });

  it("a status is taken whatever its `at` says: a readable one is kept in UTC, an unreadable one counts as absent", async () => {
    const client = await connectRaw();
    const refused = await metricValue(gw, REFUSALS, { what: "status" });
    const presence = async (battery: number) =>
      eventually(async () => {
        const v = (await gw.call("GET", `/v1/devices/${raw.id}`)).json;
        return v.presence?.battery === battery && v.presence;
      }, 3000, `the status with battery ${battery}`);

    await client.publishAsync(`sms/device/${raw.id}`, JSON.stringify({ online: true, battery: 41, at: 1893499200 }), { qos: 1, retain: true });
    expect((await presence(41)).reportedAt).toBe("2030-01-01T12:00:00.000Z");
    await client.publishAsync(`sms/device/${raw.id}`, JSON.stringify({ online: true, battery: 42, at: 1893499200000 }), { qos: 1, retain: true });
    expect((await presence(42)).reportedAt).toBe("2030-01-01T12:00:00.000Z");
    const before = Date.now();
    await client.publishAsync(`sms/device/${raw.id}`, JSON.stringify({ online: true, battery: 43, at: "not a time" }), { qos: 1, retain: true });
    // Unreadable: the gateway's own time stands in for it.
    const reportedAt = Date.parse((await presence(43)).reportedAt);
    expect(reportedAt).toBeGreaterThanOrEqual(before - 1000);
    expect(reportedAt).toBeLessThanOrEqual(Date.now() + 1000);
    expect(await metricValue(gw, REFUSALS, { what: "status" })).toBe(refused);
  });

  it("a PUBACK for nothing, and a clean-session device's PUBACK, do not bring the gateway down", async () => {
    // In production an unhandled rejection ends the process; here vitest would only report it afterwards.
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    process.on("unhandledRejection", onRejection);
    onTestFinished(() => void process.off("unhandledRejection", onRejection));
    // A PUBACK the broker has no record of (aedes reports it as an ack of `undefined`).
    const client = await connectRaw();
    (client as unknown as { _sendPacket(packet: object, cb: () => void): void })._sendPacket({ cmd: "puback", messageId: 4242 }, () => {});
    // A clean session: aedes keeps no record of what it sends such a client, so every PUBACK it sends is of that kind.
    const cleanClient = await connectRaw({ clean: true });
    const got = collect(cleanClient);
    expect(await subscribeCodes(cleanClient, `sms/out/${raw.id}`)).toEqual([1]);
    const job = jobFor(randomUUID(), numberIn("+254711"), "to a clean session");
    await gw.gateway.broker.publishJob(raw.id, job);
    await eventually(async () => got.length === 1, 3000, "the clean session to get the job");
    await sleep(200);
    expect(cleanClient.connected).toBe(true);
    expect((await gw.call("GET", "/healthz")).status).toBe(200);
    expect(rejections).toEqual([]);
  });

  it("after all that, the gateway still sends through a well-behaved phone", async () => {
    const before = goodPhone.sent.length;
    const to = numberIn("+254722");
    const id = await send(to, "still working");
    const sent = await eventually(async () => {
      const v = await message(id);
      return v.status === "sent" && v;
    }, 5000, "the job through the good phone");
    expect(sent.delivery.route).toBe(`device:${good.id}`);
    expect(goodPhone.sent.slice(before)).toEqual([expect.objectContaining({ id, to, body: "still working" })]);
    expect(goodPhone.connected).toBe(true);
  });
});
