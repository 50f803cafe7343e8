import { describe, expect, it } from "vitest";
import { codeDigest, digestsMatch, generateCode, settleVerification, subjectsFor, type OtpRecord } from "../../api/otp/rules.js";

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
    expect(settleVerification(record, true, now)).toEqual({
      record: { ...record, status: "approved", attempts: 1 },
      outcome: { valid: true, status: "approved", attemptsLeft: 2 },
    });
  });

  it("ends at max_attempts on the last wrong code", () => {
    const twoWrong = { ...record, attempts: 2 };
    expect(settleVerification(twoWrong, false, now).outcome).toEqual({ valid: false, status: "max_attempts", attemptsLeft: 0 });
  });

  it("expires at expiresAt exactly, without counting", () => {
    const { record: next, outcome } = settleVerification(record, true, record.expiresAt);
    expect(outcome).toEqual({ valid: false, status: "expired", attemptsLeft: 3 });
    expect(next.attempts).toBe(0);
  });

  it("leaves a finished OTP alone", () => {
    const approved = { ...record, status: "approved" as const, attempts: 1 };
    expect(settleVerification(approved, true, now)).toEqual({
      record: approved,
      outcome: { valid: false, status: "approved", attemptsLeft: 2 },
    });
  });
});

describe("subjects", () => {
  it("name the user, the number and the lower-cased address", () => {
    expect(subjectsFor({ userId: "42", to: "+254711000000", email: "A@B.io" })).toEqual(["user:42", "phone:+254711000000", "email:a@b.io"]);
    expect(subjectsFor({})).toEqual([]);
  });
});
