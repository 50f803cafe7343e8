/**
 * A first start that cannot lock anyone out (issue 10, item 4), with real
 * processes as users run them: a start that fails says why in one line naming
 * the setting and keeps no admin key nobody saw; later starts say where the
 * digest is and how to make a new key; `npm run admin-key` makes one that
 * works, on the default store and in Redis mode.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { ensureDevCertificates } from "../broker/tls/dev-certificates.js";
import { freePort } from "./support/ports.js";
import { startRedisServer, type RedisServer } from "./support/redis-server.js";

const root = path.resolve(import.meta.dirname, "..");
const KEY = /og_admin_[A-Za-z0-9_-]{43}/;
/** A V8 stack frame, as Node prints an uncaught error. */
const STACK = /^\s+at .+[:(]/m;

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

const running: Run[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  for (const run of running.splice(0)) {
    if (run.child.exitCode === null && run.child.signalCode === null) {
      run.child.kill("SIGTERM");
      await run.exited;
    }
  }
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

function run(args: string[], env: Record<string, string>): Run {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", LOG_FORMAT: "json", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const started = { child, stdout: () => stdout, stderr: () => stderr, exited };
  running.push(started);
  return started;
}

/** The gateway on fixed free loopback ports (so a test knows them), the MQTT ones off unless given. */
async function gatewayEnv(dataDir: string, env: Record<string, string> = {}): Promise<Record<string, string>> {
  return { DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(await freePort()), MQTT_TLS_PORT: "0", MQTT_PORT: "0", ...env };
}

/** Starts the gateway and waits for it to answer, or for it to exit. */
async function startGateway(env: Record<string, string>): Promise<Run & { url: string }> {
  const started = run(["api/main.ts"], env);
  const url = `http://127.0.0.1:${env.PORT}`;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && started.child.exitCode === null) {
    if (await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false)) {
      // The admin key banner comes after the listeners are up: wait for the "up" line before reading it.
      if (started.stdout().includes('"msg":"otpgate is up"')) return { ...started, url };
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`gateway did not come up:\n${started.stdout()}\n${started.stderr()}`);
}

async function stop(started: Run): Promise<void> {
  started.child.kill("SIGTERM");
  await started.exited;
}

/** Runs a start that must fail; returns its exit code and what it printed. */
async function failedStart(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const started = run(["api/main.ts"], env);
  const code = await started.exited;
  return { code, stdout: started.stdout(), stderr: started.stderr() };
}

function errorLines(stderr: string): string[] {
  return stderr.split("\n").filter((line) => line.trim());
}

async function listenOn(port: number): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  cleanups.push(() => new Promise((resolve) => server.close(() => resolve())));
  return server;
}

function keys(url: string, key: string): Promise<number> {
  return fetch(`${url}/v1/keys`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);
}

const freshDataDir = () => mkdtempSync(path.join(tmpdir(), "otpgate-first-start-"));

