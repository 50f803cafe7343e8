/**
 * `npm run bench [-- --runs N --seconds S --connections C]`: OTP throughput of otpgate against a
 * bare Fastify app, on loopback only.
 *
 * What "create + verify" measures. Every OTP is created with a distinct email and userId
 * (cooldowns and hourly caps never apply) and really mailed through the email route to an SMTP
 * sink, which keeps recipient → code. Each OTP is then verified once with its real code and must
 * come back `{valid: true, status: "approved"}`, so both phases do the full work a client
 * triggers, not an error path such as a wrong code. The phases are loaded separately with
 * autocannon because a verify needs the code from a mail that leaves asynchronously:
 *   1. create: POST /v1/otp for S seconds; the mails still queued when the load stops are
 *      drained (and timed) before the next phase, so they never count towards verify;
 *   2. verify: POST /v1/otp/verify exactly once for every OTP phase 1 created.
 * One operation is one create plus one verify on the same server, and the mail belongs to the
 * create, so the combined rate is N / (create phase + mail drain + verify phase) for the N OTPs
 * created, mailed and verified: a gateway that answers 202 fast but lets mail pile up gains nothing.
 *
 * Layout: the servers under test (bare Fastify, gateways on the default SQLite store, the memory store and Redis)
 * run on this thread; autocannon and the SMTP sink run in a worker thread (bench/load-client.ts)
 * so the client's work does not share the server's event loop. redis-server is our own child
 * process on a free loopback port, without persistence. Scenarios are interleaved within each
 * run and medians reported, because shared machines are noisy.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import Fastify from "fastify";
import { loadConfig } from "../api/config/config.js";
import { createGateway, type Gateway } from "../api/gateway.js";
import { ADMIN_KEY, UNLIMITED, benchGatewayEnv, median, onClose, runBench, stopChild } from "./bench-setup.js";
import type { LoadResult, Request } from "./load-client.js";


const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    connections: { type: "string", default: "50" },
  },
});
const positive = (name: string, raw: string): number => {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    console.error(`--${name} must be a positive integer (got "${raw}")`);
    process.exit(2);
  }
  return value;
};
const RUNS = positive("runs", args.runs);
const SECONDS = positive("seconds", args.seconds);
const CONNECTIONS = positive("connections", args.connections);

function startClient() {
  // tsx's loader does not reach worker threads on Node 20, so the worker loads the .ts file
  // through tsx's API.
  const tsx = import.meta.resolve("tsx/esm/api");
  const file = new URL("./load-client.ts", import.meta.url).href;
  const worker = new Worker(`import(${JSON.stringify(tsx)}).then((t) => t.tsImport(${JSON.stringify(file)}, ${JSON.stringify(file)}))`, {
    eval: true,
  });
  const pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  let seq = 0;
  worker.on("message", ({ seq: id, result, error }: { seq: number; result?: unknown; error?: string }) => {
    const waiter = pending.get(id);
    pending.delete(id);
    if (error) waiter?.reject(new Error(`load client: ${error}`));
    else waiter?.resolve(result as never);
  });
  worker.on("error", (error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  });
  return {
    call<T>(request: Request): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        pending.set(++seq, { resolve, reject });
        worker.postMessage({ seq, ...request });
      });
    },
    terminate: () => worker.terminate(),
  };
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once("error", reject).listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function startRedis(): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Last resort if this process dies without running closeAll: never leave redis-server behind.
  process.once("exit", () => child.kill());
  let output = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s:\n${output}`)), 10_000);
    child.once("error", (error) => reject(new Error(`cannot run redis-server: ${error.message}`)));
    child.once("exit", (code) => reject(new Error(`redis-server exited with ${code}:\n${output}`)));
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      if (output.includes("Ready to accept connections")) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  });
  return { url: `redis://127.0.0.1:${port}`, child };
}

async function startBaseline(): Promise<string> {
  const app = Fastify({ logger: false });
  app.post("/echo", async () => ({ ok: true, id: "0f8fad5b-d9cb-469f-a165-70867728950e", status: "pending" }));
  onClose("baseline fastify", () => app.close());
  return app.listen({ port: 0, host: "127.0.0.1" });
}

async function startOtpgate(name: string, smtpUrl: string, extraEnv: Record<string, string> = {}): Promise<{ url: string; gateway: Gateway }> {
  const dataDir = mkdtempSync(path.join(tmpdir(), `otpgate-bench-${name}-`));
  onClose(`${name} data dir`, async () => rmSync(dataDir, { recursive: true, force: true }));
  // Built from scratch, not from process.env, so the caller's environment cannot change the setup.
  // The mail backlog is timed instead of shed.
  const result = loadConfig(
    benchGatewayEnv(dataDir, {
      OTP_MAX_SENDS_PER_HOUR: UNLIMITED,
      OTP_RESEND_COOLDOWN_SECONDS: "0",
      FAILOVER_ORDER: "email",
      SMTP_URL: smtpUrl,
      EMAIL_FROM: "bench@otpgate.example.com",
      ...extraEnv,
    }),
  );
  if (!result.ok) throw new Error(`bad ${name} config: ${result.problems.join("; ")}`);
  // Process metrics off: two gateways share this process (as in the tests).
  const gateway = await createGateway(result.config, { defaultMetrics: false, redisKeyPrefix: "bench:" });
  onClose(`${name} gateway`, () => gateway.close());
  return { url: await gateway.http.listen({ port: 0, host: "127.0.0.1" }), gateway };
}

interface Sample {
  rps: number;
  p50?: number;
  p99?: number;
}
const samples = new Map<string, Sample[]>();
const notes = new Map<string, number[]>();
const problems: string[] = [];
const add = <T>(map: Map<string, T[]>, key: string, value: T) => map.set(key, [...(map.get(key) ?? []), value]);

function check(scenario: string, result: LoadResult): void {
  if (result.errors > 0) problems.push(`${scenario}: ${result.errors} connection errors or timeouts`);
  for (const [status, count] of Object.entries(result.unexpectedStatus)) problems.push(`${scenario}: ${count} × HTTP ${status}`);
  if (result.badBodies > 0) problems.push(`${scenario}: ${result.badBodies} replies with the right status but the wrong body`);
}

type Client = ReturnType<typeof startClient>;

/** One create phase, the mail drain, one verify phase; `record` false for the warm-up. */
async function otpRound(client: Client, name: string, target: { url: string; gateway: Gateway }, seconds: number, record: boolean) {
  const load = { url: target.url, connections: CONNECTIONS, apiKey: ADMIN_KEY };
  const create = await client.call<LoadResult>({ op: "create", seconds, ...load });
  const drainStarted = performance.now();
  await target.gateway.dispatcher.drain();
  const drainSeconds = (performance.now() - drainStarted) / 1000;
  const mail = await client.call<{ accepted: number; withCode: number }>({ op: "mailStatus" });
  if (mail.withCode < mail.accepted) problems.push(`${name}: ${mail.accepted - mail.withCode} of ${mail.accepted} accepted OTPs were never mailed`);
  const verify = await client.call<LoadResult>({ op: "verify", ...load });
  check(`${name} create`, create);
  check(`${name} verify`, verify);
  if (!record) return;
  const label = `otpgate ${name.padEnd(6)}`;
  // Per OTP: its share of the create phase and of the mail drain, then one verify.
  const secondsPerOp = (create.seconds + drainSeconds) / mail.accepted + 1 / verify.rps;
  add(samples, `${label}  POST /v1/otp`, create);
  add(samples, `${label}  POST /v1/otp/verify`, verify);
  add(samples, `${label}  create+mail+verify (ops/s)`, { rps: 1 / secondsPerOp });
  add(notes, `${name}: mail backlog left when the create load stopped, drained in (s)`, drainSeconds);
  add(notes, `${name}: OTPs created, mailed and verified per run`, mail.accepted);
}

