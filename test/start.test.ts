/**
 * The newcomer's first command, for real: `npm start` with no configuration
 * but a DATA_DIR, in a child process.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";

const root = path.resolve(import.meta.dirname, "..");
const children: ChildProcess[] = [];

interface Started {
  url: string;
  output: () => string;
}

function start(env: Record<string, string>): ChildProcess & { text: () => string } {
  const child = spawn("npm", ["start", "--silent"], {
    cwd: root,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", HOST: "127.0.0.1", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let text = "";
  child.stdout!.on("data", (chunk: Buffer) => (text += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (text += chunk.toString()));
  children.push(child);
  return Object.assign(child, { text: () => text });
}

async function startAndWait(env: Record<string, string>): Promise<Started> {
  const child = start(env);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const up = /"msg":"otpgate is up"/.test(child.text());
    const listening = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(child.text());
    if (up && listening) return { url: listening[1]!, output: child.text };
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gateway did not come up:\n${child.text()}`);
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  process.kill(-child.pid!, "SIGTERM");
  await exited;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map(stop));
});

describe("npm start", () => {
  it("comes up with no configuration, prints a working admin key once, and keeps it across a restart", async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), "otpgate-start-"));
    const first = await startAndWait({ DATA_DIR: dataDir });
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
    const key = /og_admin_[A-Za-z0-9_-]{43}/.exec(first.output())?.[0];
    expect(key).toBeDefined();
    const keys = await fetch(`${first.url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } });
    expect(keys.status).toBe(200);
    expect(await keys.json()).toEqual({ keys: [] });
    expect((await fetch(`${first.url}/v1/keys`, { headers: { authorization: "Bearer og_admin_wrong" } })).status).toBe(401);

    // Secrets were generated into DATA_DIR, readable by the owner only; the key itself is not there.
    // The default store's database, with its write-ahead log while the gateway runs.
    expect(readdirSync(dataDir).sort()).toEqual(["admin-key.sha256", "callback-secret", "otp-secret", "otpgate.db", "otpgate.db-shm", "otpgate.db-wal", "tls"]);
    expect(statSync(path.join(dataDir, "otpgate.db")).mode & 0o777).toBe(0o600);
    expect(readdirSync(path.join(dataDir, "tls")).sort()).toEqual(["ca-key.pem", "ca.pem", "server-key.pem", "server.pem"]);
    expect(statSync(path.join(dataDir, "otp-secret")).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dataDir, "admin-key.sha256"), "utf8")).not.toContain(key!);

    // stdout is a pipe here: JSON lines, and no warning (a Fastify deprecation, say) on stderr.
    expect(first.output()).not.toMatch(/Warning|FSTDEP/);

    await stop(children[0]!);
    const second = await startAndWait({ DATA_DIR: dataDir });
    expect(second.output()).not.toContain("og_admin_");
    // Where the digest is, and the command that makes a new key.
    expect(second.output()).toContain(path.join(dataDir, "admin-key.sha256"));
    expect(second.output()).toContain("npm run admin-key");
    expect((await fetch(`${second.url}/v1/keys`, { headers: { "x-api-key": key! } })).status).toBe(200);
  });

  it("refuses bad configuration with one line per problem naming the variable", async () => {
    const child = start({ DATA_DIR: mkdtempSync(path.join(tmpdir(), "otpgate-start-")), PORT: "99999", FAILOVER_ORDER: "carrier-pigeon" });
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(code).toBe(1);
    const lines = child.text().split("\n").filter((line) => /^\s+[A-Z_]+: /.test(line));
    expect(lines.map((line) => line.trim().split(":")[0]).sort()).toEqual(["FAILOVER_ORDER", "PORT"]);
  });
});
