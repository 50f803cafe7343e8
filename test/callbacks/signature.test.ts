import { describe, expect, it } from "vitest";
import { signCallback, verifyCallback } from "../../api/callbacks/signature.js";

const SECRET = "whsec_test";
const BODY = '{"event":"job.state","status":"sent"}';
const T = 1_700_000_000;
const at = (unixSeconds: number) => new Date(unixSeconds * 1000);

describe("callback signature", () => {
  it("is v1= and the hex HMAC-SHA256 of '<timestamp>.<body>' (a vector computed with openssl)", () => {
    // printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test
    expect(signCallback(SECRET, T, BODY)).toBe("v1=45a97f07db9643afd20ce3d883fd2626a18466b48e6e7271a270b9718686230b");
  });

  it("verifies with the same secret, body and a fresh timestamp, given as string or bytes", () => {
    const header = signCallback(SECRET, T, BODY);
    expect(verifyCallback(SECRET, header, String(T), BODY, { now: at(T) })).toBe(true);
    expect(verifyCallback(SECRET, header, String(T), Buffer.from(BODY), { now: at(T + 299) })).toBe(true);
  });

  it("rejects another secret, a tampered body, or a timestamp other than the one signed", () => {
    const header = signCallback(SECRET, T, BODY);
    expect(verifyCallback("whsec_other", header, String(T), BODY, { now: at(T) })).toBe(false);
    expect(verifyCallback(SECRET, header, String(T), BODY.replace("sent", "delivered"), { now: at(T) })).toBe(false);
    expect(verifyCallback(SECRET, header, String(T + 1), BODY, { now: at(T) })).toBe(false);
  });

  it("rejects a validly signed request whose timestamp is outside the tolerance (replay)", () => {
    const old = signCallback(SECRET, T - 600, BODY);
    expect(verifyCallback(SECRET, old, String(T - 600), BODY, { now: at(T) })).toBe(false);
    const future = signCallback(SECRET, T + 600, BODY);
    expect(verifyCallback(SECRET, future, String(T + 600), BODY, { now: at(T) })).toBe(false);
    // ...and the tolerance is the receiver's to choose.
    expect(verifyCallback(SECRET, old, String(T - 600), BODY, { now: at(T), toleranceSeconds: 900 })).toBe(true);
    expect(verifyCallback(SECRET, signCallback(SECRET, T - 60, BODY), String(T - 60), BODY, { now: at(T), toleranceSeconds: 30 })).toBe(false);
  });

  it("uses the current time when no clock is given", () => {
    const now = Math.floor(Date.now() / 1000);
    expect(verifyCallback(SECRET, signCallback(SECRET, now, BODY), String(now), BODY)).toBe(true);
    expect(verifyCallback(SECRET, signCallback(SECRET, now - 600, BODY), String(now - 600), BODY)).toBe(false);
  });

  it("rejects malformed or missing headers instead of throwing", () => {
    const header = signCallback(SECRET, T, BODY);
    const hex = header.slice(3);
    const opts = { now: at(T) };
    for (const bad of [undefined, null, "", hex, `v2=${hex}`, `v1=${hex.slice(2)}`, `v1=${hex}00`, `v1=${"zz".repeat(32)}`, [header]]) {
      expect(verifyCallback(SECRET, bad, String(T), BODY, opts)).toBe(false);
    }
    for (const bad of [undefined, null, "", "1.7e9", "-1700000000", ` ${T}`, `${T}abc`, [String(T)]]) {
      expect(verifyCallback(SECRET, header, bad, BODY, opts)).toBe(false);
    }
  });
});
