/**
 * The OTP rules, in one place and free of I/O: how codes are made, how they are
 * stored (as HMAC digests only), and what a verification attempt does to an OTP.
 * The memory store applies `settleVerification` directly; the Redis store runs
 * the same rules inside one Lua script (api/store/redis-scripts.ts), and the
 * store contract suite holds both to the same behaviour.
 */
import { createHmac, randomInt, timingSafeEqual } from "node:crypto";

export const CODE_LENGTH = { min: 4, max: 10, default: 6 } as const;
export const TTL_SECONDS = { min: 30, max: 3600, default: 300 } as const;

export type OtpStatus = "pending" | "approved" | "expired" | "max_attempts";
export type OtpChannel = "sms" | "email";

/** Limits an operator may tune (config: OTP_*). Defaults are documented in README.md. */
export interface OtpPolicy {
  /** Checks allowed per code. */
  maxAttempts: number;
  /** A new code for the same user or number is refused for this long. */
  resendCooldownSeconds: number;
  /** Codes per user or number per rolling hour window. */
  maxSendsPerHour: number;
  /** Consecutive wrong codes (across resends) before the user or number is locked. */
  lockoutThreshold: number;
  lockoutSeconds: number;
  /** How long an OTP record stays readable after it expires (status queries, late verifies). */
  retentionSeconds: number;
}

export const DEFAULT_POLICY: OtpPolicy = {
  maxAttempts: 5,
  resendCooldownSeconds: 30,
  maxSendsPerHour: 10,
  lockoutThreshold: 10,
  lockoutSeconds: 900,
  retentionSeconds: 3600,
};

export interface OtpRecord {
  id: string;
  /** hex HMAC-SHA256(OTP_SECRET, `${id}:${code}`). The code itself is never stored. */
  digest: string;
  channel: OtpChannel;
  to?: string;
  email?: string;
  userId?: string;
  /** Rate-limit and lockout keys this OTP counts against, e.g. `user:42`, `phone:+2547…`. */
  subjects: string[];
  status: OtpStatus;
  attempts: number;
  maxAttempts: number;
  createdAt: number;
  expiresAt: number;
  jobId: string;
}

/** Uniform digits from the CSPRNG; `randomInt` avoids modulo bias. */
export function generateCode(length: number = CODE_LENGTH.default): string {
  if (!Number.isInteger(length) || length < CODE_LENGTH.min || length > CODE_LENGTH.max) {
    throw new RangeError(`code length must be ${CODE_LENGTH.min}..${CODE_LENGTH.max}`);
  }
  let code = "";
  for (let i = 0; i < length; i++) code += String(randomInt(10));
  return code;
}

/** Keyed digest: without the secret, the 10^n possible codes cannot be tried offline. */
export function codeDigest(secret: string, otpId: string, code: string): string {
  return createHmac("sha256", secret).update(`${otpId}:${code}`).digest("hex");
}

export function digestsMatch(expectedHex: string, candidateHex: string): boolean {
  const expected = Buffer.from(expectedHex, "hex");
  const candidate = Buffer.from(candidateHex, "hex");
  return expected.length === candidate.length && timingSafeEqual(expected, candidate);
}

export function subjectsFor(input: { userId?: string; to?: string; email?: string }): string[] {
  const subjects: string[] = [];
  if (input.userId) subjects.push(`user:${input.userId}`);
  if (input.to) subjects.push(`phone:${input.to}`);
  if (input.email) subjects.push(`email:${input.email.toLowerCase()}`);
  return subjects;
}

export type IssueRejection = { reason: "cooldown" | "hourly_cap" | "locked"; retryAfterSeconds: number };

export interface VerificationOutcome {
  valid: boolean;
  status: OtpStatus;
  attemptsLeft: number;
  /** Set when the user or number is locked: the check was refused without counting. */
  lockedForSeconds?: number;
}

/**
 * One verification attempt against an OTP. `matched` is the result of
 * `digestsMatch`, done by the caller outside the store so the constant-time
 * comparison happens in Node. Returns the record to write back.
 */
export function settleVerification(
  record: OtpRecord,
  matched: boolean,
  now: number,
): { record: OtpRecord; outcome: VerificationOutcome } {
  const left = (r: OtpRecord) => Math.max(0, r.maxAttempts - r.attempts);
  if (record.status !== "pending") {
    return { record, outcome: { valid: false, status: record.status, attemptsLeft: left(record) } };
  }
  if (now >= record.expiresAt) {
    const expired = { ...record, status: "expired" as const };
    return { record: expired, outcome: { valid: false, status: "expired", attemptsLeft: left(expired) } };
  }
  const attempts = record.attempts + 1;
  const status: OtpStatus = matched ? "approved" : attempts >= record.maxAttempts ? "max_attempts" : "pending";
  const next = { ...record, attempts, status };
  return { record: next, outcome: { valid: matched, status, attemptsLeft: left(next) } };
}

/** Seconds until a millisecond deadline, at least 1 so `Retry-After` is never 0. */
export function secondsUntil(deadlineMs: number, now: number): number {
  return Math.max(1, Math.ceil((deadlineMs - now) / 1000));
}