function report(): void {
  const baseline = median(samples.get("fastify baseline POST /echo")!.map((s) => s.rps));
  const rows = [["scenario", "req/s", "p50 ms", "p99 ms", "× baseline"]];
  for (const [scenario, list] of samples) {
    const rps = median(list.map((s) => s.rps));
    const latency = (pick: (s: Sample) => number | undefined) => {
      const values = list.map(pick).filter((v): v is number => v !== undefined);
      return values.length ? median(values).toFixed(1) : "-";
    };
    rows.push([scenario, rps.toFixed(0), latency((s) => s.p50), latency((s) => s.p99), (rps / baseline).toFixed(3)]);
  }
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join("  ");
  console.log(`\nmedians of ${RUNS} run(s), ${SECONDS} s per load phase, ${CONNECTIONS} connections, pipelining 1`);
  console.log(line(rows[0]!));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const row of rows.slice(1)) console.log(line(row));
  console.log("\n" + [...notes].map(([what, values]) => `  ${what}: median ${Number(median(values).toFixed(2))}`).join("\n"));
}

async function main(): Promise<void> {
  console.log(`otpgate OTP throughput: node ${process.version}, ${availableParallelism()} CPUs`);
  const flags = process.argv.slice(2).join(" ");
  const command =
    process.env.npm_lifecycle_event === "bench"
      ? `npm run bench${flags ? ` -- ${flags}` : ""}`
      : `tsx ${path.relative(process.cwd(), process.argv[1]!)} ${flags}`.trim();
  console.log(`command: ${command} (cwd ${process.cwd()})`);
  console.log(
    "method: create = POST /v1/otp with a distinct email each, mailed to a local SMTP sink; after the mail backlog\n" +
      "drains, verify = POST /v1/otp/verify once per created OTP with the code taken from its mail (must approve).\n" +
      "create+mail+verify ops/s = OTPs / (create phase + mail drain + verify phase). Client and SMTP sink run in a\n" +
      "worker thread; the servers under test run on the main thread.",
  );

  const client = startClient();
  onClose("load client", () => client.terminate());
  const smtpPort = await client.call<number>({ op: "startSink" });
  onClose("smtp sink", () => client.call({ op: "close" }));
  const smtpUrl = `smtp://127.0.0.1:${smtpPort}`;

  const redis = await startRedis();
  onClose("redis-server", () => stopChild(redis.child));

  const baselineUrl = await startBaseline();
  const otpgates = [
    { name: "sqlite", target: await startOtpgate("sqlite", smtpUrl) },
    { name: "memory", target: await startOtpgate("memory", smtpUrl, { STORE: "memory" }) },
    { name: "redis", target: await startOtpgate("redis", smtpUrl, { REDIS_URL: redis.url }) },
  ];

  // Warm-up (JIT, connection pools), not recorded.
  await client.call({ op: "baseline", url: baselineUrl, connections: CONNECTIONS, seconds: 1 });
  for (const { name, target } of otpgates) await otpRound(client, name, target, 1, false);

  for (let run = 1; run <= RUNS; run++) {
    process.stdout.write(`run ${run}/${RUNS} …\n`);
    const baseline = await client.call<LoadResult>({ op: "baseline", url: baselineUrl, connections: CONNECTIONS, seconds: SECONDS });
    check("baseline", baseline);
    add(samples, "fastify baseline POST /echo", baseline);
    for (const { name, target } of otpgates) await otpRound(client, name, target, SECONDS, true);
  }
  report();
}

await runBench(main, { problems, okLine: "no errors, every status was the expected one (202 create, 200 verify, 200 baseline)" });
