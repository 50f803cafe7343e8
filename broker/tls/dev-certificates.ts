/**
 * Development TLS for the broker: a private CA and a server certificate kept in
 * DATA_DIR, made on first start. Phones pin the CA's fingerprint, so the CA is
 * made once and never replaced behind the operator's back; the server
 * certificate is cheap and is re-issued by the same CA whenever it no longer
 * fits (new hostname, close to expiry, damaged files).
 */
// @peculiar/x509 resolves its ASN.1 classes through tsyringe, which needs the Reflect metadata API.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from "node:crypto";
import { chmod, link, mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { isIP } from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { TlsMaterial } from "./tls-material.js";

export type { TlsMaterial } from "./tls-material.js";

export const DEV_TLS_FILES = {
  caCert: "ca.pem",
  caKey: "ca-key.pem",
  /** The server certificate followed by the CA certificate. */
  serverCert: "server.pem",
  serverKey: "server-key.pem",
} as const;

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_DAYS = 3650;
// 825 days is the longest server certificate every TLS client still accepts.
const SERVER_DAYS = 825;
const RENEW_WITHIN_MS = 30 * DAY_MS;
// Backdated so a phone whose clock runs a little slow does not see a fresh certificate as "not yet valid".
const BACKDATE_MS = 60 * 60 * 1000;
// How long to wait for a CA another process is writing right now.
const CA_WAIT_MS = 5_000;

const KEY_ALGORITHM = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" };
// @peculiar/x509 finds a default WebCrypto only in browsers, so Node's is passed explicitly.
const crypto = webcrypto;

interface Ca {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
}

interface ServerCert {
  /** The server certificate alone; the CA is appended when presenting. */
  certPem: string;
  keyPem: string;
}

export async function ensureDevCertificates(opts: { dir: string; hostnames: string[]; now?: Date }): Promise<TlsMaterial> {
  const now = opts.now ?? new Date();
  const hostnames = normaliseHostnames(opts.hostnames);
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  await chmod(opts.dir, 0o700); // it holds the CA key, whoever created it

  const ca = (await loadCa(opts.dir, now)) ?? (await createCa(opts.dir, now));
  const server = (await loadServerCert(opts.dir, ca, hostnames, now)) ?? (await issueServerCert(opts.dir, ca, hostnames, now));
  return {
    caPem: ca.certPem,
    certPem: server.certPem + ca.certPem,
    keyPem: server.keyPem,
    caFingerprint: ca.cert.fingerprint256,
  };
}

function normaliseHostnames(hostnames: string[]): string[] {
  const names = hostnames.map((name) => name.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, ""));
  const unique = [...new Set(names.filter((name) => name !== ""))];
  if (unique.length === 0) throw new Error("ensureDevCertificates needs at least one hostname");
  for (const name of unique) {
    if (!isIP(name) && !/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name)) {
      throw new Error(`not a hostname or IP address a certificate can name: ${JSON.stringify(name)}`);
    }
  }
  return unique;
}

async function loadCa(dir: string, now: Date): Promise<Ca | undefined> {
  const certFile = path.join(dir, DEV_TLS_FILES.caCert);
  const keyFile = path.join(dir, DEV_TLS_FILES.caKey);
  const keyPem = await readIfExists(keyFile);
  let certPem = await readIfExists(certFile);
  // The key is written first (see createCa): a key alone may be another process halfway through.
  for (const deadline = Date.now() + CA_WAIT_MS; keyPem !== undefined && certPem === undefined && Date.now() < deadline; ) {
    await sleep(50);
    certPem = await readIfExists(certFile);
  }
  if (keyPem === undefined && certPem === undefined) return undefined;
  if (keyPem === undefined || certPem === undefined) {
    throw new Error(
      `${dir} holds ${certPem === undefined ? DEV_TLS_FILES.caKey : DEV_TLS_FILES.caCert} without ` +
        `${certPem === undefined ? DEV_TLS_FILES.caCert : DEV_TLS_FILES.caKey}. Phones pin this CA, so it is not replaced ` +
        "silently: restore the missing file, or delete both to make a new CA and re-provision the phones.",
    );
  }

  const cert = new X509Certificate(certPem);
  if (!cert.checkPrivateKey(createPrivateKey(keyPem))) {
    throw new Error(`${keyFile} does not match ${certFile}`);
  }
  if (validity(cert).notAfter <= now) {
    throw new Error(
      `the dev CA in ${certFile} expired on ${cert.validTo}: delete ${DEV_TLS_FILES.caCert} and ` +
        `${DEV_TLS_FILES.caKey} to make a new one, then re-provision the phones`,
    );
  }
  return { certPem, keyPem, cert };
}

