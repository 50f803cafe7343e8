/**
 * Every limit answers 429 `rate_limited` with `Retry-After`: per client IP, per
 * API key, and the OTP rules (resend cooldown, hourly cap, lockout after wrong
 * codes that survives resends, attempts per code).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, codeIn, startGateway, type StartOptions, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";

const accountSid = `AC${"d4".repeat(16)}`;
const authToken = "rate-limit-token";

type Reply = Awaited<ReturnType<TestGateway["call"]>>;

function expectRateLimited(reply: Reply, maxSeconds: number): number {
  expect(reply.status).toBe(429);
  expect(reply.json).toEqual({ error: { code: "rate_limited", message: expect.any(String) } });
  const header = reply.headers.get("retry-after");
  expect(header, "Retry-After header").toMatch(/^\d+$/);
  const seconds = Number(header);
  expect(seconds).toBeGreaterThanOrEqual(1);
  expect(seconds).toBeLessThanOrEqual(maxSeconds);
  return seconds;
}

/** A six-digit code that is not `code`. */
const wrongFor = (code: string) => String((Number(code) + 1) % 10 ** code.length).padStart(code.length, "0");

let twilio: FakeTwilio;
const open: TestGateway[] = [];

beforeAll(async () => {
  twilio = await startFakeTwilio({ accountSid, authToken });
});
afterEach(async () => {
  await Promise.all(open.splice(0).map((g) => g.close()));
});
afterAll(async () => {
  await twilio?.close();
});

async function gateway(env: Record<string, string>, store: StartOptions["store"] = "memory", extra: Partial<StartOptions> = {}): Promise<TestGateway> {
  const gw = await startGateway({
    store,
    ...extra,
    env: { ...twilioEnv(twilio, { accountSid, authToken }), ...env },
  });
  open.push(gw);
  return gw;
}

/** The code in the newest SMS to `to` that arrived after `before` messages had been received. */
async function smsCode(to: string, before: number): Promise<string> {
  const sms = await eventually(async () => twilio.received.slice(before).filter((m) => m.to === to).at(-1), 5000, `an SMS to ${to}`);
  return codeIn(sms.body);
}

describe("per-IP limit", () => {
  it("the request over RATE_LIMIT_PER_IP gets 429 rate_limited with Retry-After", async () => {
    const gw = await gateway({ RATE_LIMIT_PER_IP: "3" });
    for (let i = 0; i < 3; i++) {
      const reply = await gw.call("GET", "/v1/keys");
      expect(reply.status, `request ${i + 1}`).toBe(200);
    }
    expectRateLimited(await gw.call("GET", "/v1/keys"), 60);
    // Counted per client, whatever the key: no key, another route, still 429.
    expectRateLimited(await gw.call("POST", "/v1/otp", { to: "+254711000201" }, null), 60);
    expect(twilio.received.some((m) => m.to === "+254711000201")).toBe(false);
    // Health checks are exempt, so an orchestrator never sees a throttled probe.
    expect((await gw.call("GET", "/healthz", undefined, null)).status).toBe(200);
    expect((await gw.call("GET", "/readyz", undefined, null)).status).toBe(200);
  });

  it("two gateways sharing a Redis namespace share the per-IP count (and other namespaces do not)", async () => {
    const first = await gateway({ RATE_LIMIT_PER_IP: "4" }, "redis");
    const second = await gateway({ RATE_LIMIT_PER_IP: "4" }, "redis", { redisKeyPrefix: first.redisKeyPrefix });
    const elsewhere = await gateway({ RATE_LIMIT_PER_IP: "4" }, "redis");
    expect((await first.call("GET", "/v1/keys")).status).toBe(200);
    expect((await second.call("GET", "/v1/keys")).status).toBe(200);
    expect((await first.call("GET", "/v1/keys")).status).toBe(200);
    expect((await second.call("GET", "/v1/keys")).status).toBe(200);
    expectRateLimited(await first.call("GET", "/v1/keys"), 60);
    expectRateLimited(await second.call("GET", "/v1/keys"), 60);
    expect((await elsewhere.call("GET", "/v1/keys")).status).toBe(200);
  });
});

