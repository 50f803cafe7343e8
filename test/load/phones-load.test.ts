/**
 * Load on the phone channel, end to end over real TLS: 100 simulated phones
 * (registered through POST /v1/devices, 20 SMS a minute each), the fake Twilio
 * as overflow (FAILOVER_ORDER=device,twilio), and 5,000 POST /v1/messages sent
 * with bounded concurrency. What must hold under load:
 *   - every accepted job settles;
 *   - every job left exactly once, through a phone or Twilio, and the store
 *     records it `sent` on the route it really left by;
 *   - no phone sent more than its per-minute budget in any 60 s window, so the
 *     phones carried at most 100 × 20 in the first minute and Twilio the rest.
 * Sized for a 2-core CI machine: about 25 s there (40 s with other work on it).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Job } from "../../api/delivery/job-state.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectPhone, registerDevice, type RegisteredDevice } from "../support/phones.js";

const PHONES = 100;
const PER_MINUTE = 20;
const JOBS = 5_000;
/** Requests in flight at once; the gateway sheds load past DISPATCH_MAX_IN_FLIGHT with 503, which we retry. */
const CONCURRENCY = 100;
const WINDOW_MS = 60_000;
const SID = `AC${"10".repeat(16)}`;
const TOKEN = "phones-load-token";
const SETTLED = new Set(["sent", "delivered", "failed", "expired"]);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `work(i)` for i in [0, count) with at most `limit` running at once. */
async function pool(count: number, limit: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await work(i);
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, worker));
}

/** The most timestamps that fall in any window of `windowMs` (half-open, like the store's sliding window). */
function busiestWindow(times: number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let start = 0, end = 0; end < sorted.length; end++) {
    while (sorted[end]! - sorted[start]! >= windowMs) start++;
    best = Math.max(best, end - start + 1);
  }
  return best;
}

