/**
 * The fault suite for one node on the default store (SQLite in DATA_DIR):
 *   - kill -9 and restart: an OTP issued before verifies after, its delivery
 *     history is there, and jobs in flight are finished, each SMS once;
 *   - acks with `at` in every form a phone may send (ISO, epoch ms, epoch s,
 *     missing): all applied, not one cloud send.
 */
import { randomUUID } from "node:crypto";
import type { MqttClient } from "mqtt";
import { afterEach, describe, expect, it } from "vitest";
import { startPhone, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startFakeTwilio, twilioEnv } from "../support/fake-twilio.js";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { spawnGateway, type GatewayProcess } from "../support/gateway-process.js";
import { collect, connectClient, endClient, subscribeCodes } from "../support/mqtt-clients.js";
import { registerDevice, waitOnline } from "../support/phones.js";

const SID = "AC" + "5".repeat(32);
const TOKEN = "single-node-token";
const cleanups: (() => Promise<unknown>)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
}, 30_000);

describe("one node on the default store", () => {
  it("kill -9 and restart: an OTP verifies after, its history is kept, jobs in flight finish, each SMS once", async () => {
    const twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    cleanups.push(() => twilio.close());
    const node: GatewayProcess = await spawnGateway({
      name: "single",
      env: {
        ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
        FAILOVER_ORDER: "device,twilio",
        DEVICE_ACK_TIMEOUT_MS: "5000",
        DEVICE_SENT_TIMEOUT_MS: "20000",
        LEASE_GRACE_MS: "2000",
        SWEEP_INTERVAL_MS: "500",
      },
    });
    cleanups.push(() => node.kill("SIGKILL"));
    const device = await node.call("POST", "/v1/devices", { name: "drawer phone" });
    const phone: SimulatedPhone = await startPhone({
      url: `mqtts://127.0.0.1:${node.mqtts}`,
      deviceId: device.json.id,
      token: device.json.token,
      caFingerprint: device.json.caFingerprint,
      heartbeatSeconds: 3600,
      deliveredAfterMs: null,
      latencyMs: 1_500,
      reconnectMinMs: 200,
      reconnectMaxMs: 500,
    });
    cleanups.push(() => phone.close());
    await eventually(async () => (await node.call("GET", `/v1/devices/${phone.deviceId}`)).json?.online === true, 10_000, "phone online");
    const codeOf = (jobId: string) => codeIn(phone.sent.find((sms) => sms.id === jobId)!.body);
    const jobOf = async (otpId: string) => {
      const view = await node.call("GET", `/v1/otp/${otpId}`);
      return view.json;
    };

    // Before the crash: one OTP sent and verified, one on the phone and not sent yet.
    const done = await node.call("POST", "/v1/otp", { to: "+254720000001", userId: "before" });
    expect(done.status).toBe(202);
    await eventually(async () => (await jobOf(done.json.id)).delivery.state === "sent", 10_000, "first OTP sent");
    const doneJob = phone.sent[0]!.id;
    expect((await node.call("POST", "/v1/otp/verify", { id: done.json.id, code: codeOf(doneJob) })).json).toMatchObject({ valid: true });

    const inFlight = await node.call("POST", "/v1/otp", { to: "+254720000002", userId: "during" });
    expect(inFlight.status).toBe(202);
    await eventually(async () => phone.received.length === 2, 5_000, "the phone to hold the second OTP");
    const issuedBefore = await node.call("POST", "/v1/otp", { to: "+254720000003", userId: "issued" });
    const accepted = await node.call("POST", "/v1/messages", { to: "+254720000004", body: `accepted just before the crash ${randomUUID()}` });
    expect([issuedBefore.status, accepted.status]).toEqual([202, 202]);
    await node.kill("SIGKILL");
    expect(node.exit()?.signal).toBe("SIGKILL");

    // The phone sends while the node is down; its `sent` waits in its outbox.
    await eventually(async () => phone.sent.length >= 2, 10_000, "the phone to send while the node is down");
    await node.restart();

    await eventually(async () => (await jobOf(inFlight.json.id)).delivery.state === "sent", 20_000, "the in-flight OTP recorded sent");
    await eventually(async () => (await jobOf(issuedBefore.json.id)).delivery.state === "sent", 20_000, "the OTP issued before the crash sent");
    // If the crash came between its publish and the phone's PUBACK, the restarted node cannot know
    // whether the phone has it: it waits for the attempt's deadline (5 s + 20 s + 1 s), then fails over.
    await eventually(async () => (await node.call("GET", `/v1/messages/${accepted.json.id}`)).json.status === "sent", 45_000, "the accepted message sent");

    // The first OTP kept its history and its approval.
    const first = await jobOf(done.json.id);
    expect(first.status).toBe("approved");
    expect(first.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${phone.deviceId}`, state: "sent" })]);
    // The in-flight one verifies after the restart, with the code the phone sent during the outage.
    const second = await jobOf(inFlight.json.id);
    expect(second.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${phone.deviceId}`, state: "sent" })]);
    const secondJob = phone.sent[1]!.id;
    expect((await node.call("POST", "/v1/otp/verify", { id: inFlight.json.id, code: codeOf(secondJob) })).json).toMatchObject({ valid: true, status: "approved" });
    // Each SMS left exactly once: four jobs, four SMS, by the phone or (at most) Twilio.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const ids = phone.sent.map((sms) => sms.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length + twilio.received.length).toBe(4);
  }, 120_000);

  it("acks with `at` as ISO, epoch ms, epoch s or missing are all applied: no job fails over to the cloud", async () => {
    const twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    cleanups.push(() => twilio.close());
    const gw: TestGateway = await startGateway({
      env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), FAILOVER_ORDER: "device,twilio", DEVICE_ACK_TIMEOUT_MS: "2000", DEVICE_SENT_TIMEOUT_MS: "3000" },
    });
    cleanups.push(() => gw.close());
    const device = await registerDevice(gw, { name: "clock-less phone" });
    const client: MqttClient = await connectClient(`mqtts://127.0.0.1:${gw.mqtts}`, {
      ca: gw.gateway.tls.caPem,
      clientId: device.id,
      username: device.id,
      password: device.token,
      clean: false,
    });
    cleanups.push(() => endClient(client));
    const jobs = collect(client);
    expect(await subscribeCodes(client, `sms/out/${device.id}`)).toEqual([1]);
    await waitOnline(gw, device.id);

    const now = Date.now();
    const forms: [string, unknown][] = [
      ["ISO", new Date(now).toISOString()],
      ["epoch ms", now],
      ["epoch s", Math.floor(now / 1000)],
      ["missing", undefined],
    ];
    const ids: string[] = [];
    for (const [form, at] of forms) {
      const created = await gw.call("POST", "/v1/messages", { to: "+254730000001", body: `at as ${form}` });
      const id = created.json.id as string;
      ids.push(id);
      await eventually(async () => jobs.some((j) => j.payload.includes(id)), 3_000, `the ${form} job to arrive`);
      await client.publishAsync(`sms/ack/${device.id}`, JSON.stringify({ id, status: "sent", ...(at === undefined ? {} : { at }) }), { qos: 1 });
    }
    for (const id of ids) await eventually(async () => (await gw.call("GET", `/v1/messages/${id}`)).json.status === "sent", 3_000, `job ${id} sent`);
    // Past every deadline: nothing went to Twilio.
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    for (const id of ids) {
      const view = (await gw.call("GET", `/v1/messages/${id}`)).json;
      expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${device.id}`, state: "sent" })]);
    }
    expect(twilio.received).toHaveLength(0);
  }, 60_000);
});
