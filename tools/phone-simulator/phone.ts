/**
 * A simulated otpgate phone: it speaks the MQTT contract (README.md, "MQTT
 * contract (as built)") exactly like the Android app, and "sends" SMS into an array instead of the radio.
 * The rules live in job-rules.ts (what a payload means, whether to send) and
 * ledger.ts (what was handled); this file is the wiring: connection, queue,
 * timers, acks.
 *
 * Lifecycle: startPhone() resolves once the phone is connected, subscribed and
 * has published its retained online status. Lost connections are retried with
 * backoff; given several brokers (a cluster), each attempt that fails moves on
 * to the next one, cycling (BrokerRotation in transport.ts). disconnect() and kill() take the phone offline on purpose (no
 * automatic reconnect) until reconnect(); meanwhile queued jobs keep going out,
 * as SMS do on a phone without data, and their acks wait in an outbox.
 */
import type net from "node:net";
import { MqttClient, Store, type IClientOptions } from "mqtt";
import {
  GENERIC_FAILURE,
  WILL_PAYLOAD,
  buildAck,
  buildOfflineStatus,
  buildOnlineStatus,
  checkBeforeSend,
  decideOnArrival,
  deviceIdProblem,
  deviceTopics,
  parseOutboundPayload,
  type Ack,
  type AckInput,
  type AckStatus,
  type SmsJob,
} from "./job-rules.js";
import { JobLedger } from "./ledger.js";
import { SendWindow } from "./send-window.js";
import { reconnectDelay } from "./backoff.js";
import { loadLedger, saveLedger } from "./state-file.js";
import {
  BrokerRotation,
  TLS_UNTRUSTED,
  createStreamBuilder,
  describeTarget,
  parseBrokerUrl,
  type BrokerTarget,
  type Trust,
} from "./transport.js";
import { certificateFingerprint, findCertificateByFingerprint, normalizeFingerprint } from "../../broker/fingerprint.js";
import { maskDigits, maskPhoneNumber } from "./redact.js";
import { isLoopbackAddress, showCodeProblem, showCodeRefusal } from "./show-code.js";

export const SIMULATOR_VERSION = "0.1.0";

export interface PhoneOptions {
  /**
   * mqtts://host:port, or mqtt://host:port for a plain loopback broker; or
   * several (the provisioning URI's `mqtt` list), in the order to try them:
   * an attempt that fails (refused, TLS failure, timeout, refused CONNECT)
   * moves on to the next, cycling, with the reconnect backoff between attempts.
   */
  url: string | readonly string[];
  deviceId: string;
  token: string;
  /** PEM of the CA to trust (normal TLS verification against it). */
  ca?: string | Buffer;
  /** SHA-256 "AB:CD:…" of a CA that must have issued the server's certificate and appear in its chain. */
  caFingerprint?: string;
  /** Time from receiving a job to sending it, ms. Default 100. */
  latencyMs?: number;
  /** Time from sent to the delivery report, ms; null: never reports delivered. Default 500. */
  deliveredAfterMs?: number | null;
  /** Share of sends that fail with RESULT_ERROR_GENERIC_FAILURE, 0..1. Default 0. */
  failureRate?: number;
  /** Receives jobs but never acts on them or acks them (a hung app). */
  silent?: boolean;
  /** Sends per sliding minute; more wait in the queue. Default 30 (Android's own limit). */
  maxPerMinute?: number;
  /** Seconds between status publishes. Default 60. */
  heartbeatSeconds?: number;
  /** Battery percentage reported in the status. Default 100. */
  battery?: number;
  /** JSON file where handled job ids survive restarts. */
  stateFile?: string;
  /** Receives one line per event. Numbers and body digits are masked (but see showCode); the token never appears. */
  logger?: (line: string) => void;
  /**
   * Development only: each "sent" line carries the SMS body in full, codes
   * included. start() refuses (ShowCodeRefused) unless every broker resolves
   * to loopback addresses only; a job that arrives over a connection whose
   * peer is not loopback keeps its body masked. The rule is in show-code.ts.
   */
  showCode?: boolean;
  /** Draws that decide which sends fail (failureRate). Default Math.random. */
  random?: () => number;
  /** How long startPhone() and reconnect() wait for a connection, ms (over every broker). Default 30000. */
  connectTimeoutMs?: number;
  /** How long one attempt may take to get the broker's CONNACK before the next broker is tried, ms. Default 10000. */
  attemptTimeoutMs?: number;
  /** Reconnect backoff bounds, ms. Defaults 1000 and 60000. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
}

export interface SentSms {
  id: string;
  to: string;
  body: string;
  at: string;
}

export interface SimulatedPhone {
  readonly deviceId: string;
  /** SMS actually "sent", in order; tests count these. */
  readonly sent: SentSms[];
  /** Every ack the phone issued, in order (including those still waiting in the outbox). */
  readonly acks: Ack[];
  /** Ids of valid jobs as they arrived, repeats included. */
  readonly received: string[];
  /** Ids of accepted jobs not sent yet (waiting for latency or the per-minute limit). */
  readonly queued: string[];
  readonly connected: boolean;
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  /** Publishes a retained offline status, then a clean DISCONNECT (the will does not fire). */
  disconnect(): Promise<void>;
  /** Destroys the socket without DISCONNECT: the broker publishes the will. */
  kill(): void;
  reconnect(): Promise<void>;
  /** Disconnects cleanly if connected, stops every timer, saves the state file. */
  close(): Promise<void>;
}

