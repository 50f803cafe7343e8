/**
 * The OTP rules, in one place and free of I/O: how codes are made, how they are
 * stored (as HMAC digests only), and what a verification attempt does to an OTP.
 * Every decision (may a code be sent, what a check does, how subjects are
 * counted and locked) is a pure function here: the memory and SQLite stores
 * call them, the Redis store runs the same steps in Lua (redis-scripts.ts),
 * and the store contract suite holds all three to the same cases.
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

/**
 * The key a subject is counted under in a store: a keyed digest, so no store
 * holds a user id, number or address in clear, yet every node finds the same key.
 */
export function subjectKey(secret: string, subject: string): string {
  const kind = subject.slice(0, subject.indexOf(":"));
  return `${kind}:${createHmac("sha256", secret).update(`subject:${subject}`).digest("hex").slice(0, 40)}`;
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
 * What a store keeps per subject (a user, number or address), by the subject's
 * keyed digest. Times are epoch ms; an absent or past time means "not set".
 * Every store applies the functions below to these fields; the Redis store's
 * Lua (api/store/redis-scripts.ts) does the same steps in the same order, and
 * the contract suite's decision-order cases hold all of them to it.
 */
export interface SubjectLimits {
  lockedUntil?: number;
  cooldownUntil?: number;
  /** Codes sent in the hour window that ends at `sendWindowEndsAt`. */
  sends: number;
  sendWindowEndsAt?: number;
  /** Consecutive wrong codes, across resends; forgotten at `failuresUntil`. */
  failures: number;
  failuresUntil?: number;
  latestOtpId?: string;
  latestUntil?: number;
}

export const NO_LIMITS: SubjectLimits = { sends: 0, failures: 0 };

const live = (until: number | undefined, now: number): until is number => until !== undefined && until > now;

/** The subject's limits as they stand at `now`: lapsed fields read as unset. */
export function limitsAt(limits: SubjectLimits, now: number): SubjectLimits {
  return {
    ...(live(limits.lockedUntil, now) ? { lockedUntil: limits.lockedUntil } : {}),
    ...(live(limits.cooldownUntil, now) ? { cooldownUntil: limits.cooldownUntil } : {}),
    sends: live(limits.sendWindowEndsAt, now) ? limits.sends : 0,
    ...(live(limits.sendWindowEndsAt, now) ? { sendWindowEndsAt: limits.sendWindowEndsAt } : {}),
    failures: live(limits.failuresUntil, now) ? limits.failures : 0,
    ...(live(limits.failuresUntil, now) ? { failuresUntil: limits.failuresUntil } : {}),
    ...(live(limits.latestUntil, now) && limits.latestOtpId ? { latestOtpId: limits.latestOtpId, latestUntil: limits.latestUntil } : {}),
  };
}

/** The first lock among the subjects, if any: a locked subject refuses sends and checks alike. */
export function lockOf(subjects: SubjectLimits[], now: number): number | undefined {
  return subjects.map((s) => s.lockedUntil).find((until) => live(until, now));
}

/**
 * May a code be sent to these subjects now? In this order: any subject
 * locked, then any in its resend cooldown, then any at its hourly cap.
 */
export function decideIssue(subjects: SubjectLimits[], policy: OtpPolicy, now: number): IssueRejection | null {
  const current = subjects.map((s) => limitsAt(s, now));
  const locked = lockOf(current, now);
  if (locked !== undefined) return { reason: "locked", retryAfterSeconds: secondsUntil(locked, now) };
  const cooling = current.find((s) => s.cooldownUntil !== undefined);
  if (cooling) return { reason: "cooldown", retryAfterSeconds: secondsUntil(cooling.cooldownUntil!, now) };
  const capped = current.find((s) => s.sends >= policy.maxSendsPerHour);
  if (capped) return { reason: "hourly_cap", retryAfterSeconds: secondsUntil(capped.sendWindowEndsAt!, now) };
  return null;
}

/** A subject after a code was issued to it: cooldown started, the send counted, this OTP its newest. */
export function limitsAfterIssue(limits: SubjectLimits, otp: Pick<OtpRecord, "id" | "expiresAt">, policy: OtpPolicy, now: number): SubjectLimits {
  const current = limitsAt(limits, now);
  const windowEndsAt = current.sendWindowEndsAt ?? now + 3_600_000;
  return {
    ...current,
    ...(policy.resendCooldownSeconds > 0 ? { cooldownUntil: now + policy.resendCooldownSeconds * 1000 } : {}),
    sends: current.sends + 1,
    sendWindowEndsAt: windowEndsAt,
    latestOtpId: otp.id,
    latestUntil: keepOtpUntil(otp, policy),
  };
}

/** A subject after a counted check: success forgets its failures; the threshold-th failure locks it. */
export function limitsAfterCheck(limits: SubjectLimits, valid: boolean, policy: OtpPolicy, now: number): SubjectLimits {
  const current = limitsAt(limits, now);
  const { failuresUntil: _until, ...rest } = current;
  if (valid) return { ...rest, failures: 0 };
  const failures = current.failures + 1;
  const lockoutEnds = now + policy.lockoutSeconds * 1000;
  // The failure count outlives any one code, so resending cannot reset it.
  if (failures >= policy.lockoutThreshold) return { ...rest, failures: 0, lockedUntil: lockoutEnds };
  return { ...rest, failures, failuresUntil: lockoutEnds };
}

/** When a subject's record may be forgotten: its last time has passed, nothing in it counts any more. */
export function limitsKeepUntil(limits: SubjectLimits): number {
  const times = [limits.lockedUntil, limits.cooldownUntil, limits.sendWindowEndsAt, limits.failuresUntil, limits.latestUntil];
  return Math.max(0, ...times.filter((t): t is number => t !== undefined));
}

/** How long an OTP record stays readable: its lifetime plus the retention window. */
export function keepOtpUntil(otp: Pick<OtpRecord, "expiresAt">, policy: OtpPolicy): number {
  return otp.expiresAt + policy.retentionSeconds * 1000;
}

/**
 * One verification attempt against an OTP, in this order: a settled OTP
 * answers its status; a code past its expiry is expired (nothing is counted,
 * there is nothing left to guess); a locked subject refuses the check without
 * counting it; otherwise the attempt counts. `matched` is the result of
 * `digestsMatch`, done by the caller outside the store so the constant-time
 * comparison happens in Node. `counted` says whether the subjects' failure
 * counts must be updated (limitsAfterCheck).
 */
export function settleVerification(
  record: OtpRecord,
  matched: boolean,
  lockedUntil: number | undefined,
  now: number,
): { record: OtpRecord; outcome: VerificationOutcome; counted: boolean } {
  const left = (r: OtpRecord) => Math.max(0, r.maxAttempts - r.attempts);
  if (record.status !== "pending") {
    return { record, outcome: { valid: false, status: record.status, attemptsLeft: left(record) }, counted: false };
  }
  if (now >= record.expiresAt) {
    const expired = { ...record, status: "expired" as const };
    return { record: expired, outcome: { valid: false, status: "expired", attemptsLeft: left(expired) }, counted: false };
  }
  if (lockedUntil !== undefined && lockedUntil > now) {
    return {
      record,
      outcome: { valid: false, status: record.status, attemptsLeft: left(record), lockedForSeconds: secondsUntil(lockedUntil, now) },
      counted: false,
    };
  }
  const attempts = record.attempts + 1;
  const status: OtpStatus = matched ? "approved" : attempts >= record.maxAttempts ? "max_attempts" : "pending";
  const next = { ...record, attempts, status };
  return { record: next, outcome: { valid: matched, status, attemptsLeft: left(next) }, counted: true };
}

/** Seconds until a millisecond deadline, at least 1 so `Retry-After` is never 0. */
export function secondsUntil(deadlineMs: number, now: number): number {
  return Math.max(1, Math.ceil((deadlineMs - now) / 1000));
}
