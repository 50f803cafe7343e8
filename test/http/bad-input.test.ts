/**
 * Bad input never reaches a handler as a 500: every refusal is a 4xx in the
 * `{"error": {"code", "message"}}` envelope, and the gateway keeps answering.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";

const accountSid = `AC${"b2".repeat(16)}`;
const authToken = "bad-input-token";

/** The envelope, and nothing that looks like a stack trace or a Fastify default body. */
function expectEnvelope(json: unknown, code?: string): { code: string; message: string } {
  expect(json).toEqual({ error: expect.objectContaining({ code: expect.any(String), message: expect.any(String) }) });
  const error = (json as { error: { code: string; message: string } }).error;
  if (code) expect(error.code).toBe(code);
  expect(JSON.stringify(json)).not.toMatch(/\bat .+\.(ts|js):\d+/);
  return error;
}

describe("bad input", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ env: twilioEnv(twilio, { accountSid, authToken }) });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  async function raw(route: string, init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) {
    const response = await fetch(gw.url + route, {
      method: init.method ?? "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, ...init.headers },
      body: init.body,
    });
    const text = await response.text();
    let json: unknown = text;
    try {
      json = JSON.parse(text);
    } catch {
      // left as text: the assertions on the envelope will say so
    }
    return { status: response.status, headers: response.headers, json };
  }

  async function expectHealthy() {
    expect((await gw.call("GET", "/healthz", undefined, null)).status).toBe(200);
    // An authenticated route too: the refusal did not leave the app half broken.
    const keys = await gw.call("GET", "/v1/keys");
    expect(keys.status).toBe(200);
    expect(Array.isArray(keys.json.keys)).toBe(true);
  }

  describe("malformed and empty bodies", () => {
    it.each([
      ["truncated object", '{"to": "+254711222333"'],
      ["trailing comma", '{"to": "+254711222333",}'],
      ["single quotes", "{'to': '+254711222333'}"],
      ["bare word", "hello"],
    ])("%s → 400 invalid_json", async (_label, body) => {
      const reply = await gw.call("POST", "/v1/otp", body);
      expect(reply.status).toBe(400);
      expectEnvelope(reply.json, "invalid_json");
      await expectHealthy();
    });

    it("an empty body declared as JSON → 400", async () => {
      const reply = await raw("/v1/otp", { headers: { "content-type": "application/json" }, body: "" });
      expect(reply.status).toBe(400);
      expectEnvelope(reply.json);
    });

    it("no body at all → 400", async () => {
      const reply = await gw.call("POST", "/v1/otp");
      expect(reply.status).toBe(400);
      expectEnvelope(reply.json, "invalid_request");
    });

    it.each([
      ["null", "null"],
      ["an array", '[{"to": "+254711222333"}]'],
      ["a string", '"+254711222333"'],
      ["a number", "42"],
    ])("JSON that is %s instead of an object → 400", async (_label, body) => {
      for (const route of ["/v1/otp", "/v1/otp/verify", "/v1/messages", "/v1/keys"]) {
        const reply = await gw.call("POST", route, body);
        expect(reply.status, `${route} with ${body}`).toBe(400);
        expectEnvelope(reply.json, "invalid_request");
      }
      await expectHealthy();
    });
  });

  describe("wrong types", () => {
    it("codeLength as a string → 400 naming codeLength", async () => {
      const reply = await gw.call("POST", "/v1/otp", { to: "+254711222333", codeLength: "6" });
      expect(reply.status).toBe(400);
      expect(expectEnvelope(reply.json, "invalid_request").message).toContain("codeLength");
      expect(twilio.received).toHaveLength(0);
    });

    it("codeLength out of range → 400", async () => {
      for (const codeLength of [3, 11, 6.5]) {
        const reply = await gw.call("POST", "/v1/otp", { to: "+254711222333", codeLength });
        expect(reply.status, `codeLength ${codeLength}`).toBe(400);
        expect(expectEnvelope(reply.json, "invalid_request").message).toContain("codeLength");
      }
    });

    it("code as a number → 400 naming code", async () => {
      const reply = await gw.call("POST", "/v1/otp/verify", { userId: "u-1", code: 123456 });
      expect(reply.status).toBe(400);
      expect(expectEnvelope(reply.json, "invalid_request").message).toContain("code");
    });

    it("to as a number → 400 naming to", async () => {
      const reply = await gw.call("POST", "/v1/otp", { to: 254711222333 });
      expect(reply.status).toBe(400);
      expect(expectEnvelope(reply.json, "invalid_request").message).toMatch(/\bto\b/);
      const message = await gw.call("POST", "/v1/messages", { to: 254711222333, body: "hi" });
      expect(message.status).toBe(400);
      expectEnvelope(message.json, "invalid_request");
    });

    it("scopes that are not a list of known scopes → 400", async () => {
      for (const scopes of ["admin", ["root"], []]) {
        const reply = await gw.call("POST", "/v1/keys", { name: "x", scopes });
        expect(reply.status, JSON.stringify(scopes)).toBe(400);
        expectEnvelope(reply.json, "invalid_request");
      }
      await expectHealthy();
    });
  });

  describe("unknown fields", () => {
    it.each([
      ["/v1/otp", { to: "+254711222333", code: "123456" }, "code"],
      ["/v1/otp/verify", { userId: "u-1", code: "123456", trustMe: true }, "trustMe"],
      ["/v1/messages", { to: "+254711222333", body: "hi", priority: "high" }, undefined],
      ["/v1/keys", { name: "k", scopes: ["otp"], digest: "00" }, "digest"],
    ])("%s refuses an unknown field", async (route, body, field) => {
      const reply = await gw.call("POST", route, body);
      expect(reply.status).toBe(400);
      const error = expectEnvelope(reply.json, "invalid_request");
      if (field) expect(error.message).toContain(field);
    });

    it("nothing was sent for any of the refused requests", () => {
      expect(twilio.received).toHaveLength(0);
    });
  });

  describe("body size", () => {
    it("a JSON body over 64 KiB → 413 payload_too_large, and the next request is answered", async () => {
      const big = JSON.stringify({ to: "+254711222333", body: "x".repeat(70 * 1024) });
      const reply = await gw.call("POST", "/v1/messages", big);
      expect(reply.status).toBe(413);
      expectEnvelope(reply.json, "payload_too_large");
      await expectHealthy();
    });

    it("an oversized body sent without Content-Length (chunked) → 413 too", async () => {
      const chunk = new TextEncoder().encode("x".repeat(8 * 1024));
      let sent = 0;
      const stream = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (sent === 0) controller.enqueue(new TextEncoder().encode('{"to": "+254711222333", "body": "'));
          if (sent >= 10) {
            controller.enqueue(new TextEncoder().encode('"}'));
            controller.close();
            return;
          }
          sent += 1;
          controller.enqueue(chunk);
        },
      });
      const response = await fetch(`${gw.url}/v1/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
        body: stream,
        duplex: "half",
      } as RequestInit);
      expect(response.status).toBe(413);
      expectEnvelope(await response.json(), "payload_too_large");
      await expectHealthy();
    });

    it("a body just under the limit is read (and refused only for its content)", async () => {
      const body = JSON.stringify({ to: "+254711222333", body: "x".repeat(60 * 1024) });
      const reply = await gw.call("POST", "/v1/messages", body);
      expect(reply.status).toBe(400); // body longer than 1600 characters, not 413
      expect(expectEnvelope(reply.json, "invalid_request").message).toContain("body");
    });
  });

  describe("phone numbers", () => {
    it.each(["12345", "+999123456789", "+2547", "not a number", "+254 711 222 333 444 555"])("%s → 400 naming to", async (to) => {
      const reply = await gw.call("POST", "/v1/otp", { to });
      expect(reply.status).toBe(400);
      const error = expectEnvelope(reply.json, "invalid_request");
      expect(error.message).toMatch(/\bto\b/);
      expect(reply.json.error.details).toEqual(expect.arrayContaining([expect.objectContaining({ field: expect.stringMatching(/\bto$/) })]));
    });

    it("a bad number on /v1/messages names the field as well, in both shapes", async () => {
      const modern = await gw.call("POST", "/v1/messages", { to: "12345", body: "hi" });
      expect(modern.status).toBe(400);
      expect(expectEnvelope(modern.json, "invalid_request").message).toMatch(/\bto\b/);
      const older = await gw.call("POST", "/v1/messages", { cell: "12345", message: "hi" });
      expect(older.status).toBe(400);
      expect(expectEnvelope(older.json, "invalid_request").message).toMatch(/\bcell\b/);
      expect(twilio.received).toHaveLength(0);
      await expectHealthy();
    });

    it("neither to nor email → 400", async () => {
      const reply = await gw.call("POST", "/v1/otp", { userId: "nobody" });
      expect(reply.status).toBe(400);
      expectEnvelope(reply.json, "invalid_request");
    });
  });

  describe("unknown ids", () => {
    it("GET /v1/otp/:id for an id never issued → 404", async () => {
      const reply = await gw.call("GET", "/v1/otp/00000000-0000-4000-8000-000000000000");
      expect(reply.status).toBe(404);
      expectEnvelope(reply.json, "not_found");
    });

    it("verify with an unknown id, user or number → 404", async () => {
      for (const body of [
        { id: "00000000-0000-4000-8000-000000000000", code: "123456" },
        { userId: "never-sent", code: "123456" },
        { to: "+254711999888", code: "123456" },
      ]) {
        const reply = await gw.call("POST", "/v1/otp/verify", body);
        expect(reply.status, JSON.stringify(body)).toBe(404);
        expectEnvelope(reply.json, "not_found");
      }
      await expectHealthy();
    });

    it("an id longer than allowed → 400, not 404 or 500", async () => {
      const reply = await gw.call("GET", `/v1/otp/${"a".repeat(129)}`);
      expect(reply.status).toBe(400);
      expectEnvelope(reply.json, "invalid_request");
    });

    it("GET /v1/messages/:id for an unknown id → 404", async () => {
      const reply = await gw.call("GET", "/v1/messages/00000000-0000-4000-8000-000000000000");
      expect(reply.status).toBe(404);
      expectEnvelope(reply.json, "not_found");
    });

    it("DELETE /v1/keys/:id for an unknown id → 404", async () => {
      const reply = await gw.call("DELETE", "/v1/keys/00000000-0000-4000-8000-000000000000");
      expect(reply.status).toBe(404);
      expectEnvelope(reply.json, "not_found");
    });
  });

  describe("authentication", () => {
    const routes: [string, string, unknown][] = [
      ["POST", "/v1/otp", { to: "+254711222333" }],
      ["POST", "/v1/otp/verify", { userId: "u-1", code: "123456" }],
      ["GET", "/v1/otp/00000000-0000-4000-8000-000000000000", undefined],
      ["POST", "/v1/messages", { to: "+254711222333", body: "hi" }],
      ["GET", "/v1/keys", undefined],
    ];

    it("no key → 401 on every API route", async () => {
      for (const [method, route, body] of routes) {
        const reply = await gw.call(method, route, body, null);
        expect(reply.status, `${method} ${route}`).toBe(401);
        expectEnvelope(reply.json, "unauthorized");
      }
      expect(twilio.received).toHaveLength(0);
      await expectHealthy();
    });

    it("a wrong key → 401, by Bearer or by x-api-key", async () => {
      for (const [method, route, body] of routes) {
        const reply = await gw.call(method, route, body, `${ADMIN_KEY}x`);
        expect(reply.status, `${method} ${route}`).toBe(401);
        expectEnvelope(reply.json, "unauthorized");
      }
      const viaHeader = await raw("/v1/keys", { method: "GET", headers: { authorization: "", "x-api-key": "og_live_not-a-real-key" } });
      expect(viaHeader.status).toBe(401);
      expectEnvelope(viaHeader.json, "unauthorized");
      const malformed = await raw("/v1/keys", { method: "GET", headers: { authorization: "Basic Zm9vOmJhcg==" } });
      expect(malformed.status).toBe(401);
      expectEnvelope(malformed.json, "unauthorized");
      expect(twilio.received).toHaveLength(0);
    });

    it("a key revoked with DELETE /v1/keys/:id → 401 from then on", async () => {
      const created = await gw.call("POST", "/v1/keys", { name: "short-lived", scopes: ["otp", "messages"] });
      expect(created.status).toBe(201);
      const key: string = created.json.key;
      expect((await gw.call("GET", "/v1/otp/00000000-0000-4000-8000-000000000000", undefined, key)).status).toBe(404);

      const revoked = await gw.call("DELETE", `/v1/keys/${created.json.id}`);
      expect(revoked.status).toBe(200);
      expect(revoked.json.revokedAt).toEqual(expect.any(String));

      for (const [method, route, body] of routes.slice(0, 4)) {
        const reply = await gw.call(method, route, body, key);
        expect(reply.status, `${method} ${route}`).toBe(401);
        expectEnvelope(reply.json, "unauthorized");
      }
      const viaHeader = await raw("/v1/otp/00000000-0000-4000-8000-000000000000", { method: "GET", headers: { authorization: "", "x-api-key": key } });
      expect(viaHeader.status).toBe(401);
      // Revoking twice is harmless; the admin key is untouched.
      expect((await gw.call("DELETE", `/v1/keys/${created.json.id}`)).status).toBe(200);
      await expectHealthy();
    });

    it("the auth check runs after body parsing, but a bad key still never gets a 2xx", async () => {
      const reply = await gw.call("POST", "/v1/otp", { to: "+254711222333", bogus: 1 }, "wrong");
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expectEnvelope(reply.json);
    });
  });

  describe("routes and media types", () => {
    it("an unknown route → 404 in the envelope, with or without a key", async () => {
      for (const [method, route, key] of [
        ["GET", "/v1/nope", ADMIN_KEY],
        ["POST", "/v2/otp", ADMIN_KEY],
        ["GET", "/nope", null],
        ["PATCH", "/v1/otp", ADMIN_KEY],
      ] as const) {
        const reply = await gw.call(method, route, method === "GET" ? undefined : {}, key);
        expect(reply.status, `${method} ${route}`).toBe(404);
        expect(expectEnvelope(reply.json, "not_found").message).toContain(route);
      }
      await expectHealthy();
    });

    it.each([
      ["application/x-www-form-urlencoded", "to=%2B254711222333"],
      ["application/xml", "<otp><to>+254711222333</to></otp>"],
      ["multipart/form-data; boundary=x", '--x\r\nContent-Disposition: form-data; name="to"\r\n\r\n+254711222333\r\n--x--\r\n'],
    ])("Content-Type %s → 415 unsupported_media_type", async (contentType, body) => {
      const reply = await raw("/v1/otp", { headers: { "content-type": contentType }, body });
      expect(reply.status).toBe(415);
      expectEnvelope(reply.json, "unsupported_media_type");
      await expectHealthy();
    });

    it("text/plain is not taken as a request either", async () => {
      const reply = await raw("/v1/otp", { headers: { "content-type": "text/plain" }, body: '{"to": "+254711222333"}' });
      expect(reply.status).toBeGreaterThanOrEqual(400);
      expect(reply.status).toBeLessThan(500);
      expectEnvelope(reply.json);
      expect(twilio.received).toHaveLength(0);
    });

    it("JSON with a charset parameter is fine", async () => {
      const reply = await raw("/v1/otp/verify", {
        headers: { "content-type": "application/json; charset=utf-8" },
        body: JSON.stringify({ userId: "never-sent", code: "123456" }),
      });
      expect(reply.status).toBe(404);
      expectEnvelope(reply.json, "not_found");
    });
  });
});
