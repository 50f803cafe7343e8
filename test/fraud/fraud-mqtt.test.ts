/**
 * MQTT publishers go through the same fraud checks as HTTP callers. There is
 * no reply to a publish, so a refused `sms/send` is counted and logged; a
 * refused job sent straight to `sms/out/<id>` is already on its way, so it is
 * recorded as failed (with the refusal's code) and taken back from the phone.
 */
import { randomUUID } from "node:crypto";
import type { MqttClient } from "mqtt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectClient, endClient, jobFor, metricValue } from "../support/mqtt-clients.js";
import { registerDevice } from "../support/phones.js";

const accountSid = `AC${"a9".repeat(16)}`;
const authToken = "fraud-mqtt-token";

describe("fraud guard on MQTT publishers", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  let client: MqttClient;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ env: { ...twilioEnv(twilio, { accountSid, authToken }), FRAUD_NUMBER_MAX_PER_HOUR: "1" } });
    const created = await gw.call("POST", "/v1/publishers", { name: "billing" });
    client = await connectClient(`mqtt://127.0.0.1:${gw.mqtt}`, { clientId: `billing-${randomUUID().slice(0, 8)}`, username: created.json.mqtt.username, password: created.json.mqtt.password });
  });
  afterAll(async () => {
    await endClient(client);
    await gw?.close();
    await twilio?.close();
  });

  it("a refused sms/send is counted, not sent; the per-number quota applies too", async () => {
    await client.publishAsync("sms/send", JSON.stringify({ to: "+19002345678", body: "premium" }), { qos: 1 });
    await eventually(async () => (await metricValue(gw, "otpgate_mqtt_intake_total", { kind: "send", outcome: "fraud_refused" })) === 1, 5000, "the refusal counted");
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "premium_rate_number", kind: "message" })).toBe(1);

    for (const body of ["first", "second"]) await client.publishAsync("sms/send", JSON.stringify({ to: "+254711000951", body }), { qos: 1 });
    await eventually(async () => (await metricValue(gw, "otpgate_mqtt_intake_total", { kind: "send", outcome: "fraud_refused" })) === 2, 5000, "the quota refusal counted");
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "number_quota_exceeded" })).toBe(1);
    await eventually(async () => twilio.received.some((m) => m.body === "first"), 5000, "the first message sent");
    expect(twilio.received.filter((m) => m.to === "+19002345678" || m.body === "second")).toEqual([]);
  });

  it("a refused job published straight to a phone is recorded as failed with the refusal's code", async () => {
    const device = await registerDevice(gw, { name: "drawer" });
    const id = `pub-${randomUUID()}`;
    await client.publishAsync(`sms/out/${device.id}`, JSON.stringify(jobFor(id, "+881612345678", "satellite")), { qos: 1 });
    const view = await eventually(async () => {
      const reply = await gw.call("GET", `/v1/messages/${id}`);
      return reply.status === 200 && reply.json;
    }, 5000, "the refused job recorded");
    expect(view).toMatchObject({ status: "failed", delivery: { attempts: [{ route: `device:${device.id}`, state: "failed", error: "fraud:satellite_number" }] } });
    expect(await metricValue(gw, "otpgate_mqtt_intake_total", { kind: "direct", outcome: "fraud_refused" })).toBe(1);
  });
});
