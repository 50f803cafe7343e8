/**
 * The seed-compatible routes with the seeds' own request and reply shapes:
 * `/send-code` + `/verify-code` (seed 001, the FastAPI service: `{message,
 * user_id, method}`, `{success, message, user_id}`, errors with FastAPI's
 * `detail`, 3 checks per code), and `/send-otp` + `/verify-otp` (seed 002,
 * Openlyne: every outcome in the `{success, data, message, error}` envelope,
 * the number as digits without `+`, 6-digit codes valid 3 minutes). Same
 * rules as /v1/otp underneath. The seeds' own examples are copied below,
 * request and reply, and replayed as they are.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

const accountSid = `AC${"e5".repeat(16)}`;
const authToken = "seed-routes-token";

const wrongFor = (code: string) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, "0");

/** Seed 001's documented examples (its README), verbatim. */
const SEED_001 = {
  sendSms: { user_id: "user123", method: "sms", phone: "+1234567890" },
  sendSmsReply: { message: "OTP sent successfully via sms", user_id: "user123", method: "sms" },
  sendEmail: { user_id: "user123", method: "email", email: "user@example.com" },
  sendEmailReply: { message: "OTP sent successfully via email", user_id: "user123", method: "email" },
  verify: { user_id: "user123", passcode: "123456" },
  verifyReply: { success: true, message: "OTP verified successfully", user_id: "user123" },
} as const;

/** Seed 002's documented examples (its README and code samples), verbatim. */
const SEED_002 = {
  send: { phone: 256700123456, uid: "123e4567-e89b-12d3-a456-426614174000", env: "sandbox" },
  sendReply: { success: true, data: { status: "Sent", number: "256700123456" }, message: "OTP sent successfully", error: null },
  verify: { uid: "123e4567-e89b-12d3-a456-426614174000", code: "123456" },
  verifyReply: { success: true, data: { message: "OTP verified successfully", contact_value: "256700123456" }, message: "Verification successful", error: {} },
} as const;

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

// The replies are whatever the server said; tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type SeedReply = { status: number; headers: Headers; json: any };

/** POST as the seed callers send it: JSON, the key in `x-api-key`. */
function seedCaller(gateway: () => TestGateway) {
  return async function seed(route: string, body: unknown, key: string | null = ADMIN_KEY): Promise<SeedReply> {
    const response = await fetch(gateway().url + route, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key ? { "x-api-key": key } : {}) },
      body: JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, json: await response.json() };
  };
}

function smsTo(twilio: FakeTwilio) {
  return async function smsCode(to: string): Promise<{ code: string; body: string }> {
    const sms = await eventually(async () => twilio.received.filter((m) => m.to === to).at(-1), 5000, `an SMS to ${to}`);
    return { code: codeIn(sms.body), body: sms.body };
  };
}