async function createCa(dir: string, now: Date): Promise<Ca> {
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      // The random suffix tells one install's dev CA from another's in a phone's or browser's trust list.
      name: `CN=otpgate dev CA ${randomBytes(4).toString("hex")}`,
      keys,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS),
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        // pathLength 0: it signs server certificates only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const certPem = toPem(cert);
  const ca: Ca = { certPem, keyPem: await exportPrivateKey(keys.privateKey), cert: new X509Certificate(certPem) };

  // Two processes starting on an empty DATA_DIR must not end up with one's
  // certificate and the other's key: the key is claimed with a write that
  // fails if the file exists, and the loser adopts the winner's CA.
  if (!(await writeOnce(path.join(dir, DEV_TLS_FILES.caKey), ca.keyPem, 0o600))) {
    const winner = await loadCa(dir, now);
    if (!winner) throw new Error(`${dir}: the dev CA another process was creating disappeared`);
    return winner;
  }
  await writeAtomic(path.join(dir, DEV_TLS_FILES.caCert), ca.certPem, 0o644);
  return ca;
}

/** The server certificate on disk, if it is still good for these hostnames; undefined means issue a new one. */
async function loadServerCert(dir: string, ca: Ca, hostnames: string[], now: Date): Promise<ServerCert | undefined> {
  const chainPem = await readIfExists(path.join(dir, DEV_TLS_FILES.serverCert));
  const keyPem = await readIfExists(path.join(dir, DEV_TLS_FILES.serverKey));
  if (chainPem === undefined || keyPem === undefined) return undefined;
  try {
    const cert = new X509Certificate(chainPem); // the first certificate in the file
    const { notBefore, notAfter } = validity(cert);
    const good =
      cert.checkIssued(ca.cert) &&
      cert.verify(ca.cert.publicKey) &&
      cert.checkPrivateKey(createPrivateKey(keyPem)) &&
      notBefore <= now &&
      notAfter.getTime() - now.getTime() > RENEW_WITHIN_MS &&
      hostnames.every((name) => (isIP(name) ? cert.checkIP(name) : cert.checkHost(name, { subject: "never" })) !== undefined);
    return good ? { certPem: cert.toString(), keyPem } : undefined;
  } catch {
    // Nothing pins the server certificate, so a damaged one is simply replaced.
    return undefined;
  }
}

async function issueServerCert(dir: string, ca: Ca, hostnames: string[], now: Date): Promise<ServerCert> {
  const caCert = new x509.X509Certificate(ca.cert.raw);
  const caKey = await crypto.subtle.importKey(
    "pkcs8",
    createPrivateKey(ca.keyPem).export({ format: "der", type: "pkcs8" }),
    KEY_ALGORITHM,
    false,
    ["sign"],
  );
  const keys = await crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
  // Never outlive the CA: clients would reject the chain from that day anyway.
  const notAfter = new Date(Math.min(now.getTime() + SERVER_DAYS * DAY_MS, caCert.notAfter.getTime()));
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: "CN=otpgate broker",
      // The CA's own encoded name, so the issuer matches its subject byte for byte.
      issuer: caCert.subjectName,
      publicKey: keys.publicKey,
      signingKey: caKey,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension(hostnames.map((name) => ({ type: isIP(name) ? "ip" : "dns", value: name }))),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        await x509.AuthorityKeyIdentifierExtension.create(caCert.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const server: ServerCert = { certPem: toPem(cert), keyPem: await exportPrivateKey(keys.privateKey) };
  // A crash between the two renames leaves a pair that does not match; the next start re-issues it.
  await writeAtomic(path.join(dir, DEV_TLS_FILES.serverKey), server.keyPem, 0o600);
  await writeAtomic(path.join(dir, DEV_TLS_FILES.serverCert), server.certPem + ca.certPem, 0o644);
  return server;
}

function validity(cert: X509Certificate): { notBefore: Date; notAfter: Date } {
  // Node 20's X509Certificate only has validFrom/validTo as text; @peculiar/x509 gives Dates.
  const parsed = new x509.X509Certificate(cert.raw);
  return { notBefore: parsed.notBefore, notAfter: parsed.notAfter };
}

/** PEM as Node writes it (trailing newline), so certificates read back from disk compare equal. */
function toPem(cert: x509.X509Certificate): string {
  return new X509Certificate(Buffer.from(cert.rawData)).toString();
}

async function exportPrivateKey(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await crypto.subtle.exportKey("pkcs8", key));
  return createPrivateKey({ key: der, format: "der", type: "pkcs8" }).export({ format: "pem", type: "pkcs8" }) as string;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** Writes a complete file next to its destination first, so no reader ever sees half of it. */
async function writeTemp(file: string, data: string, mode: number): Promise<string> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const handle = await open(temp, "wx", mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return temp;
}

async function writeAtomic(file: string, data: string, mode: number): Promise<void> {
  const temp = await writeTemp(file, data, mode);
  try {
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}

/** Like writeAtomic, but never replaces an existing file: link() fails with EEXIST. False when the file was already there. */
async function writeOnce(file: string, data: string, mode: number): Promise<boolean> {
  const temp = await writeTemp(file, data, mode);
  try {
    await link(temp, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
