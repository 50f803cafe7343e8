/**
 * MyOtp's senders (seed 000) over a WebSocket at /myotp, on the HTTP port.
 * Each frame is a JSON `{cell, message}` (or `{to, body}`), sent as a plain
 * SMS through the message service exactly as `POST /v1/messages` sends it.
 * Every frame the gateway reads gets one reply, in the order the frames came:
 * `{id, status}` (the job, as `GET /v1/messages/:id` shows it) or the error
 * envelope `{error: {code, message}}`. A bad frame is answered and the
 * connection stays open.
 *
 * The API key comes in the upgrade request's `Authorization: Bearer` or
 * `x-api-key` header (never the URL, which proxies and logs keep) and needs
 * the messages scope; it is checked again for every frame, so a revoked key
 * stops sending at once.
 */
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from "fastify";
import { validatorCompiler } from "fastify-type-provider-zod";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import { Counter } from "prom-client";
import { WebSocket, WebSocketServer, type RawData } from "ws";
import { DuplicateMessageError, NoRouteError, OverloadedError, type MessageService, type SendMessageInput } from "../../delivery/message-service.js";
import { FraudRefusal } from "../../fraud/fraud-rules.js";
import type { Metrics } from "../../metrics/metrics.js";
import { callerOf, requireScope, type Principal } from "../auth.js";
import { ApiError, endWithError, toApiError, type ErrorBody } from "../errors.js";
import { sendMessageBody } from "../schemas.js";

export const MYOTP_PATH = "/myotp";

/**
 * The largest frame, and the most a client may send before its upgrade is answered (RFC 6455 has it
 * send nothing). The largest valid `{cell, message, callbackUrl}`, every character JSON-escaped, is
 * about 22 KiB; anything past 32 KiB cannot be a message, so it is never buffered whole.
 */
export const MAX_FRAME_BYTES = 32 * 1024;

/** Frames read but not yet answered before the gateway stops reading: bounds what one sender holds in memory. */
const MAX_UNANSWERED_FRAMES = 32;
/** How long a stopping node goes on answering frames it has read before it closes the sockets. */
const SHUTDOWN_DRAIN_MS = 5_000;
/** After our close frame, how long the peer has to answer it before the socket is cut. */
const CLOSE_GRACE_MS = 1_000;
const CLOSE_POLICY = 1008;
const CLOSE_GOING_AWAY = 1001;
/** Query parameters a client might put a key in; refused outright, so the habit does not stick. */
const KEY_PARAMETERS = ["key", "api_key", "apikey", "api-key", "x-api-key", "token", "access_token", "authorization"];

export interface MyOtpSocketDeps {
  authenticate: (request: FastifyRequest) => Promise<Principal>;
  messages: MessageService;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** The key must be checked within this (HTTP_HEADERS_TIMEOUT_MS: the upgrade is still a request). */
  authTimeoutMs: number;
  /** A sender that sends no frame (nor a ping) for this long is disconnected (HTTP_IDLE_TIMEOUT_MS). */
  idleTimeoutMs: number;
}

type FrameReply = { id: string; status: string } | { error: ErrorBody["error"] & { retryAfterSeconds?: number } };

