/**
 * Part (d) of bench/phone-channel.ts: phones over MQTT/TLS that all lose their connection at
 * once and all come back at once, in a process of their own (several run side by side) so the
 * load generator sits beside the gateway, not inside it. Each phone does what the app does on
 * every connection (tools/phone-simulator/phone.ts): persistent session (clean = false, client
 * id = device id, keepalive 60 s, retained offline will), SUBSCRIBE to its own sms/out at QoS 1,
 * then a retained online status on sms/device/<id> at QoS 1. A failed attempt is retried like the
 * app retries: after a delay doubling from 1 s (up to 60 s) with ±20 % jitter, 10 s per attempt.
 * The MQTT side is bench/lean-phone-session.ts (mqtt-packet over raw TLS, not mqtt.js: see there).
 */
import { openPaced, type OpenResult } from "./paced-open.js";
import { readFileSync } from "node:fs";
import { createSecureContext, type TLSSocket } from "node:tls";
import { reconnectDelay } from "../tools/phone-simulator/backoff.js";
import type { Credentials } from "./phone-channel-client.js";
import { serve } from "./ipc.js";
import { KEEPALIVE_SECONDS, openSession, pingEvery, type SessionTarget } from "./lean-phone-session.js";

/** The simulated phone's defaults (tools/phone-simulator/phone.ts). */
const ATTEMPT_TIMEOUT_MS = 10_000;
const BACKOFF = { minMs: 1_000, maxMs: 60_000 };
/** Initial set-up only: handshakes under way at once per process (see idle-clients.ts). */
const MAX_PENDING = 32;

interface Phone {
  device: Credentials;
  socket?: TLSSocket;
}

const phones: Phone[] = [];
/**
 * Where phones connect, with one TLS context for every connection of this process (built per
 * connection from `ca`, it costs the generator more than the handshake). Every connection makes a
 * full handshake (no session resumption), the gateway's worst case. Phones check the gateway's
 * certificate against its CA only when `verify` is set: off, the gateway does exactly the same
 * work, and the generator saves Node's getPeerCertificate(true) (about 1 ms of CPU per
 * connection), which on a 2-CPU machine is CPU taken from the gateway.
 */
let target: SessionTarget | undefined;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Milliseconds on a clock every process of this machine shares (the parent compares them with its own). */
const now = () => performance.timeOrigin + performance.now();
const isConnected = (phone: Phone) => Boolean(phone.socket && !phone.socket.destroyed);
pingEvery(KEEPALIVE_SECONDS / 2, () => phones.map((phone) => phone.socket));

/** One connection attempt: CONNECT, SUBSCRIBE (resolves with the SUBACK time), then the retained status. */
async function attempt(phone: Phone): Promise<{ subscribedAt: number; publishedAt: number }> {
  if (!target) throw new Error("connect first");
  const session = await openSession(target, phone.device, ATTEMPT_TIMEOUT_MS, now);
  phone.socket = session.socket;
  return session;
}

/** First connections, at a capped rate (see idle-clients.ts): this is set-up, not what is measured. */
async function connect(args: { url: string; caFile: string; verify: boolean; devices: Credentials[]; perSecond: number }): Promise<OpenResult> {
  const { hostname, port } = new URL(args.url);
  // Without the CA, Node's own check fails (and is ignored): the certificate is then never read into JS.
  target ??= { host: hostname, port: Number(port), verify: args.verify, secureContext: createSecureContext(args.verify ? { ca: readFileSync(args.caFile) } : {}) };
  const fresh = args.devices.map((device): Phone => ({ device }));
  phones.push(...fresh);
  return openAtRate(fresh, args.perSecond);
}

/** Phones a storm left without a connection, connected again at a capped rate before the next one. */
function repair(args: { perSecond: number }): Promise<OpenResult> {
  return openAtRate(
    phones.filter((phone) => !isConnected(phone)),
    args.perSecond,
  );
}

function openAtRate(list: Phone[], perSecond: number): Promise<OpenResult> {
  return openPaced(list, perSecond, MAX_PENDING, async (phone) => {
    phone.socket?.destroy();
    await attempt(phone);
  });
}

/** Destroys every phone's socket at once (no DISCONNECT: the gateway publishes the wills); resolves when all are closed here. */
async function drop(): Promise<number> {
  const closing: Promise<void>[] = [];
  for (const phone of phones) {
    const socket = phone.socket;
    if (!socket) continue;
    phone.socket = undefined;
    closing.push(new Promise<void>((resolve) => (socket.closed ? resolve() : socket.once("close", () => resolve()))));
    socket.destroy();
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
      return phones.filter(isConnected).length;
    case "close":
      for (const phone of phones) phone.socket?.destroy();
      return null;
    default:
      throw new Error(`unknown op ${op}`);
  }
});
