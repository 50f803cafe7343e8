/**
 * Status callbacks: each state change of a job with a `callbackUrl` is POSTed
 * there as signed JSON (see signature.ts), in the background.
 *
 * - `notify` only queues; the network work happens later, so a slow or dead
 *   receiver never holds up dispatch.
 * - Per job, notifications go out one at a time in the order they were queued:
 *   a receiver never sees `delivered` before `sent` for the same job. Different
 *   jobs do not wait for each other.
 * - 2xx is done; 408, 429, 5xx, network errors and timeouts are retried with
 *   exponential backoff and full jitter up to `maxAttempts`; any other status is
 *   the receiver's final word and is not retried. Either way the next queued
 *   notification for that job goes out after.
 * - The queue is bounded (`maxPending`): past it, new notifications are dropped
 *   rather than letting memory grow behind an unreachable receiver.
 */
import type { FastifyBaseLogger } from "fastify";
import { currentAttempt, type Attempt, type Job, type JobState, type Route } from "../delivery/job-state.js";
import { SIGNATURE_HEADER, signCallback, TIMESTAMP_HEADER } from "./signature.js";

export type CallbackOutcome = "delivered" | "retry" | "dropped" | "gave_up";

export type CallbackAttempt = Pick<Attempt, "route" | "state" | "at" | "error" | "providerMessageId">;

/** The JSON body of a callback. Never the message text, the code or the recipient. */
export interface CallbackPayload {
  event: "job.state";
  type: Job["kind"];
  /** The OTP id for an OTP, the message id for a message: the id the caller got back. */
  id: string;
  jobId: string;
  status: JobState;
  /** The newest attempt's route, or null before any route was tried. */
  route: Route | null;
  attempts: CallbackAttempt[];
  /** When the job entered `status`. */
  at: string;
}

export type SetTimer = (fn: () => void, ms: number) => () => void;

export interface CallbackNotifierDeps {
  /** HMAC key for the signature header. */
  secret: string;
  logger: FastifyBaseLogger;
  fetch?: typeof fetch;
  /** Upper bound for one POST, until the response headers arrive. */
  timeoutMs?: number;
  /** Tries per notification, the first included. */
  maxAttempts?: number;
  /** Retry n waits a random time in [0, min(maxDelayMs, baseDelayMs * 2^(n-1))). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Notifications queued or under way, over all jobs; past it new ones are dropped. */
  maxPending?: number;
  /** Metrics hook. A refused (non-retryable) answer counts as `gave_up`. */
  onOutcome?: (outcome: CallbackOutcome) => void;
  random?: () => number;
  setTimer?: SetTimer;
  /** Clock for the signature timestamp. */
  now?: () => Date;
}

interface Pending {
  jobId: string;
  status: JobState;
  url: URL;
  body: string;
}

type PostResult = { kind: "delivered" } | { kind: "retry" | "refused"; reason: string };

const defaultSetTimer: SetTimer = (fn, ms) => {
  const timer = setTimeout(fn, ms);
  return () => clearTimeout(timer);
};

export function callbackPayload(job: Job): CallbackPayload {
  return {
    event: "job.state",
    type: job.kind,
    id: job.kind === "otp" ? (job.otpId ?? job.id) : job.id,
    jobId: job.id,
    status: job.state,
    route: currentAttempt(job)?.route ?? null,
    // Copied field by field: a field added to Attempt later must not reach
    // receivers unless someone decides it should.
    attempts: job.attempts.map((a) => ({
      route: a.route,
      state: a.state,
      at: a.at,
      ...(a.error !== undefined ? { error: a.error } : {}),
      ...(a.providerMessageId !== undefined ? { providerMessageId: a.providerMessageId } : {}),
    })),
    at: job.updatedAt,
  };
}

