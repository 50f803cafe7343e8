/**
 * `tsx bench/phone-channel.ts [--parts a,b,c] [--runs 3] ...`: the phone channel's capacity, on
 * loopback only, in five parts (flags below). The defaults run (a)-(c), about three minutes on 2
 * CPUs; (d) and (e) run with `--parts d,e`: about 20 minutes at their defaults, mostly the 5,000
 * and 10,000-phone storms, which run to their deadline when phones time out and retry.
 *
 * (a) End to end. A gateway (memory store, FAILOVER_ORDER=device) runs on this thread; N
 *     simulated phones (tools/phone-simulator, the app's behaviour) connect over TLS from a
 *     forked process, which also runs the REST client as a closed loop: C workers each POST
 *     /v1/messages and wait for that job to be `sent` before the next, so C jobs are under way.
 *     Latency is POST accepted (the job stored) → state `sent` (the phone's `sent` ack applied),
 *     both read on this thread by watching the gateway's store. Devices are registered through
 *     DeviceService with a budget that never binds: the API allows at most 60 a minute (Android
 *     allows ~30), which would cap 20 phones at 20 jobs/s and measure the limit, not the gateway.
 *     Baseline, same run and concurrency: the device route's first leg alone, broker.publishJob
 *     → the phone's PUBACK (QoS 1 over TLS through the same Aedes), to raw MQTT clients that
 *     only PUBACK. Those devices have the prefix +999, so the device route never picks them.
 * (b) Idle phones over TLS: the gateway (api/main.ts) in a process of its own, so its VmRSS is
 *     its alone, with 2,000 then 10,000 persistent sessions opened by forked client processes
 *     at a capped rate. Devices are written straight into the gateway's SQLite store before the
 *     start (part (e) measures registering them through the API).
 * (c) QoS 1 throughput of brokers, one publisher → one subscriber on plain TCP, M messages of S
 *     bytes, at most W in flight (published, not yet delivered): bare Aedes (the aedes package),
 *     otpgate's broker (Aedes with auth, ACL and payload checks) and Debian's mosquitto with a
 *     minimal config, each in its own process, driven by the same generator on this thread.
 * (d) Reconnect storm over TLS (--storm 1000,5000,10000): the gateway (api/main.ts) in its own
 *     process; N phones (bench/reconnect-clients.ts, --per-process each, beside it) open
 *     persistent sessions at a capped rate, subscribe to their sms/out and publish a retained
 *     status, as the app does. Then every socket is destroyed at once, and once the gateway
 *     counts no client, every phone reconnects at once (retrying like the app: 10 s per attempt,
 *     backoff from 1 s): time until every phone has its SUBACK again, and the gateway process's
 *     CPU time (/proc/<pid>/stat) per phone. Same-run baseline: the same gateway, same
 *     connections, with broker/retained-lookup.ts bypassed, i.e. what aedes-persistence does
 *     alone (a scan of every retained message per SUBSCRIBE): bench/retained-mode.ts, preloaded
 *     into the gateway with --import, installs the lookup if the gateway has not and switches it
 *     on SIGUSR2; api/ is not changed for the bench. Baseline steps: --storm-scan (1,000 and
 *     5,000: the scan is quadratic, 10,000 would take minutes), --storm-scan-runs times each.
 *     Phones skip checking the gateway's certificate unless --storm-verify: the gateway's
 *     handshake is the same, and Node's getPeerCertificate() (~1 ms a connection) stays off the
 *     CPUs the gateway shares. Also printed: the gateway's idle VmRSS per connection and idle CPU
 *     (over --idle-window s, which spans a presence refresh) after each set-up, as in (b).
 * (e) Registering devices: POST /v1/devices with the admin key, one at a time, on a fresh
 *     gateway process (SQLite store), up to 1,000 then 5,000 devices (--register): ms per
 *     registration per step, which stays flat when a registration writes one row.
 *
 * Every scenario runs RUNS times (--storm-runs, --storm-scan-runs for (d)), interleaved, after an
 * unrecorded warm-up; medians are printed.
 */
import { execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createConnection, createServer, type AddressInfo } from "node:net";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import mqtt from "mqtt";
import { pino } from "pino";
import { loadConfig } from "../api/config/config.js";
import { isSettled, type Job } from "../api/delivery/job-state.js";
import { createGateway, type Gateway } from "../api/gateway.js";
import { keyDigest } from "../api/keys/api-key-format.js";
import { createSealer } from "../api/security/sealing.js";
import { SqliteStore } from "../api/store/sqlite-store.js";
import { MAX_PAYLOAD_BYTES } from "../broker/payloads.js";
import type { DeviceRecord } from "../api/store/store.js";
import { forkTs, type RpcChild } from "./ipc.js";
import type { Credentials, LoadReport } from "./phone-channel-client.js";
import type { StormReport } from "./reconnect-clients.js";
import { ADMIN_KEY, UNLIMITED, benchGatewayEnv, closeAll, median, onClose, openCount, runBench, stopChild } from "./bench-setup.js";

const MOSQUITTO_CANDIDATES = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"];

const { values: args } = parseArgs({
  options: {
    parts: { type: "string", default: "a,b,c" },
    runs: { type: "string", default: "3" },
    // (a)
    phones: { type: "string", default: "20" },
    jobs: { type: "string", default: "2000" },
    concurrency: { type: "string", default: "32" },
    latency: { type: "string", default: "0" },
    // (b)
    idle: { type: "string", default: "2000,10000" },
    "connect-rate": { type: "string", default: "500" },
    "per-process": { type: "string", default: "2500" },
    // (d)
    storm: { type: "string", default: "1000,5000,10000" },
    "storm-runs": { type: "string", default: "3" },
    "storm-scan": { type: "string", default: "1000,5000" },
    "storm-scan-runs": { type: "string", default: "1" },
    "storm-deadline": { type: "string", default: "180" },
    "storm-verify": { type: "boolean", default: false },
    "idle-window": { type: "string", default: "31" },
    // (b), (d), (e): write a V8 CPU profile of the gateway process into this directory when it stops
    "gateway-profile": { type: "string" },
    // (e)
    register: { type: "string", default: "1000,5000" },
    // (c)
    messages: { type: "string", default: "100000" },
    size: { type: "string", default: "100" },
    window: { type: "string", default: "100" },
  },
});
function positive(name: string, raw: string, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    console.error(`--${name} must be an integer ≥ ${min} (got "${raw}")`);
    process.exit(2);
  }
  return value;
}
const PARTS = new Set(args.parts.split(",").map((p) => p.trim()));
const RUNS = positive("runs", args.runs);
const PHONES = positive("phones", args.phones);
const JOBS = positive("jobs", args.jobs);
const CONCURRENCY = positive("concurrency", args.concurrency);
const LATENCY_MS = positive("latency", args.latency, 0);
const IDLE_STEPS = [...new Set(args.idle.split(",").map((n) => positive("idle", n.trim())))].sort((a, b) => a - b);
const CONNECT_RATE = positive("connect-rate", args["connect-rate"]);
const PER_PROCESS = positive("per-process", args["per-process"]);
const steps = (name: string, raw: string) => [...new Set(raw.split(",").filter((n) => n.trim() !== "").map((n) => positive(name, n.trim())))].sort((a, b) => a - b);
const STORM_STEPS = steps("storm", args.storm);
const STORM_RUNS = positive("storm-runs", args["storm-runs"]);
const STORM_SCAN = steps("storm-scan", args["storm-scan"]);
const STORM_SCAN_RUNS = positive("storm-scan-runs", args["storm-scan-runs"], 0);
const STORM_DEADLINE_MS = positive("storm-deadline", args["storm-deadline"]) * 1000;
const REGISTER_STEPS = steps("register", args.register);
const IDLE_WINDOW_S = positive("idle-window", args["idle-window"], 0);
const MESSAGES = positive("messages", args.messages);
const SIZE = positive("size", args.size);
if (SIZE > MAX_PAYLOAD_BYTES) {
  // otpgate's broker closes the connection of a client that publishes more (broker/payloads.ts).
  console.error(`--size must be at most ${MAX_PAYLOAD_BYTES} bytes, the broker's payload limit (got ${SIZE})`);
  process.exit(2);
}
const WINDOW = positive("window", args.window);