describe.each(["sqlite", "redis"] as const)("the seeds' own examples, replayed (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let smtp: SmtpSink;
  let gw: TestGateway;
  const seed = seedCaller(() => gw);
  let smsCode: ReturnType<typeof smsTo>;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    smsCode = smsTo(twilio);
    smtp = await startSmtpSink();
    // No resend cooldown here: seed 001's examples send to user123 twice in a row.
    gw = await startGateway({
      store: storeKind,
      env: { ...twilioEnv(twilio, { accountSid, authToken }), SMTP_URL: smtp.url, EMAIL_FROM: "codes@otpgate.test", FAILOVER_ORDER: "twilio,email", OTP_LOCKOUT_THRESHOLD: "100" },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
    await smtp?.close();
  });

  it("seed 001, SMS: its placeholder number is refused (400 naming phone); a real number gets its reply, field for field", async () => {
    // "+1234567890" is one digit short of a North American number: no provider could send to it.
    const placeholder = await seed("/send-code", SEED_001.sendSms);
    expect(placeholder.status).toBe(400);
    expectSeed001Error(placeholder.json, "invalid_request");
    expect(placeholder.json.detail).toMatch(/\bphone\b/);

    const sent = await seed("/send-code", { ...SEED_001.sendSms, phone: "+12025550123" });
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual(SEED_001.sendSmsReply);
    const { code, body } = await smsCode("+12025550123");
    expect(code).toMatch(/^\d{6}$/);
    // Seed 001's codes last 5 minutes (the node's default).
    expect(body).toContain("5 min");

    const verified = await seed("/verify-code", { ...SEED_001.verify, passcode: code });
    expect(verified.status).toBe(200);
    expect(verified.json).toEqual(SEED_001.verifyReply);
  });

  it("seed 001, email: its request as written, its reply field for field, verified by passcode", async () => {
    const sent = await seed("/send-code", SEED_001.sendEmail);
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual(SEED_001.sendEmailReply);
    const code = codeIn((await smtp.waitForMessage((m) => m.to.includes("user@example.com"))).text);
    const verified = await seed("/verify-code", { ...SEED_001.verify, passcode: code });
    expect(verified.status).toBe(200);
    expect(verified.json).toEqual(SEED_001.verifyReply);
  });

  it("seed 002: its request as written (the number as a JSON number), its replies field for field; 6 digits, valid 3 minutes", async () => {
    const sent = await seed("/send-otp", SEED_002.send);
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual(SEED_002.sendReply);
    const { code, body } = await smsCode("+256700123456");
    expect(code).toMatch(/^\d{6}$/);
    expect(body).toContain("3 min");
    expect(JSON.stringify(sent.json)).not.toContain(code);

    const verified = await seed("/verify-otp", { ...SEED_002.verify, code });
    expect(verified.status).toBe(200);
    expect(verified.json).toEqual(SEED_002.verifyReply);
    // "If valid, it's deleted": the same code again is a 400.
    const again = await seed("/verify-otp", { ...SEED_002.verify, code });
    expect(again.status).toBe(400);
    expectSeedEnvelope(again.json, false);
  });

  it("seed 002: its example call without env (live mode) is the same send", async () => {
    const { env: _env, ...live } = SEED_002.send;
    const sent = await seed("/send-otp", { ...live, uid: "223e4567-e89b-12d3-a456-426614174000" });
    expect(sent.status).toBe(200);
    expect(sent.json).toEqual(SEED_002.sendReply);
  });

  it("seed 001 allows 3 checks per code: two wrong and the right one passes; three wrong and the right one is refused", async () => {
    await seed("/send-code", { user_id: "three-a", method: "sms", phone: "+254711000341" });
    const first = await smsCode("+254711000341");
    for (const left of [2, 1]) {
      const wrong = await seed("/verify-code", { user_id: "three-a", passcode: wrongFor(first.code) });
      expect(wrong.status).toBe(400);
      expectSeed001Error(wrong.json, "invalid_code");
      expect(wrong.json.detail).toContain(`${left} attempt(s) left`);
    }
    expect((await seed("/verify-code", { user_id: "three-a", passcode: first.code })).json).toEqual({ success: true, message: "OTP verified successfully", user_id: "three-a" });

    await seed("/send-code", { user_id: "three-b", method: "sms", phone: "+254711000342" });
    const second = await smsCode("+254711000342");
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await seed("/verify-code", { user_id: "three-b", passcode: wrongFor(second.code) }));
    expect(replies.map((r) => r.json.error.code)).toEqual(["invalid_code", "invalid_code", "max_attempts"]);
    const right = await seed("/verify-code", { user_id: "three-b", passcode: second.code });
    expect(right.status).toBe(400);
    expectSeed001Error(right.json, "max_attempts");
    // The limit is the code's own: /v1 counts the same 3.
    expect((await gw.call("POST", "/v1/otp/verify", { userId: "three-b", code: second.code })).json).toEqual({ valid: false, status: "max_attempts", attemptsLeft: 0 });
  });

  it("seed 002 keeps the node's checks per code (it documents none): a wrong 6-digit code counts, a malformed one is refused without counting", async () => {
    const uid = "323e4567-e89b-12d3-a456-426614174000";
    await seed("/send-otp", { phone: "256700123457", uid });
    const { code } = await smsCode("+256700123457");
    for (const malformed of ["12345", "1234567", "12a456", 123456]) {
      const reply = await seed("/verify-otp", { uid, code: malformed });
      expect(reply.status, String(malformed)).toBe(400);
      expectSeedEnvelope(reply.json, false);
      expect(reply.json.error).toBe("invalid_request");
    }
    for (let i = 0; i < 4; i++) expect((await seed("/verify-otp", { uid, code: wrongFor(code) })).json.error).toBe("invalid_code");
    expect((await seed("/verify-otp", { uid, code })).json).toEqual({ ...SEED_002.verifyReply, data: { ...SEED_002.verifyReply.data, contact_value: "256700123457" } });
  });

  it("two verifies of the same code at once: exactly one succeeds, on each seed's route", async () => {
    await seed("/send-code", { user_id: "race-001", method: "sms", phone: "+254711000343" });
    const sc = await smsCode("+254711000343");
    const uid = "423e4567-e89b-12d3-a456-426614174000";
    await seed("/send-otp", { phone: 254711000344, uid });
    const so = await smsCode("+254711000344");

    const [codeReplies, otpReplies] = await Promise.all([
      Promise.all([1, 2].map(() => seed("/verify-code", { user_id: "race-001", passcode: sc.code }))),
      Promise.all([1, 2].map(() => seed("/verify-otp", { uid, code: so.code }))),
    ]);
    expect(codeReplies.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(codeReplies.find((r) => r.status === 200)!.json).toEqual({ success: true, message: "OTP verified successfully", user_id: "race-001" });
    expectSeed001Error(codeReplies.find((r) => r.status === 400)!.json, "approved");
    expect(otpReplies.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(otpReplies.find((r) => r.status === 200)!.json.message).toBe("Verification successful");
    expect(otpReplies.find((r) => r.status === 400)!.json.error).toBe("approved");
  });

  it("ten wrong codes at once on /verify-code count no more than its 3 checks", async () => {
    await seed("/send-code", { user_id: "race-wrong", method: "sms", phone: "+254711000345" });
    const { code } = await smsCode("+254711000345");
    const replies = await Promise.all(Array.from({ length: 10 }, () => seed("/verify-code", { user_id: "race-wrong", passcode: wrongFor(code) })));
    expect(replies.every((r) => r.status === 400)).toBe(true);
    const codes = replies.map((r) => r.json.error.code);
    // Two saw the code still pending (2 and 1 left); the third check ended it; the rest found it ended.
    expect(codes.filter((c) => c === "invalid_code")).toHaveLength(2);
    expect(codes.filter((c) => c === "max_attempts")).toHaveLength(8);
    expect((await seed("/verify-code", { user_id: "race-wrong", passcode: code })).json.error.code).toBe("max_attempts");
  });
});

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

  const seed = seedCaller(() => gw);
  const smsCode = async (to: string) => (await smsTo(twilio)(to)).code;

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

