/**
 * Throwaway certificates for the phone simulator's tests, made in memory with
 * @peculiar/x509 (ECDSA P-256: fast to generate, so each suite gets its own).
 */
// @peculiar/x509's dependency injection needs the Reflect metadata API loaded first.
import "reflect-metadata";
import { X509Certificate as NodeX509, webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 24 * 60 * 60 * 1000;

type KeyPair = webcrypto.CryptoKeyPair;
/** The key type @peculiar/x509 declares; the same objects as Node's webcrypto keys. */
type X509Key = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]["keys"];

export interface Authority {
  name: string;
  pem: string;
  der: Buffer;
  fingerprint: string;
  keys: KeyPair;
}

export interface ServerCertificate {
  /** Leaf certificate only. */
  pem: string;
  der: Buffer;
  keyPem: string;
}

async function generateKeys(): Promise<KeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"])) as KeyPair;
}

function forX509(keys: KeyPair): X509Key {
  return keys as unknown as X509Key;
}

async function keyPem(keys: KeyPair): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", keys.privateKey);
  return x509.PemConverter.encode(pkcs8, "PRIVATE KEY");
}

function serial(): string {
  return webcrypto.getRandomValues(new Uint8Array(8)).reduce((hex, byte) => hex + byte.toString(16).padStart(2, "0"), "01");
}

export async function createAuthority(name = "CN=otpgate test CA"): Promise<Authority> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name,
    keys: forX509(keys),
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 30 * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(forX509(keys).publicKey),
    ],
  });
  const pem = cert.toString("pem");
  return { name, pem, der: Buffer.from(cert.rawData), fingerprint: new NodeX509(pem).fingerprint256, keys };
}

/**
 * A CA certificate signed by `parent` (an intermediate), or with `ca: false` an
 * ordinary certificate whose key someone misuses to sign others.
 */
export async function createIntermediate(
  parent: Authority,
  name: string,
  options: { ca?: boolean; pathLength?: number } = {},
): Promise<Authority> {
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: name,
    issuer: parent.name,
    publicKey: forX509(keys).publicKey,
    signingKey: forX509(parent.keys).privateKey,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: new Date(Date.now() + 30 * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(options.ca ?? true, options.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(forX509(keys).publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(forX509(parent.keys).publicKey),
    ],
  });
  const pem = cert.toString("pem");
  return { name, pem, der: Buffer.from(cert.rawData), fingerprint: new NodeX509(pem).fingerprint256, keys };
}

export async function issueServerCertificate(
  authority: Authority,
  options: {
    dns?: string[];
    ips?: string[];
    /** Leave out the authority key identifier, so only the issuer name links leaf and CA. */
    withoutAuthorityKeyId?: boolean;
    notAfter?: Date;
  } = {},
): Promise<ServerCertificate> {
  const keys = await generateKeys();
  const names = [
    ...(options.dns ?? ["localhost"]).map((value) => ({ type: "dns" as const, value })),
    ...(options.ips ?? ["127.0.0.1"]).map((value) => ({ type: "ip" as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
    new x509.SubjectAlternativeNameExtension(names),
  ];
  if (!options.withoutAuthorityKeyId) extensions.push(await x509.AuthorityKeyIdentifierExtension.create(forX509(authority.keys).publicKey));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: "CN=otpgate test broker",
    issuer: authority.name,
    publicKey: forX509(keys).publicKey,
    signingKey: forX509(authority.keys).privateKey,
    notBefore: new Date(Date.now() - DAY_MS),
    notAfter: options.notAfter ?? new Date(Date.now() + 30 * DAY_MS),
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions,
  });
  return { pem: cert.toString("pem"), der: Buffer.from(cert.rawData), keyPem: await keyPem(keys) };
}
