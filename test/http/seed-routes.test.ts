/**
 * The seed-compatible routes with the seeds' own request and reply shapes:
 * `/send-code` + `/verify-code` (seed 001: `{message, user_id, method}`,
 * `{success, message, user_id}`, errors with FastAPI's `detail`), and
 * `/send-otp` + `/verify-otp` (seed 002: every outcome in the `{success, data,
 * message, error}` envelope, the number as digits without `+`). Same rules as
 * /v1/otp underneath.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

const accountSid = `AC${"e5".repeat(16)}`;
const authToken = "seed-routes-token";

const wrongFor = (code: string) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, "0");

/** The seed callers' envelope, exactly these four fields. */
function expectSeedEnvelope(json: unknown, success: boolean) {
  expect(json).toEqual({
    success,
    data: success ? expect.anything() : null,
    message: expect.any(String),
    error: success ? expect.anything() : expect.any(String),
  });
}

/** Seed 001's errors: the envelope plus FastAPI's `detail`. */
function expectSeed001Error(json: unknown, code: string) {
  expect(json).toEqual({ error: expect.objectContaining({ code, message: expect.any(String) }), detail: expect.any(String) });
}

describe.each(["sqlite", "redis"] as const)("seed-compatible routes (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let smtp: SmtpSink;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    smtp = await startSmtpSink();
    gw = await startGateway({
      store: storeKind,
      env: {
        ...twilioEnv(twilio, { accountSid, authToken }),
        SMTP_URL: smtp.url,
        EMAIL_FROM: "codes@otpgate.test",
        FAILOVER_ORDER: "twilio,email",
        OTP_RESEND_COOLDOWN_SECONDS: "30",
      },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
    await smtp?.close();
  });

  /** POST with the key in `x-api-key`, as the seed callers send it. */
  async function seed(route: string, body: unknown, key: string | null = ADMIN_KEY) {
    const response = await fetch(gw.url + route, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
      body: JSON.stringify(body),
    });
    const json: Awaited<ReturnType<TestGateway["call"]>>["json"] = await response.json();
    return { status: response.status, headers: response.headers, json };
  }

  async function smsCode(to: string): Promise<string> {
    const sms = await eventually(async () => twilio.received.filter((m) => m.to === to).at(-1), 5000, `an SMS to ${to}`);
    return codeIn(sms.body);
  }

  describe("/send-code + /verify-code", () => {
    it("sends by SMS and verifies by user_id + passcode", async () => {
      const sent = await seed("/send-code", { user_id: "sc-1", method: "sms", phone: "+254 711 000 301" });
      expect(sent.status).toBe(200);
      // Seed 001's reply, field for field.
      expect(sent.json).toEqual({ message: "OTP sent successfully via sms", user_id: "sc-1", method: "sms" });
      const code = await smsCode("+254711000301"); // normalised to E.164 on the way
      expect(JSON.stringify(sent.json)).not.toContain(code);

      const wrong = await seed("/verify-code", { user_id: "sc-1", passcode: wrongFor(code) });
      expect(wrong.status).toBe(400);
      expectSeed001Error(wrong.json, "invalid_code");
      const right = await seed("/verify-code", { user_id: "sc-1", passcode: code });
      expect(right.status).toBe(200);
      expect(right.json).toEqual({ success: true, message: "OTP verified successfully", user_id: "sc-1" });
      // Accepted once.
      const reused = await seed("/verify-code", { user_id: "sc-1", passcode: code });
      expect(reused.status).toBe(400);
      expectSeed001Error(reused.json, "approved");
      // The same OTP as /v1 sees it.
      expect((await gw.call("POST", "/v1/otp/verify", { userId: "sc-1", code })).json).toMatchObject({ valid: false, status: "approved" });
    });

    it("sends by email and verifies", async () => {
      const sent = await seed("/send-code", { user_id: "sc-2", method: "email", email: "seed@example.com" });
      expect(sent.status).toBe(200);
      expect(sent.json).toEqual({ message: "OTP sent successfully via email", user_id: "sc-2", method: "email" });
      const code = codeIn((await smtp.waitForMessage((m) => m.to.includes("seed@example.com"))).text);
      expect((await seed("/verify-code", { user_id: "sc-2", passcode: code })).json).toEqual({ success: true, message: "OTP verified successfully", user_id: "sc-2" });
    });

    it("refuses a method without its destination, a bad phone and a bad method with 400", async () => {
      for (const body of [
        { user_id: "sc-3", method: "sms" },
        { user_id: "sc-3", method: "email", phone: "+254711000302" },
        { user_id: "sc-3", method: "sms", phone: "12345" },
        { user_id: "sc-3", method: "pigeon", phone: "+254711000302" },
        { method: "sms", phone: "+254711000302" },
      ]) {
        const reply = await seed("/send-code", body);
        expect(reply.status, JSON.stringify(body)).toBe(400);
        expectSeed001Error(reply.json, "invalid_request");
      }
      expect(twilio.received.some((m) => m.to === "+254711000302")).toBe(false);
    });

    it("takes seed 001's keyless calls from loopback (SEED_KEYLESS_FROM), refuses a wrong key, 400 for an unknown user, 429 in cooldown", async () => {
      // Seed 001 had no API key: its callers ran it beside their backend, which is what the loopback default allows.
      const noKey = await seed("/send-code", { user_id: "sc-4", method: "sms", phone: "+254711000303" }, null);
      expect(noKey.status).toBe(200);
      const code = await smsCode("+254711000303");
      expect((await seed("/verify-code", { user_id: "sc-4", passcode: code }, null)).json).toMatchObject({ success: true });
      // A key that is given must be valid.
      const badKey = await seed("/send-code", { user_id: "sc-4b", method: "sms", phone: "+254711000304" }, "og_live_not-a-key");
      expect(badKey.status).toBe(401);
      expectSeed001Error(badKey.json, "unauthorized");
      // Keyless is only for seed 001's pair.
      expect((await seed("/send-otp", { phone: "+254711000304", uid: "sc-4b" }, null)).status).toBe(401);

      const unknown = await seed("/verify-code", { user_id: "never-sent", passcode: "123456" });
      expect(unknown.status).toBe(400);
      expectSeed001Error(unknown.json, "not_found");

      expect((await seed("/send-code", { user_id: "sc-5", method: "sms", phone: "+254711000305" })).status).toBe(200);
      const again = await seed("/send-code", { user_id: "sc-5", method: "sms", phone: "+254711000305" });
      expect(again.status).toBe(429);
      expectSeed001Error(again.json, "rate_limited");
      expect(Number(again.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    });
  });

  describe("/send-otp + /verify-otp", () => {
    it("success: sends the code by SMS and verifies it, never echoing the code (even with env)", async () => {
      // Seed 002's example: the number as a JSON number, country code and no `+`.
      const sent = await seed("/send-otp", { phone: 254711000311, uid: "so-1", env: "sandbox" });
      expect(sent.status).toBe(200);
      expect(sent.json).toEqual({ success: true, data: { status: "Sent", number: "254711000311" }, message: "OTP sent successfully", error: null });
      const code = await smsCode("+254711000311");
      expect(JSON.stringify(sent.json)).not.toContain(code);

      const verified = await seed("/verify-otp", { uid: "so-1", code });
      expect(verified.status).toBe(200);
      expect(verified.json).toEqual({ success: true, data: { message: "OTP verified successfully", contact_value: "254711000311" }, message: "Verification successful", error: {} });
      // The same number as digits in a string, and with `+`, are the same number.
      for (const [phone, uid] of [["254711000317", "so-1b"], ["+254711000318", "so-1c"]] as const) {
        const reply = await seed("/send-otp", { phone, uid });
        expect(reply.json, phone).toEqual({ success: true, data: { status: "Sent", number: phone.replace("+", "") }, message: "OTP sent successfully", error: null });
      }
    });

    it("a wrong code → 400 in the envelope, and the right one still works after", async () => {
      await seed("/send-otp", { phone: "+254711000312", uid: "so-2" });
      const code = await smsCode("+254711000312");
      const wrong = await seed("/verify-otp", { uid: "so-2", code: wrongFor(code) });
      expect(wrong.status).toBe(400);
      expectSeedEnvelope(wrong.json, false);
      expect(wrong.json.error).toBe("invalid_code");
      const right = await seed("/verify-otp", { uid: "so-2", code });
      expect(right.status).toBe(200);
      expect(right.json.data).toEqual({ message: "OTP verified successfully", contact_value: "254711000312" });
      // A second use of the same code is refused in the envelope, naming why.
      const reused = await seed("/verify-otp", { uid: "so-2", code });
      expect(reused.status).toBe(400);
      expectSeedEnvelope(reused.json, false);
      expect(reused.json.error).toBe("approved");
    });

    it("a missing or wrong key → 401 in the envelope, and nothing is sent", async () => {
      for (const key of [null, "og_live_not-a-key"]) {
        const reply = await seed("/send-otp", { phone: "+254711000313", uid: "so-3" }, key);
        expect(reply.status).toBe(401);
        expectSeedEnvelope(reply.json, false);
        expect(reply.json.error).toBe("unauthorized");
        const verify = await seed("/verify-otp", { uid: "so-3", code: "123456" }, key);
        expect(verify.status).toBe(401);
        expectSeedEnvelope(verify.json, false);
      }
      expect(twilio.received.some((m) => m.to === "+254711000313")).toBe(false);
    });

    it("a key without the otp scope → 403 in the envelope", async () => {
      const { json: created } = await gw.call("POST", "/v1/keys", { name: "msgs-only", scopes: ["messages"] });
      const reply = await seed("/send-otp", { phone: "+254711000314", uid: "so-4" }, created.key);
      expect(reply.status).toBe(403);
      expectSeedEnvelope(reply.json, false);
      expect(reply.json.error).toBe("forbidden");
    });

    it("a bad phone → 400 in the envelope naming the field", async () => {
      for (const phone of ["12345", "+999123456789", 999123456789, "+254 7", true]) {
        const reply = await seed("/send-otp", { phone, uid: "so-5" });
        expect(reply.status, String(phone)).toBe(400);
        expectSeedEnvelope(reply.json, false);
        expect(reply.json.error).toBe("invalid_request");
        expect(reply.json.message).toMatch(/\bphone\b/);
      }
      const missingUid = await seed("/send-otp", { phone: "+254711000315" });
      expect(missingUid.status).toBe(400);
      expectSeedEnvelope(missingUid.json, false);
      const badCode = await seed("/verify-otp", { uid: "so-5", code: 123456 });
      expect(badCode.status).toBe(400);
      expectSeedEnvelope(badCode.json, false);
    });

    it("malformed JSON → 400 in the envelope", async () => {
      const response = await fetch(`${gw.url}/send-otp`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": ADMIN_KEY },
        body: '{"phone": ',
      });
      expect(response.status).toBe(400);
      expectSeedEnvelope(await response.json(), false);
    });

    it("an unknown uid → 400 in the envelope (seed 002: wrong, expired or unknown)", async () => {
      const reply = await seed("/verify-otp", { uid: "so-never", code: "123456" });
      expect(reply.status).toBe(400);
      expectSeedEnvelope(reply.json, false);
      expect(reply.json.error).toBe("not_found");
    });

    it("a resend inside the cooldown → 429 in the envelope with Retry-After", async () => {
      const first = await seed("/send-otp", { phone: "+254711000316", uid: "so-6" });
      expect(first.status).toBe(200);
      const again = await seed("/send-otp", { phone: "+254711000316", uid: "so-6" });
      expect(again.status).toBe(429);
      expectSeedEnvelope(again.json, false);
      expect(again.json.error).toBe("rate_limited");
      const retryAfter = Number(again.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(30);
      await smsCode("+254711000316");
      expect(twilio.received.filter((m) => m.to === "+254711000316")).toHaveLength(1);
    });
  });
});

describe("seed 001 without a key, when SEED_KEYLESS_FROM does not list the caller", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ store: "memory", env: { SEED_KEYLESS_FROM: "none", FAILOVER_ORDER: "twilio", TWILIO_ACCOUNT_SID: accountSid, TWILIO_AUTH_TOKEN: authToken, TWILIO_FROM: "+15005550006", TWILIO_API_BASE: "http://127.0.0.1:9" } });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("answers 401 in seed 001's error shape", async () => {
    for (const [route, body] of [
      ["/send-code", { user_id: "nk-1", method: "sms", phone: "+254711000399" }],
      ["/verify-code", { user_id: "nk-1", passcode: "123456" }],
    ] as const) {
      const response = await fetch(gw.url + route, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect(response.status, route).toBe(401);
      expectSeed001Error(await response.json(), "unauthorized");
    }
  });
});
