/**
 * The history listing (GET /v1/messages, GET /v1/otp) as every store shares
 * it: the query, the keyset position a page ends at, how long a record is
 * kept, and the matching rules. The memory store applies these functions
 * directly, SQLite the same rules in SQL over indexed columns, Redis these
 * functions over a sorted-set index; one contract suite (test/store/history-contract.test.ts)
 * holds all three to the same cases.
 */
import { deliveryOf, type Job, type JobState } from "../delivery/job-state.js";
import type { OtpRecord, OtpStatus } from "../otp/rules.js";

/**
 * A place in the newest-first order: by creation time, then by id (UTF-8
 * bytes, as SQLite and Redis compare them), so records made in the same
 * millisecond still have one fixed order and a page boundary never splits or
 * repeats them.
 */
export interface HistoryPosition {
  createdAt: number;
  id: string;
}

export interface HistoryQuery {
  /** At most this many ids in the page. */
  limit: number;
  /** Continue below this position (the previous page's `next`). */
  after?: HistoryPosition;
  /** createdAt ≥ since (epoch ms). */
  since?: number;
  /** createdAt < until (epoch ms). */
  until?: number;
  /** The job's state: a message's, or the delivery state of an OTP's job. */
  states?: readonly JobState[];
  /** OTPs only: the status as GET /v1/otp/:id shows it (otpStatusAt). */
  statuses?: readonly OtpStatus[];
  /** The route the job is on or ended on: exact (`device:dev_…`, `twilio`), or `device` for any phone. */
  route?: string;
}

export interface HistoryPage {
  ids: string[];
  /**
   * Where the next page starts, or null when nothing further matches. A page
   * may hold fewer than `limit` ids while `next` is set: a store may bound
   * how many records one call looks at (Redis, when filters are rare).
   */
  next: HistoryPosition | null;
}

export type HistoryKind = "message" | "otp";

/**
 * When a record may be forgotten: what its caller asked for (the OTP rules,
 * a message's lifetime) or the history retention after its creation,
 * whichever is later, so single-item lookups and the history agree.
 */
export function historyKeepUntil(createdAt: number, callerKeepUntil: number, retentionMs: number): number {
  return Math.max(callerKeepUntil, createdAt + retentionMs);
}

/** The route a job is on or ended on: its view's `delivery.route`. */
export function routeOf(job: Job): string | null {
  return deliveryOf(job).route;
}

/** The route filter: `device` stands for any phone, anything else must match exactly. */
export function routeMatches(route: string | null, wanted: string): boolean {
  if (route === null) return false;
  return wanted === "device" ? route.startsWith("device:") : route === wanted;
}

/**
 * The state and route filters against a job, read as its view shows it
 * (deliveryOf): a missing job (an OTP's job already gone) is queued with no route.
 */
export function jobMatches(job: Job | null, query: Pick<HistoryQuery, "states" | "route">): boolean {
  const { state, route } = deliveryOf(job);
  if (query.states && !query.states.includes(state)) return false;
  if (query.route !== undefined && !routeMatches(route, query.route)) return false;
  return true;
}

/** An OTP's status as GET /v1/otp/:id reports it: an unverified code past its expiry is expired before anyone checks it. */
export function otpStatusAt(record: Pick<OtpRecord, "status" | "expiresAt">, now: number): OtpStatus {
  return record.status === "pending" && now >= record.expiresAt ? "expired" : record.status;
}

/** Byte order of the UTF-8 encodings, the order SQLite (BINARY) and Redis (lex) use. */
export function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/** Newest first: negative when `a` comes before `b` in a listing. */
export function newestFirst(a: HistoryPosition, b: HistoryPosition): number {
  return b.createdAt - a.createdAt || compareIds(b.id, a.id);
}

/** Whether a record at `position` lies inside the query's time window and below its cursor. */
export function inRange(position: HistoryPosition, query: Pick<HistoryQuery, "after" | "since" | "until">): boolean {
  if (query.since !== undefined && position.createdAt < query.since) return false;
  if (query.until !== undefined && position.createdAt >= query.until) return false;
  return query.after === undefined || newestFirst(query.after, position) < 0;
}

/**
 * The index entry of a record in Redis: creation time as 16 zero-padded
 * digits, then the id. All entries share one score, so the set orders them
 * by these bytes: by time, then id, the order of the listing.
 */
export function historyMember(position: HistoryPosition): string {
  return `${String(Math.max(0, Math.trunc(position.createdAt))).padStart(16, "0")}:${position.id}`;
}

export function positionOfMember(member: string): HistoryPosition {
  return { createdAt: Number(member.slice(0, 16)), id: member.slice(17) };
}

/** The lex bound in front of every entry made at `createdAt` (the time part alone sorts before `<time>:<id>`). */
export function memberTimeBound(createdAt: number): string {
  return String(Math.max(0, Math.trunc(createdAt))).padStart(16, "0");
}

/**
 * One page out of records held in memory: those in range, newest first, that
 * match; `next` is set only when a further match exists.
 */
export function pageOf<T>(records: Iterable<T>, positionOf: (record: T) => HistoryPosition, matches: (record: T) => boolean, query: HistoryQuery): HistoryPage {
  checkLimit(query);
  const candidates = [...records]
    .map((record) => ({ record, position: positionOf(record) }))
    .filter(({ position }) => inRange(position, query))
    .sort((a, b) => newestFirst(a.position, b.position));
  const taken: HistoryPosition[] = [];
  for (const { record, position } of candidates) {
    if (!matches(record)) continue;
    if (taken.length === query.limit) return { ids: taken.map((p) => p.id), next: taken.at(-1)! };
    taken.push(position);
  }
  return { ids: taken.map((p) => p.id), next: null };
}

/** Every store refuses a page size below one: it could never say where the next page starts. */
export function checkLimit(query: Pick<HistoryQuery, "limit">): void {
  if (!Number.isInteger(query.limit) || query.limit < 1) throw new RangeError(`history page limit must be a positive integer, got ${query.limit}`);
}
