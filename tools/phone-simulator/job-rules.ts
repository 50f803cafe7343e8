/**
 * The phone's rules, free of I/O and of the clock (callers pass `now` in epoch
 * ms): what a payload on `sms/out/<id>` means, whether a job may be sent, and
 * what the phone says back on `sms/ack/<id>` and `sms/device/<id>`. The MQTT
 * wiring in phone.ts only routes bytes through these functions, so every
 * decision that matters to the gateway is testable without a broker.
 */

import { z } from "zod";
import {
  MAX_APP_CHARS,
  MAX_BATTERY,
  MAX_ERROR_CHARS,
  MAX_PAYLOAD_BYTES,
  MAX_SIGNAL,
  MAX_SIMS,
  ackPayload,
  cancelPayload,
  deviceStatusPayload,
  jobPayload,
  parseIsoInstant,
  parsePayload,
} from "../../broker/payloads.js";

/*
 * The payload rules are the gateway's (broker/payloads.ts): every payload is
 * read with its parsePayload (the MAX_PAYLOAD_BYTES cap before anything else,
 * strict UTF-8, JSON, then the schema) and its schemas, so the gateway, this
 * simulator and the Android core reach one verdict per payload, as
 * test/fixtures/mqtt-payloads.json holds them to. The reasons are the
 * gateway's too.
 *
 * What stays here is the phone's own side, and it differs on purpose:
 * - A job the rules accept may still be refused, with a failed ack rather than
 *   ignored: a SIM slot this phone lacks (SIM_SLOTS), an expiry already past,
 *   a cancel seen first (decideOnArrival, checkBeforeSend).
 * - The phone writes stricter than the gateway reads: buildAck always sets
 *   `at` as an ISO instant in UTC (the gateway also takes epoch numbers and
 *   ignores an unreadable one) and cuts `error` to MAX_ERROR_CHARS instead of
 *   having the ack refused; buildOnlineStatus clamps and cuts every member to
 *   its limit instead of sending one the gateway would refuse.
 */
export { MAX_PAYLOAD_BYTES };
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

/**
 * `sms/out/<id>` carries jobs and cancels, told apart by `cancel` as the two
 * schemas define it: `true` is a cancel whatever else the payload carries,
 * `false` or absent a job (which must then be complete), anything else
 * neither.
 */
const outboundPayload = z.discriminatedUnion("cancel", [cancelPayload, jobPayload], {
  error: (issue) =>
    issue.code === "invalid_union"
      ? "must be true (a cancel), or false or absent (a job)"
      : issue.code === "invalid_type"
        ? "must be a JSON object"
        : undefined,
});

/** A payload from `sms/out/<id>` → a job, a cancel, or the reason it is ignored. */
export function parseOutboundPayload(payload: Uint8Array | string): ParseResult {
  const parsed = parsePayload(outboundPayload, payload);
  if (!parsed.ok) return { ok: false, reason: parsed.error };
  const message = parsed.value;
  if (message.cancel === true) return { ok: true, message: { kind: "cancel", id: message.id } };
  const { id, to, body, sim } = message;
  // The schema took expiresAt only if parseIsoInstant reads it.
  const job: SmsJob = { id, to, body, expiresAt: parseIsoInstant(message.expiresAt) as number };
  if (sim !== undefined) job.sim = sim;
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
 * Null when the gateway takes this ack from a phone (ackPayload), else why
 * not. buildAck never writes one that fails.
 */
export function ackProblem(payload: Uint8Array | string): string | null {
  const parsed = parsePayload(ackPayload, payload);
  return parsed.ok ? null : parsed.error;
}

/**
 * Null when the gateway takes this status from a phone (deviceStatusPayload),
 * else why not. buildOnlineStatus, buildOfflineStatus and the will always pass.
 */
export function statusProblem(payload: Uint8Array | string): string | null {
  const parsed = parsePayload(deviceStatusPayload, payload);
  return parsed.ok ? null : parsed.error;
}

/** The will: exactly these bytes (the README's MQTT contract), with no timestamp since it is set at connect time. */
export const WILL_PAYLOAD = '{"online":false}';

export function deviceTopics(deviceId: string): { out: string; ack: string; device: string } {
  return { out: `sms/out/${deviceId}`, ack: `sms/ack/${deviceId}`, device: `sms/device/${deviceId}` };
}

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

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
