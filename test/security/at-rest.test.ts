/**
 * Nothing readable at rest (DESIGN.md, security rules). A gateway as users run
 * it (its own process, its own logger at `trace`), on the default SQLite store
 * and on Redis (its own redis-server with AOF, so the scan sees every key and
 * what Redis wrote to disk), goes through every flow that carries a secret:
 *
 * - an OTP to a phone that took the job and went offline before acking it:
 *   the job sits in the phone's queue in the broker's persistence, then fails
 *   over to Twilio after the ack deadline; the code is then verified;
 * - a publisher's job straight to the offline phone (queued there), its
 *   `sms/send` (retained, at QoS 1), an `sms/send` at QoS 2 whose PUBREL has
 *   not come yet (held as an incoming packet), and a will on `sms/send`;
 * - a plain message with a status callback whose URL holds a secret;
 * - an email OTP to an SMTP sink, and a seed-route OTP; the QR route with the
 *   device token in its query.
 *
 * Every Redis key name and value of every type, every file under DATA_DIR
 * (the database, its -wal and -shm, secrets, certificates) and every line the
 * process printed are scanned DURING (the OTP still queued for the phone) and
 * AFTER (failed over, approved), for each secret in several encodings. Planted
 * secrets prove the scan finds what it looks for.
 */
