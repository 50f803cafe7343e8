/**
 * MyOtp's senders (seed 000) on the gateway's WebSocket at /myotp: `{cell,
 * message}` frames from a sender whose API key is in the upgrade's headers,
 * each answered with its job id (a plain SMS through the message service),
 * or with an error frame that leaves the connection open. Real gateway, real
 * SQLite store, a local Twilio stand-in.
 */
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { ADMIN_KEY, eventually, startGateway, type TestGateway } from "../support/gateway.js";

const accountSid = `AC${"e7".repeat(16)}`;
const authToken = "myotp-socket-token";

/** Seed 000's documented frame, verbatim. */
const SEED_000_FRAME = { cell: "+258840000000", message: "o seu codigo OPT é 2024" };

// Frames are whatever the server said; tests assert on their shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Frame = any;

interface Sender {
  ws: WebSocket;
  replies: Frame[];
  /** The first `count` replies, once they have all come. */
  next(count: number, timeoutMs?: number): Promise<Frame[]>;
  closed: Promise<{ code: number; reason: string }>;
}

const bearer = (key: string) => ({ authorization: `Bearer ${key}` });
const wsUrl = (gw: TestGateway, path = "/myotp") => gw.url.replace(/^http/, "ws") + path;

function openSender(gw: TestGateway, headers: Record<string, string> = bearer(ADMIN_KEY)): Promise<Sender> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(gw), { headers });
    const replies: Frame[] = [];
    const closed = new Promise<{ code: number; reason: string }>((done) => ws.on("close", (code, reason) => done({ code, reason: reason.toString() })));
    ws.on("message", (data) => replies.push(JSON.parse(String(data))));
    ws.once("open", () =>
      resolve({
        ws,
        replies,
        closed,
        next: (count, timeoutMs = 10_000) => eventually(async () => replies.length >= count && replies.slice(0, count), timeoutMs, `${count} replies`),
      }),
    );
    ws.once("unexpected-response", (_request, response) => reject(new Error(`upgrade refused with ${response.statusCode}`)));
    ws.once("error", reject);
  });
}

/** An upgrade the gateway refuses: its status and the envelope it answered with. */
function refusedUpgrade(gw: TestGateway, headers: Record<string, string>, path = "/myotp"): Promise<{ status: number; json: Frame }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl(gw, path), { headers });
    ws.once("open", () => reject(new Error("the upgrade was accepted")));
    ws.once("unexpected-response", (_request, response) => {
      let body = "";
      response.on("data", (chunk: Buffer) => (body += chunk.toString()));
      response.on("end", () => resolve({ status: response.statusCode ?? 0, json: JSON.parse(body) }));
    });
    ws.once("error", () => {});
  });
}

/** Writes `data` on a raw TCP connection and reads until the gateway closes it. */
function rawExchange(port: number, data: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket: Socket = connect(port, "127.0.0.1", () => socket.write(data));
    let reply = "";
    socket.on("data", (chunk) => (reply += chunk.toString()));
    socket.on("close", () => resolve(reply));
    socket.on("error", reject);
    socket.setTimeout(8000, () => socket.destroy(new Error("no answer")));
  });
}

