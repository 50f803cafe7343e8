/**
 * GET /v1/messages and GET /v1/otp over HTTP, on a real gateway: each item is
 * exactly what the single-item GET shows (the number masked, never a body or
 * a code), filters and cursor pages, the CSV form parsed back and compared,
 * the error envelope for bad filters and cursors, the scopes, and lookups that
 * keep working for HISTORY_RETENTION_DAYS instead of an hour.
 */
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../api/config/config.js";
import type { Job } from "../../api/delivery/job-state.js";
import { csvField, toCsv, wantsCsv } from "../../api/http/routes/history.js";
import { DEFAULT_POLICY, type OtpRecord } from "../../api/otp/rules.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { ADMIN_KEY, codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";

const SID = "AC" + "7".repeat(32);
const TOKEN = "history-token";

/** An independent RFC 4180 reader: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(field);
      field = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(field);
      rows.push(row);
      row = [];
      field = "";
      i++;
    } else field += c;
  }
  if (field !== "" || row.length > 0) throw new Error("CSV does not end with CRLF");
  return rows;
}

async function get(gw: TestGateway, route: string, headers: Record<string, string> = {}, key: string | null = ADMIN_KEY) {
  const response = await fetch(gw.url + route, { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

/** Every page of a listing, following nextCursor. */
async function allPages(gw: TestGateway, route: string, field: "messages" | "otps"): Promise<{ id: string }[][]> {
  const pages: { id: string }[][] = [];
  let cursor: string | null = null;
  do {
    const reply = await gw.call("GET", `${route}${route.includes("?") ? "&" : "?"}${cursor ? `cursor=${encodeURIComponent(cursor)}` : ""}`);
    expect(reply.status).toBe(200);
    pages.push(reply.json[field]);
    cursor = reply.json.nextCursor;
  } while (cursor);
  return pages;
}

