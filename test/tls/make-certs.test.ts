import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadTlsMaterial } from "../../broker/tls/tls-material.js";
import { handshake, opensslFingerprint, withTlsServer } from "./tls-helpers.js";

const SCRIPT = fileURLToPath(new URL("../../certs/make-certs.sh", import.meta.url));

let work: string;
let out: string;
let printedFingerprint: string;
/** A second, unrelated CA and server certificate. */
let other: string;
/** The server certificate of `out` without the CA after it. */
let leafOnly: string;

/** Runs the script the way its README says and returns the fingerprint it prints. */
function makeCerts(dir: string, ...hostnames: string[]): string {
  const stdout = execFileSync("bash", [SCRIPT, dir, ...hostnames], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const match = /fingerprint.*?: ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})$/m.exec(stdout);
  if (!match) throw new Error(`no fingerprint in the script's output:\n${stdout}`);
  return match[1]!;
}

function files(dir: string) {
  return {
    certFile: path.join(dir, "server.pem"),
    keyFile: path.join(dir, "server-key.pem"),
    caFile: path.join(dir, "ca.pem"),
  };
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), "otpgate-make-certs-"));
  out = path.join(work, "prod");
  printedFingerprint = makeCerts(out, "localhost", "127.0.0.1", "::1", "mqtt.example.com");
  other = path.join(work, "other");
  makeCerts(other, "localhost");
  leafOnly = path.join(work, "leaf-only.pem");
  writeFileSync(leafOnly, new X509Certificate(readFileSync(files(out).certFile)).toString());
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("certs/make-certs.sh + loadTlsMaterial", () => {
  it("prints the CA fingerprint that Node and openssl compute", () => {
    expect(printedFingerprint).toBe(new X509Certificate(readFileSync(files(out).caFile)).fingerprint256);
    expect(printedFingerprint).toBe(opensslFingerprint(files(out).caFile));
  });

  it("keeps the private keys 0600", () => {
    expect(statSync(path.join(out, "ca-key.pem")).mode & 0o777).toBe(0o600);
    expect(statSync(path.join(out, "server-key.pem")).mode & 0o777).toBe(0o600);
  });

  it("makes EC P-256 certificates: a CA, and a serverAuth certificate naming every host", () => {
    const ca = new X509Certificate(readFileSync(files(out).caFile));
    const server = new X509Certificate(readFileSync(files(out).certFile));
    expect(ca.ca).toBe(true);
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(server.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(server.ca).toBe(false);
    expect(server.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);
    expect(server.checkIssued(ca) && server.verify(ca.publicKey)).toBe(true);
    expect(server.checkHost("mqtt.example.com")).toBe("mqtt.example.com");
    expect(server.checkIP("::1")).toBe("::1");
  });

  it("is accepted by loadTlsMaterial, and a client pinning that CA completes a handshake", async () => {
    const material = loadTlsMaterial(files(out));
    expect(material.caFingerprint).toBe(printedFingerprint);
    expect(material.caPem).toBe(new X509Certificate(readFileSync(files(out).caFile)).toString());
    await withTlsServer(material, async (port) => {
      const byName = await handshake(port, { ca: material.caPem, servername: "localhost" });
      expect(byName.reply).toBe("hello");
      expect(byName.presented[1]).toBe(printedFingerprint);
      expect((await handshake(port, { ca: material.caPem })).reply).toBe("hello");
      await expect(handshake(port, { ca: material.caPem, servername: "other.example.com" })).rejects.toMatchObject({
        code: "ERR_TLS_CERT_ALTNAME_INVALID",
      });
    });
  });

  it("without a CA file, pins the last certificate of the chain", () => {
    const { certFile, keyFile } = files(out);
    expect(loadTlsMaterial({ certFile, keyFile }).caFingerprint).toBe(printedFingerprint);
  });

  it("adds the CA to the presented chain when the certificate file holds only the server certificate", () => {
    const material = loadTlsMaterial({ ...files(out), certFile: leafOnly });
    expect(material.caFingerprint).toBe(printedFingerprint);
    expect(material.certPem).toBe(loadTlsMaterial(files(out)).certPem);
  });

  it("run again, keeps the CA and re-issues the server certificate", () => {
    const dir = path.join(work, "rerun");
    const first = makeCerts(dir, "localhost");
    const caBefore = readFileSync(files(dir).caFile, "utf8");
    const serverBefore = readFileSync(files(dir).certFile, "utf8");
    expect(makeCerts(dir, "localhost", "broker.example.com")).toBe(first);
    expect(readFileSync(files(dir).caFile, "utf8")).toBe(caBefore);
    expect(readFileSync(files(dir).certFile, "utf8")).not.toBe(serverBefore);
    expect(new X509Certificate(readFileSync(files(dir).certFile)).checkHost("broker.example.com")).toBe("broker.example.com");
  });

  it("refuses a key that does not belong to the certificate, naming the key file", () => {
    const wrongKey = files(other).keyFile;
    expect(() => loadTlsMaterial({ ...files(out), keyFile: wrongKey })).toThrow(
      `TLS key file ${wrongKey} does not match the certificate in ${files(out).certFile}`,
    );
  });

  it("refuses a lone server certificate, which phones could not pin", () => {
    expect(() => loadTlsMaterial({ certFile: leafOnly, keyFile: files(out).keyFile })).toThrow(
      `TLS certificate file ${leafOnly} holds no CA after the server certificate`,
    );
  });

  it("refuses a CA file that did not issue the chain", () => {
    const foreignCa = files(other).caFile;
    expect(() => loadTlsMaterial({ ...files(out), certFile: leafOnly, caFile: foreignCa })).toThrow(
      `TLS CA file ${foreignCa} did not issue the certificate chain in ${leafOnly}`,
    );
  });

  it("names the file that is missing or not PEM", () => {
    const missing = path.join(work, "missing.pem");
    const notPem = path.join(work, "not-pem.txt");
    writeFileSync(notPem, "hello\n");
    expect(() => loadTlsMaterial({ ...files(out), certFile: missing })).toThrow(`TLS certificate file ${missing} does not exist`);
    expect(() => loadTlsMaterial({ ...files(out), keyFile: missing })).toThrow(`TLS key file ${missing} does not exist`);
    expect(() => loadTlsMaterial({ ...files(out), caFile: missing })).toThrow(`TLS CA file ${missing} does not exist`);
    expect(() => loadTlsMaterial({ ...files(out), certFile: notPem })).toThrow(`TLS certificate file ${notPem} is not PEM`);
    expect(() => loadTlsMaterial({ ...files(out), keyFile: notPem })).toThrow(`TLS key file ${notPem} is not PEM`);
    expect(() => loadTlsMaterial({ ...files(out), caFile: notPem })).toThrow(`TLS CA file ${notPem} is not PEM`);
  });
});
