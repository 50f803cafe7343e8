/**
 * The in-memory store (STORE=memory): tests and throwaway runs. Nothing
 * survives the process. Entries expire like Redis keys would. Node runs one
 * callback at a time, so a method that does not await between its read and
 * its write is atomic, which is all the contract asks.
 */
import { dueAt, type Job } from "../delivery/job-state.js";
import {
  bucketKeepUntil,
  bucketOf,
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
  type SubjectLimits,
} from "../otp/rules.js";
import { historyKeepUntil, jobMatches, otpStatusAt, pageOf, type HistoryPage, type HistoryQuery } from "./history.js";
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

class ExpiringMap<V> {
  private readonly entries = new Map<string, { value: V; expiresAt: number }>();

  get(key: string, now = Date.now()): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return entry.value;
  }

  expiresAt(key: string, now = Date.now()): number | undefined {
    return this.get(key, now) === undefined ? undefined : this.entries.get(key)!.expiresAt;
  }

  set(key: string, value: V, expiresAt: number): void {
    this.entries.set(key, { value, expiresAt });
  }

  /** Replace the value, keeping the expiry (like Redis KEEPTTL). */
  replace(key: string, value: V): void {
    const entry = this.entries.get(key);
    if (entry) entry.value = value;
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  sweep(now = Date.now()): void {
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key);
  }

  values(): V[] {
    return [...this.entries.values()].map((entry) => entry.value);
  }

  /** What has not expired yet, whether or not a sweep has run. */
  liveValues(now = Date.now()): V[] {
    return [...this.entries.values()].filter((entry) => entry.expiresAt > now).map((entry) => entry.value);
  }
}

export interface MemoryStoreOptions {
  sweepIntervalMs?: number;
  /** OTPs and jobs are kept at least this long after their creation (HISTORY_RETENTION_DAYS); 0: only as long as their callers ask. */
  historyRetentionMs?: number;
}