// --- plumbing -----------------------------------------------------------------------------

/** Closed in reverse order at the end, on failure and on Ctrl-C. */
/** Runs one part and closes what it opened, so the next part has the machine to itself. */
async function part(run: () => Promise<void>): Promise<void> {
  const mark = openCount();
  try {
    await run();
  } finally {
    await closeAll(mark);
  }
}
const problems: string[] = [];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function tempDir(name: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `otpgate-bench-${name}-`));
  onClose(`${name} temp dir`, async () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

function fork(file: string): RpcChild {
  const child = forkTs(new URL(file, import.meta.url));
  onClose(file, () => child.stop());
  return child;
}

/** Nearest-rank percentile of an ascending array. */
const percentile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  console.log(line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) console.log(line(row));
}
const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "-");

// --- (a) end to end -------------------------------------------------------------------------

interface Sample {
  rate: number;
  p50: number;
  p99: number;
  /** CPU time of this process (the gateway alone: phones and client are forked) per job or message, ms. */
  cpuMs?: number;
}

/** Runs `work`, adding this process's CPU time per item to its sample. */
async function withCpu(items: number, work: () => Promise<Sample>): Promise<Sample> {
  const before = process.cpuUsage();
  const sample = await work();
  const used = process.cpuUsage(before);
  return { ...sample, cpuMs: (used.user + used.system) / 1000 / items };
}

async function partA(): Promise<void> {
  console.log(`\n(a) end to end: ${PHONES} phones over TLS, ${CONCURRENCY} jobs in flight, ${JOBS} jobs per run, phone latency ${LATENCY_MS} ms`);
  const dataDir = tempDir("a");
  const result = loadConfig(
    benchGatewayEnv(dataDir, {
      // Phones only: a job a phone does not send fails and is reported, instead of hiding in a cloud route.
      FAILOVER_ORDER: "device",
    }),
  );
  if (!result.ok) throw new Error(`bad config: ${result.problems.join("; ")}`);
  const gateway = await createGateway(result.config, { logger: pino({ level: "silent" }), defaultMetrics: false });
  onClose("gateway (a)", () => gateway.close());
  const addresses = await gateway.listen({ ephemeral: true });
  const http = addresses.http.replace("localhost", "127.0.0.1");
  const mqttsUrl = `mqtts://127.0.0.1:${addresses.mqtts}`;
  const caFile = path.join(dataDir, "bench-ca.pem");
  writeFileSync(caFile, gateway.tls.caPem);

  const register = (count: number, name: string, extra: { maxPerMinute: number; prefixes?: string[] }) =>
    Promise.all(Array.from({ length: count }, (_, i) => gateway.devices.create({ name: `${name} ${i}`, ...extra }))).then((made) =>
      made.map(({ device, token }): Credentials => ({ id: device.id, token })),
    );
  const phoneDevices = await register(PHONES, "bench phone", { maxPerMinute: Number(UNLIMITED) });
  const rawDevices = await register(PHONES, "bench baseline", { maxPerMinute: 1, prefixes: ["+999"] });

  const watch = watchJobs(gateway);
  const client = fork("./phone-channel-client.ts");
  await client.ready;
  watch.onSettled((ids) => client.send({ settled: ids }));
  await client.call("phones", { url: mqttsUrl, caFingerprint: gateway.tls.caFingerprint, devices: phoneDevices, latencyMs: LATENCY_MS });
  await client.call("raw", { url: mqttsUrl, caFile, devices: rawDevices });
  const all = [...phoneDevices, ...rawDevices].map((d) => d.id);
  await until("every phone online", async () => (await gateway.store.getPresence(all)).every((p) => p?.online), 30_000);

  const e2e: Sample[] = [];
  const base: Sample[] = [];
  const runJobs = async (jobs: number, tag: string) => {
    watch.reset();
    const report = await client.call<LoadReport>("load", { url: http, apiKey: ADMIN_KEY, jobs, concurrency: CONCURRENCY, tag });
    for (const [status, count] of Object.entries(report.unexpected)) problems.push(`(a) ${tag}: ${count} × HTTP ${status}`);
    return watch.sample(tag);
  };
  await runJobs(Math.min(JOBS, 500), "warm-up");
  await baseline(gateway, rawDevices, Math.min(JOBS, 500), "warm-up");
  for (let run = 1; run <= RUNS; run++) {
    process.stdout.write(`  run ${run}/${RUNS} …\n`);
    e2e.push(await withCpu(JOBS, () => runJobs(JOBS, `run ${run}`)));
    base.push(await withCpu(JOBS, () => baseline(gateway, rawDevices, JOBS, `run ${run}`)));
  }

  const baseRate = median(base.map((s) => s.rate));
  const row = (name: string, samples: Sample[]) => {
    const rate = median(samples.map((s) => s.rate));
    const cpu = median(samples.map((s) => s.cpuMs ?? NaN));
    return [name, fixed(rate, 0), fixed(median(samples.map((s) => s.p50))), fixed(median(samples.map((s) => s.p99))), fixed(rate / baseRate, 3), fixed(cpu, 3)];
  };
  table([
    ["scenario", "per s", "p50 ms", "p99 ms", "× baseline", "gateway CPU ms each"],
    row("POST /v1/messages → phone → `sent` ack → job sent", e2e),
    row("baseline: publishJob → phone PUBACK (QoS 1, TLS)", base),
  ]);
}

