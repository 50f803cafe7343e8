/**
 * MQTT publishers (systems that hand SMS jobs to the gateway over MQTT) on the
 * plain loopback listener, with the `mqtt` package and mosquitto_pub:
 * `sms/send` is routed like `POST /v1/messages`; a job published straight to
 * `sms/out/<deviceId>` reaches that phone and is tracked; anything else is
 * refused, and a deleted publisher is cut off.
 */
import { randomUUID } from "node:crypto";
import type { MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { maskPhone } from "../../api/phone/phone-number.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import {
  ackFor,
  closed,
  connectClient,
  endClient,
  jobFor,
  metricValue,
  mosquittoPlain,
  runProcess,
  sleep,
  subscribeCodes,
  tryConnect,
} from "../support/mqtt-clients.js";
import { connectPhone, registerDevice, waitOnline, type RegisteredDevice } from "../support/phones.js";

const SID = `AC${"b7".repeat(16)}`;
const TOKEN = "publishers-token";
const INTAKE = "otpgate_mqtt_intake_total";
const REFUSALS = "otpgate_mqtt_refusals_total";
const SUBACK_REFUSED = 0x80;
const MOSQ_ERR_CONN_LOST = 7;

interface Publisher {
  id: string;
  username: string;
  password: string;
}

describe.each(["sqlite", "redis"] as const)("MQTT publishers (%s store)", (storeKind) => {
  let gw: TestGateway;
  let twilio: FakeTwilio;
  let plainUrl: string;
  let publisher: Publisher;
  const clients: MqttClient[] = [];
  const phones: SimulatedPhone[] = [];
  let number = 254722000700;
  const nextNumber = () => `+${++number}`;

  const createPublisher = async (name: string): Promise<Publisher> => {
    const created = await gw.call("POST", "/v1/publishers", { name });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ id: expect.any(String), name, mqtt: { username: name, password: expect.stringMatching(/^og_pub_/) } });
    return { id: created.json.id, username: created.json.mqtt.username, password: created.json.mqtt.password };
  };
  const connectPublisher = async (who: Publisher, clientId = `${who.username}-${randomUUID().slice(0, 8)}`) => {
    const client = await connectClient(plainUrl, { clientId, username: who.username, password: who.password });
    clients.push(client);
    return client;
  };
  const mosquittoPub = (who: Publisher, topic: string, message: string, clientId?: string) =>
    runProcess("mosquitto_pub", [...mosquittoPlain(gw, { username: who.username, password: who.password, ...(clientId ? { clientId } : {}) }), "-q", "1", "-t", topic, "-m", message], {
      timeoutMs: 8000,
    });
  const twilioGot = (body: string) => twilio.received.filter((m) => m.body === body);
  const view = (id: string) => gw.call("GET", `/v1/messages/${id}`);
  const sentView = (id: string, route: string) =>
    eventually(async () => {
      const v = await view(id);
      return v.status === 200 && v.json.status === "sent" && v.json.delivery.route === route && v.json;
    }, 8000, `message ${id} sent via ${route}`);
  const phoneFor = async (name: string, options: Parameters<typeof connectPhone>[2] = {}): Promise<[RegisteredDevice, SimulatedPhone]> => {
    const device = await registerDevice(gw, { name });
    const phone = await connectPhone(gw, device, options);
    phones.push(phone);
    await waitOnline(gw, device.id);
    return [device, phone];
  };

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({
      store: storeKind,
      env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), FAILOVER_ORDER: "twilio", DEVICE_ACK_TIMEOUT_MS: "1000", DEVICE_SENT_TIMEOUT_MS: "1500" },
    });
    plainUrl = `mqtt://127.0.0.1:${gw.mqtt}`;
    publisher = await createPublisher("billing");
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map(endClient));
    await Promise.all(phones.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("POST /v1/publishers gives credentials once; a second publisher with the same name is a conflict", async () => {
    const again = await gw.call("POST", "/v1/publishers", { name: "billing" });
    expect(again.status).toBe(409);
    const listed = await gw.call("GET", "/v1/publishers");
    expect(listed.json.publishers).toEqual([expect.objectContaining({ id: publisher.id, name: "billing" })]);
    expect(JSON.stringify(listed.json)).not.toContain(publisher.password);
  });

  it("sms/send from the mqtt package is routed like POST /v1/messages: normalised, sent through Twilio, trackable by its id", async () => {
    const accepted = await metricValue(gw, INTAKE, { kind: "send", outcome: "accepted" });
    const client = await connectPublisher(publisher);

    // Without an id: the gateway makes one; the message still goes out.
    const anonymousBody = `no id ${randomUUID()}`;
    const anonymousTo = nextNumber();
    await client.publishAsync("sms/send", JSON.stringify({ to: anonymousTo, body: anonymousBody }), { qos: 1 });
    await eventually(async () => twilioGot(anonymousBody).length === 1, 5000, "Twilio to get the message without an id");
    expect(twilioGot(anonymousBody)[0]!.to).toBe(anonymousTo);

    // With the caller's id, and a number written the way people write them.
    const id = `billing-${randomUUID()}`;
    const body = `with id ${randomUUID()}`;
    const to = nextNumber();
    const spaced = `${to.slice(0, 4)} ${to.slice(4, 7)} ${to.slice(7)}`;
    await client.publishAsync("sms/send", JSON.stringify({ id, to: spaced, body }), { qos: 1 });
    const viaMqtt = await sentView(id, "twilio");
    // The view shows the number masked; Twilio got it normalised, in full.
    expect(viaMqtt.to).toBe(maskPhone(to));
    expect(twilioGot(body)).toEqual([expect.objectContaining({ to, body })]);

    // The same shape of record as a message posted over HTTP.
    const http = await gw.call("POST", "/v1/messages", { to: nextNumber(), body: `http ${randomUUID()}` });
    const viaHttp = await sentView(http.json.id, "twilio");
    const outline = (v: { status: string; delivery: { attempts: Array<{ route: string; state: string }> } }) => ({
      status: v.status,
      attempts: v.delivery.attempts.map((a) => `${a.route}:${a.state}`),
    });
    expect(outline(viaMqtt)).toEqual(outline(viaHttp));
    expect(viaMqtt.delivery.attempts[0].providerMessageId).toMatch(/^SM/);

    // The id is the caller's: a second sms/send with it is refused, not sent twice.
    const refused = await metricValue(gw, INTAKE, { kind: "send", outcome: "refused" });
    await client.publishAsync("sms/send", JSON.stringify({ id, to, body: `${body} again` }), { qos: 1 });
    await eventually(async () => (await metricValue(gw, INTAKE, { kind: "send", outcome: "refused" })) === refused + 1, 3000, "the repeat to be refused");
    expect(twilioGot(`${body} again`)).toEqual([]);

    expect(await metricValue(gw, INTAKE, { kind: "send", outcome: "accepted" })).toBe(accepted + 2);
    expect(client.connected).toBe(true);
  });

  it("sms/send from mosquitto_pub is routed the same way", async () => {
    const anonymousBody = `mosquitto no id ${randomUUID()}`;
    const anonymousTo = nextNumber();
    const first = await mosquittoPub(publisher, "sms/send", JSON.stringify({ to: anonymousTo, body: anonymousBody }));
    expect(first.code, first.stderr).toBe(0);
    await eventually(async () => twilioGot(anonymousBody).length === 1, 5000, "Twilio to get the mosquitto message");

    const id = `mosq-${randomUUID()}`;
    const body = `mosquitto with id ${randomUUID()}`;
    const to = nextNumber();
    const second = await mosquittoPub(publisher, "sms/send", JSON.stringify({ id, to, body }));
    expect(second.code, second.stderr).toBe(0);
    const sent = await sentView(id, "twilio");
    expect(sent.to).toBe(maskPhone(to));
    expect(twilioGot(body)).toEqual([expect.objectContaining({ to, body })]);
  });

  it("an invalid number or a malformed sms/send is dropped and counted; the publisher stays connected", async () => {
    const invalid = await metricValue(gw, INTAKE, { kind: "send", outcome: "invalid" });
    const refused = await metricValue(gw, REFUSALS, { what: "sms/send" });
    const twilioBefore = twilio.received.length;
    const client = await connectPublisher(publisher);

    // Valid JSON, but not a phone number: the intake refuses it.
    await client.publishAsync("sms/send", JSON.stringify({ to: "12345", body: "to nowhere" }), { qos: 1 });
    await client.publishAsync("sms/send", JSON.stringify({ to: "+1 000 000", body: "to nowhere" }), { qos: 1 });
    const badNumber = await mosquittoPub(publisher, "sms/send", JSON.stringify({ to: "not a number", body: "to nowhere" }));
    expect(badNumber.code).toBe(0); // MQTT 3.1.1 has no way to refuse a publish; it is dropped after the PUBACK
    await eventually(async () => (await metricValue(gw, INTAKE, { kind: "send", outcome: "invalid" })) === invalid + 3, 3000, "3 invalid numbers counted");

    // Not JSON, or the wrong shape: the broker refuses it before the intake.
    const malformed = ["{not json", "", "null", "[]", JSON.stringify({ to: 254722000000, body: "number as a number" }), JSON.stringify({ to: nextNumber() }), JSON.stringify({ to: nextNumber(), body: "" })];
    for (const payload of malformed) await client.publishAsync("sms/send", payload, { qos: 1 });
    const fromMosquitto = await mosquittoPub(publisher, "sms/send", "{\"to\":");
    expect(fromMosquitto.code).toBe(0);
    await eventually(
      async () => (await metricValue(gw, REFUSALS, { what: "sms/send" })) === refused + malformed.length + 1,
      3000,
      "malformed sms/send refusals counted",
    );

    expect(client.connected).toBe(true);
    await sleep(200);
    expect(twilio.received.length).toBe(twilioBefore);
    expect(await metricValue(gw, INTAKE, { kind: "send", outcome: "invalid" })).toBe(invalid + 3);

    // Still connected and still heard.
    const body = `after the bad ones ${randomUUID()}`;
    await client.publishAsync("sms/send", JSON.stringify({ to: nextNumber(), body }), { qos: 1 });
    await eventually(async () => twilioGot(body).length === 1, 5000, "the next good message");
    expect(client.connected).toBe(true);
  });

  it("a job published to sms/out/<deviceId> reaches that phone and is tracked through its acks", async () => {
    const [device, phone] = await phoneFor("direct target", { latencyMs: 400 });
    const tracked = await metricValue(gw, INTAKE, { kind: "direct", outcome: "tracked" });
    const client = await connectPublisher(publisher);

    const job = jobFor(`direct-${randomUUID()}`, nextNumber(), `direct ${randomUUID()}`);
    await client.publishAsync(`sms/out/${device.id}`, JSON.stringify(job), { qos: 1 });
    // Tracked before the phone sends it (it waits latencyMs): on the phone's route, not yet sent.
    const dispatched = await eventually(async () => {
      const v = await view(job.id);
      return v.status === 200 && v.json;
    }, 3000, "the direct job to be tracked");
    expect(dispatched.status).toBe("dispatched");
    expect(dispatched.delivery.route).toBe(`device:${device.id}`);
    const sent = await sentView(job.id, `device:${device.id}`);
    expect(sent.to).toBe(maskPhone(job.to));
    expect(sent.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${device.id}`, state: "sent" })]);
    expect(phone.sent.filter((s) => s.id === job.id)).toEqual([expect.objectContaining({ to: job.to, body: job.body })]);

    // mosquitto_pub, the same.
    const second = jobFor(`direct-${randomUUID()}`, nextNumber(), `direct by mosquitto ${randomUUID()}`);
    const result = await mosquittoPub(publisher, `sms/out/${device.id}`, JSON.stringify(second));
    expect(result.code, result.stderr).toBe(0);
    await sentView(second.id, `device:${device.id}`);
    expect(phone.sent.map((s) => s.id)).toEqual([job.id, second.id]);

    expect(await metricValue(gw, INTAKE, { kind: "direct", outcome: "tracked" })).toBe(tracked + 2);
    expect(twilioGot(job.body)).toEqual([]);
    // Counted against the phone's per-minute budget like any job it sends.
    expect((await gw.call("GET", `/v1/devices/${device.id}`)).json.sentLastMinute).toBe(2);
  });

  it("a publisher cannot subscribe to anything, nor publish acks or device status", async () => {
    const [device, phone] = await phoneFor("not for publishers", { silent: true });
    // A job on the phone's route that only the phone may ack.
    const job = jobFor(`direct-${randomUUID()}`, nextNumber(), `tracked ${randomUUID()}`);
    const setup = await connectPublisher(publisher);
    await setup.publishAsync(`sms/out/${device.id}`, JSON.stringify(job), { qos: 1 });
    await eventually(async () => phone.received.includes(job.id) && (await view(job.id)).status === 200, 3000, "the tracked job");
    const before = (await view(job.id)).json;

    const subscriptionsRefused = await metricValue(gw, REFUSALS, { what: "subscription" });
    const client = await connectPublisher(publisher);
    const received: string[] = [];
    client.on("message", (topic) => received.push(topic));
    for (const topic of ["sms/send", `sms/out/${device.id}`, `sms/ack/${device.id}`, `sms/device/${device.id}`, "sms/#", "#"]) {
      expect(await subscribeCodes(client, topic), topic).toEqual([SUBACK_REFUSED]);
    }
    expect(client.connected).toBe(true);
    const sub = await runProcess("mosquitto_sub", [...mosquittoPlain(gw, { username: publisher.username, password: publisher.password }), "-t", "#", "-C", "1", "-W", "3"], {
      timeoutMs: 8000,
    });
    expect(sub.stderr).toContain("All subscription requests were denied");
    expect(await metricValue(gw, REFUSALS, { what: "subscription" })).toBe(subscriptionsRefused + 7);
    await setup.publishAsync(`sms/out/${device.id}`, JSON.stringify(jobFor(randomUUID(), nextNumber(), "not for the publisher")), { qos: 1 });

    const publishesRefused = await metricValue(gw, REFUSALS, { what: "publish" });
    for (const [topic, payload] of [
      ["sms/ack/x", ackFor(job.id, "sent")],
      [`sms/ack/${device.id}`, ackFor(job.id, "sent")],
      [`sms/device/${device.id}`, JSON.stringify({ online: false })],
    ] as const) {
      const attacker = await connectPublisher(publisher);
      const gone = closed(attacker);
      attacker.publish(topic, payload, { qos: 1 });
      await gone;
    }
    const viaMosquitto = await mosquittoPub(publisher, "sms/ack/x", ackFor(job.id, "sent"));
    expect(viaMosquitto.code).toBe(MOSQ_ERR_CONN_LOST);
    expect(await metricValue(gw, REFUSALS, { what: "publish" })).toBe(publishesRefused + 4);

    const after = (await view(job.id)).json;
    expect(after.status).toBe("dispatched");
    expect(after.updatedAt).toBe(before.updatedAt);
    expect((await gw.call("GET", `/v1/devices/${device.id}`)).json.online).toBe(true);
    expect(received).toEqual([]);
  });

  it("a publisher cannot use a phone's client id: no session takeover, no reading the phone's queued jobs", async () => {
    const [device, phone] = await phoneFor("session owner");
    const refused = await metricValue(gw, REFUSALS, { what: "connection" });
    // While the phone is connected: taking its client id would close the phone.
    expect((await tryConnect(plainUrl, { clientId: device.id, username: publisher.username, password: publisher.password, clean: false })).code).toBe(5);
    const viaMosquitto = await runProcess(
      "mosquitto_sub",
      [...mosquittoPlain(gw, { clientId: device.id, username: publisher.username, password: publisher.password }), "-c", "-q", "1", "-t", "#", "-C", "1", "-W", "3"],
      { timeoutMs: 8000 },
    );
    expect(viaMosquitto.code).toBe(5);
    await sleep(100);
    expect(phone.connected).toBe(true);

    // While the phone is away, its session holds the jobs queued for it.
    await phone.disconnect();
    const job = jobFor(`queued-${randomUUID()}`, nextNumber(), `queued for the phone ${randomUUID()}`);
    const client = await connectPublisher(publisher);
    await client.publishAsync(`sms/out/${device.id}`, JSON.stringify(job), { qos: 1 });
    const thief = await tryConnect(plainUrl, { clientId: device.id, username: publisher.username, password: publisher.password, clean: false });
    const stolen: string[] = [];
    thief.client?.on("message", (_topic, payload) => stolen.push(payload.toString()));
    if (thief.client) clients.push(thief.client);
    await sleep(300);
    expect(thief.code).toBe(5);
    expect(stolen).toEqual([]);
    expect(await metricValue(gw, REFUSALS, { what: "connection" })).toBe(refused + 3);

    // The job is still the phone's.
    await phone.reconnect();
    await phone.waitFor(() => phone.sent.some((s) => s.id === job.id), 5000);
    await sentView(job.id, `device:${device.id}`);
  });

  it("DELETE /v1/publishers/:id closes its connections at once; its token stops working", async () => {
    const doomed = await createPublisher("doomed");
    const one = await connectPublisher(doomed);
    const two = await connectPublisher(doomed);
    const bystander = await connectPublisher(publisher);
    const gone = Promise.all([closed(one, 2000), closed(two, 2000)]);
    expect((await gw.call("DELETE", `/v1/publishers/${doomed.id}`)).status).toBe(204);
    await gone;
    expect((await gw.call("GET", "/v1/publishers")).json.publishers.map((p: { name: string }) => p.name)).not.toContain("doomed");
    expect((await tryConnect(plainUrl, { clientId: "doomed-again", username: doomed.username, password: doomed.password })).code).toBe(4);
    const viaMosquitto = await mosquittoPub(doomed, "sms/send", JSON.stringify({ to: nextNumber(), body: "from the grave" }));
    expect(viaMosquitto.code).toBe(4);
    expect(twilioGot("from the grave")).toEqual([]);
    await sleep(100);
    expect(bystander.connected).toBe(true);
    expect((await gw.call("DELETE", `/v1/publishers/${doomed.id}`)).status).toBe(404);
  });
});
