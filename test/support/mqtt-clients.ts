/**
 * Raw MQTT clients for broker tests: the `mqtt` package with its CONNACK and
 * SUBACK codes exposed, external command-line clients (mosquitto, Python) run
 * with hard deadlines, and a reader for the gateway's Prometheus counters.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { connect, type IClientOptions, type MqttClient } from "mqtt";
import type { TestGateway } from "./gateway.js";

// ---------------------------------------------------------------------------
// The `mqtt` package

/** The outcome of one CONNECT: the CONNACK return code (0 = accepted) and, if accepted, the client. */
export interface ConnectOutcome {
  code: number;
  client?: MqttClient;
  sessionPresent?: boolean;
}

/**
 * Connects once (MQTT 3.1.1, no automatic reconnect) and reports the CONNACK
 * return code. A refused client is already closed; an accepted one is the caller's to end.
 */
export function tryConnect(url: string, options: IClientOptions = {}, timeoutMs = 5000): Promise<ConnectOutcome> {
  return new Promise((resolve, reject) => {
    const client = connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: timeoutMs, ...options });
    const timer = setTimeout(() => {
      client.end(true);
      reject(new Error(`no CONNACK from ${url} within ${timeoutMs} ms`));
    }, timeoutMs);
    client.once("connect", (connack) => {
      clearTimeout(timer);
      client.removeAllListeners("error");
      // Errors after the CONNECT (a closed socket) are the test's business, not an unhandled event.
      client.on("error", () => {});
      resolve({ code: connack.returnCode ?? 0, client, sessionPresent: connack.sessionPresent });
    });
    client.once("error", (error: Error & { code?: unknown }) => {
      clearTimeout(timer);
      client.end(true);
      if (typeof error.code === "number") resolve({ code: error.code });
      else reject(error);
    });
  });
}

/** Connects and insists on being accepted. */
export async function connectClient(url: string, options: IClientOptions = {}): Promise<MqttClient> {
  const outcome = await tryConnect(url, options);
  if (outcome.code !== 0 || !outcome.client) throw new Error(`CONNECT to ${url} refused with return code ${outcome.code}`);
  return outcome.client;
}

/** The return codes of one SUBSCRIBE's SUBACK (0x80 = refused). */
export function subscribeCodes(client: MqttClient, topic: string | string[], qos: 0 | 1 = 1): Promise<number[]> {
  return new Promise((resolve, reject) => {
    client.subscribe(topic, { qos }, (error, granted, packet) => {
      const codes = (packet as { granted?: number[] } | undefined)?.granted;
      if (codes) return resolve(codes);
      if (error && typeof (error as Error & { code?: unknown }).code === "number") return resolve([(error as Error & { code: number }).code]);
      if (error) return reject(error);
      resolve((granted ?? []).map((g) => g.qos));
    });
  });
}

/** Resolves when the client's connection is closed (by the server, or by us). */
export function closed(client: MqttClient, timeoutMs = 3000): Promise<void> {
  if (!client.connected) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`connection of ${client.options.clientId} still open after ${timeoutMs} ms`)), timeoutMs);
    client.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Ends a client without waiting for a broker that may be gone. */
