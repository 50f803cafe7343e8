/**
 * Request and response schemas. The same zod objects validate requests and
 * produce the OpenAPI document at /docs.
 */
import { ATTEMPT_STATES, JOB_STATES } from "../delivery/job-state.js";
import { z } from "zod";
import { isCountryCode } from "../fraud/fraud-rules.js";
import { CODE_LENGTH, TTL_SECONDS } from "../otp/rules.js";
import { APP_HASH_PATTERN, ORIGIN_HOST_PATTERN, originHost } from "../otp/templates.js";
import { InvalidPhoneNumber, toE164 } from "../phone/phone-number.js";
import { DEVICE_ID_PATTERN } from "../../broker/topics.js";
import { ROUTE_NAMES } from "../config/config.js";
import type { HistoryPosition } from "../store/history.js";

/** A phone number in any common notation with a country code, returned as E.164. */
export const phoneNumber = z
  .string()
  .min(3)
  .max(32)
  .transform((value, context) => {
    try {
      return toE164(value);
    } catch (error) {
      context.addIssue({ code: "custom", message: error instanceof InvalidPhoneNumber ? error.message : "is not a phone number" });
      return z.NEVER;
    }
  })
  .meta({ description: "Phone number with country code; normalised to E.164", example: "+254711222333" });

const emailAddress = z.email().max(254).transform((value) => value.toLowerCase());
const httpUrl = z.url({ protocol: /^https?$/ }).max(2048);
const code = z.string().regex(/^\d{4,10}$/, "must be 4 to 10 digits, as a string");
const userId = z.string().min(1).max(128);

const deliveryState = z.enum(JOB_STATES);
const attempt = z.object({
  route: z.string(),
  state: z.enum(ATTEMPT_STATES),
  at: z.string(),
  error: z.string().optional(),
  providerMessageId: z.string().optional(),
  receivedAt: z.string().optional().meta({ description: "when the phone acked `received`" }),
  late: z
    .object({ status: z.string(), at: z.string(), error: z.string().optional() })
    .optional()
    .meta({ description: "an ack that came after this attempt was given up: recorded, never acted on" }),
});
const delivery = z.object({ state: deliveryState, route: z.string().nullable() });
const otpStatus = z.enum(["pending", "approved", "expired", "max_attempts"]);

export const errorBody = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
    }),
  })
  .meta({ id: "Error" });

const createOtpBodyRules = z
  .strictObject({
    to: phoneNumber.optional(),
    email: emailAddress.optional(),
    channel: z.enum(["sms", "email", "auto"]).optional(),
    userId: userId.optional(),
    codeLength: z.number().int().min(CODE_LENGTH.min).max(CODE_LENGTH.max).optional(),
    ttlSeconds: z.number().int().min(TTL_SECONDS.min).max(TTL_SECONDS.max).optional(),
    locale: z.string().min(2).max(35).optional().meta({ description: "en, pt, fr, sw, es (regional variants accepted); others fall back to en" }),
    appHash: z.string().regex(APP_HASH_PATTERN, "must be the 11-character SMS Retriever hash").optional(),
    origin: z
      .string()
      .max(300)
      .refine((value) => {
        try {
          return ORIGIN_HOST_PATTERN.test(originHost(value));
        } catch {
          return false;
        }
      }, "must be a host such as example.com or an https:// origin")
      .optional(),
    callbackUrl: httpUrl.optional(),
  })
  .refine((body) => body.to || body.email, { message: "give to (phone) or email", path: ["to"] });

/** Examples shown in /docs; test/http/openapi.test.ts sends each to its route. */
export const createOtpBody = createOtpBodyRules.meta({ examples: [{ to: "+254711222333", userId: "42", locale: "en", origin: "login.example.com" }] });
export const issuedOtp = z.object({
  id: z.string(),
  status: z.literal("pending"),
  channel: z.enum(["sms", "email"]),
  expiresAt: z.string(),
  delivery,
});