describe("the node's own failures (5xx) in each seed's shape", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const seed = seedCaller(() => gw);

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    // One delivery at a time, and Twilio slow to answer: a second send finds the node full.
    twilio.delayMs = 1500;
    gw = await startGateway({ env: { ...twilioEnv(twilio, { accountSid, authToken }), DISPATCH_MAX_IN_FLIGHT: "1" } });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("overloaded → 503 with Retry-After, in the envelope on /send-otp and with `detail` on /send-code; no route for email → 503", async () => {
    expect((await seed("/send-otp", { phone: "254711000361", uid: "5xx-a" })).status).toBe(200);
    const fullOtp = await seed("/send-otp", { phone: "254711000362", uid: "5xx-b" });
    expect(fullOtp.status).toBe(503);
    expectSeedEnvelope(fullOtp.json, false);
    expect(fullOtp.json.error).toBe("overloaded");
    expect(fullOtp.headers.get("retry-after")).toBe("1");
    const fullCode = await seed("/send-code", { user_id: "5xx-c", method: "sms", phone: "+254711000363" });
    expect(fullCode.status).toBe(503);
    expectSeed001Error(fullCode.json, "overloaded");

    // No SMTP configured: nothing can deliver an email code.
    const noRoute = await seed("/send-code", { user_id: "5xx-d", method: "email", email: "nobody@example.com" });
    expect(noRoute.status).toBe(503);
    expectSeed001Error(noRoute.json, "no_route");
    expect(twilio.received.map((m) => m.to)).toEqual(["+254711000361"]);
  });
});
