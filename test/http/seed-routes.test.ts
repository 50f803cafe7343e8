/**
 * The seed-compatible routes: `/send-code` + `/verify-code`, and `/send-otp` +
 * `/verify-otp` answering every outcome in the `{success, data, message, error}`
 * envelope. Same rules as /v1/otp underneath.
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
    error: success ? null : expect.any(String),
  });
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
      expect(sent.json).toEqual({ message: expect.stringContaining("sms"), id: expect.any(String), expiresAt: expect.any(String) });
      const code = await smsCode("+254711000301"); // normalised to E.164 on the way
      expect(JSON.stringify(sent.json)).not.toContain(code);

      const wrong = await seed("/verify-code", { user_id: "sc-1", passcode: wrongFor(code) });
      expect(wrong.status).toBe(200);
      expect(wrong.json).toEqual({ valid: false, status: "pending", attemptsLeft: 4 });
      const right = await seed("/verify-code", { user_id: "sc-1", passcode: code });
      expect(right.status).toBe(200);
      expect(right.json).toEqual({ valid: true, status: "approved", attemptsLeft: 3 });
      // Accepted once.
      expect((await seed("/verify-code", { user_id: "sc-1", passcode: code })).json).toMatchObject({ valid: false, status: "approved" });
      // The same OTP as /v1 sees it.
      expect((await gw.call("GET", `/v1/otp/${sent.json.id}`)).json.status).toBe("approved");
    });

    it("sends by email and verifies", async () => {
      const sent = await seed("/send-code", { user_id: "sc-2", method: "email", email: "seed@example.com" });
      expect(sent.status).toBe(200);
      expect(sent.json.message).toContain("email");
      const code = codeIn((await smtp.waitForMessage((m) => m.to.includes("seed@example.com"))).text);
      expect((await seed("/verify-code", { user_id: "sc-2", passcode: code })).json).toMatchObject({ valid: true, status: "approved" });
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
        expect(reply.json.error).toEqual(expect.objectContaining({ code: "invalid_request", message: expect.any(String) }));
      }
      expect(twilio.received.some((m) => m.to === "+254711000302")).toBe(false);
    });

    it("answers 401 without a key, 404 for an unknown user, 429 in cooldown", async () => {
      const noKey = await seed("/send-code", { user_id: "sc-4", method: "sms", phone: "+254711000303" }, null);
      expect(noKey.status).toBe(401);
      expect(noKey.json.error.code).toBe("unauthorized");
      const unknown = await seed("/verify-code", { user_id: "never-sent", passcode: "123456" });
      expect(unknown.status).toBe(404);
      expect(unknown.json.error.code).toBe("not_found");

      expect((await seed("/send-code", { user_id: "sc-4", method: "sms", phone: "+254711000303" })).status).toBe(200);
      const again = await seed("/send-code", { user_id: "sc-4", method: "sms", phone: "+254711000303" });
      expect(again.status).toBe(429);
      expect(again.json.error.code).toBe("rate_limited");
      expect(Number(again.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    });
  });

  describe("/send-otp + /verify-otp", () => {
    it("success: sends the code by SMS and verifies it, never echoing the code (even with env)", async () => {
      const sent = await seed("/send-otp", { phone: "+254711000311", uid: "so-1", env: "development" });
      expect(sent.status).toBe(200);
      expectSeedEnvelope(sent.json, true);
      expect(sent.json).toMatchObject({ success: true, message: "OTP sent", error: null, data: { id: expect.any(String), expiresAt: expect.any(String) } });
      const code = await smsCode("+254711000311");
      expect(JSON.stringify(sent.json)).not.toContain(code);
      expect(Object.keys(sent.json.data).sort()).toEqual(["expiresAt", "id"]);

      const verified = await seed("/verify-otp", { uid: "so-1", code });
      expect(verified.status).toBe(200);
      expectSeedEnvelope(verified.json, true);
      expect(verified.json).toEqual({ success: true, data: { valid: true, status: "approved", attemptsLeft: 4 }, message: "OTP verified", error: null });
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
      expect(right.json.data).toEqual({ valid: true, status: "approved", attemptsLeft: 3 });
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
      for (const phone of ["12345", "+999123456789", 254711000315]) {
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

    it("an unknown uid → 404 in the envelope", async () => {
      const reply = await seed("/verify-otp", { uid: "so-never", code: "123456" });
      expect(reply.status).toBe(404);
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