export async function endClient(client: MqttClient | undefined): Promise<void> {
  if (!client) return;
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 2000);
    client.end(true, {}, () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Collects the messages a client receives, by topic. */
export function collect(client: MqttClient): Array<{ topic: string; payload: string }> {
  const seen: Array<{ topic: string; payload: string }> = [];
  client.on("message", (topic, payload) => seen.push({ topic, payload: payload.toString() }));
  return seen;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// External processes (mosquitto_sub, mosquitto_pub, Python)

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Killed by our deadline rather than exiting on its own. */
  killed: boolean;
}

export interface RunningProcess {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Settles when the process exits (or is killed at the deadline). */
  result: Promise<ProcessResult>;
  /** Resolves once `predicate` holds for stdout so far; rejects if the process exits first or after `timeoutMs`. */
  waitForOutput(predicate: (stdout: string) => boolean, timeoutMs?: number): Promise<string>;
  kill(): void;
}

export interface ProcessOptions {
  /** Killed (SIGKILL) if still running after this. Default 10 s. */
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Line-buffer its stdout (stdbuf -oL), for C tools whose output to a pipe would otherwise wait for exit. */
  lineBuffered?: boolean;
}

/** Starts a process with a hard deadline: it is killed (SIGKILL) if still running after `timeoutMs`. */
export function startProcess(command: string, args: string[], options: ProcessOptions = {}): RunningProcess {
  const [file, argv] = options.lineBuffered ? ["stdbuf", ["-oL", command, ...args]] : [command, args];
  const child = spawn(file, argv, { stdio: ["ignore", "pipe", "pipe"], env: options.env ?? process.env });
  let out = "";
  let err = "";
  let killed = false;
  const listeners = new Set<() => void>();
  child.stdout!.on("data", (chunk: Buffer) => {
    out += chunk.toString();
    for (const listener of listeners) listener();
  });
  child.stderr!.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const deadline = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, options.timeoutMs ?? 10_000);
  const result = new Promise<ProcessResult>((resolve, reject) => {
    child.once("error", (error) => {
      clearTimeout(deadline);
      reject(error);
    });
    child.once("close", (code, signal) => {
      clearTimeout(deadline);
      for (const listener of listeners) listener();
      resolve({ code, signal, stdout: out, stderr: err, killed });
    });
  });
  let exited = false;
  void result.then(
    () => (exited = true),
    () => (exited = true),
  );
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    result,
    waitForOutput(predicate, timeoutMs = 5000) {
      return new Promise((resolve, reject) => {
        const done = (error?: Error) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (error) reject(error);
          else resolve(out);
        };
        const check = () => {
          if (predicate(out)) return done();
          if (exited || child.exitCode !== null || child.signalCode !== null) {
            done(new Error(`${command} exited before the expected output; stdout: ${out} stderr: ${err}`));
          }
        };
        const timer = setTimeout(() => done(new Error(`timed out waiting for ${command} output; stdout: ${out} stderr: ${err}`)), timeoutMs);
        listeners.add(check);
        check();
      });
    },
    kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    },
  };
}

/** Runs a process to completion (or its deadline). */
export function runProcess(command: string, args: string[], options: ProcessOptions = {}): Promise<ProcessResult> {
  return startProcess(command, args, options).result;
}

/** mosquitto_sub / mosquitto_pub arguments for the gateway's TLS listener, MQTT 3.1.1, on loopback. */
export function mosquittoTls(gw: TestGateway, caFile: string, credentials: { clientId?: string; username?: string; password?: string }): string[] {
  return [
    "-h", "127.0.0.1",
    "-p", String(gw.mqtts),
    "--cafile", caFile,
    "-V", "mqttv311",
    ...(credentials.clientId ? ["-i", credentials.clientId] : []),
    ...(credentials.username ? ["-u", credentials.username] : []),
    ...(credentials.password ? ["-P", credentials.password] : []),
  ];
}

/** mosquitto arguments for the plain loopback listener. */
export function mosquittoPlain(gw: TestGateway, credentials: { clientId?: string; username?: string; password?: string }): string[] {
  return [
    "-h", "127.0.0.1",
    "-p", String(gw.mqtt),
    "-V", "mqttv311",
    ...(credentials.clientId ? ["-i", credentials.clientId] : []),
    ...(credentials.username ? ["-u", credentials.username] : []),
    ...(credentials.password ? ["-P", credentials.password] : []),
  ];
}

// ---------------------------------------------------------------------------
// Metrics

/** The sum of every series of a Prometheus counter whose labels include `labels`. */
export async function metricValue(gw: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const response = await gw.call("GET", "/metrics");
  if (response.status !== 200 || typeof response.json !== "string") throw new Error(`GET /metrics answered ${response.status}`);
  let total = 0;
  for (const line of response.json.split("\n")) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const series = Object.fromEntries([...(match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([key, value]) => series[key] === value)) total += Number(match[3]);
  }
  return total;
}

/** A job payload for `sms/out/<id>`, valid for a minute. */
export function jobFor(id: string, to: string, body: string): { id: string; to: string; body: string; expiresAt: string } {
  return { id, to, body, expiresAt: new Date(Date.now() + 60_000).toISOString() };
}

/** An ack payload as a phone writes it: `error` exactly when `failed` (broker/payloads.ts refuses anything else). */
export function ackFor(id: string, status: "received" | "sent" | "delivered"): string;
export function ackFor(id: string, status: "failed", error: string): string;
export function ackFor(id: string, status: "received" | "sent" | "delivered" | "failed", error?: string): string {
  return JSON.stringify({ id, status, ...(status === "failed" ? { error } : {}), at: new Date().toISOString() });
}
