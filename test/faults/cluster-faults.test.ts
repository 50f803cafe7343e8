/**
 * The fault suite for a cluster: two gateway processes started as users start
 * them (node api/main.ts, environment only) sharing a real redis-server with
 * AOF, simulated phones over TLS that know both brokers, and a counting Twilio
 * stand-in. Each case breaks something on purpose under load and counts every
 * SMS per job, by phones and by the cloud:
 *   - kill -9 of one node: every job settles within the device deadlines plus
 *     the lease, and no job a phone had acked `sent` goes out again;
 *   - Redis stopped for seconds while phones drop: no node exits, both are
 *     ready again by themselves, no accepted job is lost;
 *   - SIGTERM of a node whose phones are slow: not one double.
 * The doubles that remain possible by nature are counted and printed
 * (sms-count.ts says which and how).
 */
import { randomUUID } from "node:crypto";
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { isSettled, type Job } from "../../api/delivery/job-state.js";
import { createSealer } from "../../api/security/sealing.js";
import { RedisStore } from "../../api/store/redis-store.js";
import { startPhone, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { spawnGateway, type GatewayProcess } from "../support/gateway-process.js";
import { freePort } from "../support/ports.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";
import { parseProvisioningUri } from "../../broker/provisioning.js";
import { countSms, describeCount } from "./sms-count.js";

const SID = "AC" + "4".repeat(32);
const TOKEN = "fault-token";
const OTP_SECRET = "fault-suite-otp-secret-0123456789abcdef";
const DEADLINES = { ack: 2_000, sent: 4_000, grace: 2_000, sweep: 500 };
/** How long after its node died a job may take to settle: its attempt's deadline (+1 s), the lease's grace, one sweep. */
const TAKEOVER_BOUND_MS = DEADLINES.ack + DEADLINES.sent + 1_000 + DEADLINES.grace + DEADLINES.sweep;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Cluster {
  redis: RedisServer;
  twilio: FakeTwilio;
  nodes: GatewayProcess[];
  phones: SimulatedPhone[];
  store: RedisStore;
}

let cluster: Cluster | undefined;
const phoneLog: string[] = [];

async function startCluster(env: Record<string, string> = {}): Promise<Cluster> {
  const redis = await startRedisServer({ aof: true });
  const ports = [await freePort(), await freePort()] as const;
  const twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
  const shared = {
    ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
    REDIS_URL: redis.url,
    OTP_SECRET,
    FAILOVER_ORDER: "device,twilio",
    DEVICE_ACK_TIMEOUT_MS: String(DEADLINES.ack),
    DEVICE_SENT_TIMEOUT_MS: String(DEADLINES.sent),
    LEASE_GRACE_MS: String(DEADLINES.grace),
    SWEEP_INTERVAL_MS: String(DEADLINES.sweep),
    PROVIDER_TIMEOUT_MS: "3000",
    // Phones are told both brokers, as a load balancer-less cluster would provision them.
    PUBLIC_MQTT_URL: ports.map((port) => `mqtts://127.0.0.1:${port}`).join(","),
    ...env,
  };
  // Every node must present the same CA, which phones pin: B starts with A's dev certificates.
  const a = await spawnGateway({ name: "a", env: shared, mqttsPort: ports[0] });
  const bDir = mkdtempSync(path.join(tmpdir(), "otpgate-b-"));
  cpSync(path.join(a.dataDir, "tls"), path.join(bDir, "tls"), { recursive: true });
  const nodes = [a, await spawnGateway({ name: "b", env: shared, dataDir: bDir, mqttsPort: ports[1] })];
  const store = new RedisStore({ url: redis.url, sealer: createSealer(OTP_SECRET) });
  cluster = { redis, twilio, nodes, phones: [], store };
  return cluster;
}

afterEach(async () => {
  if (!cluster) return;
  const { redis, twilio, nodes, phones, store } = cluster;
  cluster = undefined;
  await Promise.all(phones.map((phone) => phone.close().catch(() => {})));
  await Promise.all(nodes.map((node) => node.kill("SIGKILL")));
  await store.close();
  await twilio.close();
  await redis.stop();
}, 60_000);

/**
 * Registers a phone through `node` and connects it to the brokers its
 * provisioning URI lists, or to `first` in that order (to start some phones on the other node).
 */
async function addPhone(c: Cluster, node: GatewayProcess, first: GatewayProcess[] | "as provisioned", options: { latencyMs: number; maxPerMinute?: number }): Promise<SimulatedPhone> {
  const created = await node.call("POST", "/v1/devices", { name: `fault phone ${c.phones.length}`, maxPerMinute: options.maxPerMinute ?? 30 });
  expect(created.status).toBe(201);
  const provisioned = parseProvisioningUri(created.json.provisioning).mqttUrls;
  expect(provisioned).toEqual(c.nodes.map((n) => `mqtts://127.0.0.1:${n.mqtts}`));
  const phone = await startPhone({
    url: first === "as provisioned" ? provisioned : first.map((n) => `mqtts://127.0.0.1:${n.mqtts}`),
    deviceId: created.json.id,
    token: created.json.token,
    caFingerprint: created.json.caFingerprint,
    heartbeatSeconds: 3600,
    deliveredAfterMs: null,
    latencyMs: options.latencyMs,
    maxPerMinute: 60,
    reconnectMinMs: 200,
    reconnectMaxMs: 1_000,
    attemptTimeoutMs: 3_000,
    ...(process.env.FAULT_DEBUG ? { logger: (line: string) => phoneLog.push(`${new Date().toISOString()} ${created.json.id} ${line}`) } : {}),
  });
  c.phones.push(phone);
  const deadline = Date.now() + 10_000;
  while ((await node.call("GET", `/v1/devices/${phone.deviceId}`)).json?.online !== true) {
    if (Date.now() > deadline) throw new Error(`phone ${phone.deviceId} never came online`);
    await sleep(50);
  }
  return phone;
}

/** POST /v1/messages with a unique body; the job id when accepted (202), else null (refused or node down). */
async function submit(node: GatewayProcess, body: string, to: string): Promise<{ id: string | null; status: number; code?: string }> {
  try {
    const reply = await node.call("POST", "/v1/messages", { to, body });
    return { id: reply.status === 202 ? reply.json.id : null, status: reply.status, code: reply.json?.error?.code };
  } catch {
    return { id: null, status: 0 };
  }
}

/** Reads every job from the shared store until all are settled, or fails after `timeoutMs`. */
async function allSettled(store: RedisStore, ids: string[], timeoutMs: number): Promise<{ jobs: Map<string, Job>; lastSettledAt: number }> {
  const jobs = new Map<string, Job>();
  const deadline = Date.now() + timeoutMs;
  let lastSettledAt = Date.now();
  for (;;) {
    for (const id of ids.filter((id) => !jobs.has(id))) {
      const job = await store.getJob(id).catch(() => null);
      if (job && isSettled(job)) {
        jobs.set(id, job);
        lastSettledAt = Math.max(lastSettledAt, Date.parse(job.updatedAt));
      }
    }
    if (jobs.size === ids.length) return { jobs, lastSettledAt };
    if (Date.now() > deadline) {
      const stuck = await Promise.all(ids.filter((id) => !jobs.has(id)).slice(0, 3).map((id) => store.getJob(id)));
      throw new Error(`${ids.length - jobs.size} of ${ids.length} jobs never settled, e.g. ${JSON.stringify(stuck)}`);
    }
    await sleep(200);
  }
}

/** A phone with nothing left to send: whatever it still held has gone out by now. */
async function phonesIdle(phones: SimulatedPhone[]): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (phones.some((p) => p.queued.length > 0) && Date.now() < deadline) await sleep(100);
  await sleep(500);
}

