/**
 * The MQTT payloads of DESIGN.md as zod schemas: what phones and publishers
 * send is checked here before anything acts on it.
 *
 * These are THE payload rules. The phone simulator (tools/phone-simulator/
 * job-rules.ts, which reads payloads with these schemas and parsePayload)
 * and the Android core (android-client/core: PayloadRules, Ack, DeviceStatus,
 * IsoTime, StrictJson) apply the same ones, and the shared fixtures of
 * test/fixtures/mqtt-payloads.json hold all three to one verdict per payload
 * (test/android/payload-fixtures.test.ts). Change a rule here and the
 * fixtures, the simulator and the Java core change with it.
 */
import { z } from "zod";

/**
 * One cap for every payload (jobs, cancels, acks, statuses, `sms/send`), in
 * UTF-8 bytes: a job is an id, a number, a body of at most MAX_BODY_CHARS and a
 * timestamp, far below this, and phones drop anything bigger before parsing it.
 */
export const MAX_PAYLOAD_BYTES = 8 * 1024;
export const MAX_JOB_ID_CHARS = 128;
/** Ten concatenated SMS segments, the usual carrier and Twilio ceiling. */
export const MAX_BODY_CHARS = 1600;
export const MAX_SIM_SLOT = 7;
export const MAX_ERROR_CHARS = 200;
export const MAX_SIMS = 8;
export const MAX_APP_CHARS = 100;
export const MAX_BATTERY = 100;
export const MAX_SIGNAL = 4;

/** E.164: a plus, a country code that does not start with 0, 7 to 15 digits in all. */
export const E164 = /^\+[1-9]\d{6,14}$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/**
 * Instants on the wire are RFC 3339 date-times with seconds and an offset (`Z`
 * or ±hh:mm), as zod reads them. A zoneless time would be read as local time,
 * so a phone in another zone would disagree with the gateway about expiry by
 * hours; bare dates, minutes without seconds and free-form text are refused.
 */
const rfc3339 = z.iso.datetime({ offset: true });

/** Null when `id` may be a job id: 1..128 UTF-16 units, no control characters (they corrupt log lines). */
export function jobIdProblem(id: unknown): string | null {
  if (typeof id !== "string") return "must be a string";
  if (id.length === 0 || id.length > MAX_JOB_ID_CHARS || CONTROL_CHARS.test(id)) {
    return `must be 1 to ${MAX_JOB_ID_CHARS} characters without control characters`;
  }
  return null;
}

/**
 * Epoch ms of an RFC 3339 instant, or null. Date.parse reads every string the
 * schema lets through (any fraction digits, offsets up to ±23:59), dropping
 * digits beyond milliseconds. IsoTime.parse in the Android core is the same function.
 */
export function parseIsoInstant(text: unknown): number | null {
  if (!rfc3339.safeParse(text).success) return null;
  const ms = Date.parse(text as string);
  return Number.isFinite(ms) ? ms : null;
}

/**
 * Epoch numbers below this magnitude are seconds, others milliseconds: 1e11
 * seconds is the year 5138 and 1e11 milliseconds is 1973-03-03, so no clock a
 * phone plausibly has falls on the wrong side of the cut.
 */
export const EPOCH_SECONDS_BELOW = 1e11;
/** 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the instants toISOString writes with a four-digit year. */
export const MIN_REPORTED_MS = -62_167_219_200_000;
export const MAX_REPORTED_MS = 253_402_300_799_999;

/**
 * Epoch ms of a time a phone reports (`at` of acks and statuses), or null
 * when it cannot be read. Read: an RFC 3339 instant (parseIsoInstant),
 * or a finite JSON number, epoch seconds when its magnitude is below
 * EPOCH_SECONDS_BELOW and epoch milliseconds otherwise (fractions allowed,
 * rounded to the millisecond). Anything else (other strings, numeric strings,
 * booleans, null, objects) and any time outside years 0000..9999 is
 * unreadable. Unreadable is not refused: `at` is informational and the
 * gateway's clock decides, so an ack is never dropped for it (DESIGN.md: a
 * dropped `sent` would make the gateway send the code a second time).
 * IsoTime.readReported in the Android core is the same function.
 */
export function readReportedTime(value: unknown): number | null {
  let ms: number | null;
  if (typeof value === "string") ms = parseIsoInstant(value);
  else if (typeof value === "number" && Number.isFinite(value)) ms = Math.round(Math.abs(value) < EPOCH_SECONDS_BELOW ? value * 1000 : value);
  else return null;
  return ms !== null && ms >= MIN_REPORTED_MS && ms <= MAX_REPORTED_MS ? ms : null;
}

/** A payload with `at` normalised: an ISO instant in UTC when it could be read, else no `at` at all. */
type WithReportedTime<T> = T extends unknown ? Omit<T, "at"> & { at?: string } : never;

function normaliseReportedTime<T extends { at?: unknown }>(payload: T): WithReportedTime<T> {
  const { at, ...rest } = payload;
  const ms = readReportedTime(at);
  return (ms === null ? rest : { ...rest, at: new Date(ms).toISOString() }) as WithReportedTime<T>;
}

const jobId = z.string().refine((value) => jobIdProblem(value) === null, `must be 1 to ${MAX_JOB_ID_CHARS} characters without control characters`);
const isoTime = z.iso.datetime({ offset: true, error: "must be an RFC 3339 time with seconds and a zone, e.g. 2030-01-01T00:00:00Z" });
/** Any value, never refused; normaliseReportedTime reads it afterwards. */
const reportedTime = z.unknown().optional();
/** A member that must be absent; JSON has no undefined, so a null is present and refused. */
const absent = (why: string) => z.never({ error: why }).optional();

