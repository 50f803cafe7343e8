/**
 * Configuration: read from the environment once at start, validated with zod.
 * A bad value stops the start with one line per problem naming the variable.
 */
import { z } from "zod";
import { addressList, isAddressOrCidr } from "./address-list.js";
import { DEFAULT_FRAUD_SETTINGS, NUMBER_TYPES, isCountryCode, type FraudSettings } from "../fraud/fraud-rules.js";
import { DEFAULT_POLICY, TTL_SECONDS, type OtpPolicy } from "../otp/rules.js";
import { DEFAULT_LIMITS, type AdmissionLimits } from "../../broker/admission.js";
import { DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS } from "../../broker/connection-gate.js";
import { MAX_PACKET_BYTES } from "../../broker/packet-guard.js";

export const ROUTE_NAMES = ["device", "twilio", "africastalking", "email"] as const;
export type RouteName = (typeof ROUTE_NAMES)[number];

const port = (fallback: number) => z.coerce.number().int().min(0).max(65535).default(fallback);
const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((value) => (value ? value : undefined));
const optionalUrl = optionalText.pipe(z.url().optional());
const timeoutMs = (fallback: number) => z.coerce.number().int().min(100).max(3_600_000).default(fallback);

/** Named ranges @fastify/proxy-addr knows, besides addresses and CIDRs. */
const PROXY_RANGES = ["loopback", "linklocal", "uniquelocal"];
function isProxyAddress(entry: string): boolean {
  return PROXY_RANGES.includes(entry) || isAddressOrCidr(entry);
}
/**
 * TRUST_PROXY: false (default), true, or the proxies' addresses/CIDRs. A hop count is refused:
 * Fastify 5 ignores it, because a count cannot tell a proxy from a client that writes its own
 * X-Forwarded-For when the port is reachable directly.
 */
const trustProxy = z
  .string()
  .trim()
  .default("false")
  .transform((value, ctx): boolean | string[] => {
    const lower = value.toLowerCase();
    if (lower === "" || lower === "false") return false;
    if (lower === "true") return true;
    if (/^\d+$/.test(lower)) {
      ctx.addIssue({ code: "custom", message: "a hop count cannot tell a proxy from a client that sends its own X-Forwarded-For; give the proxies' addresses or subnet (e.g. 10.0.0.0/8), or true" });
      return z.NEVER;
    }
    const entries = lower.split(",").map((entry) => entry.trim()).filter(Boolean);
    const bad = entries.filter((entry) => !isProxyAddress(entry));
    if (bad.length > 0) {
      ctx.addIssue({ code: "custom", message: `must be true, false, or addresses/CIDRs separated by commas (${PROXY_RANGES.join(", ")} allowed); not an address: ${bad.join(", ")}` });
      return z.NEVER;
    }
    return entries;
  });

/** A comma-separated list (case-insensitive), upper-cased and checked item by item. */
const upperList = <T extends string>(item: z.ZodType<T, string>) =>
  z
    .string()
    .trim()
    .transform((value) => value.split(",").map((entry) => entry.trim().toUpperCase()).filter(Boolean))
    .pipe(z.array(item));
const countryList = upperList(z.string().refine(isCountryCode, { error: (issue) => `${String(issue.input)} is not an ISO 3166 country code (e.g. KE, US)` }));
/** A fraud-guard limit: 0 turns it off. */
const limit = (fallback: number) => z.coerce.number().int().min(0).default(fallback);
const fraudDefaults = DEFAULT_FRAUD_SETTINGS;

