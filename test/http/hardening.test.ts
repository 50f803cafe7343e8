/**
 * HTTP hardening: header, body, idle and keep-alive timeouts close stalled
 * connections (WebSocket MQTT stays up); TRUST_PROXY decides whose address the
 * per-IP limit counts; every error the server sends, Fastify's and Node's own
 * included, is the JSON envelope; a client that hangs up mid-upload is neither
 * an error in the log nor a 503.
 */
import { connect, type Socket } from "node:net";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../api/config/config.js";
import { toApiError } from "../../api/http/errors.js";
import { ADMIN_KEY, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectClient, endClient, sleep, subscribeCodes } from "../support/mqtt-clients.js";
import { registerDevice } from "../support/phones.js";

const REQUEST_TIMEOUT_MS = 1200;
const HEADERS_TIMEOUT_MS = 600;
const IDLE_TIMEOUT_MS = 1500;
const KEEPALIVE_TIMEOUT_MS = 400;
/** Node checks deadlines on a timer (≤ 1 s apart, see server.ts) and the test machine is loaded. */
const SLACK_MS = 1500;

interface LogLine {
  level: number;
  msg?: string;
}

/** A pino logger whose lines the test can read. */
function capturedLogger() {
  const lines: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) });
  return { logger, lines };
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** Milliseconds from the first write until the server closed the connection. */
  closedAfterMs: number;
}

/** Opens a TCP connection, writes `chunks` (a function writes at its own pace), and reads until the server closes. */
function exchange(port: number, chunks: string | Buffer | ((socket: Socket) => void), timeoutMs = 8000): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1");
    const received: Buffer[] = [];
    let started = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`connection still open after ${timeoutMs} ms; got ${Buffer.concat(received).toString()}`));
    }, timeoutMs);
    socket.on("connect", () => {
      started = Date.now();
      if (typeof chunks === "function") chunks(socket);
      else socket.write(chunks);
    });
    socket.on("data", (data) => received.push(data));
    socket.on("error", () => {
      // a reset after the reply is fine: what was read is what counts
    });
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ ...parseResponse(Buffer.concat(received).toString("latin1")), closedAfterMs: Date.now() - started });
    });
  });
}

function parseResponse(raw: string): Omit<RawResponse, "closedAfterMs"> {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) return { status: 0, headers: {}, body: raw };
  const [statusLine = "", ...headerLines] = raw.slice(0, end).split("\r\n");
  const headers = Object.fromEntries(
    headerLines.map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
  );
  const length = headers["content-length"] ? Number(headers["content-length"]) : undefined;
  const rest = raw.slice(end + 4);
  return { status: Number(statusLine.split(" ")[1]), headers, body: length === undefined ? rest : rest.slice(0, length) };
}

/** Status, JSON content type and `{"error": {"code", "message"}}`, nothing else. */
function expectEnvelope(reply: { status: number; contentType: string | null | undefined; body: string }, status: number, code: string) {
  expect(reply.status, reply.body).toBe(status);
  expect(reply.contentType).toMatch(/^application\/json/);
  const json = JSON.parse(reply.body) as unknown;
  expect(json).toEqual({ error: { code, message: expect.any(String) } });
}
const rawEnvelope = (reply: RawResponse, status: number, code: string) =>
  expectEnvelope({ status: reply.status, contentType: reply.headers["content-type"], body: reply.body }, status, code);

async function fetchEnvelope(gw: TestGateway, route: string, init: RequestInit, status: number, code: string): Promise<Response> {
  const response = await fetch(gw.url + route, init);
  expectEnvelope({ status: response.status, contentType: response.headers.get("content-type"), body: await response.text() }, status, code);
  return response;
}

const errorLines = (lines: LogLine[]) => lines.filter((line) => line.level >= 50);