const verifyOtpBodyRules = z
  .strictObject({
    id: z.string().min(1).max(128).optional(),
    userId: userId.optional(),
    to: phoneNumber.optional(),
    email: emailAddress.optional(),
    code,
  })
  .refine((body) => body.id || body.userId || body.to || body.email, { message: "give id, userId, to or email", path: ["id"] });

/** Examples shown in /docs; test/http/openapi.test.ts sends each to its route. */
export const verifyOtpBody = verifyOtpBodyRules.meta({ examples: [{ userId: "42", code: "482913" }] });
export const verifyResult = z.object({ valid: z.boolean(), status: otpStatus, attemptsLeft: z.number().int() });

export const otpView = z.object({
  id: z.string(),
  status: otpStatus,
  channel: z.enum(["sms", "email"]),
  attemptsLeft: z.number().int(),
  createdAt: z.string(),
  expiresAt: z.string(),
  delivery: delivery.extend({ attempts: z.array(attempt) }),
});

export const idParams = z.object({ id: z.string().min(1).max(128) });

const messageFields = {
  to: phoneNumber,
  body: z.string().min(1).max(1600),
  callbackUrl: httpUrl.optional(),
};

/** `{to, body}`, or the older `{cell, message}` shape, read as the same thing. */
const sendMessageBodyRules = z.union([
  z.strictObject(messageFields),
  z
    .strictObject({ cell: messageFields.to, message: messageFields.body, callbackUrl: messageFields.callbackUrl })
    .transform(({ cell, message, callbackUrl }) => ({ to: cell, body: message, callbackUrl })),
]);

/** Examples shown in /docs; test/http/openapi.test.ts sends each to its route. */
export const sendMessageBody = sendMessageBodyRules.meta({ examples: [{ to: "+254711222333", body: "Your order has shipped" }, { cell: "+258840000000", message: "o seu codigo OPT é 2024" }] });
export const acceptedMessage = z.object({ id: z.string(), status: deliveryState });

export const messageView = z.object({
  id: z.string(),
  status: deliveryState,
  to: z.string().meta({ description: "The number, masked (+254*****2333): the caller gave it in full; replies and history do not repeat it", example: "+254*****2333" }),
  createdAt: z.string(),
  updatedAt: z.string(),
  delivery: delivery.extend({ attempts: z.array(attempt) }),
});

const scope = z.enum(["admin", "otp", "messages", "publisher"]);

const countryCode = z
  .string()
  .transform((value) => value.trim().toUpperCase())
  .refine(isCountryCode, { error: (issue) => `${String(issue.input)} is not an ISO 3166 country code (e.g. KE, US)` });
const countries = z.array(countryCode).max(250);

/** The fraud guard's per-key settings; absent fields fall back to FRAUD_KEY_MAX_PER_* and SMS_*_COUNTRIES. */
const keyQuotas = z
  .strictObject({
    perMinute: z.number().int().min(1).max(1_000_000).optional().meta({ description: "SMS per minute for this key (default FRAUD_KEY_MAX_PER_MINUTE)" }),
    perDay: z.number().int().min(1).max(100_000_000).optional().meta({ description: "SMS per day for this key (default FRAUD_KEY_MAX_PER_DAY)" }),
  })
  .meta({ description: "Fraud-guard quotas; may be higher than the node's defaults, for a known high-volume application" });

const createKeyBodyRules = z.strictObject({
  name: z.string().min(1).max(100),
  scopes: z.array(scope).min(1).max(4).optional().meta({ description: 'default ["otp", "messages"]' }),
  quotas: keyQuotas.optional(),
  allowedCountries: countries.optional().meta({ description: "Only these countries (ISO 3166 alpha-2), within what the node allows" }),
  blockedCountries: countries.optional().meta({ description: "Never these countries, on top of SMS_BLOCKED_COUNTRIES" }),
});

/** Examples shown in /docs; test/http/openapi.test.ts sends each to its route. */
export const createKeyBody = createKeyBodyRules.meta({ examples: [{ name: "shop backend", scopes: ["otp", "messages"] }] });
export const apiKeyView = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(scope),
  prefix: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().optional(),
  quotas: z.object({ perMinute: z.number().optional(), perDay: z.number().optional() }).optional(),
  allowedCountries: z.array(z.string()).optional(),
  blockedCountries: z.array(z.string()).optional(),
});

