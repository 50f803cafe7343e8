/**
 * The delivery state machine of DESIGN.md, as pure functions over a job value:
 *   queued → dispatched → sent → delivered, or failed / expired (terminal).
 * Each route tried is an attempt; the job's state follows its newest attempt
 * until a route sends it or no route is left.
 */

export type JobState = "queued" | "dispatched" | "sent" | "delivered" | "failed" | "expired";
export type AttemptState = "dispatched" | "sent" | "delivered" | "failed" | "cancelled";
/** `device:<id>`, `twilio`, `africastalking` or `email`. */
export type Route = string;

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
  /** The text to send, sealed (AES-GCM) so the store never holds an OTP code in clear. */
  sealedBody: string;
  subject?: string;
  state: JobState;
  attempts: Attempt[];
  createdAt: string;
  updatedAt: string;
  /** After this the message is useless (the OTP expired): no route may send it. */
  expiresAt: string;
  callbackUrl?: string;
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

function withAttempt(job: Job, route: Route, at: Date, patch: Partial<Attempt> & { state: AttemptState }): Job {
  const attempts = [...job.attempts];
  const index = attempts.findLastIndex((a) => a.route === route);
  if (index < 0) throw new InvalidTransition(`job ${job.id} has no attempt on ${route}`);
  attempts[index] = { ...attempts[index]!, ...patch, at: at.toISOString() };
  return { ...job, attempts, updatedAt: at.toISOString() };
}

/** A route that could not take the job at all (no phone online, all at their rate): noted, and the job moves on. */
export function skipRoute(job: Job, route: Route, at: Date, error: string): Job {
  if (isSettled(job)) throw new InvalidTransition(`job ${job.id} is already ${job.state}`);
  const attempt: Attempt = { route, state: "failed", at: at.toISOString(), error };
  return { ...job, attempts: [...job.attempts, attempt], updatedAt: at.toISOString() };
}

/** Start an attempt on a route. Only from `queued` or after a failed attempt. */
export function dispatch(job: Job, route: Route, at: Date): Job {
  if (job.state !== "queued" && job.state !== "dispatched") {
    throw new InvalidTransition(`cannot dispatch job ${job.id} in state ${job.state}`);
  }
  const open = job.attempts.find((a) => a.state === "dispatched");
  if (open) throw new InvalidTransition(`job ${job.id} is already dispatched on ${open.route}`);
  const attempt: Attempt = { route, state: "dispatched", at: at.toISOString() };
  return { ...job, state: "dispatched", attempts: [...job.attempts, attempt], updatedAt: at.toISOString() };
}

export function markSent(job: Job, route: Route, at: Date, providerMessageId?: string): Job {
  if (job.state !== "dispatched") throw new InvalidTransition(`cannot mark job ${job.id} sent from ${job.state}`);
  const next = withAttempt(job, route, at, { state: "sent", ...(providerMessageId ? { providerMessageId } : {}) });
  return { ...next, state: "sent" };
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
  return { ...withAttempt(job, route, at, { state: "delivered" }), state: "delivered" };
}

/** The attempt failed; the job stays `dispatched` until the next route is tried or `exhaust` ends it. */
export function markAttemptFailed(job: Job, route: Route, at: Date, error: string): Job {
  if (job.state !== "dispatched") throw new InvalidTransition(`cannot fail an attempt of job ${job.id} in ${job.state}`);
  return withAttempt(job, route, at, { state: "failed", error });
}

/** No route is left. */
export function exhaust(job: Job, at: Date, error = "no route delivered the message"): Job {
  if (isTerminal(job)) throw new InvalidTransition(`job ${job.id} is already ${job.state}`);
  return { ...job, state: "failed", updatedAt: at.toISOString(), attempts: closeOpenAttempts(job, at, error) };
}

export function expire(job: Job, at: Date): Job {
  if (isTerminal(job) || job.state === "sent") throw new InvalidTransition(`cannot expire job ${job.id} in ${job.state}`);
  return { ...job, state: "expired", updatedAt: at.toISOString(), attempts: closeOpenAttempts(job, at, "expired") };
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
