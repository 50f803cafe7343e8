/**
 * The outside world of part (a) of bench/phone-channel.ts, in its own process: the simulated
 * phones (tools/phone-simulator, as the app behaves), raw MQTT clients for the QoS 1 baseline,
 * and the REST client. Forked by phone-channel.ts; see bench/ipc.ts for the protocol.
 *
 * The REST load is a closed loop: `concurrency` workers each POST a message and wait until the
 * gateway has settled it, normally `sent` (the parent tells us, from its store), before the next,
 * so exactly that many jobs are under way end to end and latency is not the length of a queue
 * the client built up.
 */
import { readFileSync } from "node:fs";
import mqtt, { type MqttClient } from "mqtt";
import { startPhone, type SimulatedPhone } from "../tools/phone-simulator/phone.js";
import { serve } from "./ipc.js";

export interface Credentials {
  id: string;
  token: string;
}

export interface LoadReport {
  accepted: number;
  /** Count per unexpected HTTP status, or "network" for requests that got no answer. */
  unexpected: Record<string, number>;
  seconds: number;
}

const phones: SimulatedPhone[] = [];
const raw: MqttClient[] = [];
/** Jobs the parent saw settle (normally `sent`), and the workers waiting for one. */
const settledEarly = new Set<string>();
const waiting = new Map<string, () => void>();

function onSettled(id: string): void {
  const wake = waiting.get(id);
  if (wake) {
    waiting.delete(id);
    wake();
  } else {
    // The store can record `sent` before this process has read the 202 that names the job.
    settledEarly.add(id);
  }
}

function untilSettled(id: string): Promise<void> {
  if (settledEarly.delete(id)) return Promise.resolve();
  return new Promise((resolve) => waiting.set(id, resolve));
}

async function inBatches<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(work));
}

async function startPhones(args: { url: string; caFingerprint: string; devices: Credentials[]; latencyMs: number }): Promise<number> {
  await inBatches(args.devices, 10, async (device) => {
    const phone = await startPhone({
      url: args.url,
      deviceId: device.id,
      token: device.token,
      caFingerprint: args.caFingerprint,
      latencyMs: args.latencyMs,
      deliveredAfterMs: null,
      heartbeatSeconds: 3600,
      // The phone's own (Android) limit would cap the channel at a few jobs a second; the bench
      // measures the gateway, so neither it nor the device budget may bind.
      maxPerMinute: 1_000_000_000,
    });
    phones.push(phone);
  });
  return phones.length;
}

/** Phone-like sessions (persistent, subscribed to their own sms/out) that only PUBACK what arrives. */
async function startRaw(args: { url: string; caFile: string; devices: Credentials[] }): Promise<number> {
  const ca = readFileSync(args.caFile);
  await inBatches(args.devices, 10, async (device) => {
    const client = await mqtt.connectAsync(args.url, {
      ca,
      servername: "localhost",
      clientId: device.id,
      username: device.id,
      password: device.token,
      clean: false,
      keepalive: 30,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync(`sms/out/${device.id}`, { qos: 1 });
    raw.push(client);
  });
  return raw.length;
}

async function load(args: { url: string; apiKey: string; jobs: number; concurrency: number; tag: string }): Promise<LoadReport> {
  const report: LoadReport = { accepted: 0, unexpected: {}, seconds: 0 };
  const headers = { authorization: `Bearer ${args.apiKey}`, "content-type": "application/json" };
  let next = 0;
  const started = performance.now();
  const worker = async () => {
    for (let n = next++; n < args.jobs; n = next++) {
      // A distinct number per job, so nothing in the gateway can treat two jobs as one.
      const body = JSON.stringify({ to: `+2547${String(n % 100_000_000).padStart(8, "0")}`, body: `bench ${args.tag} #${n}` });
      let reply: Response;
      try {
        reply = await fetch(`${args.url}/v1/messages`, { method: "POST", headers, body });
      } catch {
        report.unexpected.network = (report.unexpected.network ?? 0) + 1;
        continue;
      }
      const json = (await reply.json()) as { id?: string };
      if (reply.status !== 202 || !json.id) {
        report.unexpected[reply.status] = (report.unexpected[reply.status] ?? 0) + 1;
        continue;
      }
      report.accepted++;
      await untilSettled(json.id);
    }
  };
  await Promise.all(Array.from({ length: Math.min(args.concurrency, args.jobs) }, worker));
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

async function close(): Promise<void> {
  for (const wake of waiting.values()) wake();
  await Promise.all([...phones.map((p) => p.close()), ...raw.map((c) => c.endAsync(true))]);
}

serve(
  async (op, args) => {
    switch (op) {
      case "phones":
        return startPhones(args);
      case "raw":
        return startRaw(args);
      case "load":
        return load(args);
      case "close":
        return close();
      default:
        throw new Error(`unknown op ${op}`);
    }
  },
  (event) => {
    for (const id of (event as { settled?: string[] }).settled ?? []) onSettled(id);
  },
);
