/**
 * The fraud guard's decisions, free of I/O: what kind of number a destination
 * is, whether the node's and the key's geo permissions allow it, how sliding
 * windows count, and when a country prefix's conversion (codes verified ÷
 * codes sent) says "pumping". The memory and SQLite stores call `planSend`
 * and `planVerified`; the Redis store runs the same steps in Lua
 * (redis-scripts.ts); the store contract suite holds all three to it.
 */
import { isSupportedCountry, parsePhoneNumberFromString, type CountryCode } from "libphonenumber-js/max";

/**
 * Number types as libphonenumber-js names them, plus SATELLITE (the
 * non-geographic ranges of its region 001: +881 satellite phones, +882/+883
 * international networks, +870 Inmarsat…) and UNKNOWN (no type known).
 */
export const NUMBER_TYPES = [
  "MOBILE",
  "FIXED_LINE",
  "FIXED_LINE_OR_MOBILE",
  "VOIP",
  "TOLL_FREE",
  "PREMIUM_RATE",
  "SHARED_COST",
  "PERSONAL_NUMBER",
  "PAGER",
  "UAN",
  "VOICEMAIL",
  "SATELLITE",
  "UNKNOWN",
] as const;
export type NumberCategory = (typeof NUMBER_TYPES)[number];

/** What a person's handset answers to; everything else must be enabled on purpose. */
export const DEFAULT_ALLOWED_NUMBER_TYPES: NumberCategory[] = ["MOBILE", "FIXED_LINE_OR_MOBILE", "FIXED_LINE", "VOIP"];

export type FraudCode =
  | "premium_rate_number"
  | "shared_cost_number"
  | "satellite_number"
  | "unknown_number_type"
  | "number_type_not_allowed"
  | "country_not_allowed"
  | "key_quota_exceeded"
  | "number_quota_exceeded"
  | "prefix_quota_exceeded"
  | "fraud_suspected";

/** 403 for what policy never allows (retrying will not help), 429 for volume (retry later). */
export const FRAUD_STATUS: Record<FraudCode, 403 | 429> = {
  premium_rate_number: 403,
  shared_cost_number: 403,
  satellite_number: 403,
  unknown_number_type: 403,
  number_type_not_allowed: 403,
  country_not_allowed: 403,
  key_quota_exceeded: 429,
  number_quota_exceeded: 429,
  prefix_quota_exceeded: 429,
  fraud_suspected: 429,
};

/** A send the guard refused. Transport-free: HTTP maps it to its status, MQTT intake logs and counts it. */
export class FraudRefusal extends Error {
  readonly status: 403 | 429;
  constructor(
    readonly code: FraudCode,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.status = FRAUD_STATUS[code];
  }
}

export interface NumberInfo {
  category: NumberCategory;
  /** ISO 3166 alpha-2; absent for non-geographic numbers. */
  country?: CountryCode;
  callingCode: string;
  /**
   * The prefix quotas and the conversion watch count under: the country
   * calling code, and for the North American plan (+1, 25 countries and
   * premium area codes) the area code too, so pumping in +1 876 does not
   * hide in, or hold back, all of +1. Digits only, never identifying.
   */
  prefix: string;
}

export function classifyNumber(e164: string): NumberInfo {
  const parsed = parsePhoneNumberFromString(e164);
  if (!parsed) return { category: "UNKNOWN", callingCode: "", prefix: "" };
  const callingCode = parsed.countryCallingCode;
  const prefix = callingCode === "1" ? `1${parsed.nationalNumber.slice(0, 3)}` : callingCode;
  const type = parsed.getType();
  // Premium and shared-cost ranges exist in region 001 too (+979, +808): the costlier verdict wins.
  const category: NumberCategory =
    type === "PREMIUM_RATE" || type === "SHARED_COST" ? type : parsed.isNonGeographic() ? "SATELLITE" : (type ?? "UNKNOWN");
  return { category, ...(parsed.country ? { country: parsed.country } : {}), callingCode, prefix };
}