/** `POST /v1/messages`' own validation, so a frame's errors name the same fields with the same messages. */
const checkMessage = validatorCompiler({ schema: sendMessageBody, method: "GET", url: MYOTP_PATH }) as (data: unknown) => { value?: SendMessageInput; error?: unknown[] };
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Takes the /myotp upgrades of `app`'s server (server.ts lets them through) and closes the sockets when `app` closes. */
export function attachMyOtpSocket(app: FastifyInstance, deps: MyOtpSocketDeps): void {
  const frames = new Counter({
    name: "otpgate_myotp_frames_total",
    help: "Frames from MyOtp senders: accepted (a job), invalid (not a message), refused (4xx), failed (5xx)",
    labelNames: ["outcome"],
    registers: [deps.metrics.registry],
  });
  // perMessageDeflate stays off (ws' default): frames are a few hundred bytes, and inflating them costs memory per socket.
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES, clientTracking: false });
  wss.on("wsClientError", (error: Error, socket: Duplex) => {
    const status = error.message === "Invalid HTTP method" ? 405 : 400;
    endWithError(socket, status, "invalid_websocket_handshake", error.message, error.message.includes("Version") ? { "Sec-WebSocket-Version": "13, 8" } : {});
  });
  const senders = new Set<SenderConnection>();
  let closing = false;

  app.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = request.url ?? "/";
    // An upgrade listener that throws ends the process: a target that is not a URL is left to server.ts to refuse.
    if (!URL.canParse(url, "http://localhost")) return;
    const target = new URL(url, "http://localhost");
    if (target.pathname !== MYOTP_PATH) return;
    // A reset during the key check would otherwise be an unhandled 'error' event.
    socket.on("error", (error) => deps.logger.debug({ err: error }, "myotp: connection error before the upgrade"));
    void admit(request, socket, head, target);
  });

  async function admit(request: IncomingMessage, socket: Duplex, head: Buffer, target: URL): Promise<void> {
    if (closing) return endWithError(socket, 503, "shutting_down", "this node is shutting down; try again", { "Retry-After": "1" });
    if (KEY_PARAMETERS.some((name) => target.searchParams.has(name))) {
      return endWithError(socket, 400, "key_in_url", "the API key goes in the Authorization: Bearer or x-api-key header, never in the URL");
    }
    // A client should send nothing before the 101; more than a frame's worth is not a MyOtp sender.
    if (head.length > MAX_FRAME_BYTES) return endWithError(socket, 413, "payload_too_large", `more than ${MAX_FRAME_BYTES} bytes before the upgrade was answered`);
    // The key check reads only the headers; the socket is not read (nor its bytes parsed) until the key is good.
    const checkKey = keyCheck(request, deps);
    let principal: Principal;
    try {
      principal = await checkKey();
      requireScope(principal, "messages");
    } catch (error) {
      const refusal = asApiError(error, deps.logger);
      return endWithError(socket, refusal.statusCode, refusal.code, refusal.message, refusal.retryAfterSeconds ? { "Retry-After": String(refusal.retryAfterSeconds) } : {});
    }
    if (socket.destroyed) return;
    if (closing) return endWithError(socket, 503, "shutting_down", "this node is shutting down; try again", { "Retry-After": "1" });
    wss.handleUpgrade(request, socket, head, (ws) => {
      const sender = new SenderConnection(ws, checkKey, deps, (outcome) => frames.inc({ outcome }));
      senders.add(sender);
      ws.once("close", () => senders.delete(sender));
      deps.logger.debug({ key: principal.id }, "myotp: sender connected");
    });
  }

  app.addHook("preClose", async () => {
    closing = true;
    await Promise.all([...senders].map((sender) => sender.finish(SHUTDOWN_DRAIN_MS)));
    wss.close();
  });
}

