/**
 * Part (d) of bench/phone-channel.ts: phones over MQTT/TLS that all lose their connection at
 * once and all come back at once, in a process of their own (several run side by side) so the
 * load generator sits beside the gateway, not inside it. Each phone does what the app does on
 * every connection (tools/phone-simulator/phone.ts): persistent session (clean = false, client
 * id = device id, keepalive 60 s, retained offline will), SUBSCRIBE to its own sms/out at QoS 1,
 * then a retained online status on sms/device/<id> at QoS 1. A failed attempt is retried like the
 * app retries: after a delay doubling from 1 s (up to 60 s) with ±20 % jitter, 10 s per attempt.
 */
import { openPaced, type OpenResult } from "./paced-open.js";
import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext } from "node:tls";
import mqtt, { type MqttClient } from "mqtt";
import { reconnectDelay } from "../tools/phone-simulator/backoff.js";
import type { Credentials } from "./phone-channel-client.js";
import { serve } from "./ipc.js";

/** The simulated phone's defaults (tools/phone-simulator/phone.ts). */
const ATTEMPT_TIMEOUT_MS = 10_000;
const BACKOFF = { minMs: 1_000, maxMs: 60_000 };
/** Initial set-up only: handshakes under way at once per process (see idle-clients.ts). */
const MAX_PENDING = 32;

interface Phone {
  device: Credentials;
  client?: MqttClient;
}

const phones: Phone[] = [];
let url = "";
/**
 * One TLS context for every connection of this process (built per connection from `ca`, it costs
 * the generator more than the handshake). Every connection makes a full handshake (no session
 * resumption), the gateway's worst case.
 */
let secureContext: SecureContext | undefined;
/**
 * Whether phones check the gateway's certificate against its CA, as the app does. Off, the
 * gateway does exactly the same work, and the generator saves Node's getPeerCertificate(true)
 * (about 1 ms of CPU per connection, more than the rest of a client's handshake), which on a
 * 2-CPU machine is CPU taken from the gateway.
 */
let verify = true;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Milliseconds on a clock every process of this machine shares (the parent compares them with its own). */
const now = () => performance.timeOrigin + performance.now();

/** One connection attempt: CONNECT, SUBSCRIBE (resolves with the SUBACK time), then the retained status. */
async function attempt(phone: Phone): Promise<{ subscribedAt: number; publishedAt: number }> {
  const { device } = phone;
  const client = mqtt.connect(url, {
    // mqtt.js hands its options to tls.connect(), whose `secureContext` its typings leave out.
    ...({ secureContext } as object),
    rejectUnauthorized: verify,
    servername: "localhost",
    clientId: device.id,
    username: device.id,
    password: device.token,
    clean: false,
    keepalive: 60,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: ATTEMPT_TIMEOUT_MS,
    resubscribe: false,
    will: { topic: `sms/device/${device.id}`, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
  });
  phone.client = client;
  // Errors after the attempt (a reset when the gateway stops) are not this attempt's: heard, not thrown.
  client.on("error", () => {});
  try {
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error) => (cleanup(), reject(error));
      const lost = () => fail(new Error("connection closed before CONNACK"));
      const connected = () => (cleanup(), resolve());
      const cleanup = () => {
        client.off("connect", connected);
        client.off("error", fail);
        client.off("close", lost);
      };
      client.once("connect", connected);
      client.once("error", fail);
      client.once("close", lost);
    });
    const [grant] = await client.subscribeAsync(`sms/out/${device.id}`, { qos: 1 });
    const subscribedAt = now();
    if (!grant || grant.qos === 128) throw new Error(`subscription to sms/out/${device.id} refused`);
    await client.publishAsync(`sms/device/${device.id}`, JSON.stringify({ online: true, battery: 90, at: new Date().toISOString() }), { qos: 1, retain: true });
    return { subscribedAt, publishedAt: now() };
  } catch (error) {
    client.end(true);
    phone.client = undefined;
    throw error;
  }
}

/** First connections, at a capped rate (see idle-clients.ts): this is set-up, not what is measured. */
async function connect(args: { url: string; caFile: string; verify: boolean; devices: Credentials[]; perSecond: number }): Promise<OpenResult> {
  url = args.url;
  verify = args.verify;
  // Without the CA, Node's own check fails (and is ignored): the certificate is then never read into JS.
  secureContext ??= createSecureContext(verify ? { ca: readFileSync(args.caFile) } : {});
  const fresh = args.devices.map((device): Phone => ({ device }));
  phones.push(...fresh);
  return openAtRate(fresh, args.perSecond);
}

/** Phones a storm left without a connection, connected again at a capped rate before the next one. */
function repair(args: { perSecond: number }): Promise<OpenResult> {
  return openAtRate(
    phones.filter((phone) => !phone.client?.connected),
    args.perSecond,
  );
}

function openAtRate(list: Phone[], perSecond: number): Promise<OpenResult> {
  return openPaced(list, perSecond, MAX_PENDING, async (phone) => {
    phone.client?.end(true);
    await attempt(phone);
  });
}

/** Destroys every phone's socket at once (no DISCONNECT: the gateway publishes the wills); resolves when all are closed here. */
async function drop(): Promise<number> {
  const closing: Promise<void>[] = [];
  for (const phone of phones) {
    const client = phone.client;
    if (!client) continue;
    phone.client = undefined;
    closing.push(
      new Promise<void>((resolve) => (client.stream.destroyed ? resolve() : client.stream.once("close", () => resolve()))).then(() => {
        // Done with: nothing is left to send, so this only stops its timers.
        client.end(true);
      }),
    );
    client.stream.destroy();
  }
  await Promise.all(closing);
  return closing.length;
}

export interface StormReport {
  /** Per phone that made it: SUBACK and status PUBACK times (shared clock, ms). */
  subscribedAt: number[];
  publishedAt: number[];
  failed: number;
  retries: number;
  firstError?: string;
  /** Why attempts failed: message → count. */
  errors: Record<string, number>;
  /** This process's CPU during the storm, s. */
  cpuSeconds: number;
}

/** Every phone reconnects at once (one attempt each started in this turn), retrying like the app. */
async function reconnect(args: { deadlineMs: number }): Promise<StormReport> {
  const cpuBefore = process.cpuUsage();
  const deadline = now() + args.deadlineMs;
  const report: StormReport = { subscribedAt: [], publishedAt: [], failed: 0, retries: 0, errors: {}, cpuSeconds: 0 };
  await Promise.all(
    phones.map(async (phone) => {
      for (let tries = 0; ; tries++) {
        try {
          const { subscribedAt, publishedAt } = await attempt(phone);
          report.subscribedAt.push(subscribedAt);
          report.publishedAt.push(publishedAt);
          return;
        } catch (error) {
          const message = (error as Error).message;
          report.firstError ??= message;
          report.errors[message] = (report.errors[message] ?? 0) + 1;
          const delay = reconnectDelay(tries, BACKOFF, Math.random);
          if (now() + delay > deadline) {
            report.failed++;
            return;
          }
          report.retries++;
          await sleep(delay);
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpuBefore);
  report.cpuSeconds = (cpu.user + cpu.system) / 1e6;
  return report;
}

serve(async (op, args) => {
  switch (op) {
    case "connect":
      return connect(args);
    case "drop":
      return drop();
    case "repair":
      return repair(args);
    case "reconnect":
      return reconnect(args);
    case "count":
      return phones.filter((phone) => phone.client?.connected).length;
    case "close":
      for (const phone of phones) phone.client?.end(true);
      return null;
    default:
      throw new Error(`unknown op ${op}`);
  }
});