/** Watches the gateway's store: when each job was stored, and when it settled (and how). */
function watchJobs(gateway: Gateway) {
  const store = gateway.store;
  let created = new Map<string, number>();
  let settled = new Map<string, { at: number; state: Job["state"] }>();
  let notify: (ids: string[]) => void = () => {};
  let batch: string[] = [];
  const flush = () => {
    notify(batch);
    batch = [];
  };

  const createJob = store.createJob.bind(store);
  store.createJob = async (...call: Parameters<typeof createJob>) => {
    const result = await createJob(...call);
    created.set(call[0].id, performance.now());
    return result;
  };
  const updateJob = store.updateJob.bind(store);
  store.updateJob = async (id, change) => {
    const job = await updateJob(id, change);
    if (job && isSettled(job) && created.has(id) && !settled.has(id)) {
      settled.set(id, { at: performance.now(), state: job.state });
      // One IPC message per turn of the event loop, not one per job.
      if (batch.push(id) === 1) setImmediate(flush);
    }
    return job;
  };

  return {
    onSettled(fn: (ids: string[]) => void) {
      notify = fn;
    },
    reset() {
      created = new Map();
      settled = new Map();
    },
    sample(tag: string): Sample {
      const latencies: number[] = [];
      const states: Record<string, number> = {};
      for (const [id, { at, state }] of settled) {
        states[state] = (states[state] ?? 0) + 1;
        if (state === "sent") latencies.push(at - created.get(id)!);
      }
      if (latencies.length !== created.size) problems.push(`(a) ${tag}: ${created.size} jobs, settled ${JSON.stringify(states)}`);
      latencies.sort((a, b) => a - b);
      const first = Math.min(...created.values());
      const last = Math.max(...[...settled.values()].map((s) => s.at));
      return { rate: latencies.length / ((last - first) / 1000), p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
    },
  };
}

/** The device route's publish and transport deadline without the rest: publishJob → PUBACK, `CONCURRENCY` outstanding. */
async function baseline(gateway: Gateway, devices: Credentials[], count: number, tag: string): Promise<Sample> {
  const { broker } = gateway;
  const started = new Map<string, number>();
  const latencies: number[] = [];
  const expiresAt = new Date(Date.now() + 3_600_000).toISOString();
  let next = 0;
  const began = performance.now();
  await new Promise<void>((resolve, reject) => {
    const publish = () => {
      while (next < count && started.size < CONCURRENCY) {
        const n = next++;
        const id = `base-${tag.replace(/\W/g, "")}-${n}`;
        started.set(id, performance.now());
        const device = devices[n % devices.length]!;
        broker.publishJob(device.id, { id, to: "+254711000001", body: `bench baseline #${n}`, expiresAt }).catch(reject);
      }
    };
    const onTransportAck = (_deviceId: string, jobId: string) => {
      const at = started.get(jobId);
      if (at === undefined) return;
      started.delete(jobId);
      latencies.push(performance.now() - at);
      if (latencies.length === count) {
        broker.off("transportAck", onTransportAck);
        resolve();
      } else publish();
    };
    broker.on("transportAck", onTransportAck);
    publish();
  });
  const seconds = (performance.now() - began) / 1000;
  latencies.sort((a, b) => a - b);
  return { rate: count / seconds, p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
}

// --- (b) idle TLS phones ----------------------------------------------------------------------

function fdLimits(): { soft: number; hard: number } {
  const out = execFileSync("prlimit", ["--pid", String(process.pid), "--nofile", "--output", "SOFT,HARD", "--noheadings"], { encoding: "utf8" });
  const [soft, hard] = out.trim().split(/\s+/).map((v) => (v === "unlimited" ? Infinity : Number(v)));
  return { soft: soft!, hard: hard! };
}

/** Raises this process's open-file limit (inherited by every child started later); returns what it is now. */
function ensureFdLimit(need: number): { soft: number; note: string } {
  let limits: { soft: number; hard: number };
  try {
    limits = fdLimits();
  } catch (error) {
    return { soft: 0, note: `cannot read the open-file limit with prlimit (${(error as Error).message.split("\n")[0]})` };
  }
  if (limits.soft >= need) return { soft: limits.soft, note: `open-file limit ${limits.soft} (need ${need})` };
  const target = `${need}:${Math.max(need, limits.hard === Infinity ? need : limits.hard)}`;
  try {
    execFileSync("prlimit", ["--pid", String(process.pid), `--nofile=${target}`], { stdio: "pipe" });
  } catch (error) {
    return { soft: limits.soft, note: `open-file limit ${limits.soft} < ${need} and prlimit could not raise it: ${(error as Error).message.split("\n")[0]}` };
  }
  const after = fdLimits();
  return { soft: after.soft, note: `open-file limit raised from ${limits.soft} to ${after.soft} with prlimit (need ${need})` };
}

function vmRssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!match) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(match[1]);
}

/** Registers `count` phones straight into the gateway's default store, as POST /v1/devices would. */
async function seedDevices(dataDir: string, count: number): Promise<Credentials[]> {
  const now = new Date().toISOString();
  const credentials: Credentials[] = [];
  const devices: DeviceRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = `dev_idle${String(i).padStart(6, "0")}`;
    const token = `og_dev_bench_${i}_${Math.random().toString(36).slice(2)}`;
    credentials.push({ id, token });
    devices.push({ id, name: `idle ${i}`, tokenDigest: keyDigest(token), maxPerMinute: 20, prefixes: [], createdAt: now });
  }
  // Device records are not sealed, so any sealer will do for this handle.
  const store = new SqliteStore({ file: path.join(dataDir, "otpgate.db"), sealer: createSealer(randomUUID()) });
  for (const device of devices) await store.saveDevice(device);
  await store.close();
  return credentials;
}

interface GatewayProcess {
  pid: number;
  base: string;
  tlsPort: number;
  /** The gateway's CA certificate, written to a file for MQTT clients. */
  caFile: string;
  /** The last few KB the gateway printed. */
  output(): string;
  /** MQTT clients connected, as the gateway's /metrics counts them. */
  connectedOnGateway(): Promise<number>;
  /** Connections the gateway closed before their CONNACK since it started, by reason (its /metrics), shed at the gate included. */
  closedOnGateway(): Promise<Record<string, number>>;
  /** Lines the gateway prints that start with `prefix`: the recent ones now, then as they come. */
  onLine(prefix: string, listener: (line: string) => void): void;
}

/**
 * The gateway as `npm start` runs it (api/main.ts, default SQLite store in `dataDir`), in a
 * process of its own so its VmRSS and CPU time are its alone. `preload` modules are loaded
 * first with `--import` (after tsx); `env` adds to a fixed environment, not to process.env.
 */