describe("phone channel under load", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  const phones: SimulatedPhone[] = [];

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({
      env: {
        ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }),
        FAILOVER_ORDER: "device,twilio",
        // Deadlines far above what a loaded 2-core machine needs for a 0–20 ms phone, yet well
        // below the production defaults (10 s / 30 s): a missed ack would fail over and could
        // make a phone and Twilio both send, which is exactly what this test must not see by accident.
        DEVICE_ACK_TIMEOUT_MS: "5000",
        DEVICE_SENT_TIMEOUT_MS: "10000",
        PROVIDER_TIMEOUT_MS: "10000",
        // Backpressure sized to the machine: a job in flight waits for the ones ahead of it, so this
        // many at ~150–300 jobs/s (one 2-core process holding gateway, phones, fake Twilio and
        // client) keeps every attempt far inside its deadline. At the default 1000 the queue
        // alone approaches PROVIDER_TIMEOUT_MS there. Past it the gateway answers 503, retried below.
        DISPATCH_MAX_IN_FLIGHT: "250",
      },
    });

    const devices: RegisteredDevice[] = [];
    await pool(PHONES, 10, async (i) => {
      devices[i] = await registerDevice(gw, { name: `load ${i}`, maxPerMinute: PER_MINUTE });
    });
    // The simulator's own limit stays at Android's 30, above the device's 20, so the budget
    // checked below is the gateway's, not one the phone enforces on itself.
    await pool(PHONES, 10, async (i) => {
      phones[i] = await connectPhone(gw, devices[i]!, { latencyMs: Math.floor(Math.random() * 21), connectTimeoutMs: 60_000 });
    });
    const ids = devices.map((d) => d.id);
    await eventually(async () => (await gw.gateway.store.getPresence(ids)).every((p) => p?.online), 30_000, "every phone online");
  }, 120_000);

  afterAll(async () => {
    await Promise.all(phones.map((p) => p.close()));
    await gw?.close();
    await twilio?.close();
  }, 60_000);

  it("5,000 messages: each settles and leaves exactly once; phones stay within their budgets, Twilio takes the rest", async () => {
    const started = Date.now();
    /** Job id → request number n; the body carries n so Twilio's copy can be traced to its job. */
    const jobOf = new Map<number, string>();
    let overloaded = 0;
    const refused: string[] = [];

    await pool(JOBS, CONCURRENCY, async (n) => {
      const body = { to: `+254711${String(n).padStart(6, "0")}`, body: `otpgate load #${n}` };
      for (;;) {
        const reply = await gw.call("POST", "/v1/messages", body);
        if (reply.status === 202) return void jobOf.set(n, reply.json.id);
        // Refused before any job was made (nothing to deduplicate), so resending is safe.
        if (reply.status === 503 && reply.json?.error?.code === "overloaded") {
          overloaded++;
          await sleep(100 + Math.random() * 100);
          continue;
        }
        return void refused.push(`#${n}: ${reply.status} ${JSON.stringify(reply.json)}`);
      }
    });
    const submitted = Date.now();
    expect(refused).toEqual([]);
    expect(jobOf.size).toBe(JOBS);

    // Read the store rather than 5,000 GETs per round (the route's view is the same record), only
    // the jobs not seen settled yet, and not too often: the poll shares the gateway's event loop.
    const ids = [...jobOf.values()];
    const jobs = new Map<string, Job>();
    const deadline = Date.now() + 120_000;
    while (jobs.size < ids.length) {
      for (const id of ids.filter((id) => !jobs.has(id))) {
        const job = await gw.gateway.store.getJob(id);
        if (job && SETTLED.has(job.state)) jobs.set(id, job);
      }
      if (jobs.size === ids.length) break;
      if (Date.now() > deadline) throw new Error(`${ids.length - jobs.size} of ${ids.length} jobs never settled`);
      await sleep(250);
    }
    const settledAt = Date.now();
    // A phone that still held a job it should not send would send it now; give it the chance.
    await eventually(async () => phones.every((p) => p.queued.length === 0), 15_000, "phone queues to empty");
    await sleep(500);
    // Spot-check through the API as well.
    const sample = await gw.call("GET", `/v1/messages/${ids[ids.length - 1]}`);
    expect(SETTLED.has(sample.json.delivery.state)).toBe(true);

    // Every SMS that left, by job id: phones report ids, Twilio's copy is traced through the body.
    const idByBody = new Map([...jobOf].map(([n, id]) => [`otpgate load #${n}`, id]));
    const copies = new Map<string, string[]>();
    const count = (id: string, where: string) => copies.set(id, [...(copies.get(id) ?? []), where]);
    for (const phone of phones) {
      for (const sms of phone.sent) {
        expect(idByBody.get(sms.body)).toBe(sms.id);
        count(sms.id, `device:${phone.deviceId}`);
      }
    }
    for (const sms of twilio.received) count(idByBody.get(sms.body) ?? `unknown body ${sms.body}`, "twilio");
    const wrong = [...new Set([...ids, ...copies.keys()])].filter((id) => copies.get(id)?.length !== 1);
    if (process.env.LOAD_DEBUG) for (const id of wrong.slice(0, 5)) console.log(JSON.stringify(jobs.get(id)));
    expect(wrong.map((id) => `${id}: ${JSON.stringify(copies.get(id) ?? [])}`)).toEqual([]);
    // The store agrees with where each SMS really went: recorded as sent, on that route.
    const misrecorded = [...jobs.values()].filter((job) => job.state !== "sent" || job.attempts.at(-1)?.route !== copies.get(job.id)?.[0]);
    expect(
      misrecorded.map((job) => `${job.id}: ${job.state} on ${job.attempts.at(-1)?.route} (${job.attempts.at(-1)?.error ?? "no error"}), left via ${copies.get(job.id)?.[0]}`),
    ).toEqual([]);

    // Budgets: per phone in any 60 s window (by when the phones really sent, which trails the
    // gateway's reservation by the phone's latency), and all phones in the first minute.
    const sentTimes = phones.map((p) => p.sent.map((s) => Date.parse(s.at)));
    const overBudget = phones.flatMap((p, i) => {
      const busiest = busiestWindow(sentTimes[i]!, WINDOW_MS);
      return busiest > PER_MINUTE ? [`${p.deviceId}: ${busiest} in 60 s`] : [];
    });
    expect(overBudget).toEqual([]);
    const viaPhones = sentTimes.flat();
    const firstMinute = viaPhones.filter((at) => at < started + WINDOW_MS).length;
    expect(firstMinute).toBeLessThanOrEqual(PHONES * PER_MINUTE);
    expect(viaPhones.length).toBeGreaterThan(0);
    expect(twilio.received.length).toBe(JOBS - viaPhones.length);

    const states: Record<string, number> = {};
    for (const job of jobs.values()) states[job.state] = (states[job.state] ?? 0) + 1;
    const seconds = (ms: number) => (ms / 1000).toFixed(1);
    console.log(
      `phones-load: ${JOBS} jobs (${overloaded} × 503 overloaded retried), via phones ${viaPhones.length} (first minute ${firstMinute}), ` +
        `via twilio ${twilio.received.length}, states ${JSON.stringify(states)}; submitted in ${seconds(submitted - started)} s, ` +
        `all settled after ${seconds(settledAt - started)} s`,
    );
  }, 240_000);
});