describe("HTTP hardening", () => {
  let gw: TestGateway;
  let port: number;
  const log = capturedLogger();

  beforeAll(async () => {
    gw = await startGateway({
      store: "memory",
      logger: log.logger,
      env: {
        HTTP_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
        HTTP_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
        HTTP_IDLE_TIMEOUT_MS: String(IDLE_TIMEOUT_MS),
        HTTP_KEEPALIVE_TIMEOUT_MS: String(KEEPALIVE_TIMEOUT_MS),
      },
    });
    port = Number(new URL(gw.url).port);
  });
  afterAll(async () => {
    await gw?.close();
  });

  describe("timeouts", () => {
    it("a slowloris header (one line every 100 ms) gets 408 in the envelope and is closed within the headers timeout", async () => {
      const reply = await exchange(port, (socket) => {
        socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n");
        const drip = setInterval(() => socket.writable && socket.write("X-Drip: 1\r\n"), 100);
        socket.on("close", () => clearInterval(drip));
      });
      rawEnvelope(reply, 408, "request_timeout");
      expect(reply.headers.connection).toBe("close");
      expect(reply.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
      expect(reply.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
    });

    it("a connection that never sends a byte is closed within the headers timeout", async () => {
      const reply = await exchange(port, () => {});
      expect(reply.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + SLACK_MS);
      rawEnvelope(reply, 408, "request_timeout");
    });

    it("a slow body (one byte every 100 ms) gets 408 and is closed within the request timeout, with no error logged", async () => {
      const before = log.lines.length;
      const reply = await exchange(port, (socket) => {
        socket.write(`POST /v1/otp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{`);
        const drip = setInterval(() => socket.writable && socket.write(" "), 100);
        socket.on("close", () => clearInterval(drip));
      });
      rawEnvelope(reply, 408, "request_timeout");
      expect(reply.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
      expect(reply.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + SLACK_MS);
      await sleep(200);
      expect(errorLines(log.lines.slice(before))).toEqual([]);
    });

    it("150 slow bodies at once are all closed within the request timeout", async () => {
      const replies = await Promise.all(
        Array.from({ length: 150 }, () =>
          exchange(port, (socket) => {
            socket.write("POST /v1/otp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{");
            const drip = setInterval(() => socket.writable && socket.write(" "), 200);
            socket.on("close", () => clearInterval(drip));
          }),
        ),
      );
      for (const reply of replies) expect(reply.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + 2 * SLACK_MS);
      expect(replies.filter((reply) => reply.status === 408)).toHaveLength(150);
    });

    it("an idle keep-alive connection is closed after the keep-alive timeout", async () => {
      const reply = await exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
      expect(reply.status).toBe(200);
      expect(reply.closedAfterMs).toBeGreaterThanOrEqual(KEEPALIVE_TIMEOUT_MS - 50);
      expect(reply.closedAfterMs).toBeLessThan(KEEPALIVE_TIMEOUT_MS + SLACK_MS);
    });

    it("the HTTP server carries the configured timeouts", () => {
      const server = gw.gateway.http.server;
      expect({ request: server.requestTimeout, headers: server.headersTimeout, keepAlive: server.keepAliveTimeout, idle: server.timeout }).toEqual({
        request: REQUEST_TIMEOUT_MS,
        headers: HEADERS_TIMEOUT_MS,
        keepAlive: KEEPALIVE_TIMEOUT_MS,
        idle: IDLE_TIMEOUT_MS,
      });
    });

    it("a request whose body arrives in time is served", async () => {
      const created = await gw.call("POST", "/v1/keys", { name: "in time" });
      expect(created.status).toBe(201);
    });

    it("MQTT over WebSocket at /mqtt stays connected well past every HTTP timeout", async () => {
      const device = await registerDevice(gw, { name: "ws past timeouts" });
      const wsUrl = `ws://127.0.0.1:${port}/mqtt`;
      // keepalive 60 s: the client sends nothing on its own during the wait, so an idle timeout would show.
      const client = await connectClient(wsUrl, { clientId: device.id, username: device.id, password: device.token, clean: false, keepalive: 60 });
      let closedAt: number | undefined;
      client.on("close", () => (closedAt ??= Date.now()));
      try {
        await sleep(Math.max(REQUEST_TIMEOUT_MS, IDLE_TIMEOUT_MS, KEEPALIVE_TIMEOUT_MS) + 2 * SLACK_MS);
        expect(closedAt, "the WebSocket was closed").toBeUndefined();
        expect(client.connected).toBe(true);
        expect(await subscribeCodes(client, `sms/out/${device.id}`)).toEqual([1]);
      } finally {
        await endClient(client);
      }
    });
  });

  describe("every error is the envelope", () => {
    it("a path parameter that is not valid UTF-8 → 400 invalid_url (Fastify's FST_ERR_BAD_URL)", async () => {
      rawEnvelope(await exchange(port, "GET /v1/otp/%c0%af HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 400, "invalid_url");
    });

    it("a path parameter over the maximum length → 414 uri_too_long", async () => {
      await fetchEnvelope(gw, `/v1/otp/${"a".repeat(300)}`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } }, 414, "uri_too_long");
    });

    it("headers over Node's 16 KiB → 431 headers_too_large, written on the raw socket", async () => {
      const reply = await exchange(port, `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
      rawEnvelope(reply, 431, "headers_too_large");
    });

    it.each([
      ["an unknown method token", "BREW / HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["a broken request line", "GET /healthz HTTP/9\r\n\r\n"],
      ["a non-numeric Content-Length", "POST /v1/otp HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"],
      ["a header line without a colon", "GET /healthz HTTP/1.1\r\nHost: x\r\nnonsense\r\n\r\n"],
    ])("%s → 400 invalid_request from Node's parser", async (_label, request) => {
      rawEnvelope(await exchange(port, request), 400, "invalid_request");
    });

    it("an unknown route → 404 not_found", async () => {
      await fetchEnvelope(gw, "/no/such/route", {}, 404, "not_found");
    });

    it("a known path under a method it does not take, or a method Fastify has no router for → 404 not_found", async () => {
      await fetchEnvelope(gw, "/v1/otp", { method: "DELETE" }, 404, "not_found");
      await fetchEnvelope(gw, "/healthz", { method: "PUT" }, 404, "not_found");
      rawEnvelope(await exchange(port, "PROPFIND /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"), 404, "not_found");
    });

    it("a body over 64 KiB → 413 payload_too_large, declared or streamed", async () => {
      const headers = { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" };
      await fetchEnvelope(gw, "/v1/otp", { method: "POST", headers, body: JSON.stringify({ to: "+254711000001", pad: "x".repeat(70_000) }) }, 413, "payload_too_large");
      const chunked = await exchange(
        port,
        `POST /v1/otp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${(70_000).toString(16)}\r\n${"x".repeat(70_000)}\r\n0\r\n\r\n`,
      );
      rawEnvelope(chunked, 413, "payload_too_large");
    });

    it("a body in a media type the API does not read → 415 unsupported_media_type", async () => {
      await fetchEnvelope(gw, "/v1/otp", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/xml" }, body: "<to/>" }, 415, "unsupported_media_type");
    });

    it("malformed JSON → 400 invalid_json", async () => {
      await fetchEnvelope(gw, "/v1/otp", { method: "POST", headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" }, body: '{"to":' }, 400, "invalid_json");
    });

    it("an Upgrade to anything but /mqtt → 404 not_found, instead of a socket nobody answers", async () => {
      const reply = await exchange(port, "GET /v1/otp HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
      rawEnvelope(reply, 404, "not_found");
    });

    it("a bad WebSocket handshake at /mqtt → 400 (405 for a wrong method) in the envelope, not ws's HTML page", async () => {
      const upgrade = (method: string, key: string, version: string) =>
        `${method} /mqtt HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: ${version}\r\nSec-WebSocket-Key: ${key}\r\n\r\n`;
      rawEnvelope(await exchange(port, upgrade("GET", "not-a-key", "13")), 400, "invalid_websocket_handshake");
      const badVersion = await exchange(port, upgrade("GET", "dGhlIHNhbXBsZSBub25jZQ==", "99"));
      rawEnvelope(badVersion, 400, "invalid_websocket_handshake");
      expect(badVersion.headers["sec-websocket-version"]).toBe("13, 8");
      rawEnvelope(await exchange(port, upgrade("POST", "dGhlIHNhbXBsZSBub25jZQ==", "13")), 405, "invalid_websocket_handshake");
    });

    it("an Upgrade whose target is not a URL is refused, and the node keeps serving", async () => {
      // Both upgrade listeners (this server's and the broker's /mqtt) parse the target; a throw there would end the process.
      const reply = await exchange(port, "GET //[ HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n");
      rawEnvelope(reply, 404, "not_found");
      expect((await fetch(gw.url + "/healthz")).status).toBe(200);
    });

    it("the seed routes keep their own envelope for their own refusals", async () => {
      const response = await fetch(gw.url + "/send-otp", { method: "POST", headers: { "x-api-key": ADMIN_KEY, "content-type": "application/json" }, body: '{"phone":' });
      expect(response.status).toBe(400);
      expect(await response.json()).toEqual({ success: false, data: null, message: expect.any(String), error: "invalid_json" });
    });

    it("none of this logged an error", () => {
      expect(errorLines(log.lines)).toEqual([]);
    });
  });

  describe("client aborts", () => {
    const metric503 = async () => {
      const text = await (await fetch(gw.url + "/metrics")).text();
      return text.split("\n").filter((line) => line.startsWith("otpgate_http_request_duration_seconds_count") && line.includes('status="503"'));
    };

    it("a client that hangs up mid-upload is logged at debug, never as an error, and never answered or counted as 503", async () => {
      const before = log.lines.length;
      for (let i = 0; i < 5; i++) {
        await new Promise<void>((resolve) => {
          const socket = connect(port, "127.0.0.1", () => {
            socket.write(`POST /v1/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${ADMIN_KEY}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"to":"+2547`);
            setTimeout(() => socket.destroy(), 50);
          });
          socket.on("close", () => resolve());
          socket.on("error", () => {});
        });
      }
      const aborted = await eventually(
        async () => {
          const found = log.lines.slice(before).filter((line) => line.msg === "client closed the connection mid-request");
          return found.length === 5 && found;
        },
        3000,
        "the debug lines for the aborts",
      );
      expect(aborted.every((line) => line.level === 20)).toBe(true);
      expect(errorLines(log.lines.slice(before))).toEqual([]);
      expect(log.lines.slice(before).filter((line) => line.level >= 40)).toEqual([]);
      expect(await metric503()).toEqual([]);
    });

    it("a client that hangs up mid-headers logs no error either", async () => {
      const before = log.lines.length;
      await new Promise<void>((resolve) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.write("POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Ty");
          setTimeout(() => socket.destroy(), 50);
        });
        socket.on("close", () => resolve());
      });
      await sleep(200);
      expect(errorLines(log.lines.slice(before))).toEqual([]);
    });

    it("an abort is told apart from a lost Redis connection, which stays 503 store_unavailable", () => {
      const abort = Object.assign(new Error("aborted"), { code: "ECONNRESET" });
      expect(toApiError(abort).error).toMatchObject({ statusCode: 400, code: "client_aborted" });
      const redisReset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET", syscall: "read", errno: -104 });
      expect(toApiError(redisReset).error).toMatchObject({ statusCode: 503, code: "store_unavailable" });
    });
  });
});

