/**
 * TLS material for the broker's MQTT/TLS listener, and loading it from files an
 * operator brings (TLS_CERT_FILE, TLS_KEY_FILE, TLS_CA_FILE). Problems are
 * reported once at start, naming the file, instead of as a handshake failure
 * on some phone later.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";

export interface TlsMaterial {
  /** The CA certificate the phones pin. */
  caPem: string;
  /** The server certificate followed by the rest of its chain up to the CA: what the TLS server presents. */
  certPem: string;
  keyPem: string;
  /** SHA-256 of the CA certificate's DER, uppercase hex with colons, as X509Certificate.fingerprint256. */
  caFingerprint: string;
}

export interface TlsFiles {
  certFile: string;
  keyFile: string;
  caFile?: string;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new Error(`${what} ${file} does not exist`);
    throw new Error(`${what} ${file} cannot be read: ${messageOf(error)}`);
  }
}

/** Every certificate in a PEM file, in file order. */
function readCertificates(file: string, what: string): X509Certificate[] {
  const blocks = readText(file, what).match(CERTIFICATE_BLOCK);
  if (!blocks) throw new Error(`${what} ${file} is not PEM: it holds no "-----BEGIN CERTIFICATE-----" block`);
  return blocks.map((block, index) => {
    try {
      return new X509Certificate(block);
    } catch (error) {
      throw new Error(`${what} ${file}: certificate ${index + 1} cannot be parsed: ${messageOf(error)}`);
    }
  });
}

function readPrivateKey(file: string): KeyObject {
  const text = readText(file, "TLS key file");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new Error(`TLS key file ${file} is not PEM: it holds no "-----BEGIN ... PRIVATE KEY-----" block`);
  }
  try {
    return createPrivateKey(text);
  } catch (error) {
    throw new Error(`TLS key file ${file} cannot be read as a private key (encrypted keys are not supported): ${messageOf(error)}`);
  }
}

/**
 * Reads an operator's certificate chain, key and (optionally) CA. The pinned
 * fingerprint is the CA file's first certificate, or without a CA file the last
 * certificate of the chain (where a full chain ends in its CA). Phones accept
 * the server only if that CA is in the presented chain and issued it, so both
 * are checked here.
 */
export function loadTlsMaterial(files: TlsFiles): TlsMaterial {
  const chain = readCertificates(files.certFile, "TLS certificate file");
  const key = readPrivateKey(files.keyFile);
  const leaf = chain[0]!;
  const last = chain[chain.length - 1]!;
  if (!leaf.checkPrivateKey(key)) {
    throw new Error(`TLS key file ${files.keyFile} does not match the certificate in ${files.certFile}`);
  }

  const ca = files.caFile ? readCertificates(files.caFile, "TLS CA file")[0]! : last;
  // Phones pin a CA that issued the server certificate, never the server certificate itself.
  if (ca.fingerprint256 === leaf.fingerprint256) {
    throw new Error(
      `TLS certificate file ${files.certFile} holds no CA after the server certificate: append the CA certificate or set its file as the CA file`,
    );
  }
  const caInChain = chain.some((cert) => cert.fingerprint256 === ca.fingerprint256);
  // A phone pinning a CA that did not issue this chain would refuse every connection.
  if (!caInChain && !(last.checkIssued(ca) && last.verify(ca.publicKey))) {
    throw new Error(`TLS CA file ${files.caFile} did not issue the certificate chain in ${files.certFile}`);
  }
  // Present the chain all the way up to the pinned CA, so a phone can find it there.
  const presented = caInChain ? chain : [...chain, ca];

  return {
    caPem: ca.toString(),
    certPem: presented.map((cert) => cert.toString()).join(""),
    keyPem: key.export({ format: "pem", type: "pkcs8" }) as string,
    caFingerprint: ca.fingerprint256,
  };
}
