/**
 * Starts a real redis-server on a free loopback port for the whole run and hands
 * its URL to the tests through vitest's `provide`/`inject`.
 */
import type { TestProject } from "vitest/node";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
  }
}

let server: RedisServer | undefined;

export async function setup(project: TestProject): Promise<void> {
  server = await startRedisServer();
  project.provide("redisUrl", server.url);
}

export async function teardown(): Promise<void> {
  await server?.stop();
}