describe("first start", () => {
  it("a busy port: one line naming the variable, exit 1, no stack, no admin digest kept; the next start shows a key that works", async () => {
    const dataDir = freshDataDir();
    const busy = await freePort();
    await listenOn(busy);

    // The TLS port, after HTTP is already listening (and the dev certificates made), and the HTTP port itself.
    for (const variable of ["MQTT_TLS_PORT", "PORT", "MQTT_PORT"]) {
      const failed = await failedStart(await gatewayEnv(dataDir, { [variable]: String(busy) }));
      expect(failed.code, failed.stderr).toBe(1);
      const lines = errorLines(failed.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^otpgate: ${variable}: port ${busy} on 127\\.0\\.0\\.1 is already in use`));
      expect(failed.stdout + failed.stderr).not.toMatch(STACK);
      // A key nobody saw is not kept.
      expect(failed.stdout + failed.stderr).not.toMatch(KEY);
      expect(existsSync(path.join(dataDir, "admin-key.sha256"))).toBe(false);
    }

    const later = await startGateway(await gatewayEnv(dataDir));
    const key = KEY.exec(later.stdout())?.[0];
    expect(key, later.stdout()).toBeDefined();
    expect(later.stdout()).toContain("npm run admin-key");
    expect(await keys(later.url, key!)).toBe(200);
    expect(existsSync(path.join(dataDir, "admin-key.sha256"))).toBe(true);
  });

  it("later starts say where the digest is and how to make a new key; `npm run admin-key` makes one that works and retires the old", async () => {
    const dataDir = freshDataDir();
    const env = await gatewayEnv(dataDir);
    const first = await startGateway(env);
    const firstKey = KEY.exec(first.stdout())![0];
    await stop(first);

    const second = await startGateway(env);
    expect(second.stdout()).not.toMatch(KEY);
    const hint = second
      .stdout()
      .split("\n")
      .filter((line) => line.includes("admin API key"))
      .map((line) => JSON.parse(line) as { level: number; msg: string; digestFile: string });
    expect(hint).toHaveLength(1);
    expect(hint[0]!.level).toBe(30);
    expect(hint[0]!.digestFile).toBe(path.join(dataDir, "admin-key.sha256"));
    expect(hint[0]!.msg).toContain(path.join(dataDir, "admin-key.sha256"));
    expect(hint[0]!.msg).toContain("npm run admin-key");
    await stop(second);

    // What the hint says to run: the npm script, with the gateway's DATA_DIR.
    const command = spawn("npm", ["run", "--silent", "admin-key"], { cwd: root, env: { PATH: process.env.PATH!, HOME: process.env.HOME ?? "/tmp", DATA_DIR: dataDir }, stdio: ["ignore", "pipe", "pipe"] });
    let printed = "";
    command.stdout!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    command.stderr!.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    expect(await new Promise((resolve) => command.once("exit", resolve))).toBe(0);
    const newKey = KEY.exec(printed)?.[0];
    expect(newKey, printed).toBeDefined();
    expect(newKey).not.toBe(firstKey);
    expect(printed).toContain(path.join(dataDir, "admin-key.sha256"));

    const third = await startGateway(env);
    expect(await keys(third.url, newKey!)).toBe(200);
    expect(await keys(third.url, firstKey)).toBe(401);
    expect(third.stdout()).not.toMatch(KEY);
  });

  it("the admin-key command refuses when ADMIN_API_KEY is set (the gateway would ignore the new key)", async () => {
    const command = run(["api/admin-key.ts"], { DATA_DIR: freshDataDir(), ADMIN_API_KEY: "an-admin-key-of-at-least-24-chars" });
    expect(await command.exited).toBe(1);
    expect(errorLines(command.stderr())).toEqual([expect.stringMatching(/^otpgate: ADMIN_API_KEY: /)]);
    expect(command.stdout()).not.toMatch(KEY);
  });

  it("Redis mode: a new key from the command works, as the key printed first did", async () => {
    const redis: RedisServer = await startRedisServer();
    cleanups.push(() => redis.stop());
    const dataDir = freshDataDir();
    const env = await gatewayEnv(dataDir, { REDIS_URL: redis.url });
    const first = await startGateway(env);
    const firstKey = KEY.exec(first.stdout())![0];
    expect(await keys(first.url, firstKey)).toBe(200);
    await stop(first);

    const command = run(["api/admin-key.ts"], { DATA_DIR: dataDir, REDIS_URL: redis.url });
    expect(await command.exited).toBe(0);
    const newKey = KEY.exec(command.stdout())![0];
    expect(command.stdout()).toContain("Each node keeps its own admin key");

    const second = await startGateway(env);
    expect(await keys(second.url, newKey)).toBe(200);
    expect(await keys(second.url, firstKey)).toBe(401);
  });

  it("an unreachable REDIS_URL: one line naming it, exit 1, no stack, no admin digest kept", async () => {
    const dataDir = freshDataDir();
    // A port nothing listens on.
    const failed = await failedStart(await gatewayEnv(dataDir, { REDIS_URL: `redis://127.0.0.1:${await freePort()}` }));
    expect(failed.code).toBe(1);
    const lines = errorLines(failed.stderr);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^otpgate: REDIS_URL: cannot reach Redis at 127\.0\.0\.1:\d+/);
    expect(failed.stdout + failed.stderr).not.toMatch(STACK);
    expect(existsSync(path.join(dataDir, "admin-key.sha256"))).toBe(false);
  });

  it("a bad TLS file: one line naming the variable, exit 1, no stack", async () => {
    const dataDir = freshDataDir();
    const junk = path.join(dataDir, "junk.pem");
    writeFileSync(junk, "not a certificate\n");
    // A real certificate, so the key file is what is wrong in the last two cases.
    const certs = path.join(dataDir, "certs");
    await ensureDevCertificates({ dir: certs, hostnames: ["localhost"] });
    const cert = path.join(certs, "server.pem");
    const cases: [Record<string, string>, string][] = [
      [{ TLS_CERT_FILE: junk, TLS_KEY_FILE: junk }, "TLS_CERT_FILE"],
      [{ TLS_CERT_FILE: path.join(dataDir, "missing.pem"), TLS_KEY_FILE: junk }, "TLS_CERT_FILE"],
      [{ TLS_CERT_FILE: cert, TLS_KEY_FILE: junk }, "TLS_KEY_FILE"],
      [{ TLS_CERT_FILE: cert, TLS_KEY_FILE: path.join(certs, "ca-key.pem") }, "TLS_KEY_FILE"],
      [{ TLS_CERT_FILE: cert, TLS_KEY_FILE: path.join(certs, "server-key.pem"), TLS_CA_FILE: junk }, "TLS_CA_FILE"],
    ];
    for (const [tls, variable] of cases) {
      const failed = await failedStart(await gatewayEnv(dataDir, { MQTT_TLS_PORT: String(await freePort()), ...tls }));
      expect(failed.code).toBe(1);
      const lines = errorLines(failed.stderr);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(new RegExp(`^otpgate: ${variable}: `));
      expect(failed.stdout + failed.stderr).not.toMatch(STACK);
    }
  });
});