import { randomBytes, randomInt, randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import path from "node:path";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { Redis } from "ioredis";
import { connect as mqttConnect, type MqttClient } from "mqtt";
import mqttPacket from "mqtt-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startReceiver, type Receiver } from "../callbacks/receiver.js";
import { startFakeTwilio, type FakeTwilio } from "../support/fake-twilio.js";
import { spawnGateway, type GatewayProcess } from "../support/gateway-process.js";
import { codeIn, eventually } from "../support/gateway.js";
import { connectClient, endClient, jobFor, sleep } from "../support/mqtt-clients.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";
import { fileRegions, findSecrets, redisRegions, textRegion, type Region, type Secret } from "./scan.js";

const SID = "AC" + "5".repeat(32);
const TWILIO_TOKEN = "at-rest-twilio-token";

/** A valid Kenyan mobile number, different each run. */
function kenyanNumber(): string {
  return `+2547${randomInt(0, 3)}${String(randomInt(0, 10_000_000)).padStart(7, "0")}`;
}

/** The E.164 form, the digits without `+`, and the national significant number. */
function numberForms(label: string, e164: string): Secret[] {
  return [
    { label: `${label} (E.164)`, value: e164 },
    { label: `${label} (digits)`, value: e164.slice(1) },
    { label: `${label} (national)`, value: e164.slice(4) },
  ];
}

/** One MQTT 3.1.1 session over a raw socket, so the test decides which acknowledgements it sends. */
class RawSession {
  readonly received: mqttPacket.Packet[] = [];
  private readonly parser = mqttPacket.parser({ protocolVersion: 4 });

  constructor(readonly socket: Socket | TLSSocket) {
    this.parser.on("packet", (packet) => this.received.push(packet));
    socket.on("data", (chunk: Buffer) => this.parser.parse(chunk));
    socket.on("error", () => {});
  }

  send(packet: mqttPacket.Packet): void {
    this.socket.write(mqttPacket.generate(packet));
  }

  async expect(cmd: string, what = cmd): Promise<mqttPacket.Packet> {
    return eventually(async () => this.received.find((p) => p.cmd === cmd), 5_000, what);
  }

  publishes(): string[] {
    return this.received.filter((p): p is mqttPacket.IPublishPacket => p.cmd === "publish").map((p) => String(p.payload));
  }
}

async function openTls(port: number, ca: string): Promise<TLSSocket> {
  const socket = tlsConnect({ host: "127.0.0.1", port, ca, servername: "localhost" });
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
  return socket;
}

async function openTcp(port: number): Promise<Socket> {
  const socket = netConnect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  return socket;
}

describe.each(["sqlite", "redis"] as const)("nothing readable at rest (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let smtp: SmtpSink;
  let receiver: Receiver;
  let redis: RedisServer | undefined;
  let gw: GatewayProcess;
  let mqttPort: number;
  const clients: MqttClient[] = [];
  const sockets: Array<Socket | TLSSocket> = [];

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TWILIO_TOKEN });
    smtp = await startSmtpSink();
    // The first callback fails, so a retry is logged too.
    receiver = await startReceiver((index) => (index === 0 ? 500 : 200));
    if (storeKind === "redis") redis = await startRedisServer({ aof: true });
    mqttPort = await freePort();
    gw = await spawnGateway({
      name: `at-rest-${storeKind}`,
      env: {
        LOG_LEVEL: "trace",
        MQTT_PORT: String(mqttPort),
        FAILOVER_ORDER: "device,twilio,email",
        TWILIO_ACCOUNT_SID: SID,
        TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
        TWILIO_FROM: "+15005550006",
        TWILIO_API_BASE: twilio.baseUrl,
        SMTP_URL: smtp.url,
        EMAIL_FROM: "codes@example.com",
        // Long enough to scan while the phone holds the OTP, short enough to fail over soon after.
        DEVICE_ACK_TIMEOUT_MS: "15000",
        DEVICE_SENT_TIMEOUT_MS: "15000",
        ...(redis ? { REDIS_URL: redis.url } : {}),
      },
    });
  }, 60_000);

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(clients.map((client) => endClient(client)));
    await gw?.kill("SIGTERM");
    await Promise.all([twilio?.close(), smtp?.close(), receiver?.close()]);
    await redis?.stop();
  });

  /** Everything the gateway keeps or wrote: Redis (keys, values, its files), DATA_DIR, and its output. */
  async function regions(): Promise<Region[]> {
    return [...(redis ? await redisRegions(redis.url) : []), ...fileRegions(gw.dataDir, "DATA_DIR"), textRegion("gateway output", gw.output())];
  }

  it("keeps no code, body, number, address, token or key in clear, during and after delivery", async () => {
    const api = async (method: string, route: string, key: string, body?: unknown) => {
      const response = await fetch(gw.url + route, {
        method,
        headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      return { status: response.status, json: (text ? JSON.parse(text) : undefined) as any };
    };
    const admin = gw.env.ADMIN_API_KEY!;

    // Credentials: an API key for the calls, a phone, a publisher.
    const key = await api("POST", "/v1/keys", admin, { name: "scan", scopes: ["otp", "messages"] });
    expect(key.status).toBe(201);
    const apiKey = key.json.key as string;
    const device = (await api("POST", "/v1/devices", admin, { name: "drawer" })).json;
    const publisher = (await api("POST", "/v1/publishers", admin, { name: "billing" })).json;
    const ca = await (await fetch(`${gw.url}/ca.pem`)).text();

    const numbers = { otp: kenyanNumber(), message: kenyanNumber(), direct: kenyanNumber(), send: kenyanNumber(), qos2: kenyanNumber(), will: kenyanNumber(), seed: kenyanNumber() };
    const tag = () => randomBytes(6).toString("hex");
    const bodies = { message: `parcel ${tag()} waits at the depot`, direct: `direct ${tag()} from billing`, send: `retained ${tag()} send`, qos2: `exactly-once ${tag()} send`, will: `last will ${tag()} send` };
    const email = `scan.${tag()}@example.org`;
    const userId = `user-${tag()}`;
    const callbackSecret = `cb${tag()}${tag()}`;

    // 1. The phone connects (persistent session), takes the OTP and vanishes before any PUBACK.
    const phone = new RawSession(await openTls(gw.mqtts, ca));
    sockets.push(phone.socket);
    phone.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: false, clientId: device.id, keepalive: 60, username: device.id, password: Buffer.from(device.token) });
    await phone.expect("connack");
    phone.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: `sms/out/${device.id}`, qos: 1 }] });
    await phone.expect("suback");
    await eventually(async () => (await api("GET", `/v1/devices/${device.id}`, admin)).json.online === true, 5_000, "the phone online");

    const otp = await api("POST", "/v1/otp", apiKey, { to: numbers.otp, userId, codeLength: 10, callbackUrl: `${receiver.url}?secret=${callbackSecret}` });
    expect(otp.status).toBe(202);
    await eventually(async () => phone.publishes().some((p) => p.includes(numbers.otp)), 5_000, "the OTP at the phone");
    phone.socket.destroy();
    await eventually(async () => (await api("GET", `/v1/devices/${device.id}`, admin)).json.online === false, 5_000, "the phone offline");
    const otpView = async () => (await api("GET", `/v1/otp/${otp.json.id}`, apiKey)).json;
    expect((await otpView()).delivery).toMatchObject({ state: "dispatched", route: `device:${device.id}` });
    // The device route ranks phones from a snapshot up to 250 ms old: past it, new jobs see the phone offline.
    await sleep(300);

    // 2. A publisher: a job straight to the offline phone, a retained sms/send, a will on sms/send.
    const mqttUrl = `mqtt://127.0.0.1:${mqttPort}`;
    const billing = await connectClient(mqttUrl, { clientId: "billing-1", username: publisher.name, password: publisher.mqtt.password });
    clients.push(billing);
    const [directId, sendId, qos2Id] = [`direct-${randomUUID()}`, `send-${randomUUID()}`, `qos2-${randomUUID()}`];
    const direct = { ...jobFor(directId, numbers.direct, bodies.direct), expiresAt: new Date(Date.now() + 600_000).toISOString() };
    await billing.publishAsync(`sms/out/${device.id}`, JSON.stringify(direct), { qos: 1 });
    await billing.publishAsync("sms/send", JSON.stringify({ id: sendId, to: numbers.send, body: bodies.send }), { qos: 1, retain: true });
    const willing = mqttConnect(mqttUrl, {
      protocolVersion: 4,
      reconnectPeriod: 0,
      clientId: "billing-2",
      username: publisher.name,
      password: publisher.mqtt.password,
      will: { topic: "sms/send", payload: Buffer.from(JSON.stringify({ to: numbers.will, body: bodies.will })), qos: 1, retain: false },
    });
    willing.on("error", () => {});
    await new Promise<void>((resolve) => willing.once("connect", () => resolve()));
    // An sms/send at QoS 2 whose PUBREL has not come: the broker holds the packet meanwhile.
    const exactly = new RawSession(await openTcp(mqttPort));
    sockets.push(exactly.socket);
    exactly.send({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: false, clientId: "billing-3", keepalive: 60, username: publisher.name, password: Buffer.from(publisher.mqtt.password) });
    await exactly.expect("connack");
    exactly.send({ cmd: "publish", topic: "sms/send", qos: 2, messageId: 7, retain: false, dup: false, payload: Buffer.from(JSON.stringify({ id: qos2Id, to: numbers.qos2, body: bodies.qos2 })) });
    await exactly.expect("pubrec");

    // 3. A plain message, an email OTP, a seed-route OTP, the QR route with the token in its query.
    const message = await api("POST", "/v1/messages", apiKey, { to: numbers.message, body: bodies.message });
    expect(message.status).toBe(202);
    const mailed = await api("POST", "/v1/otp", apiKey, { email, channel: "email", codeLength: 10, userId: `${userId}-mail` });
    expect(mailed.status).toBe(202);
    const seed = await fetch(`${gw.url}/send-otp`, {
      method: "POST",
      headers: { "x-api-key": apiKey, "content-type": "application/json" },
      body: JSON.stringify({ phone: numbers.seed, uid: `${userId}-seed` }),
    });
    expect(seed.status, await seed.clone().text()).toBe(200);
    expect((await fetch(`${gw.url}/v1/devices/${device.id}/qr?token=${encodeURIComponent(device.token)}`, { headers: { authorization: `Bearer ${admin}` } })).status).toBe(200);

    const sentBy = (to: string) => twilio.received.find((m) => m.to === to);
    await eventually(async () => [numbers.message, numbers.send, numbers.qos2, numbers.seed].every(sentBy), 10_000, "the cloud sends").catch(async (error: Error) => {
      const views = await Promise.all([message.json.id as string, sendId, qos2Id].map(async (id) => JSON.stringify((await api("GET", `/v1/messages/${id}`, apiKey)).json)));
      throw new Error(`${error.message}: ${JSON.stringify(numbers)} ${JSON.stringify(twilio.received)} ${views.join("\n")}`);
    });
    const mail = await smtp.waitForMessage((m) => m.to.includes(email), 10_000);
    await eventually(async () => (await api("GET", `/v1/messages/${directId}`, apiKey)).json?.status === "dispatched", 5_000, "the direct job tracked");

    // DURING: the OTP is still waiting on the phone, in its queue.
    const during = await regions();
    expect((await otpView()).delivery).toMatchObject({ state: "dispatched", route: `device:${device.id}` });

    // 4. The ack deadline passes: failover to Twilio; the codes are checked.
    const sms = await eventually(async () => sentBy(numbers.otp), 25_000, "the OTP failed over to Twilio");
    const code = codeIn(sms.body);
    const mailCode = codeIn(mail.text);
    expect(code).toHaveLength(10);
    expect(mailCode).toHaveLength(10);
    expect((await api("POST", "/v1/otp/verify", apiKey, { id: otp.json.id, code })).json).toMatchObject({ valid: true, status: "approved" });
    expect((await api("POST", "/v1/otp/verify", apiKey, { id: mailed.json.id, code: mailCode })).json).toMatchObject({ valid: true, status: "approved" });
    const seedCode = codeIn(sentBy(numbers.seed)!.body);
    expect((await api("POST", "/verify-otp", apiKey, { uid: `${userId}-seed`, code: seedCode })).status).toBe(200);
    // The QoS 2 publisher completes; the willing one dies, so its will is published and sent.
    exactly.send({ cmd: "pubrel", messageId: 7 });
    await exactly.expect("pubcomp");
    (willing.stream as Socket).destroy();
    await eventually(async () => sentBy(numbers.will), 10_000, "the will sent through Twilio");
    await eventually(async () => receiver.requests.some((r) => r.body.includes('"approved"') || r.body.includes('"sent"')), 10_000, "a status callback");
    // What the API shows of a message: its number masked.
    const messageView = (await api("GET", `/v1/messages/${message.json.id}`, apiKey)).json;
    expect(messageView.to).not.toBe(numbers.message);
    expect(messageView.to.slice(-3)).toBe(numbers.message.slice(-3));

    const after = await regions();

    const secrets: Secret[] = [
      { label: "SMS code", value: code },
      { label: "email code", value: mailCode },
      ...Object.entries(bodies).map(([name, value]) => ({ label: `${name} body`, value })),
      ...Object.entries(numbers).flatMap(([name, value]) => numberForms(`${name} number`, value)),
      { label: "email address", value: email },
      { label: "user id", value: userId },
      { label: "device token", value: device.token },
      { label: "API key", value: apiKey },
      { label: "admin key", value: admin },
      { label: "publisher token", value: publisher.mqtt.password },
      { label: "callback URL secret", value: callbackSecret },
      { label: "Twilio auth token", value: TWILIO_TOKEN },
    ];
    // What the scan read, so a pass means something: the records and the queued jobs are there.
    const everything = Buffer.concat(after.map((r) => r.bytes));
    for (const id of [otp.json.id, message.json.id, directId]) expect(everything.includes(Buffer.from(id))).toBe(true);
    if (redis) {
      expect(during.some((r) => r.where.includes(`outgoing:${device.id}`))).toBe(true);
      expect(during.some((r) => r.where.startsWith("redis string packet:"))).toBe(true);
    }
    expect(gw.output()).toContain("incoming request");

    expect(findSecrets(during, secrets), "DURING").toEqual([]);
    expect(findSecrets(after, secrets), "AFTER").toEqual([]);
  }, 90_000);

  it("finds a secret planted in each place it scans, in each encoding", async () => {
    const planted = `+2547${randomInt(0, 3)}${String(randomInt(0, 10_000_000)).padStart(7, "0")}`;
    const places: Region[] = [];
    if (redis) {
      const client = new Redis(redis.url);
      // A value, a hash field, a key name; and one deleted at once, which only the AOF keeps.
      await client.set("planted:value", Buffer.from(`x${planted}`).toString("base64"));
      await client.hset("planted:hash", "field", Buffer.from(planted, "utf16le"));
      await client.set(`planted:${encodeURIComponent(planted)}`, "1");
      await client.set("planted:gone", Buffer.from(planted).toString("hex"));
      await client.del("planted:gone");
      client.disconnect();
    }
    writeFileSync(path.join(gw.dataDir, "planted.bin"), Buffer.concat([randomBytes(5), Buffer.from(Buffer.from(`yy${planted}`).toString("base64url"))]));
    // The log carries request paths: a planted one shows the log is scanned.
    await fetch(`${gw.url}/planted/${planted}`);
    await eventually(async () => gw.output().includes(planted), 5_000, "the planted path in the log");
    places.push(...(await regions()));

    const findings = findSecrets(places, [{ label: "planted", value: planted }]);
    const seen = (where: string, encoding?: string) => findings.some((f) => f.where.startsWith(where) && (!encoding || f.encoding.startsWith(encoding)));
    expect(seen("DATA_DIR/planted.bin", "base64")).toBe(true);
    expect(seen("gateway output")).toBe(true);
    if (redis) {
      expect(seen("redis string planted:value", "base64")).toBe(true);
      expect(seen("redis hash planted:hash", "utf16le")).toBe(true);
      expect(seen("redis string planted:%2B", "url")).toBe(true);
      expect(seen("redis dir/", "hex")).toBe(true);
    }
  });
});
