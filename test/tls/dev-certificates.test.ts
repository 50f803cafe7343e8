import { X509Certificate } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { DEV_TLS_FILES, ensureDevCertificates } from "../../broker/tls/dev-certificates.js";
import { loadTlsMaterial } from "../../broker/tls/tls-material.js";
import { handshake, opensslFingerprint, withTlsServer } from "./tls-helpers.js";

const DAY_MS = 24 * 60 * 60 * 1000;
const HOSTNAMES = ["localhost", "127.0.0.1", "::1", hostname()];
const ALL_FILES = Object.values(DEV_TLS_FILES);

let dataDir: string;
let dir: string;

beforeEach(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), "otpgate-tls-"));
  dir = path.join(dataDir, "tls");
});
afterEach(() => rmSync(dataDir, { recursive: true, force: true }));

function file(name: string): string {
  return path.join(dir, name);
}

/** Content and mtime of each file, to prove a call left them alone. */
function snapshot(names: readonly string[]): Record<string, { text: string; mtimeMs: number }> {
  return Object.fromEntries(names.map((name) => [name, { text: readFileSync(file(name), "utf8"), mtimeMs: statSync(file(name)).mtimeMs }]));
}

function serverCert(certPem: string): X509Certificate {
  return new X509Certificate(certPem); // the first certificate of the chain
}

