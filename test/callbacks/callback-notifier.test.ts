import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterEach, describe, expect, it, vi } from "vitest";
import { CallbackNotifier, type CallbackNotifierDeps, type CallbackOutcome } from "../../api/callbacks/callback-notifier.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCallback } from "../../api/callbacks/signature.js";
import * as jobState from "../../api/delivery/job-state.js";
import type { Job } from "../../api/delivery/job-state.js";
import { startReceiver, type Receiver, type ReceivedRequest } from "./receiver.js";

const SECRET = "callback-secret-for-tests";
const SEALED = "SEALED:v1:c2VjcmV0LWJvZHktNDgyOTE3";
const T0 = new Date("2025-03-01T10:00:00.000Z");

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function receiver(reply?: Parameters<typeof startReceiver>[0]): Promise<Receiver> {
  const r = await startReceiver(reply);
  cleanups.push(() => r.close());
  return r;
}

interface Harness {
  notifier: CallbackNotifier;
  outcomes: CallbackOutcome[];
  logs: Array<{ level: number; msg: string } & Record<string, unknown>>;
}

function harness(deps: Partial<CallbackNotifierDeps> = {}): Harness {
  const outcomes: CallbackOutcome[] = [];
  const logs: Harness["logs"] = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  const notifier = new CallbackNotifier({
    secret: SECRET,
    logger,
    baseDelayMs: 10,
    timeoutMs: 2000,
    onOutcome: (outcome) => outcomes.push(outcome),
    ...deps,
  });
  cleanups.push(() => notifier.close());
  return { notifier, outcomes, logs };
}

function newJob(callbackUrl: string | undefined, overrides: Partial<Job> = {}): Job {
  return {
    id: "job-1",
    kind: "otp",
    otpId: "otp-1",
    channel: "sms",
    to: "+254711002333",
    sealedBody: SEALED,
    state: "queued",
    attempts: [],
    createdAt: T0.toISOString(),
    updatedAt: T0.toISOString(),
    expiresAt: new Date(T0.getTime() + 300_000).toISOString(),
    ...(callbackUrl ? { callbackUrl } : {}),
    ...overrides,
  };
}

/** queued → dispatched → sent → delivered, as the dispatcher would record it. */
function lifecycle(job: Job): Job[] {
  const seconds = (n: number) => new Date(T0.getTime() + n * 1000);
  const dispatched = jobState.dispatch(job, "twilio", seconds(1));
  const sent = jobState.markSent(dispatched, "twilio", seconds(2), "SM123");
  const delivered = jobState.markDelivered(sent, "twilio", seconds(3));
  return [job, dispatched, sent, delivered];
}

const statusOf = (r: ReceivedRequest) => (JSON.parse(r.body) as { status: string }).status;
const jobIdOf = (r: ReceivedRequest) => (JSON.parse(r.body) as { jobId: string }).jobId;