const number = (i: number) => `+2547100${String(i).padStart(5, "0")}`;

describe("cluster faults (two gateway processes, one Redis, phones over TLS)", () => {
  it("kill -9 of one node under load: every job settles within deadlines plus the lease, none a phone acked goes out again", async () => {
    const c = await startCluster();
    const [a, b] = c.nodes as [GatewayProcess, GatewayProcess];
    for (let i = 0; i < 4; i++) await addPhone(c, a, i < 2 ? "as provisioned" : [b, a], { latencyMs: 800 });

    const bodies = new Map<string, string>();
    let killedAt = 0;
    for (let i = 0; i < 40; i++) {
      if (i === 20) {
        await a.kill("SIGKILL");
        killedAt = Date.now();
      }
      const body = `kill9 ${randomUUID().slice(0, 8)} #${i}`;
      const { id } = await submit(i % 2 === 0 ? a : b, body, number(i));
      if (id) bodies.set(id, body);
      await sleep(100);
    }
    expect(a.exit()?.signal).toBe("SIGKILL");
    expect(bodies.size).toBeGreaterThanOrEqual(30);

    const { jobs, lastSettledAt } = await allSettled(c.store, [...bodies.keys()], 60_000);
    await phonesIdle(c.phones);
    const report = countSms(jobs, bodies, c.phones, c.twilio);
    console.log(describeCount("kill -9", report), `; last job settled ${lastSettledAt - killedAt} ms after the kill`);
    if (process.env.FAULT_DEBUG) {
      for (const id of report.doubledUnacked) {
        const phone = c.phones.find((p) => p.sent.some((s) => s.id === id))!;
        console.log(id, phone.deviceId, phone.connected, JSON.stringify(phone.acks.filter((k) => k.id === id)), JSON.stringify(jobs.get(id)?.attempts));
      }
      (await import("node:fs")).writeFileSync("/tmp/fault-b.log", b.output());
      (await import("node:fs")).writeFileSync("/tmp/fault-phones.log", phoneLog.join("\n"));
    }

    expect(report.doubledAfterSent).toEqual([]);
    expect(report.lost).toEqual([]);
    expect(report.perJob.filter((count) => count.phones + count.cloud === 0 && jobs.get(count.id)?.state !== "failed")).toEqual([]);
    // Jobs the dead node was carrying were taken over, not left to expire.
    expect(lastSettledAt - killedAt).toBeLessThan(TAKEOVER_BOUND_MS + 10_000);
    expect([...jobs.values()].filter((job) => job.state === "expired")).toEqual([]);
    expect(b.exit()).toBeNull();
  }, 120_000);

  it("Redis stopped for seconds while phones drop: no node exits, both recover by themselves, no accepted job is lost", async () => {
    const c = await startCluster();
    const [a, b] = c.nodes as [GatewayProcess, GatewayProcess];
    for (let i = 0; i < 4; i++) await addPhone(c, a, i < 2 ? [a, b] : [b, a], { latencyMs: 300 });

    const bodies = new Map<string, string>();
    const duringOutage: { status: number; code?: string }[] = [];
    const readyDuringOutage: number[] = [];
    let i = 0;
    const send = async (count: number, record?: typeof duringOutage) => {
      for (const end = i + count; i < end; i++) {
        const body = `outage ${randomUUID().slice(0, 8)} #${i}`;
        const result = await submit(i % 2 === 0 ? a : b, body, number(i));
        if (result.id) bodies.set(result.id, body);
        record?.push(result);
        await sleep(100);
      }
    };

    await send(15);
    await c.redis.pause();
    const outageStarted = Date.now();
    await send(5, duringOutage);
    // Two phones drop mid-outage: their wills and session clean-up hit a Redis that is not there.
    c.phones[0]!.kill();
    c.phones[2]!.kill();
    await send(5, duringOutage);
    for (const node of [a, b]) readyDuringOutage.push((await node.call("GET", "/readyz").catch(() => ({ status: 0 }))).status);
    while (Date.now() - outageStarted < 5_000) await sleep(100);
    await c.redis.start();

    // Both nodes are still there and ready again without help.
    const readyBy = Date.now() + 15_000;
    for (const node of [a, b]) {
      while ((await node.call("GET", "/readyz").catch(() => ({ status: 0 }))).status !== 200) {
        if (Date.now() > readyBy) throw new Error(`node ${node.name} not ready after Redis came back:\n${node.output().slice(-3000)}`);
        await sleep(200);
      }
    }
    await c.phones[0]!.reconnect();
    await c.phones[2]!.reconnect();
    await send(15);

    const { jobs } = await allSettled(c.store, [...bodies.keys()], 60_000);
    await phonesIdle(c.phones);
    const report = countSms(jobs, bodies, c.phones, c.twilio);
    console.log(describeCount("Redis outage", report), `; answers during the outage ${JSON.stringify(duringOutage.map((r) => r.code ?? r.status))}`);

    expect(a.exit()).toBeNull();
    expect(b.exit()).toBeNull();
    expect(readyDuringOutage).toEqual([503, 503]);
    // During the outage new work is refused plainly, never half-accepted.
    expect(duringOutage.length).toBe(10);
    expect(duringOutage.every((r) => r.status === 503 && r.code === "store_unavailable")).toBe(true);
    expect(report.doubledAfterSent).toEqual([]);
    expect(report.lost).toEqual([]);
    expect(report.perJob.filter((count) => count.phones + count.cloud === 0)).toEqual([]);
  }, 120_000);

  it("SIGTERM of a node whose phones are slow: its jobs are handed back and finished elsewhere, with no double", async () => {
    const c = await startCluster({ DEVICE_SENT_TIMEOUT_MS: "10000" });
    const [a, b] = c.nodes as [GatewayProcess, GatewayProcess];
    for (let i = 0; i < 3; i++) await addPhone(c, a, "as provisioned", { latencyMs: 3_000, maxPerMinute: 20 });

    const bodies = new Map<string, string>();
    for (let i = 0; i < 60; i++) {
      const body = `sigterm ${randomUUID().slice(0, 8)} #${i}`;
      const { id } = await submit(a, body, number(i));
      if (id) bodies.set(id, body);
    }
    expect(bodies.size).toBe(60);
    // Every phone holds its share and none has sent yet: the node stops mid-job.
    const heldBy = Date.now() + 10_000;
    while (c.phones.reduce((sum, p) => sum + p.received.length, 0) < 60 && Date.now() < heldBy) await sleep(50);
    expect(c.phones.reduce((sum, p) => sum + p.sent.length, 0)).toBe(0);
    await a.kill("SIGTERM");
    expect(a.exit()).toEqual({ code: 0, signal: null });

    const { jobs } = await allSettled(c.store, [...bodies.keys()], 60_000);
    await phonesIdle(c.phones);
    const report = countSms(jobs, bodies, c.phones, c.twilio);
    console.log(describeCount("SIGTERM with slow phones", report));

    expect(report.perJob.filter((count) => count.phones + count.cloud !== 1)).toEqual([]);
    expect(c.twilio.received).toHaveLength(0);
    expect([...jobs.values()].every((job) => job.state === "sent")).toBe(true);
    expect(b.exit()).toBeNull();
  }, 120_000);
});
