/**
 * SHA-256 certificate fingerprints in the one spelling the project uses
 * everywhere (provisioning URIs, `caFingerprint`, logs): upper-case hex pairs
 * joined by colons, which is also what Node's `X509Certificate.fingerprint256`
 * prints, so values can be compared as plain strings.
 */
import { X509Certificate } from "node:crypto";

const SHA256_HEX = /^[0-9A-F]{64}$/;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** "ab:cd…", "ABCD…" (with or without colons) → "AB:CD:…"; null when it is not 32 bytes of hex. */
export function normalizeFingerprint(input: string): string | null {
  const hex = input.trim().replace(/:/g, "").toUpperCase();
  if (!SHA256_HEX.test(hex)) return null;
  return (hex.match(/../g) ?? []).join(":");
}

/** Every certificate block of a PEM bundle, in order. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(PEM_CERTIFICATE) ?? [];
}

export function certificateFingerprint(certificate: string | Buffer): string {
  return new X509Certificate(certificate).fingerprint256;
}

/**
 * The certificate of `pem` whose fingerprint is `fingerprint`, or null. Callers
 * trust only that one certificate, never the rest of a bundle fetched over a
 * channel that may have been tampered with.
 */
export function findCertificateByFingerprint(pem: string, fingerprint: string): string | null {
  const wanted = normalizeFingerprint(fingerprint);
  if (wanted === null) return null;
  for (const block of splitPemCertificates(pem)) {
    try {
      if (certificateFingerprint(block) === wanted) return block;
    } catch {
      // An unparsable block cannot be the pinned CA; keep looking.
    }
  }
  return null;
}