interface QueuedJob {
  job: SmsJob;
  receivedAt: number;
}

const DEFAULTS = {
  latencyMs: 100,
  deliveredAfterMs: 500,
  failureRate: 0,
  maxPerMinute: 30,
  heartbeatSeconds: 60,
  battery: 100,
  connectTimeoutMs: 30_000,
  attemptTimeoutMs: 10_000,
  reconnectMinMs: 1_000,
  reconnectMaxMs: 60_000,
} as const;
const KEEPALIVE_SECONDS = 30;
/** Bounded waits for a broker that stops answering while we say goodbye. */
const GOODBYE_TIMEOUT_MS = 3_000;
const PRUNE_EVERY_MS = 60_000;

export async function startPhone(options: PhoneOptions): Promise<SimulatedPhone> {
  const phone = new Phone(options);
  await phone.start();
  return phone;
}

/** Errors that retrying the same server cannot fix: an untrusted server, a refused CONNECT or subscription. */
function isFatal(error: Error & { code?: unknown }): boolean {
  return isRefusalByServer(error) || error.name === "SubscriptionRefused";
}

/** A server that is not trusted, or that refused the CONNECT: another broker of the list may still do. */
function isRefusalByServer(error: Error & { code?: unknown }): boolean {
  return error.code === TLS_UNTRUSTED || typeof error.code === "number";
}

function trustFor(options: PhoneOptions, target: BrokerTarget): Trust {
  if (target.protocol === "mqtt:") {
    if (options.ca !== undefined || options.caFingerprint !== undefined) {
      throw new Error("ca and caFingerprint need an mqtts:// url");
    }
    return { kind: "system" };
  }
  if (options.caFingerprint !== undefined) {
    const fingerprint = normalizeFingerprint(options.caFingerprint);
    if (fingerprint === null) throw new Error("caFingerprint must be a SHA-256 fingerprint (32 hex bytes, e.g. AB:CD:…)");
    if (options.ca === undefined) return { kind: "pinned", fingerprint };
    // Both given: trust exactly the certificate of `ca` that carries the pin.
    const pinned = findCertificateByFingerprint(options.ca.toString(), fingerprint);
    if (pinned === null) throw new Error(`ca holds no certificate with fingerprint ${fingerprint}`);
    return { kind: "ca", ca: pinned };
  }
  if (options.ca !== undefined) {
    certificateFingerprint(options.ca.toString()); // fails early on a PEM that is not a certificate
    return { kind: "ca", ca: options.ca };
  }
  return { kind: "system" };
}

function checkNumber(name: string, value: number, min: number, max = Number.POSITIVE_INFINITY): number {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new Error(`${name} must be a number between ${min} and ${max === Number.POSITIVE_INFINITY ? "∞" : max}`);
  }
  return value;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

