/**
 * The phone's rules, free of I/O and of the clock (callers pass `now` in epoch
 * ms): what a payload on `sms/out/<id>` means, whether a job may be sent, and
 * what the phone says back on `sms/ack/<id>` and `sms/device/<id>`. The MQTT
 * wiring in phone.ts only routes bytes through these functions, so every
 * decision that matters to the gateway is testable without a broker.
 */

/**
 * Anything bigger is rejected before JSON.parse: a job is an id, a number, a
 * body of at most MAX_BODY_CHARS and a timestamp, far below this, and parsing
 * megabytes a publisher sent by mistake is how a phone runs out of memory.
 */
export const MAX_PAYLOAD_BYTES = 8 * 1024;
/** Ten concatenated SMS segments, the usual carrier and Twilio ceiling. */
export const MAX_BODY_CHARS = 1600;
export const MAX_ID_CHARS = 200;
/** The simulated phone has a single SIM, in slot 0. */
export const SIM_SLOTS: readonly number[] = [0];

/** `error` values of `failed` acks. The first one is Android's SmsManager name. */
export const GENERIC_FAILURE = "RESULT_ERROR_GENERIC_FAILURE";
export const CANCELLED = "CANCELLED";
export const EXPIRED = "EXPIRED";
export const SIM_NOT_AVAILABLE = "SIM_NOT_AVAILABLE";
export type RefusalCode = typeof CANCELLED | typeof EXPIRED | typeof SIM_NOT_AVAILABLE;

export interface SmsJob {
  id: string;
  /** Digits with an optional leading "+"; the gateway sends E.164. */
  to: string;
  body: string;
  /** Epoch ms. */
  expiresAt: number;
  sim?: number;
}

export type OutboundMessage = { kind: "job"; job: SmsJob } | { kind: "cancel"; id: string };
export type ParseResult = { ok: true; message: OutboundMessage } | { ok: false; reason: string };

const PHONE_NUMBER = /^\+?[0-9]{3,20}$/;
/**
 * ISO 8601 with an explicit zone. `Date.parse("2030-01-01T00:00:00")` reads a
 * zoneless time as *local* time, so a phone in another zone would disagree with
 * the gateway about expiry by hours; such a job is refused instead.
 */
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function invalid(reason: string): ParseResult {
  return { ok: false, reason };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A payload from `sms/out/<id>` → a job, a cancel, or the reason it is ignored. */
export function parseOutboundPayload(payload: Uint8Array | string): ParseResult {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return invalid(`payload is ${size} bytes, over the ${MAX_PAYLOAD_BYTES} byte limit`);

  let text: string;
  try {
    text = typeof payload === "string" ? payload : utf8.decode(payload);
  } catch {
    return invalid("payload is not UTF-8");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return invalid("payload is not JSON");
  }
  if (!isRecord(value)) return invalid("payload is not a JSON object");

  const { id } = value;
  if (typeof id !== "string" || id.length === 0 || id.length > MAX_ID_CHARS || CONTROL_CHARS.test(id)) {
    return invalid(`id must be a non-empty string of at most ${MAX_ID_CHARS} printable characters`);
  }

  if ("cancel" in value) {
    if (value.cancel === true) return { ok: true, message: { kind: "cancel", id } };
    // `cancel: false` is read as "not a cancel": the payload must then be a full job.
    if (value.cancel !== false) return invalid(`job ${id}: cancel must be true`);
  }

  const { to, body, expiresAt, sim } = value;
  if (typeof to !== "string" || !PHONE_NUMBER.test(to)) {
    return invalid(`job ${id}: to must be a phone number (3 to 20 digits, optional leading +)`);
  }
  if (typeof body !== "string" || body.length === 0 || body.length > MAX_BODY_CHARS) {
    return invalid(`job ${id}: body must be a non-empty string of at most ${MAX_BODY_CHARS} characters`);
  }
  if (typeof expiresAt !== "string" || !ISO_INSTANT.test(expiresAt) || !Number.isFinite(Date.parse(expiresAt))) {
    return invalid(`job ${id}: expiresAt must be an ISO 8601 timestamp with a zone, e.g. 2030-01-01T00:00:00Z`);
  }
  // `null` is read as "no preference", like a missing field.
  if (sim !== undefined && sim !== null && (typeof sim !== "number" || !Number.isInteger(sim) || sim < 0 || sim > 7)) {
    return invalid(`job ${id}: sim must be a SIM slot number 0..7`);
  }

  const job: SmsJob = { id, to, body, expiresAt: Date.parse(expiresAt) };
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

/** The `sms/ack/<id>` payload. `error` is present exactly when status is `failed`. */
export function buildAck(input: AckInput, now: number): Ack {
  const at = new Date(now).toISOString();
  return input.status === "failed"
    ? { id: input.id, status: "failed", error: input.error, at }
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

/** The retained `sms/device/<id>` payload published on connect and every heartbeat. */
export function buildOnlineStatus(
  fields: { battery: number; signal: number; app: string; sims?: SimInfo[] },
  now: number,
): OnlineStatus {
  const clamp = (value: number, max: number) => Math.min(max, Math.max(0, Math.round(value)));
  return {
    online: true,
    battery: clamp(fields.battery, 100),
    signal: clamp(fields.signal, 4),
    sims: fields.sims ?? SIM_SLOTS.map((slot) => ({ slot, carrier: "Sim", number: null })),
    app: fields.app,
    at: new Date(now).toISOString(),
  };
}

/** Published by the phone itself before a clean disconnect, when the will does not fire. */
export function buildOfflineStatus(now: number): { online: false; at: string } {
  return { online: false, at: new Date(now).toISOString() };
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