async function startGatewayProcess(name: string, dataDir: string, options: { env?: Record<string, string>; preload?: string[] } = {}): Promise<GatewayProcess> {
  const [httpPort, tlsPort] = [await freePort(), await freePort()];
  const preload = (options.preload ?? []).flatMap((file) => ["--import", new URL(file, import.meta.url).href]);
  const profile = args["gateway-profile"] ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(args["gateway-profile"])] : [];
  const gatewayProcess = spawn(process.execPath, [...profile, "--import", import.meta.resolve("tsx"), ...preload, "api/main.ts"], {
    cwd: fileURLToPath(new URL("..", import.meta.url)),
    env: {
      PATH: process.env.PATH,
      DATA_DIR: dataDir,
      ADMIN_API_KEY: ADMIN_KEY,
      HOST: "127.0.0.1",
      PORT: String(httpPort),
      MQTT_TLS_PORT: String(tlsPort),
      MQTT_PORT: "0",
      FAILOVER_ORDER: "device",
      LOG_LEVEL: "warn",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let partial = "";
  const lineListeners: { prefix: string; listener: (line: string) => void }[] = [];
  /** Recent lines, for listeners added later. */
  const seen: string[] = [];
  const keep = (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000));
  gatewayProcess.stdout!.on("data", (chunk: Buffer) => {
    keep(chunk);
    const lines = (partial + chunk.toString()).split("\n");
    partial = lines.pop()!;
    for (const line of lines) {
      seen.push(line);
      if (seen.length > 500) seen.shift();
      for (const { prefix, listener } of lineListeners) if (line.startsWith(prefix)) listener(line);
    }
  });
  gatewayProcess.stderr!.on("data", keep);
  process.once("exit", () => gatewayProcess.kill("SIGKILL"));
  onClose(`gateway process (${name})`, () => stopChild(gatewayProcess));
  const base = `http://127.0.0.1:${httpPort}`;
  await until("the gateway process to answer /healthz", async () => {
    if (gatewayProcess.exitCode !== null) throw new Error(`the gateway exited with ${gatewayProcess.exitCode}:\n${output}`);
    return fetch(`${base}/healthz`).then((r) => r.ok, () => false);
  }, 30_000);
  const caFile = path.join(dataDir, "bench-ca.pem");
  writeFileSync(caFile, await (await fetch(`${base}/ca.pem`)).text());
  return {
    pid: gatewayProcess.pid!,
    base,
    tlsPort,
    caFile,
    output: () => output,
    connectedOnGateway: async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      return Number(/^otpgate_mqtt_connected_clients (\d+)/m.exec(metrics)?.[1] ?? NaN);
    },
    closedOnGateway: async () => {
      const metrics = await (await fetch(`${base}/metrics`)).text();
      const closed: Record<string, number> = {};
      for (const [, reason, count] of metrics.matchAll(/^otpgate_mqtt_connections_refused_total\{reason="([^"]+)"\} (\d+)/gm)) closed[reason!] = Number(count);
      closed.shed_at_gate = Number(/^otpgate_mqtt_connections_shed (\d+)/m.exec(metrics)?.[1] ?? 0);
      return closed;
    },
    onLine: (prefix, listener) => {
      for (const line of seen) if (line.startsWith(prefix)) listener(line);
      lineListeners.push({ prefix, listener });
    },
  };
}

async function partB(): Promise<void> {
  console.log(`\n(b) idle MQTT/TLS phones: RSS of the gateway process (VmRSS), connections opened at ≤ ${CONNECT_RATE}/s`);
  const ports = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  const ephemeral = ports[1]! - ports[0]! + 1;
  const fd = ensureFdLimit(IDLE_STEPS.at(-1)! + 1024);
  console.log(`  ${fd.note}; ${ephemeral} ephemeral ports`);
  // Each step needs one descriptor per connection in the gateway (plus its own files and sockets).
  const steps = IDLE_STEPS.filter((n) => n + 512 <= fd.soft && n < ephemeral - 1000);
  for (const skipped of IDLE_STEPS.filter((n) => !steps.includes(n))) {
    console.log(`  SKIPPED ${skipped.toLocaleString("en")} connections: needs ~${skipped + 512} open files (limit ${fd.soft}) and ${skipped} ephemeral ports (${ephemeral})`);
  }
  if (steps.length === 0) return;
  const total = steps.at(-1)!;

  const dataDir = tempDir("b");
  const devices = await seedDevices(dataDir, total);

  const gateway = await startGatewayProcess("b", dataDir);
  const { tlsPort, caFile, connectedOnGateway } = gateway;

  const processes = Array.from({ length: Math.ceil(total / PER_PROCESS) }, () => fork("./idle-clients.ts"));
  await Promise.all(processes.map((p) => p.ready));
  await sleep(1_000);
  const { pid } = gateway;
  const rows = [["gateway process", "connections", "VmRSS MB", "Δ MB", "KB per connection", "took s"]];
  const before = vmRssKb(pid);
  rows.push(["started, devices loaded, idle", "0", fixed(before / 1024), "", "", ""]);

  let done = 0;
  for (const target of steps) {
    const batch = devices.slice(done, target);
    const started = performance.now();
    // Each process gets an equal share of the new connections and of the connection rate.
    const results = await Promise.all(
      processes.map((p, i) =>
        p.call<{ connected: number; failed: number; firstError?: string }>("connect", {
          url: `mqtts://127.0.0.1:${tlsPort}`,
          caFile,
          devices: batch.filter((_, j) => j % processes.length === i),
          perSecond: CONNECT_RATE / processes.length,
        }),
      ),
    );
    const took = (performance.now() - started) / 1000;
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    if (failed > 0) problems.push(`(b) ${failed} of ${batch.length} connections failed: ${results.find((r) => r.firstError)?.firstError}`);
    done = target;
    // Let presence writes finish and the handshakes' garbage go before reading the RSS.
    await sleep(2_000);
    const rss = vmRssKb(pid);
    const open = (await Promise.all(processes.map((p) => p.call<number>("count")))).reduce((a, b) => a + b, 0);
    const onGateway = await connectedOnGateway();
    if (open !== target || onGateway !== target) problems.push(`(b) after ${target}: ${open} open on the clients, ${onGateway} on the gateway`);
    rows.push([
      `${target.toLocaleString("en")} idle phones`,
      String(onGateway),
      fixed(rss / 1024),
      fixed((rss - before) / 1024),
      fixed((rss - before) / target),
      fixed(took),
    ]);
  }
  table(rows);
  console.log("  KB per connection = (VmRSS now − VmRSS idle) / connections: TLS socket, MQTT session, subscription, retained status.");
}

// --- (d) reconnect storm ----------------------------------------------------------------------

/** Connection counts this machine can hold: one descriptor per connection in the gateway, one ephemeral port each. */
function connectionSteps(wanted: number[], part: string): number[] {
  const ports = readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/).map(Number);
  const ephemeral = ports[1]! - ports[0]! + 1;
  const fd = ensureFdLimit(wanted.at(-1)! + 1024);
  console.log(`  ${fd.note}; ${ephemeral} ephemeral ports`);
  const steps = wanted.filter((n) => n + 512 <= fd.soft && n < ephemeral - 1000);
  for (const skipped of wanted.filter((n) => !steps.includes(n))) {
    problems.push(`(${part}) SKIPPED ${skipped.toLocaleString("en")} connections: needs ~${skipped + 512} open files (limit ${fd.soft}) and ${skipped} ephemeral ports (${ephemeral})`);
  }
  return steps;
}

