/**
 * CA pinning, the way the Android app does it: the phone does not need the CA's
 * PEM, only its SHA-256 fingerprint (from the provisioning QR code). The broker
 * presents its certificate *and* the CA; the phone accepts the connection only
 * if the CA with the pinned fingerprint is in that chain AND actually issued
 * the server certificate (signature checked, possibly through intermediates)
 * AND the server certificate names the host we dialled. Finding the fingerprint
 * alone proves nothing: anyone can append the real CA's public certificate to a
 * chain of their own.
 *
 * This module judges a presented chain; transport.ts runs it during the TLS
 * handshake, before any MQTT byte (and so the token) is written.
 */
import { X509Certificate } from "node:crypto";
import { isIP } from "node:net";
import type { DetailedPeerCertificate } from "node:tls";
import { normalizeFingerprint } from "../../broker/fingerprint.js";

const SERVER_AUTH_OID = "1.3.6.1.5.5.7.3.1";
/** Leaf plus up to three intermediates below the pinned CA. */
const MAX_PATH_LENGTH = 5;

export type Verdict = { ok: true } | { ok: false; reason: string };

/**
 * The DER certificates of `getPeerCertificate(true)`, leaf first. Node links
 * each certificate to its issuer when it can; a self-signed root links to itself.
 */
export function presentedChain(peer: DetailedPeerCertificate): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let current: DetailedPeerCertificate | undefined = peer;
  while (current?.raw && !seen.has(current.fingerprint256)) {
    seen.add(current.fingerprint256);
    chain.push(current.raw);
    current = current.issuerCertificate;
  }
  return chain;
}

function describe(cert: X509Certificate): string {
  return `"${cert.subject.replace(/\n/g, ", ")}"`;
}

function isCurrent(cert: X509Certificate, now: number): boolean {
  return Date.parse(cert.validFrom) <= now && now <= Date.parse(cert.validTo);
}

function namesHost(leaf: X509Certificate, host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, "");
  return isIP(bare) ? leaf.checkIP(bare) !== undefined : leaf.checkHost(bare) !== undefined;
}

export function checkPinnedChain(
  chainDer: readonly Buffer[],
  expected: { fingerprint: string; host: string; now: number },
): Verdict {
  const pin = normalizeFingerprint(expected.fingerprint);
  if (pin === null) return { ok: false, reason: "the pinned fingerprint is not a SHA-256 fingerprint" };

  let certs: X509Certificate[];
  try {
    certs = chainDer.map((der) => new X509Certificate(der));
  } catch {
    return { ok: false, reason: "the server presented a certificate that cannot be parsed" };
  }
  const leaf = certs[0];
  if (!leaf) return { ok: false, reason: "the server presented no certificate" };

  const pinned = certs.find((cert) => cert.fingerprint256 === pin);
  if (!pinned) {
    return { ok: false, reason: `none of the ${certs.length} certificate(s) the server presented has the pinned CA fingerprint ${pin}` };
  }
  if (pinned === leaf) return { ok: false, reason: "the pinned certificate is the server's own certificate, not a CA that issued it" };

  // Walk up from the leaf, each step checked by name and by signature, until the pinned CA.
  const path: X509Certificate[] = [leaf];
  let current = leaf;
  while (current !== pinned) {
    if (path.length > MAX_PATH_LENGTH) return { ok: false, reason: "the certificate chain is too long" };
    const subject = current;
    const issuer = certs.find(
      (candidate) => candidate !== subject && candidate.ca && subject.checkIssued(candidate) && subject.verify(candidate.publicKey),
    );
    if (!issuer) return { ok: false, reason: `${describe(subject)} is not signed by any CA in the chain the server presented` };
    if (path.includes(issuer)) return { ok: false, reason: "the certificate chain loops" };
    path.push(issuer);
    current = issuer;
  }

  const stale = path.find((cert) => !isCurrent(cert, expected.now));
  if (stale) return { ok: false, reason: `${describe(stale)} is expired or not yet valid` };
  if (!namesHost(leaf, expected.host)) return { ok: false, reason: `the server certificate is not valid for ${expected.host}` };
  // Node lists the extended key usages here; when present they must allow TLS servers.
  const usages = leaf.keyUsage ?? [];
  if (usages.length > 0 && !usages.includes(SERVER_AUTH_OID)) {
    return { ok: false, reason: "the server certificate is not meant for TLS servers (extended key usage)" };
  }
  return { ok: true };
}