export class CallbackNotifier {
  /** Notifications not yet finished, per job, oldest first; the head is the one being sent. */
  private readonly queues = new Map<string, Pending[]>();
  /** One worker per job with a queue. */
  private readonly workers = new Set<Promise<void>>();
  /** Retries waiting out their backoff (wake → cancel its timer); close() wakes them so they can stop. */
  private readonly sleepers = new Map<() => void, () => void>();
  private readonly requests = new Set<AbortController>();
  private pendingCount = 0;
  private closed = false;

  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly maxPending: number;
  private readonly random: () => number;
  private readonly setTimer: SetTimer;
  private readonly now: () => Date;

  /** How often each outcome happened, for callers without a metrics hook. */
  readonly counts: Record<CallbackOutcome, number> = { delivered: 0, retry: 0, dropped: 0, gave_up: 0 };

  constructor(private readonly deps: CallbackNotifierDeps) {
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.timeoutMs = deps.timeoutMs ?? 5000;
    this.maxAttempts = Math.max(1, deps.maxAttempts ?? 8);
    this.baseDelayMs = deps.baseDelayMs ?? 1000;
    this.maxDelayMs = deps.maxDelayMs ?? 5 * 60_000;
    this.maxPending = deps.maxPending ?? 10_000;
    this.random = deps.random ?? Math.random;
    this.setTimer = deps.setTimer ?? defaultSetTimer;
    this.now = deps.now ?? (() => new Date());
  }

  /** Notifications queued or under way. */
  get pending(): number {
    return this.pendingCount;
  }

  /** Queues the job's current state for its callbackUrl. Returns at once and never throws. */
  notify(job: Job): void {
    try {
      this.enqueue(job);
    } catch (error) {
      this.deps.logger.error({ err: error, jobId: job.id }, "could not queue status callback");
    }
  }

  /** Resolves when nothing is pending (tests, graceful shutdown before close()). */
  async drain(): Promise<void> {
    while (this.workers.size > 0) await Promise.allSettled([...this.workers]);
  }

