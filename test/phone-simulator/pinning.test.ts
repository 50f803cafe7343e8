import { beforeAll, describe, expect, it } from "vitest";
import { findPinnedCa } from "../../tools/phone-simulator/pinning.js";
import { createAuthority, issueServerCertificate, type Authority, type ServerCertificate } from "./support/pki.js";

let ca: Authority;
let leaf: ServerCertificate;

beforeAll(async () => {
  ca = await createAuthority();
  leaf = await issueServerCertificate(ca, { dns: ["localhost"], ips: ["127.0.0.1"] });
});

// Which certificate becomes the only `ca`; the chain itself is judged by Node's TLS (phone-tls.test.ts).
describe("findPinnedCa", () => {
  it("picks the presented certificate with the pinned fingerprint, in any spelling", () => {
    expect(findPinnedCa([leaf.der, ca.der], ca.fingerprint)).toEqual({ ok: true, pem: expect.stringContaining("BEGIN CERTIFICATE") });
    const picked = findPinnedCa([leaf.der, ca.der], ca.fingerprint.replace(/:/g, "").toLowerCase());
    expect(picked.ok && picked.pem.replace(/\s/g, "")).toBe(ca.pem.replace(/\s/g, ""));
  });

  it("refuses a chain without the pinned CA", async () => {
    const other = await createAuthority("CN=some other CA");
    expect(findPinnedCa([leaf.der, ca.der], other.fingerprint)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/none of the 2 certificate\(s\).*pinned CA fingerprint/),
    });
  });

  it("refuses when the pin names the server's own certificate", async () => {
    const { createHash } = await import("node:crypto");
    const leafFingerprint = (createHash("sha256").update(leaf.der).digest("hex").toUpperCase().match(/../g) ?? []).join(":");
    expect(findPinnedCa([leaf.der, ca.der], leafFingerprint)).toMatchObject({ ok: false, reason: expect.stringMatching(/server's own certificate/) });
  });

  it("refuses a pinned certificate that is not a CA", async () => {
    const second = await issueServerCertificate(ca);
    const secondFingerprint = (await import("node:crypto")).createHash("sha256").update(second.der).digest("hex").toUpperCase().match(/../g)!.join(":");
    expect(findPinnedCa([leaf.der, second.der], secondFingerprint)).toMatchObject({ ok: false, reason: expect.stringMatching(/not a CA certificate/) });
  });

  it("refuses an empty chain, an unparsable certificate and a malformed pin", () => {
    expect(findPinnedCa([], ca.fingerprint).ok).toBe(false);
    expect(findPinnedCa([Buffer.from("not DER")], ca.fingerprint)).toMatchObject({ ok: false, reason: expect.stringMatching(/cannot be parsed/) });
    expect(findPinnedCa([leaf.der, ca.der], "AB:CD")).toMatchObject({ ok: false, reason: expect.stringMatching(/not a SHA-256 fingerprint/) });
  });
});
