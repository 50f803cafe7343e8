import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeAfricasTalking, type FakeAfricasTalking } from "../support/fake-africastalking.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

const SID = "AC0123456789abcdef0123456789abcdef";
const TOKEN = "twilio-test-token";
const serverError = { status: 500, body: { code: 20500, message: "Internal Server Error", status: 500 } };

describe.each(["sqlite", "redis"] as const)("failover among cloud providers (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let at: FakeAfricasTalking;
  let smtp: SmtpSink;
  let gw: TestGateway;
  let number = 254711000100;

  const nextNumber = () => `+${++number}`;
  const settled = (route: string) =>
    eventually(async () => {
      const view = await gw.call("GET", route);
      return ["sent", "delivered", "failed", "expired"].includes(view.json.delivery?.state ?? view.json.status) && view.json;
    }, 8000, `${route} to settle`);

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    at = await startFakeAfricasTalking({ username: "otpgate", apiKey: "at-key" });
    smtp = await startSmtpSink();
    gw = await startGateway({
      store: storeKind,
      env: {
        ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
        FAILOVER_ORDER: "twilio,africastalking,email",
        AT_USERNAME: "otpgate",
        AT_API_KEY: "at-key",
        AT_FROM: "OTPGATE",
        AT_API_BASE: at.baseUrl,
        SMTP_URL: smtp.url,
        EMAIL_FROM: "codes@otpgate.test",
        PROVIDER_TIMEOUT_MS: "500",
        // The breaker has its own test below; here every job must reach every route.
        PROVIDER_BREAKER_MIN_CALLS: "1000",
      },
    });
  });
  afterEach(() => {
    twilio.respondWith(undefined);
    at.respondWith(undefined);
    twilio.delayMs = 0;
    at.delayMs = 0;
  });
  afterAll(async () => {
    await gw?.close();
    await Promise.all([twilio?.close(), at?.close(), smtp?.close()]);
  });

  it("sends through the first route when it works, and the code verifies", async () => {
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/otp", { to, userId: `u-${to}` });
    expect(created.status).toBe(202);
    const view = await settled(`/v1/otp/${created.json.id}`);
    expect(view.delivery).toMatchObject({ state: "sent", route: "twilio" });
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: "twilio", state: "sent", providerMessageId: expect.stringMatching(/^SM/) })]);
    const sms = twilio.received.filter((m) => m.to === to);
    expect(sms).toHaveLength(1);
    expect(sms[0]!.from).toBe("+15005550006");
    expect(at.received.filter((m) => m.to === to)).toHaveLength(0);
    const verified = await gw.call("POST", "/v1/otp/verify", { to, code: codeIn(sms[0]!.body) });
    expect(verified.json).toEqual({ valid: true, status: "approved", attemptsLeft: 4 });
  });

  it("moves to Africa's Talking when Twilio answers 500, and records both attempts", async () => {
    twilio.respondWith(() => serverError);
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/messages", { to, body: "Your parcel is ready" });
    expect(created.status).toBe(202);
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.status).toBe("sent");
    expect(view.delivery.route).toBe("africastalking");
    expect(view.delivery.attempts).toEqual([
      expect.objectContaining({ route: "twilio", state: "failed", error: expect.stringContaining("twilio:") }),
      expect.objectContaining({ route: "africastalking", state: "sent", providerMessageId: expect.any(String) }),
    ]);
    expect(at.received.filter((m) => m.to === to)).toEqual([expect.objectContaining({ message: "Your parcel is ready", from: "OTPGATE" })]);
    expect(twilio.received.filter((m) => m.to === to)).toHaveLength(0);
  });

  it("accepts the older {cell, message} shape", async () => {
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/messages", { cell: to, message: "legacy shape" });
    expect(created.status).toBe(202);
    await settled(`/v1/messages/${created.json.id}`);
    expect(twilio.received.filter((m) => m.to === to).map((m) => m.body)).toEqual(["legacy shape"]);
  });

  it("moves on when a provider does not answer in time", async () => {
    twilio.delayMs = 2_000;
    const to = nextNumber();
    const started = Date.now();
    const created = await gw.call("POST", "/v1/messages", { to, body: "slow route" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(Date.now() - started).toBeLessThan(1_900);
    expect(view.delivery.attempts.map((a: { route: string; state: string; error?: string }) => [a.route, a.state, a.error?.split(":")[0]])).toEqual([
      ["twilio", "failed", "timeout"],
      ["africastalking", "sent", undefined],
    ]);
  });

  it("fails over on a permanent error too, since another provider may still reach the number", async () => {
    twilio.respondWith(() => ({ status: 400, body: { code: 21610, message: "Attempt to send to unsubscribed recipient", status: 400 } }));
    const created = await gw.call("POST", "/v1/messages", { to: nextNumber(), body: "blocked at twilio" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.delivery.attempts[0]).toMatchObject({ route: "twilio", state: "failed", error: expect.stringContaining("twilio:21610") });
    expect(view.delivery.route).toBe("africastalking");
  });

  it("falls back to email for an OTP on channel auto when every SMS route fails", async () => {
    twilio.respondWith(() => serverError);
    at.respondWith(() => ({ status: 500, body: "Internal Server Error" }));
    const to = nextNumber();
    const created = await gw.call("POST", "/v1/otp", { to, email: `user${to.slice(1)}@example.com` });
    expect(created.json.channel).toBe("sms");
    const view = await settled(`/v1/otp/${created.json.id}`);
    expect(view.delivery.attempts.map((a: { route: string; state: string }) => `${a.route}:${a.state}`)).toEqual([
      "twilio:failed",
      "africastalking:failed",
      "email:sent",
    ]);
    const mail = await smtp.waitForMessage((m) => m.to.includes(`user${to.slice(1)}@example.com`));
    expect((await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code: codeIn(mail.text) })).json.valid).toBe(true);
  });

  it("marks the job failed when no route delivers, and a plain SMS never goes to email", async () => {
    twilio.respondWith(() => serverError);
    at.respondWith(() => ({ status: 500, body: "Internal Server Error" }));
    const created = await gw.call("POST", "/v1/messages", { to: nextNumber(), body: "nobody takes this" });
    const view = await settled(`/v1/messages/${created.json.id}`);
    expect(view.status).toBe("failed");
    expect(view.delivery.attempts.map((a: { route: string; state: string }) => `${a.route}:${a.state}`)).toEqual([
      "twilio:failed",
      "africastalking:failed",
    ]);
  });

  it("settles every one of 40 concurrent jobs with exactly one accepted send each", async () => {
    let calls = 0;
    // Every third Twilio call fails, so some jobs fail over and some do not.
    twilio.respondWith(() => (++calls % 3 === 0 ? serverError : undefined));
    const numbers = Array.from({ length: 40 }, nextNumber);
    const created = await Promise.all(numbers.map((to) => gw.call("POST", "/v1/messages", { to, body: `job for ${to}` })));
    expect(created.every((c) => c.status === 202)).toBe(true);
    await gw.gateway.dispatcher.drain();
    for (const [index, to] of numbers.entries()) {
      const view = (await gw.call("GET", `/v1/messages/${created[index]!.json.id}`)).json;
      expect(view.status).toBe("sent");
      const accepted = twilio.received.filter((m) => m.to === to).length + at.received.filter((m) => m.to === to).length;
      expect(accepted).toBe(1);
    }
  });
});