  /** Stops: cancels timers and requests under way, forgets what is queued, ignores later notify calls. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const abandoned = this.pendingCount;
    this.queues.clear();
    this.pendingCount = 0;
    for (const [wake, cancel] of [...this.sleepers]) {
      cancel();
      wake();
    }
    for (const request of this.requests) request.abort(new Error("callback notifier closed"));
    if (abandoned > 0) this.deps.logger.warn({ abandoned }, "status callbacks abandoned at shutdown");
  }

  private enqueue(job: Job): void {
    if (!job.callbackUrl || this.closed) return;
    const url = callbackTarget(job.callbackUrl);
    if (!url) {
      this.deps.logger.warn({ jobId: job.id }, "callbackUrl is not a plain http(s) URL; no status callbacks");
      return;
    }
    if (this.pendingCount >= this.maxPending) {
      this.deps.logger.warn(
        { jobId: job.id, status: job.state, maxPending: this.maxPending },
        "status callback dropped: too many pending",
      );
      this.report("dropped");
      return;
    }
    const item: Pending = { jobId: job.id, status: job.state, url, body: JSON.stringify(callbackPayload(job)) };
    this.pendingCount++;
    const queue = this.queues.get(job.id);
    if (queue) {
      queue.push(item); // that job's worker reaches it after the ones before it
      return;
    }
    const fresh = [item];
    this.queues.set(job.id, fresh);
    const worker = this.work(job.id, fresh)
      .catch((error: unknown) => this.deps.logger.error({ err: error, jobId: job.id }, "status callback worker crashed"))
      .finally(() => this.workers.delete(worker));
    this.workers.add(worker);
  }

  private async work(jobId: string, queue: Pending[]): Promise<void> {
    // Start no network work inside notify(): its caller goes on first.
    await Promise.resolve();
    try {
      while (!this.closed && queue.length > 0) {
        await this.deliver(queue[0]!);
        if (this.closed) return;
        queue.shift();
        this.pendingCount--;
      }
    } finally {
      // Normally the queue is empty here; after a crash, what is left is dropped
      // so the count stays true and the job's next notification starts a new worker.
      if (this.queues.get(jobId) === queue) {
        this.queues.delete(jobId);
        this.pendingCount -= queue.length;
      }
    }
  }

  private async deliver(item: Pending): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.post(item);
      if (this.closed) return;
      if (result.kind === "delivered") {
        this.report("delivered");
        return;
      }
      // The origin only: a path or query may hold the receiver's own secret.
      const context = { jobId: item.jobId, status: item.status, target: item.url.origin, attempt, reason: result.reason };
      if (result.kind === "refused") {
        this.deps.logger.warn(context, "status callback refused by the receiver; not retried");
        this.report("gave_up");
        return;
      }
      if (attempt >= this.maxAttempts) {
        this.deps.logger.warn(context, "status callback failed; giving up");
        this.report("gave_up");
        return;
      }
      const delayMs = this.backoff(attempt);
      this.deps.logger.info({ ...context, delayMs }, "status callback failed; will retry");
      this.report("retry");
      await this.sleep(delayMs);
      if (this.closed) return;
    }
  }

  /** Full jitter: retries from many jobs after one outage spread out instead of arriving together. */
  private backoff(attempt: number): number {
    return Math.floor(this.random() * Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** (attempt - 1)));
  }

  private async post(item: Pending): Promise<PostResult> {
    // Signed per attempt, so a retry late in the backoff still falls inside the receiver's tolerance.
    const timestamp = Math.floor(this.now().getTime() / 1000);
    const controller = new AbortController();
    const cancelTimeout = this.setTimer(
      () => controller.abort(new Error(`no answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    );
    this.requests.add(controller);
    try {
      const request = this.fetch(item.url.href, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "user-agent": "otpgate-callbacks/1",
          [TIMESTAMP_HEADER]: String(timestamp),
          [SIGNATURE_HEADER]: signCallback(this.deps.secret, timestamp, item.body),
        },
        body: item.body,
        // A redirect is not followed: it would send the signed state of the job to
        // a URL the caller never gave us (and lets a receiver bounce the gateway's
        // request to internal addresses). A 3xx counts as a refusal.
        redirect: "manual",
        signal: controller.signal,
      });
      // The race holds the timeout even for an injected fetch that ignores its signal.
      const response = await Promise.race([request, rejectOnAbort(controller.signal)]);
      // Only the status matters; cancelling the body frees the connection without reading it.
      void response.body?.cancel().catch(() => undefined);
      return classify(response.status);
    } catch (error) {
      return { kind: "retry", reason: controller.signal.aborted ? reasonOf(controller.signal.reason) : reasonOf(error) };
    } finally {
      cancelTimeout();
      this.requests.delete(controller);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let done = false;
      const wake = () => {
        done = true;
        this.sleepers.delete(wake);
        resolve();
      };
      const cancel = this.setTimer(wake, ms);
      if (!done) this.sleepers.set(wake, cancel); // an injected timer may fire at once
    });
  }

  private report(outcome: CallbackOutcome): void {
    this.counts[outcome]++;
    try {
      this.deps.onOutcome?.(outcome);
    } catch (error) {
      this.deps.logger.error({ err: error }, "callback outcome hook threw");
    }
  }
}

/**
 * http(s) only, without credentials in the URL: fetch refuses those anyway, and
 * retrying a request that can never be built would only burn attempts.
 */
function callbackTarget(value: string): URL | null {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  if (url.username || url.password) return null;
  return url;
}

function classify(status: number): PostResult {
  if (status >= 200 && status < 300) return { kind: "delivered" };
  const reason = `HTTP ${status}`;
  if (status === 408 || status === 429 || status >= 500) return { kind: "retry", reason };
  // Other 4xx, and 3xx (status 0 is an opaque redirect): retrying cannot change the answer.
  return { kind: "refused", reason };
}

function rejectOnAbort(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }));
}

function reasonOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // Node's fetch says only "fetch failed"; the cause has the useful part (ECONNREFUSED, ...).
  const cause = error.cause as { code?: unknown; message?: unknown } | undefined;
  const detail = typeof cause?.code === "string" ? cause.code : typeof cause?.message === "string" ? cause.message : undefined;
  return detail ? `${error.message}: ${detail}` : error.message;
}
