/**
 * /healthz, /readyz (memory, Redis, unreachable Redis), /metrics (Prometheus
 * text, without numbers or codes) and the OpenAPI document at /docs/json.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";

const accountSid = `AC${"f6".repeat(16)}`;
const authToken = "health-metrics-token";

/** The value of one sample line, e.g. `otpgate_verifications_total{outcome="approved"}`. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split("\n")) {
    const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const found = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => found[k] === v)) return Number(match[3]);
  }
  return undefined;
}

describe.each(["sqlite", "redis"] as const)("health (%s store)", (storeKind) => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ store: storeKind });
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("/healthz is 200 without a key", async () => {
    const reply = await gw.call("GET", "/healthz", undefined, null);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: "ok" });
  });

  it("/readyz is 200 and names the store", async () => {
    const reply = await gw.call("GET", "/readyz", undefined, null);
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: "ready", store: { kind: storeKind, ok: true } });
  });
});

describe("readiness when Redis goes away", () => {
  let gw: TestGateway;
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
    gw = await startGateway({ env: { REDIS_URL: redis.url } });
    expect((await gw.call("GET", "/readyz", undefined, null)).status).toBe(200);
    await redis.stop();
  });
  afterAll(async () => {
    await gw?.close();
  }, 15_000);

  it("/readyz answers 503 with the store's error, promptly; /healthz stays 200", async () => {
    const started = Date.now();
    const reply = await gw.call("GET", "/readyz", undefined, null);
    expect(reply.status).toBe(503);
    expect(reply.json).toEqual({ status: "unavailable", store: { kind: "redis", ok: false, error: expect.any(String) } });
    expect(reply.json.store.error.length).toBeGreaterThan(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect((await gw.call("GET", "/healthz", undefined, null)).status).toBe(200);
    // Asked again, still an answer rather than a hang.
    expect((await gw.call("GET", "/readyz", undefined, null)).status).toBe(503);
  }, 15_000);

  it("answers API calls with 503 store_unavailable, not 500", async () => {
    const reply = await gw.call("POST", "/v1/otp/verify", { id: "any", code: "123456" });
    expect(reply.status).toBe(503);
    expect(reply.json.error.code).toBe("store_unavailable");
  }, 15_000);
});

describe("metrics", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const phone = "+254711000401";
  let code = "";
  let otpId = "";

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ env: twilioEnv(twilio, { accountSid, authToken }) });
    // Ten digits: a shorter code could turn up inside a metric value by chance.
    const created = await gw.call("POST", "/v1/otp", { to: phone, userId: "metrics-user", codeLength: 10 });
    expect(created.status).toBe(202);
    otpId = created.json.id;
    code = codeIn((await eventually(async () => twilio.received.find((m) => m.to === phone), 5000, "the SMS")).body);
    expect(code).toHaveLength(10);
    await eventually(async () => (await gw.call("GET", `/v1/otp/${otpId}`)).json.delivery.state === "sent", 5000, "the send to settle");
    const wrong = await gw.call("POST", "/v1/otp/verify", { id: otpId, code: code.replace(/^./, (d) => String((Number(d) + 1) % 10)) });
    expect(wrong.json.valid).toBe(false);
    const right = await gw.call("POST", "/v1/otp/verify", { to: phone, code });
    expect(right.json.valid).toBe(true);
    await gw.call("GET", "/no/such/route/for-metrics-cardinality");
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  async function scrape() {
    const response = await fetch(`${gw.url}/metrics`);
    return { status: response.status, type: response.headers.get("content-type") ?? "", text: await response.text() };
  }

  it("/metrics is Prometheus text, without a key", async () => {
    const { status, type, text } = await scrape();
    expect(status).toBe(200);
    expect(type).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text).toContain("# TYPE otpgate_verifications_total counter");
    // Every non-comment line is `name{labels} value`.
    for (const line of text.split("\n").filter((l) => l && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{.*\})? ([-+0-9.eE]+|NaN|[+-]Inf)$/);
    }
  });

  it("counts verifications by outcome", async () => {
    const { text } = await scrape();
    expect(sample(text, "otpgate_verifications_total", { outcome: "approved" })).toBe(1);
    expect(sample(text, "otpgate_verifications_total", { outcome: "wrong_code" })).toBe(1);
  });

  it("counts route attempts after a send", async () => {
    const { text } = await scrape();
    expect(sample(text, "otpgate_route_attempts_total", { route: "twilio", outcome: "sent" })).toBe(1);
    expect(sample(text, "otpgate_otp_issued_total", { channel: "sms", outcome: "accepted" })).toBe(1);
  });

  it("times HTTP requests by route pattern, not by URL", async () => {
    const { text } = await scrape();
    expect(text).toContain("# TYPE otpgate_http_request_duration_seconds histogram");
    expect(sample(text, "otpgate_http_request_duration_seconds_count", { method: "POST", route: "/v1/otp", status: "202" })).toBe(1);
    expect(sample(text, "otpgate_http_request_duration_seconds_count", { method: "POST", route: "/v1/otp/verify", status: "200" })).toBe(2);
    expect(sample(text, "otpgate_http_request_duration_seconds_count", { method: "GET", route: "/v1/otp/:id", status: "200" })).toBeGreaterThanOrEqual(1);
    expect(sample(text, "otpgate_http_request_duration_seconds_bucket", { method: "POST", route: "/v1/otp", status: "202", le: "+Inf" })).toBe(1);
    expect(sample(text, "otpgate_http_request_duration_seconds_count", { method: "GET", route: "unmatched", status: "404" })).toBe(1);
    expect(text).not.toContain("for-metrics-cardinality");
    expect(text).not.toContain(otpId);
  });

  it("never carries the phone number or the code", async () => {
    const { text } = await scrape();
    expect(text).not.toContain(code);
    expect(text).not.toContain(phone);
    expect(text).not.toContain(phone.slice(1));
    expect(text).not.toContain(phone.slice(-9)); // the national number
    expect(text).not.toContain("metrics-user");
  });
});

describe("OpenAPI document", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("GET /docs/json lists the API routes with their request schemas", async () => {
    const reply = await gw.call("GET", "/docs/json", undefined, null);
    expect(reply.status).toBe(200);
    const doc = reply.json;
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.info.title).toBe("otpgate");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/v1/otp", "/v1/otp/verify", "/v1/otp/{id}", "/v1/messages", "/v1/keys"]));

    const otpBody = doc.paths["/v1/otp"].post.requestBody.content["application/json"].schema;
    expect(otpBody.properties.to).toMatchObject({ type: "string" });
    expect(otpBody.properties).toHaveProperty("email");
    expect(otpBody.properties.codeLength).toMatchObject({ type: "integer", minimum: 4, maximum: 10 });
    expect(otpBody.additionalProperties).toBe(false);
    expect(doc.paths["/v1/otp"].post.responses).toHaveProperty("202");

    const verifyBody = doc.paths["/v1/otp/verify"].post.requestBody.content["application/json"].schema;
    expect(verifyBody.properties).toHaveProperty("code");
    expect(verifyBody.required).toContain("code");

    const messageBody = doc.paths["/v1/messages"].post.requestBody.content["application/json"].schema;
    const shapes = (messageBody.anyOf ?? messageBody.oneOf ?? [messageBody]) as { properties: Record<string, unknown> }[];
    expect(shapes.some((s) => "to" in s.properties && "body" in s.properties)).toBe(true);
    expect(shapes.some((s) => "cell" in s.properties && "message" in s.properties)).toBe(true);

    expect(doc.paths["/v1/keys"]).toHaveProperty("post");
    expect(doc.paths["/v1/keys"]).toHaveProperty("get");
    expect(doc.components.securitySchemes).toHaveProperty("bearer");
    expect(doc.components.securitySchemes).toHaveProperty("apiKey");
  });

  it("the docs UI is served at /docs", async () => {
    const response = await fetch(`${gw.url}/docs`, { redirect: "follow" });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
  });
});

describe("start-up without Redis", () => {
  it("fails promptly with a message naming REDIS_URL instead of hanging", async () => {
    const port = await freePort(); // nothing listens there
    const started = Date.now();
    await expect(startGateway({ env: { REDIS_URL: `redis://127.0.0.1:${port}` } })).rejects.toThrow(/REDIS_URL/);
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 20_000);
});