describe("CallbackNotifier", () => {
  it("POSTs the state as JSON signed so that verifyCallback accepts it only with the right secret, body and a fresh timestamp", async () => {
    const r = await receiver();
    const { notifier, outcomes } = harness();
    const [, dispatched] = lifecycle(newJob(r.url));
    notifier.notify(dispatched!);
    await notifier.drain();

    expect(r.requests).toHaveLength(1);
    const [request] = r.requests as [ReceivedRequest];
    expect(request.method).toBe("POST");
    expect(request.path).toBe("/hooks/otpgate");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(request.body)).toMatchObject({ event: "job.state", status: "dispatched", route: "twilio", id: "otp-1" });

    const signature = request.headers[SIGNATURE_HEADER];
    const timestamp = request.headers[TIMESTAMP_HEADER];
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(5);
    expect(verifyCallback(SECRET, signature, timestamp, request.body)).toBe(true);
    expect(verifyCallback("another-secret", signature, timestamp, request.body)).toBe(false);
    expect(verifyCallback(SECRET, signature, timestamp, request.body.replace('"dispatched"', '"delivered"'))).toBe(false);
    // The same request, replayed ten minutes later.
    const tenMinutesLater = new Date((Number(timestamp) + 600) * 1000);
    expect(verifyCallback(SECRET, signature, timestamp, request.body, { now: tenMinutesLater })).toBe(false);
    expect(outcomes).toEqual(["delivered"]);
  });

  it("sends the job's status and attempts, never its sealed body, code or number", async () => {
    const r = await receiver();
    const { notifier } = harness();
    const [, , sent] = lifecycle(newJob(r.url, { email: "user@example.com" }));
    const message = newJob(r.url, { id: "msg-7", kind: "message", otpId: undefined });
    notifier.notify(sent!);
    notifier.notify(message);
    await notifier.drain();

    const bodies = r.requests.map((q) => q.body);
    expect(bodies.map((b) => JSON.parse(b))).toEqual(
      expect.arrayContaining([
        {
          event: "job.state",
          type: "otp",
          id: "otp-1",
          jobId: "job-1",
          status: "sent",
          route: "twilio",
          attempts: [{ route: "twilio", state: "sent", at: "2025-03-01T10:00:02.000Z", providerMessageId: "SM123" }],
          at: "2025-03-01T10:00:02.000Z",
        },
        {
          event: "job.state",
          type: "message",
          id: "msg-7",
          jobId: "msg-7",
          status: "queued",
          route: null,
          attempts: [],
          at: T0.toISOString(),
        },
      ]),
    );
    expect(bodies).toHaveLength(2);
    for (const body of bodies) {
      expect(body).not.toContain(SEALED);
      expect(body).not.toContain("sealedBody");
      expect(body).not.toContain("2333");
      expect(body).not.toContain("example.com");
    }
  });

  it("retries a receiver that answers 500 twice, then stops after its 200", async () => {
    const r = await receiver((index) => (index < 2 ? 500 : 200));
    const { notifier, outcomes } = harness({ baseDelayMs: 10 });
    notifier.notify(newJob(r.url));
    await notifier.drain();

    expect(r.requests).toHaveLength(3);
    expect(new Set(r.requests.map((q) => q.body)).size).toBe(1);
    for (const q of r.requests) {
      expect(verifyCallback(SECRET, q.headers[SIGNATURE_HEADER], q.headers[TIMESTAMP_HEADER], q.body)).toBe(true);
    }
    expect(outcomes).toEqual(["retry", "retry", "delivered"]);
    await sleep(150);
    expect(r.requests).toHaveLength(3);
    expect(notifier.pending).toBe(0);
  });

  it("backs off exponentially with full jitter, capped, and gives up after maxAttempts", async () => {
    const r = await receiver(() => 503);
    const delays: number[] = [];
    const { notifier, outcomes, logs } = harness({
      maxAttempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 300,
      timeoutMs: 60_000,
      random: () => 0.5,
      // Records the backoff waits and skips them; the request timeout runs for real.
      setTimer: (fn, ms) => {
        if (ms !== 60_000) delays.push(ms);
        const timer = setTimeout(fn, ms === 60_000 ? ms : 0);
        return () => clearTimeout(timer);
      },
    });
    notifier.notify(newJob(r.url));
    await notifier.drain();

    expect(delays).toEqual([50, 100, 150, 150]); // 0.5 × min(300, 100·2^(n-1))
    expect(r.requests).toHaveLength(5);
    expect(outcomes).toEqual(["retry", "retry", "retry", "retry", "gave_up"]);
    expect(logs.filter((l) => l.level === 40)).toEqual([expect.objectContaining({ jobId: "job-1", attempt: 5, reason: "HTTP 503" })]);
  });

  it("tries a 404 receiver once and logs it", async () => {
    const r = await receiver(() => 404);
    const { notifier, outcomes, logs } = harness();
    notifier.notify(newJob(r.url));
    await notifier.drain();
    await sleep(100);

    expect(r.requests).toHaveLength(1);
    expect(outcomes).toEqual(["gave_up"]);
    const warning = logs.find((l) => l.level === 40);
    expect(warning).toMatchObject({ jobId: "job-1", reason: "HTTP 404", target: new URL(r.url).origin });
    // The log names the receiver's origin, not its path (which may carry its own secret).
    expect(JSON.stringify(logs)).not.toContain("/hooks/otpgate");
  });

  it.each([408, 429, 502])("retries a %i answer", async (status) => {
    const r = await receiver((index) => (index === 0 ? status : 204));
    const { notifier, outcomes } = harness();
    notifier.notify(newJob(r.url));
    await notifier.drain();
    expect(r.requests).toHaveLength(2);
    expect(outcomes).toEqual(["retry", "delivered"]);
  });

  it.each([400, 401, 410, 422])("does not retry a %i answer", async (status) => {
    const r = await receiver(() => status);
    const { notifier, outcomes } = harness();
    notifier.notify(newJob(r.url));
    await notifier.drain();
    expect(r.requests).toHaveLength(1);
    expect(outcomes).toEqual(["gave_up"]);
  });

  it("does not follow a redirect: the signed payload never reaches the other host", async () => {
    const elsewhere = await receiver();
    const r = await receiver(() => ({ status: 307, headers: { location: elsewhere.url } }));
    const { notifier, outcomes } = harness();
    notifier.notify(newJob(r.url));
    await notifier.drain();
    await sleep(50);

    expect(r.requests).toHaveLength(1);
    expect(elsewhere.requests).toHaveLength(0);
    expect(outcomes).toEqual(["gave_up"]);
  });

  it("times out a receiver that never answers and retries it", async () => {
    const r = await receiver(() => "hang");
    const { notifier, outcomes, logs } = harness({ timeoutMs: 150, maxAttempts: 3 });
    const started = performance.now();
    notifier.notify(newJob(r.url));
    await notifier.drain();

    expect(r.requests).toHaveLength(3);
    expect(outcomes).toEqual(["retry", "retry", "gave_up"]);
    expect(performance.now() - started).toBeGreaterThanOrEqual(3 * 150 - 20);
    expect(performance.now() - started).toBeLessThan(5000);
    expect(logs.find((l) => l.level === 40)).toMatchObject({ reason: expect.stringContaining("no answer within 150 ms") });
  });

  it("keeps a job's states in order when its first delivery is retried", async () => {
    const r = await receiver((index) => (index === 0 ? 500 : 200));
    const { notifier, outcomes } = harness();
    for (const state of lifecycle(newJob(r.url))) notifier.notify(state);
    await notifier.drain();

    expect(r.requests.map(statusOf)).toEqual(["queued", "queued", "dispatched", "sent", "delivered"]);
    expect(outcomes).toEqual(["retry", "delivered", "delivered", "delivered", "delivered"]);
  });

  it("still sends a job's later states after an earlier one gave up", async () => {
    const r = await receiver((index) => (index < 2 ? 500 : 200));
    const { notifier, outcomes } = harness({ maxAttempts: 2 });
    const [queued, dispatched] = lifecycle(newJob(r.url));
    notifier.notify(queued!);
    notifier.notify(dispatched!);
    await notifier.drain();

    expect(r.requests.map(statusOf)).toEqual(["queued", "queued", "dispatched"]);
    expect(outcomes).toEqual(["retry", "gave_up", "delivered"]);
  });

  it("returns from notify at once while a receiver hangs, and other jobs' callbacks still go out", async () => {
    const stuck = await receiver((index) => (index === 0 ? "hang" : 200));
    const fine = await receiver();
    const { notifier } = harness({ timeoutMs: 10_000 });

    // What the dispatcher does: notify on each transition and carry on.
    const started = performance.now();
    for (const state of lifecycle(newJob(stuck.url))) expect(notifier.notify(state)).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(25);
    await vi.waitFor(() => expect(stuck.requests).toHaveLength(1));

    notifier.notify(newJob(fine.url, { id: "job-2" }));
    await vi.waitFor(() => expect(fine.requests.map(jobIdOf)).toEqual(["job-2"]));
    expect(stuck.requests).toHaveLength(1); // still waiting on the first answer, in order
    expect(notifier.pending).toBe(4);

    stuck.release(200);
    await notifier.drain();
    expect(stuck.requests.map(statusOf)).toEqual(["queued", "dispatched", "sent", "delivered"]);
  });

  it("drops notifications past maxPending with outcome dropped, and takes new ones once there is room", async () => {
    const r = await receiver((index) => (index < 2 ? "hang" : 200));
    const { notifier, outcomes, logs } = harness({ maxPending: 2, timeoutMs: 10_000 });
    notifier.notify(newJob(r.url, { id: "job-a" }));
    notifier.notify(newJob(r.url, { id: "job-b" }));
    notifier.notify(newJob(r.url, { id: "job-c" }));

    expect(outcomes).toEqual(["dropped"]);
    expect(notifier.counts.dropped).toBe(1);
    expect(notifier.pending).toBe(2);
    expect(logs.find((l) => l.level === 40)).toMatchObject({ jobId: "job-c", msg: expect.stringContaining("dropped") });

    await vi.waitFor(() => expect(r.requests).toHaveLength(2));
    r.release(200);
    await notifier.drain();
    expect(r.requests.map(jobIdOf).sort()).toEqual(["job-a", "job-b"]);

    notifier.notify(newJob(r.url, { id: "job-d" }));
    await notifier.drain();
    expect(r.requests.map(jobIdOf).sort()).toEqual(["job-a", "job-b", "job-d"]);
    expect(outcomes).toEqual(["dropped", "delivered", "delivered", "delivered"]);
  });

  it("signs each attempt with the time it is sent, so a late retry is still fresh", async () => {
    let clock = T0.getTime();
    const r = await receiver((index) => {
      clock += 400_000; // the backoff took longer than the receiver's 300 s tolerance
      return index === 0 ? 503 : 200;
    });
    const { notifier } = harness({ now: () => new Date(clock) });
    notifier.notify(newJob(r.url));
    await notifier.drain();

    const [first, retry] = r.requests as [ReceivedRequest, ReceivedRequest];
    expect(Number(retry.headers[TIMESTAMP_HEADER])).toBe(Number(first.headers[TIMESTAMP_HEADER]) + 400);
    const verifyAt = (q: ReceivedRequest) =>
      verifyCallback(SECRET, q.headers[SIGNATURE_HEADER], q.headers[TIMESTAMP_HEADER], q.body, { now: new Date(T0.getTime() + 400_000) });
    expect(verifyAt(first)).toBe(false);
    expect(verifyAt(retry)).toBe(true);
  });

  it("sends nothing for a job without callbackUrl or with a URL that is not plain http(s)", async () => {
    const fetch = vi.fn(async () => new Response(null, { status: 204 }));
    const { notifier, outcomes, logs } = harness({ fetch });
    notifier.notify(newJob(undefined));
    for (const url of ["file:///etc/passwd", "ftp://example.com/x", "javascript:alert(1)", "not a url", "https://user:pw@example.com/hook"]) {
      notifier.notify(newJob(url));
    }
    await notifier.drain();
    expect(fetch).not.toHaveBeenCalled();
    expect(outcomes).toEqual([]);
    expect(logs.filter((l) => l.level === 40)).toHaveLength(5);

    // The same stub does get a valid URL: the silence above is the URL check, not the stub.
    notifier.notify(newJob("https://example.com/hook"));
    await notifier.drain();
    expect(fetch).toHaveBeenCalledOnce();
    expect(outcomes).toEqual(["delivered"]);
  });

  it("never throws from notify, even when the metrics hook does", () => {
    const { notifier, logs } = harness({
      maxPending: 0,
      onOutcome: () => {
        throw new Error("metrics down");
      },
    });
    expect(() => notifier.notify(newJob("https://example.com/hook"))).not.toThrow();
    expect(notifier.counts.dropped).toBe(1);
    expect(logs.some((l) => l.level === 50)).toBe(true);
  });

  it("close stops retries and requests under way, and later notify calls do nothing", async () => {
    const r = await receiver((index) => (index === 0 ? 500 : "hang"));
    const slow = await receiver(() => "hang");
    const { notifier } = harness({ baseDelayMs: 60_000, timeoutMs: 60_000, random: () => 1 });
    notifier.notify(newJob(r.url, { id: "job-retrying" }));
    notifier.notify(newJob(slow.url, { id: "job-in-flight" }));
    await vi.waitFor(() => {
      expect(r.requests).toHaveLength(1);
      expect(slow.requests).toHaveLength(1);
    });
    await sleep(20); // let the 500 land, so job-retrying is in its backoff

    const started = performance.now();
    notifier.close();
    await notifier.drain();
    expect(performance.now() - started).toBeLessThan(1000);
    expect(notifier.pending).toBe(0);

    notifier.notify(newJob(r.url, { id: "job-after-close" }));
    await notifier.drain();
    await sleep(50);
    expect(r.requests).toHaveLength(1);
    expect(notifier.pending).toBe(0);
  });
});
