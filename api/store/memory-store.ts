/**
 * The default store: one process, no Redis. Everything lives in maps whose
 * entries expire like Redis keys would; API keys are also written to a JSON
 * file under DATA_DIR so they survive a restart. Node runs one callback at a
 * time, so a method that does not await between its read and its write is
 * atomic, which is all the contract asks.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isSettled, type Job } from "../delivery/job-state.js";
import { secondsUntil, settleVerification, type OtpPolicy, type OtpRecord } from "../otp/rules.js";
import {
  DEVICE_WINDOW_MS,
  PRESENCE_TTL_MS,
  type ApiKeyRecord,
  type DevicePresence,
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

  get size(): number {
    return this.entries.size;
  }
}

export interface MemoryStoreOptions {
  /** JSON file that keeps API keys across restarts; omit for a purely in-memory store (tests). */
  persistFile?: string;
  sweepIntervalMs?: number;
}

interface Counter {
  count: number;
}

export class MemoryStore implements Store {
  readonly kind = "memory" as const;
  private readonly otps = new ExpiringMap<OtpRecord>();
  private readonly latest = new ExpiringMap<string>();
  private readonly cooldowns = new ExpiringMap<true>();
  private readonly sendCounts = new ExpiringMap<Counter>();
  private readonly failures = new ExpiringMap<Counter>();
  private readonly locks = new ExpiringMap<true>();
  private readonly jobs = new ExpiringMap<Job>();
  private readonly apiKeys = new Map<string, ApiKeyRecord>();
  private readonly devices = new Map<string, DeviceRecord>();
  private readonly publishers = new Map<string, PublisherRecord>();
  private readonly presence = new ExpiringMap<DevicePresence>();
  private readonly deviceSends = new Map<string, number[]>();
  /** Unsettled job id → expiresAt (ms). */
  private readonly activeJobs = new Map<string, number>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly options: MemoryStoreOptions = {}) {
    if (options.persistFile) this.load(options.persistFile);
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult> {
    for (const subject of record.subjects) {
      const lockedUntil = this.locks.expiresAt(subject, now);
      if (lockedUntil) return { ok: false, reason: "locked", retryAfterSeconds: secondsUntil(lockedUntil, now) };
    }
    for (const subject of record.subjects) {
      const coolUntil = this.cooldowns.expiresAt(subject, now);
      if (coolUntil) return { ok: false, reason: "cooldown", retryAfterSeconds: secondsUntil(coolUntil, now) };
    }
    for (const subject of record.subjects) {
      const counter = this.sendCounts.get(subject, now);
      if (counter && counter.count >= policy.maxSendsPerHour) {
        return { ok: false, reason: "hourly_cap", retryAfterSeconds: secondsUntil(this.sendCounts.expiresAt(subject, now)!, now) };
      }
    }
    const keepUntil = record.expiresAt + policy.retentionSeconds * 1000;
    for (const subject of record.subjects) {
      if (policy.resendCooldownSeconds > 0) this.cooldowns.set(subject, true, now + policy.resendCooldownSeconds * 1000);
      const counter = this.sendCounts.get(subject, now);
      if (counter) counter.count += 1;
      else this.sendCounts.set(subject, { count: 1 }, now + 3_600_000);
      const previousId = this.latest.get(subject, now);
      const previous = previousId ? this.otps.get(previousId, now) : undefined;
      if (previous && previous.status === "pending") this.otps.replace(previous.id, { ...previous, status: "expired" });
      this.latest.set(subject, record.id, keepUntil);
    }
    this.otps.set(record.id, { ...record }, keepUntil);
    return { ok: true };
  }

  async getOtp(id: string): Promise<OtpRecord | null> {
    const record = this.otps.get(id);
    return record ? { ...record } : null;
  }

  async latestOtpId(subject: string): Promise<string | null> {
    return this.latest.get(subject) ?? null;
  }

  async verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult> {
    const record = this.otps.get(id, now);
    if (!record) return { found: false };
    if (record.status === "pending") {
      for (const subject of record.subjects) {
        const lockedUntil = this.locks.expiresAt(subject, now);
        if (lockedUntil) {
          return {
            found: true,
            valid: false,
            status: record.status,
            attemptsLeft: Math.max(0, record.maxAttempts - record.attempts),
            lockedForSeconds: secondsUntil(lockedUntil, now),
          };
        }
      }
    }
    const { record: next, outcome } = settleVerification(record, matched, now);
    this.otps.replace(id, next);
    if (next.attempts > record.attempts) this.countFailureOrSuccess(record.subjects, outcome.valid, policy, now);
    return { found: true, ...outcome };
  }

  private countFailureOrSuccess(subjects: string[], valid: boolean, policy: OtpPolicy, now: number): void {
    for (const subject of subjects) {
      if (valid) {
        this.failures.delete(subject);
        continue;
      }
      const counter = this.failures.get(subject, now);
      const count = (counter?.count ?? 0) + 1;
      // The failure count outlives any one code, so resending cannot reset it.
      this.failures.set(subject, { count }, now + policy.lockoutSeconds * 1000);
      if (count >= policy.lockoutThreshold) {
        this.locks.set(subject, true, now + policy.lockoutSeconds * 1000);
        this.failures.delete(subject);
      }
    }
  }

  async createJob(job: Job, ttlSeconds: number): Promise<boolean> {
    if (this.jobs.get(job.id)) return false;
    this.jobs.set(job.id, structuredClone(job), Date.now() + ttlSeconds * 1000);
    if (!isSettled(job)) this.activeJobs.set(job.id, Date.parse(job.expiresAt));
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
    if (next) this.jobs.replace(id, structuredClone(next));
    if (isSettled(next ?? current)) this.activeJobs.delete(id);
    return structuredClone(next ?? current);
  }

  async overdueJobIds(now: number, limit: number): Promise<string[]> {
    const overdue: string[] = [];
    for (const [id, expiresAt] of this.activeJobs) {
      if (overdue.length >= limit) break;
      if (expiresAt > now) continue;
      if (this.jobs.get(id)) overdue.push(id);
      else this.activeJobs.delete(id);
    }
    return overdue;
  }

  async saveApiKey(record: ApiKeyRecord): Promise<void> {
    this.apiKeys.set(record.digest, { ...record });
    this.persist();
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
      this.persist();
      return { ...record };
    }
    return null;
  }

  async saveDevice(record: DeviceRecord): Promise<void> {
    this.devices.set(record.id, structuredClone(record));
    this.persist();
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
    if (existed) this.persist();
    return existed;
  }

  async setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean> {
    if (onlyIfSession !== undefined && this.presence.get(deviceId)?.session !== onlyIfSession) return false;
    this.presence.set(deviceId, { ...presence }, Date.now() + PRESENCE_TTL_MS);
    return true;
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
    this.persist();
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
    if (existed) this.persist();
    return existed;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  private sweep(): void {
    const now = Date.now();
    for (const map of [this.otps, this.latest, this.cooldowns, this.sendCounts, this.failures, this.locks, this.jobs, this.presence]) {
      (map as ExpiringMap<unknown>).sweep(now);
    }
  }

  private load(file: string): void {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
      throw error;
    }
    const saved = JSON.parse(text) as { apiKeys?: ApiKeyRecord[]; devices?: DeviceRecord[]; publishers?: PublisherRecord[] };
    for (const record of saved.apiKeys ?? []) this.apiKeys.set(record.digest, record);
    for (const record of saved.devices ?? []) this.devices.set(record.id, record);
    for (const record of saved.publishers ?? []) this.publishers.set(record.id, record);
  }

  /** What must survive a restart (keys, devices, publishers), written to a temporary file and renamed, so a crash never leaves half a file. */
  private persist(): void {
    const file = this.options.persistFile;
    if (!file) return;
    mkdirSync(path.dirname(file), { recursive: true });
    const temporary = `${file}.${process.pid}.tmp`;
    const state = { apiKeys: [...this.apiKeys.values()], devices: [...this.devices.values()], publishers: [...this.publishers.values()] };
    writeFileSync(temporary, JSON.stringify(state, null, 2), { mode: 0o600 });
    renameSync(temporary, file);
  }
}
