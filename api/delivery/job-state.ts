/**
 * The delivery state machine of DESIGN.md, as pure functions over a job value:
 *   queued → dispatched → sent → delivered, or failed / expired (terminal).
 * Each route tried is an attempt; the job's state follows its newest attempt
 * until a route sends it or no route is left.
 */

export const JOB_STATES = ["queued", "dispatched", "sent", "delivered", "failed", "expired"] as const;
export const ATTEMPT_STATES = ["dispatched", "sent", "delivered", "failed", "cancelled"] as const;
export type JobState = (typeof JOB_STATES)[number];
export type AttemptState = (typeof ATTEMPT_STATES)[number];
/** `device:<id>`, `twilio`, `africastalking` or `email`. */
export type Route = string;

const DEVICE_PREFIX = "device:";

/** The route of an attempt on one phone. */
export function deviceTarget(deviceId: string): Route {
  return DEVICE_PREFIX + deviceId;
}

/** The phone an attempt's route names, or null for a cloud route. */
export function deviceOf(route: Route): string | null {
  return route.startsWith(DEVICE_PREFIX) ? route.slice(DEVICE_PREFIX.length) : null;
}

/** The route kind (`device`, `twilio`, …) an attempt's route belongs to. */
export function routeKind(route: Route): string {
  return deviceOf(route) === null ? route : "device";
}

/**
 * Who carries a job on, and until when. Every step a node takes renews it;
 * once `until` has passed any node may take the job over and carry it on
 * from the step it was in (a node that died, or one that handed it back).
 */
export interface Lease {
  /** A token per claim, so a node never mistakes another claim (or its own earlier one) for its own. */
  owner: string;
  until: string;
}

export interface Attempt {
  route: Route;
  state: AttemptState;
  at: string;
  error?: string;
  providerMessageId?: string;
  /** A phone said it had the job (its `received` ack). */
  receivedAt?: string;
  /** An ack that came after the gateway had given up on this attempt: recorded, never acted on. */
  late?: { status: string; at: string; error?: string };
}

export interface Job {
  id: string;
  kind: "otp" | "message";
  /** The OTP this job delivers, for kind `otp`. */
  otpId?: string;
  channel: "sms" | "email";
  to?: string;
  email?: string;
  /** An SMS job that may fall back to email when every SMS route fails (channel `auto`). */
  emailFallback?: boolean;
  /** The text to send, sealed (AES-GCM) so the store never holds an OTP code in clear; "" once the job is settled. */
  sealedBody: string;
  subject?: string;
  state: JobState;
  attempts: Attempt[];
  createdAt: string;
  updatedAt: string;
  /** After this the message is useless (the OTP expired): no route may send it. */
  expiresAt: string;
  callbackUrl?: string;
  lease?: Lease;
  /**
   * For an open device attempt: when the gateway stops waiting for the
   * phone's `sent`. Kept with the job so a node that takes it over waits for
   * the same deadline instead of starting a second send.
   */
  attemptDeadline?: string;
}

export type NewJob = Omit<Job, "state" | "attempts" | "createdAt" | "updatedAt" | "lease" | "attemptDeadline">;

/** A job as accepted, not yet tried anywhere, held by `lease` so no other node starts it meanwhile. */
export function newJob(fields: NewJob, at: Date, lease?: Lease): Job {
  return { ...fields, state: "queued", attempts: [], createdAt: at.toISOString(), updatedAt: at.toISOString(), ...(lease ? { lease } : {}) };
}

/**
 * When a job needs another node to act on it: when its lease lapses (its
 * owner sees to its expiry itself), or at once for a job nobody holds; null
 * once it is settled. Stores index jobs by it.
 */
export function dueAt(job: Job): number | null {
  if (isSettled(job)) return null;
  const leaseEnd = Date.parse(job.lease?.until ?? job.createdAt);
  return Number.isFinite(leaseEnd) ? leaseEnd : 0;
}

/** Claims or renews the lease: only when it is free (lapsed) or already `owner`'s. */
export function lease(job: Job, owner: string, until: Date, now: Date): Job {
  if (isSettled(job)) throw new InvalidTransition(`job ${job.id} is already ${job.state}`);
  if (job.lease && job.lease.owner !== owner && Date.parse(job.lease.until) > now.getTime()) {
    throw new InvalidTransition(`job ${job.id} is leased to another node until ${job.lease.until}`);
  }
  return { ...job, lease: { owner, until: until.toISOString() } };
}

/** Hands the job back: any node may take it over at once. */
export function releaseLease(job: Job, owner: string, now: Date): Job {
  if (isSettled(job) || job.lease?.owner !== owner) throw new InvalidTransition(`job ${job.id} is not leased to ${owner}`);
  return { ...job, lease: { owner, until: now.toISOString() } };
}

export function holdsLease(job: Job, owner: string): boolean {
  return job.lease?.owner === owner;
}

export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(["delivered", "failed", "expired"]);

export function isTerminal(job: Pick<Job, "state">): boolean {
  return TERMINAL_STATES.has(job.state);
}

/**
 * Nothing more for the gateway to do. `sent` counts: a cloud provider that took
 * the message gives no further signal unless a delivery receipt arrives later.
 */
export function isSettled(job: Pick<Job, "state">): boolean {
  return job.state === "sent" || isTerminal(job);
}

export class InvalidTransition extends Error {}

/**
 * A settled job is never sent again, so its text (an OTP's holds the code) is
 * not kept: the record stays for the history (HISTORY_RETENTION_DAYS), the
 * body does not, even sealed.
 */
function withoutBody(job: Job): Job {
  return { ...job, sealedBody: "" };
}

