/**
 * What otpgate keeps, split by feature (OTPs, jobs, keys, devices,
 * publishers). Three implementations, memory-store.ts (tests and throwaway
 * runs), sqlite-store.ts (the default, a file in DATA_DIR) and redis-store.ts
 * (a cluster), pass one contract suite (test/store/). Every method that
 * decides something does it atomically: two nodes, or two requests on one
 * node, never both win.
 */
import type { Job } from "../delivery/job-state.js";
import type { FraudHold, KeyFraudSettings, ReserveOutcome, SendReservation, WatchPolicy } from "../fraud/fraud-rules.js";
import type { IssueRejection, OtpPolicy, OtpRecord, VerificationOutcome } from "../otp/rules.js";
import type { HistoryPage, HistoryQuery } from "./history.js";

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
  /** The fraud guard's per-key quotas and geo permissions (POST /v1/keys); absent = the node's. */
  quotas?: KeyFraudSettings["quotas"];
  allowedCountries?: string[];
  blockedCountries?: string[];
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

/** A job taken back from a phone: no broker may hand it to that phone any more. */
export interface CancelRecord {
  jobId: string;
  deviceId: string;
  /** Epoch ms after which the cancel can be forgotten (the job's expiry). */
  until: number;
}

/** OTPs and the per-subject limits around them (api/otp/rules.ts decides; the store keeps it atomic). */
export interface OtpStore {
  /**
   * Atomically: refuse if any subject is locked, in cooldown or over its hourly
   * cap (rules.decideIssue); otherwise count the send, start the cooldown,
   * expire the subject's previous pending OTP and save this one.
   */
  issueOtp(record: OtpRecord, policy: OtpPolicy, now: number): Promise<IssueResult>;
  getOtp(id: string): Promise<OtpRecord | null>;
  /** The newest OTP issued for a subject key (rules.subjectKey), if still kept. */
  latestOtpId(subject: string): Promise<string | null>;
  /**
   * Atomically apply one verification attempt (rules.settleVerification) and
   * the subjects' failure counting and lockout (rules.limitsAfterCheck).
   * `matched` comes from a constant-time comparison the caller made against
   * `getOtp(id).digest`.
   */
  verifyOtp(id: string, matched: boolean, policy: OtpPolicy, now: number): Promise<VerifyResult>;
}

/** Delivery jobs, their leases, and the cancels that take a job back from a phone. */
export interface JobStore {
  /**
   * Saves a new job, indexed by when it is due (job-state.dueAt) until it
   * settles. False when a job with that id exists already (a repeated
   * publish): it is left as it is.
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
   * Ids of unsettled jobs that are due (job-state.dueAt ≤ now): their lease
   * lapsed (the node carrying them died or handed them back) or they expired.
   */
  dueJobIds(now: number, limit: number): Promise<string[]>;
  saveCancel(cancel: CancelRecord): Promise<void>;
  /** Cancels not yet past their `until`. */
  activeCancels(now: number): Promise<CancelRecord[]>;
}

/** API keys, kept as digests. */
export interface KeyStore {
  saveApiKey(record: ApiKeyRecord): Promise<void>;
  findApiKeyByDigest(digest: string): Promise<ApiKeyRecord | null>;
  listApiKeys(): Promise<ApiKeyRecord[]>;
  /** Returns the revoked record, or null if no key has that id. */
  revokeApiKey(id: string, at: Date): Promise<ApiKeyRecord | null>;
}

export interface PresenceWrite {
  deviceId: string;
  presence: DevicePresence;
  onlyIfSession?: string;
}

/** Phones: their registration, what the broker sees of them, and their send budgets. */
export interface DeviceStore {
  saveDevice(record: DeviceRecord): Promise<void>;
  getDevice(id: string): Promise<DeviceRecord | null>;
  listDevices(): Promise<DeviceRecord[]>;
  /** Forgets the device with its presence and budget. */
  deleteDevice(id: string): Promise<boolean>;