describe("TRUST_PROXY and the per-IP limit", () => {
  const open: TestGateway[] = [];
  afterAll(async () => {
    await Promise.all(open.map((gw) => gw.close()));
  });
  const gateway = async (env: Record<string, string>) => {
    const gw = await startGateway({ store: "memory", env: { RATE_LIMIT_PER_IP: "2", ...env } });
    open.push(gw);
    return gw;
  };
  const asClient = (gw: TestGateway, forwardedFor: string) =>
    fetch(gw.url + "/v1/keys", { headers: { authorization: `Bearer ${ADMIN_KEY}`, "x-forwarded-for": forwardedFor } }).then((response) => response.status);

  it("trusting the loopback proxy, two X-Forwarded-For clients have separate budgets", async () => {
    const gw = await gateway({ TRUST_PROXY: "127.0.0.1" });
    expect([await asClient(gw, "203.0.113.1"), await asClient(gw, "203.0.113.1"), await asClient(gw, "203.0.113.1")]).toEqual([200, 200, 429]);
    expect([await asClient(gw, "203.0.113.2"), await asClient(gw, "203.0.113.2")]).toEqual([200, 200]);
    // The client is the address the trusted proxy appended last, not one the client wrote before it.
    expect(await asClient(gw, "198.51.100.7, 203.0.113.1")).toBe(429);
  });

  it("with TRUST_PROXY off (the default), X-Forwarded-For is ignored: a spoofed header does not dodge the limit", async () => {
    const gw = await gateway({});
    expect([await asClient(gw, "203.0.113.1"), await asClient(gw, "203.0.113.2"), await asClient(gw, "203.0.113.3")]).toEqual([200, 200, 429]);
  });

  it("trusting a proxy elsewhere, a direct client's X-Forwarded-For is ignored", async () => {
    const gw = await gateway({ TRUST_PROXY: "10.0.0.0/8" });
    expect([await asClient(gw, "203.0.113.1"), await asClient(gw, "203.0.113.2"), await asClient(gw, "203.0.113.3")]).toEqual([200, 200, 429]);
  });
});