/** The fraud guard (api/fraud/, README "Fraud guard"). */
const FRAUD_ENV = {
  FRAUD_GUARD: z.enum(["on", "off"], { error: "must be on or off" }).default("on"),
  SMS_ALLOWED_NUMBER_TYPES: upperList(z.enum(NUMBER_TYPES, { error: `types are ${NUMBER_TYPES.join(", ")}` })).default(fraudDefaults.allowedNumberTypes),
  SMS_ALLOWED_COUNTRIES: countryList.optional(),
  SMS_BLOCKED_COUNTRIES: countryList.default([]),
  FRAUD_KEY_MAX_PER_MINUTE: limit(fraudDefaults.keyMaxPerMinute),
  FRAUD_KEY_MAX_PER_DAY: limit(fraudDefaults.keyMaxPerDay),
  FRAUD_NUMBER_MAX_PER_HOUR: limit(fraudDefaults.numberMaxPerHour),
  FRAUD_PREFIX_MAX_PER_HOUR: limit(fraudDefaults.prefixMaxPerHour),
  FRAUD_WATCH_WINDOW_SECONDS: z.coerce.number().int().min(60).max(7 * 86_400).default(fraudDefaults.watch.windowMs / 1000),
  FRAUD_WATCH_MIN_SENDS: limit(fraudDefaults.watch.minSends),
  FRAUD_WATCH_MIN_CONVERSION: z.coerce.number().min(0).max(1).default(fraudDefaults.watch.minConversion),
  FRAUD_WATCH_GRACE_SECONDS: z.coerce.number().int().min(0).max(3600).default(fraudDefaults.watch.graceMs / 1000),
  FRAUD_HOLD_SECONDS: z.coerce.number().int().min(1).max(30 * 86_400).default(fraudDefaults.watch.holdMs / 1000),
};

function fraudSettings(e: z.infer<z.ZodObject<typeof FRAUD_ENV>>): FraudSettings {
  return {
    enabled: e.FRAUD_GUARD === "on",
    allowedNumberTypes: e.SMS_ALLOWED_NUMBER_TYPES,
    geo: { ...(e.SMS_ALLOWED_COUNTRIES?.length ? { allowed: e.SMS_ALLOWED_COUNTRIES } : {}), blocked: e.SMS_BLOCKED_COUNTRIES },
    keyMaxPerMinute: e.FRAUD_KEY_MAX_PER_MINUTE,
    keyMaxPerDay: e.FRAUD_KEY_MAX_PER_DAY,
    numberMaxPerHour: e.FRAUD_NUMBER_MAX_PER_HOUR,
    prefixMaxPerHour: e.FRAUD_PREFIX_MAX_PER_HOUR,
    watch: {
      windowMs: e.FRAUD_WATCH_WINDOW_SECONDS * 1000,
      minSends: e.FRAUD_WATCH_MIN_SENDS,
      minConversion: e.FRAUD_WATCH_MIN_CONVERSION,
      graceMs: e.FRAUD_WATCH_GRACE_SECONDS * 1000,
      holdMs: e.FRAUD_HOLD_SECONDS * 1000,
    },
  };
}