describe("ensureDevCertificates", () => {
  it("serves TLS that a client trusting only the dev CA accepts, by name and by IP", async () => {
    const material = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    await withTlsServer(material, async (port) => {
      const byName = await handshake(port, { ca: material.caPem, servername: "localhost" });
      expect(byName.reply).toBe("hello");
      // The full chain is presented: server certificate, then the pinned CA.
      expect(byName.presented).toEqual([serverCert(material.certPem).fingerprint256, material.caFingerprint]);

      const byIp = await handshake(port, { ca: material.caPem });
      expect(byIp.reply).toBe("hello");
    });
  });

  it("is rejected by a client that does not trust the CA, and for a name outside the SANs", async () => {
    const material = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    await withTlsServer(material, async (port) => {
      await expect(handshake(port, { servername: "localhost" })).rejects.toMatchObject({ code: "SELF_SIGNED_CERT_IN_CHAIN" });
      await expect(handshake(port, { ca: material.caPem, servername: "elsewhere.example" })).rejects.toMatchObject({
        code: "ERR_TLS_CERT_ALTNAME_INVALID",
      });
    });
  });

  it("makes a P-256 CA and a serverAuth certificate for every hostname, within the agreed lifetimes", async () => {
    const now = new Date();
    const material = await ensureDevCertificates({ dir, hostnames: HOSTNAMES, now });
    const ca = new X509Certificate(material.caPem);
    const server = serverCert(material.certPem);

    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/^CN=otpgate dev CA [0-9a-f]{8}$/);
    expect(ca.publicKey.asymmetricKeyType).toBe("ec");
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(Date.parse(ca.validTo) - now.getTime()).toBeGreaterThan(3649 * DAY_MS);

    expect(server.ca).toBe(false);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]); // Node lists the extended key usages here
    expect(server.checkHost("localhost")).toBe("localhost");
    expect(server.checkHost(hostname().toLowerCase())).toBe(hostname().toLowerCase());
    expect(server.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(server.checkIP("::1")).toBe("::1");
    const serverDays = (Date.parse(server.validTo) - now.getTime()) / DAY_MS;
    expect(serverDays).toBeGreaterThan(824);
    expect(serverDays).toBeLessThan(826);
    // Backdated a little for phones with slow clocks, but not by days.
    expect(now.getTime() - Date.parse(server.validFrom)).toBeGreaterThan(0);
    expect(now.getTime() - Date.parse(server.validFrom)).toBeLessThan(DAY_MS);
  });

  it("reports the CA fingerprint exactly as Node and openssl compute it", async () => {
    const material = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    expect(material.caFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(material.caFingerprint).toBe(new X509Certificate(material.caPem).fingerprint256);
    expect(material.caFingerprint).toBe(opensslFingerprint(file(DEV_TLS_FILES.caCert)));
  });

  it("writes the four files, keys 0600 in a 0700 directory, with no temporary files left", async () => {
    const material = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    expect(readdirSync(dir).sort()).toEqual([...ALL_FILES].sort());
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(file(DEV_TLS_FILES.caKey)).mode & 0o777).toBe(0o600);
    expect(statSync(file(DEV_TLS_FILES.serverKey)).mode & 0o777).toBe(0o600);
    expect(readFileSync(file(DEV_TLS_FILES.caCert), "utf8")).toBe(material.caPem);
    expect(readFileSync(file(DEV_TLS_FILES.serverCert), "utf8")).toBe(material.certPem);
    expect(readFileSync(file(DEV_TLS_FILES.serverKey), "utf8")).toBe(material.keyPem);
  });

  it("reuses everything on a second call, leaving the files untouched", async () => {
    const first = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    const before = snapshot(ALL_FILES);
    const second = await ensureDevCertificates({ dir, hostnames: [...HOSTNAMES].reverse() });
    expect(second).toEqual(first);
    expect(snapshot(ALL_FILES)).toEqual(before);
    // The files read back make the same material as the operator's loader would.
    expect(
      loadTlsMaterial({ certFile: file(DEV_TLS_FILES.serverCert), keyFile: file(DEV_TLS_FILES.serverKey), caFile: file(DEV_TLS_FILES.caCert) }),
    ).toEqual(first);
  });

  it("re-issues only the server certificate for a new hostname, so pinned phones keep working", async () => {
    const first = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    const caFiles = snapshot([DEV_TLS_FILES.caCert, DEV_TLS_FILES.caKey]);
    const second = await ensureDevCertificates({ dir, hostnames: [...HOSTNAMES, "gateway.example"] });

    expect(second.caFingerprint).toBe(first.caFingerprint);
    expect(second.caPem).toBe(first.caPem);
    expect(snapshot([DEV_TLS_FILES.caCert, DEV_TLS_FILES.caKey])).toEqual(caFiles);
    expect(second.keyPem).not.toBe(first.keyPem);
    expect(serverCert(second.certPem).checkHost("gateway.example")).toBe("gateway.example");
    expect(serverCert(second.certPem).checkHost("localhost")).toBe("localhost");

    await withTlsServer(second, async (port) => {
      // A phone provisioned with the first CA accepts the new certificate.
      expect((await handshake(port, { ca: first.caPem, servername: "gateway.example" })).reply).toBe("hello");
    });
  });

  it("renews the server certificate once it expires within 30 days, keeping the CA", async () => {
    const start = new Date();
    const first = await ensureDevCertificates({ dir, hostnames: HOSTNAMES, now: start });
    const serial = serverCert(first.certPem).serialNumber;

    const at = (days: number) => new Date(start.getTime() + days * DAY_MS);
    const stillGood = await ensureDevCertificates({ dir, hostnames: HOSTNAMES, now: at(790) }); // 35 days left
    expect(serverCert(stillGood.certPem).serialNumber).toBe(serial);

    const renewed = await ensureDevCertificates({ dir, hostnames: HOSTNAMES, now: at(800) }); // 25 days left
    const cert = serverCert(renewed.certPem);
    expect(cert.serialNumber).not.toBe(serial);
    expect(renewed.caFingerprint).toBe(first.caFingerprint);
    expect(Date.parse(cert.validFrom)).toBeLessThanOrEqual(at(800).getTime());
    expect(Date.parse(cert.validTo)).toBeGreaterThan(at(800 + 824).getTime());
  });

  it("replaces damaged server files but never the CA", async () => {
    const first = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    writeFileSync(file(DEV_TLS_FILES.serverCert), "not a certificate\n");
    const repaired = await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    expect(repaired.caFingerprint).toBe(first.caFingerprint);
    await withTlsServer(repaired, async (port) => {
      expect((await handshake(port, { ca: first.caPem, servername: "localhost" })).reply).toBe("hello");
    });
  });

  it("refuses to replace a CA whose key is missing", async () => {
    await ensureDevCertificates({ dir, hostnames: HOSTNAMES });
    const caPem = readFileSync(file(DEV_TLS_FILES.caCert), "utf8");
    unlinkSync(file(DEV_TLS_FILES.caKey));
    await expect(ensureDevCertificates({ dir, hostnames: HOSTNAMES })).rejects.toThrow(/ca\.pem without ca-key\.pem/);
    expect(readFileSync(file(DEV_TLS_FILES.caCert), "utf8")).toBe(caPem);
  });

  it("gives concurrent first calls one CA between them", async () => {
    const [a, b] = await Promise.all([
      ensureDevCertificates({ dir, hostnames: HOSTNAMES }),
      ensureDevCertificates({ dir, hostnames: HOSTNAMES }),
    ]);
    const onDisk = new X509Certificate(readFileSync(file(DEV_TLS_FILES.caCert))).fingerprint256;
    expect(a.caFingerprint).toBe(onDisk);
    expect(b.caFingerprint).toBe(onDisk);
    for (const material of [a, b]) {
      await withTlsServer(material, async (port) => {
        expect((await handshake(port, { ca: a.caPem, servername: "localhost" })).reply).toBe("hello");
      });
    }
  });

  it("rejects an empty or malformed hostname list", async () => {
    await expect(ensureDevCertificates({ dir, hostnames: [] })).rejects.toThrow(/at least one hostname/);
    await expect(ensureDevCertificates({ dir, hostnames: ["bad host"] })).rejects.toThrow(/"bad host"/);
  });
});