export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  private readonly otps = new ExpiringMap<OtpRecord>();
  private readonly subjects = new ExpiringMap<SubjectLimits>();
  private readonly jobs = new ExpiringMap<Job>();
  private readonly apiKeys = new Map<string, ApiKeyRecord>();
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly publishers = new Map<string, PublisherRecord>();
  private readonly presence = new ExpiringMap<DevicePresence>();
  private readonly deviceSends = new Map<string, number[]>();
  private readonly cancels = new ExpiringMap<CancelRecord>();
  /** Unsettled job id → when it is due (job-state.dueAt). */
  private readonly dueJobs = new Map<string, number>();
  /** Fraud counters: key → bucket → count, each bucket kept until it leaves its window. */
  private readonly fraudCounts = new Map<string, Map<number, { count: number; keepUntil: number }>>();
  private readonly fraudHolds = new Map<string, FraudHold>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly historyRetentionMs: number;

  constructor(options: MemoryStoreOptions = {}) {
    this.historyRetentionMs = options.historyRetentionMs ?? 0;
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  private limitsOf(subject: string, now: number): SubjectLimits {
    return limitsAt(this.subjects.get(subject, now) ?? NO_LIMITS, now);
  }

  private saveLimits(subject: string, limits: SubjectLimits): void {
    this.subjects.set(subject, limits, limitsKeepUntil(limits));
  }

  async issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult> {
    const limits = record.subjects.map((subject) => this.limitsOf(subject, now));
    const refused = decideIssue(limits, policy, now);
    if (refused) return { ok: false, ...refused };
    record.subjects.forEach((subject, i) => {
      const previous = limits[i]!.latestOtpId ? this.otps.get(limits[i]!.latestOtpId!, now) : undefined;
      if (previous && previous.id !== record.id && previous.status === "pending") this.otps.replace(previous.id, { ...previous, status: "expired" });
      this.saveLimits(subject, limitsAfterIssue(limits[i]!, record, policy, now));
    });
    this.otps.set(record.id, { ...record }, historyKeepUntil(record.createdAt, keepOtpUntil(record, policy), this.historyRetentionMs));
    return { ok: true };
  }

  async getOtp(id: string): Promise<OtpRecord | null> {
    const record = this.otps.get(id);
    return record ? { ...record } : null;
  }

  async latestOtpId(subject: string): Promise<string | null> {
    return this.limitsOf(subject, Date.now()).latestOtpId ?? null;
  }

  async verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult> {
    const record = this.otps.get(id, now);
    if (!record) return { found: false };
    const limits = record.subjects.map((subject) => this.limitsOf(subject, now));
    const { record: next, outcome, counted } = settleVerification(record, matched, lockOf(limits, now), now);
    this.otps.replace(id, next);
    if (counted) record.subjects.forEach((subject, i) => this.saveLimits(subject, limitsAfterCheck(limits[i]!, outcome.valid, policy, now)));
    return { found: true, ...outcome };
  }

  private index(job: Job): void {
    const due = dueAt(job);
    if (due === null) this.dueJobs.delete(job.id);
    else this.dueJobs.set(job.id, due);
  }

  async createJob(job: Job, ttlSeconds: number): Promise<boolean> {
    if (this.jobs.get(job.id)) return false;
    this.jobs.set(job.id, structuredClone(job), historyKeepUntil(Date.parse(job.createdAt), Date.now() + ttlSeconds * 1000, this.historyRetentionMs));
    this.index(job);
    return true;
  }

  async getJob(id: string): Promise<Job | null> {
    const job = this.jobs.get(id);
    return job ? structuredClone(job) : null;
  }

  async updateJob(id: string, change: (job: Job) => Job | null): Promise<Job | null> {
    const current = this.jobs.get(id);
    if (!current) return null;
    const next = change(structuredClone(current));
    if (!next) return structuredClone(current);
    this.jobs.replace(id, structuredClone(next));
    this.index(next);
    return structuredClone(next);
  }

  async dueJobIds(now: number, limit: number): Promise<string[]> {
    const due: string[] = [];
    for (const [id, at] of this.dueJobs) {
      if (due.length >= limit) break;
      if (at > now) continue;
      if (this.jobs.get(id)) due.push(id);
      else this.dueJobs.delete(id);
    }
    return due;
  }

  async saveCancel(cancel: CancelRecord): Promise<void> {
    this.cancels.set(cancel.jobId, { ...cancel }, cancel.until);
  }

  async activeCancels(now: number): Promise<CancelRecord[]> {
    this.cancels.sweep(now);
    return this.cancels.values().map((cancel) => ({ ...cancel }));
  }

  async saveApiKey(record: ApiKeyRecord): Promise<void> {
    this.apiKeys.set(record.digest, { ...record });
  }

  async findApiKeyByDigest(digest: string): Promise<ApiKeyRecord | null> {
    const record = this.apiKeys.get(digest);
    return record ? { ...record } : null;
  }

  async listApiKeys(): Promise<ApiKeyRecord[]> {
    return [...this.apiKeys.values()].map((record) => ({ ...record }));
  }

  async revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null> {
    for (const record of this.apiKeys.values()) {
      if (record.id !== id) continue;
      record.revokedAt ??= at.toISOString();
        return { ...record };
    }
    return null;
  }

  async saveDevice(record: DeviceRecord): Promise<void> {
    this.devices.set(record.id, structuredClone(record));
  }

  async getDevice(id: string): Promise<DeviceRecord | null> {
    const record = this.devices.get(id);
    return record ? structuredClone(record) : null;
  }

  async listDevices(): Promise<DeviceRecord[]> {
    return [...this.devices.values()].map((record) => structuredClone(record));
  }

  async deleteDevice(id: string): Promise<boolean> {
    const existed = this.devices.delete(id);
    this.presence.delete(id);
    this.deviceSends.delete(id);
    return existed;
  }

  async setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean> {
    if (onlyIfSession !== undefined && this.presence.get(deviceId)?.session !== onlyIfSession) return false;
    this.presence.set(deviceId, { ...presence }, Date.now() + PRESENCE_TTL_MS);
    return true;
  }

  async setPresences(writes: readonly PresenceWrite[]): Promise<boolean[]> {
    const written: boolean[] = [];
    for (const { deviceId, presence, onlyIfSession } of writes) written.push(await this.setPresence(deviceId, presence, onlyIfSession));
    return written;
  }

  async getPresence(deviceIds: string[]): Promise<(DevicePresence | null)[]> {
    return deviceIds.map((id) => {
      const presence = this.presence.get(id);
      return presence ? { ...presence } : null;
    });
  }

  private recentSends(deviceId: string, now: number): number[] {
    const recent = (this.deviceSends.get(deviceId) ?? []).filter((at) => at > now - DEVICE_WINDOW_MS);
    this.deviceSends.set(deviceId, recent);
    return recent;
  }

  async reserveDeviceSend(deviceId: string, maxPerMinute: number, now: number): Promise<boolean> {
    const recent = this.recentSends(deviceId, now);
    if (recent.length >= maxPerMinute) return false;
    recent.push(now);
    return true;
  }

  async deviceSendCounts(deviceIds: string[], now: number): Promise<number[]> {
    return deviceIds.map((id) => this.recentSends(id, now).length);
  }

  async savePublisher(record: PublisherRecord): Promise<void> {
    this.publishers.set(record.id, { ...record });
  }

  async findPublisherByName(name: string): Promise<PublisherRecord | null> {
    const record = [...this.publishers.values()].find((p) => p.name === name);
    return record ? { ...record } : null;
  }

  async listPublishers(): Promise<PublisherRecord[]> {
    return [...this.publishers.values()].map((record) => ({ ...record }));
  }

  async deletePublisher(id: string): Promise<boolean> {
    const existed = this.publishers.delete(id);
    return existed;
  }

  private counts(key: string): BucketCounts {
    const buckets = this.fraudCounts.get(key);
    return new Map([...(buckets ?? [])].map(([bucket, { count }]) => [bucket, count]));
  }

  private addCount(key: string, windowMs: number, at: number, delta: number): void {
    const bucket = bucketOf(at, windowMs);
    const buckets = this.fraudCounts.get(key) ?? new Map<number, { count: number; keepUntil: number }>();
    const count = Math.max(0, (buckets.get(bucket)?.count ?? 0) + delta);
    buckets.set(bucket, { count, keepUntil: bucketKeepUntil(bucket, windowMs) });
    this.fraudCounts.set(key, buckets);
  }

  async reserveSend(request: SendReservation, now: number): Promise<ReserveOutcome> {
    const prefix = request.watch?.prefix;
    const plan = planSend(
      request,
      {
        quotas: request.quotas.map((quota) => this.counts(quota.key)),
        ...(prefix !== undefined ? { sent: this.counts(watchSentKey(prefix)), verified: this.counts(watchVerifiedKey(prefix)), hold: this.fraudHolds.get(prefix) ?? null } : {}),
      },
      now,
    );
    if (prefix !== undefined && plan.liftHold) this.fraudHolds.delete(prefix);
    if (plan.setHold) this.fraudHolds.set(plan.setHold.prefix, plan.setHold);
    for (const { key, windowMs } of plan.increments) this.addCount(key, windowMs, now, 1);
    return plan.outcome;
  }

  async releaseSend(request: SendReservation, at: number): Promise<void> {
    for (const { key, windowMs } of reservedCounters(request)) this.addCount(key, windowMs, at, -1);
  }

  async recordVerified(prefix: string, policy: WatchPolicy, now: number): Promise<{ lifted: boolean }> {
    const { lift } = planVerified({ sent: this.counts(watchSentKey(prefix)), verified: this.counts(watchVerifiedKey(prefix)), hold: this.fraudHolds.get(prefix) ?? null }, policy, now);
    this.addCount(watchVerifiedKey(prefix), policy.windowMs, now, 1);
    if (lift) this.fraudHolds.delete(prefix);
    return { lifted: lift };
  }

  async listFraudHolds(now: number): Promise<FraudHold[]> {
    return [...this.fraudHolds.values()].filter((hold) => hold.until > now).map((hold) => ({ ...hold }));
  }

  async clearFraudHold(prefix: string, now: number): Promise<FraudHold | null> {
    const hold = this.fraudHolds.get(prefix);
    this.fraudHolds.delete(prefix);
    if (!hold || hold.until <= now) return null;
    this.fraudCounts.delete(watchSentKey(prefix));
    this.fraudCounts.delete(watchVerifiedKey(prefix));
    return { ...hold };
  }

  async listMessages(query: HistoryQuery): Promise<HistoryPage> {
    const messages = this.jobs.liveValues().filter((job) => job.kind === "message");
    return pageOf(messages, (job) => ({ createdAt: Date.parse(job.createdAt), id: job.id }), (job) => jobMatches(job, query), query);
  }

  async listOtps(query: HistoryQuery, now: number): Promise<HistoryPage> {
    const matches = (record: OtpRecord) =>
      (!query.statuses || query.statuses.includes(otpStatusAt(record, now))) && jobMatches(this.jobs.get(record.jobId, now) ?? null, query);
    return pageOf(this.otps.liveValues(), (record) => ({ createdAt: record.createdAt, id: record.id }), matches, query);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /** Forgets what is past its time; history needs no index of its own here, it reads the records. */
  sweep(now = Date.now()): void {
    for (const map of [this.otps, this.subjects, this.jobs, this.presence, this.cancels]) {
      (map as ExpiringMap<unknown>).sweep(now);
    }
    for (const [key, buckets] of this.fraudCounts) {
      for (const [bucket, { keepUntil }] of buckets) if (keepUntil <= now) buckets.delete(bucket);
      if (buckets.size === 0) this.fraudCounts.delete(key);
    }
    for (const [prefix, hold] of this.fraudHolds) if (hold.until <= now) this.fraudHolds.delete(prefix);
  }
}
