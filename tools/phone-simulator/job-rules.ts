/**
 * The phone's rules, free of I/O and of the clock (callers pass `now` in epoch
 * ms): what a payload on `sms/out/<id>` means, whether a job may be sent, and
 * what the phone says back on `sms/ack/<id>` and `sms/device/<id>`. The MQTT
 * wiring in phone.ts only routes bytes through these functions, so every
 * decision that matters to the gateway is testable without a broker.
 */

import {
  E164,
  MAX_APP_CHARS,
  MAX_BATTERY,
  MAX_BODY_CHARS,
  MAX_ERROR_CHARS,
  MAX_JOB_ID_CHARS,
  MAX_PAYLOAD_BYTES,
  MAX_SIGNAL,
  MAX_SIMS,
  MAX_SIM_SLOT,
  parseIsoInstant,
} from "../../broker/payloads.js";

/*
 * The limits are the gateway's (broker/payloads.ts): one set of payload rules
 * for the gateway, this simulator and the Android core, held to one verdict
 * per payload by test/fixtures/mqtt-payloads.json. Anything over
 * MAX_PAYLOAD_BYTES is rejected before JSON.parse: a job is far smaller, and
 * parsing megabytes a publisher sent by mistake is how a phone runs out of memory.
 */
export { MAX_BODY_CHARS, MAX_PAYLOAD_BYTES };
export const MAX_ID_CHARS = MAX_JOB_ID_CHARS;
/** The simulated phone has a single SIM, in slot 0. */
export const SIM_SLOTS: readonly number[] = [0];

/** `error` values of `failed` acks. The first one is Android's SmsManager name. */
export const GENERIC_FAILURE = "RESULT_ERROR_GENERIC_FAILURE";
export const CANCELLED = "CANCELLED";
export const EXPIRED = "EXPIRED";
export const SIM_NOT_AVAILABLE = "SIM_NOT_AVAILABLE";
/** What a failed ack says when nothing better is known (an empty error would be refused). */
export const UNKNOWN_ERROR = "UNKNOWN";
export type RefusalCode = typeof CANCELLED | typeof EXPIRED | typeof SIM_NOT_AVAILABLE;

export interface SmsJob {
  id: string;
  /** E.164, e.g. +254700000001. */
  to: string;
  body: string;
  /** Epoch ms. */
  expiresAt: number;
  sim?: number;
}

export type OutboundMessage = { kind: "job"; job: SmsJob } | { kind: "cancel"; id: string };
export type ParseResult = { ok: true; message: OutboundMessage } | { ok: false; reason: string };

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Strict UTF-8; a byte order mark is kept, so JSON.parse refuses it (as the gateway and the Android core do). */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

function invalid(reason: string): ParseResult {
  return { ok: false, reason };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The size cap first, then strict UTF-8, then JSON: a JSON object, or why not. */
function readObject(payload: Uint8Array | string): { ok: true; value: Record<string, unknown> } | { ok: false; reason: string } {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, reason: `payload is ${size} bytes, over the ${MAX_PAYLOAD_BYTES} byte limit` };
  let text: string;
  try {
    text = typeof payload === "string" ? payload : utf8.decode(payload);
  } catch {
    return { ok: false, reason: "payload is not UTF-8" };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, reason: "payload is not JSON" };
  }
  return isRecord(value) ? { ok: true, value } : { ok: false, reason: "payload is not a JSON object" };
}

const ID_RULE = `id must be a non-empty string of at most ${MAX_ID_CHARS} printable characters`;

function isJobId(id: unknown): id is string {
  return typeof id === "string" && id.length > 0 && id.length <= MAX_ID_CHARS && !CONTROL_CHARS.test(id);
}

/** A whole number in 0..max, as JSON gives it (7.0 is 7). */
function isSlot(value: unknown, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= 0 && value <= max;
}

/**
 * A payload from `sms/out/<id>` → a job, a cancel, or the reason it is ignored.
 * `cancel: true` makes it a cancel whatever else it carries (it is never sent);
 * `cancel: false` reads as "not a cancel"; any other `cancel` is refused.
 */
