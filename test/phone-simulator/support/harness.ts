/**
 * Shared set-up for the simulator's broker tests: one CA and one TLS Aedes
 * broker per test file, fresh device ids per test (so sessions and retained
 * messages never leak between tests), and every phone closed after each test.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { startPhone, type PhoneOptions, type SimulatedPhone } from "../../../tools/phone-simulator/phone.js";
import { createAuthority, issueServerCertificate, type Authority } from "./pki.js";
import { startTlsBroker, type TestBroker } from "./tls-broker.js";

export interface Harness {
  ca: Authority;
  broker: TestBroker;
  tokens: Record<string, string>;
  /** A new device id with a token the broker accepts. */
  newDevice(): { deviceId: string; token: string };
  /** Starts a phone trusting the test CA, fast by default (no latency, delivered after 20 ms). */
  phone(overrides?: Partial<PhoneOptions>): Promise<SimulatedPhone>;
  tempDir(): string;
  /** Closes this test's phones and temp dirs. */
  cleanUp(): Promise<void>;
  close(): Promise<void>;
}

let deviceCounter = 0;

export async function createHarness(): Promise<Harness> {
  const ca = await createAuthority();
  const server = await issueServerCertificate(ca);
  const tokens: Record<string, string> = {};
  const broker = await startTlsBroker({ key: server.keyPem, certChain: `${server.pem}\n${ca.pem}\n`, tokens });
  const phones: SimulatedPhone[] = [];
  const dirs: string[] = [];

  const newDevice = () => {
    deviceCounter += 1;
    const deviceId = `sim-${process.pid}-${deviceCounter}`;
    tokens[deviceId] = `token-${deviceId}-secret`;
    return { deviceId, token: tokens[deviceId] };
  };

  return {
    ca,
    broker,
    tokens,
    newDevice,
    async phone(overrides = {}) {
      const device = overrides.deviceId ? { deviceId: overrides.deviceId, token: tokens[overrides.deviceId] ?? "" } : newDevice();
      const phone = await startPhone({
        url: broker.url,
        ...device,
        ca: ca.pem,
        latencyMs: 0,
        deliveredAfterMs: 20,
        connectTimeoutMs: 5_000,
        ...overrides,
      });
      phones.push(phone);
      return phone;
    },
    tempDir() {
      const dir = mkdtempSync(path.join(tmpdir(), "otpgate-phone-"));
      dirs.push(dir);
      return dir;
    },
    async cleanUp() {
      await Promise.all(phones.splice(0).map((phone) => phone.close()));
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    },
    close: () => broker.close(),
  };
}

export function job(id: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    to: "+254712345678",
    body: "Your otpgate code is 482913",
    expiresAt: new Date(Date.now() + 60_000).toISOString(),
    ...overrides,
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
