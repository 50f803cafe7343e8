/**
 * The Redis store (REDIS_URL): shared by every node of a cluster. Decisions run
 * as Lua scripts (redis-scripts.ts) so they are atomic across nodes; jobs use
 * a version field for compare-and-set. Records expire as Redis keys; the
 * history's sorted-set index is trimmed in step by a clean-up round (sweep).
 */
import { Redis, type ChainableCommander } from "ioredis";
import { dueAt, type Job } from "../delivery/job-state.js";
import { keepOtpUntil, secondsUntil, type OtpPolicy, type OtpRecord, type OtpStatus } from "../otp/rules.js";
import type { Sealer } from "../security/sealing.js";
import { randomUUID } from "node:crypto";
import { BUCKETS_PER_WINDOW, reservedCounters, type FraudHold, type ReserveOutcome, type SendReservation, type WatchPolicy } from "../fraud/fraud-rules.js";
import {
  checkLimit,
  compareIds,
  historyKeepUntil,
  historyMember,
  jobMatches,
  memberTimeBound,
  otpStatusAt,
  positionOfMember,
  type HistoryKind,
  type HistoryPage,
  type HistoryPosition,
  type HistoryQuery,
} from "./history.js";
import {
  CLEAR_FRAUD_HOLD,
  CREATE_JOB,
  ISSUE_OTP,
  RECORD_FRAUD_VERIFIED,
  RELEASE_FRAUD_SEND,
  RESERVE_DEVICE_SEND,
  RESERVE_FRAUD_SEND,
  SET_PRESENCE,
  TRIM_HISTORY,
  UPDATE_JOB,
  VERIFY_OTP,
} from "./redis-scripts.js";
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

type ScriptReply = [string, number, number?, number?, number?] | [string];

interface ScriptedRedis extends Redis {
  otpgateIssue(...args: (string | number)[]): Promise<ScriptReply>;
  otpgateVerify(...args: (string | number)[]): Promise<ScriptReply>;
  otpgateUpdateJob(key: string, index: string, version: string, data: string, id: string, due: string): Promise<number>;
  otpgateCreateJob(key: string, index: string, history: string, keep: string, data: string, keepUntil: number, id: string, due: string, entry: string): Promise<number>;
  otpgateTrimHistory(keep: string, prefix: string, now: number, max: number): Promise<number>;
  otpgateReserveDeviceSend(key: string, now: number, windowMs: number, max: number, member: string): Promise<number>;
  otpgateSetPresence(key: string, expected: string, session: string, data: string, ttlMs: number): Promise<number>;
  otpgateReserveFraudSend(...args: (string | number)[]): Promise<(string | number)[]>;
  otpgateReleaseFraudSend(...args: (string | number)[]): Promise<number>;
  otpgateRecordFraudVerified(...args: (string | number)[]): Promise<number>;
  otpgateClearFraudHold(...args: (string | number)[]): Promise<(string | null)[]>;
}

/** The scripted command as a pipeline offers it (queued, answered by exec()). */
interface PresenceCommands {
  otpgateSetPresence(key: string, expected: string, session: string, data: string, ttlMs: number): unknown;
}

const MAX_CAS_RETRIES = 100;
/** History entries read per round trip while a page is filled. */
const HISTORY_BATCH = { min: 100, max: 500 };
/**
 * A page stops after looking at this many entries even if it is not full
 * (its `next` says where to go on), so a rare filter over a long history
 * costs each request a bounded amount of work.
 */
const HISTORY_SCAN_LIMIT = 5_000;
/** Entries one TRIM_HISTORY call removes (Lua's unpack has a limit too). */
const TRIM_BATCH = 500;

export interface RedisStoreOptions {
  url: string;
  /** Namespace for every key, so several deployments (or tests) can share a Redis. */
  keyPrefix?: string;
  /** Seals OTP and job records at rest. */
  sealer: Sealer;
  /** OTPs and jobs are kept at least this long after their creation (HISTORY_RETENTION_DAYS); 0: only as long as their callers ask. */
  historyRetentionMs?: number;
  /** How often the history index drops the entries of expired records. */
  sweepIntervalMs?: number;
  /** Told when a clean-up round fails (it is tried again next round). */
  onSweepError?: (error: unknown) => void;
}