export function parseOutboundPayload(payload: Uint8Array | string): ParseResult {
  const read = readObject(payload);
  if (!read.ok) return invalid(read.reason);
  const { value } = read;

  const { id } = value;
  if (!isJobId(id)) return invalid(ID_RULE);

  if ("cancel" in value) {
    if (value.cancel === true) return { ok: true, message: { kind: "cancel", id } };
    // `cancel: false` is read as "not a cancel": the payload must then be a full job.
    if (value.cancel !== false) return invalid(`job ${id}: cancel must be true`);
  }

  const { to, body, expiresAt, sim } = value;
  if (typeof to !== "string" || !E164.test(to)) {
    return invalid(`job ${id}: to must be an E.164 number, e.g. +254700000001`);
  }
  if (typeof body !== "string" || body.length === 0 || body.length > MAX_BODY_CHARS) {
    return invalid(`job ${id}: body must be a non-empty string of at most ${MAX_BODY_CHARS} characters`);
  }
  const expiry = parseIsoInstant(expiresAt);
  if (expiry === null) {
    return invalid(`job ${id}: expiresAt must be an ISO 8601 timestamp with a zone, e.g. 2030-01-01T00:00:00Z`);
  }
  // Absent means "the default SIM"; null is refused like any other non-number.
  if ("sim" in value && !isSlot(sim, MAX_SIM_SLOT)) {
    return invalid(`job ${id}: sim must be a SIM slot number 0..${MAX_SIM_SLOT}`);
  }

  const job: SmsJob = { id, to, body, expiresAt: expiry };
  if (typeof sim === "number") job.sim = sim;
  return { ok: true, message: { kind: "job", job } };
}

/** What the phone remembers; see ledger.ts. */
export interface JobMemory {
  isHandled(id: string): boolean;
  isCancelled(id: string): boolean;
}

export type ArrivalDecision =
  | { action: "send" }
  | { action: "duplicate" }
  | { action: "refuse"; error: RefusalCode };

/**
 * A job has just arrived. The repeat check comes first: QoS 1 redelivers, and a
 * repeat must never be sent nor produce a second, contradicting verdict.
 * "Never after expiresAt" includes the instant itself.
 */
export function decideOnArrival(
  job: SmsJob,
  memory: JobMemory,
  now: number,
  simSlots: readonly number[] = SIM_SLOTS,
): ArrivalDecision {
  if (memory.isHandled(job.id)) return { action: "duplicate" };
  const check = checkBeforeSend(job, memory, now);
  if (!check.ok) return { action: "refuse", error: check.error };
  if (job.sim !== undefined && !simSlots.includes(job.sim)) return { action: "refuse", error: SIM_NOT_AVAILABLE };
  return { action: "send" };
}

/**
 * Asked again at the moment of sending, because a job can wait (latency, the
 * per-minute limit) long enough to expire or be cancelled.
 */
export function checkBeforeSend(
  job: SmsJob,
  memory: Pick<JobMemory, "isCancelled">,
  now: number,
): { ok: true } | { ok: false; error: typeof CANCELLED | typeof EXPIRED } {
  if (memory.isCancelled(job.id)) return { ok: false, error: CANCELLED };
  if (now >= job.expiresAt) return { ok: false, error: EXPIRED };
  return { ok: true };
}

export type AckStatus = "received" | "sent" | "delivered" | "failed";
export type AckInput = { id: string; status: Exclude<AckStatus, "failed"> } | { id: string; status: "failed"; error: string };
export type Ack = AckInput & { at: string };

/**
 * The `sms/ack/<id>` payload. `error` is present exactly when status is
 * `failed`, cut to the gateway's 200 characters (an empty one says UNKNOWN),
 * so the gateway never drops an ack for its error.
 */
export function buildAck(input: AckInput, now: number): Ack {
  const at = new Date(now).toISOString();
  return input.status === "failed"
    ? { id: input.id, status: "failed", error: (input.error || UNKNOWN_ERROR).slice(0, MAX_ERROR_CHARS), at }
    : { id: input.id, status: input.status, at };
}

export interface SimInfo {
  slot: number;
  carrier: string;
  number: string | null;
}

export interface OnlineStatus {
  online: true;
  battery: number;
  signal: number;
  sims: SimInfo[];
  app: string;
  at: string;
}

/** A whole number in 0..max; anything not a number reads as 0. */
function clamp(value: number, max: number): number {
  return Number.isFinite(value) ? Math.min(max, Math.max(0, Math.round(value))) : 0;
}