describe.each(["sqlite", "redis"] as const)("history over HTTP (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const numbers = ["+254733918301", "+254733918302", "+254733918303"];
  const bodies = ["Parcel PX-1 is at the depot", "Parcel PX-2, \"fragile\", is late", "Parcel PX-3\nsecond line"];
  const messageIds: string[] = [];
  const otpIds: string[] = [];
  const codes: string[] = [];
  let startedAt: number;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({ store: storeKind, env: twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }) });
    startedAt = Date.now();
    for (const [i, to] of numbers.entries()) {
      const sent = await gw.call("POST", "/v1/messages", { to, body: bodies[i] });
      expect(sent.status).toBe(202);
      messageIds.push(sent.json.id);
      // Distinct creation times, so the expected order does not rest on ids.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    for (const to of ["+254733918304", "+254733918305"]) {
      const issued = await gw.call("POST", "/v1/otp", { to, codeLength: 8 });
      expect(issued.status).toBe(202);
      otpIds.push(issued.json.id);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await eventually(async () => twilio.received.length === 5, 10_000, "five SMS at the fake Twilio");
    for (const to of ["+254733918304", "+254733918305"]) codes.push(codeIn(twilio.received.find((m) => m.to === to)!.body));
    await eventually(async () => {
      const views = await Promise.all(messageIds.map((id) => gw.call("GET", `/v1/messages/${id}`)));
      return views.every((v) => v.json.status === "sent");
    });
    await eventually(async () => {
      const views = await Promise.all(otpIds.map((id) => gw.call("GET", `/v1/otp/${id}`)));
      return views.every((v) => v.json.delivery.state === "sent");
    });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  /** Nothing in a reply that the single-item GETs keep back: a body, a code, a full number (with or without +). */
  function expectNothingSecret(text: string): void {
    for (const secret of [...bodies, ...codes, ...[...numbers, "+254733918304", "+254733918305"].flatMap((n) => [n, n.slice(1)])]) expect(text).not.toContain(secret);
    for (const line of bodies.flatMap((body) => body.split("\n"))) expect(text).not.toContain(line);
  }

  it("lists messages newest first, each exactly as GET /v1/messages/:id shows it", async () => {
    const list = await gw.call("GET", "/v1/messages");
    expect(list.status).toBe(200);
    const singles = await Promise.all([...messageIds].reverse().map(async (id) => (await gw.call("GET", `/v1/messages/${id}`)).json));
    expect(list.json).toEqual({ messages: singles, nextCursor: null });
    expect(list.json.messages.map((m: { to: string }) => m.to)).toEqual(["+254*****8303", "+254*****8302", "+254*****8301"]);
    expectNothingSecret(JSON.stringify(list.json));
  });

  it("lists OTPs newest first, each exactly as GET /v1/otp/:id shows it, never a code", async () => {
    const list = await gw.call("GET", "/v1/otp");
    expect(list.status).toBe(200);
    const singles = await Promise.all([...otpIds].reverse().map(async (id) => (await gw.call("GET", `/v1/otp/${id}`)).json));
    expect(list.json).toEqual({ otps: singles, nextCursor: null });
    expectNothingSecret(JSON.stringify(list.json));
  });

  it("filters by state, route, status and time, and pages with the cursor", async () => {
    const ids = (reply: { json: { messages?: { id: string }[]; otps?: { id: string }[] } }) => (reply.json.messages ?? reply.json.otps)!.map((item) => item.id);
    const newestFirst = [...messageIds].reverse();
    expect(ids(await gw.call("GET", "/v1/messages?state=sent&route=twilio"))).toEqual(newestFirst);
    expect(ids(await gw.call("GET", "/v1/messages?state=failed,queued"))).toEqual([]);
    expect(ids(await gw.call("GET", "/v1/messages?state=failed&state=sent"))).toEqual(newestFirst);
    expect(ids(await gw.call("GET", "/v1/messages?route=device"))).toEqual([]);
    const since = encodeURIComponent(new Date(startedAt - 60_000).toISOString().replace("Z", "+00:00"));
    expect(ids(await gw.call("GET", `/v1/messages?since=${since}`))).toEqual(newestFirst);
    expect(ids(await gw.call("GET", `/v1/messages?until=${new Date(startedAt - 60_000).toISOString()}`))).toEqual([]);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    expect(ids(await gw.call("GET", `/v1/messages?since=${tomorrow}`))).toEqual([]);
    expect(ids(await gw.call("GET", `/v1/messages?until=${tomorrow}`))).toEqual(newestFirst);

    expect(ids(await gw.call("GET", "/v1/otp?status=pending&state=sent&route=twilio"))).toEqual([...otpIds].reverse());
    expect(ids(await gw.call("GET", "/v1/otp?status=approved"))).toEqual([]);

    const pages = await allPages(gw, "/v1/messages?limit=2", "messages");
    expect(pages.map((page) => page.map((m) => m.id))).toEqual([newestFirst.slice(0, 2), newestFirst.slice(2)]);
    const otpPages = await allPages(gw, "/v1/otp?limit=1", "otps");
    expect(otpPages.flat().map((o) => o.id)).toEqual([...otpIds].reverse());
  });

  it("gives the same page as CSV, by Accept or format=csv, which parses back to the JSON", async () => {
    const json = (await gw.call("GET", "/v1/messages?limit=2")).json;
    for (const [route, headers] of [
      ["/v1/messages?limit=2", { accept: "text/csv" }],
      ["/v1/messages?limit=2&format=csv", {}],
    ] as const) {
      const csv = await get(gw, route, headers);
      expect(csv.status).toBe(200);
      expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8; header=present");
      expect(csv.headers.get("x-next-cursor")).toBe(json.nextCursor);
      const [header, ...rows] = parseCsv(csv.text);
      expect(header).toEqual(["id", "status", "to", "route", "attempts", "error", "createdAt", "updatedAt"]);
      expect(rows).toEqual(
        json.messages.map((m: { id: string; status: string; to: string; createdAt: string; updatedAt: string; delivery: { route: string | null; attempts: { error?: string }[] } }) => [
          m.id, m.status, m.to, m.delivery.route ?? "", String(m.delivery.attempts.length), m.delivery.attempts.at(-1)?.error ?? "", m.createdAt, m.updatedAt,
        ]),
      );
      expectNothingSecret(csv.text);
    }
    // The next page's cursor from the header works like the JSON one.
    const rest = await get(gw, `/v1/messages?limit=2&format=csv&cursor=${encodeURIComponent(json.nextCursor)}`);
    expect(parseCsv(rest.text).slice(1).map((row) => row[0])).toEqual([messageIds[0]]);
    expect(rest.headers.get("x-next-cursor")).toBeNull();

    const otps = (await gw.call("GET", "/v1/otp")).json.otps;
    const csv = await get(gw, "/v1/otp", { accept: "text/csv;q=0.9, application/json;q=0.5" });
    expect(csv.headers.get("content-type")).toMatch(/^text\/csv/);
    const [header, ...rows] = parseCsv(csv.text);
    expect(header).toEqual(["id", "status", "channel", "attemptsLeft", "deliveryState", "route", "deliveryAttempts", "error", "createdAt", "expiresAt"]);
    expect(rows).toEqual(
      otps.map((o: { id: string; status: string; channel: string; attemptsLeft: number; createdAt: string; expiresAt: string; delivery: { state: string; route: string | null; attempts: { error?: string }[] } }) => [
        o.id, o.status, o.channel, String(o.attemptsLeft), o.delivery.state, o.delivery.route ?? "", String(o.delivery.attempts.length), o.delivery.attempts.at(-1)?.error ?? "", o.createdAt, o.expiresAt,
      ]),
    );
    expectNothingSecret(csv.text);
    // JSON stays the default, and wins when the caller ranks it higher.
    expect((await get(gw, "/v1/otp", { accept: "*/*" })).headers.get("content-type")).toMatch(/^application\/json/);
    expect((await get(gw, "/v1/otp", { accept: "text/csv;q=0.2, application/json" })).headers.get("content-type")).toMatch(/^application\/json/);
  });
});