describe.each(["sqlite", "redis"] as const)("per-key limit (%s store)", (storeKind) => {
  it("a key over RATE_LIMIT_PER_KEY gets 429 while another key is still served", async () => {
    const gw = await gateway({ RATE_LIMIT_PER_KEY: "3" }, storeKind);
    // Key management is also keyed traffic: use it to make the keys, then count from zero per key.
    const busy = (await gw.call("POST", "/v1/keys", { name: "busy", scopes: ["otp"] })).json.key as string;
    const calm = (await gw.call("POST", "/v1/keys", { name: "calm", scopes: ["otp"] })).json.key as string;
    const probe = "/v1/otp/00000000-0000-4000-8000-000000000000";
    for (let i = 0; i < 3; i++) expect((await gw.call("GET", probe, undefined, busy)).status, `busy request ${i + 1}`).toBe(404);
    expectRateLimited(await gw.call("GET", probe, undefined, busy), 60);
    // The exhausted key is refused on every route, sends included.
    expectRateLimited(await gw.call("POST", "/v1/otp", { to: "+254711000202" }, busy), 60);
    expect(twilio.received.some((m) => m.to === "+254711000202")).toBe(false);

    for (let i = 0; i < 3; i++) expect((await gw.call("GET", probe, undefined, calm)).status, `calm request ${i + 1}`).toBe(404);
    expectRateLimited(await gw.call("GET", probe, undefined, calm), 60);
  });
});