describe("HTTP configuration", () => {
  const http = (env: Record<string, string>) => {
    const result = loadConfig(env);
    return result.ok ? result.config.http : result.problems;
  };

  it("has timeouts by default and trusts no proxy", () => {
    expect(http({})).toMatchObject({ requestTimeoutMs: 30_000, headersTimeoutMs: 10_000, keepAliveTimeoutMs: 72_000, idleTimeoutMs: 60_000, trustProxy: false });
  });

  it("reads TRUST_PROXY as true/false or a list of addresses, CIDRs and named ranges", () => {
    const trust = (value: string) => {
      const result = http({ TRUST_PROXY: value });
      return Array.isArray(result) ? result : result.trustProxy;
    };
    expect(trust("true")).toBe(true);
    expect(trust("FALSE")).toBe(false);
    expect(trust("")).toBe(false);
    expect(trust("127.0.0.1")).toEqual(["127.0.0.1"]);
    expect(trust("10.0.0.0/8, 192.168.1.1 ,::1,fd00::/8,loopback")).toEqual(["10.0.0.0/8", "192.168.1.1", "::1", "fd00::/8", "loopback"]);
  });

  it("refuses a hop count and anything that is not an address, naming TRUST_PROXY", () => {
    expect(http({ TRUST_PROXY: "1" })).toEqual([expect.stringMatching(/^TRUST_PROXY: a hop count cannot tell a proxy/)]);
    for (const value of ["10.0.0.300", "10.0.0.0/33", "lb.example.com", "yes"]) {
      expect(http({ TRUST_PROXY: value }), value).toEqual([expect.stringMatching(/^TRUST_PROXY: must be true, false, or addresses/)]);
    }
  });

  it("validates the timeouts, and the headers timeout may not exceed the request timeout", () => {
    expect(http({ HTTP_REQUEST_TIMEOUT_MS: "0" })).toEqual([expect.stringMatching(/^HTTP_REQUEST_TIMEOUT_MS: /)]);
    expect(http({ HTTP_IDLE_TIMEOUT_MS: "soon" })).toEqual([expect.stringMatching(/^HTTP_IDLE_TIMEOUT_MS: .*"soon"/)]);
    expect(http({ HTTP_REQUEST_TIMEOUT_MS: "5000", HTTP_HEADERS_TIMEOUT_MS: "6000" })).toEqual([
      "HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (5000)",
    ]);
  });
});
