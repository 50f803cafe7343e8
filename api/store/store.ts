/**
 * The Store interface: everything otpgate keeps. Two implementations
 * (memory-store.ts, redis-store.ts) pass the same contract suite
 * (test/store/store-contract.ts). Every method that decides something does it
 * atomically: two nodes, or two requests on one node, never both win.
 */
import type { Job } from "../delivery/job-state.js";
import type { IssueRejection, OtpPolicy, OtpRecord, VerificationOutcome } from "../otp/rules.js";

/** Sliding window for device send budgets, the way Android counts its own SMS limit. */
export const DEVICE_WINDOW_MS = 60_000;
/** Presence is refreshed by every status report; what a dead node left behind expires. */
export const PRESENCE_TTL_MS = 24 * 3_600_000;

export type ApiKeyScope = "admin" | "otp" | "messages" | "publisher";

export interface ApiKeyRecord {
  id: string;
  name: string;
  /** hex SHA-256 of the key; keys are 256-bit random, so a fast hash is enough. */
  digest: string;
  scopes: ApiKeyScope[];
  createdAt: string;
  revokedAt?: string;
  /** First characters of the key, to recognise it in a list. */
  prefix: string;
}

/** A phone registered as a sending device. Its MQTT password is the token; only the digest is kept. */
export interface DeviceRecord {
  id: string;
  name: string;
  tokenDigest: string;
  maxPerMinute: number;
  /** E.164 prefixes this device prefers (e.g. its SIM's country); empty = any number. */
  prefixes: string[];
  createdAt: string;
}

/** What the broker knows of a device right now; not persisted beyond its TTL. */
export interface DevicePresence {
  online: boolean;
  /** The broker connection this state belongs to, so an old connection's close does not mark a new one offline. */
  session?: string;
  since: string;
  /** Last time a node confirmed the connection is still there. */
  seenAt?: string;
  battery?: number;
  signal?: number;
  sims?: unknown[];
  app?: string;
  /** When the phone last reported its status (`at` of sms/device). */
  reportedAt?: string;
}

/** Another system allowed to publish to `sms/send` and `sms/out/+`. */
export interface PublisherRecord {
  id: string;
  /** The MQTT username. */
  name: string;
  tokenDigest: string;
  createdAt: string;
}

export type IssueResult = { ok: true } | ({ ok: false } & IssueRejection);

export type VerifyResult = { found: false } | ({ found: true } & VerificationOutcome);

export interface Store {
  readonly kind: "memory" | "redis";

  /**
   * Atomically: refuse if any subject is locked, in cooldown or over its hourly
   * cap; otherwise count the send, start the cooldown, expire the subject's
   * previous pending OTP and save this one.
   */
  issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult>;
  getOtp(id: string): Promise<OtpRecord | null>;
  /** The newest OTP issued for a subject (`user:…`, `phone:…`, `email:…`), if still kept. */
  latestOtpId(subject: string): Promise<string | null>;
  /**
   * Atomically apply one verification attempt (rules.settleVerification) and
   * the subjects' failure counting and lockout. `matched` comes from a
   * constant-time comparison the caller made against `getOtp(id).digest`.
   */
  verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult>;

  /**
   * Saves a new job and indexes it by `expiresAt` until it settles. False when
   * a job with that id exists already (a repeated publish): it is left as it is.
   */
  createJob(job: Job, ttlSeconds: number): Promise<boolean>;
  getJob(id: string): Promise<Job | null>;
  /**
   * Read-modify-write a job without lost updates. `change` returns the new job,
   * or null to leave it as it is; it may be called more than once under
   * contention, so it must be pure. Returns the job as stored afterwards.
   */
  updateJob(id: string, change: (job: Job) => Job | null): Promise<Job | null>;
  /**
   * Ids of jobs not yet settled whose `expiresAt` has passed: work a crashed
   * node left behind. The caller expires them, which drops them from the index.
   */
  overdueJobIds(now: number, limit: number): Promise<string[]>;

  saveApiKey(record: ApiKeyRecord): Promise<void>;
  findApiKeyByDigest(digest: string): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Returns the revoked record, or null if no key has that id. */
  revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null>;

  saveDevice(record: DeviceRecord): Promise<void>;
  getDevice(id: string): Promise<DeviceRecord | null>;
  listDevices(): Promise<DeviceRecord[]>;
  deleteDevice(id: string): Promise<boolean>;

  /**
   * Writes a device's presence; with `onlyIfSession`, only while the stored
   * presence still belongs to that connection (false otherwise). Atomic, so a
   * node closing an old connection cannot overwrite the state of a newer one.
   */
  setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean>;
  /** Presence of each id, or null when the broker never saw it (or forgot it). */
  getPresence(deviceIds: string[]): Promise<(DevicePresence | null)[]>;

  /**
   * Counts one SMS against the device's per-minute budget if it has room;
   * false when it is full. Atomic, so nodes sharing a phone never overrun it.
   */
  reserveDeviceSend(deviceId: string, maxPerMinute: number, now: number): Promise<boolean>;
  /** SMS counted in each device's current minute window. */
  deviceSendCounts(deviceIds: string[], now: number): Promise<number[]>;

  savePublisher(record: PublisherRecord): Promise<void>;
  findPublisherByName(name: string): Promise<PublisherRecord | null>;
  listPublishers(): Promise<PublisherRecord[]>;
  deletePublisher(id: string): Promise<boolean>;

  /** Throws when the backing service cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