/** The authenticator takes a Fastify request; the upgrade has only Node's. It reads the headers (and the route, for keyless seed calls: none here). */
function keyCheck(request: IncomingMessage, deps: MyOtpSocketDeps): () => Promise<Principal> {
  const asked = { headers: request.headers, ip: request.socket.remoteAddress ?? "", routeOptions: { url: MYOTP_PATH } } as unknown as FastifyRequest;
  return async () => {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ApiError(503, "store_unavailable", "the API key could not be checked in time; try again", 1)), deps.authTimeoutMs);
    });
    try {
      return await Promise.race([deps.authenticate(asked), late]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The same statuses and codes as POST /v1/messages gives for the same failure. */
function asApiError(error: unknown, logger: FastifyBaseLogger): ApiError {
  if (error instanceof ApiError) return error;
  if (error instanceof NoRouteError) return new ApiError(503, "no_route", error.message);
  if (error instanceof OverloadedError) return new ApiError(503, "overloaded", error.message, 1);
  if (error instanceof DuplicateMessageError) return new ApiError(409, "conflict", error.message);
  if (error instanceof FraudRefusal) return new ApiError(error.status, error.code, error.message, error.retryAfterSeconds);
  const known = toApiError(error as Error).error;
  if (known.statusCode >= 500) logger.error({ err: error }, "myotp: a frame failed");
  return known;
}

const shuttingDown = () => errorReply(new ApiError(503, "shutting_down", "this node is shutting down; send it again", 1));

function errorReply(error: ApiError, details?: ErrorBody["error"]["details"]): FrameReply {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(details ? { details } : {}),
      ...(error.retryAfterSeconds ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
    },
  };
}

/** A frame as the message service takes it, or why it is not one. */
function readFrame(data: Buffer): { input: SendMessageInput } | { refusal: FrameReply } {
  let json: unknown;
  try {
    // Binary frames are read as text too: some senders encode their JSON before sending it.
    json = JSON.parse(utf8.decode(data));
  } catch {
    return { refusal: errorReply(new ApiError(400, "invalid_json", 'the frame is not JSON text; send {"cell": "+258840000000", "message": "..."}')) };
  }
  const checked = checkMessage(json);
  if (checked.error) {
    const { error, details } = toApiError(Object.assign(new Error("invalid frame"), { validation: checked.error, validationContext: "frame" }));
    return { refusal: errorReply(error, details) };
  }
  return { input: checked.value! };
}

function asBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

/**
 * One sender's socket. Frames are carried out one at a time, in order, so the
 * n-th reply is the n-th frame's. A frame that was read is carried out even
 * if the sender closes before its reply (MyOtp's senders send and hang up).
 */
class SenderConnection {
  private readonly frames: Buffer[] = [];
  /** Read and not yet answered (the reply written out, or the socket gone). */
  private unanswered = 0;
  private busy = false;
  private working: Promise<void> = Promise.resolve();
  private stopping = false;
  /** Past the drain deadline: frames not yet started are answered `shutting_down`, in their turn, not carried out. */
  private abandoning = false;
  private keyRefused = false;
  /** Our close frame is sent: what the sender sends after it is not read as work (the close code says why). */
  private closing = false;
  private readonly idle: NodeJS.Timeout;
  private readonly closed: Promise<void>;

  constructor(
    private readonly ws: WebSocket,
    private readonly checkKey: () => Promise<Principal>,
    private readonly deps: MyOtpSocketDeps,
    private readonly count: (outcome: "accepted" | "invalid" | "refused" | "failed") => void,
  ) {
    this.closed = new Promise((resolve) => ws.once("close", () => resolve()));
    this.idle = setTimeout(() => this.onIdle(), deps.idleTimeoutMs);
    this.idle.unref();
    ws.on("message", (data) => this.receive(asBuffer(data)));
    ws.on("ping", () => this.idle.refresh());
    ws.once("close", () => clearTimeout(this.idle));
    // ws closes the socket itself on a protocol error (1002, 1007, 1009 for a frame over MAX_FRAME_BYTES); this only records why.
    ws.on("error", (error) => deps.logger.debug({ err: error }, "myotp: sender socket error"));
  }

  private receive(frame: Buffer): void {
    if (this.closing) return;
    this.idle.refresh();
    this.frames.push(frame);
    this.unanswered++;
    // A sender that does not read its replies, or sends faster than the store writes, waits in TCP, not in our memory.
    if (this.unanswered >= MAX_UNANSWERED_FRAMES) this.ws.pause();
    if (!this.busy) this.working = this.work();
  }

  private async work(): Promise<void> {
    this.busy = true;
    try {
      for (let frame = this.frames.shift(); frame; frame = this.frames.shift()) this.answer(this.abandoning ? shuttingDown() : await this.carryOut(frame));
    } finally {
      // Set in the same step as the last shift, so a frame that arrives next starts a new run.
      this.busy = false;
    }
  }

  private async carryOut(frame: Buffer): Promise<FrameReply> {
    try {
      // Per frame, as every REST request is: a revoked key stops here, mid-connection.
      const principal = await this.checkKey();
      requireScope(principal, "messages");
      const read = readFrame(frame);
      if ("refusal" in read) {
        this.count("invalid");
        return read.refusal;
      }
      const accepted = await this.deps.messages.send(read.input, callerOf(principal));
      this.count("accepted");
      return { id: accepted.id, status: accepted.status };
    } catch (error) {
      const refusal = asApiError(error, this.deps.logger);
      this.count(refusal.statusCode >= 500 ? "failed" : "refused");
      if (refusal.statusCode === 401 || refusal.statusCode === 403) this.refuseKey();
      return errorReply(refusal);
    }
  }

  /** The key was revoked (or lost its scope): read nothing more, answer what was read, then close. */
  private refuseKey(): void {
    this.keyRefused = true;
    this.ws.pause();
  }

  private answer(reply: FrameReply): void {
    if (this.ws.readyState !== WebSocket.OPEN) return this.settle();
    this.ws.send(JSON.stringify(reply), () => this.settle());
  }

  private settle(): void {
    this.unanswered--;
    if (this.keyRefused) {
      if (this.unanswered === 0) this.close(CLOSE_POLICY, "the API key is no longer valid for sending");
      return;
    }
    if (this.ws.isPaused && !this.stopping && this.unanswered <= MAX_UNANSWERED_FRAMES / 2) this.ws.resume();
  }

  private onIdle(): void {
    // Still working on what the sender sent: the silence is ours.
    if (this.unanswered > 0) return void this.idle.refresh();
    this.close(CLOSE_POLICY, `no frame for ${Math.ceil(this.deps.idleTimeoutMs / 1000)} s`);
  }

  private close(code: number, reason: string): void {
    this.closing = true;
    this.ws.close(code, reason);
    // A paused socket would never read the sender's answering close frame.
    this.ws.resume();
    // A peer that never answers our close frame does not keep its socket.
    setTimeout(() => this.ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Node shutdown: stop reading, answer what was read (within `drainMs`), then close with 1001. */
  async finish(drainMs: number): Promise<void> {
    this.stopping = true;
    this.ws.pause();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs)));
    const drained = (async () => {
      while (this.busy || this.frames.length > 0) await this.working;
    })();
    await Promise.race([drained, deadline]);
    clearTimeout(timer);
    // Read but not carried out in time: each still gets its answer, so the sender knows to send it again,
    // and in its turn, after the frame in flight: a sender matches replies to frames by their order, so a
    // `shutting_down` sent ahead of that frame's own reply would be read as its answer (and the SMS sent twice).
    this.abandoning = true;
    let graceTimer: NodeJS.Timeout | undefined;
    await Promise.race([drained, new Promise<void>((resolve) => (graceTimer = setTimeout(resolve, CLOSE_GRACE_MS)))]);
    clearTimeout(graceTimer);
    this.close(CLOSE_GOING_AWAY, "the gateway is shutting down");
    await this.closed;
  }
}