class Phone implements SimulatedPhone {
  readonly deviceId: string;
  readonly sent: SentSms[] = [];
  readonly acks: Ack[] = [];
  readonly received: string[] = [];

  readonly #options: PhoneOptions;
  readonly #topics: ReturnType<typeof deviceTopics>;
  readonly #brokers: BrokerRotation<BrokerTarget>;
  readonly #log: (line: string) => void;
  readonly #random: () => number;
  readonly #latencyMs: number;
  readonly #deliveredAfterMs: number | null;
  readonly #failureRate: number;
  readonly #heartbeatMs: number;
  readonly #battery: number;
  readonly #connectTimeoutMs: number;
  readonly #backoff: { minMs: number; maxMs: number };
  readonly #window: SendWindow;
  readonly #ledger: JobLedger;
  readonly #client: MqttClient;
  /** With showCode: ids of queued jobs that came over a loopback connection, whose body the "sent" line may show. */
  readonly #showable = new Set<string>();
  /** Kept across reconnections so QoS 1 acks in flight when a connection dies are sent again. */
  readonly #stores = { incomingStore: new Store({ clean: false }), outgoingStore: new Store({ clean: false }) };
  /** Signals between the MQTT callbacks and whoever waits in start() or reconnect(). */
  #waiter: { ready: () => void; fatal: (error: Error) => void } | null = null;

  #queue: QueuedJob[] = [];
  #outbox: Ack[] = [];
  #socket: net.Socket | null = null;
  #pumpTimer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  readonly #timers = new Set<NodeJS.Timeout>();
  #attempt = 0;
  /** The current attempt reached the broker's CONNACK; one that did not moves on to the next broker. */
  #reached = false;
  /** Brokers that refused us (untrusted, CONNECT refused) since the last connection: all of them is fatal. */
  readonly #refusedBy = new Set<number>();
  #offlineByRequest = false;
  #closed = false;
  #wasOnline = false;
  #lastError = "";
  #lastPrune = 0;

  constructor(options: PhoneOptions) {
    const idProblem = deviceIdProblem(options.deviceId);
    if (idProblem) throw new Error(idProblem);
    if (options.token.length === 0) throw new Error("token is empty");
    const urls = typeof options.url === "string" ? [options.url] : [...options.url];
    if (urls.length === 0) throw new Error("url: give at least one broker URL");
    const targets = urls.map(parseBrokerUrl);
    // Checked for every broker now, so a bad one fails at start rather than when the phone reaches it.
    const trusts = targets.map((target) => trustFor(options, target));

    this.#options = options;
    this.deviceId = options.deviceId;
    this.#topics = deviceTopics(options.deviceId);
    this.#brokers = new BrokerRotation(targets);
    const logger = options.logger ?? (() => {});
    this.#log = (line) => logger(`${this.deviceId}: ${line}`);
    this.#random = options.random ?? Math.random;
    this.#latencyMs = checkNumber("latencyMs", options.latencyMs ?? DEFAULTS.latencyMs, 0);
    const delivered = options.deliveredAfterMs === undefined ? DEFAULTS.deliveredAfterMs : options.deliveredAfterMs;
    this.#deliveredAfterMs = delivered === null ? null : checkNumber("deliveredAfterMs", delivered, 0);
    this.#failureRate = checkNumber("failureRate", options.failureRate ?? DEFAULTS.failureRate, 0, 1);
    this.#heartbeatMs = checkNumber("heartbeatSeconds", options.heartbeatSeconds ?? DEFAULTS.heartbeatSeconds, 0.01) * 1000;
    this.#battery = checkNumber("battery", options.battery ?? DEFAULTS.battery, 0, 100);
    this.#connectTimeoutMs = checkNumber("connectTimeoutMs", options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs, 1);
    this.#backoff = {
      minMs: checkNumber("reconnectMinMs", options.reconnectMinMs ?? DEFAULTS.reconnectMinMs, 1),
      maxMs: checkNumber("reconnectMaxMs", options.reconnectMaxMs ?? DEFAULTS.reconnectMaxMs, 1),
    };
    this.#window = new SendWindow(options.maxPerMinute ?? DEFAULTS.maxPerMinute);
    this.#ledger = options.stateFile ? loadLedger(options.stateFile, Date.now()) : new JobLedger();

