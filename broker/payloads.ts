/**
 * The MQTT payloads of DESIGN.md as zod schemas: what phones and publishers
 * send is checked here before anything acts on it.
 */
import { z } from "zod";

/** Generous for a status or an ack, small enough that no client can make the broker buffer much. */
export const MAX_PAYLOAD_BYTES = 16 * 1024;

const jobId = z.string().min(1).max(128);
const isoTime = z.string().refine((value) => !Number.isNaN(Date.parse(value)), "must be an ISO-8601 time");

export const jobPayload = z.object({
  id: jobId,
  to: z.string().regex(/^\+[1-9]\d{6,14}$/, "must be an E.164 number"),
  body: z.string().min(1).max(1600),
  expiresAt: isoTime,
  sim: z.number().int().min(0).max(7).optional(),
});

export const cancelPayload = z.object({ id: jobId, cancel: z.literal(true) });

export const ackPayload = z.object({
  id: jobId,
  status: z.enum(["received", "sent", "delivered", "failed"]),
  error: z.string().max(200).optional(),
  at: isoTime,
});

export const deviceStatusPayload = z.object({
  online: z.boolean(),
  battery: z.number().min(0).max(100).optional(),
  signal: z.number().min(0).max(4).optional(),
  sims: z.array(z.unknown()).max(8).optional(),
  app: z.string().max(100).optional(),
  at: isoTime.optional(),
});

/** `sms/send`: routed like `POST /v1/messages`. */
export const sendPayload = z.object({ id: jobId.optional(), to: z.string().min(3).max(32), body: z.string().min(1).max(1600) });

export type JobPayload = z.infer<typeof jobPayload>;
export type AckPayload = z.infer<typeof ackPayload>;
export type DeviceStatusPayload = z.infer<typeof deviceStatusPayload>;

/** Parses JSON and a schema; the error says what was wrong, for the log. */
export function parsePayload<T>(schema: z.ZodType<T>, payload: Buffer | string): { ok: true; value: T } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(payload.toString());
  } catch {
    return { ok: false, error: "not JSON" };
  }
  const parsed = schema.safeParse(json);
  if (parsed.success) return { ok: true, value: parsed.data };
  return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join(".") || "payload"}: ${i.message}`).join("; ") };
}