describe("history over HTTP: validation, auth and retention (sqlite store)", () => {
  let gw: TestGateway;
  let twilio: FakeTwilio;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({ env: twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }) });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it.each([
    ["/v1/messages?state=bogus", "querystring.state"],
    ["/v1/messages?state=", "querystring.state"],
    ["/v1/messages?route=sms", "querystring.route"],
    ["/v1/messages?route=device:bad%20id", "querystring.route"],
    ["/v1/messages?since=yesterday", "querystring.since"],
    ["/v1/messages?since=2026-02-30", "querystring.since"],
    ["/v1/messages?since=2026-05-01T10:00:00", "querystring.since"],
    ["/v1/messages?since=2026-05-02&until=2026-05-01", "querystring.until"],
    ["/v1/messages?since=2026-05-01&until=2026-05-01", "querystring.until"],
    ["/v1/messages?limit=0", "querystring.limit"],
    ["/v1/messages?limit=501", "querystring.limit"],
    ["/v1/messages?limit=ten", "querystring.limit"],
    ["/v1/messages?cursor=not-a-cursor!", "querystring.cursor"],
    [`/v1/messages?cursor=${Buffer.from('{"at":1}').toString("base64url")}`, "querystring.cursor"],
    [`/v1/messages?cursor=${Buffer.from("[-5,\"x\"]").toString("base64url")}`, "querystring.cursor"],
    ["/v1/messages?cursor=AAAA", "querystring.cursor"],
    ["/v1/messages?format=xml", "querystring.format"],
    ["/v1/messages?status=pending", "querystring"],
    ["/v1/otp?status=verified", "querystring.status"],
    ["/v1/otp?until=5", "querystring.until"],
  ])("answers 400 in the envelope for %s", async (route, field) => {
    const reply = await gw.call("GET", route);
    expect(reply.status).toBe(400);
    expect(reply.json).toMatchObject({ error: { code: "invalid_request", message: expect.stringContaining(field) } });
    expect(Object.keys(reply.json.error).sort()).toEqual(expect.arrayContaining(["code", "message"]));
  });

  it("answers 401 without a key or with a bad one, 403 to any key but an admin one", async () => {
    for (const route of ["/v1/messages", "/v1/otp", "/v1/messages?format=csv"]) {
      const none = await gw.call("GET", route, undefined, null);
      expect(none.status).toBe(401);
      expect(none.json).toMatchObject({ error: { code: "unauthorized", message: expect.any(String) } });
      expect((await gw.call("GET", route, undefined, "og_not_a_key_0123456789abcdef")).status).toBe(401);
    }
    const otpKey = (await gw.call("POST", "/v1/keys", { name: "otp only", scopes: ["otp"] })).json.key;
    const messagesKey = (await gw.call("POST", "/v1/keys", { name: "messages only", scopes: ["messages"] })).json.key;
    expect((await gw.call("GET", "/v1/messages", undefined, otpKey)).json).toMatchObject({ error: { code: "forbidden" } });
    expect((await gw.call("GET", "/v1/otp", undefined, messagesKey)).json).toMatchObject({ error: { code: "forbidden" } });
    // Records name no owning key: a tenant's key, even with the route's scope, must not list every tenant's ids.
    expect((await gw.call("GET", "/v1/messages", undefined, messagesKey)).json).toMatchObject({ error: { code: "forbidden", message: expect.stringContaining("admin") } });
    expect((await gw.call("GET", "/v1/otp", undefined, otpKey)).json).toMatchObject({ error: { code: "forbidden", message: expect.stringContaining("admin") } });
    const operatorKey = (await gw.call("POST", "/v1/keys", { name: "operator", scopes: ["admin"] })).json.key;
    expect((await gw.call("GET", "/v1/messages", undefined, operatorKey)).status).toBe(200);
    expect((await gw.call("GET", "/v1/otp", undefined, operatorKey)).status).toBe(200);
  });

  it("quotes CSV fields by RFC 4180 and defuses what a spreadsheet would run", async () => {
    const at = new Date().toISOString();
    // A publisher chooses its job ids, and a phone its error text: both reach the CSV.
    const job: Job = {
      id: `=HYPERLINK("https://evil.example/?",1) ${randomUUID()}`,
      kind: "message",
      channel: "sms",
      to: "+254733918399",
      sealedBody: gw.gateway.sealer.seal("hidden body"),
      state: "failed",
      attempts: [{ route: "device:dev_abc", state: "failed", at, error: 'said "no", then\r\nleft' }],
      createdAt: at,
      updatedAt: at,
      expiresAt: at,
    };
    expect(await gw.gateway.store.createJob(job, 60)).toBe(true);
    const json = (await gw.call("GET", "/v1/messages?route=device:dev_abc")).json.messages;
    expect(json.map((m: { id: string }) => m.id)).toEqual([job.id]);
    const csv = await get(gw, "/v1/messages?route=device:dev_abc&format=csv");
    const [, row] = parseCsv(csv.text);
    expect(row).toEqual([`'${job.id}`, "failed", "+254*****8399", "device:dev_abc", "1", 'said "no", then\r\nleft', at, at]);
    expect(csv.text).not.toContain("hidden body");
    expect(csv.text).not.toContain("254733918399");

    expect(csvField("plain")).toBe("plain");
    expect(csvField('a "b", c')).toBe('"a ""b"", c"');
    expect(csvField("+254*****2333")).toBe("+254*****2333");
    expect(csvField("-12.5")).toBe("-12.5");
    expect(csvField("@SUM(A1)")).toBe("'@SUM(A1)");
    expect(csvField("\tx")).toBe("'\tx");
    expect(csvField(null)).toBe("");
    expect(toCsv([["a", (n: number) => n]], [1, 2])).toBe("a\r\n1\r\n2\r\n");
    expect(wantsCsv(undefined, "text/csv, */*")).toBe(true);
    expect(wantsCsv(undefined, "application/json, text/csv")).toBe(false);
    expect(wantsCsv(undefined, "text/*")).toBe(false);
    expect(wantsCsv(undefined, "text/csv;q=0")).toBe(false);
    expect(wantsCsv("json", "text/csv")).toBe(false);
  });

  it("keeps a message and an OTP readable past their own retention, for HISTORY_RETENTION_DAYS (default 30)", async () => {
    const now = Date.now();
    const at = new Date(now - 2 * 3_600_000).toISOString();
    // What an hour-old message used to be: its store TTL (message TTL + OTP_RETENTION_SECONDS) long gone. Here: 1 s.
    const job: Job = {
      id: randomUUID(), kind: "message", channel: "sms", to: "+254733918398", sealedBody: gw.gateway.sealer.seal("old"), state: "sent",
      attempts: [{ route: "twilio", state: "sent", at }], createdAt: at, updatedAt: at, expiresAt: at,
    };
    expect(await gw.gateway.store.createJob(job, 1)).toBe(true);
    const otpId = randomUUID();
    const record: OtpRecord = {
      id: otpId, digest: "00".repeat(32), channel: "sms", to: "+254733918397", subjects: [`phone:${randomUUID()}`], status: "pending",
      attempts: 0, maxAttempts: 5, createdAt: now - 3_600_000, expiresAt: now + 200, jobId: randomUUID(),
    };
    expect(await gw.gateway.store.issueOtp(record, { ...DEFAULT_POLICY, retentionSeconds: 0 }, now)).toEqual({ ok: true });
    await new Promise((resolve) => setTimeout(resolve, 1_200));

    expect((await gw.call("GET", `/v1/messages/${job.id}`)).json).toMatchObject({ id: job.id, status: "sent", to: "+254*****8398" });
    expect((await gw.call("GET", `/v1/otp/${otpId}`)).json).toMatchObject({ id: otpId, status: "expired" });
    expect((await gw.call("GET", "/v1/messages?route=twilio")).json.messages.map((m: { id: string }) => m.id)).toContain(job.id);
    expect((await gw.call("GET", "/v1/otp?status=expired")).json.otps.map((o: { id: string }) => o.id)).toContain(otpId);
  });

  it("HISTORY_RETENTION_DAYS=0 keeps records only for their own retention, as before", async () => {
    const short = await startGateway({ store: "memory", env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), HISTORY_RETENTION_DAYS: "0" } });
    try {
      const at = new Date(Date.now() - 2 * 3_600_000).toISOString();
      const job: Job = {
        id: randomUUID(), kind: "message", channel: "sms", to: "+254733918396", sealedBody: short.gateway.sealer.seal("old"), state: "sent",
        attempts: [], createdAt: at, updatedAt: at, expiresAt: at,
      };
      await short.gateway.store.createJob(job, 1);
      expect((await short.call("GET", `/v1/messages/${job.id}`)).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      expect((await short.call("GET", `/v1/messages/${job.id}`)).status).toBe(404);
      expect((await short.call("GET", "/v1/messages")).json).toEqual({ messages: [], nextCursor: null });
    } finally {
      await short.close();
    }
  });

  it("documents both routes' filters in the OpenAPI document", async () => {
    const docs = await gw.call("GET", "/docs/json", undefined, null);
    expect(docs.status).toBe(200);
    const names = (route: string) => docs.json.paths[route].get.parameters.map((p: { name: string }) => p.name).sort();
    expect(names("/v1/messages")).toEqual(["cursor", "format", "limit", "route", "since", "state", "until"]);
    expect(names("/v1/otp")).toEqual(["cursor", "format", "limit", "route", "since", "state", "status", "until"]);
  });

  it("validates HISTORY_RETENTION_DAYS like every variable: one line naming it", () => {
    const bad = (value: string) => {
      const result = loadConfig({ HISTORY_RETENTION_DAYS: value });
      return result.ok ? [] : result.problems.filter((p) => p.startsWith("HISTORY_RETENTION_DAYS: "));
    };
    for (const value of ["-1", "1.5", "ten", "3651"]) expect(bad(value)).toHaveLength(1);
    const ok = loadConfig({ HISTORY_RETENTION_DAYS: "7" });
    expect(ok.ok && ok.config.historyRetentionDays).toBe(7);
    const defaulted = loadConfig({});
    expect(defaulted.ok && defaulted.config.historyRetentionDays).toBe(30);
  });
});