function upgradeRequest(headers: Record<string, string>): string {
  const lines = ["GET /myotp HTTP/1.1", "Host: 127.0.0.1", "Connection: Upgrade", "Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="];
  return [...lines, ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`), "", ""].join("\r\n");
}

describe("the MyOtp socket at /myotp", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const sentTo = (to: string) => twilio.received.filter((m) => m.to === to);

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ env: twilioEnv(twilio, { accountSid, authToken }) });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("answers seed 000's example frame with the job id, with the key in Authorization: Bearer or in x-api-key; the SMS goes out as written", async () => {
    for (const headers of [bearer(ADMIN_KEY), { "x-api-key": ADMIN_KEY }]) {
      const sender = await openSender(gw, headers);
      sender.ws.send(JSON.stringify(SEED_000_FRAME));
      const [reply] = await sender.next(1);
      expect(reply).toEqual({ id: expect.any(String), status: "queued" });
      const view = await eventually(async () => {
        const { json } = await gw.call("GET", `/v1/messages/${reply.id}`);
        return json.status === "sent" && json;
      });
      expect(view).toMatchObject({ id: reply.id, to: "+258*****0000" });
      sender.ws.close();
      await sender.closed;
    }
    expect(sentTo("+258840000000").map((m) => m.body)).toEqual([SEED_000_FRAME.message, SEED_000_FRAME.message]);
  });

  it("refuses an upgrade without a key, with a wrong key, with the key in the URL, or with a key lacking the messages scope", async () => {
    const noKey = await refusedUpgrade(gw, {});
    expect(noKey).toEqual({ status: 401, json: { error: { code: "unauthorized", message: expect.any(String) } } });
    expect((await refusedUpgrade(gw, bearer("og_live_not-a-key"))).status).toBe(401);
    // Even beside a good header: a key in a URL is in proxy logs already.
    for (const path of [`/myotp?api_key=${ADMIN_KEY}`, `/myotp?token=${ADMIN_KEY}`]) {
      const inUrl = await refusedUpgrade(gw, bearer(ADMIN_KEY), path);
      expect(inUrl.status, path).toBe(400);
      expect(inUrl.json.error.code).toBe("key_in_url");
    }
    const { json: otpOnly } = await gw.call("POST", "/v1/keys", { name: "codes-only", scopes: ["otp"] });
    const forbidden = await refusedUpgrade(gw, { "x-api-key": otpOnly.key });
    expect(forbidden.status).toBe(403);
    expect(forbidden.json.error.code).toBe("forbidden");

    const { json: messagesKey } = await gw.call("POST", "/v1/keys", { name: "myotp-sender", scopes: ["messages"] });
    const sender = await openSender(gw, { "x-api-key": messagesKey.key });
    sender.ws.send(JSON.stringify({ cell: "+258840000001", message: "scoped" }));
    expect((await sender.next(1))[0]).toEqual({ id: expect.any(String), status: "queued" });
    sender.ws.close();
    // Other paths stay refused.
    expect((await refusedUpgrade(gw, bearer(ADMIN_KEY), "/myotp/other")).status).toBe(404);
  });

  it("answers malformed JSON, wrong types and invalid numbers with an error frame each, in order, and keeps the connection and the good frames", async () => {
    const sender = await openSender(gw);
    const frames: Array<string | Buffer> = [
      JSON.stringify({ cell: "+258840000010", message: "first" }),
      '{"cell": "+258840000011", ',
      JSON.stringify({ cell: 258840000011, message: 2024 }),
      JSON.stringify({ cell: "+25884", message: "too short" }),
      JSON.stringify({ cell: "+258840000011" }),
      JSON.stringify({ cell: "+258840000011", message: "" }),
      JSON.stringify({ cell: "+258840000011", message: "x", sender: "app" }),
      JSON.stringify([SEED_000_FRAME]),
      "null",
      Buffer.from([0xff, 0xfe, 0x7b]),
      // The same shape POST /v1/messages takes, and JSON sent as a binary frame: both good.
      JSON.stringify({ to: "+258840000012", body: "second" }),
      Buffer.from(JSON.stringify({ cell: "+258840000013", message: "third" })),
    ];
    for (const frame of frames) sender.ws.send(frame);
    const replies = await sender.next(frames.length);
    expect(replies[0]).toEqual({ id: expect.any(String), status: "queued" });
    expect(replies[1]).toEqual({ error: { code: "invalid_json", message: expect.any(String) } });
    expect(replies[2].error.code).toBe("invalid_request");
    expect(replies[2].error.details.map((d: { field: string }) => d.field)).toEqual(["frame.cell", "frame.message"]);
    expect(replies[3].error).toMatchObject({ code: "invalid_request", message: expect.stringContaining("frame.cell") });
    for (const i of [4, 5, 6, 7, 8]) expect(replies[i].error.code, JSON.stringify(frames[i])).toBe("invalid_request");
    expect(replies[9].error.code).toBe("invalid_json");
    expect(replies[10]).toEqual({ id: expect.any(String), status: "queued" });
    expect(replies[11]).toEqual({ id: expect.any(String), status: "queued" });
    expect(sender.ws.readyState).toBe(WebSocket.OPEN);

    await eventually(async () => ["+258840000010", "+258840000012", "+258840000013"].every((to) => sentTo(to).length === 1), 5000, "the three good frames sent");
    expect(sentTo("+258840000011")).toEqual([]);
    sender.ws.close();
  });

  it("bounds a frame: over 32 KiB closes with 1009 (the frame before it is still sent), and over 32 KiB before the upgrade is answered is refused with 413", async () => {
    const sender = await openSender(gw);
    sender.ws.send(JSON.stringify({ cell: "+258840000020", message: "before the big one" }));
    sender.ws.send(JSON.stringify({ cell: "+258840000021", message: "x".repeat(40 * 1024) }));
    expect((await sender.closed).code).toBe(1009);
    await eventually(async () => sentTo("+258840000020").length === 1, 5000, "the frame before the big one sent");
    expect(sentTo("+258840000021")).toEqual([]);

    // Bytes past the request before the key is even looked at: refused whether the key is good or not.
    for (const key of [ADMIN_KEY, "og_live_not-a-key"]) {
      const port = Number(new URL(gw.url).port);
      const reply = await rawExchange(port, Buffer.concat([Buffer.from(upgradeRequest(bearer(key))), Buffer.alloc(40 * 1024, 0x81)]));
      expect(reply).toMatch(/^HTTP\/1\.1 413 /);
      expect(JSON.parse(reply.slice(reply.indexOf("\r\n\r\n") + 4))).toEqual({ error: { code: "payload_too_large", message: expect.any(String) } });
    }
    expect((await fetch(gw.url + "/healthz")).status).toBe(200);
  });

  it("never loses a valid frame: 100 and 50 frames sent at once on two sockets get 150 replies, in each socket's order, and 150 SMS", async () => {
    const [first, second] = await Promise.all([openSender(gw), openSender(gw)]);
    const numberFor = (base: number, i: number) => `+254711${String(base + i).padStart(6, "0")}`;
    // More frames than the gateway reads ahead (32): the sockets are paused and resumed along the way.
    for (let i = 0; i < 100; i++) first.ws.send(JSON.stringify({ cell: numberFor(1000, i), message: `first ${i}` }));
    for (let i = 0; i < 50; i++) second.ws.send(JSON.stringify({ cell: numberFor(2000, i), message: `second ${i}` }));
    const [firstReplies, secondReplies] = await Promise.all([first.next(100, 20_000), second.next(50, 20_000)]);
    const ids = [...firstReplies, ...secondReplies].map((reply) => reply.id);
    expect(ids.every((id) => typeof id === "string")).toBe(true);
    expect(new Set(ids).size).toBe(150);
    // The n-th reply is the n-th frame's: its job went to the n-th number.
    for (const [replies, base] of [[firstReplies, 1000], [secondReplies, 2000]] as const) {
      for (const i of [0, 1, 31, 32, 33, replies.length - 1]) {
        const { json } = await gw.call("GET", `/v1/messages/${replies[i].id}`);
        expect(json.to, `${base} #${i}`).toBe(`+254*****${numberFor(base, i).slice(-4)}`);
      }
    }
    await eventually(async () => twilio.received.filter((m) => /^(first|second) \d+$/.test(m.body)).length === 150, 15_000, "150 SMS");
    first.ws.close();
    second.ws.close();
  });

  it("carries out every frame it read even when the sender closes at once, as MyOtp's senders do", async () => {
    const sender = await openSender(gw);
    for (let i = 0; i < 5; i++) sender.ws.send(JSON.stringify({ cell: `+25884000003${i}`, message: `send and go ${i}` }));
    sender.ws.close();
    await sender.closed;
    await eventually(async () => [0, 1, 2, 3, 4].every((i) => sentTo(`+25884000003${i}`).length === 1), 5000, "the five frames sent");
  });

  it("checks the key on every frame: a key revoked mid-connection gets a 401 frame and the socket closes with 1008", async () => {
    const { json: key } = await gw.call("POST", "/v1/keys", { name: "soon-revoked", scopes: ["messages"] });
    const sender = await openSender(gw, bearer(key.key));
    sender.ws.send(JSON.stringify({ cell: "+258840000040", message: "while valid" }));
    expect((await sender.next(1))[0]).toEqual({ id: expect.any(String), status: "queued" });
    expect((await gw.call("DELETE", `/v1/keys/${key.id}`)).status).toBe(200);
    sender.ws.send(JSON.stringify({ cell: "+258840000041", message: "after the revoke" }));
    const [, refused] = await sender.next(2);
    expect(refused).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
    expect((await sender.closed).code).toBe(1008);
    expect(sentTo("+258840000041")).toEqual([]);
  });
});