  /**
   * Writes a device's presence; with `onlyIfSession`, only while the stored
   * presence still belongs to that connection (false otherwise). Atomic, so a
   * node closing an old connection cannot overwrite the state of a newer one.
   */
  setPresence(deviceId: string, presence: DevicePresence, onlyIfSession?: string): Promise<boolean>;
  /**
   * Many setPresence calls in one round (one transaction, one pipeline), each
   * with its own guard: what a reconnecting fleet needs instead of one commit
   * per phone. In order; a device named twice gets both writes, in turn.
   */
  setPresences(writes: readonly PresenceWrite[]): Promise<boolean[]>;
  /** Presence of each id, or null when the broker never saw it (or forgot it). */
  getPresence(deviceIds: string[]): Promise<(DevicePresence | null)[]>;

  /**
   * Counts one SMS against the device's per-minute budget if it has room;
   * false when it is full. Atomic, so nodes sharing a phone never overrun it.
   */
  reserveDeviceSend(deviceId: string, maxPerMinute: number, now: number): Promise<boolean>;
  /** SMS counted in each device's current minute window. */
  deviceSendCounts(deviceIds: string[], now: number): Promise<number[]>;
}

/** Other systems allowed to publish jobs over MQTT. */
export interface PublisherStore {
  savePublisher(record: PublisherRecord): Promise<void>;
  findPublisherByName(name: string): Promise<PublisherRecord | null>;
  listPublishers(): Promise<PublisherRecord[]>;
  deletePublisher(id: string): Promise<boolean>;
}

/**
 * The fraud guard's counters and holds (api/fraud/fraud-rules.ts decides; the
 * store keeps it atomic across nodes). Keys are non-identifying: key ids,
 * calling-code prefixes, keyed digests of numbers.
 */
export interface FraudStore {
  /**
   * Atomically (rules.planSend): refuse if the prefix is held or its
   * conversion collapsed (which holds it), or if any quota is full; otherwise
   * count the send in every quota and, with `watch.countSend`, in the watch.
   */
  reserveSend(request: SendReservation, now: number): Promise<ReserveOutcome>;
  /** Takes back what `reserveSend(request, at)` counted (the send was refused further on). */
  releaseSend(request: SendReservation, at: number): Promise<void>;
  /** Counts a verified code for the prefix; lifts its hold if conversion recovered (rules.planVerified). */
  recordVerified(prefix: string, policy: WatchPolicy, now: number): Promise<{ lifted: boolean }>;
  /** Holds in force at `now`. */
  listFraudHolds(now: number): Promise<FraudHold[]>;
  /** An operator's clear: removes the hold and starts the prefix's watch afresh. Null when none was in force. */
  clearFraudHold(prefix: string, now: number): Promise<FraudHold | null>;
}

/**
 * The history behind GET /v1/messages and GET /v1/otp (api/store/history.ts):
 * ids newest first by (createdAt, id), filtered, one page at a time. Records
 * are kept at least HISTORY_RETENTION_DAYS after their creation (the stores'
 * `historyRetentionMs`), and the clean-up that removes them afterwards removes
 * their index entries in the same step.
 */
export interface HistoryStore {
  /** Plain messages (jobs of kind `message`). */
  listMessages(query: HistoryQuery): Promise<HistoryPage>;
  /** OTPs; `now` decides which pending codes read as expired (history.otpStatusAt). */
  listOtps(query: HistoryQuery, now: number): Promise<HistoryPage>;
}

export type StoreKind = "memory" | "sqlite" | "redis";

/** Everything otpgate keeps: one object per node, implementing every feature's part. */
export interface Store extends OtpStore, JobStore, KeyStore, DeviceStore, PublisherStore, FraudStore, HistoryStore {
  readonly kind: StoreKind;
  /** Throws when the backing service cannot be reached. */
  ping(): Promise<void>;
  close(): Promise<void>;
}