export class RedisStore implements Store {
  readonly kind = "redis" as const;
  readonly redis: ScriptedRedis;
  readonly keyPrefix: string;
  private readonly sealer: Sealer;
  private readonly historyRetentionMs: number;
  private readonly sweeper: NodeJS.Timeout;
  private closed = false;

  constructor(options: RedisStoreOptions) {
    this.keyPrefix = options.keyPrefix ?? "otpgate:";
    this.sealer = options.sealer;
    this.historyRetentionMs = options.historyRetentionMs ?? 0;
    const redis = new Redis(options.url, { lazyConnect: false, maxRetriesPerRequest: 2, enableOfflineQueue: true });
    redis.defineCommand("otpgateIssue", { numberOfKeys: 0, lua: ISSUE_OTP });
    redis.defineCommand("otpgateVerify", { numberOfKeys: 0, lua: VERIFY_OTP });
    redis.defineCommand("otpgateUpdateJob", { numberOfKeys: 2, lua: UPDATE_JOB });
    redis.defineCommand("otpgateCreateJob", { numberOfKeys: 4, lua: CREATE_JOB });
    redis.defineCommand("otpgateTrimHistory", { numberOfKeys: 1, lua: TRIM_HISTORY });
    redis.defineCommand("otpgateReserveDeviceSend", { numberOfKeys: 1, lua: RESERVE_DEVICE_SEND });
    redis.defineCommand("otpgateSetPresence", { numberOfKeys: 1, lua: SET_PRESENCE });
    redis.defineCommand("otpgateReserveFraudSend", { numberOfKeys: 0, lua: RESERVE_FRAUD_SEND });
    redis.defineCommand("otpgateReleaseFraudSend", { numberOfKeys: 0, lua: RELEASE_FRAUD_SEND });
    redis.defineCommand("otpgateRecordFraudVerified", { numberOfKeys: 0, lua: RECORD_FRAUD_VERIFIED });
    redis.defineCommand("otpgateClearFraudHold", { numberOfKeys: 0, lua: CLEAR_FRAUD_HOLD });
    // Errors reach callers through their commands; without a listener ioredis would also print each one.
    redis.on("error", () => {});
    this.redis = redis as ScriptedRedis;
    this.sweeper = setInterval(() => {
      // Every node trims; the script is idempotent. A Redis that is away only postpones it.
      this.sweep(Date.now()).catch((error: unknown) => {
        if (!this.closed) options.onSweepError?.(error);
      });
    }, options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  private key(...parts: string[]): string {
    return this.keyPrefix + parts.join(":");
  }

  private seal(value: unknown): string {
    return this.sealer.seal(JSON.stringify(value));
  }

  private open<T>(sealed: string): T {
    return JSON.parse(this.sealer.open(sealed)) as T;
  }

  async issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult> {
    const { status: _status, attempts: _attempts, ...data } = record;
    const reply = await this.redis.otpgateIssue(
      this.keyPrefix,
      record.id,
      this.seal(data),
      record.maxAttempts,
      record.expiresAt,
      keepOtpUntil(record, policy),
      now,
      policy.resendCooldownSeconds * 1000,
      policy.maxSendsPerHour,
      Math.ceil(historyKeepUntil(record.createdAt, keepOtpUntil(record, policy), this.historyRetentionMs)),
      historyMember({ createdAt: record.createdAt, id: record.id }),
      ...record.subjects,
    );
    const [outcome, ttlMs] = reply;
    if (outcome === "ok") return { ok: true };
    return {
      ok: false,
      reason: outcome as "locked" | "cooldown" | "hourly_cap",
      retryAfterSeconds: secondsUntil(now + Number(ttlMs), now),
    };
  }

  async getOtp(id: string): Promise<OtpRecord | null> {
    const fields = await this.redis.hgetall(this.key("otp", id));
    if (!fields.data) return null;
    const data = this.open<Omit<OtpRecord, "status" | "attempts">>(fields.data);
    return { ...data, status: fields.status as OtpStatus, attempts: Number(fields.attempts) };
  }

  async latestOtpId(subject: string): Promise<string | null> {
    const [id, until] = await this.redis.hmget(this.key("subj", subject), "lt", "lu");
    return id && Number(until) > Date.now() ? id : null;
  }

  async verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult> {
    const data = await this.redis.hget(this.key("otp", id), "data");
    if (!data) return { found: false };
    const { subjects } = this.open<Pick<OtpRecord, "subjects">>(data);
    const reply = await this.redis.otpgateVerify(
      this.keyPrefix,
      id,
      matched ? 1 : 0,
      now,
      policy.lockoutThreshold,
      policy.lockoutSeconds * 1000,
      ...subjects,
    );
    if (reply[0] === "missing") return { found: false };
    const [status, attempts, maxAttempts, lockedMs, applied] = reply as [OtpStatus, number, number, number, number];
    const attemptsLeft = Math.max(0, maxAttempts - attempts);
    if (lockedMs > 0) {
      return { found: true, valid: false, status, attemptsLeft, lockedForSeconds: secondsUntil(now + lockedMs, now) };
    }
    return { found: true, valid: applied === 1 && status === "approved", status, attemptsLeft };
  }

  private dueIndex(): string {
    return this.key("jobs", "due");
  }

  async createJob(job: Job, ttlSeconds: number): Promise<boolean> {
    const due = dueAt(job);
    const createdAt = Date.parse(job.createdAt);
    const keepUntil = Math.ceil(historyKeepUntil(createdAt, Date.now() + ttlSeconds * 1000, this.historyRetentionMs));
    // An OTP's job is listed through its OTP (GET /v1/otp), so only plain messages get an entry.
    const entry = job.kind === "message" ? historyMember({ createdAt, id: job.id }) : "";
    const created = await this.redis.otpgateCreateJob(
      this.key("job", job.id),
      this.dueIndex(),
      this.key("hist", "message"),
      this.key("hist", "keep"),
      this.seal(job),
      keepUntil,
      job.id,
      due === null ? "" : String(due),
      entry,
    );
    return created === 1;
  }

  async getJob(id: string): Promise<Job | null> {
    const data = await this.redis.hget(this.key("job", id), "data");
    return data ? this.open<Job>(data) : null;
  }

  async updateJob(id: string, change: (job: Job) => Job | null): Promise<Job | null> {
    const key = this.key("job", id);
    for (let attempt = 0; attempt < MAX_CAS_RETRIES; attempt++) {
      const [version, data] = await this.redis.hmget(key, "v", "data");
      if (version == null || data == null) return null;
      const current = this.open<Job>(data);
      const next = change(structuredClone(current));
      if (!next) return current;
      const due = dueAt(next);
      if ((await this.redis.otpgateUpdateJob(key, this.dueIndex(), version, this.seal(next), id, due === null ? "" : String(due))) === 1) return next;
    }
    throw new Error(`job ${id}: too much contention, gave up after ${MAX_CAS_RETRIES} tries`);
  }

  async dueJobIds(now: number, limit: number): Promise<string[]> {
    const index = this.dueIndex();
    const ids = await this.redis.zrangebyscore(index, "-inf", now, "LIMIT", 0, limit);
    if (ids.length === 0) return [];
    // Drop ids whose job has already expired out of Redis.
    const present = await Promise.all(ids.map((id) => this.redis.exists(this.key("job", id))));
    const gone = ids.filter((_, i) => present[i] === 0);
    if (gone.length > 0) await this.redis.zrem(index, ...gone);
    return ids.filter((_, i) => present[i] === 1);
  }

  async saveCancel(cancel: CancelRecord): Promise<void> {
    await this.redis
      .multi()
      .zremrangebyscore(this.key("cancels"), "-inf", Date.now())
      .zadd(this.key("cancels"), cancel.until, `${cancel.jobId}\n${cancel.deviceId}`)
      .exec();
  }

  async activeCancels(now: number): Promise<CancelRecord[]> {
    const members = await this.redis.zrangebyscore(this.key("cancels"), `(${now}`, "+inf", "WITHSCORES");
    const cancels: CancelRecord[] = [];
    for (let i = 0; i + 1 < members.length; i += 2) {
      const [jobId, deviceId] = members[i]!.split("\n") as [string, string];
      cancels.push({ jobId, deviceId, until: Number(members[i + 1]) });
    }
    return cancels;
  }

  async saveApiKey(record: ApiKeyRecord): Promise<void> {
    await this.redis
      .multi()
      .set(this.key("apikey", record.digest), JSON.stringify(record))
      .hset(this.key("apikeys"), record.id, record.digest)
      .exec();
  }

  async findApiKeyByDigest(digest: string): Promise<ApiKeyRecord | null> {
    const data = await this.redis.get(this.key("apikey", digest));
    return data ? (JSON.parse(data) as ApiKeyRecord) : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    const digests = Object.values(await this.redis.hgetall(this.key("apikeys")));
    if (digests.length === 0) return [];
    const values = await this.redis.mget(digests.map((digest) => this.key("apikey", digest)));
    return values.filter((value): value is string => value !== null).map((value) => JSON.parse(value) as ApiKeyRecord);
  }

  async revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null> {
    const digest = await this.redis.hget(this.key("apikeys"), id);
    if (!digest) return null;
    const record = await this.findApiKeyByDigest(digest);
    if (!record) return null;
    const revoked = { ...record, revokedAt: record.revokedAt ?? at.toISOString() };
    await this.redis.set(this.key("apikey", digest), JSON.stringify(revoked));
    return revoked;
  }

  async saveDevice(record: DeviceRecord): Promise<void> {
    await this.redis.hset(this.key("devices"), record.id, JSON.stringify(record));
  }

  async getDevice(id: string): Promise<DeviceRecord | null> {
    const data = await this.redis.hget(this.key("devices"), id);
    return data ? (JSON.parse(data) as DeviceRecord) : null;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return Object.values(await this.redis.hgetall(this.key("devices"))).map((data) => JSON.parse(data) as DeviceRecord);
  }

  async deleteDevice(id: string): Promise<boolean> {
    const [[, removed]] = (await this.redis
      .multi()
      .hdel(this.key("devices"), id)
      .del(this.key("presence", id), this.key("device-sends", id))
      .exec()) as [[Error | null, number]];
    return removed === 1;
  }

  async setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean> {
    const written = await this.redis.otpgateSetPresence(
      this.key("presence", deviceId),
      onlyIfSession ?? "",
      presence.session ?? "",
      JSON.stringify(presence),
      PRESENCE_TTL_MS,
    );
    return written === 1;
  }

  async setPresences(writes: readonly PresenceWrite[]): Promise<boolean[]> {
    if (writes.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const { deviceId, presence, onlyIfSession } of writes) {
      (pipeline as unknown as PresenceCommands).otpgateSetPresence(
        this.key("presence", deviceId),
        onlyIfSession ?? "",
        presence.session ?? "",
        JSON.stringify(presence),
        PRESENCE_TTL_MS,
      );
    }
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([error, written]) => {
      if (error) throw error;
      return written === 1;
    });
  }

  async getPresence(deviceIds: string[]): Promise<(DevicePresence | null)[]> {
    if (deviceIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of deviceIds) pipeline.hget(this.key("presence", id), "data");
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, value]) => (typeof value === "string" ? (JSON.parse(value) as DevicePresence) : null));
  }

  async reserveDeviceSend(deviceId: string, maxPerMinute: number, now: number): Promise<boolean> {
    const reply = await this.redis.otpgateReserveDeviceSend(this.key("device-sends", deviceId), now, DEVICE_WINDOW_MS, maxPerMinute, `${now}:${randomUUID()}`);
    return reply === 1;
  }

  async deviceSendCounts(deviceIds: string[], now: number): Promise<number[]> {
    if (deviceIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of deviceIds) pipeline.zcount(this.key("device-sends", id), now - DEVICE_WINDOW_MS + 1, "+inf");
    const replies = (await pipeline.exec()) ?? [];
    return replies.map(([, count]) => Number(count ?? 0));
  }

  async savePublisher(record: PublisherRecord): Promise<void> {
    await this.redis.hset(this.key("publishers"), record.name, JSON.stringify(record));
  }

  async findPublisherByName(name: string): Promise<PublisherRecord | null> {
    const data = await this.redis.hget(this.key("publishers"), name);
    return data ? (JSON.parse(data) as PublisherRecord) : null;
  }

  async listPublishers(): Promise<PublisherRecord[]> {
    return Object.values(await this.redis.hgetall(this.key("publishers"))).map((data) => JSON.parse(data) as PublisherRecord);
  }

  async deletePublisher(id: string): Promise<boolean> {
    const publisher = (await this.listPublishers()).find((p) => p.id === id);
    if (!publisher) return false;
    return (await this.redis.hdel(this.key("publishers"), publisher.name)) === 1;
  }

  async reserveSend(request: SendReservation, now: number): Promise<ReserveOutcome> {
    const watch = request.watch;
    const reply = await this.redis.otpgateReserveFraudSend(
      this.keyPrefix,
      now,
      BUCKETS_PER_WINDOW,
      watch ? "1" : "0",
      watch?.prefix ?? "",
      watch?.policy.windowMs ?? 0,
      watch?.policy.minSends ?? 0,
      watch?.policy.minConversion ?? 0,
      watch?.policy.graceMs ?? 0,
      watch?.policy.holdMs ?? 0,
      watch?.countSend ? "1" : "0",
      ...request.quotas.flatMap((quota) => [quota.key, quota.limit, quota.windowMs]),
    );
    const [outcome] = reply;
    if (outcome === "held") {
      const [, prefix, tripped, ms, sent, verified] = reply;
      return { ok: false, reason: "held", prefix: String(prefix), tripped: Number(tripped) === 1, retryAfterMs: Number(ms), sent: Number(sent), verified: Number(verified) };
    }
    if (outcome === "quota") {
      const [, key, limit, ms] = reply;
      return { ok: false, reason: "quota", key: String(key), limit: Number(limit), retryAfterMs: Number(ms) };
    }
    return { ok: true };
  }

  async releaseSend(request: SendReservation, at: number): Promise<void> {
    const counters = reservedCounters(request);
    if (counters.length === 0) return;
    await this.redis.otpgateReleaseFraudSend(this.keyPrefix, at, BUCKETS_PER_WINDOW, ...counters.flatMap(({ key, windowMs }) => [key, windowMs]));
  }

  async recordVerified(prefix: string, policy: WatchPolicy, now: number): Promise<{ lifted: boolean }> {
    const lifted = await this.redis.otpgateRecordFraudVerified(this.keyPrefix, prefix, now, BUCKETS_PER_WINDOW, policy.windowMs, policy.minConversion, policy.graceMs);
    return { lifted: lifted === 1 };
  }

  private holdOf(prefix: string, fields: (string | null)[]): FraudHold | null {
    const [heldAt, until, sent, verified] = fields;
    if (!until) return null;
    return { prefix, heldAt: Number(heldAt), until: Number(until), sent: Number(sent), verified: Number(verified) };
  }

  async listFraudHolds(now: number): Promise<FraudHold[]> {
    const prefixes = await this.redis.zrangebyscore(this.key("fraud", "holds"), `(${now}`, "+inf");
    if (prefixes.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const prefix of prefixes) pipeline.hmget(this.key("fraud", "hold", prefix), "heldAt", "until", "sent", "verified");
    const replies = (await pipeline.exec()) ?? [];
    return replies
      .map(([, fields], i) => this.holdOf(prefixes[i]!, (fields as (string | null)[] | null) ?? []))
      .filter((hold): hold is FraudHold => hold !== null && hold.until > now)
      .sort((a, b) => a.heldAt - b.heldAt);
  }

  async clearFraudHold(prefix: string, now: number): Promise<FraudHold | null> {
    return this.holdOf(prefix, await this.redis.otpgateClearFraudHold(this.keyPrefix, prefix, now));
  }

  async listMessages(query: HistoryQuery): Promise<HistoryPage> {
    const filtered = query.states !== undefined || query.route !== undefined;
    return this.scanHistory("message", query, async (positions) => {
      const pipeline = this.redis.pipeline();
      // Unfiltered, a page only needs to know the record is still there: nothing to open.
      for (const { id } of positions) {
        if (filtered) pipeline.hget(this.key("job", id), "data");
        else pipeline.exists(this.key("job", id));
      }
      return (await execAll(pipeline)).map((reply) => {
        if (!filtered) return reply === 1;
        return typeof reply === "string" && jobMatches(this.open<Job>(reply), query);
      });
    });
  }

  async listOtps(query: HistoryQuery, now: number): Promise<HistoryPage> {
    const byJob = query.states !== undefined || query.route !== undefined;
    return this.scanHistory("otp", query, async (positions) => {
      const pipeline = this.redis.pipeline();
      const fields = byJob ? ["status", "expiresAt", "data"] : ["status", "expiresAt"];
      for (const { id } of positions) pipeline.hmget(this.key("otp", id), ...fields);
      const records = (await execAll(pipeline)) as [string | null, string | null, (string | null)?][];
      const accepted = records.map(([status, expiresAt]) => {
        if (status === null) return false;
        return !query.statuses || query.statuses.includes(otpStatusAt({ status: status as OtpStatus, expiresAt: Number(expiresAt) }, now));
      });
      if (!byJob) return accepted;
      // The state and route are the OTP's job's: read those jobs in one more round trip.
      const jobIds = records.map(([, , data], i) => (accepted[i] && data ? this.open<Pick<OtpRecord, "jobId">>(data).jobId : null));
      const jobs = this.redis.pipeline();
      for (const jobId of jobIds) if (jobId !== null) jobs.hget(this.key("job", jobId), "data");
      const jobData = (await execAll(jobs)) as (string | null)[];
      let next = 0;
      return jobIds.map((jobId) => {
        if (jobId === null) return false;
        const data = jobData[next++];
        return jobMatches(typeof data === "string" ? this.open<Job>(data) : null, query);
      });
    });
  }

  /**
   * Walks a history index newest first from the query's cursor and time
   * window, a batch of entries per round trip, keeping those `accept` takes
   * (it also drops entries whose record has already expired), until the page
   * is full and one more match shows there is a next page, the index ends, or
   * HISTORY_SCAN_LIMIT entries were looked at.
   */
  private async scanHistory(kind: HistoryKind, query: HistoryQuery, accept: (positions: HistoryPosition[]) => Promise<boolean[]>): Promise<HistoryPage> {
    checkLimit(query);
    const index = this.key("hist", kind);
    const min = query.since !== undefined ? `[${memberTimeBound(query.since)}` : "-";
    // Both bounds exclusive; the lower of the two applies. A bare time sorts before every entry made at that time.
    const uppers = [query.until !== undefined ? memberTimeBound(query.until) : null, query.after ? historyMember(query.after) : null].filter((b): b is string => b !== null);
    let max = uppers.length ? `(${uppers.sort(compareIds)[0]}` : "+";
    const batch = Math.min(HISTORY_BATCH.max, Math.max(HISTORY_BATCH.min, query.limit + 1));
    const taken: HistoryPosition[] = [];
    const page = (next: HistoryPosition | null): HistoryPage => ({ ids: taken.map((p) => p.id), next });
    for (let scanned = 0; ; ) {
      const entries = await this.redis.zrevrangebylex(index, max, min, "LIMIT", 0, batch);
      const positions = entries.map(positionOfMember);
      const accepted = positions.length ? await accept(positions) : [];
      for (const [i, position] of positions.entries()) {
        if (!accepted[i]) continue;
        if (taken.length === query.limit) return page(taken.at(-1)!);
        taken.push(position);
      }
      scanned += entries.length;
      if (entries.length < batch) return page(null);
      if (scanned >= HISTORY_SCAN_LIMIT) return page(positions.at(-1)!);
      max = `(${entries.at(-1)!}`;
    }
  }

  /** Drops the history entries of records that have expired, in rounds of TRIM_BATCH. */
  async sweep(now: number): Promise<void> {
    let removed: number;
    do removed = await this.redis.otpgateTrimHistory(this.key("hist", "keep"), this.keyPrefix, now, TRIM_BATCH);
    while (removed === TRIM_BATCH);
  }

  async ping(): Promise<void> {
    await this.redis.ping();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweeper);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}

/** A pipeline's replies, the first error thrown. */
async function execAll(pipeline: ChainableCommander): Promise<unknown[]> {
  return ((await pipeline.exec()) ?? []).map(([error, reply]) => {
    if (error) throw error;
    return reply;
  });
}
