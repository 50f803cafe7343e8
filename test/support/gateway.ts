/**
 * Builds a real gateway for a test: real store (the default SQLite file in its
 * own DATA_DIR, the memory store, or the suite's Redis),
 * real HTTP server on an ephemeral loopback port, its own DATA_DIR.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { inject } from "vitest";
import { loadConfig } from "../../api/config/config.js";
import { createGateway, type Gateway, type GatewayOptions } from "../../api/gateway.js";

export const ADMIN_KEY = "test-admin-key-0123456789abcdef";

/**
 * The fraud guard's volume checks (per-key, per-number and per-prefix quotas,
 * the conversion watch) off, as the HTTP rate limits are: suites send
 * thousands of unverified codes to a few +254 numbers from one key. Number
 * types and geo permissions stay on; test/fraud/ sets its own limits.
 */
export const FRAUD_VOLUME_CHECKS_OFF: Record<string, string> = {
  FRAUD_KEY_MAX_PER_MINUTE: "0",
  FRAUD_KEY_MAX_PER_DAY: "0",
  FRAUD_NUMBER_MAX_PER_HOUR: "0",
  FRAUD_PREFIX_MAX_PER_HOUR: "0",
  FRAUD_WATCH_MIN_SENDS: "0",
};

export interface TestGateway {
  url: string;
  /** Ports of the MQTT listeners (TLS, plain loopback). */
  mqtts: number;
  mqtt: number;
  gateway: Gateway;
  dataDir: string;
  redisKeyPrefix?: string;
  /** fetch against the gateway with the admin key (or `key`) and JSON in and out. */
  // Replies are whatever the server said; tests assert on their shape, so `any` is the honest type here.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call(method: string, route: string, body?: unknown, key?: string | null): Promise<{ status: number; headers: Headers; json: any }>;
  close(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Default: sqlite, as `npm start` runs. */
  store?: "sqlite" | "memory" | "redis";
  dataDir?: string;
  redisKeyPrefix?: string;
  admission?: GatewayOptions["admission"];
  /** Default: a silent logger; tests that assert on log lines pass their own. */
  logger?: GatewayOptions["logger"];
}

export async function startGateway(options: StartOptions = {}): Promise<TestGateway> {
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), "otpgate-test-"));
  const env: Record<string, string> = {
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "silent",
    OTP_RESEND_COOLDOWN_SECONDS: "0",
    RATE_LIMIT_PER_IP: "100000",
    RATE_LIMIT_PER_KEY: "100000",
    ...FRAUD_VOLUME_CHECKS_OFF,
    PROVIDER_TIMEOUT_MS: "2000",
    ...(options.store === "redis" ? { REDIS_URL: inject("redisUrl") } : {}),
    ...(options.store === "memory" ? { STORE: "memory" } : {}),
    ...options.env,
  };
  const result = loadConfig(env);
  if (!result.ok) throw new Error(`bad test config: ${result.problems.join("; ")}`);
  const redisKeyPrefix = options.store === "redis" ? (options.redisKeyPrefix ?? `t:${randomUUID()}:`) : undefined;
  const gateway = await createGateway(result.config, {
    logger: options.logger ?? pino({ level: "silent" }),
    defaultMetrics: false,
    redisKeyPrefix,
    ...(options.admission ? { admission: options.admission } : {}),
  });
  const addresses = await gateway.listen({ ephemeral: true });
  const url = addresses.http.replace("localhost", "127.0.0.1");

  return {
    url,
    mqtts: addresses.mqtts!,
    mqtt: addresses.mqtt!,
    gateway,
    dataDir,
    redisKeyPrefix,
    async call(method, route, body, key = ADMIN_KEY) {
      const headers: Record<string, string> = {};
      if (key) headers.authorization = `Bearer ${key}`;
      if (body !== undefined) headers["content-type"] = "application/json";
      const response = await fetch(url + route, {
        method,
        headers,
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = text ? JSON.parse(text) : undefined;
      } catch {
        json = text;
      }
      return { status: response.status, headers: response.headers, json };
    },
    close: () => gateway.close(),
  };
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 5000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** The code in an OTP text: the first run of 4–10 digits. */
export function codeIn(text: string): string {
  const match = /\b(\d{4,10})\b/.exec(text);
  if (!match) throw new Error(`no code in: ${text}`);
  return match[1]!;
}