export function isCountryCode(value: string): value is CountryCode {
  return isSupportedCountry(value);
}

/** Geo permissions: an allow-list (unset = every country) and a deny-list. */
export interface GeoPermissions {
  allowed?: readonly string[];
  blocked?: readonly string[];
}

/** Per-key settings (POST /v1/keys); absent fields fall back to the node's. */
export interface KeyFraudSettings {
  quotas?: { perMinute?: number; perDay?: number };
  allowedCountries?: string[];
  blockedCountries?: string[];
}

export interface WatchPolicy {
  /** The sliding window sends and verifies are counted over. */
  windowMs: number;
  /** Below this many (matured) sends in the window the watch says nothing; 0 = watch off. */
  minSends: number;
  /** verified ÷ sent below this, at volume, holds the prefix. */
  minConversion: number;
  /** Sends younger than this are not yet expected to be verified, so they are left out of the ratio. */
  graceMs: number;
  /** A hold lapses after this, if no operator cleared it and conversion did not recover. */
  holdMs: number;
}

/** Everything the guard enforces (config: FRAUD_*, SMS_*). 0 for a limit = no limit. */
export interface FraudSettings {
  enabled: boolean;
  allowedNumberTypes: NumberCategory[];
  geo: GeoPermissions;
  keyMaxPerMinute: number;
  keyMaxPerDay: number;
  /** Plain messages to one number per hour (OTPs have their own per-number cap). */
  numberMaxPerHour: number;
  /** Sends to one prefix per hour, all callers together. */
  prefixMaxPerHour: number;
  watch: WatchPolicy;
}

export const DEFAULT_FRAUD_SETTINGS: FraudSettings = {
  enabled: true,
  allowedNumberTypes: DEFAULT_ALLOWED_NUMBER_TYPES,
  geo: {},
  keyMaxPerMinute: 60,
  keyMaxPerDay: 10_000,
  numberMaxPerHour: 10,
  prefixMaxPerHour: 1_000,
  watch: { windowMs: 3_600_000, minSends: 50, minConversion: 0.2, graceMs: 120_000, holdMs: 3_600_000 },
};

/** The number-type verdict, or null when the type is allowed. */
export function numberTypeRefusal(info: NumberInfo, allowed: readonly NumberCategory[]): FraudRefusal | null {
  if (allowed.includes(info.category)) return null;
  const enable = `enable it with SMS_ALLOWED_NUMBER_TYPES=…,${info.category}`;
  switch (info.category) {
    case "PREMIUM_RATE":
      return new FraudRefusal("premium_rate_number", `premium-rate numbers are refused; ${enable}`);
    case "SHARED_COST":
      return new FraudRefusal("shared_cost_number", `shared-cost numbers are refused; ${enable}`);
    case "SATELLITE":
      return new FraudRefusal("satellite_number", `satellite and international-network numbers (+${info.callingCode}) are refused; ${enable}`);
    case "UNKNOWN":
      return new FraudRefusal("unknown_number_type", `numbers of unknown type are refused; ${enable}`);
    default:
      return new FraudRefusal("number_type_not_allowed", `${info.category} numbers are refused; ${enable}`);
  }
}

/**
 * Both levels must allow the country: the node's lists, then the key's (a key
 * can only narrow what the node allows). A number with no country
 * (non-geographic) is outside every allow-list.
 */
export function geoRefusal(info: NumberInfo, ...levels: (GeoPermissions | undefined)[]): FraudRefusal | null {
  for (const level of levels) {
    if (!level) continue;
    const country = info.country ?? "";
    if (level.allowed && level.allowed.length > 0 && !level.allowed.includes(country)) {
      return new FraudRefusal("country_not_allowed", `sending to ${info.country ?? `+${info.callingCode}`} is not allowed`);
    }
    if (country && level.blocked?.includes(country)) return new FraudRefusal("country_not_allowed", `sending to ${country} is blocked`);
  }
  return null;
}