export const createdKey = apiKeyView.extend({ key: z.string().meta({ description: "Shown once; only its digest is kept" }) });

export const apiKeyList = z.object({ keys: z.array(apiKeyView) });

const presence = z
  .object({
    online: z.boolean(),
    since: z.string(),
    seenAt: z.string().optional(),
    battery: z.number().optional(),
    signal: z.number().optional(),
    sims: z.array(z.unknown()).optional(),
    app: z.string().optional(),
    reportedAt: z.string().optional(),
  })
  .nullable();

const createDeviceBodyRules = z.strictObject({
  name: z.string().min(1).max(100),
  maxPerMinute: z.number().int().min(1).max(60).optional().meta({ description: "SMS per minute this phone may send (default 20; Android allows about 30)" }),
  prefixes: z
    .array(z.string().regex(/^\+\d{1,6}$/, "must be a + followed by 1 to 6 digits"))
    .max(20)
    .optional()
    .meta({ description: "Numbers this phone takes, e.g. [\"+254\"]; empty = any" }),
});

/** Examples shown in /docs; test/http/openapi.test.ts sends each to its route. */
export const createDeviceBody = createDeviceBodyRules.meta({ examples: [{ name: "drawer 1", maxPerMinute: 20, prefixes: ["+254"] }] });
export const deviceView = z.object({
  id: z.string(),
  name: z.string(),
  maxPerMinute: z.number(),
  prefixes: z.array(z.string()),
  createdAt: z.string(),
  online: z.boolean(),
  sentLastMinute: z.number(),
  presence,
});

export const provisionedDevice = z.object({
  id: z.string(),
  name: z.string(),
  maxPerMinute: z.number(),
  prefixes: z.array(z.string()),
  createdAt: z.string(),
  token: z.string().meta({ description: "Shown once; only its digest is kept" }),
  mqtt: z.object({ url: z.string(), username: z.string(), password: z.string(), clientId: z.string() }),
  caFingerprint: z.string(),
  provisioning: z.string().meta({ description: "otpgate://provision?… URI; also as a QR code at /v1/devices/:id/qr" }),
});

export const deviceList = z.object({ devices: z.array(deviceView) });

export const qrQuery = z.object({
  token: z.string().min(1).max(200),
  format: z.enum(["png", "svg"]).optional(),
});

export const createPublisherBody = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9._-]{1,63}$/, "lower-case letters, digits, . _ -; 2 to 64 characters")
    .refine((name) => !name.startsWith("dev_"), "dev_ is reserved for devices"),
});

export const publisherView = z.object({ id: z.string(), name: z.string(), createdAt: z.string() });
export const createdPublisher = publisherView.extend({
  mqtt: z.object({ username: z.string(), password: z.string() }).meta({ description: "password shown once" }),
});
export const publisherList = z.object({ publishers: z.array(publisherView) });

export const fraudHold = z
  .object({
    prefix: z.string().meta({ description: "Country calling code (with the area code for +1), digits only", example: "254" }),
    heldAt: z.string(),
    until: z.string().meta({ description: "when the hold lapses by itself" }),
    sent: z.number().int().meta({ description: "codes sent in the window (past the grace) when it was held" }),
    verified: z.number().int(),
  })
  .meta({ id: "FraudHold" });
export const fraudHoldList = z.object({ holds: z.array(fraudHold) });
export const prefixParams = z.object({ prefix: z.string().regex(/^\+?\d{1,6}$/, "must be a calling-code prefix such as 254 or 1876") });

// --- history: GET /v1/messages, GET /v1/otp ---

export const HISTORY_DEFAULT_LIMIT = 50;
export const HISTORY_MAX_LIMIT = 500;