describe("circuit breaker on a failing provider", () => {
  let twilio: FakeTwilio;
  let at: FakeAfricasTalking;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    at = await startFakeAfricasTalking({ username: "otpgate", apiKey: "at-key" });
    gw = await startGateway({
      env: {
        ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
        FAILOVER_ORDER: "twilio,africastalking",
        AT_USERNAME: "otpgate",
        AT_API_KEY: "at-key",
        AT_API_BASE: at.baseUrl,
        PROVIDER_BREAKER_MIN_CALLS: "3",
        PROVIDER_BREAKER_RESET_SECONDS: "1",
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await Promise.all([twilio?.close(), at?.close()]);
  });

  async function sendOne(to: string): Promise<string[]> {
    const created = await gw.call("POST", "/v1/messages", { to, body: "breaker" });
    await gw.gateway.dispatcher.drain();
    const view = (await gw.call("GET", `/v1/messages/${created.json.id}`)).json;
    expect(view.status).toBe("sent");
    return view.delivery.attempts.map((a: { route: string; error?: string }) => `${a.route}:${a.error?.split(":")[0] ?? "ok"}`);
  }

  it("skips Twilio without calling it once it keeps failing, and probes it again after the reset time", async () => {
    let twilioCalls = 0;
    twilio.respondWith(() => (twilioCalls++, serverError));
    for (let i = 0; i < 3; i++) expect(await sendOne(`+25471100020${i}`)).toEqual(["twilio:twilio", "africastalking:ok"]);
    const callsWhenOpened = twilioCalls;
    expect(await sendOne("+254711000210")).toEqual(["twilio:circuit_open", "africastalking:ok"]);
    expect(twilioCalls).toBe(callsWhenOpened);

    twilio.respondWith(undefined);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(await sendOne("+254711000211")).toEqual(["twilio:ok"]);
  });
});