// --- sliding windows ---

/** Each window is kept as this many buckets: a minute in seconds, an hour in minutes, a day in 24-minute steps. */
export const BUCKETS_PER_WINDOW = 60;

export function bucketMs(windowMs: number): number {
  return Math.max(1, Math.floor(windowMs / BUCKETS_PER_WINDOW));
}

export function bucketOf(now: number, windowMs: number): number {
  return Math.floor(now / bucketMs(windowMs));
}

/** The oldest bucket still inside the window ending at `now`. */
export function firstLiveBucket(now: number, windowMs: number): number {
  return bucketOf(now, windowMs) - BUCKETS_PER_WINDOW + 1;
}

/** Bucket index → count, as a store read it. */
export type BucketCounts = ReadonlyMap<number, number>;

export function windowCount(buckets: BucketCounts, windowMs: number, now: number, until = Number.POSITIVE_INFINITY): number {
  const first = firstLiveBucket(now, windowMs);
  let total = 0;
  for (const [bucket, count] of buckets) if (bucket >= first && bucket <= until) total += count;
  return total;
}

/** How long until the window holds fewer than `limit`: the oldest buckets leave it one by one. */
export function msUntilRoom(buckets: BucketCounts, windowMs: number, limit: number, now: number): number {
  const first = firstLiveBucket(now, windowMs);
  const live = [...buckets].filter(([bucket, count]) => bucket >= first && count > 0).sort((a, b) => a[0] - b[0]);
  let left = live.reduce((sum, [, count]) => sum + count, 0);
  for (const [bucket, count] of live) {
    left -= count;
    if (left < limit) return Math.max(1, (bucket + BUCKETS_PER_WINDOW) * bucketMs(windowMs) - now);
  }
  return 1;
}

// --- what a store decides ---

export interface FraudQuota {
  /** Non-identifying: `key:<id>:m`, `prefix:<digits>:h`, `number:<keyed digest>:h`. */
  key: string;
  limit: number;
  windowMs: number;
}

export interface SendReservation {
  quotas: FraudQuota[];
  /** The destination's prefix: a held prefix refuses; with countSend this send feeds the watch (OTPs). */
  watch?: { prefix: string; policy: WatchPolicy; countSend: boolean };
}

export interface FraudHold {
  prefix: string;
  heldAt: number;
  until: number;
  /** The window's matured sends and its verifies when the hold was set. */
  sent: number;
  verified: number;
}

export type ReserveOutcome =
  | { ok: true }
  | { ok: false; reason: "held"; prefix: string; tripped: boolean; retryAfterMs: number; sent: number; verified: number }
  | { ok: false; reason: "quota"; key: string; limit: number; retryAfterMs: number };

/** The watch's counters: sends are kept under `watch:s:<prefix>`, verifies under `watch:v:<prefix>`. */
export const watchSentKey = (prefix: string) => `watch:s:${prefix}`;
export const watchVerifiedKey = (prefix: string) => `watch:v:${prefix}`;

/** The ratio the watch reads: sends old enough to have been verified, against every verify in the window. */
export function watchStats(sent: BucketCounts, verified: BucketCounts, policy: WatchPolicy, now: number): { sent: number; verified: number } {
  // A bucket has matured once all of it is older than the grace; with no grace, every send counts.
  const maturedUpTo = policy.graceMs > 0 ? bucketOf(now - policy.graceMs, policy.windowMs) - 1 : Number.POSITIVE_INFINITY;
  return { sent: windowCount(sent, policy.windowMs, now, maturedUpTo), verified: windowCount(verified, policy.windowMs, now) };
}

export function conversionCollapsed(stats: { sent: number; verified: number }, policy: WatchPolicy): boolean {
  return policy.minSends > 0 && stats.sent >= policy.minSends && stats.verified < policy.minConversion * stats.sent;
}

