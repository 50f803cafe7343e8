import { describe, expect, it } from "vitest";
import {
  DEFAULT_POLICY,
  NO_LIMITS,
  codeDigest,
  decideIssue,
  digestsMatch,
  generateCode,
  limitsAfterCheck,
  limitsAfterIssue,
  lockOf,
  settleVerification,
  subjectKey,
  subjectsFor,
  type OtpRecord,
} from "../../api/otp/rules.js";

describe("codes", () => {
  it("have the asked length and only digits, for every length 4..10", () => {
    for (let length = 4; length <= 10; length++) {
      const code = generateCode(length);
      expect(code).toMatch(new RegExp(`^\\d{${length}}$`));
    }
    expect(generateCode()).toHaveLength(6);
  });

  it("refuse lengths outside 4..10", () => {
    expect(() => generateCode(3)).toThrow(RangeError);
    expect(() => generateCode(11)).toThrow(RangeError);
    expect(() => generateCode(4.5)).toThrow(RangeError);
  });

  it("use every digit in every position about equally (no modulo bias, no fixed digits)", () => {
    const counts = Array.from({ length: 6 }, () => new Array<number>(10).fill(0));
    const samples = 20_000;
    for (let i = 0; i < samples; i++) [...generateCode(6)].forEach((digit, position) => counts[position]![Number(digit)]!++);
    for (const position of counts) {
      for (const count of position) {
        // Expected 2000 each; 5 standard deviations is about ±212.
        expect(Math.abs(count - samples / 10)).toBeLessThan(250);
      }
    }
  });
});

describe("digests", () => {
  it("depend on the secret, the id and the code", () => {
    const base = codeDigest("secret-a", "id-1", "123456");
    expect(base).toMatch(/^[0-9a-f]{64}$/);
    expect(codeDigest("secret-b", "id-1", "123456")).not.toBe(base);
    expect(codeDigest("secret-a", "id-2", "123456")).not.toBe(base);
    expect(codeDigest("secret-a", "id-1", "123457")).not.toBe(base);
    expect(base).not.toContain("123456");
  });

  it("compare equal only when equal, and never throw on a length mismatch", () => {
    const digest = codeDigest("s", "i", "1234");
    expect(digestsMatch(digest, codeDigest("s", "i", "1234"))).toBe(true);
    expect(digestsMatch(digest, codeDigest("s", "i", "1235"))).toBe(false);
    expect(digestsMatch(digest, "abcd")).toBe(false);
  });
});

describe("settleVerification", () => {
  const now = 1_000_000;
  const record: OtpRecord = {
    id: "o",
    digest: "d",
    channel: "sms",
    subjects: ["phone:+254711000000"],
    status: "pending",
    attempts: 0,
    maxAttempts: 3,
    createdAt: now,
    expiresAt: now + 60_000,
    jobId: "j",
  };

  it("approves a match and counts the attempt", () => {
    expect(settleVerification(record, true, undefined, now)).toEqual({
      record: { ...record, status: "approved", attempts: 1 },
      outcome: { valid: true, status: "approved", attemptsLeft: 2 },
      counted: true,
    });
  });

  it("ends at max_attempts on the last wrong code", () => {
    const twoWrong = { ...record, attempts: 2 };
    expect(settleVerification(twoWrong, false, undefined, now).outcome).toEqual({ valid: false, status: "max_attempts", attemptsLeft: 0 });
  });

  it("expires at expiresAt exactly, without counting", () => {
    const { record: next, outcome } = settleVerification(record, true, now + 60_000, record.expiresAt);
    expect(outcome).toEqual({ valid: false, status: "expired", attemptsLeft: 3 });
    expect(next.attempts).toBe(0);
  });

  it("leaves a finished OTP alone", () => {
    const approved = { ...record, status: "approved" as const, attempts: 1 };
    expect(settleVerification(approved, true, now + 60_000, now)).toEqual({
      record: approved,
      outcome: { valid: false, status: "approved", attemptsLeft: 2 },
      counted: false,
    });
  });

  it("refuses a pending code while a subject is locked, without counting", () => {
    const result = settleVerification(record, true, now + 30_000, now);
    expect(result).toEqual({ record, outcome: { valid: false, status: "pending", attemptsLeft: 3, lockedForSeconds: 30 }, counted: false });
    // A lock that has ended refuses nothing.
    expect(settleVerification(record, true, now, now).counted).toBe(true);
  });
});

describe("subject limits", () => {
  const now = 1_800_000_000_000;
  const policy = { ...DEFAULT_POLICY, resendCooldownSeconds: 30, maxSendsPerHour: 2, lockoutThreshold: 2, lockoutSeconds: 600 };

  it("decides a send: locked before cooldown before the hourly cap", () => {
    const all = { ...NO_LIMITS, lockedUntil: now + 5_000, cooldownUntil: now + 10_000, sends: 2, sendWindowEndsAt: now + 60_000 };
    expect(decideIssue([all], policy, now)).toEqual({ reason: "locked", retryAfterSeconds: 5 });
    expect(decideIssue([{ ...all, lockedUntil: undefined }], policy, now)).toEqual({ reason: "cooldown", retryAfterSeconds: 10 });
    expect(decideIssue([{ ...all, lockedUntil: undefined, cooldownUntil: undefined }], policy, now)).toEqual({ reason: "hourly_cap", retryAfterSeconds: 60 });
    // Lapsed limits refuse nothing: the window ended, so its sends no longer count.
    expect(decideIssue([{ ...all, lockedUntil: now, cooldownUntil: now - 1, sendWindowEndsAt: now }], policy, now)).toBeNull();
  });

  it("counts a send in the current window and starts the cooldown", () => {
    const first = limitsAfterIssue(NO_LIMITS, { id: "a", expiresAt: now + 300_000 }, policy, now);
    expect(first).toMatchObject({ sends: 1, sendWindowEndsAt: now + 3_600_000, cooldownUntil: now + 30_000, latestOtpId: "a" });
    const second = limitsAfterIssue(first, { id: "b", expiresAt: now + 400_000 }, policy, now + 40_000);
    expect(second).toMatchObject({ sends: 2, sendWindowEndsAt: now + 3_600_000, latestOtpId: "b" });
  });

  it("locks on the threshold-th consecutive failure, and a success forgets the count", () => {
    const once = limitsAfterCheck(NO_LIMITS, false, policy, now);
    expect(once).toMatchObject({ failures: 1, failuresUntil: now + 600_000 });
    expect(limitsAfterCheck(once, true, policy, now).failures).toBe(0);
    const locked = limitsAfterCheck(once, false, policy, now);
    expect(locked).toMatchObject({ failures: 0, lockedUntil: now + 600_000 });
    expect(lockOf([NO_LIMITS, locked], now)).toBe(now + 600_000);
  });
});

describe("subject keys", () => {
  it("are keyed digests that keep the kind and never the value", () => {
    const key = subjectKey("s".repeat(32), "phone:+254711000000");
    expect(key).toMatch(/^phone:[0-9a-f]{40}$/);
    expect(key).not.toContain("254711");
    expect(subjectKey("s".repeat(32), "phone:+254711000000")).toBe(key);
    expect(subjectKey("t".repeat(32), "phone:+254711000000")).not.toBe(key);
  });
});

describe("subjects", () => {
  it("name the user, the number and the lower-cased address", () => {
    expect(subjectsFor({ userId: "42", to: "+254711000000", email: "A@B.io" })).toEqual(["user:42", "phone:+254711000000", "email:a@b.io"]);
    expect(subjectsFor({})).toEqual([]);
  });
});
