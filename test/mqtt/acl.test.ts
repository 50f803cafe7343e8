/**
 * The broker's security rules (DESIGN.md) seen from the outside, over real TLS,
 * with two independent clients: mosquitto's command-line tools and the `mqtt`
 * package. A device may subscribe only to its own `sms/out/<id>` and publish only
 * to its own `sms/ack/<id>` and `sms/device/<id>`; CONNECT needs the device's id
 * as client id and username and its current token; every refusal is counted.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import type { IClientOptions, MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import {
  ackFor,
  closed,
  collect,
  connectClient,
  endClient,
  jobFor,
  metricValue,
  mosquittoTls,
  runProcess,
  sleep,
  startProcess,
  subscribeCodes,
  tryConnect,
} from "../support/mqtt-clients.js";
import { connectPhone, registerDevice, waitOnline, type RegisteredDevice } from "../support/phones.js";

const REFUSALS = "otpgate_mqtt_refusals_total";
const SUBACK_REFUSED = 0x80;
/** mosquitto clients exit with the CONNACK code when refused, and 7 (MOSQ_ERR_CONN_LOST) when the broker drops them. */
const MOSQ_ERR_CONN_LOST = 7;

describe.each(["sqlite", "redis"] as const)("MQTT access control over TLS (%s store)", (storeKind) => {
  let gw: TestGateway;
  let caFile: string;
  let tlsUrl: string;
  let a: RegisteredDevice;
  let b: RegisteredDevice;
  let bPhone: SimulatedPhone;
  /** Everything the broker carried on `sms/out/<B>`, whoever was meant to get it. */
  const toB: string[] = [];
  const clients: MqttClient[] = [];
  /** What the broker refused and why: the text that goes to the log. */
  const refusals: Array<{ what: string; reason: string }> = [];
  let number = 254722000300;
  const nextNumber = () => `+${++number}`;

  /** `mqtt` package options for a device: client id = username = its id, password = its token. */
  const deviceOptions = (device: RegisteredDevice, extra: IClientOptions = {}): IClientOptions => ({
    ca: gw.gateway.tls.caPem,
    clientId: device.id,
    username: device.id,
    password: device.token,
    clean: false,
    ...extra,
  });
  const connectDevice = async (device: RegisteredDevice, extra: IClientOptions = {}) => {
    const client = await connectClient(tlsUrl, deviceOptions(device, extra));
    clients.push(client);
    return client;
  };
  const mosquitto = (device: RegisteredDevice, token = device.token) => mosquittoTls(gw, caFile, { clientId: device.id, username: device.id, password: token });
  /** A device that attacks: its prefix matches no number the tests use, so the dispatcher never picks it. */
  const registerAttacker = (name: string) => registerDevice(gw, { name, prefixes: ["+999"] });
  const publishTo = (deviceId: string, job: ReturnType<typeof jobFor>) => gw.gateway.broker.publishJob(deviceId, job);

  beforeAll(async () => {
    gw = await startGateway({
      store: storeKind,
      env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "1000", DEVICE_SENT_TIMEOUT_MS: "3000" },
    });
    caFile = path.join(gw.dataDir, "tls", "ca.pem");
    tlsUrl = `mqtts://127.0.0.1:${gw.mqtts}`;
    gw.gateway.broker.on("refused", (what, reason) => refusals.push({ what, reason }));
    a = await registerAttacker("device A");
    // B takes the jobs (prefix match) and never acts on them, so they wait for an ack only B may give.
    b = await registerDevice(gw, { name: "device B", prefixes: ["+254722"] });
    bPhone = await connectPhone(gw, b, { silent: true });
    await waitOnline(gw, b.id);
    await new Promise<void>((resolve) =>
      gw.gateway.broker.aedes.subscribe(
        `sms/out/${b.id}`,
        (packet, done) => {
          toB.push(String(packet.payload));
          done();
        },
        resolve,
      ),
    );
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map(endClient));
  });
  afterAll(async () => {
    await bPhone?.close();
    await gw?.close();
  });

  it("mosquitto_sub: A may not subscribe to B's jobs or to wildcards (SUBACK 0x80), and gets only its own jobs", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "subscription" });
    for (const topic of [`sms/out/${b.id}`, "sms/out/+", "sms/#", "#"]) {
      const result = await runProcess("mosquitto_sub", [...mosquitto(a), "-d", "-q", "1", "-t", topic, "-C", "1", "-W", "3"], { timeoutMs: 8000 });
      expect(result.stdout, topic).toMatch(/received CONNACK \(0\)/);
      expect(result.stdout, topic).toMatch(/Subscribed \(mid: \d+\): 128\s*$/m);
      expect(result.stderr, topic).toContain("All subscription requests were denied");
      expect(result.stdout, topic).not.toContain("received PUBLISH");
    }
    expect(await metricValue(gw, REFUSALS, { what: "subscription" })).toBe(refusedBefore + 4);

    // All at once, with A's own topic first: only the first is granted, and while the subscription
    // lives, a job for B published before one for A never reaches A (-C 1: the first message ends it).
    const sub = startProcess(
      "mosquitto_sub",
      [...mosquitto(a), "-d", "-v", "-q", "1", "-t", `sms/out/${a.id}`, "-t", `sms/out/${b.id}`, "-t", "sms/out/+", "-t", "sms/#", "-t", "#", "-C", "1", "-W", "5"],
      { timeoutMs: 10_000, lineBuffered: true },
    );
    try {
      await sub.waitForOutput((out) => /Subscribed \(mid: \d+\):/.test(out));
      expect(sub.stdout()).toMatch(/Subscribed \(mid: \d+\): 1, 128, 128, 128, 128\s*$/m);
      const forB = jobFor(randomUUID(), nextNumber(), "for B's eyes only");
      const forA = jobFor(randomUUID(), "+99912345678", "for A");
      await publishTo(b.id, forB);
      await publishTo(a.id, forA);
      const result = await sub.result;
      expect(result.code).toBe(0);
      const published = result.stdout.split("\n").filter((line) => line.includes("received PUBLISH"));
      expect(published).toHaveLength(1);
      expect(published[0]).toContain(`'sms/out/${a.id}'`);
      expect(result.stdout).toContain(JSON.stringify(forA));
      expect(result.stdout).not.toContain(forB.body);
      // B's job was really published: the broker carried it to B.
      await eventually(async () => toB.some((p) => p.includes(forB.id)), 3000, "B's job on B's topic");
    } finally {
      sub.kill();
    }
    expect(await metricValue(gw, REFUSALS, { what: "subscription" })).toBe(refusedBefore + 8);
  });

  it("mqtt package: A's subscriptions to B's topic and wildcards are refused without dropping A; A receives nothing of B's", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "subscription" });
    const clientA = await connectDevice(a);
    const seen = collect(clientA);
    for (const topic of [`sms/out/${b.id}`, "sms/out/+", "sms/#", "#"]) {
      expect(await subscribeCodes(clientA, topic), topic).toEqual([SUBACK_REFUSED]);
    }
    expect(await subscribeCodes(clientA, [`sms/out/${a.id}`, `sms/out/${b.id}`])).toEqual([1, SUBACK_REFUSED]);
    expect(clientA.connected).toBe(true);
    expect(await metricValue(gw, REFUSALS, { what: "subscription" })).toBe(refusedBefore + 5);

    const forB = jobFor(randomUUID(), nextNumber(), "B only");
    const forA = jobFor(randomUUID(), "+99912345679", "A only");
    await publishTo(b.id, forB);
    await publishTo(a.id, forA);
    await eventually(async () => seen.length > 0, 3000, "A's own job");
    await eventually(async () => toB.some((p) => p.includes(forB.id)), 3000, "B's job on B's topic");
    await eventually(async () => bPhone.received.includes(forB.id), 3000, "B's phone to get its job");
    await sleep(200);
    expect(seen).toEqual([{ topic: `sms/out/${a.id}`, payload: JSON.stringify(forA) }]);
  });

  it("A cannot ack B's job: the broker closes A's connection and the job is untouched", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "publish" });
    const acksBefore = await metricValue(gw, "otpgate_device_acks_total");
    const created = await gw.call("POST", "/v1/messages", { to: nextNumber(), body: "B's job" });
    expect(created.status).toBe(202);
    const id: string = created.json.id;
    await eventually(async () => bPhone.received.includes(id), 5000, "B to receive the job");
    const before = (await gw.call("GET", `/v1/messages/${id}`)).json;
    expect(before.delivery).toMatchObject({ state: "dispatched", route: `device:${b.id}` });

    // mqtt package: a forged `sent` from A, on B's ack topic.
    const clientA = await connectDevice(a);
    const gone = closed(clientA);
    clientA.publish(`sms/ack/${b.id}`, ackFor(id, "sent"), { qos: 1 });
    await gone;
    // mosquitto_pub: the same forgery, the same answer.
    const result = await runProcess("mosquitto_pub", [...mosquitto(a), "-q", "1", "-t", `sms/ack/${b.id}`, "-m", ackFor(id, "sent")], { timeoutMs: 8000 });
    expect(result.code).toBe(MOSQ_ERR_CONN_LOST);
    expect(result.stderr).toMatch(/connection was lost/i);

    const after = (await gw.call("GET", `/v1/messages/${id}`)).json;
    expect(after.status).toBe("dispatched");
    expect(after.updatedAt).toBe(before.updatedAt);
    expect(after.delivery.attempts).toEqual(before.delivery.attempts);
    expect(after.delivery.attempts[0].receivedAt).toBeUndefined();
    expect(await metricValue(gw, REFUSALS, { what: "publish" })).toBe(refusedBefore + 2);
    expect(await metricValue(gw, "otpgate_device_acks_total")).toBe(acksBefore);
    const logged = refusals.filter((r) => r.what === `publish to sms/ack/${b.id}`);
    expect(logged.map((r) => r.reason)).toEqual([`device ${a.id} may not publish for device ${b.id}`, `device ${a.id} may not publish for device ${b.id}`]);

    // The forged `sent` never counted anywhere: the route waited for B, which never answered.
    const settled = await eventually(async () => {
      const view = (await gw.call("GET", `/v1/messages/${id}`)).json;
      return view.status !== "dispatched" && view;
    }, 8000, "the job to give up on B");
    expect(settled.status).toBe("failed");
    expect(settled.delivery.attempts[0]).toMatchObject({ route: `device:${b.id}`, state: "failed", error: expect.stringMatching(/^device:no_sent_ack/) });
  });

  it("A cannot publish to sms/send, to its own sms/out/A or to sms/out/B (connection closed, nothing delivered)", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "publish" });
    const intakeBefore = await metricValue(gw, "otpgate_mqtt_intake_total");
    const jobsBefore = await metricValue(gw, "otpgate_route_attempts_total");
    const toA: string[] = [];
    await new Promise<void>((resolve) =>
      gw.gateway.broker.aedes.subscribe(`sms/out/${a.id}`, (packet, done) => (toA.push(String(packet.payload)), done()), resolve),
    );
    const attempts: Array<[string, string]> = [
      ["sms/send", JSON.stringify({ to: nextNumber(), body: "device posing as publisher" })],
      [`sms/out/${a.id}`, JSON.stringify(jobFor(randomUUID(), "+99912345670", "device writing its own job"))],
      [`sms/out/${b.id}`, JSON.stringify(jobFor(randomUUID(), nextNumber(), "device writing a job for B"))],
    ];
    for (const [topic, payload] of attempts) {
      const clientA = await connectDevice(a);
      const gone = closed(clientA);
      clientA.publish(topic, payload, { qos: 1 });
      await gone;
      const result = await runProcess("mosquitto_pub", [...mosquitto(a), "-q", "1", "-t", topic, "-m", payload], { timeoutMs: 8000 });
      expect(result.code, topic).toBe(MOSQ_ERR_CONN_LOST);
    }
    await sleep(300);
    expect(toA.filter((p) => p.includes("device writing"))).toEqual([]);
    expect(toB.filter((p) => p.includes("device writing") || p.includes("device posing"))).toEqual([]);
    expect(await metricValue(gw, "otpgate_mqtt_intake_total")).toBe(intakeBefore);
    expect(await metricValue(gw, "otpgate_route_attempts_total")).toBe(jobsBefore);
    expect(await metricValue(gw, REFUSALS, { what: "publish" })).toBe(refusedBefore + 6);
  });

  it("A's will is held to the same rules: a will on B's topics is refused at CONNECT; one on A's own status works", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "connection" });
    const job = jobFor(randomUUID(), nextNumber(), "smuggled in a will");
    // A will is published when its client is gone, possibly by a node that never knew it: checked up front.
    for (const will of [
      { topic: `sms/out/${b.id}`, payload: Buffer.from(JSON.stringify(job)) },
      { topic: `sms/ack/${b.id}`, payload: Buffer.from(ackFor(job.id, "sent")) },
      { topic: "sms/send", payload: Buffer.from(JSON.stringify({ to: job.to, body: job.body })) },
    ]) {
      expect((await tryConnect(tlsUrl, deviceOptions(a, { will: { ...will, qos: 1, retain: false } }))).code, will.topic).toBe(5);
    }
    // A will that makes the CONNECT bigger than MQTT_MAX_CONNECT_BYTES (4 KiB) is not even read: closed, no CONNACK.
    const tooLarge = await metricValue(gw, "otpgate_mqtt_connections_refused_total", { reason: "connect_too_large" });
    await expect(tryConnect(tlsUrl, deviceOptions(a, { will: { topic: `sms/device/${a.id}`, payload: Buffer.alloc(17 * 1024, 0x20), qos: 1, retain: false } }), 2000)).rejects.toThrow();
    expect(await metricValue(gw, "otpgate_mqtt_connections_refused_total", { reason: "connect_too_large" })).toBe(tooLarge + 1);
    const viaMosquitto = await runProcess(
      "mosquitto_sub",
      [...mosquitto(a), "--will-topic", `sms/out/${b.id}`, "--will-payload", JSON.stringify(job), "--will-qos", "1", "-t", `sms/out/${a.id}`, "-C", "1", "-W", "3"],
      { timeoutMs: 8000 },
    );
    expect(viaMosquitto.code).toBe(5);
    expect(await metricValue(gw, REFUSALS, { what: "connection" })).toBe(refusedBefore + 4);
    expect(refusals.filter((r) => r.reason.startsWith("will refused")).length).toBeGreaterThanOrEqual(4);
    await sleep(200);
    expect(toB.filter((p) => p.includes(job.id))).toEqual([]);
    expect(bPhone.received).not.toContain(job.id);

    // The will every phone leaves: its own status, offline. Accepted, and published when A dies.
    const statusOfA: string[] = [];
    await new Promise<void>((resolve) =>
      gw.gateway.broker.aedes.subscribe(`sms/device/${a.id}`, (packet, done) => (statusOfA.push(String(packet.payload)), done()), resolve),
    );
    const clientA = await connectDevice(a, { will: { topic: `sms/device/${a.id}`, payload: Buffer.from(JSON.stringify({ online: false })), qos: 1, retain: true } });
    // Online once its jobs can reach it: with its own sms/out subscription, as every phone makes.
    await clientA.subscribeAsync(`sms/out/${a.id}`, { qos: 1 });
    await waitOnline(gw, a.id);
    const gone = closed(clientA);
    clientA.stream.destroy(); // no DISCONNECT: the broker publishes the will
    await gone;
    await eventually(async () => statusOfA.includes(JSON.stringify({ online: false })), 3000, "A's will");
    await waitOnline(gw, a.id, false);
  });

  it("refuses at CONNECT: no credentials or a wrong token (4), a client id other than the device id (5)", async () => {
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "connection" });
    // mqtt package
    expect((await tryConnect(tlsUrl, { ca: gw.gateway.tls.caPem, clientId: a.id })).code).toBe(4);
    expect((await tryConnect(tlsUrl, deviceOptions(a, { password: `og_dev_${"x".repeat(43)}` }))).code).toBe(4);
    expect((await tryConnect(tlsUrl, deviceOptions(a, { username: b.id }))).code).toBe(4); // A's token is not B's
    expect((await tryConnect(tlsUrl, deviceOptions(a, { clientId: `${a.id}-2` }))).code).toBe(5);
    // A's credentials with B's client id would take over B's session: refused, and B stays connected.
    expect((await tryConnect(tlsUrl, deviceOptions(a, { clientId: b.id }))).code).toBe(5);
    expect((await tryConnect(tlsUrl, deviceOptions(a, { clientId: b.id, clean: true }))).code).toBe(5);

    // mosquitto_sub
    const base = ["-h", "127.0.0.1", "-p", String(gw.mqtts), "--cafile", caFile, "-V", "mqttv311", "-t", `sms/out/${a.id}`, "-C", "1", "-W", "3"];
    const noCredentials = await runProcess("mosquitto_sub", [...base, "-i", a.id], { timeoutMs: 8000 });
    expect(noCredentials.code).toBe(4);
    expect(noCredentials.stderr).toMatch(/bad user name or password/i);
    const wrongToken = await runProcess("mosquitto_sub", [...base, "-i", a.id, "-u", a.id, "-P", "og_dev_wrong"], { timeoutMs: 8000 });
    expect(wrongToken.code).toBe(4);
    const otherClientId = await runProcess("mosquitto_sub", [...base, "-i", "not-the-device", "-u", a.id, "-P", a.token], { timeoutMs: 8000 });
    expect(otherClientId.code).toBe(5);
    expect(otherClientId.stderr).toMatch(/not authori[sz]ed/i);

    expect(await metricValue(gw, REFUSALS, { what: "connection" })).toBe(refusedBefore + 9);
    const logged = refusals.filter((r) => r.what === "connection").slice(-9).map((r) => r.reason);
    expect(logged.filter((r) => r.startsWith("no username or password"))).toHaveLength(2);
    expect(logged.filter((r) => r.startsWith("unknown device or wrong token"))).toHaveLength(3);
    expect(logged.filter((r) => r.startsWith("a device must connect with client id = its id"))).toHaveLength(4);
    // Logged reasons name the client, never its token.
    expect(JSON.stringify(refusals)).not.toContain(a.token);
    expect(bPhone.connected).toBe(true);
    // The right credentials still work, so the refusals above are about the credentials.
    const ok = await tryConnect(tlsUrl, deviceOptions(a));
    expect(ok.code).toBe(0);
    clients.push(ok.client!);
  });

  it("a device is online only once its own sms/out subscription is in place, so no job is routed to a phone that cannot get it", async () => {
    const e = await registerAttacker("device E");
    const clientE = await connectDevice(e);
    // Connected, not subscribed (a session the broker lost, e.g. after a restart of a single node): not online.
    await sleep(300);
    await gw.gateway.presence.settle();
    expect((await gw.call("GET", `/v1/devices/${e.id}`)).json.online).not.toBe(true);
    // Another topic is not enough.
    await clientE.subscribeAsync(`sms/out/${e.id}/x`, { qos: 1 }).catch(() => undefined);
    await sleep(200);
    await gw.gateway.presence.settle();
    expect((await gw.call("GET", `/v1/devices/${e.id}`)).json.online).not.toBe(true);
    await clientE.subscribeAsync(`sms/out/${e.id}`, { qos: 1 });
    await waitOnline(gw, e.id);
  });

  it("a deleted device is disconnected at once and cannot come back", async () => {
    const c = await registerAttacker("device C");
    const clientC = await connectDevice(c);
    await clientC.subscribeAsync(`sms/out/${c.id}`, { qos: 1 });
    await waitOnline(gw, c.id);
    const gone = closed(clientC, 2000);
    expect((await gw.call("DELETE", `/v1/devices/${c.id}`)).status).toBe(204);
    await gone;
    expect((await gw.call("GET", `/v1/devices/${c.id}`)).status).toBe(404);
    const refusedBefore = await metricValue(gw, REFUSALS, { what: "connection" });
    expect((await tryConnect(tlsUrl, deviceOptions(c))).code).toBe(4);
    const again = await runProcess("mosquitto_sub", [...mosquitto(c), "-t", `sms/out/${c.id}`, "-C", "1", "-W", "3"], { timeoutMs: 8000 });
    expect(again.code).toBe(4);
    expect(await metricValue(gw, REFUSALS, { what: "connection" })).toBe(refusedBefore + 2);
  });

  it("a rotated token closes the old session; the old token is refused and the new one works", async () => {
    const d = await registerAttacker("device D");
    const clientD = await connectDevice(d);
    await clientD.subscribeAsync(`sms/out/${d.id}`, { qos: 1 });
    await waitOnline(gw, d.id);
    const gone = closed(clientD, 2000);
    const rotated = await gw.call("POST", `/v1/devices/${d.id}/token`);
    expect(rotated.status).toBe(200);
    expect(rotated.json.token).toMatch(/^og_dev_/);
    expect(rotated.json.token).not.toBe(d.token);
    await gone;

    const refusedBefore = await metricValue(gw, REFUSALS, { what: "connection" });
    expect((await tryConnect(tlsUrl, deviceOptions(d))).code).toBe(4);
    const old = await runProcess("mosquitto_sub", [...mosquitto(d), "-t", `sms/out/${d.id}`, "-C", "1", "-W", "3"], { timeoutMs: 8000 });
    expect(old.code).toBe(4);
    expect(await metricValue(gw, REFUSALS, { what: "connection" })).toBe(refusedBefore + 2);

    const fresh = { ...d, token: rotated.json.token as string };
    const renewed = await tryConnect(tlsUrl, deviceOptions(fresh));
    expect(renewed.code).toBe(0);
    clients.push(renewed.client!);
    const withMosquitto = await runProcess("mosquitto_pub", [...mosquitto(fresh), "-q", "1", "-t", `sms/device/${d.id}`, "-m", JSON.stringify({ online: true, battery: 42 })], {
      timeoutMs: 8000,
    });
    expect(withMosquitto.code).toBe(0);
  });
});