describe("the MyOtp socket's timeouts and shutdown", () => {
  const IDLE_MS = 800;
  let twilio: FakeTwilio;
  let gw: TestGateway;
  let gatewayClosed = false;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ env: { ...twilioEnv(twilio, { accountSid, authToken }), HTTP_IDLE_TIMEOUT_MS: String(IDLE_MS) } });
  });
  afterAll(async () => {
    if (!gatewayClosed) await gw?.close();
    await twilio?.close();
  });

  it("closes a connection that says nothing (1008) and keeps one that sends frames or pings", async () => {
    const silent = await openSender(gw);
    const started = Date.now();
    const talking = await openSender(gw);
    const pinging = await openSender(gw);
    const chatter = setInterval(() => {
      talking.ws.send("{}");
      pinging.ws.ping();
    }, IDLE_MS / 3);
    try {
      const closed = await silent.closed;
      expect(closed.code).toBe(1008);
      expect(Date.now() - started).toBeGreaterThanOrEqual(IDLE_MS - 50);
      await new Promise((resolve) => setTimeout(resolve, IDLE_MS * 2));
      expect(talking.ws.readyState).toBe(WebSocket.OPEN);
      expect(pinging.ws.readyState).toBe(WebSocket.OPEN);
      // Every `{}` was answered (an error frame each), none ignored.
      expect(talking.replies.length).toBeGreaterThanOrEqual(4);
      expect(talking.replies.every((reply) => reply.error?.code === "invalid_request")).toBe(true);
    } finally {
      clearInterval(chatter);
      talking.ws.close();
      pinging.ws.close();
    }
  });

  it("on shutdown, answers what it read and closes its senders with 1001; the gateway's close does not wait on them", async () => {
    const sender = await openSender(gw);
    sender.ws.send(JSON.stringify({ cell: "+258840000050", message: "before the shutdown" }));
    expect((await sender.next(1))[0]).toEqual({ id: expect.any(String), status: "queued" });
    gatewayClosed = true;
    await gw.close();
    expect((await sender.closed).code).toBe(1001);
  });
});
