/**
 * Starts a real redis-server on a free loopback port for the whole run and hands
 * its URL to the tests through vitest's `provide`/`inject`.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { freePort } from "../support/ports.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

async function waitForReady(child: ChildProcess, port: number): Promise<void> {
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
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited with ${code}:\n${output}`));
    });
  });
}

let child: ChildProcess | undefined;
let workDir: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  const port = await freePort();
  workDir = mkdtempSync(path.join(tmpdir(), "otpgate-redis-"));
  child = spawn(
    "redis-server",
    ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", workDir],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.on("error", (error) => {
    throw new Error(`cannot start redis-server (install it: apt-get install redis-server): ${error.message}`);
  });
  await waitForReady(child, port);
  project.provide("redisUrl", `redis://127.0.0.1:${port}`);
}

export async function teardown(): Promise<void> {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child?.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  if (workDir) rmSync(workDir, { recursive: true, force: true });
}