export function conversionRecovered(stats: { sent: number; verified: number }, policy: WatchPolicy): boolean {
  return stats.sent > 0 && stats.verified >= policy.minConversion * stats.sent;
}

export interface SendState {
  /** In the order of `request.quotas`. */
  quotas: BucketCounts[];
  sent?: BucketCounts;
  verified?: BucketCounts;
  hold?: FraudHold | null;
}

export interface SendPlan {
  outcome: ReserveOutcome;
  /** Remove the stored hold (it lapsed, or conversion recovered). */
  liftHold: boolean;
  setHold?: FraudHold;
  /** Count one in each: key, the bucket for `now`, and its window. */
  increments: { key: string; windowMs: number }[];
}

/**
 * One send, in this order: a held prefix refuses (unless conversion has
 * recovered, which lifts the hold); a prefix whose conversion collapsed at
 * volume is held now and refuses; then the first full quota refuses. Only
 * an admitted send is counted, in every quota and (countSend) in the watch.
 */
export function planSend(request: SendReservation, state: SendState, now: number): SendPlan {
  const plan: SendPlan = { outcome: { ok: true }, liftHold: false, increments: [] };
  const watch = request.watch;
  if (watch) {
    const stats = watchStats(state.sent ?? new Map(), state.verified ?? new Map(), watch.policy, now);
    const hold = state.hold && state.hold.until > now ? state.hold : null;
    if (state.hold && !hold) plan.liftHold = true;
    if (hold) {
      if (conversionRecovered(stats, watch.policy)) plan.liftHold = true;
      else return { ...plan, outcome: { ok: false, reason: "held", prefix: watch.prefix, tripped: false, retryAfterMs: hold.until - now, ...stats } };
    } else if (conversionCollapsed(stats, watch.policy)) {
      const setHold = { prefix: watch.prefix, heldAt: now, until: now + watch.policy.holdMs, ...stats };
      return { ...plan, setHold, outcome: { ok: false, reason: "held", prefix: watch.prefix, tripped: true, retryAfterMs: watch.policy.holdMs, ...stats } };
    }
  }
  for (const [i, quota] of request.quotas.entries()) {
    const buckets = state.quotas[i] ?? new Map<number, number>();
    if (windowCount(buckets, quota.windowMs, now) >= quota.limit) {
      return { ...plan, outcome: { ok: false, reason: "quota", key: quota.key, limit: quota.limit, retryAfterMs: msUntilRoom(buckets, quota.windowMs, quota.limit, now) } };
    }
  }
  plan.increments = reservedCounters(request);
  return plan;
}

/** The counters an admitted send adds one to (and a released one takes back). */
export function reservedCounters(request: SendReservation): { key: string; windowMs: number }[] {
  const counters = request.quotas.map(({ key, windowMs }) => ({ key, windowMs }));
  if (request.watch?.countSend) counters.push({ key: watchSentKey(request.watch.prefix), windowMs: request.watch.policy.windowMs });
  return counters;
}

/** A verified code: counted; a live hold whose prefix converts again is lifted. */
export function planVerified(state: { sent: BucketCounts; verified: BucketCounts; hold?: FraudHold | null }, policy: WatchPolicy, now: number): { lift: boolean } {
  if (!state.hold) return { lift: false };
  if (state.hold.until <= now) return { lift: true };
  const withThis = new Map(state.verified);
  const bucket = bucketOf(now, policy.windowMs);
  withThis.set(bucket, (withThis.get(bucket) ?? 0) + 1);
  return { lift: conversionRecovered(watchStats(state.sent, withThis, policy, now), policy) };
}

/** When a bucket can be forgotten: once it has left its window. */
export function bucketKeepUntil(bucket: number, windowMs: number): number {
  return (bucket + BUCKETS_PER_WINDOW) * bucketMs(windowMs);
}
