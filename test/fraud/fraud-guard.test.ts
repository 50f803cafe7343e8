/**
 * The fraud guard through the HTTP API, on real gateways (fake Twilio on
 * loopback): number types and geo permissions refused with their own codes
 * on every send route, per-key / per-number / per-prefix quotas with
 * Retry-After (across two nodes on Redis), and the conversion watch:
 * pumping holds a prefix (429 fraud_suspected, a metric, one log line),
 * verified traffic does not, and an operator's clear or recovered
 * conversion lifts it.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { metricValue } from "../support/mqtt-clients.js";

const accountSid = `AC${"f4".repeat(16)}`;
const authToken = "fraud-guard-token";
const PREMIUM = "+19002345678";
const SATELLITE = "+881612345678";

let twilio: FakeTwilio;
const gateways: TestGateway[] = [];
const start = async (env: Record<string, string>, options: Parameters<typeof startGateway>[0] = {}) => {
  const gw = await startGateway({ ...options, env: { ...twilioEnv(twilio, { accountSid, authToken }), ...env } });
  gateways.push(gw);
  return gw;
};

let serial = 10_000;
/** A fresh valid mobile number: KE +254, TZ +255, UG +256. */
const number = (country: "254" | "255" | "256") => `+${country}7${country === "254" ? "11" : "12"}3${String(++serial).padStart(5, "0")}`;
const otp = (gw: TestGateway, to: string, key?: string) => gw.call("POST", "/v1/otp", { to }, key);
const codeSentTo = (to: string) =>
  eventually(async () => {
    const sms = twilio.received.find((m) => m.to === to);
    return sms && codeIn(sms.body);
  }, 5000, `the code sent to ${to}`);

beforeAll(async () => {
  twilio = await startFakeTwilio({ accountSid, authToken });
});
afterAll(async () => {
  await Promise.all(gateways.map((gw) => gw.close()));
  await twilio?.close();
});

describe("number types and geo permissions", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await start({ SMS_BLOCKED_COUNTRIES: "tz" });
  });

  it("refuses premium-rate and satellite numbers with their own codes on /v1/otp, /v1/messages and the seed routes", async () => {
    for (const [to, code] of [
      [PREMIUM, "premium_rate_number"],
      [SATELLITE, "satellite_number"],
    ] as const) {
      const issued = await otp(gw, to);
      expect(issued.status).toBe(403);
      expect(issued.json.error).toMatchObject({ code, message: expect.stringContaining("SMS_ALLOWED_NUMBER_TYPES") });
      for (const body of [{ to, body: "hello" }, { cell: to, message: "hello" }]) {
        const message = await gw.call("POST", "/v1/messages", body);
        expect(message.status).toBe(403);
        expect(message.json.error.code).toBe(code);
      }
      const sendOtp = await gw.call("POST", "/send-otp", { phone: to, uid: "u1" });
      expect(sendOtp.status).toBe(403);
      expect(sendOtp.json).toEqual({ success: false, data: null, message: expect.any(String), error: code });
      const sendCode = await gw.call("POST", "/send-code", { user_id: "u1", method: "sms", phone: to });
      expect(sendCode.status).toBe(403);
      expect(sendCode.json.error.code).toBe(code);
    }
    expect(twilio.received.filter((m) => m.to === PREMIUM || m.to === SATELLITE)).toEqual([]);
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "premium_rate_number", kind: "otp" })).toBe(3);
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "satellite_number", kind: "message" })).toBe(2);
    // A refused number started no cooldown and counted nothing: an ordinary number still goes.
    expect((await otp(gw, number("254"))).status).toBe(202);
  });

  it("refuses a country the node blocks, and one outside a key's own allow-list", async () => {
    const blocked = await otp(gw, number("255"));
    expect(blocked.status).toBe(403);
    expect(blocked.json.error.code).toBe("country_not_allowed");

    const created = await gw.call("POST", "/v1/keys", { name: "kenya-only", allowedCountries: ["ke"], quotas: { perMinute: 100 } });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ allowedCountries: ["KE"], quotas: { perMinute: 100 } });
    expect((await otp(gw, number("256"), created.json.key)).json.error.code).toBe("country_not_allowed");
    expect((await otp(gw, number("254"), created.json.key)).status).toBe(202);
    // The admin key has no such list.
    expect((await otp(gw, number("256"))).status).toBe(202);

    const bad = await gw.call("POST", "/v1/keys", { name: "bad", blockedCountries: ["XX"] });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toContain("XX is not an ISO 3166 country code");
  });
});