/**
 * A job on `sms/out/<id>`. `cancel` may only be false ("not a cancel"): a
 * payload with `cancel: true` is a cancel whatever else it carries, and any
 * other value is refused.
 */
export const jobPayload = z.object({
  id: jobId,
  to: z.string().regex(E164, "must be an E.164 number, e.g. +254700000001"),
  body: z.string().min(1).max(MAX_BODY_CHARS),
  expiresAt: isoTime,
  /** A SIM slot; absent means the phone's default SMS SIM (null is refused, not read as "no preference"). */
  sim: z.number().int().min(0).max(MAX_SIM_SLOT).optional(),
  cancel: z.literal(false).optional(),
});

/** A cancel on `sms/out/<id>`: `{id, cancel: true}`. Other members (job fields included) are ignored: the phone never sends it. */
export const cancelPayload = z.object({ id: jobId, cancel: z.literal(true) });

const ackFields = { id: jobId, at: reportedTime };
/**
 * An ack on `sms/ack/<id>`: a job id, a status, and `error` (1..200
 * characters) exactly when the status is `failed`. `at` is optional and never
 * refused: parsed, it is an ISO instant in UTC when readReportedTime could
 * read it, and absent otherwise.
 */
export const ackPayload = z
  .discriminatedUnion("status", [
    z.object({ ...ackFields, status: z.enum(["received", "sent", "delivered"]), error: absent("only a failed ack carries an error") }),
    z.object({ ...ackFields, status: z.literal("failed"), error: z.string().min(1).max(MAX_ERROR_CHARS) }),
  ])
  .transform(normaliseReportedTime);

/**
 * The retained status on `sms/device/<id>`. Every member but `online` is
 * optional (a client may know only some of them); an offline status carries
 * no battery, signal, SIMs or app. `at` is read as in an ack: never refused,
 * an ISO instant in UTC when readable, else absent.
 */
export const deviceStatusPayload = z
  .discriminatedUnion("online", [
    z.object({
      online: z.literal(true),
      battery: z.number().int().min(0).max(MAX_BATTERY).optional(),
      signal: z.number().int().min(0).max(MAX_SIGNAL).optional(),
      sims: z.array(z.unknown()).max(MAX_SIMS).optional(),
      app: z.string().max(MAX_APP_CHARS).optional(),
      at: reportedTime,
    }),
    z.object({
      online: z.literal(false),
      battery: absent("an offline status carries no battery"),
      signal: absent("an offline status carries no signal"),
      sims: absent("an offline status carries no sims"),
      app: absent("an offline status carries no app"),
      at: reportedTime,
    }),
  ])
  .transform(normaliseReportedTime);

const SIM_NUMBER_AS_TEXT = /"number"\s*:\s*"/;

/**
 * A status may name a SIM's own number (the app sends null; other clients may
 * not). That is a full phone number, and the retained status and the stored
 * presence would keep it in clear, so it is masked on the way in. Returns the
 * payload to keep instead, or undefined when there is nothing to mask.
 */
export function maskSimNumbers(payload: Buffer): Buffer | undefined {
  const text = payload.toString("utf8");
  // Every status passes here (a storm's worth at once); only one naming a number as a string is parsed.
  if (!SIM_NUMBER_AS_TEXT.test(text)) return undefined;
  let status: unknown;
  try {
    status = JSON.parse(text);
  } catch {
    return undefined; // not JSON: refused later as a bad status, kept by nobody
  }
  const sims = (status as { sims?: unknown })?.sims;
  if (!Array.isArray(sims)) return undefined;
  let masked = false;
  for (const sim of sims) {
    const number = (sim as { number?: unknown } | null)?.number;
    if (typeof number === "string" && number.length > 0) {
      // The last four digits tell an operator which SIM it is, and nobody whose number it is.
      (sim as { number: string }).number = number.length <= 4 ? "*".repeat(number.length) : `${"*".repeat(number.length - 4)}${number.slice(-4)}`;
      masked = true;
    }
  }
  return masked ? Buffer.from(JSON.stringify(status)) : undefined;
}

/** `sms/send`: routed like `POST /v1/messages`. */
export const sendPayload = z.object({ id: jobId.optional(), to: z.string().min(3).max(32), body: z.string().min(1).max(MAX_BODY_CHARS) });

export type JobPayload = z.infer<typeof jobPayload>;
export type CancelPayload = z.infer<typeof cancelPayload>;
export type AckPayload = z.infer<typeof ackPayload>;
export type DeviceStatusPayload = z.infer<typeof deviceStatusPayload>;

/** Strict UTF-8, and a byte order mark is kept (so JSON.parse refuses it), as phones read payloads. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Parses JSON and a schema; the error says what was wrong, for the log. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Uint8Array | string): { ok: true; value: T } | { ok: false; error: string } {
  const size = typeof payload === "string" ? Buffer.byteLength(payload) : payload.byteLength;
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, error: `payload of ${size} bytes is over ${MAX_PAYLOAD_BYTES}` };
  let text: string;
  try {
    text = typeof payload === "string" ? payload : utf8.decode(payload);
  } catch {
    return { ok: false, error: "not UTF-8" };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, error: "not JSON" };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`).join("; ") };
}
