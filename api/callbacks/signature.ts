/**
 * Signing of status callbacks, and the check a receiver runs.
 *
 * Every callback POST carries two headers:
 *
 *   x-otpgate-timestamp: <unix seconds at which this attempt was sent>
 *   x-otpgate-signature: v1=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>
 *
 * A receiver recomputes the HMAC over the timestamp header, a dot and the raw
 * request body exactly as it arrived (before parsing: re-serialised JSON may
 * differ by a byte), compares in constant time, and refuses timestamps too far
 * from its own clock (five minutes by default).
 *
 * The timestamp is inside the MAC, so nobody can replay an old signed body under
 * a fresh timestamp; the tolerance bounds how long a captured request stays
 * usable. Retries send the same body again (signed anew with the time of that
 * attempt), so a receiver that must act once dedupes on `jobId` + `status` + `at`.
 * `v1=` names the scheme, so a later one can sit beside it without ambiguity.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const TIMESTAMP_HEADER = "x-otpgate-timestamp";
export const SIGNATURE_HEADER = "x-otpgate-signature";

const SCHEME = "v1=";

/** What `req.headers[name]` gives on a Node server, so a receiver can pass it as is. */
export type HeaderValue = string | string[] | undefined | null;

export interface VerifyOptions {
  /** How far (either way) the timestamp may be from `now`. */
  toleranceSeconds?: number;
  now?: Date;
}

function digest(secret: string, timestamp: number, body: string | Uint8Array): Buffer {
  return createHmac("sha256", secret).update(`${timestamp}.`).update(body).digest();
}

/** The `x-otpgate-signature` value for a body sent at `timestamp` (unix seconds). */
export function signCallback(secret: string, timestamp: number, body: string | Uint8Array): string {
  return SCHEME + digest(secret, timestamp, body).toString("hex");
}

/**
 * True when `header` is a valid signature of `body` at `timestampHeader` and that
 * timestamp is within the tolerance. Takes the raw body (string or bytes).
 */
export function verifyCallback(
  secret: string,
  header: HeaderValue,
  timestampHeader: HeaderValue,
  body: string | Uint8Array,
  { toleranceSeconds = 300, now = new Date() }: VerifyOptions = {},
): boolean {
  // A repeated header arrives as an array: ambiguous, so refused.
  if (typeof header !== "string" || typeof timestampHeader !== "string") return false;
  if (!/^\d{1,12}$/.test(timestampHeader)) return false;
  const timestamp = Number(timestampHeader);
  if (Math.abs(now.getTime() / 1000 - timestamp) > toleranceSeconds) return false;

  if (!header.startsWith(SCHEME)) return false;
  const given = header.slice(SCHEME.length);
  // Checking the shape first makes both buffers 32 bytes, as timingSafeEqual needs;
  // the shape is public, so rejecting on it early leaks nothing.
  if (!/^[0-9a-fA-F]{64}$/.test(given)) return false;
  return timingSafeEqual(Buffer.from(given, "hex"), digest(secret, timestamp, body));
}
