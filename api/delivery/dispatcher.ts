/**
 * Runs a job down its routes: one attempt at a time, recorded in the store,
 * until a route takes the message or none is left. Every job it is given ends
 * settled (sent, delivered, failed or expired).
 */
import type { FastifyBaseLogger } from "fastify";
import type { RouteName } from "../config/config.js";
import type { Metrics } from "../metrics/metrics.js";
import { ProviderError, type SendReceipt } from "../providers/provider.js";
import type { Sealer } from "../security/sealing.js";
import type { Store } from "../store/store.js";
import * as jobState from "./job-state.js";
import type { Job } from "./job-state.js";
import { planRoutes, type RouteCapability } from "./route-plan.js";

export interface DeliveryRoute extends RouteCapability {
  /**
   * Picks where on this route the job goes, e.g. `device:<id>`; the attempt is
   * recorded under that name. Throws ProviderError when the route cannot take
   * the job now (no phone online, every phone at its rate): the job moves on.
   */
  prepare?(job: Job): Promise<string>;
  /** Hands the message to the route once. Throws ProviderError (or anything, taken as transient). */
  deliver(job: Job, text: string, signal: AbortSignal, target: string): Promise<SendReceipt>;
  /** This route's own bound for one attempt, when the default does not fit (a phone's ack deadlines). */
  attemptTimeoutMs?: number;
}

export interface DispatcherDeps {
  store: Store;
  routes: DeliveryRoute[];
  order: readonly RouteName[];
  sealer: Sealer;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  /** Upper bound for one route attempt. */
  attemptTimeoutMs: number;
  /** Deliveries under way at once on this node; past it, new work is refused (backpressure). */
  maxInFlight: number;
  /** Told of every state change of a job (status callbacks). */
  onStateChange?: (job: Job) => void;
  now?: () => Date;
}

