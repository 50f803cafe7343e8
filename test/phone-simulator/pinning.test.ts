import { beforeAll, describe, expect, it } from "vitest";
import { checkPinnedChain } from "../../tools/phone-simulator/pinning.js";
import { createAuthority, issueServerCertificate, type Authority, type ServerCertificate } from "./support/pki.js";

let ca: Authority;
let leaf: ServerCertificate;
const now = () => Date.now();

beforeAll(async () => {
  ca = await createAuthority();
  leaf = await issueServerCertificate(ca, { dns: ["localhost"], ips: ["127.0.0.1"] });
});

describe("checkPinnedChain", () => {
  it("accepts a server certificate issued by the pinned CA, for the dialled host", () => {
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: ca.fingerprint, host: "127.0.0.1", now: now() })).toEqual({ ok: true });
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: ca.fingerprint.toLowerCase(), host: "localhost", now: now() })).toEqual({ ok: true });
  });

  it("refuses a chain without the pinned CA", async () => {
    const other = await createAuthority("CN=some other CA");
    const verdict = checkPinnedChain([leaf.der, ca.der], { fingerprint: other.fingerprint, host: "127.0.0.1", now: now() });
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/none of the 2 certificate\(s\).*pinned CA fingerprint/) });
  });

  it("refuses the real CA appended to a certificate it did not sign, even under the same issuer name", async () => {
    const impostor = await createAuthority(ca.name);
    const forged = await issueServerCertificate(impostor, { withoutAuthorityKeyId: true });
    const verdict = checkPinnedChain([forged.der, ca.der], { fingerprint: ca.fingerprint, host: "127.0.0.1", now: now() });
    expect(verdict).toMatchObject({ ok: false, reason: expect.stringMatching(/is not signed by any CA in the chain/) });
  });

  it("refuses a certificate for another host", () => {
    const verdict = checkPinnedChain([leaf.der, ca.der], { fingerprint: ca.fingerprint, host: "10.0.0.9", now: now() });
    expect(verdict).toMatchObject({ ok: false, reason: "the server certificate is not valid for 10.0.0.9" });
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: ca.fingerprint, host: "evil.example", now: now() }).ok).toBe(false);
  });

  it("refuses an expired server certificate", () => {
    const later = Date.now() + 365 * 24 * 60 * 60 * 1000;
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: ca.fingerprint, host: "127.0.0.1", now: later })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/expired or not yet valid/),
    });
  });

  it("refuses when the pin names the server's own certificate", async () => {
    const { createHash } = await import("node:crypto");
    const leafFingerprint = (createHash("sha256").update(leaf.der).digest("hex").toUpperCase().match(/../g) ?? []).join(":");
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: leafFingerprint, host: "127.0.0.1", now: now() })).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/server's own certificate/),
    });
  });

  it("refuses an empty chain and a malformed pin", () => {
    expect(checkPinnedChain([], { fingerprint: ca.fingerprint, host: "127.0.0.1", now: now() }).ok).toBe(false);
    expect(checkPinnedChain([leaf.der, ca.der], { fingerprint: "AB:CD", host: "127.0.0.1", now: now() }).ok).toBe(false);
  });
});