describe("quotas", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await start({ FRAUD_NUMBER_MAX_PER_HOUR: "2", FRAUD_PREFIX_MAX_PER_HOUR: "3" });
  });

  const expectRetryAfter = (reply: { status: number; headers: Headers; json: { error: { code: string } } }, code: string) => {
    expect(reply.status).toBe(429);
    expect(reply.json.error.code).toBe(code);
    expect(Number(reply.headers.get("retry-after"))).toBeGreaterThan(0);
  };

  it("a key's per-minute quota (set on POST /v1/keys) answers 429 key_quota_exceeded with Retry-After", async () => {
    const { json: key } = await gw.call("POST", "/v1/keys", { name: "small", quotas: { perMinute: 2, perDay: 100 } });
    expect((await otp(gw, number("255"), key.key)).status).toBe(202);
    expect((await gw.call("POST", "/v1/messages", { to: number("255"), body: "hi" }, key.key)).status).toBe(202);
    const third = await otp(gw, number("255"), key.key);
    expectRetryAfter(third, "key_quota_exceeded");
    expect(Number(third.headers.get("retry-after"))).toBeLessThanOrEqual(60);
  });

  it("plain messages to one number are capped per hour", async () => {
    const to = number("256");
    for (let i = 0; i < 2; i++) expect((await gw.call("POST", "/v1/messages", { to, body: `note ${i}` })).status).toBe(202);
    expectRetryAfter(await gw.call("POST", "/v1/messages", { to, body: "one too many" }), "number_quota_exceeded");
    expect((await gw.call("POST", "/v1/messages", { to: number("256"), body: "another number" })).status).toBe(202);
  });

  it("sends to one prefix are capped per hour, all callers together", async () => {
    for (let i = 0; i < 3; i++) expect((await otp(gw, number("254"))).status).toBe(202);
    expectRetryAfter(await otp(gw, number("254")), "prefix_quota_exceeded");
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "prefix_quota_exceeded" })).toBe(1);
  });
});

describe("quotas hold across two nodes (Redis)", () => {
  it("a key with a quota of one, asked on two nodes at once, sends once", async () => {
    const prefix = `t:fraud-${Date.now()}:`;
    const a = await start({ FRAUD_KEY_MAX_PER_MINUTE: "3" }, { store: "redis", redisKeyPrefix: prefix });
    const b = await start({ FRAUD_KEY_MAX_PER_MINUTE: "3" }, { store: "redis", redisKeyPrefix: prefix });
    const { json: key } = await a.call("POST", "/v1/keys", { name: "one", quotas: { perMinute: 1 } });
    const replies = await Promise.all([otp(a, number("254"), key.key), otp(b, number("254"), key.key)]);
    expect(replies.map((r) => r.status).sort()).toEqual([202, 429]);
    // The node default (3 a minute) counts the admin key on both nodes together.
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await otp(i % 2 ? b : a, number("256"))).status);
    expect(statuses).toEqual([202, 202, 202, 429]);
  });
});

