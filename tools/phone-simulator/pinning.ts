/**
 * CA pinning, the way the Android app does it: the phone holds only the CA's
 * SHA-256 fingerprint (from the provisioning QR code). The pin names the one
 * trust anchor; Node's own TLS verification, with that CA as the only `ca`,
 * judges the chain (signatures, validity, basicConstraints, path length, name
 * constraints, key usage) and its checkServerIdentity the host name. Nothing
 * here walks a chain.
 *
 * Without the CA's PEM the phone learns the anchor from the broker: a first
 * TLS connection, which never carries an MQTT byte, shows the chain the broker
 * presents, and the certificate in it with the pinned fingerprint becomes the
 * `ca` of the connection that is verified (transport.ts). Finding the
 * fingerprint proves nothing by itself (anyone can append the real CA's public
 * certificate to a chain of their own); the verified connection does.
 */
import { X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate } from "node:tls";
import { normalizeFingerprint } from "../../broker/fingerprint.js";

export type PinnedCa = { ok: true; pem: string } | { ok: false; reason: string };

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

/**
 * The certificate of a presented chain that carries the pin, to verify the
 * server against: it must be a CA certificate and not the server's own (a
 * pinned leaf would vouch for itself).
 */
export function findPinnedCa(chainDer: readonly Buffer[], fingerprint: string): PinnedCa {
  const pin = normalizeFingerprint(fingerprint);
  if (pin === null) return { ok: false, reason: "the pinned fingerprint is not a SHA-256 fingerprint" };
  let certs: X509Certificate[];
  try {
    certs = chainDer.map((der) => new X509Certificate(der));
  } catch {
    return { ok: false, reason: "the server presented a certificate that cannot be parsed" };
  }
  if (certs.length === 0) return { ok: false, reason: "the server presented no certificate" };
  const index = certs.findIndex((cert) => cert.fingerprint256 === pin);
  if (index < 0) {
    return { ok: false, reason: `none of the ${certs.length} certificate(s) the server presented has the pinned CA fingerprint ${pin}` };
  }
  if (index === 0) return { ok: false, reason: "the pinned certificate is the server's own certificate, not a CA that issued it" };
  const pinned = certs[index]!;
  if (!pinned.ca) return { ok: false, reason: `the pinned certificate "${pinned.subject.replace(/\n/g, ", ")}" is not a CA certificate` };
  return { ok: true, pem: pinned.toString() };
}

/** Why Node's verification refused a server, for the log (the code stays in it for searching). */
export function describeVerifyError(code: string, host: string): string {
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `the server certificate is not valid for ${host} (${code})`;
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") return `a certificate of the chain is expired or not yet valid (${code})`;
  return `certificate not trusted (${code})`;
}