/** The open attempt's deadline goes with it once the attempt is over. */
function closed(job: Job): Job {
  const { attemptDeadline: _deadline, ...rest } = job;
  return rest;
}

function withAttempt(job: Job, route: Route, at: Date, patch: Partial<Attempt> & { state: AttemptState }): Job {
  const attempts = [...job.attempts];
  const index = attempts.findLastIndex((a) => a.route === route);
  if (index < 0) throw new InvalidTransition(`job ${job.id} has no attempt on ${route}`);
  attempts[index] = { ...attempts[index]!, ...patch, at: at.toISOString() };
  return closed({ ...job, attempts, updatedAt: at.toISOString() });
}

/** A route that could not take the job at all (no phone online, all at their rate): noted, and the job moves on. */
export function skipRoute(job: Job, route: Route, at: Date, error: string): Job {
  if (isSettled(job)) throw new InvalidTransition(`job ${job.id} is already ${job.state}`);
  const attempt: Attempt = { route, state: "failed", at: at.toISOString(), error };
  return { ...job, attempts: [...job.attempts, attempt], updatedAt: at.toISOString() };
}

/**
 * Start an attempt on a route. Only from `queued` or after a failed attempt.
 * `deadline`: when the gateway stops waiting for this attempt (device routes).
 */
export function dispatch(job: Job, route: Route, at: Date, deadline?: Date): Job {
  if (job.state !== "queued" && job.state !== "dispatched") {
    throw new InvalidTransition(`cannot dispatch job ${job.id} in state ${job.state}`);
  }
  const open = job.attempts.find((a) => a.state === "dispatched");
  if (open) throw new InvalidTransition(`job ${job.id} is already dispatched on ${open.route}`);
  const attempt: Attempt = { route, state: "dispatched", at: at.toISOString() };
  return {
    ...closed(job),
    state: "dispatched",
    attempts: [...job.attempts, attempt],
    updatedAt: at.toISOString(),
    ...(deadline ? { attemptDeadline: deadline.toISOString() } : {}),
  };
}

export function markSent(job: Job, route: Route, at: Date, providerMessageId?: string): Job {
  if (job.state !== "dispatched") throw new InvalidTransition(`cannot mark job ${job.id} sent from ${job.state}`);
  const next = withAttempt(job, route, at, { state: "sent", ...(providerMessageId ? { providerMessageId } : {}) });
  return withoutBody({ ...next, state: "sent" });
}

/** The phone has the job. Informational: the attempt stays dispatched until it is sent or fails. */
export function markReceived(job: Job, route: Route, at: Date): Job {
  const attempt = job.attempts.findLast((a) => a.route === route);
  // Acks are handled concurrently, so `received` may land after `sent`; it is still worth recording.
  if (!attempt || attempt.state === "failed" || attempt.state === "cancelled" || attempt.receivedAt) {
    throw new InvalidTransition(`nothing to receive on ${route}`);
  }
  return { ...job, attempts: job.attempts.map((a) => (a === attempt ? { ...a, receivedAt: at.toISOString() } : a)), updatedAt: at.toISOString() };
}

/** An ack for an attempt the gateway already gave up on. Kept for the record; first one wins. */
export function recordLateAck(job: Job, route: Route, late: { status: string; at: string; error?: string }): Job {
  const attempt = job.attempts.findLast((a) => a.route === route);
  if (!attempt || (attempt.state !== "failed" && attempt.state !== "cancelled") || attempt.late?.status === late.status) {
    throw new InvalidTransition(`no late ack to record on ${route}`);
  }
  return { ...job, attempts: job.attempts.map((a) => (a === attempt ? { ...a, late } : a)) };
}

export function markDelivered(job: Job, route: Route, at: Date): Job {
  if (job.state !== "sent" && job.state !== "dispatched") {
    throw new InvalidTransition(`cannot mark job ${job.id} delivered from ${job.state}`);
  }
  return withoutBody({ ...withAttempt(job, route, at, { state: "delivered" }), state: "delivered" });
}

/** The attempt failed; the job stays `dispatched` until the next route is tried or `exhaust` ends it. */
export function markAttemptFailed(job: Job, route: Route, at: Date, error: string): Job {
  if (job.state !== "dispatched") throw new InvalidTransition(`cannot fail an attempt of job ${job.id} in ${job.state}`);
  return withAttempt(job, route, at, { state: "failed", error });
}

/** No route is left. */
export function exhaust(job: Job, at: Date, error = "no route delivered the message"): Job {
  if (isTerminal(job)) throw new InvalidTransition(`job ${job.id} is already ${job.state}`);
  return withoutBody(closed({ ...job, state: "failed", updatedAt: at.toISOString(), attempts: closeOpenAttempts(job, at, error) }));
}

export function expire(job: Job, at: Date): Job {
  if (isTerminal(job) || job.state === "sent") throw new InvalidTransition(`cannot expire job ${job.id} in ${job.state}`);
  return withoutBody(closed({ ...job, state: "expired", updatedAt: at.toISOString(), attempts: closeOpenAttempts(job, at, "expired") }));
}

function closeOpenAttempts(job: Job, at: Date, error: string): Attempt[] {
  return job.attempts.map((a) => (a.state === "dispatched" ? { ...a, state: "failed", at: at.toISOString(), error } : a));
}

/** The attempt a caller should show as "the" delivery: the newest one. */
export function currentAttempt(job: Job): Attempt | undefined {
  return job.attempts.at(-1);
}

/** The summary shown to API callers: the job's state and the route it is on (or ended on). */
export interface Delivery {
  state: JobState;
  route: Route | null;
}

export function deliveryOf(job: Job | null): Delivery {
  return { state: job?.state ?? "queued", route: (job && currentAttempt(job)?.route) ?? null };
}
