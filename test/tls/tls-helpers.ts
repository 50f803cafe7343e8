/** A real TLS server on loopback and a client handshake against it, for the certificate tests. */
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import tls from "node:tls";

export interface Handshake {
  /** What the server sent after the handshake: proves the connection carried data. */
  reply: string;
  /** fingerprint256 of each certificate the server presented, leaf first. */
  presented: string[];
}

/** Starts a TLS server with this certificate chain and key, runs `body` with its port, then closes it. */
export async function withTlsServer<T>(material: { certPem: string; keyPem: string }, body: (port: number) => Promise<T>): Promise<T> {
  const server = tls.createServer({ cert: material.certPem, key: material.keyPem }, (socket) => socket.end("hello"));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  try {
    return await body((server.address() as AddressInfo).port);
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Connects to 127.0.0.1; `servername` (if any) is the name the certificate is checked against, else the IP. */
export function handshake(port: number, options: { ca?: string; servername?: string }): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, ...options });
    const presented: string[] = [];
    let reply = "";
    socket.setEncoding("utf8");
    socket.once("secureConnect", () => {
      for (let cert = socket.getPeerCertificate(true); cert?.fingerprint256; cert = cert.issuerCertificate) {
        presented.push(cert.fingerprint256);
        if (cert.issuerCertificate === cert) break; // a self-signed CA is its own issuer
      }
    });
    socket.on("data", (chunk: string) => (reply += chunk));
    socket.once("error", reject);
    socket.once("end", () => {
      socket.destroy();
      resolve({ reply, presented });
    });
  });
}

/** The SHA-256 fingerprint as openssl prints it, independent of Node. */
export function opensslFingerprint(pemFile: string): string {
  const line = execFileSync("openssl", ["x509", "-in", pemFile, "-noout", "-fingerprint", "-sha256"], { encoding: "utf8" });
  return line.slice(line.indexOf("=") + 1).trim();
}