/** A list filter: `a,b`, or the parameter repeated; each value one of `values`. */
const filterList = <T extends string>(values: z.ZodEnum<{ [K in T]: K }>) =>
  z
    .union([z.string(), z.array(z.string()).max(20)])
    .transform((given) => [...new Set((Array.isArray(given) ? given : [given]).flatMap((part) => part.split(",")).map((value) => value.trim()).filter(Boolean))])
    .pipe(z.array(values).min(1, "give at least one value"));

/** An instant as ISO 8601: a date (midnight UTC) or a date-time with its zone; read by the platform's Date.parse once zod has checked the form. */
const instant = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()], { error: "must be an ISO 8601 date (2026-05-01) or date-time with a zone (2026-05-01T10:00:00Z)" })
  .transform((value) => Date.parse(value))
  .refine(Number.isFinite, "is not a time");

const historyRoute = z
  .string()
  .refine(
    (route) => (ROUTE_NAMES as readonly string[]).includes(route) || (route.startsWith("device:") && DEVICE_ID_PATTERN.test(route.slice("device:".length))),
    `must be one of ${ROUTE_NAMES.join(", ")} or device:<device id>`,
  )
  .meta({ description: "The route the record is on or ended on (`delivery.route`); `device` matches every phone" });

/** What a cursor carries: where the page ended. Not secret, only opaque: callers pass it back as it came. */
const cursorPosition = z.tuple([z.number().int().min(0).max(8.64e15), z.string().min(1).max(128)]);

export function encodeHistoryCursor(position: HistoryPosition): string {
  return Buffer.from(JSON.stringify([position.createdAt, position.id]), "utf8").toString("base64url");
}

const historyCursor = z
  .string()
  .max(400)
  .transform((value, context): HistoryPosition => {
    let decoded: unknown;
    try {
      // Buffer skips characters outside the alphabet, so check the form first.
      decoded = /^[A-Za-z0-9_-]+$/.test(value) ? JSON.parse(Buffer.from(value, "base64url").toString("utf8")) : undefined;
    } catch {
      decoded = undefined;
    }
    const position = cursorPosition.safeParse(decoded);
    if (!position.success) {
      context.addIssue({ code: "custom", message: "is not a cursor this API gave out (pass nextCursor back unchanged)" });
      return z.NEVER;
    }
    return { createdAt: position.data[0], id: position.data[1] };
  })
  .meta({ description: "nextCursor of the previous page" });

const historyFilters = {
  since: instant.optional().meta({ description: "Created at or after this instant (ISO 8601)", example: "2026-05-01T00:00:00Z" }),
  until: instant.optional().meta({ description: "Created before this instant (ISO 8601)", example: "2026-05-02" }),
  state: filterList(deliveryState).optional().meta({ description: `Delivery state(s), comma-separated: ${deliveryState.options.join(", ")}`, example: "failed,expired" }),
  route: historyRoute.optional(),
  cursor: historyCursor.optional(),
  limit: z.coerce.number().int().min(1).max(HISTORY_MAX_LIMIT).default(HISTORY_DEFAULT_LIMIT),
  format: z.enum(["json", "csv"]).optional().meta({ description: "csv: the same page as text/csv (also chosen by Accept: text/csv)" }),
};

const sinceBeforeUntil = { check: (q: { since?: number; until?: number }) => q.since === undefined || q.until === undefined || q.since < q.until, message: "must be after since" };

export const messageHistoryQuery = z.strictObject(historyFilters).refine(sinceBeforeUntil.check, { message: sinceBeforeUntil.message, path: ["until"] });

export const otpHistoryQuery = z
  .strictObject({
    ...historyFilters,
    status: filterList(otpStatus)
      .optional()
      .meta({ description: `OTP status(es) as GET /v1/otp/:id shows them, comma-separated: ${otpStatus.options.join(", ")}`, example: "pending,expired" }),
  })
  .refine(sinceBeforeUntil.check, { message: sinceBeforeUntil.message, path: ["until"] });

const nextCursor = z.string().nullable().meta({ description: "Pass as `cursor` for the next page; null when there is none" });

export const messageList = z.object({ messages: z.array(messageView), nextCursor });
export const otpList = z.object({ otps: z.array(otpView), nextCursor });