describe("conversion watch", () => {
  let gw: TestGateway;
  const lines: { level: number; msg: string; prefix?: string }[] = [];
  const held = (prefix: string) => lines.filter((l) => l.level === 40 && l.prefix === prefix && l.msg.includes("collapsed"));
  const sentTo = new Map<string, string>();

  beforeAll(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(line) as (typeof lines)[number]);
        done();
      },
    });
    gw = await start(
      { FRAUD_WATCH_MIN_SENDS: "10", FRAUD_WATCH_MIN_CONVERSION: "0.5", FRAUD_WATCH_GRACE_SECONDS: "0", LOG_LEVEL: "info" },
      { logger: pino({ level: "info" }, sink) },
    );
  });

  it("many distinct numbers in a few countries, none verified: the prefixes are held back with 429 fraud_suspected", async () => {
    for (const country of ["254", "255"] as const) {
      const numbers = Array.from({ length: 10 }, () => number(country));
      const replies = await Promise.all(numbers.map((to) => otp(gw, to)));
      expect(replies.map((r) => r.status)).toEqual(Array(10).fill(202));
      numbers.forEach((to, i) => sentTo.set(to, replies[i]!.json.id));
    }
    for (const country of ["254", "255"] as const) {
      const refused = await otp(gw, number(country));
      expect(refused.status).toBe(429);
      expect(refused.json.error).toMatchObject({ code: "fraud_suspected", message: expect.stringContaining(`DELETE /v1/fraud/holds/${country}`) });
      expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    }
    // Everything to a held prefix waits: more codes, plain messages, the seed routes.
    expect((await otp(gw, number("254"))).json.error.code).toBe("fraud_suspected");
    expect((await gw.call("POST", "/v1/messages", { to: number("254"), body: "hi" })).json.error.code).toBe("fraud_suspected");
    const seed = await gw.call("POST", "/send-otp", { phone: number("254"), uid: "pump" });
    expect(seed.status).toBe(429);
    expect(seed.json).toMatchObject({ success: false, data: null, error: "fraud_suspected" });

    expect(held("254")).toHaveLength(1);
    expect(held("255")).toHaveLength(1);
    expect(await metricValue(gw, "otpgate_fraud_holds_total", { prefix: "254", event: "tripped" })).toBe(1);
    expect(await metricValue(gw, "otpgate_fraud_held_prefixes", { prefix: "254" })).toBe(1);
    expect(await metricValue(gw, "otpgate_fraud_refusals_total", { reason: "fraud_suspected" })).toBe(5);
    const holds = await gw.call("GET", "/v1/fraud/holds");
    expect(holds.status).toBe(200);
    expect(holds.json.holds.map((h: { prefix: string }) => h.prefix).sort()).toEqual(["254", "255"]);
    expect(holds.json.holds[0]).toMatchObject({ sent: 10, verified: 0, heldAt: expect.any(String), until: expect.any(String) });
    // No log line carries a number.
    expect(lines.some((l) => JSON.stringify(l).includes("712300"))).toBe(false);
  });

  it("a normal pattern (most codes verified) is not held", async () => {
    for (let i = 0; i < 15; i++) {
      const to = number("256");
      const issued = await otp(gw, to);
      expect(issued.status).toBe(202);
      if (i % 5 === 4) continue;
      const verified = await gw.call("POST", "/v1/otp/verify", { id: issued.json.id, code: await codeSentTo(to) });
      expect(verified.json).toMatchObject({ valid: true, status: "approved" });
    }
    expect(held("256")).toHaveLength(0);
    expect((await gw.call("GET", "/v1/fraud/holds")).json.holds.map((h: { prefix: string }) => h.prefix)).not.toContain("256");
  });

  it("an operator's clear lifts a hold (admin scope only)", async () => {
    const { json: key } = await gw.call("POST", "/v1/keys", { name: "app" });
    expect((await gw.call("GET", "/v1/fraud/holds", undefined, key.key)).status).toBe(403);
    expect((await gw.call("DELETE", "/v1/fraud/holds/254", undefined, key.key)).status).toBe(403);

    const cleared = await gw.call("DELETE", "/v1/fraud/holds/254");
    expect(cleared.status).toBe(200);
    expect(cleared.json).toMatchObject({ prefix: "254", sent: 10, verified: 0 });
    expect((await gw.call("DELETE", "/v1/fraud/holds/254")).status).toBe(404);
    expect((await otp(gw, number("254"))).status).toBe(202);
    expect(await metricValue(gw, "otpgate_fraud_holds_total", { prefix: "254", event: "cleared" })).toBe(1);
    expect(await metricValue(gw, "otpgate_fraud_held_prefixes", { prefix: "254" })).toBe(0);
    expect(lines.some((l) => l.level === 40 && l.msg.includes("cleared by an operator"))).toBe(true);
  });

  it("a hold lifts by itself when conversion recovers (codes sent before it are verified late)", async () => {
    const tz = [...sentTo].filter(([to]) => to.startsWith("+255"));
    for (const [to, id] of tz.slice(0, 5)) {
      expect((await gw.call("POST", "/v1/otp/verify", { id, code: await codeSentTo(to) })).json.valid).toBe(true);
    }
    expect((await gw.call("GET", "/v1/fraud/holds")).json.holds).toEqual([]);
    expect(await metricValue(gw, "otpgate_fraud_holds_total", { prefix: "255", event: "recovered" })).toBe(1);
    expect((await otp(gw, number("255"))).status).toBe(202);
  });
});