interface StormSample {
  /** Reconnect start → last SUBACK, and → the median phone's SUBACK, s. */
  allSubscribed: number;
  medianSubscribed: number;
  /** Reconnect start → last retained status PUBACK, s. */
  allPublished: number;
  gatewayCpu: number;
  generatorCpu: number;
  retries: number;
  failed: number;
  /** Why attempts failed (then were retried or given up): message → count. */
  errors: Record<string, number>;
  /** The same failures as the gateway saw them: connections it closed before their CONNACK, by reason. */
  closed: Record<string, number>;
  /** Destroying every socket → the gateway counting no client, s. */
  dropped: number;
}

/** Milliseconds on the clock the client processes report in (see reconnect-clients.ts). */
const wallNow = () => performance.timeOrigin + performance.now();

/** Gateway closures before CONNACK that cost no TLS work: shed unread at the gate, or refused at accept (admission.ts). */
const CLOSED_BEFORE_TLS = new Set(["shed_at_gate", "node_limit", "login_backoff", "source_limit"]);
const handshakesAbandoned = (closed: Record<string, number>) =>
  Object.entries(closed).reduce((sum, [reason, count]) => (CLOSED_BEFORE_TLS.has(reason) ? sum : sum + count), 0);

async function storm(gateway: GatewayProcess, processes: RpcChild[], phones: number, label: string): Promise<StormSample> {
  // A storm that left phones out (past the deadline) is not the next one's starting point: connect them first.
  if ((await gateway.connectedOnGateway()) !== phones) {
    const repaired = await Promise.all(processes.map((p) => p.call<{ connected: number; failed: number }>("repair", { perSecond: CONNECT_RATE / processes.length })));
    const connected = repaired.reduce((sum, r) => sum + r.connected, 0);
    console.log(`    (${connected} phones left out by the last storm connected again first)`);
    await sleep(2_000);
  }
  const dropStarted = wallNow();
  const dropped = (await Promise.all(processes.map((p) => p.call<number>("drop")))).reduce((a, b) => a + b, 0);
  if (dropped !== phones) problems.push(`(d) ${label}: ${dropped} of ${phones} phones were connected when the storm began`);
  await until("the gateway to see every phone gone", async () => (await gateway.connectedOnGateway()) === 0, 120_000);
  const droppedAfter = (wallNow() - dropStarted) / 1000;
  // The wills (retained offline statuses) and presence writes of the disconnections settle first.
  await sleep(1_500);

  const closedBefore = await gateway.closedOnGateway();
  const cpuBefore = cpuSeconds(gateway.pid);
  const started = wallNow();
  const reports = await Promise.all(processes.map((p) => p.call<StormReport>("reconnect", { deadlineMs: STORM_DEADLINE_MS })));
  // Work the gateway still has queued when the last PUBACK is read (presence writes) belongs to the storm too.
  await sleep(1_000);
  const gatewayCpu = cpuSeconds(gateway.pid) - cpuBefore - 1 * idleCpuPerSecond;
  const subscribed = reports.flatMap((r) => r.subscribedAt).sort((a, b) => a - b);
  const published = reports.flatMap((r) => r.publishedAt).sort((a, b) => a - b);
  const failed = reports.reduce((sum, r) => sum + r.failed, 0);
  if (failed > 0) problems.push(`(d) ${label}: ${failed} of ${phones} phones not subscribed again within ${STORM_DEADLINE_MS / 1000} s: ${reports.find((r) => r.firstError)?.firstError}`);
  const onGateway = await gateway.connectedOnGateway();
  if (onGateway !== phones) problems.push(`(d) ${label}: ${onGateway} of ${phones} phones connected on the gateway after the storm`);
  const closedAfter = await gateway.closedOnGateway();
  const closed: Record<string, number> = {};
  for (const [reason, count] of Object.entries(closedAfter)) if (count > (closedBefore[reason] ?? 0)) closed[reason] = count - (closedBefore[reason] ?? 0);
  return {
    closed,
    allSubscribed: ((subscribed.at(-1) ?? NaN) - started) / 1000,
    medianSubscribed: (percentile(subscribed, 0.5) - started) / 1000,
    allPublished: ((published.at(-1) ?? NaN) - started) / 1000,
    gatewayCpu,
    generatorCpu: reports.reduce((sum, r) => sum + r.cpuSeconds, 0),
    retries: reports.reduce((sum, r) => sum + r.retries, 0),
    failed,
    errors: reports.reduce<Record<string, number>>((all, r) => {
      for (const [message, count] of Object.entries(r.errors)) all[message] = (all[message] ?? 0) + count;
      return all;
    }, {}),
    dropped: droppedAfter,
  };
}

/** The gateway's CPU use when nothing happens (keepalives, timers), per second: subtracted from the settle time. */
let idleCpuPerSecond = 0;

