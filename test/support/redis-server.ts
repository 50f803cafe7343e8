/**
 * A real redis-server child process on a loopback port: without persistence
 * by default, or with AOF (as cluster mode requires) for tests that stop and
 * start it again over the same data.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { freePort } from "./ports.js";

export interface RedisServer {
  url: string;
  port: number;
  /** Stops it and deletes its data. */
  stop(): Promise<void>;
  /** Stops it (SIGTERM: it flushes its AOF first) and keeps its data for `start`. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data after `pause`. */
  start(): Promise<void>;
}

export interface RedisServerOptions {
  /** Append-only file, fsync every second: what cluster mode needs to survive a Redis restart. */
  aof?: boolean;
}

function waitForReady(child: ChildProcess, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`redis-server on ${port} did not start:\n${output}`)), 10_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once("error", (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot start redis-server (install it: apt-get install redis-server): ${error.message}`));
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = await freePort();
  const workDir = mkdtempSync(path.join(tmpdir(), "otpgate-redis-"));
  const persistence = options.aof ? ["--appendonly", "yes", "--appendfsync", "everysec"] : ["--appendonly", "no"];
  let child: ChildProcess;
  const launch = async () => {
    child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--dir", workDir], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    await waitForReady(child, port);
  };
  const halt = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  };
  await launch();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      await halt("SIGKILL");
      rmSync(workDir, { recursive: true, force: true });
    },
    pause: () => halt("SIGTERM"),
    start: launch,
  };
}
