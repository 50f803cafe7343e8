/**
 * What an operator reads (issue 10, item 3): a gateway in its own process, as
 * users run it, with its stdout a pipe. JSON lines or readable lines
 * (LOG_FORMAT), ISO times, one line per HTTP request and never a key or token
 * in it, a line per phone connect and disconnect with the device id, and a
 * line when a job ends undelivered carrying the id the API showed.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { SimulatedPhone } from "../tools/phone-simulator/phone.js";
import { connectPhone } from "./support/phones.js";
import { loadConfig } from "../api/config/config.js";
import { resolveLogFormat } from "../api/logging/logger.js";
import { spawnGateway, type GatewayProcess } from "./support/gateway-process.js";
import { ADMIN_KEY, eventually } from "./support/gateway.js";

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

const gateways: GatewayProcess[] = [];
const phones: SimulatedPhone[] = [];

afterEach(async () => {
  await Promise.all(phones.splice(0).map((phone) => phone.close()));
  await Promise.all(gateways.splice(0).map((gw) => gw.kill("SIGTERM")));
});

async function gateway(env: Record<string, string>): Promise<GatewayProcess> {
  const gw = await spawnGateway({ name: "logs", env: { LOG_LEVEL: "info", ...env } });
  gateways.push(gw);
  return gw;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Line = Record<string, any>;

function jsonLines(gw: GatewayProcess): Line[] {
  return gw
    .output()
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as Line);
}

describe("logs", () => {
  it("picks pretty on a terminal and JSON otherwise, unless LOG_FORMAT says", () => {
    expect(resolveLogFormat(undefined, true)).toBe("pretty");
    expect(resolveLogFormat(undefined, false)).toBe("json");
    expect(resolveLogFormat("json", true)).toBe("json");
    expect(resolveLogFormat("pretty", false)).toBe("pretty");
    expect(loadConfig({ LOG_FORMAT: "json" })).toMatchObject({ ok: true, config: { logFormat: "json" } });
    expect(loadConfig({})).toMatchObject({ ok: true, config: { logFormat: undefined } });
    expect(loadConfig({ LOG_FORMAT: "yaml" })).toEqual({ ok: false, problems: ['LOG_FORMAT: must be pretty or json (got "yaml")'] });
  });

  it("LOG_FORMAT=json: every line is JSON with an ISO time, one line per request, no key, token or query string", async () => {
    const gw = await gateway({ LOG_FORMAT: "json" });
    const device = await gw.call("POST", "/v1/devices", { name: "drawer" });
    expect(device.status).toBe(201);
    const token: string = device.json.token;
    const requests: [string, string, Record<string, string>][] = [
      ["GET", "/v1/keys", { authorization: `Bearer ${ADMIN_KEY}` }],
      ["GET", "/v1/keys", { "x-api-key": ADMIN_KEY }],
      ["GET", "/v1/keys", { authorization: "Bearer og_live_not-a-key-at-all-0123456789" }],
      ["GET", `/v1/devices/${device.json.id}/qr?token=${encodeURIComponent(token)}`, { "x-api-key": ADMIN_KEY }],
      ["GET", `/no/such/path?token=${encodeURIComponent(token)}`, {}],
    ];
    const statuses: number[] = [];
    for (const [method, route, headers] of requests) statuses.push((await fetch(gw.url + route, { method, headers })).status);
    expect(statuses).toEqual([200, 200, 401, 200, 404]);

    // The POST /v1/devices above, and the five.
    const requestLines = await eventually(async () => {
      const found = jsonLines(gw).filter((line) => typeof line.status === "number" && line.method);
      return found.length >= 6 && found;
    }, 5000, "the request lines");
    const lines = jsonLines(gw);
    for (const line of lines) expect(line.time).toMatch(ISO);
    expect(requestLines.map((line) => [line.method, line.route, line.status])).toEqual([
      ["POST", "/v1/devices", 201],
      ["GET", "/v1/keys", 200],
      ["GET", "/v1/keys", 200],
      ["GET", "/v1/keys", 401],
      ["GET", "/v1/devices/:id/qr", 200],
      ["GET", null, 404],
    ]);
    for (const line of requestLines) {
      expect(line.level).toBe(30);
      expect(typeof line.ms).toBe("number");
      // Exactly one line per request at info: nothing else carries its request id.
      expect(lines.filter((other) => other.reqId === line.reqId)).toHaveLength(1);
    }
    expect(requestLines.at(-1)!.path).toBe("/no/such/path");
    // The readiness probes spawnGateway made are at debug.
    expect(lines.some((line) => line.route === "/readyz")).toBe(false);

    const text = gw.output();
    expect(text).not.toContain(ADMIN_KEY);
    expect(text).not.toContain(token);
    expect(text).not.toContain("og_live_not-a-key");
    expect(text).not.toContain("token=");
    expect(text).not.toContain("incoming request");
    expect(text).not.toContain("request completed");
    // Fastify would say FSTDEP… on stderr (captured here too) for a deprecated option.
    expect(text).not.toMatch(/FSTDEP|DeprecationWarning/);
  });

  it("LOG_FORMAT=pretty, even into a pipe: one readable line per event with an ISO time, no colour codes", async () => {
    const gw = await gateway({ LOG_FORMAT: "pretty" });
    expect((await gw.call("GET", "/v1/keys")).status).toBe(200);
    // readyz answers once HTTP listens; "otpgate is up" comes after the MQTT listeners too, so it may follow the request line.
    await eventually(async () => gw.output().includes("GET /v1/keys 200") && gw.output().includes("INFO: otpgate is up"), 10_000, "the request line and the start line");
    const lines = gw.output().split("\n").filter((line) => line.trim());
    for (const line of lines) expect(line).toMatch(/^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /);
    expect(lines.some((line) => line.includes("INFO: otpgate is up"))).toBe(true);
    expect(lines.filter((line) => line.includes("GET /v1/keys 200"))).toHaveLength(1);
    expect(gw.output()).not.toContain("\u001b[");
    expect(gw.output()).not.toContain(ADMIN_KEY);
  });

  it("logs a phone's connect and disconnect with its device id, and a failed job with the OTP id the API showed", async () => {
    const gw = await gateway({ LOG_FORMAT: "json" });
    const device = (await gw.call("POST", "/v1/devices", { name: "failing phone" })).json;
    // Every send fails on the phone, and no other route is configured: the job ends failed on this phone.
    const phone = await connectPhone(gw, device, { latencyMs: 0, failureRate: 1 });
    phones.push(phone);
    const connected = await eventually(async () => jsonLines(gw).find((line) => line.msg === `phone ${device.id} connected`), 5000, "the connect line");
    expect(connected).toMatchObject({ level: 30, component: "phones", device: device.id });

    const otp = await gw.call("POST", "/v1/otp", { to: "+254711222333" });
    expect(otp.status).toBe(202);
    const failed = await eventually(async () => jsonLines(gw).find((line) => line.component === "jobs"), 10_000, "the failed-job line");
    expect(failed).toMatchObject({ level: 40, otpId: otp.json.id, kind: "otp", route: `device:${device.id}` });
    expect(failed.reason).toMatch(/^device:/);
    expect(failed.msg).toMatch(/^OTP failed: /);
    // Every line about the job (the dispatcher's too) names it by the id the API showed.
    const aboutJob = jsonLines(gw).filter((line) => line.jobId === failed.jobId);
    expect(aboutJob.length).toBeGreaterThan(1);
    for (const line of aboutJob) expect(line.otpId).toBe(otp.json.id);
    expect(failed.jobId).not.toBe(otp.json.id);

    await phone.disconnect();
    const disconnected = await eventually(async () => jsonLines(gw).find((line) => line.msg === `phone ${device.id} disconnected`), 5000, "the disconnect line");
    expect(disconnected).toMatchObject({ level: 30, component: "phones", device: device.id });
    expect(typeof disconnected.connectedForS).toBe("number");
    expect(gw.output()).not.toContain(device.token);
  });
});