describe.each(["sqlite", "redis"] as const)("OTP rules over HTTP (%s store)", (storeKind) => {
  it("resend cooldown: a second code for the same userId within OTP_RESEND_COOLDOWN_SECONDS → 429", async () => {
    const gw = await gateway({ OTP_RESEND_COOLDOWN_SECONDS: "30" }, storeKind);
    const first = await gw.call("POST", "/v1/otp", { to: "+254711000203", userId: "cool-user" });
    expect(first.status).toBe(202);
    const second = await gw.call("POST", "/v1/otp", { to: "+254711000204", userId: "cool-user" });
    expectRateLimited(second, 30);
    // The same number under another user is in cooldown too.
    expectRateLimited(await gw.call("POST", "/v1/otp", { to: "+254711000203", userId: "someone-else" }), 30);
    // Someone else entirely is not.
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000205", userId: "third-user" })).status).toBe(202);
    await eventually(async () => twilio.received.find((m) => m.to === "+254711000205"), 5000, "the third user's SMS");
    expect(twilio.received.some((m) => m.to === "+254711000204")).toBe(false);
  });

  it("hourly cap: the third code within the hour with OTP_MAX_SENDS_PER_HOUR=2 → 429", async () => {
    const gw = await gateway({ OTP_MAX_SENDS_PER_HOUR: "2" }, storeKind);
    for (let i = 0; i < 2; i++) {
      expect((await gw.call("POST", "/v1/otp", { to: "+254711000206", userId: "capped" })).status, `send ${i + 1}`).toBe(202);
    }
    const third = await gw.call("POST", "/v1/otp", { to: "+254711000206", userId: "capped" });
    const retry = expectRateLimited(third, 3600);
    expect(retry).toBeGreaterThan(60); // the hour window, not a short cooldown
    // The number alone is capped as well (it was counted with each send).
    expectRateLimited(await gw.call("POST", "/v1/otp", { to: "+254711000206" }), 3600);
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000207" })).status).toBe(202);
  });

  it("lockout: wrong codes across two OTPs for one number lock it; resending does not reset the count", async () => {
    const gw = await gateway({ OTP_LOCKOUT_THRESHOLD: "3", OTP_LOCKOUT_SECONDS: "600", OTP_RESEND_COOLDOWN_SECONDS: "0" }, storeKind);
    const to = "+254711000208";

    let before = twilio.received.length;
    const first = await gw.call("POST", "/v1/otp", { to });
    expect(first.status).toBe(202);
    const firstCode = await smsCode(to, before);
    for (const attemptsLeft of [4, 3]) {
      const wrong = await gw.call("POST", "/v1/otp/verify", { id: first.json.id, code: wrongFor(firstCode) });
      expect(wrong.status).toBe(200);
      expect(wrong.json).toEqual({ valid: false, status: "pending", attemptsLeft });
    }

    // A resend: a fresh code with fresh attempts, but the number's failures still count.
    before = twilio.received.length;
    const second = await gw.call("POST", "/v1/otp", { to });
    expect(second.status).toBe(202);
    const secondCode = await smsCode(to, before);
    const third = await gw.call("POST", "/v1/otp/verify", { to, code: wrongFor(secondCode) });
    expect(third.status).toBe(200);
    expect(third.json).toEqual({ valid: false, status: "pending", attemptsLeft: 4 });

    // Locked: even the right code is refused, with a Retry-After, and nothing is approved.
    const locked = await gw.call("POST", "/v1/otp/verify", { to, code: secondCode });
    expectRateLimited(locked, 600);
    expect((await gw.call("GET", `/v1/otp/${second.json.id}`)).json.status).toBe("pending");
    // And no new code goes to that number while it is locked.
    before = twilio.received.length;
    expectRateLimited(await gw.call("POST", "/v1/otp", { to }), 600);
    expect(twilio.received.slice(before).some((m) => m.to === to)).toBe(false);
    // Another number is unaffected.
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000209" })).status).toBe(202);
  });

  it("lockout is keyed by userId as well: a new number for the same user is refused", async () => {
    const gw = await gateway({ OTP_LOCKOUT_THRESHOLD: "2", OTP_RESEND_COOLDOWN_SECONDS: "0" }, storeKind);
    let before = twilio.received.length;
    const first = await gw.call("POST", "/v1/otp", { to: "+254711000210", userId: "hopper" });
    const code = await smsCode("+254711000210", before);
    await gw.call("POST", "/v1/otp/verify", { userId: "hopper", code: wrongFor(code) });
    before = twilio.received.length;
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000211", userId: "hopper" })).status).toBe(202);
    const secondCode = await smsCode("+254711000211", before);
    await gw.call("POST", "/v1/otp/verify", { userId: "hopper", code: wrongFor(secondCode) });
    expectRateLimited(await gw.call("POST", "/v1/otp", { to: "+254711000212", userId: "hopper" }), 900);
    expectRateLimited(await gw.call("POST", "/v1/otp/verify", { userId: "hopper", code: secondCode }), 900);
    expect(first.status).toBe(202);
  });

  it("a right code clears the failure count", async () => {
    const gw = await gateway({ OTP_LOCKOUT_THRESHOLD: "3", OTP_RESEND_COOLDOWN_SECONDS: "0" }, storeKind);
    const to = "+254711000213";
    let before = twilio.received.length;
    const first = await gw.call("POST", "/v1/otp", { to });
    const code = await smsCode(to, before);
    await gw.call("POST", "/v1/otp/verify", { id: first.json.id, code: wrongFor(code) });
    await gw.call("POST", "/v1/otp/verify", { id: first.json.id, code: wrongFor(code) });
    expect((await gw.call("POST", "/v1/otp/verify", { id: first.json.id, code })).json).toMatchObject({ valid: true, status: "approved" });
    before = twilio.received.length;
    const second = await gw.call("POST", "/v1/otp", { to });
    expect(second.status).toBe(202);
    const secondCode = await smsCode(to, before);
    const wrong = await gw.call("POST", "/v1/otp/verify", { id: second.json.id, code: wrongFor(secondCode) });
    expect(wrong.status).toBe(200); // one failure after the reset, not the third in a row
    expect((await gw.call("POST", "/v1/otp/verify", { id: second.json.id, code: secondCode })).json.valid).toBe(true);
  });

  it("five wrong codes on one OTP → max_attempts, and the right code is then refused", async () => {
    const gw = await gateway({}, storeKind);
    const to = "+254711000214";
    const before = twilio.received.length;
    const created = await gw.call("POST", "/v1/otp", { to });
    const code = await smsCode(to, before);
    const outcomes = [];
    for (let i = 0; i < 5; i++) {
      const reply = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code: wrongFor(code) });
      expect(reply.status).toBe(200);
      outcomes.push(reply.json);
    }
    expect(outcomes).toEqual([
      { valid: false, status: "pending", attemptsLeft: 4 },
      { valid: false, status: "pending", attemptsLeft: 3 },
      { valid: false, status: "pending", attemptsLeft: 2 },
      { valid: false, status: "pending", attemptsLeft: 1 },
      { valid: false, status: "max_attempts", attemptsLeft: 0 },
    ]);
    const right = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code });
    expect(right.status).toBe(200);
    expect(right.json).toEqual({ valid: false, status: "max_attempts", attemptsLeft: 0 });
    const view = await gw.call("GET", `/v1/otp/${created.json.id}`);
    expect(view.json).toMatchObject({ status: "max_attempts", attemptsLeft: 0 });
  });
});