/**
 * The retained `sms/device/<id>` payload published on connect and every
 * heartbeat, within the gateway's limits: whole battery 0..100 and signal
 * bars 0..4, at most 8 SIMs, an app name of at most 100 characters.
 */
export function buildOnlineStatus(
  fields: { battery: number; signal: number; app: string; sims?: SimInfo[] },
  now: number,
): OnlineStatus {
  return {
    online: true,
    battery: clamp(fields.battery, MAX_BATTERY),
    signal: clamp(fields.signal, MAX_SIGNAL),
    sims: (fields.sims ?? SIM_SLOTS.map((slot) => ({ slot, carrier: "Sim", number: null }))).slice(0, MAX_SIMS),
    app: fields.app.slice(0, MAX_APP_CHARS),
    at: new Date(now).toISOString(),
  };
}

/** Published by the phone itself before a clean disconnect, when the will does not fire. */
export function buildOfflineStatus(now: number): { online: false; at: string } {
  return { online: false, at: new Date(now).toISOString() };
}

/**
 * Null when the gateway takes this ack from a phone, else why not: a job id,
 * a known status, and an `error` of 1..200 characters exactly when the status
 * is `failed`. `at` never makes an ack refused: it is informational, and one
 * the gateway cannot read (readReportedTime) counts as absent. buildAck never
 * writes one that fails, and always writes `at` as an ISO instant in UTC.
 */
export function ackProblem(payload: Uint8Array | string): string | null {
  const read = readObject(payload);
  if (!read.ok) return read.reason;
  const ack = read.value;
  if (!isJobId(ack.id)) return ID_RULE;
  if (!["received", "sent", "delivered", "failed"].includes(ack.status as string)) return "status must be received, sent, delivered or failed";
  if (ack.status !== "failed") return "error" in ack ? "only a failed ack carries an error" : null;
  if (typeof ack.error !== "string" || ack.error.length === 0 || ack.error.length > MAX_ERROR_CHARS) {
    return `a failed ack needs an error of 1 to ${MAX_ERROR_CHARS} characters`;
  }
  return null;
}

/**
 * Null when the gateway takes this status from a phone, else why not. Only
 * `online` is required; `at` is never a reason to refuse (as in an ack); an
 * online status may carry a whole battery 0..100, whole signal bars 0..4, at
 * most 8 SIMs and an app name of at most 100 characters; an offline one
 * carries none of those.
 * buildOnlineStatus, buildOfflineStatus and the will always pass.
 */
export function statusProblem(payload: Uint8Array | string): string | null {
  const read = readObject(payload);
  if (!read.ok) return read.reason;
  const status = read.value;
  if (typeof status.online !== "boolean") return "online must be true or false";
  if (!status.online) {
    const extra = ["battery", "signal", "sims", "app"].find((field) => field in status);
    return extra ? `an offline status carries no ${extra}` : null;
  }
  if ("battery" in status && !isSlot(status.battery, MAX_BATTERY)) return `battery must be a whole number 0..${MAX_BATTERY}`;
  if ("signal" in status && !isSlot(status.signal, MAX_SIGNAL)) return `signal must be a whole number 0..${MAX_SIGNAL}`;
  if ("sims" in status && !(Array.isArray(status.sims) && status.sims.length <= MAX_SIMS)) return `sims must be a list of at most ${MAX_SIMS}`;
  if ("app" in status && !(typeof status.app === "string" && status.app.length <= MAX_APP_CHARS)) {
    return `app must be a string of at most ${MAX_APP_CHARS} characters`;
  }
  return null;
}

/** The will: exactly these bytes (DESIGN.md), with no timestamp since it is set at connect time. */
export const WILL_PAYLOAD = '{"online":false}';

export function deviceTopics(deviceId: string): { out: string; ack: string; device: string } {
  return { out: `sms/out/${deviceId}`, ack: `sms/ack/${deviceId}`, device: `sms/device/${deviceId}` };
}

/**
 * A device id is a topic level and the MQTT client id: no topic separators or
 * wildcards, nothing invisible, and short enough for any broker's client id limit.
 */
export function deviceIdProblem(deviceId: string): string | null {
  if (deviceId.length === 0 || deviceId.length > 128) return "device id must be 1 to 128 characters";
  if (/[/+#\s]/.test(deviceId) || CONTROL_CHARS.test(deviceId)) {
    return "device id must not contain '/', '+', '#', spaces or control characters";
  }
  return null;
}