async function partD(): Promise<void> {
  console.log(
    `\n(d) reconnect storm over TLS: N phones (persistent sessions, each subscribed to its sms/out and holding a retained status) ` +
      `lose their connections at once and all reconnect at once; the gateway (api/main.ts) in its own process, the phones in ` +
      `${PER_PROCESS.toLocaleString("en")}-phone processes beside it`,
  );
  console.log(
    args["storm-verify"]
      ? "  phones check the gateway's certificate against its CA, as the app does (--storm-verify)"
      : "  phones do not check the gateway's certificate (--storm-verify to): the gateway's work is the same, the generator's\n" +
          "  ~1 ms of getPeerCertificate() per connection, CPU taken from the gateway on this machine, is saved",
  );
  const steps = connectionSteps(STORM_STEPS, "d");
  if (steps.length === 0) return;
  const total = steps.at(-1)!;
  const dataDir = tempDir("d");
  const devices = await seedDevices(dataDir, total);
  const gateway = await startGatewayProcess("d", dataDir, { preload: ["./retained-mode.ts"] });
  // The preload (bench/retained-mode.ts) reports how the gateway's Aedes answers retained lookups, and every switch.
  let modeLine = "";
  const modeWaiters: ((line: string) => void)[] = [];
  gateway.onLine("bench-retained-lookup: ", (line) => {
    modeLine = line.slice("bench-retained-lookup: ".length);
    for (const wake of modeWaiters.splice(0)) wake(modeLine);
  });
  await until("the gateway to report its retained lookup", () => modeLine !== "", 10_000);
  console.log(`  retained lookup on the gateway: ${modeLine}`);
  if (!modeLine.startsWith("direct")) throw new Error(`expected the direct lookup on the gateway, got: ${modeLine}`);
  const switchTo = async (mode: "direct" | "bypassed") => {
    if (modeLine.startsWith(mode)) return;
    const switched = new Promise<string>((resolve) => modeWaiters.push(resolve));
    process.kill(gateway.pid, "SIGUSR2");
    const line = await switched;
    if (!line.startsWith(mode)) throw new Error(`the gateway did not switch to ${mode}: ${line}`);
  };

  const processes = Array.from({ length: Math.ceil(total / PER_PROCESS) }, () => fork("./reconnect-clients.ts"));
  await Promise.all(processes.map((p) => p.ready));
  await sleep(1_000);
  const idleBefore = cpuSeconds(gateway.pid);
  await sleep(2_000);
  idleCpuPerSecond = (cpuSeconds(gateway.pid) - idleBefore) / 2;
  const rssBefore = vmRssKb(gateway.pid);
  const memoryRows = [
    ["connected phones (idle)", "VmRSS MB", "Δ MB", "KB per connection", `gateway CPU % idle (${IDLE_WINDOW_S} s)`],
    ["0 (started, devices loaded)", fixed(rssBefore / 1024), "", "", fixed(idleCpuPerSecond * 100)],
  ];
  const rows = [["phones", "lookup", "runs", "all subscribed s", "median phone s", "all statuses s", "gateway CPU s", "CPU ms per phone", "retries", "CPU ms per attempt", "CPU ms per handshake", "generator CPU s", "drop s"]];
  const retryNotes: string[] = [];
  const ratios: string[][] = [["phones", "scan / direct: time to all subscribed", "scan / direct: gateway CPU"]];

  let done = 0;
  let warmedUp = false;
  for (const target of steps) {
    const batch = devices.slice(done, target);
    const results = await Promise.all(
      processes.map((p, i) =>
        p.call<{ connected: number; failed: number; firstError?: string }>("connect", {
          url: `mqtts://127.0.0.1:${gateway.tlsPort}`,
          caFile: gateway.caFile,
          verify: args["storm-verify"],
          devices: batch.filter((_, j) => j % processes.length === i),
          perSecond: CONNECT_RATE / processes.length,
        }),
      ),
    );
    const failed = results.reduce((sum, r) => sum + r.failed, 0);
    if (failed > 0) problems.push(`(d) set-up: ${failed} of ${batch.length} connections failed: ${results.find((r) => r.firstError)?.firstError}`);
    done = target;
    await sleep(2_000);
    const rss = vmRssKb(gateway.pid);
    // Idle is not free: keepalives, and the presence refresh (every 30 s) of every phone this node holds.
    const idleCpuBefore = cpuSeconds(gateway.pid);
    await sleep(IDLE_WINDOW_S * 1000);
    const idleCpu = IDLE_WINDOW_S > 0 ? (cpuSeconds(gateway.pid) - idleCpuBefore) / IDLE_WINDOW_S : NaN;
    memoryRows.push([target.toLocaleString("en"), fixed(rss / 1024), fixed((rss - rssBefore) / 1024), fixed((rss - rssBefore) / target), fixed(idleCpu * 100)]);
    const onGateway = await gateway.connectedOnGateway();
    if (onGateway !== target) {
      // Storms from a partial fleet would measure something else; what was measured so far is still printed.
      problems.push(`(d) only ${onGateway} of ${target.toLocaleString("en")} phones connected after set-up at ${CONNECT_RATE}/s: steps from ${target.toLocaleString("en")} on not measured`);
      break;
    }

    if (!warmedUp) {
      process.stdout.write(`  ${target.toLocaleString("en")} phones: warm-up storm …\n`);
      await storm(gateway, processes, target, `${target} warm-up`);
      warmedUp = true;
    }
    const scanRuns = STORM_SCAN.includes(target) ? STORM_SCAN_RUNS : 0;
    const samples: Record<"direct" | "bypassed", StormSample[]> = { direct: [], bypassed: [] };
    for (let run = 1; run <= Math.max(STORM_RUNS, scanRuns); run++) {
      for (const mode of ["direct", "bypassed"] as const) {
        if (run > (mode === "direct" ? STORM_RUNS : scanRuns)) continue;
        await switchTo(mode);
        process.stdout.write(`  ${target.toLocaleString("en")} phones, ${mode === "direct" ? "direct lookup" : "scan (lookup bypassed)"}: run ${run} …\n`);
        samples[mode].push(await storm(gateway, processes, target, `${target} ${mode} run ${run}`));
      }
    }
    await switchTo("direct");
    const row = (mode: "direct" | "bypassed", list: StormSample[]) => {
      const m = (pick: (s: StormSample) => number) => median(list.map(pick));
      // A run with phones still out at its deadline has no "all subscribed" time.
      const missing = list.filter((s) => s.failed > 0);
      return [
        target.toLocaleString("en"),
        mode === "direct" ? "direct" : "scan",
        String(list.length),
        missing.length > 0
          ? `${missing.length} run(s) > ${STORM_DEADLINE_MS / 1000} (${missing.map((s) => s.failed).join(", ")} out)`
          : fixed(m((s) => s.allSubscribed)),
        fixed(m((s) => s.medianSubscribed)),
        fixed(m((s) => s.allPublished)),
        fixed(m((s) => s.gatewayCpu)),
        fixed((m((s) => s.gatewayCpu) * 1000) / target, 2),
        String(m((s) => s.retries)),
        fixed(m((s) => (s.gatewayCpu * 1000) / (target + s.retries)), 2),
        fixed(m((s) => (s.gatewayCpu * 1000) / (target + handshakesAbandoned(s.closed))), 2),
        fixed(m((s) => s.generatorCpu)),
        fixed(m((s) => s.dropped)),
      ];
    };
    for (const [mode, list] of Object.entries(samples)) {
      const errors: Record<string, number> = {};
      for (const sample of list) for (const [message, count] of Object.entries(sample.errors)) errors[message] = (errors[message] ?? 0) + count;
      const listed = Object.entries(errors).sort((a, b) => b[1] - a[1]).map(([message, count]) => `${count} × ${message}`);
      if (listed.length > 0) retryNotes.push(`${target.toLocaleString("en")} ${mode === "direct" ? "direct" : "scan"}, all runs: ${listed.join("; ")}`);
      const closed: Record<string, number> = {};
      for (const sample of list) for (const [reason, count] of Object.entries(sample.closed)) closed[reason] = (closed[reason] ?? 0) + count;
      const closedList = Object.entries(closed).sort((a, b) => b[1] - a[1]).map(([reason, count]) => `${count} × ${reason}`);
      if (closedList.length > 0) retryNotes.push(`  closed by the gateway before CONNACK: ${closedList.join("; ")}`);
    }
    rows.push(row("direct", samples.direct));
    if (samples.bypassed.length > 0) {
      rows.push(row("bypassed", samples.bypassed));
      const ratio = (pick: (s: StormSample) => number) => fixed(median(samples.bypassed.map(pick)) / median(samples.direct.map(pick)), 1);
      ratios.push([target.toLocaleString("en"), `${ratio((s) => s.allSubscribed)} ×`, `${ratio((s) => s.gatewayCpu)} ×`]);
    }
  }
  table(rows);
  console.log(
    "  all subscribed = reconnect start → the last phone's SUBACK (median phone: the middle one's); all statuses = → the last\n" +
      "  retained status PUBACK. Gateway CPU = user+system time of its process from reconnect start until 1 s after the last\n" +
      "  PUBACK, less its idle rate. Retries: attempts made again (the app's 10 s per attempt, backoff from 1 s); per attempt =\n" +
      "  CPU / (phones + retries); per handshake = CPU / (phones + attempts the gateway began TLS for and that closed before\n" +
      "  their CONNACK: every gateway closure but the gate's sheds and accept-time refusals). direct = broker/retained-lookup.ts; scan = the same gateway with it bypassed (what\n" +
      "  aedes-persistence does alone), switched by SIGUSR2 to the bench preload bench/retained-mode.ts.",
  );
  if (retryNotes.length > 0) console.log(`  failed attempts (retried):\n${retryNotes.map((n) => `    ${n}`).join("\n")}`);
  if (ratios.length > 1) table(ratios);
  console.log("\n  idle memory of the same gateway, after each set-up (before its storms):");
  table(memoryRows);
}

