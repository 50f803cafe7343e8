/**
 * Carries jobs down their routes: one attempt at a time, each step recorded
 * in the store under this node's lease, until a route takes the message or
 * none is left. Every job it is given ends settled (sent, delivered, failed
 * or expired), on this node or, if this node dies or stops, on another.
 *
 * The run is driven by what the store holds, not by memory: a node that
 * takes a job over (its lease lapsed) calls the same `run`, which carries on
 * from the step the job is in. An open device attempt is waited for until its
 * deadline, since the phone may still ack it on any node; an open cloud
 * attempt whose node died is counted as failed (the provider may have sent
 * it: one of the doubles nobody can tell apart) and the next route is tried.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import type { FastifyBaseLogger } from "fastify";
import type { RouteName } from "../config/config.js";
import type { Metrics } from "../metrics/metrics.js";
import { ProviderError, type SendReceipt } from "../providers/provider.js";
import { redactContacts } from "../security/redact.js";
import type { Sealer } from "../security/sealing.js";
import type { Store } from "../store/store.js";
import * as jobState from "./job-state.js";
import type { Job, Lease } from "./job-state.js";
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
  /** The state of the circuit breaker around it, when it has one (route-breaker.ts). */
  circuit?(): "closed" | "open" | "half_open";
  /**
   * The route's success is written by someone else (the phone's `sent` ack,
   * applied where it lands): the dispatcher only reads it back.
   */
  outcomeRecordedByAck?: boolean;
  /**
   * Takes an attempt back from where it went (a cancel to the phone), before
   * the job moves on, so it is not sent twice.
   */
  takeBack?(job: Job, target: string): Promise<void>;
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
  /** How long past a step's own deadline this node's lease lasts: the time others wait before taking over. */
  leaseGraceMs: number;
  /** How often a job waited on elsewhere (an open device attempt taken over) is read again. */
  pollMs?: number;
  /** Told of every state change of a job (status callbacks). */
  onStateChange?: (job: Job) => void;
  now?: () => Date;
}

type AttemptOutcome = { ok: true; receipt: SendReceipt } | { ok: false; error: string; abandoned?: boolean };

/** Thrown inside a store change when this node no longer holds the job. */
class LeaseLost extends jobState.InvalidTransition {}

export class Dispatcher {
  /** This process's lease token: a restarted node is another owner. */
  readonly owner = `node-${randomUUID()}`;
  private readonly running = new Map<string, Promise<void>>();
  private readonly now: () => Date;
  /** Set by handBack(): runs stop at their next step and release their leases. */
  private stopping = false;
  private readonly stop = new AbortController();
  private readonly wakers = new Map<string, Set<() => void>>();
  /** A slow sweep is not overlapped by the next one. */
  private sweeping = false;

  constructor(private readonly deps: DispatcherDeps) {
    this.now = deps.now ?? (() => new Date());
    // Every attempt and wait under way listens for the stop: as many as maxInFlight.
    setMaxListeners(0, this.stop.signal);
  }

  routesFor(job: Pick<Job, "channel" | "to" | "email" | "emailFallback">): DeliveryRoute[] {
    return planRoutes(this.deps.order, this.deps.routes, job);
  }

  configuredRoutes(): string[] {
    return this.deps.order.filter((name) => this.deps.routes.some((route) => route.name === name));
  }

  /** False when this node already has `maxInFlight` deliveries under way, or is stopping: callers answer 503. */
  hasCapacity(): boolean {
    return !this.stopping && this.running.size < this.deps.maxInFlight;
  }

  /** The lease a new job is created with, so no other node starts it while this one does. */
  newLease(): Lease {
    return { owner: this.owner, until: new Date(this.now().getTime() + this.deps.leaseGraceMs).toISOString() };
  }

  /** Starts carrying a job in the background; the caller answers its client at once. */
  submit(jobId: string): void {
    if (this.stopping || this.running.has(jobId)) return;
    const run = this.run(jobId)
      .catch((error: unknown) => this.deps.logger.error({ err: error, jobId }, "delivery crashed; the job is taken over when its lease lapses"))
      .finally(() => this.running.delete(jobId));
    this.running.set(jobId, run);
  }