export class Dispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly now: () => Date;

  constructor(private readonly deps: DispatcherDeps) {
    this.now = deps.now ?? (() => new Date());
  }

  routesFor(job: Pick<Job, "channel" | "to" | "email" | "emailFallback">): DeliveryRoute[] {
    return planRoutes(this.deps.order, this.deps.routes, job);
  }

  configuredRoutes(): string[] {
    return this.deps.order.filter((name) => this.deps.routes.some((route) => route.name === name));
  }

  /** False when this node already has `maxInFlight` deliveries under way: callers answer 503. */
  hasCapacity(): boolean {
    return this.inFlight.size < this.deps.maxInFlight;
  }

  /** Starts delivery in the background; the caller answers its client at once. */
  submit(jobId: string): void {
    const run = this.run(jobId)
      .catch((error: unknown) => this.deps.logger.error({ err: error, jobId }, "delivery crashed"))
      .finally(() => this.inFlight.delete(run));
    this.inFlight.add(run);
  }

  /**
   * Expires jobs that passed their deadline without settling: a node that
   * crashed mid-job leaves them behind. Any node may run this; the store's
   * compare-and-set keeps two reapers from both acting.
   */
  async reapOverdue(limit = 500): Promise<number> {
    const ids = await this.deps.store.overdueJobIds(this.now().getTime(), limit);
    let reaped = 0;
    for (const id of ids) {
      let expiredNow = false;
      const job = await this.update(id, (current) => {
        if (jobState.isSettled(current)) return null;
        expiredNow = true;
        return jobState.expire(current, this.now());
      });
      if (expiredNow && job?.state === "expired") {
        reaped++;
        this.recordSettled(job);
      }
    }
    if (reaped > 0) this.deps.logger.warn({ reaped }, "expired jobs left unsettled past their deadline");
    return reaped;
  }

  /** Waits for every submitted job to settle (graceful shutdown, tests). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  /** The job as stored afterwards, and whether this change was the one applied (a refused transition is not). */
  private async change(jobId: string, change: (job: Job) => Job | null): Promise<{ job: Job | null; applied: boolean }> {
    let before: Job["state"] | undefined;
    let applied = false;
    const after = await this.deps.store.updateJob(jobId, (job) => {
      before = job.state;
      try {
        const next = change(job);
        applied = next !== null;
        return next;
      } catch (error) {
        if (error instanceof jobState.InvalidTransition) {
          applied = false;
          return null;
        }
        throw error;
      }
    });
    if (after && applied && before !== undefined && after.state !== before) this.deps.onStateChange?.(after);
    return { job: after, applied };
  }

  private async update(jobId: string, change: (job: Job) => Job | null): Promise<Job | null> {
    return (await this.change(jobId, change)).job;
  }

  async run(jobId: string): Promise<void> {
    const { store, logger } = this.deps;
    const initial = await store.getJob(jobId);
    if (!initial || jobState.isSettled(initial)) return;
    const text = this.deps.sealer.open(initial.sealedBody);

    for (const route of this.routesFor(initial)) {
      if (this.now().getTime() >= Date.parse(initial.expiresAt)) {
        const expired = await this.update(jobId, (job) => jobState.expire(job, this.now()));
        this.recordSettled(expired);
        return;
      }
      let target: string = route.name;
      if (route.prepare) {
        try {
          target = await route.prepare(initial);
        } catch (error) {
          const reason = describeFailure(error);
          this.deps.metrics.sends.inc({ route: route.name, outcome: "skipped" });
          logger.info({ jobId, route: route.name, reason }, "route cannot take the job now, trying the next one");
          const skipped = await this.update(jobId, (job) => jobState.skipRoute(job, route.name, this.now(), reason));
          if (!skipped || jobState.isSettled(skipped)) return;
          continue;
        }
      }
      // Only the run whose dispatch was applied may send: a second run of the same job stops here.
      const { job: dispatched, applied } = await this.change(jobId, (job) => jobState.dispatch(job, target, this.now()));
      if (!dispatched || !applied) return;

      const outcome = await this.attempt(route, target, dispatched, text);
      if (outcome.ok) {
        const sent = await this.update(jobId, (job) => jobState.markSent(job, target, this.now(), outcome.receipt.providerMessageId));
        this.recordSettled(sent);
        return;
      }
      logger.warn({ jobId, route: target, error: outcome.error }, "route failed, trying the next one");
      const failed = await this.update(jobId, (job) => jobState.markAttemptFailed(job, target, this.now(), outcome.error));
      // An ack may have settled the job meanwhile (a late `sent` racing the deadline).
      if (failed && jobState.isSettled(failed)) return;
    }
    const failed = await this.update(jobId, (job) => jobState.exhaust(job, this.now()));
    this.recordSettled(failed);
  }

  private async attempt(
    route: DeliveryRoute,
    target: string,
    job: Job,
    text: string,
  ): Promise<{ ok: true; receipt: SendReceipt } | { ok: false; error: string }> {
    const started = performance.now();
    const timeoutMs = route.attemptTimeoutMs ?? this.deps.attemptTimeoutMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      // The race makes the timeout hold even for a route that ignores its signal.
      const receipt = await Promise.race([
        route.deliver(job, text, controller.signal, target),
        new Promise<never>((_, reject) =>
          controller.signal.addEventListener("abort", () => reject(new ProviderError(`no answer within ${timeoutMs} ms`, "transient", "timeout"))),
        ),
      ]);
      this.observe(route.name, "sent", started);
      return { ok: true, receipt };
    } catch (error) {
      const code = error instanceof ProviderError ? error.code : "error";
      this.observe(route.name, code === "timeout" ? "timeout" : "failed", started);
      return { ok: false, error: describeFailure(error) };
    } finally {
      clearTimeout(timer);
      controller.abort();
    }
  }

  private observe(route: string, outcome: string, started: number): void {
    this.deps.metrics.sends.inc({ route, outcome });
    this.deps.metrics.deliveryDuration.observe({ route, outcome }, (performance.now() - started) / 1000);
  }

  private recordSettled(job: Job | null): void {
    if (job && jobState.isSettled(job)) this.deps.metrics.jobsSettled.inc({ kind: job.kind, state: job.state });
  }
}

function describeFailure(error: unknown): string {
  const code = error instanceof ProviderError ? error.code : "error";
  const message = error instanceof Error ? error.message : String(error);
  return `${code}: ${message}`;
}