// --- (e) registering devices ----------------------------------------------------------------

async function partE(): Promise<void> {
  console.log(`\n(e) registering devices: POST /v1/devices (admin key) one at a time on the gateway process (api/main.ts, SQLite store)`);
  const dataDir = tempDir("e");
  const gateway = await startGatewayProcess("e", dataDir, { env: { RATE_LIMIT_PER_IP: UNLIMITED, RATE_LIMIT_PER_KEY: UNLIMITED } });
  const register = async (n: number): Promise<number> => {
    const started = performance.now();
    const response = await fetch(`${gateway.base}/v1/devices`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_KEY}`, "content-type": "application/json" },
      body: JSON.stringify({ name: `bench device ${n}`, prefixes: ["+254"] }),
    });
    await response.arrayBuffer();
    if (response.status !== 201) problems.push(`(e) registration ${n}: HTTP ${response.status}`);
    return performance.now() - started;
  };
  // Warm-up: JIT and the first SQLite pages, not recorded (the devices stay, so the table is not empty when measuring).
  for (let n = 0; n < 50; n++) await register(-n - 1);
  const rows = [["devices registered", "this step", "ms each (wall)", "p50 ms", "p99 ms", "last 500: ms each", "gateway CPU ms each"]];
  let done = 0;
  for (const target of REGISTER_STEPS) {
    const latencies: number[] = [];
    const cpuBefore = cpuSeconds(gateway.pid);
    const started = performance.now();
    for (let n = done; n < target; n++) latencies.push(await register(n));
    const wall = performance.now() - started;
    const cpu = cpuSeconds(gateway.pid) - cpuBefore;
    const count = target - done;
    done = target;
    const tail = latencies.slice(-500);
    const sorted = [...latencies].sort((a, b) => a - b);
    rows.push([
      target.toLocaleString("en"),
      count.toLocaleString("en"),
      fixed(wall / count, 2),
      fixed(percentile(sorted, 0.5), 2),
      fixed(percentile(sorted, 0.99), 2),
      fixed(tail.reduce((a, b) => a + b, 0) / tail.length, 2),
      fixed((cpu * 1000) / count, 2),
    ]);
  }
  const listed = await fetch(`${gateway.base}/v1/devices`, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  const count = ((await listed.json()) as { devices: unknown[] }).devices.length;
  if (count !== done + 50) problems.push(`(e) GET /v1/devices lists ${count} devices, ${done + 50} were registered`);
  table(rows);
  console.log("  Each row adds devices up to its count (50 unrecorded warm-up registrations come first). Flat ms per registration = one row written each.");
}

// --- (c) QoS 1 throughput, Aedes vs Mosquitto -------------------------------------------------

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // After "pid (comm) ", utime and stime are fields 12 and 13 (0-based).
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** A job-shaped payload of `size` bytes (so otpgate's broker parses what it would in production), id in a fixed slot. */
function payloadFor(n: number): Buffer {
  const head = { id: String(n).padStart(9, "0"), to: "+254711000001", body: "", expiresAt: "2099-01-01T00:00:00.000Z" };
  const bare = JSON.stringify(head).length;
  return Buffer.from(JSON.stringify({ ...head, body: "x".repeat(Math.max(1, SIZE - bare)) }));
}
const ID_SLOT = [7, 16] as const; // `{"id":"` is 7 bytes

interface QosSample {
  rate: number;
  cpuUsPerMessage: number;
  /** Share of one CPU the generator (this process) used: near 100 % it, not the broker, sets the pace. */
  generatorCpu: number;
}

/** One publisher → one subscriber at QoS 1, at most WINDOW messages published and not yet delivered; done when all are. */
async function qos1Run(port: number, brokerPid: number, count: number, label: string): Promise<QosSample> {
  const url = `mqtt://127.0.0.1:${port}`;
  const topic = "sms/out/dev_benchsub";
  const options = { protocolVersion: 4 as const, clean: true, reconnectPeriod: 0, keepalive: 60 };
  const subscriber = await mqtt.connectAsync(url, { ...options, clientId: "dev_benchsub", username: "dev_benchsub", password: "x" });
  const publisher = await mqtt.connectAsync(url, { ...options, clientId: "bench-pub", username: "bench-pub", password: "x" });
  try {
    await subscriber.subscribeAsync(topic, { qos: 1 });
    const seen = new Uint8Array(count);
    let received = 0;
    let duplicates = 0;
    const payloads = Array.from({ length: count }, (_, n) => payloadFor(n));
    const cpuBefore = cpuSeconds(brokerPid);
    const generatorBefore = process.cpuUsage();
    const started = performance.now();
    let next = 0;
    let unacked = 0;
    await new Promise<void>((resolve, reject) => {
      // A broker that drops a QoS 1 message (or stops acking) would otherwise hang the bench.
      let progress = -1;
      const watchdog = setInterval(() => {
        if (received + next === progress) {
          clearInterval(watchdog);
          reject(new Error(`${label}: stalled with ${received} of ${count} delivered, ${next} published, ${unacked} unacknowledged`));
        }
        progress = received + next;
      }, 10_000);
      subscriber.on("message", (_topic, payload) => {
        const n = Number(payload.toString("latin1", ID_SLOT[0], ID_SLOT[1]));
        if (seen[n]) duplicates++;
        else {
          seen[n] = 1;
          if (++received === count) {
            clearInterval(watchdog);
            resolve();
          } else pump();
        }
      });
      // The window is end to end (published, not yet delivered), not just un-PUBACKed: a broker
      // acks on receipt, so a publisher-side window lets a broker's queue to a slower subscriber
      // grow without bound, and Mosquitto drops QoS 1 messages past max_queued_messages (1000).
      const pump = () => {
        while (next < count && next - received < WINDOW) {
          unacked++;
          publisher.publish(topic, payloads[next++]!, { qos: 1 }, (error) => {
            if (error) return reject(error);
            unacked--;
            pump();
          });
        }
      };
      pump();
    });
    const seconds = (performance.now() - started) / 1000;
    const cpu = cpuSeconds(brokerPid) - cpuBefore;
    const generator = process.cpuUsage(generatorBefore);
    if (duplicates > 0) problems.push(`(c) ${label}: ${duplicates} duplicate deliveries`);
    return { rate: count / seconds, cpuUsPerMessage: (cpu * 1e6) / count, generatorCpu: (generator.user + generator.system) / 1e6 / seconds };
  } finally {
    await Promise.all([subscriber.endAsync(true), publisher.endAsync(true)]);
  }
}

async function startMosquitto(): Promise<{ port: number; pid: number } | string> {
  const binary = MOSQUITTO_CANDIDATES.find((candidate) => existsSync(candidate));
  if (!binary) return `no mosquitto binary at ${MOSQUITTO_CANDIDATES.join(" or ")}`;
  const dir = tempDir("mosquitto");
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest stderr\nlog_type error\n`);
  const child = spawn(binary, ["-c", conf], { stdio: ["ignore", "ignore", "pipe"] });
  process.once("exit", () => child.kill("SIGKILL"));
  onClose("mosquitto", () => stopChild(child));
  let output = "";
  child.stderr!.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-2000)));
  await until("mosquitto to listen", async () => {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${output}`);
    return new Promise<boolean>((resolve) => {
      const socket = createConnection({ port, host: "127.0.0.1" }, () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
  }, 10_000);
  return { port, pid: child.pid! };
}

async function partC(): Promise<void> {
  console.log(`\n(c) QoS 1 throughput: 1 publisher → 1 subscriber, ${MESSAGES.toLocaleString("en")} messages of ${payloadFor(0).length} bytes, ≤ ${WINDOW} in flight (published, not yet delivered), plain TCP`);
  const brokers: { name: string; port: number; pid: number }[] = [];
  for (const kind of ["aedes", "otpgate"] as const) {
    const child = fork("./mqtt-broker-child.ts");
    await child.ready;
    brokers.push({ name: kind === "aedes" ? "aedes (bare, aedes package)" : "otpgate broker (Aedes + auth/ACL/checks)", port: await child.call<number>("start", { kind }), pid: child.child.pid! });
  }
  const mosquitto = await startMosquitto();
  if (typeof mosquitto === "string") console.log(`  SKIPPED mosquitto: ${mosquitto}`);
  else brokers.push({ name: `mosquitto ${mosquittoVersion()}`, ...mosquitto });

  const samples = new Map<string, QosSample[]>(brokers.map((b) => [b.name, []]));
  for (const broker of brokers) await qos1Run(broker.port, broker.pid, Math.min(MESSAGES, 10_000), `${broker.name} warm-up`);
  for (let run = 1; run <= RUNS; run++) {
    process.stdout.write(`  run ${run}/${RUNS} …\n`);
    for (const broker of brokers) samples.get(broker.name)!.push(await qos1Run(broker.port, broker.pid, MESSAGES, `${broker.name} run ${run}`));
  }
  const rateOf = (name: string) => median(samples.get(name)!.map((s) => s.rate));
  const reference = brokers.find((b) => b.name.startsWith("mosquitto"));
  table([
    ["broker", "msgs/s", "× mosquitto", "broker CPU µs/msg", "generator CPU %"],
    ...brokers.map((b) => [
      b.name,
      fixed(rateOf(b.name), 0),
      reference ? fixed(rateOf(b.name) / rateOf(reference.name), 3) : "-",
      fixed(median(samples.get(b.name)!.map((s) => s.cpuUsPerMessage))),
      fixed(median(samples.get(b.name)!.map((s) => s.generatorCpu * 100)), 0),
    ]),
  ]);
  console.log(
    "  msgs/s = messages / (first publish → last delivery). Broker CPU = its process's user+system time per message; generator\n" +
      "  CPU = this process (mqtt.js publisher and subscriber): near 100 % the generator, not the broker, sets msgs/s.",
  );
}

function mosquittoVersion(): string {
  const binary = MOSQUITTO_CANDIDATES.find((candidate) => existsSync(candidate))!;
  try {
    execFileSync(binary, ["-h"], { encoding: "utf8", stdio: "pipe" });
  } catch (error) {
    // `mosquitto -h` prints its version and exits non-zero.
    const version = /mosquitto version (\S+)/.exec(String((error as { stdout?: string }).stdout))?.[1];
    if (version) return version;
  }
  return "";
}

// --- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const flags = process.argv.slice(2).join(" ");
  const command =
    process.env.npm_lifecycle_event === "bench:phones"
      ? `npm run bench:phones${flags ? ` -- ${flags}` : ""}`
      : `tsx ${path.relative(process.cwd(), process.argv[1]!)} ${flags}`.trim();
  console.log(
    `otpgate phone channel: node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model.trim() ?? "unknown"}), ` +
      `${process.platform} ${process.arch}, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at start`,
  );
  console.log(`command: ${command} (cwd ${process.cwd()}); medians of ${RUNS} run(s), ${STORM_RUNS} per storm size, after a warm-up; loopback only`);
  if (PARTS.has("a")) await part(partA);
  if (PARTS.has("b")) await part(partB);
  if (PARTS.has("c")) await part(partC);
  if (PARTS.has("d")) await part(partD);
  if (PARTS.has("e")) await part(partE);
}

const began = performance.now();
await runBench(main, {
  problems,
  okLine: "no errors: every job sent, every connection up, no message lost or duplicated",
  epilogue: () =>
    console.log(`\ntotal ${fixed((performance.now() - began) / 1000, 0)} s, load average ${loadavg().map((l) => l.toFixed(2)).join(" ")} at the end`),
});
