/**
 * The default store: one SQLite file in DATA_DIR (better-sqlite3), so OTPs,
 * jobs with their attempts and leases, keys, devices, publishers, budgets and
 * cancels survive a restart, kill -9 included.
 *
 * - Every change is one transaction; nothing rewrites a whole file. WAL with
 *   synchronous=NORMAL: a killed process loses nothing that was committed
 *   (only a power cut may lose the last transactions).
 * - better-sqlite3 is synchronous, so each method's read and write happen
 *   with no other callback in between: atomic within the process. One node
 *   owns the file; several nodes share Redis instead.
 * - Nothing readable at rest: OTP and job records are sealed (AES-GCM, the key
 *   derived from OTP_SECRET), subjects are keyed digests made by the caller,
 *   tokens and keys are digests already. What the history filters on sits
 *   beside the sealed record in clear like the state already did: times, ids,
 *   state, status and the route (a provider's name or a device id).
 */
import { closeSync, existsSync, openSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { dueAt, type Job } from "../delivery/job-state.js";
import {
  bucketKeepUntil,
  bucketOf,
  firstLiveBucket,
  planSend,
  planVerified,
  reservedCounters,
  watchSentKey,
  watchVerifiedKey,
  type BucketCounts,
  type FraudHold,
  type ReserveOutcome,
  type SendReservation,
  type WatchPolicy,
} from "../fraud/fraud-rules.js";
import {
  NO_LIMITS,
  decideIssue,
  keepOtpUntil,
  limitsAfterCheck,
  limitsAfterIssue,
  limitsAt,
  limitsKeepUntil,
  lockOf,
  settleVerification,
  type OtpPolicy,
  type OtpRecord,
  type OtpStatus,
  type SubjectLimits,
} from "../otp/rules.js";
import type { Sealer } from "../security/sealing.js";
import { checkLimit, historyKeepUntil, routeOf, type HistoryPage, type HistoryPosition, type HistoryQuery } from "./history.js";
import {
  DEVICE_WINDOW_MS,
  PRESENCE_TTL_MS,
  type ApiKeyRecord,
  type CancelRecord,
  type DevicePresence,
  type PresenceWrite,
  type DeviceRecord,
  type IssueResult,
  type PublisherRecord,
  type Store,
  type VerifyResult,
} from "./store.js";

export interface SqliteStoreOptions {
  /** The database file; created with its folder if missing. */
  file: string;
  /** Seals OTP and job records at rest. */
  sealer: Sealer;
  /** How often rows past their retention are deleted. */
  sweepIntervalMs?: number;
  /** Told when a clean-up round fails (it is tried again next round). */
  onSweepError?: (error: unknown) => void;
  /** OTPs and jobs are kept at least this long after their creation (HISTORY_RETENTION_DAYS); 0: only as long as their callers ask. */
  historyRetentionMs?: number;
}

/** Version 1 of the schema, created when missing; later versions are the steps in `migrate`, keyed on `PRAGMA user_version`. */
const SCHEMA = `
CREATE TABLE IF NOT EXISTS otps (
  id TEXT PRIMARY KEY, sealed TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
  expires_at INTEGER NOT NULL, keep_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS otps_keep ON otps (keep_until);
CREATE TABLE IF NOT EXISTS subjects (key TEXT PRIMARY KEY, limits TEXT NOT NULL, keep_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS subjects_keep ON subjects (keep_until);
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY, sealed TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL,
  due_at INTEGER, created_at INTEGER NOT NULL, keep_until INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_keep ON jobs (keep_until);
CREATE TABLE IF NOT EXISTS cancels (job_id TEXT PRIMARY KEY, device_id TEXT NOT NULL, until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS api_keys (digest TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS presence (device_id TEXT PRIMARY KEY, session TEXT, record TEXT NOT NULL, keep_until INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS device_sends (device_id TEXT NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS device_sends_by_device ON device_sends (device_id, at);
CREATE TABLE IF NOT EXISTS publishers (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS fraud_counts (
  key TEXT NOT NULL, bucket INTEGER NOT NULL, count INTEGER NOT NULL, keep_until INTEGER NOT NULL,
  PRIMARY KEY (key, bucket)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS fraud_counts_keep ON fraud_counts (keep_until);
CREATE TABLE IF NOT EXISTS fraud_holds (
  prefix TEXT PRIMARY KEY, held_at INTEGER NOT NULL, until INTEGER NOT NULL, sent INTEGER NOT NULL, verified INTEGER NOT NULL);
`;

/** The schema this code writes: version 2 adds what the history lists by (SqliteStore.migrate). */
const SCHEMA_VERSION = 2;

/** Up to this many ids are read by key, a statement each; more in one statement (presence) or one pass (send counts). */
const BY_KEY_UP_TO = 16;

type OtpRow = { sealed: string; status: OtpStatus; attempts: number };
type JobRow = { sealed: string };

export class SqliteStore implements Store {
  readonly kind = "sqlite" as const;
  readonly file: string;
  private readonly db: Database.Database;
  private readonly sealer: Sealer;
  private readonly sweeper: NodeJS.Timeout;
  private readonly historyRetentionMs: number;

  constructor(options: SqliteStoreOptions) {
    this.file = options.file;
    this.sealer = options.sealer;
    this.historyRetentionMs = options.historyRetentionMs ?? 0;
    mkdirSync(path.dirname(options.file), { recursive: true, mode: 0o700 });
    // Owner-only from the first byte; SQLite gives its -wal and -shm files the same mode.
    closeSync(openSync(options.file, "a", 0o600));
    this.db = new Database(options.file);
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("synchronous = NORMAL");
    // Another handle (a backup, the CLI) may hold the lock briefly.
    this.db.pragma("busy_timeout = 5000");
    this.db.exec(SCHEMA);
    this.migrate();
    this.importLegacyState(path.join(path.dirname(options.file), "state.json"));
    this.sweeper = setInterval(() => {
      // A busy database (a backup holding the lock) only postpones the clean-up; thrown in a timer it would end the process.
      try {
        this.sweep(Date.now());
      } catch (error) {
        options.onSweepError?.(error);
      }
    }, options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  private readonly statements = new Map<string, Database.Statement>();

  /** Prepared once per text: preparing is most of the cost of a small query. */
  private sql(text: string): Database.Statement {
    let statement = this.statements.get(text);
    if (!statement) {
      statement = this.db.prepare(text);
      this.statements.set(text, statement);
    }
    return statement;
  }

  private seal(value: unknown): string {
    return this.sealer.seal(JSON.stringify(value));
  }

  private open<T>(sealed: string): T {
    return JSON.parse(this.sealer.open(sealed)) as T;
  }

  // --- OTPs ---

  private limitsOf(key: string, now: number): SubjectLimits {
    const row = this.sql("SELECT limits FROM subjects WHERE key = ?").get(key) as { limits: string } | undefined;
    return limitsAt(row ? (JSON.parse(row.limits) as SubjectLimits) : NO_LIMITS, now);
  }

  private saveLimits(key: string, limits: SubjectLimits): void {
    this.sql("INSERT OR REPLACE INTO subjects (key, limits, keep_until) VALUES (?, ?, ?)").run(key, JSON.stringify(limits), limitsKeepUntil(limits));
  }

  async issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult> {
    return this.db.transaction((): IssueResult => {
      const limits = record.subjects.map((subject) => this.limitsOf(subject, now));
      const refused = decideIssue(limits, policy, now);
      if (refused) return { ok: false, ...refused };
      record.subjects.forEach((subject, i) => {
        const previous = limits[i]!.latestOtpId;
        if (previous && previous !== record.id) {
          this.sql("UPDATE otps SET status = 'expired' WHERE id = ? AND status = 'pending'").run(previous);
        }
        this.saveLimits(subject, limitsAfterIssue(limits[i]!, record, policy, now));
      });
      const { status: _status, attempts: _attempts, ...data } = record;
      const keepUntil = historyKeepUntil(record.createdAt, keepOtpUntil(record, policy), this.historyRetentionMs);
      this.sql("INSERT INTO otps (id, sealed, status, attempts, expires_at, keep_until, created_at, job_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
        .run(record.id, this.seal(data), record.status, record.attempts, record.expiresAt, keepUntil, record.createdAt, record.jobId);
      return { ok: true };
    })();
  }

  private readOtp(id: string): OtpRecord | null {
    const row = this.sql("SELECT sealed, status, attempts FROM otps WHERE id = ?").get(id) as OtpRow | undefined;
    if (!row) return null;
    return { ...this.open<Omit<OtpRecord, "status" | "attempts">>(row.sealed), status: row.status, attempts: row.attempts };
  }

  async getOtp(id: string): Promise<OtpRecord | null> {
    return this.readOtp(id);
  }

  async latestOtpId(subject: string): Promise<string | null> {
    return this.limitsOf(subject, Date.now()).latestOtpId ?? null;
  }

  async verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult> {
    return this.db.transaction((): VerifyResult => {
      const record = this.readOtp(id);
      if (!record) return { found: false };
      const limits = record.subjects.map((subject) => this.limitsOf(subject, now));
      const { record: next, outcome, counted } = settleVerification(record, matched, lockOf(limits, now), now);
      this.sql("UPDATE otps SET status = ?, attempts = ? WHERE id = ?").run(next.status, next.attempts, id);
      if (counted) record.subjects.forEach((subject, i) => this.saveLimits(subject, limitsAfterCheck(limits[i]!, outcome.valid, policy, now)));
      return { found: true, ...outcome };
    })();
  }

  // --- jobs ---

  private readJob(id: string): Job | null {
    const row = this.sql("SELECT sealed FROM jobs WHERE id = ?").get(id) as JobRow | undefined;
    return row ? this.open<Job>(row.sealed) : null;
  }

  async createJob(job: Job, ttlSeconds: number): Promise<boolean> {
    const createdAt = Date.parse(job.createdAt);
    const keepUntil = historyKeepUntil(createdAt, Date.now() + ttlSeconds * 1000, this.historyRetentionMs);
    const created = this.sql("INSERT OR IGNORE INTO jobs (id, sealed, kind, state, due_at, created_at, keep_until, route) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
      .run(job.id, this.seal(job), job.kind, job.state, dueAt(job), createdAt, keepUntil, routeOf(job));
    return created.changes === 1;
  }

  async getJob(id: string): Promise<Job | null> {
    return this.readJob(id);
  }

  async updateJob(id: string, change: (job: Job) => Job | null): Promise<Job | null> {
    return this.db.transaction((): Job | null => {
      const current = this.readJob(id);
      if (!current) return null;
      const next = change(structuredClone(current));
      if (!next) return current;
      this.sql("UPDATE jobs SET sealed = ?, state = ?, due_at = ?, route = ? WHERE id = ?").run(this.seal(next), next.state, dueAt(next), routeOf(next), id);
      return next;
    })();
  }

  async dueJobIds(now: number, limit: number): Promise<string[]> {
    const rows = this.sql("SELECT id FROM jobs WHERE due_at IS NOT NULL AND due_at <= ? ORDER BY due_at LIMIT ?").all(now, limit) as { id: string }[];
    return rows.map((row) => row.id);
  }

  async saveCancel(cancel: CancelRecord): Promise<void> {
    this.sql("INSERT OR REPLACE INTO cancels (job_id, device_id, until) VALUES (?, ?, ?)").run(cancel.jobId, cancel.deviceId, cancel.until);
  }

  async activeCancels(now: number): Promise<CancelRecord[]> {
    const rows = this.sql("SELECT job_id, device_id, until FROM cancels WHERE until > ?").all(now) as { job_id: string; device_id: string; until: number }[];
    return rows.map((row) => ({ jobId: row.job_id, deviceId: row.device_id, until: row.until }));
  }

  // --- API keys ---

  async saveApiKey(record: ApiKeyRecord): Promise<void> {
    this.sql("INSERT OR REPLACE INTO api_keys (digest, id, record) VALUES (?, ?, ?)").run(record.digest, record.id, JSON.stringify(record));
  }

  async findApiKeyByDigest(digest: string): Promise<ApiKeyRecord | null> {
    const row = this.sql("SELECT record FROM api_keys WHERE digest = ?").get(digest) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as ApiKeyRecord) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return (this.sql("SELECT record FROM api_keys").all() as { record: string }[]).map((row) => JSON.parse(row.record) as ApiKeyRecord);
  }

  async revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null> {
    return this.db.transaction((): ApiKeyRecord | null => {
      const row = this.sql("SELECT record FROM api_keys WHERE id = ?").get(id) as { record: string } | undefined;
      if (!row) return null;
      const record = JSON.parse(row.record) as ApiKeyRecord;
      const revoked = { ...record, revokedAt: record.revokedAt ?? at.toISOString() };
      this.sql("UPDATE api_keys SET record = ? WHERE id = ?").run(JSON.stringify(revoked), id);
      return revoked;
    })();
  }

  // --- devices, presence, budgets ---

  async saveDevice(record: DeviceRecord): Promise<void> {
    this.sql("INSERT OR REPLACE INTO devices (id, record) VALUES (?, ?)").run(record.id, JSON.stringify(record));
  }

  async getDevice(id: string): Promise<DeviceRecord | null> {
    const row = this.sql("SELECT record FROM devices WHERE id = ?").get(id) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as DeviceRecord) : null;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return (this.sql("SELECT record FROM devices").all() as { record: string }[]).map((row) => JSON.parse(row.record) as DeviceRecord);
  }

  async deleteDevice(id: string): Promise<boolean> {
    return this.db.transaction((): boolean => {
      const removed = this.sql("DELETE FROM devices WHERE id = ?").run(id).changes === 1;
      this.sql("DELETE FROM presence WHERE device_id = ?").run(id);
      this.sql("DELETE FROM device_sends WHERE device_id = ?").run(id);
      return removed;
    })();
  }

  async setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean> {
    return this.db.transaction(() => this.writePresence({ deviceId, presence, onlyIfSession }))();
  }

  async setPresences(writes: readonly PresenceWrite[]): Promise<boolean[]> {
    return this.db.transaction(() => writes.map((write) => this.writePresence(write)))();
  }

  /** One guarded presence write, inside the caller's transaction. */
  private writePresence({ deviceId, presence, onlyIfSession }: PresenceWrite): boolean {
    const now = Date.now();
    if (onlyIfSession !== undefined) {
      const row = this.sql("SELECT session FROM presence WHERE device_id = ? AND keep_until > ?").get(deviceId, now) as
        | { session: string | null }
        | undefined;
      if (row?.session !== onlyIfSession) return false;
    }
    this.sql("INSERT OR REPLACE INTO presence (device_id, session, record, keep_until) VALUES (?, ?, ?, ?)")
      .run(deviceId, presence.session ?? null, JSON.stringify(presence), now + PRESENCE_TTL_MS);
    return true;
  }

  async getPresence(deviceIds: string[]): Promise<(DevicePresence | null)[]> {
    const now = Date.now();
    const parse = (record: string | undefined) => (record ? (JSON.parse(record) as DevicePresence) : null);
    // A few phones (a connect, a status): by key. The whole fleet (the device route): one scan, not one query each.
    if (deviceIds.length <= BY_KEY_UP_TO) {
      const read = this.sql("SELECT record FROM presence WHERE device_id = ? AND keep_until > ?");
      return deviceIds.map((id) => parse((read.get(id, now) as { record: string } | undefined)?.record));
    }
    // Only the rows asked for (a batch of reconnecting phones is a few of many), by index, in one statement.
    const rows = this.sql("SELECT p.device_id, p.record FROM json_each(?) AS wanted JOIN presence p ON p.device_id = wanted.value WHERE p.keep_until > ?")
      .all(JSON.stringify(deviceIds), now) as { device_id: string; record: string }[];
    const byId = new Map(rows.map((row) => [row.device_id, row.record]));
    return deviceIds.map((id) => parse(byId.get(id)));
  }

  async reserveDeviceSend(deviceId: string, maxPerMinute: number, now: number): Promise<boolean> {
    return this.db.transaction((): boolean => {
      this.sql("DELETE FROM device_sends WHERE device_id = ? AND at <= ?").run(deviceId, now - DEVICE_WINDOW_MS);
      const { count } = this.sql("SELECT count(*) AS count FROM device_sends WHERE device_id = ?").get(deviceId) as { count: number };
      if (count >= maxPerMinute) return false;
      this.sql("INSERT INTO device_sends (device_id, at) VALUES (?, ?)").run(deviceId, now);
      return true;
    })();
  }

  async deviceSendCounts(deviceIds: string[], now: number): Promise<number[]> {
    const since = now - DEVICE_WINDOW_MS;
    if (deviceIds.length <= BY_KEY_UP_TO) {
      const count = this.sql("SELECT count(*) AS count FROM device_sends WHERE device_id = ? AND at > ?");
      return deviceIds.map((id) => (count.get(id, since) as { count: number }).count);
    }
    const rows = this.sql("SELECT device_id, count(*) AS count FROM device_sends WHERE at > ? GROUP BY device_id").all(since) as { device_id: string; count: number }[];
    const byId = new Map(rows.map((row) => [row.device_id, row.count]));
    return deviceIds.map((id) => byId.get(id) ?? 0);
  }

  // --- publishers ---

  async savePublisher(record: PublisherRecord): Promise<void> {
    this.sql("INSERT OR REPLACE INTO publishers (id, name, record) VALUES (?, ?, ?)").run(record.id, record.name, JSON.stringify(record));
  }

  async findPublisherByName(name: string): Promise<PublisherRecord | null> {
    const row = this.sql("SELECT record FROM publishers WHERE name = ?").get(name) as { record: string } | undefined;
    return row ? (JSON.parse(row.record) as PublisherRecord) : null;
  }

  async listPublishers(): Promise<PublisherRecord[]> {
    return (this.sql("SELECT record FROM publishers").all() as { record: string }[]).map((row) => JSON.parse(row.record) as PublisherRecord);
  }

  async deletePublisher(id: string): Promise<boolean> {
    return this.sql("DELETE FROM publishers WHERE id = ?").run(id).changes === 1;
  }

  // --- fraud guard ---

  private counts(key: string, windowMs: number, now: number): BucketCounts {
    const rows = this.sql("SELECT bucket, count FROM fraud_counts WHERE key = ? AND bucket >= ?").all(key, firstLiveBucket(now, windowMs)) as { bucket: number; count: number }[];
    return new Map(rows.map((row) => [row.bucket, row.count]));
  }

  private addCount(key: string, windowMs: number, at: number, delta: number): void {
    const bucket = bucketOf(at, windowMs);
    this.sql("INSERT INTO fraud_counts (key, bucket, count, keep_until) VALUES (@key, @bucket, max(0, @delta), @keep) ON CONFLICT (key, bucket) DO UPDATE SET count = max(0, count + @delta)")
      .run({ key, bucket, delta, keep: bucketKeepUntil(bucket, windowMs) });
  }

  private readHold(prefix: string): FraudHold | null {
    const row = this.sql("SELECT held_at, until, sent, verified FROM fraud_holds WHERE prefix = ?").get(prefix) as
      | { held_at: number; until: number; sent: number; verified: number }
      | undefined;
    return row ? { prefix, heldAt: row.held_at, until: row.until, sent: row.sent, verified: row.verified } : null;
  }

  async reserveSend(request: SendReservation, now: number): Promise<ReserveOutcome> {
    return this.db.transaction((): ReserveOutcome => {
      const watch = request.watch;
      const plan = planSend(
        request,
        {
          quotas: request.quotas.map((quota) => this.counts(quota.key, quota.windowMs, now)),
          ...(watch
            ? {
                sent: this.counts(watchSentKey(watch.prefix), watch.policy.windowMs, now),
                verified: this.counts(watchVerifiedKey(watch.prefix), watch.policy.windowMs, now),
                hold: this.readHold(watch.prefix),
              }
            : {}),
        },
        now,
      );
      if (watch && plan.liftHold) this.sql("DELETE FROM fraud_holds WHERE prefix = ?").run(watch.prefix);
      if (plan.setHold) {
        const hold = plan.setHold;
        this.sql("INSERT OR REPLACE INTO fraud_holds (prefix, held_at, until, sent, verified) VALUES (?, ?, ?, ?, ?)").run(hold.prefix, hold.heldAt, hold.until, hold.sent, hold.verified);
      }
      for (const { key, windowMs } of plan.increments) this.addCount(key, windowMs, now, 1);
      return plan.outcome;
    })();
  }

  async releaseSend(request: SendReservation, at: number): Promise<void> {
    this.db.transaction(() => {
      for (const { key, windowMs } of reservedCounters(request)) this.addCount(key, windowMs, at, -1);
    })();
  }

  async recordVerified(prefix: string, policy: WatchPolicy, now: number): Promise<{ lifted: boolean }> {
    return this.db.transaction(() => {
      const { lift } = planVerified(
        { sent: this.counts(watchSentKey(prefix), policy.windowMs, now), verified: this.counts(watchVerifiedKey(prefix), policy.windowMs, now), hold: this.readHold(prefix) },
        policy,
        now,
      );
      this.addCount(watchVerifiedKey(prefix), policy.windowMs, now, 1);
      if (lift) this.sql("DELETE FROM fraud_holds WHERE prefix = ?").run(prefix);
      return { lifted: lift };
    })();
  }

  async listFraudHolds(now: number): Promise<FraudHold[]> {
    const rows = this.sql("SELECT prefix FROM fraud_holds WHERE until > ? ORDER BY held_at").all(now) as { prefix: string }[];
    return rows.map((row) => this.readHold(row.prefix)!).filter(Boolean);
  }

  async clearFraudHold(prefix: string, now: number): Promise<FraudHold | null> {
    return this.db.transaction((): FraudHold | null => {
      const hold = this.readHold(prefix);
      this.sql("DELETE FROM fraud_holds WHERE prefix = ?").run(prefix);
      if (!hold || hold.until <= now) return null;
      this.sql("DELETE FROM fraud_counts WHERE key IN (?, ?)").run(watchSentKey(prefix), watchVerifiedKey(prefix));
      return hold;
    })();
  }

  // --- history ---

  async listMessages(query: HistoryQuery): Promise<HistoryPage> {
    checkLimit(query);
    const where = ["kind = 'message'"];
    const params: Record<string, string | number> = {};
    this.window(where, params, query, "");
    if (query.states) {
      where.push("state IN (SELECT value FROM json_each(@states))");
      params.states = JSON.stringify(query.states);
    }
    if (query.route !== undefined) this.routeFilter(where, params, query.route, "route");
    const rows = this.sql(`SELECT id, created_at FROM jobs WHERE ${where.join(" AND ")} ORDER BY created_at DESC, id DESC LIMIT @take`)
      .all({ ...params, take: query.limit + 1 }) as { id: string; created_at: number }[];
    return pageOfRows(rows, query.limit);
  }

  async listOtps(query: HistoryQuery, now: number): Promise<HistoryPage> {
    checkLimit(query);
    const where: string[] = [];
    const params: Record<string, string | number> = {};
    this.window(where, params, query, "o.");
    if (query.statuses) {
      // As GET /v1/otp/:id reports it (history.otpStatusAt).
      where.push("(CASE WHEN o.status = 'pending' AND o.expires_at <= @now THEN 'expired' ELSE o.status END) IN (SELECT value FROM json_each(@statuses))");
      params.statuses = JSON.stringify(query.statuses);
      params.now = now;
    }
    // An OTP whose job is gone reads as its view shows it: queued, no route (history.jobMatches).
    if (query.states) {
      where.push("coalesce(j.state, 'queued') IN (SELECT value FROM json_each(@states))");
      params.states = JSON.stringify(query.states);
    }
    if (query.route !== undefined) this.routeFilter(where, params, query.route, "j.route");
    const join = query.states || query.route !== undefined ? " LEFT JOIN jobs j ON j.id = o.job_id" : "";
    const rows = this.sql(
      `SELECT o.id, o.created_at FROM otps o${join}${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ORDER BY o.created_at DESC, o.id DESC LIMIT @take`,
    ).all({ ...params, take: query.limit + 1 }) as { id: string; created_at: number }[];
    return pageOfRows(rows, query.limit);
  }

  /** The time window and the cursor, over `<table>created_at` and `<table>id` (the listing indexes' columns). */
  private window(where: string[], params: Record<string, string | number>, query: HistoryQuery, table: string): void {
    if (query.since !== undefined) {
      where.push(`${table}created_at >= @since`);
      params.since = query.since;
    }
    if (query.until !== undefined) {
      where.push(`${table}created_at < @until`);
      params.until = query.until;
    }
    if (query.after) {
      where.push(`(${table}created_at, ${table}id) < (@afterAt, @afterId)`);
      params.afterAt = query.after.createdAt;
      params.afterId = query.after.id;
    }
  }

  /** `device` is any phone (history.routeMatches); the prefix as a range, so the comparison stays exact and case-sensitive. */
  private routeFilter(where: string[], params: Record<string, string | number>, route: string, column: string): void {
    if (route === "device") {
      where.push(`${column} >= 'device:' AND ${column} < 'device;'`);
      return;
    }
    where.push(`${column} = @route`);
    params.route = route;
  }

  // --- upkeep ---

  /**
   * Brings an older file up to SCHEMA_VERSION, each step in one transaction
   * with its version bump. Version 2: the columns and indexes the history
   * lists by, filled in for the rows already there. Each step checks what is
   * there first, so a file an older release wrote to again still upgrades.
   */
  private migrate(): void {
    const version = this.db.pragma("user_version", { simple: true }) as number;
    if (version >= SCHEMA_VERSION) return;
    this.db.transaction(() => {
      const columns = (table: string) => new Set((this.db.pragma(`table_info(${table})`) as { name: string }[]).map((column) => column.name));
      if (!columns("jobs").has("route")) this.db.exec("ALTER TABLE jobs ADD COLUMN route TEXT");
      const otpColumns = columns("otps");
      if (!otpColumns.has("created_at")) this.db.exec("ALTER TABLE otps ADD COLUMN created_at INTEGER NOT NULL DEFAULT 0");
      if (!otpColumns.has("job_id")) this.db.exec("ALTER TABLE otps ADD COLUMN job_id TEXT");
      // Version 1's (kind, created_at) index could not order ties by id; the listing index replaces it.
      this.db.exec(`
        DROP INDEX IF EXISTS jobs_history;
        CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (kind, created_at, id);
        CREATE INDEX IF NOT EXISTS otps_listing ON otps (created_at, id);`);
      const setOtp = this.db.prepare("UPDATE otps SET created_at = ?, job_id = ? WHERE id = ?");
      for (const row of this.db.prepare("SELECT id, sealed, expires_at FROM otps WHERE job_id IS NULL").all() as { id: string; sealed: string; expires_at: number }[]) {
        const record = this.openOrNull<OtpRecord>(row.sealed);
        // A record sealed under an earlier OTP_SECRET cannot be read at all; it is listed by its expiry until it is swept.
        setOtp.run(record?.createdAt ?? row.expires_at, record?.jobId ?? null, row.id);
      }
      const setRoute = this.db.prepare("UPDATE jobs SET route = ? WHERE id = ?");
      for (const row of this.db.prepare("SELECT id, sealed FROM jobs WHERE route IS NULL").all() as { id: string; sealed: string }[]) {
        const job = this.openOrNull<Job>(row.sealed);
        const route = job ? routeOf(job) : null;
        if (route !== null) setRoute.run(route, row.id);
      }
      this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
    })();
  }

  private openOrNull<T>(sealed: string): T | null {
    try {
      return this.open<T>(sealed);
    } catch {
      return null;
    }
  }

  /** A consistent copy of the live database (SQLite's online backup), for operators. */
  async backup(destination: string): Promise<void> {
    await this.db.backup(destination);
  }

  async ping(): Promise<void> {
    this.sql("SELECT 1").get();
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    if (this.db.open) this.db.close();
  }

  /** Deletes what is past its retention, in one transaction; the history reads these rows, so nothing else lists them afterwards. */
  sweep(now: number): void {
    this.db.transaction(() => {
      this.sql("DELETE FROM otps WHERE keep_until <= ?").run(now);
      this.sql("DELETE FROM subjects WHERE keep_until <= ?").run(now);
      this.sql("DELETE FROM jobs WHERE keep_until <= ?").run(now);
      this.sql("DELETE FROM cancels WHERE until <= ?").run(now);
      this.sql("DELETE FROM presence WHERE keep_until <= ?").run(now);
      this.sql("DELETE FROM device_sends WHERE at <= ?").run(now - DEVICE_WINDOW_MS);
      this.sql("DELETE FROM fraud_counts WHERE keep_until <= ?").run(now);
      this.sql("DELETE FROM fraud_holds WHERE until <= ?").run(now);
    })();
  }

  /**
   * Keys, devices and publishers from the JSON file earlier versions kept
   * (state.json), imported once; the file is then renamed so it is not read again.
   */
  private importLegacyState(file: string): void {
    if (!existsSync(file)) return;
    const saved = JSON.parse(readFileSync(file, "utf8")) as { apiKeys?: ApiKeyRecord[]; devices?: DeviceRecord[]; publishers?: PublisherRecord[] };
    this.db.transaction(() => {
      for (const record of saved.apiKeys ?? []) {
        this.sql("INSERT OR IGNORE INTO api_keys (digest, id, record) VALUES (?, ?, ?)").run(record.digest, record.id, JSON.stringify(record));
      }
      for (const record of saved.devices ?? []) {
        this.sql("INSERT OR IGNORE INTO devices (id, record) VALUES (?, ?)").run(record.id, JSON.stringify(record));
      }
      for (const record of saved.publishers ?? []) {
        this.sql("INSERT OR IGNORE INTO publishers (id, name, record) VALUES (?, ?, ?)").run(record.id, record.name, JSON.stringify(record));
      }
    })();
    renameSync(file, `${file}.imported`);
  }
}

/** A page from rows read with LIMIT limit + 1: the extra row only says there is more. */
function pageOfRows(rows: { id: string; created_at: number }[], limit: number): HistoryPage {
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  const next: HistoryPosition | null = rows.length > limit && last ? { createdAt: last.created_at, id: last.id } : null;
  return { ids: page.map((row) => row.id), next };
}