const envSchema = z
  .object({
    PORT: port(8080),
    HOST: z.string().min(1).default("0.0.0.0"),
    MQTT_TLS_PORT: port(8883),
    MQTT_PORT: port(1883),
    MQTT_HOST: z.string().min(1).default("127.0.0.1"),
    // Broker admission control (broker/admission.ts; README, Security).
    MQTT_MAX_CONNECTIONS: positiveInt(DEFAULT_LIMITS.maxConnections),
    MQTT_MAX_UNAUTHENTICATED_PER_SOURCE: z.coerce.number().int().min(0).default(DEFAULT_LIMITS.maxUnauthenticatedPerSource),
    MQTT_MAX_CONNECT_BYTES: z.coerce.number().int().min(512).max(MAX_PACKET_BYTES).default(DEFAULT_LIMITS.maxConnectBytes),
    MQTT_CONNECT_TIMEOUT_MS: timeoutMs(DEFAULT_LIMITS.connectTimeoutMs),
    MQTT_TLS_HANDSHAKE_TIMEOUT_MS: timeoutMs(DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS),
    MQTT_LOGIN_BACKOFF_AFTER: positiveInt(DEFAULT_LIMITS.loginBackoffAfter),
    MQTT_LOGIN_BACKOFF_MAX_MS: timeoutMs(DEFAULT_LIMITS.loginBackoffMaxMs),
    MQTT_EXEMPT_SOURCES: addressList(DEFAULT_LIMITS.exemptSources),
    // One mqtts:// URL, or several separated by commas (the brokers of a cluster, in the order phones try them).
    PUBLIC_MQTT_URL: optionalText.pipe(
      z
        .string()
        .transform((value) => value.split(",").map((url) => url.trim()))
        .pipe(z.array(z.url().regex(/^mqtts:\/\//, "must be an mqtts:// URL: phones reach the broker over TLS")).min(1).max(8))
        .optional(),
    ),
    REDIS_URL: optionalText.pipe(z.string().regex(/^rediss?:\/\//, "must start with redis:// or rediss://").optional()),
    STORE: optionalText.pipe(z.enum(["sqlite", "memory", "redis"], { error: "must be sqlite, memory or redis" }).optional()),
    DATA_DIR: z.string().min(1).default("./data"),
    ADMIN_API_KEY: optionalText.pipe(z.string().min(24, "must be at least 24 characters").optional()),
    OTP_SECRET: optionalText.pipe(z.string().min(32, "must be at least 32 characters").optional()),
    FAILOVER_ORDER: z
      .string()
      .default(ROUTE_NAMES.join(","))
      .transform((value) => value.split(",").map((route) => route.trim()).filter(Boolean))
      .pipe(
        z
          .array(z.enum(ROUTE_NAMES, { error: `routes are ${ROUTE_NAMES.join(", ")}` }))
          .min(1, "needs at least one route")
          .refine((routes) => new Set(routes).size === routes.length, "lists a route twice"),
      ),
    TWILIO_ACCOUNT_SID: optionalText,
    TWILIO_AUTH_TOKEN: optionalText,
    TWILIO_FROM: optionalText,
    TWILIO_API_BASE: optionalUrl,
    AT_USERNAME: optionalText,
    AT_API_KEY: optionalText,
    AT_FROM: optionalText,
    AT_API_BASE: optionalUrl,
    SMTP_URL: optionalText.pipe(z.string().regex(/^smtps?:\/\//, "must start with smtp:// or smtps://").optional()),
    EMAIL_FROM: optionalText,
    OTP_TTL_SECONDS: z.coerce.number().int().min(TTL_SECONDS.min).max(TTL_SECONDS.max).default(TTL_SECONDS.default),
    OTP_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(DEFAULT_POLICY.maxAttempts),
    OTP_RESEND_COOLDOWN_SECONDS: z.coerce.number().int().min(0).max(3600).default(DEFAULT_POLICY.resendCooldownSeconds),
    OTP_MAX_SENDS_PER_HOUR: positiveInt(DEFAULT_POLICY.maxSendsPerHour),
    OTP_LOCKOUT_THRESHOLD: z.coerce.number().int().min(1).max(100).default(DEFAULT_POLICY.lockoutThreshold),
    OTP_LOCKOUT_SECONDS: positiveInt(DEFAULT_POLICY.lockoutSeconds),
    OTP_RETENTION_SECONDS: z.coerce.number().int().min(0).default(DEFAULT_POLICY.retentionSeconds),
    // OTPs and messages stay readable (GET by id, the history) this long after they were made; 0 = only OTP_RETENTION_SECONDS.
    HISTORY_RETENTION_DAYS: z.coerce.number().int().min(0).max(3650).default(30),
    OTP_APP_NAME: z.string().min(1).max(40).default("otpgate"),
    PROVIDER_TIMEOUT_MS: positiveInt(10_000),
    DISPATCH_MAX_IN_FLIGHT: positiveInt(1000),
    DEVICE_ACK_TIMEOUT_MS: positiveInt(10_000),
    DEVICE_SENT_TIMEOUT_MS: positiveInt(30_000),
    SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).max(60_000).default(2_000),
    LEASE_GRACE_MS: z.coerce.number().int().min(500).max(600_000).default(5_000),
    TLS_CERT_FILE: optionalText,
    TLS_KEY_FILE: optionalText,
    TLS_CA_FILE: optionalText,
    CALLBACK_SECRET: optionalText.pipe(z.string().min(32, "must be at least 32 characters").optional()),
    PROVIDER_BREAKER_MIN_CALLS: positiveInt(5),
    PROVIDER_BREAKER_RESET_SECONDS: positiveInt(30),
    RATE_LIMIT_PER_KEY: positiveInt(600),
    RATE_LIMIT_PER_IP: positiveInt(300),
    // Whole request, body included; a body is at most 64 KiB, so 30 s only cuts off stalled senders.
    HTTP_REQUEST_TIMEOUT_MS: timeoutMs(30_000),
    HTTP_HEADERS_TIMEOUT_MS: timeoutMs(10_000),
    // Above the 60 s idle timeout of common load balancers, so the gateway never closes a connection they are about to reuse.
    HTTP_KEEPALIVE_TIMEOUT_MS: timeoutMs(72_000),
    // A socket with no traffic either way (e.g. a client that stops reading its reply) is closed after this.
    HTTP_IDLE_TIMEOUT_MS: timeoutMs(60_000),
    TRUST_PROXY: trustProxy,
    // Seed 001's callers sent no API key; they ran it beside their backend. "none" requires a key there too.
    SEED_KEYLESS_FROM: addressList(["127.0.0.0/8", "::1"]),
    LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
    // Unset: readable lines on a terminal, JSON lines otherwise (api/logging/logger.ts).
    LOG_FORMAT: optionalText.pipe(z.enum(["pretty", "json"], { error: "must be pretty or json" }).optional()),
    ...FRAUD_ENV,
  });

export type Env = z.infer<typeof envSchema>;

/** Settings that only work together; checked on the raw values so they are reported alongside type errors. */
const TOGETHER: [label: string, names: string[]][] = [
  ["Twilio", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM"]],
  ["Africa's Talking", ["AT_USERNAME", "AT_API_KEY"]],
  ["email", ["SMTP_URL", "EMAIL_FROM"]],
  ["your own TLS certificate", ["TLS_CERT_FILE", "TLS_KEY_FILE"]],
];

function missingCompanions(env: NodeJS.ProcessEnv): string[] {
  const problems: string[] = [];
  for (const [label, names] of TOGETHER) {
    const set = names.filter((name) => env[name]?.trim());
    if (set.length === 0 || set.length === names.length) continue;
    for (const name of names.filter((n) => !set.includes(n))) {
      problems.push(`${name}: is required when ${label} is configured (${set.join(", ")} set)`);
    }
  }
  return problems;
}

export interface Config {
  http: { port: number; host: string; bodyLimitBytes: number } & HttpHardening;
  /** `publicUrls`: what phones are told to dial, in order (PUBLIC_MQTT_URL); derived from the host when unset. */
  /** `tlsHandshakeTimeoutMs`: a TLS handshake not done by then is dropped (it holds an admission slot). */
  mqtt: { tlsPort: number; port: number; host: string; publicUrls?: string[]; limits: AdmissionLimits; tlsHandshakeTimeoutMs: number };
  /** sqlite (default: DATA_DIR/otpgate.db), memory (nothing survives) or redis (REDIS_URL, a cluster). */
  store: "sqlite" | "memory" | "redis";
  redisUrl?: string;
  dataDir: string;
  adminApiKey?: string;
  otpSecret?: string;
  failoverOrder: RouteName[];
  otp: { ttlSeconds: number; appName: string; policy: OtpPolicy };
  /** HISTORY_RETENTION_DAYS: the store keeps OTPs and jobs at least this long after their creation. */
  historyRetentionDays: number;
  twilio?: { accountSid: string; authToken: string; from: string; apiBase?: string };
  africasTalking?: { username: string; apiKey: string; from?: string; apiBase?: string };
  email?: { smtpUrl: string; from: string };
  providerTimeoutMs: number;
  breaker: { minCalls: number; resetSeconds: number };
  maxInFlight: number;
  device: { transportAckTimeoutMs: number; sentTimeoutMs: number };
  /** How often each node looks for jobs whose lease lapsed, and how long past a step's deadline a lease lasts. */
  leases: { sweepIntervalMs: number; graceMs: number };
  tls?: { certFile: string; keyFile: string; caFile?: string };
  callbackSecret?: string;
  rateLimit: { perKeyPerMinute: number; perIpPerMinute: number };
  logLevel: Env["LOG_LEVEL"];
  /** pretty or json; unset: pretty when stdout is a terminal. */
  logFormat?: Env["LOG_FORMAT"];
  /** The fraud guard: number types, geo permissions, quotas and the conversion watch. */
  fraud: FraudSettings;
}

/** HTTP timeouts (ms) and which proxies' X-Forwarded-For is believed (TRUST_PROXY). */
export interface HttpHardening {
  requestTimeoutMs: number;
  headersTimeoutMs: number;
  keepAliveTimeoutMs: number;
  idleTimeoutMs: number;
  /** false: the socket's peer is the client; true: any peer is a proxy; else the proxies' addresses/CIDRs. */
  trustProxy: boolean | string[];
  /** Clients (request.ip) whose /send-code and /verify-code need no API key, as in seed 001. */
  seedKeylessFrom: string[];
}

/** The largest JSON body the API takes; larger ones get 413. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export type ConfigResult = { ok: true; config: Config } | { ok: false; problems: string[] };

/** For the command lines (npm start, npm run admin-key): the config, or the problems on stderr and exit 1. */
export function loadConfigOrExit(env: NodeJS.ProcessEnv): Config {
  const result = loadConfig(env);
  if (result.ok) return result.config;
  console.error("otpgate: configuration is invalid:");
  for (const problem of result.problems) console.error(`  ${problem}`);
  process.exit(1);
}

export function loadConfig(env: NodeJS.ProcessEnv): ConfigResult {
  const parsed = envSchema.safeParse(env);
  const problems = missingCompanions(env);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? "environment");
      const value = env[name];
      const shown = value === undefined || /KEY|TOKEN|SECRET|URL/.test(name) ? "" : ` (got "${value}")`;
      problems.push(`${name}: ${issue.message}${shown}`);
    }
  }
  if (parsed.success && parsed.data.STORE === "redis" && !parsed.data.REDIS_URL) problems.push("STORE: redis needs REDIS_URL");
  // Headers are part of the request: a longer headers timeout would never fire.
  if (parsed.success && parsed.data.HTTP_HEADERS_TIMEOUT_MS > parsed.data.HTTP_REQUEST_TIMEOUT_MS) {
    problems.push(`HTTP_HEADERS_TIMEOUT_MS: must not exceed HTTP_REQUEST_TIMEOUT_MS (${parsed.data.HTTP_REQUEST_TIMEOUT_MS})`);
  }
  if (parsed.success && parsed.data.STORE && parsed.data.STORE !== "redis" && parsed.data.REDIS_URL) {
    problems.push(`STORE: ${parsed.data.STORE} cannot be used with REDIS_URL (unset one of them)`);
  }
  if (!parsed.success || problems.length > 0) return { ok: false, problems };
  const e = parsed.data;
  return {
    ok: true,
    config: {
      http: {
        port: e.PORT,
        host: e.HOST,
        bodyLimitBytes: BODY_LIMIT_BYTES,
        requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
        headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
        keepAliveTimeoutMs: e.HTTP_KEEPALIVE_TIMEOUT_MS,
        idleTimeoutMs: e.HTTP_IDLE_TIMEOUT_MS,
        trustProxy: e.TRUST_PROXY,
        seedKeylessFrom: e.SEED_KEYLESS_FROM,
      },
      mqtt: {
        tlsPort: e.MQTT_TLS_PORT,
        port: e.MQTT_PORT,
        host: e.MQTT_HOST,
        publicUrls: e.PUBLIC_MQTT_URL,
        limits: {
          maxConnections: e.MQTT_MAX_CONNECTIONS,
          maxUnauthenticatedPerSource: e.MQTT_MAX_UNAUTHENTICATED_PER_SOURCE,
          maxConnectBytes: e.MQTT_MAX_CONNECT_BYTES,
          connectTimeoutMs: e.MQTT_CONNECT_TIMEOUT_MS,
          loginBackoffAfter: e.MQTT_LOGIN_BACKOFF_AFTER,
          loginBackoffMaxMs: e.MQTT_LOGIN_BACKOFF_MAX_MS,
          exemptSources: e.MQTT_EXEMPT_SOURCES,
        },
        tlsHandshakeTimeoutMs: e.MQTT_TLS_HANDSHAKE_TIMEOUT_MS,
      },
      store: e.STORE ?? (e.REDIS_URL ? "redis" : "sqlite"),
      redisUrl: e.REDIS_URL,
      dataDir: e.DATA_DIR,
      adminApiKey: e.ADMIN_API_KEY,
      otpSecret: e.OTP_SECRET,
      failoverOrder: e.FAILOVER_ORDER,
      otp: {
        ttlSeconds: e.OTP_TTL_SECONDS,
        appName: e.OTP_APP_NAME,
        policy: {
          maxAttempts: e.OTP_MAX_ATTEMPTS,
          resendCooldownSeconds: e.OTP_RESEND_COOLDOWN_SECONDS,
          maxSendsPerHour: e.OTP_MAX_SENDS_PER_HOUR,
          lockoutThreshold: e.OTP_LOCKOUT_THRESHOLD,
          lockoutSeconds: e.OTP_LOCKOUT_SECONDS,
          retentionSeconds: e.OTP_RETENTION_SECONDS,
        },
      },
      historyRetentionDays: e.HISTORY_RETENTION_DAYS,
      twilio:
        e.TWILIO_ACCOUNT_SID && e.TWILIO_AUTH_TOKEN && e.TWILIO_FROM
          ? { accountSid: e.TWILIO_ACCOUNT_SID, authToken: e.TWILIO_AUTH_TOKEN, from: e.TWILIO_FROM, apiBase: e.TWILIO_API_BASE }
          : undefined,
      africasTalking:
        e.AT_USERNAME && e.AT_API_KEY
          ? { username: e.AT_USERNAME, apiKey: e.AT_API_KEY, from: e.AT_FROM, apiBase: e.AT_API_BASE }
          : undefined,
      email: e.SMTP_URL && e.EMAIL_FROM ? { smtpUrl: e.SMTP_URL, from: e.EMAIL_FROM } : undefined,
      providerTimeoutMs: e.PROVIDER_TIMEOUT_MS,
      maxInFlight: e.DISPATCH_MAX_IN_FLIGHT,
      device: { transportAckTimeoutMs: e.DEVICE_ACK_TIMEOUT_MS, sentTimeoutMs: e.DEVICE_SENT_TIMEOUT_MS },
      leases: { sweepIntervalMs: e.SWEEP_INTERVAL_MS, graceMs: e.LEASE_GRACE_MS },
      tls: e.TLS_CERT_FILE && e.TLS_KEY_FILE ? { certFile: e.TLS_CERT_FILE, keyFile: e.TLS_KEY_FILE, caFile: e.TLS_CA_FILE } : undefined,
      callbackSecret: e.CALLBACK_SECRET,
      breaker: { minCalls: e.PROVIDER_BREAKER_MIN_CALLS, resetSeconds: e.PROVIDER_BREAKER_RESET_SECONDS },
      rateLimit: { perKeyPerMinute: e.RATE_LIMIT_PER_KEY, perIpPerMinute: e.RATE_LIMIT_PER_IP },
      logLevel: e.LOG_LEVEL,
      logFormat: e.LOG_FORMAT,
      fraud: fraudSettings(e),
    },
  };
}