    const clientOptions: IClientOptions = {
      protocolId: "MQTT",
      protocolVersion: 4,
      clientId: options.deviceId,
      username: options.deviceId,
      password: options.token,
      clean: false,
      keepalive: KEEPALIVE_SECONDS,
      reconnectPeriod: this.#nextDelay(),
      // A refused CONNECT (say, the broker restarted before loading devices) is retried like a lost connection.
      reconnectOnConnackError: true,
      connectTimeout: checkNumber("attemptTimeoutMs", options.attemptTimeoutMs ?? DEFAULTS.attemptTimeoutMs, 1),
      // We subscribe ourselves on every connect, session or not.
      resubscribe: false,
      manualConnect: true,
      will: { topic: this.#topics.device, payload: Buffer.from(WILL_PAYLOAD), qos: 1, retain: true },
      ...this.#stores,
    };
    const onSocket = (socket: net.Socket) => {
      this.#socket = socket;
    };
    const builders = targets.map((target, index) => createStreamBuilder(target, trusts[index]!, onSocket));
    // mqtt.js calls this for every (re)connection: each attempt goes to the broker the rotation names.
    const streamBuilder = () => {
      this.#reached = false;
      return builders[this.#brokers.index]!();
    };
    this.#client = new MqttClient(streamBuilder, clientOptions);
    this.#wire(this.#client);
  }

  get connected(): boolean {
    return this.#client.connected;
  }

  get queued(): string[] {
    return this.#queue.map((entry) => entry.job.id);
  }

  /** The broker the current (or next) attempt goes to. */
  get #where(): string {
    return describeTarget(this.#brokers.current);
  }

  async start(): Promise<void> {
    if (this.#options.showCode) {
      // Before any connection: a refused phone never sends its token anywhere.
      const problem = await showCodeProblem(this.#brokers.targets);
      if (problem !== null) {
        await this.#shutdown(false);
        throw showCodeRefusal(problem);
      }
    }
    const others = this.#brokers.targets.slice(1).map(describeTarget);
    this.#log(`connecting to ${this.#where}${others.length > 0 ? ` (then ${others.join(", ")})` : ""}`);
    const ready = this.#untilReady();
    this.#client.connect();
    try {
      await ready;
    } catch (error) {
      await this.#shutdown(false);
      throw error;
    }
  }

  async waitFor(predicate: () => boolean, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!predicate()) {
      if (Date.now() >= deadline) throw new Error(`${this.deviceId}: condition not met within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  async disconnect(): Promise<void> {
    if (this.#closed || this.#offlineByRequest) return;
    await this.#goOffline(true);
    this.#log("disconnected cleanly");
  }

  kill(): void {
    if (this.#closed || this.#offlineByRequest) return;
    this.#offlineByRequest = true;
    this.#stopHeartbeat();
    // Abrupt: the TCP connection dies without a DISCONNECT packet, as when a phone loses power or network.
    this.#socket?.destroy();
    this.#client.end(true);
    this.#log("connection killed; the broker will publish the will");
  }

  async reconnect(): Promise<void> {
    if (this.#closed) throw new Error(`${this.deviceId}: phone is closed`);
    if (this.#client.connected && !this.#offlineByRequest) return;
    this.#offlineByRequest = false;
    this.#attempt = 0;
    this.#refusedBy.clear();
    const ready = this.#untilReady();
    this.#client.reconnect(this.#stores);
    try {
      await ready;
    } catch (error) {
      await this.#goOffline(false);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#shutdown(true);
    this.#log("closed");
  }

  // --- connection -----------------------------------------------------------

  #wire(client: MqttClient): void {
    client.on("connect", (connack) => {
      this.#reached = true;
      this.#refusedBy.clear();
      this.#attempt = 0;
      client.options.reconnectPeriod = this.#nextDelay();
      this.#log(`connected to ${this.#where}${connack.sessionPresent ? " (session resumed)" : ""}`);
      void this.#afterConnect();
    });
    client.on("reconnect", () => {
      this.#attempt += 1;
      // Read by mqtt.js when this attempt fails and it schedules the next one.
      client.options.reconnectPeriod = this.#nextDelay();
      this.#log(`reconnecting (attempt ${this.#attempt}) to ${this.#where}`);
    });
    client.on("close", () => {
      this.#stopHeartbeat();
      if (this.#wasOnline) this.#log("connection closed");
      this.#wasOnline = false;
      // An attempt that never got its CONNACK: the next one goes to the next broker.
      if (!this.#reached && this.#brokers.size > 1 && !this.#closed && !this.#offlineByRequest) {
        const failed = this.#where;
        this.#brokers.advance();
        this.#log(`no connection to ${failed}; ${this.#where} is next`);
      }
    });
    client.on("error", (error: Error & { code?: unknown }) => {
      const from = this.#brokers.size > 1 ? ` from ${this.#where}` : "";
      this.#lastError = `${error.message}${from}`;
      this.#log(`connection error${from}: ${error.message}`);
      if (!isFatal(error)) return;
      if (isRefusalByServer(error)) {
        // Fatal only once every broker of the list has refused us: another may be the one that trusts us.
        this.#refusedBy.add(this.#brokers.index);
        if (this.#refusedBy.size < this.#brokers.size) return;
      }
      this.#waiter?.fatal(error);
    });
    client.on("message", (topic, payload) => {
      // A throw here would surface inside mqtt.js's parser; no payload may take the phone down.
      try {
        this.#onMessage(topic, payload);
      } catch (error) {
        this.#log(`error while handling a message on ${topic}: ${(error as Error).message}`);
      }
    });
  }

  #nextDelay(): number {
    // Jitter uses Math.random, so an injected `random` decides failures alone and stays predictable.
    return reconnectDelay(this.#attempt, this.#backoff, Math.random);
  }

  /** Settles when the next connection is fully set up, a fatal error arrives, or the timeout passes. */
  #untilReady(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        const last = this.#lastError ? ` (last error: ${this.#lastError})` : "";
        const where = this.#brokers.size > 1 ? `any of ${this.#brokers.targets.map(describeTarget).join(", ")}` : this.#where;
        reject(new Error(`${this.deviceId}: could not connect to ${where} within ${this.#connectTimeoutMs} ms${last}`));
      }, this.#connectTimeoutMs);
      this.#waiter = {
        ready: () => {
          clearTimeout(timer);
          this.#waiter = null;
          resolve();
        },
        fatal: (error) => {
          clearTimeout(timer);
          this.#waiter = null;
          reject(error);
        },
      };
    });
  }

  /** Subscribe, announce, flush what waited: done on every connection, session or not. */
  async #afterConnect(): Promise<void> {
    const client = this.#client;
    try {
      const [grant] = await client.subscribeAsync(this.#topics.out, { qos: 1 });
      if (!grant || grant.qos === 128) {
        const refused = new Error(`the broker refused the subscription to ${this.#topics.out}`);
        refused.name = "SubscriptionRefused";
        throw refused;
      }
      await client.publishAsync(this.#topics.device, this.#statusPayload(), { qos: 1, retain: true });
    } catch (error) {
      this.#log(`setting up the connection failed: ${(error as Error).message}`);
      if (isFatal(error as Error)) this.#waiter?.fatal(error as Error);
      return;
    }
    this.#wasOnline = true;
    this.#flushOutbox();
    this.#startHeartbeat();
    this.#waiter?.ready();
  }

  #statusPayload(): string {
    return JSON.stringify(
      buildOnlineStatus({ battery: this.#battery, signal: 4, app: `otpgate-sim/${SIMULATOR_VERSION}` }, Date.now()),
    );
  }

  #startHeartbeat(): void {
    this.#stopHeartbeat();
    this.#heartbeat = setInterval(() => {
      if (this.#client.connected) this.#client.publish(this.#topics.device, this.#statusPayload(), { qos: 1, retain: true });
    }, this.#heartbeatMs);
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  /** Leaves the broker on purpose. `goodbye`: publish offline status and DISCONNECT, if connected. */
  async #goOffline(goodbye: boolean): Promise<void> {
    this.#offlineByRequest = true;
    this.#stopHeartbeat();
    const client = this.#client;
    if (goodbye && client.connected) {
      try {
        const offline = JSON.stringify(buildOfflineStatus(Date.now()));
        await withTimeout(client.publishAsync(this.#topics.device, offline, { qos: 1, retain: true }), GOODBYE_TIMEOUT_MS);
        await withTimeout(client.endAsync(false), GOODBYE_TIMEOUT_MS);
        return;
      } catch (error) {
        this.#log(`clean disconnect failed (${(error as Error).message}); closing the socket`);
      }
    }
    // Not connected: a DISCONNECT would only be queued and sent on the next connection.
    await withTimeout(client.endAsync(true), GOODBYE_TIMEOUT_MS).catch(() => {});
  }

  async #shutdown(goodbye: boolean): Promise<void> {
    this.#closed = true;
    this.#waiter = null;
    if (this.#pumpTimer) clearTimeout(this.#pumpTimer);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#queue = [];
    await this.#goOffline(goodbye);
    this.#save();
  }

  // --- jobs -----------------------------------------------------------------

  #onMessage(topic: string, payload: Buffer): void {
    if (this.#closed) return;
    if (topic !== this.#topics.out) {
      this.#log(`ignored a message on ${topic}`);
      return;
    }
    const parsed = parseOutboundPayload(payload);
    if (!parsed.ok) {
      this.#log(`ignored an invalid payload: ${parsed.reason}`);
      return;
    }
    if (parsed.message.kind === "cancel") this.#onCancel(parsed.message.id);
    else this.#onJob(parsed.message.job);
  }

  #onJob(job: SmsJob): void {
    const now = Date.now();
    this.received.push(job.id);
    this.#log(`job ${job.id} received: to ${maskPhoneNumber(job.to)}, "${maskDigits(job.body)}"`);
    if (this.#options.silent) return;
    this.#pruneNow(now);

    const decision = decideOnArrival(job, this.#ledger, now);
    if (decision.action === "duplicate") {
      // Not sent again. Restating the latest status is harmless (the gateway ignores repeated
      // acks) and repairs the case of an ack lost with a previous run of the phone.
      const latest = this.#ledger.latestAck(job.id);
      this.#log(`job ${job.id} is a repeat (${latest?.status ?? "unknown"}); not sent again`);
      if (latest) this.#ack(latest);
      return;
    }
    if (decision.action === "refuse") {
      this.#ledger.record(job.id, { status: "failed", error: decision.error, expiresAt: job.expiresAt });
      this.#save();
      this.#log(`job ${job.id} refused: ${decision.error}`);
      this.#ack({ id: job.id, status: "failed", error: decision.error });
      return;
    }

    this.#ledger.record(job.id, { status: "received", expiresAt: job.expiresAt });
    if (this.#options.showCode) {
      const peer = this.#socket?.remoteAddress;
      if (isLoopbackAddress(peer)) this.#showable.add(job.id);
      else this.#log(`job ${job.id} came from ${peer ?? "an unknown address"}, not loopback: its body stays masked`);
    }
    // Saved before any chance of sending, so a restart can never send this id again.
    if (!this.#save()) {
      this.#ledger.setStatus(job.id, "failed", "STATE_NOT_SAVED");
      this.#ack({ id: job.id, status: "failed", error: "STATE_NOT_SAVED" });
      return;
    }
    this.#ack({ id: job.id, status: "received" });
    this.#queue.push({ job, receivedAt: now });
    this.#pump();
  }

  #onCancel(id: string): void {
    const now = Date.now();
    this.#log(`cancel for job ${id} received`);
    if (this.#options.silent) return;
    this.#ledger.rememberCancel(id, now);
    const index = this.#queue.findIndex((entry) => entry.job.id === id);
    if (index >= 0) {
      this.#queue.splice(index, 1);
      this.#finish(id, "CANCELLED");
      this.#pump();
    } else if (this.#ledger.isHandled(id)) {
      this.#log(`cancel for job ${id} came too late: already ${this.#ledger.handled(id)?.status ?? "handled"}`);
    } else {
      this.#log(`cancel for job ${id} remembered; the job has not arrived`);
    }
    this.#save();
  }

  /** Sends what may be sent now, drops what expired, and sleeps until the next job can go. */
  #pump(): void {
    if (this.#pumpTimer) clearTimeout(this.#pumpTimer);
    this.#pumpTimer = null;
    if (this.#closed) return;
    const now = Date.now();

    for (const entry of [...this.#queue]) {
      if (now >= entry.job.expiresAt) {
        this.#queue.splice(this.#queue.indexOf(entry), 1);
        this.#finish(entry.job.id, "EXPIRED");
      }
    }
    // One radio: jobs go out in arrival order, each no sooner than latencyMs after it arrived.
    while (this.#queue[0]) {
      const head = this.#queue[0];
      const readyAt = Math.max(head.receivedAt + this.#latencyMs, this.#window.nextSlotAt(now));
      if (readyAt > now) {
        const firstExpiry = Math.min(...this.#queue.map((entry) => entry.job.expiresAt));
        this.#pumpTimer = setTimeout(() => this.#pump(), Math.min(readyAt, firstExpiry) - now);
        return;
      }
      this.#queue.shift();
      this.#transmit(head.job, now);
    }
  }

  #transmit(job: SmsJob, now: number): void {
    const check = checkBeforeSend(job, this.#ledger, now);
    if (!check.ok) {
      this.#finish(job.id, check.error);
      return;
    }
    this.#window.record(now);
    if (this.#random() < this.#failureRate) {
      this.#finish(job.id, GENERIC_FAILURE);
      return;
    }
    this.sent.push({ id: job.id, to: job.to, body: job.body, at: new Date(now).toISOString() });
    this.#setStatus(job.id, "sent");
    // JSON keeps a body with line breaks (the WebOTP line) on one log line.
    const shown = this.#showable.delete(job.id) ? `: ${JSON.stringify(job.body)}` : "";
    this.#log(`job ${job.id} sent to ${maskPhoneNumber(job.to)}${shown}`);
    this.#ack({ id: job.id, status: "sent" });

    if (this.#deliveredAfterMs === null) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#setStatus(job.id, "delivered");
      this.#log(`job ${job.id} delivered`);
      this.#ack({ id: job.id, status: "delivered" });
    }, this.#deliveredAfterMs);
    this.#timers.add(timer);
  }

  /** A job ends without being sent. */
  #finish(id: string, error: string): void {
    this.#showable.delete(id);
    this.#setStatus(id, "failed", error);
    this.#log(`job ${id} failed: ${error}`);
    this.#ack({ id, status: "failed", error });
  }

  #setStatus(id: string, status: AckStatus, error?: string): void {
    this.#ledger.setStatus(id, status, error);
    this.#save();
  }

  // --- acks and state -------------------------------------------------------

  #ack(input: AckInput): void {
    const ack = buildAck(input, Date.now());
    this.acks.push(ack);
    // Older acks in the outbox go first, so a job's acks always reach the gateway in order.
    if (this.#client.connected && !this.#offlineByRequest && this.#outbox.length === 0) this.#publishAck(ack);
    else this.#outbox.push(ack);
  }

  #flushOutbox(): void {
    const waiting = this.#outbox;
    this.#outbox = [];
    for (const ack of waiting) this.#publishAck(ack);
  }

  #publishAck(ack: Ack): void {
    // QoS 1 from a persistent store: if the connection dies first, mqtt.js sends it again on reconnect.
    this.#client.publish(this.#topics.ack, JSON.stringify(ack), { qos: 1 }, (error) => {
      const what = `${ack.status}${ack.status === "failed" ? ` ${ack.error}` : ""}`;
      if (error) this.#log(`ack ${ack.id} ${what} not confirmed yet: ${error.message}`);
      else this.#log(`acked job ${ack.id}: ${what}`);
    });
  }

  /** Returns false when the state file could not be written. */
  #save(): boolean {
    const path = this.#options.stateFile;
    if (!path) return true;
    try {
      this.#ledger.prune(Date.now());
      saveLedger(path, this.#ledger);
      return true;
    } catch (error) {
      this.#log(`could not save ${path}: ${(error as Error).message}`);
      return false;
    }
  }

  #pruneNow(now: number): void {
    if (now - this.#lastPrune < PRUNE_EVERY_MS) return;
    this.#lastPrune = now;
    this.#ledger.prune(now);
  }
}
