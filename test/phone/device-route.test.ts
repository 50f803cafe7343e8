/**
 * The phone channel end to end over real TLS: API → dispatcher → broker →
 * simulated phone (the same behaviour as the app) → acks → job state.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectPhone, registerDevice, waitOnline } from "../support/phones.js";

const SID = `AC${"d3".repeat(16)}`;
const TOKEN = "device-route-token";

describe.each(["sqlite", "redis"] as const)("device route (%s store)", (storeKind) => {
  let gw: TestGateway;
  let twilio: FakeTwilio;
  const phones: SimulatedPhone[] = [];
  let number = 254722000100;
  const nextNumber = () => `+${++number}`;

  const settled = (route: string) =>
    eventually(async () => {
      const view = await gw.call("GET", route);
      const state = view.json.delivery?.state;
      return ["sent", "delivered", "failed", "expired"].includes(state) && view.json;
    }, 10_000, `${route} to settle`);

  /** Every SMS that left anywhere (phones and Twilio) for one number. */
  const smsTo = (to: string) => phones.flatMap((p) => p.sent).filter((s) => s.to === to).length + twilio.received.filter((m) => m.to === to).length;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({
      store: storeKind,
      env: {
        ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
        FAILOVER_ORDER: "device,twilio",
        DEVICE_ACK_TIMEOUT_MS: "1000",
        DEVICE_SENT_TIMEOUT_MS: "1500",
      },
    });
  });
  afterEach(async () => {
    await Promise.all(phones.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("sends an OTP through a phone over TLS; the code verifies", async () => {
    const device = await registerDevice(gw, { name: "drawer 1" });
    expect(device.mqttUrl).toMatch(/^mqtts:\/\//);
    const phone = await connectPhone(gw, device, { deliveredAfterMs: 50 });
    phones.push(phone);
    await waitOnline(gw, device.id);

    const to = nextNumber();
    const created = await gw.call("POST", "/v1/otp", { to, userId: `u${to}` });
    expect(created.status).toBe(202);
    await phone.waitFor(() => phone.sent.some((s) => s.to === to));
    const view = await eventually(async () => {
      const v = (await gw.call("GET", `/v1/otp/${created.json.id}`)).json;
      return v.delivery.state === "delivered" && v;
    }, 5000, "delivered");
    expect(view.delivery.route).toBe(`device:${device.id}`);
    expect(view.delivery.attempts).toEqual([
      expect.objectContaining({ route: `device:${device.id}`, state: "delivered", receivedAt: expect.any(String) }),
    ]);
    expect(phone.acks.filter((a) => a.id === phone.sent[0]!.id).map((a) => a.status)).toEqual(["received", "sent", "delivered"]);

    const code = codeIn(phone.sent.find((s) => s.to === to)!.body);
    expect((await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code })).json).toMatchObject({ valid: true, status: "approved" });
    expect(smsTo(to)).toBe(1);
  });

  it("shows presence: online with battery and app, then offline by the will when the phone dies", async () => {
    const device = await registerDevice(gw, { name: "presence" });
    const phone = await connectPhone(gw, device, { battery: 57 });
    phones.push(phone);
    const online = await eventually(async () => {
      const view = (await gw.call("GET", `/v1/devices/${device.id}`)).json;
      return view.online && view.presence?.battery === 57 && view;
    }, 5000, "presence with battery");
    expect(online.presence.app).toMatch(/^otpgate-sim\//);
    phone.kill();
    await waitOnline(gw, device.id, false);
  });

  it("fails over at once when no phone is online", async () => {
    const device = await registerDevice(gw, { name: "never connects" });
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/messages", { to, body: "no phone" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.delivery.route).toBe("twilio");
    expect(view.delivery.attempts[0]).toMatchObject({ route: "device", state: "failed", error: expect.stringMatching(/^device:offline/) });
    expect(smsTo(to)).toBe(1);
    expect(device.id).toBeTruthy();
  });

  it("fails over after the deadline when the phone is connected but silent, and takes the job back", async () => {
    const device = await registerDevice(gw, { name: "silent" });
    const phone = await connectPhone(gw, device, { silent: true });
    phones.push(phone);
    await waitOnline(gw, device.id);
    const seen: string[] = [];
    const watch = (packet: { payload: Buffer | string }, done: () => void) => {
      seen.push(String(packet.payload));
      done();
    };
    await new Promise<void>((resolve) => gw.gateway.broker.aedes.subscribe(`sms/out/${device.id}`, watch, resolve));

    const to = nextNumber();
    const started = Date.now();
    const created = await gw.call("POST", "/v1/messages", { to, body: "silent phone" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(view.delivery.route).toBe("twilio");
    expect(view.delivery.attempts[0]).toMatchObject({ route: `device:${device.id}`, state: "failed", error: expect.stringMatching(/^device:no_sent_ack/) });
    await eventually(async () => seen.some((p) => JSON.parse(p).cancel === true), 3000, "the cancel");
    expect(seen.map((p) => JSON.parse(p))).toEqual([
      expect.objectContaining({ id: created.json.id, to, body: "silent phone", expiresAt: expect.any(String) }),
      { id: created.json.id, cancel: true },
    ]);
    expect(phone.sent).toHaveLength(0);
    expect(smsTo(to)).toBe(1);
  });

  it("fails over when the phone acks failed", async () => {
    const device = await registerDevice(gw, { name: "broken modem" });
    const phone = await connectPhone(gw, device, { failureRate: 1 });
    phones.push(phone);
    await waitOnline(gw, device.id);
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/messages", { to, body: "phone fails" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.delivery.attempts.map((a: { route: string; state: string }) => `${a.route}:${a.state}`)).toEqual([`device:${device.id}:failed`, "twilio:sent"]);
    expect(view.delivery.attempts[0].error).toMatch(/RESULT_ERROR_GENERIC_FAILURE/);
    expect(smsTo(to)).toBe(1);
  });

  it("a phone that drops mid-job gets the job on reconnect while the job still waits for it", async () => {
    const device = await registerDevice(gw, { name: "flaky" });
    const phone = await connectPhone(gw, device);
    phones.push(phone);
    await waitOnline(gw, device.id);
    phone.kill();
    // The gateway has not noticed yet (no will processed, presence still fresh): the job goes to this phone and waits in its session.
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/messages", { to, body: "queued while away" });
    await new Promise((resolve) => setTimeout(resolve, 200));
    await phone.reconnect();
    const view = await settled(`/v1/messages/${created.json.id}`);
    if (view.delivery.route === "twilio") {
      // The will won the race: the phone was offline when the job was routed; it must not get the job later.
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(phone.sent.filter((s) => s.to === to)).toHaveLength(0);
    } else {
      expect(view.delivery.route).toBe(`device:${device.id}`);
      expect(phone.sent.filter((s) => s.to === to)).toHaveLength(1);
    }
    expect(smsTo(to)).toBe(1);
  });

  it("a phone that comes back after the job failed over never sends it", async () => {
    const device = await registerDevice(gw, { name: "gone too long" });
    const phone = await connectPhone(gw, device);
    phones.push(phone);
    await waitOnline(gw, device.id);
    // Cut the phone off without the broker noticing at once is not possible with a clean kill, so
    // hold its acks: a silent reconnect later proves the queued job was taken back.
    phone.kill();
    const to = nextNumber();
    await gw.gateway.store.setPresence(device.id, { online: true, session: "stale", since: new Date().toISOString(), seenAt: new Date().toISOString() });
    const created = await gw.call("POST", "/v1/messages", { to, body: "too late for the phone" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.delivery.attempts.map((a: { route: string; state: string }) => `${a.route}:${a.state}`)).toEqual([`device:${device.id}:failed`, "twilio:sent"]);
    await phone.reconnect();
    await new Promise((resolve) => setTimeout(resolve, 800));
    expect(phone.sent.filter((s) => s.to === to)).toHaveLength(0);
    expect(smsTo(to)).toBe(1);
  });
});