  /** Something happened to this job elsewhere (an ack on another node): look again now. */
  jobChanged(jobId: string): void {
    for (const wake of this.wakers.get(jobId) ?? []) wake();
  }

  /**
   * Takes over jobs whose lease lapsed (a node died, or stopped and handed
   * them back) and those past their expiry. Every node runs this; the lease
   * compare-and-set lets only one of them win each job.
   */
  async sweep(limit = 200): Promise<number> {
    if (this.stopping || this.sweeping) return 0;
    this.sweeping = true;
    try {
      return await this.takeOver(limit);
    } finally {
      this.sweeping = false;
    }
  }

  private async takeOver(limit: number): Promise<number> {
    const ids = await this.deps.store.dueJobIds(this.now().getTime(), limit);
    let taken = 0;
    for (const id of ids) {
      if (this.running.has(id) || !this.hasCapacity()) continue;
      const { applied } = await this.change(id, (job) => jobState.lease(job, this.owner, this.leaseFor(0), this.now()), { claim: true });
      if (!applied) continue;
      taken++;
      this.deps.metrics.jobsTakenOver.inc();
      this.submit(id);
    }
    if (taken > 0) this.deps.logger.warn({ taken }, "took over jobs whose lease lapsed");
    return taken;
  }

  /** Waits for every job this node carries to settle or be handed back (tests, shutdown). */
  async drain(): Promise<void> {
    while (this.running.size > 0) await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Graceful stop: no new work, no new attempts; runs waiting on a phone let
   * go at once and hand their job back with its attempt still open (whoever
   * takes it waits for the same phone until the same deadline, so nothing is
   * sent twice); cloud calls under way finish first, up to `waitMs`.
   */
  async handBack(waitMs: number): Promise<void> {
    this.stopping = true;
    this.stop.abort();
    await Promise.race([this.drain(), new Promise((resolve) => setTimeout(resolve, waitMs).unref())]);
  }

  private leaseFor(stepMs: number): Date {
    return new Date(this.now().getTime() + stepMs + this.deps.leaseGraceMs);
  }

  /**
   * Read-modify-write under this node's lease: the change applies only while
   * the job is still leased to this node, and renews the lease for `stepMs`.
   * Returns the job as stored afterwards and whether this change was applied.
   */
  private async change(
    jobId: string,
    change: (job: Job) => Job | null,
    options: { stepMs?: number; claim?: boolean; anyOwner?: boolean } = {},
  ): Promise<{ job: Job | null; applied: boolean; lost: boolean }> {
    let before: Job["state"] | undefined;
    let applied = false;
    let lost = false;
    const after = await this.deps.store.updateJob(jobId, (job) => {
      before = job.state;
      applied = false;
      lost = false;
      try {
        if (!options.claim && !options.anyOwner && !jobState.holdsLease(job, this.owner)) throw new LeaseLost(`job ${jobId} is no longer leased to this node`);
        const next = change(job);
        if (!next) return null;
        applied = true;
        if (options.claim || jobState.isSettled(next)) return next;
        return { ...next, lease: { owner: this.owner, until: this.leaseFor(options.stepMs ?? 0).toISOString() } };
      } catch (error) {
        if (error instanceof LeaseLost) lost = true;
        if (error instanceof jobState.InvalidTransition) return null;
        throw error;
      }
    });
    if (after && applied && before !== undefined && after.state !== before) this.deps.onStateChange?.(after);
    return { job: after, applied, lost };
  }

  /**
   * A provider took the message: that is a fact, whatever happened to the
   * lease meanwhile, and losing it would make the next route send it again.
   * So it is written without the lease check, and retried while the store is
   * away (for up to a minute) instead of ending the run.
   */
  private async recordCloudSent(jobId: string, target: string, providerMessageId?: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.change(jobId, (current) => jobState.markSent(current, target, this.now(), providerMessageId), { anyOwner: true });
        return;
      } catch (error) {
        // 250 ms doubling to 5 s: about a minute in all.
        if (attempt >= 16) throw error;
        this.deps.logger.warn({ err: error, jobId }, "could not record a cloud send yet; retrying");
        await new Promise((resolve) => setTimeout(resolve, Math.min(250 * 2 ** attempt, 5_000)));
      }
    }
  }

  /** Lets go of the job: another node (or this one restarted) takes it over at once. */
  private async release(jobId: string): Promise<void> {
    await this.deps.store.updateJob(jobId, (job) => {
      try {
        return jobState.releaseLease(job, this.owner, this.now());
      } catch (error) {
        if (error instanceof jobState.InvalidTransition) return null;
        throw error;
      }
    });
  }

  async run(jobId: string): Promise<void> {
    const first = await this.deps.store.getJob(jobId);
    if (!first || jobState.isSettled(first)) return;
    const routes = this.routesFor(first);
    let text: string | undefined;

    for (;;) {
      if (this.stopping) return this.release(jobId);
      const job = await this.deps.store.getJob(jobId);
      if (!job || jobState.isSettled(job) || !jobState.holdsLease(job, this.owner)) return;
      if (this.now().getTime() >= Date.parse(job.expiresAt)) {
        await this.change(jobId, (current) => jobState.expire(current, this.now()));
        return;
      }

      const open = job.attempts.find((a) => a.state === "dispatched");
      if (open) {
        if (!(await this.resumeOpenAttempt(job, open.route))) return;
        continue;
      }

      const tried = new Set(job.attempts.map((a) => jobState.routeKind(a.route)));
      const route = routes.find((r) => !tried.has(r.name));
      if (!route) {
        await this.change(jobId, (current) => jobState.exhaust(current, this.now()));
        return;
      }

      let target: string = route.name;
      if (route.prepare) {
        try {
          target = await route.prepare(job);
        } catch (error) {
          // Only the route's own "cannot take it now" moves on; anything else (the store away) ends
          // this run, and the job is taken over once its lease lapses, the route still untried.
          if (!(error instanceof ProviderError)) throw error;
          const reason = describeFailure(error);
          this.deps.metrics.sends.inc({ route: route.name, outcome: "skipped" });
          this.deps.logger.info({ jobId, route: route.name, reason }, "route cannot take the job now, trying the next one");
          const { applied } = await this.change(jobId, (current) => jobState.skipRoute(current, route.name, this.now(), reason));
          if (!applied) return;
          continue;
        }
      }
      if (this.stopping) return this.release(jobId);
      if (text === undefined) {
        try {
          text = this.deps.sealer.open(job.sealedBody);
        } catch {
          // Sealed under another OTP_SECRET, or damaged: no route can send it.
          await this.change(jobId, (current) => jobState.exhaust(current, this.now(), "the message cannot be unsealed (was OTP_SECRET changed?)"));
          return;
        }
      }

      const timeoutMs = route.attemptTimeoutMs ?? this.deps.attemptTimeoutMs;
      const deadline = new Date(this.now().getTime() + timeoutMs);
      // Only the run whose dispatch was applied may send: a second run of the same job stops here.
      const { job: dispatched, applied } = await this.change(
        jobId,
        (current) => jobState.dispatch(current, target, this.now(), route.outcomeRecordedByAck ? deadline : undefined),
        { stepMs: timeoutMs },
      );
      if (!dispatched || !applied) return;

      const outcome = await this.attempt(route, target, dispatched, text, timeoutMs);
      if (outcome.ok) {
        if (!route.outcomeRecordedByAck) {
          await this.recordCloudSent(jobId, target, outcome.receipt.providerMessageId);
        }
        // A device's `sent` was written by the ack; the next loop reads it back and ends.
        continue;
      }
      if (outcome.abandoned && route.outcomeRecordedByAck) {
        // Stopping: leave the attempt open, with its deadline, for whoever takes the job over.
        return this.release(jobId);
      }
      await this.failAttempt(jobId, route, target, outcome.error);
    }
  }

  /**
   * An attempt this run did not start is still open: the node that started it
   * died or stopped. A device attempt is waited for until its deadline (the
   * phone's ack is applied wherever it lands); past it, or for a cloud
   * attempt, it is taken back and counted as failed. False when the run must stop.
   */
  private async resumeOpenAttempt(job: Job, target: string): Promise<boolean> {
    const route = this.deps.routes.find((r) => r.name === jobState.routeKind(target));
    const deadline = job.attemptDeadline ? Date.parse(job.attemptDeadline) : 0;
    if (route?.outcomeRecordedByAck && deadline > this.now().getTime()) {
      // Hold the job for as long as we wait, then look again.
      const { applied } = await this.change(job.id, (current) => current, { stepMs: deadline - this.now().getTime() });
      if (!applied) return false;
      await this.waitForChange(job.id, deadline);
      if (!this.stopping) return true;
      await this.release(job.id);
      return false;
    }
    const reason = route?.outcomeRecordedByAck ? "device:no_sent_ack: the phone did not report the SMS sent before its deadline" : "node_lost: the node sending it stopped mid-attempt";
    this.deps.logger.warn({ jobId: job.id, route: target, reason }, "resuming a job: its open attempt failed");
    if (route) await this.failAttempt(job.id, route, target, reason);
    else await this.change(job.id, (current) => jobState.markAttemptFailed(current, target, this.now(), reason));
    return true;
  }

  private async failAttempt(jobId: string, route: DeliveryRoute, target: string, error: string): Promise<void> {
    this.deps.logger.warn({ jobId, route: target, error }, "route failed, trying the next one");
    const job = await this.deps.store.getJob(jobId);
    // An ack may have settled the job meanwhile (a late `sent` racing the deadline).
    if (!job || jobState.isSettled(job)) return;
    // Taken back before the job moves on, so the phone does not send it as well.
    if (route.takeBack) await route.takeBack(job, target);
    await this.change(jobId, (current) => jobState.markAttemptFailed(current, target, this.now(), error));
  }

  /** Resolves at `until`, when jobChanged(jobId) is called, on a poll tick, or when stopping. */
  private waitForChange(jobId: string, until: number): Promise<void> {
    return new Promise((resolve) => {
      const wakers = this.wakers.get(jobId) ?? new Set<() => void>();
      this.wakers.set(jobId, wakers);
      const done = () => {
        clearTimeout(timer);
        clearInterval(poll);
        this.stop.signal.removeEventListener("abort", done);
        wakers.delete(done);
        if (wakers.size === 0 && this.wakers.get(jobId) === wakers) this.wakers.delete(jobId);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, until - this.now().getTime()));
      const poll = setInterval(() => {
        this.deps.store.getJob(jobId).then(
          (job) => (!job || jobState.isSettled(job) || !job.attempts.some((a) => a.state === "dispatched") ? done() : undefined),
          () => {},
        );
      }, this.deps.pollMs ?? 1_000);
      wakers.add(done);
      this.stop.signal.addEventListener("abort", done);
      if (this.stop.signal.aborted) done();
    });
  }

  private async attempt(route: DeliveryRoute, target: string, job: Job, text: string, timeoutMs: number): Promise<AttemptOutcome> {
    const started = performance.now();
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    // A stopping node lets go of phones at once; cloud calls under way are allowed to finish.
    const onStop = () => controller.abort("stopping");
    if (route.outcomeRecordedByAck) {
      this.stop.signal.addEventListener("abort", onStop);
      // The stop may have come while this run awaited its dispatch: a listener added now would never fire.
      if (this.stop.signal.aborted) onStop();
    }
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
      if (controller.signal.reason === "stopping") return { ok: false, error: "stopping", abandoned: true };
      const code = error instanceof ProviderError ? error.code : "error";
      this.observe(route.name, code === "timeout" ? "timeout" : "failed", started);
      return { ok: false, error: describeFailure(error) };
    } finally {
      clearTimeout(timer);
      this.stop.signal.removeEventListener("abort", onStop);
      controller.abort();
    }
  }

  private observe(route: string, outcome: string, started: number): void {
    this.deps.metrics.sends.inc({ route, outcome });
    this.deps.metrics.deliveryDuration.observe({ route, outcome }, (performance.now() - started) / 1000);
  }
}

/** Logged and kept with the attempt: a vendor's text may quote the number or the address, so both are masked. */
function describeFailure(error: unknown): string {
  const code = error instanceof ProviderError ? error.code : "error";
  const message = error instanceof Error ? error.message : String(error);
  return redactContacts(`${code}: ${message}`);
}
