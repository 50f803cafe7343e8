/**
 * Routes kept for callers written against the earlier otp services:
 * `/send-code` + `/verify-code` (seed 001) and `/send-otp` + `/verify-otp`
 * (seed 002). Same rules as /v1/otp; the field names, reply shapes and
 * statuses are the seeds' own, so their clients work unchanged, and so are
 * the limits those clients were written against: 3 checks per code for seed
 * 001, 6-digit codes that last 3 minutes for seed 002.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod, ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { OtpError, type OtpService } from "../../otp/otp-service.js";
import type { OtpPolicy, OtpStatus } from "../../otp/rules.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError, toApiError } from "../errors.js";
import { otpErrorToApi } from "../otp-errors.js";
import { errorBody, phoneNumber } from "../schemas.js";

const code = z.string().regex(/^\d{4,10}$/, "must be 4 to 10 digits, as a string");
/** Seed 002 refuses anything but its 6-digit codes up front, so a malformed one costs no attempt. */
const sixDigitCode = z.string().regex(/^\d{6}$/, "must be the 6 digits sent, as a string");
const uid = z.string().min(1).max(128);

const sendCodeBody = z
  .object({ user_id: uid, method: z.enum(["sms", "email"]), phone: phoneNumber.optional(), email: z.email().optional() })
  .refine((b) => (b.method === "sms" ? b.phone : b.email), { message: "phone is required for sms, email for email", path: ["phone"] });
const verifyCodeBody = z.object({ user_id: uid, passcode: code });
/** Seed 002 sends the number with its country code and no `+`, as a JSON number or a string. */
const seedPhone = z
  .union([z.string(), z.number().int().positive()])
  .transform((value) => {
    const text = String(value).trim();
    return /^\d/.test(text) ? `+${text}` : text;
  })
  .pipe(phoneNumber);
const sendOtpBody = z.object({ phone: seedPhone, uid, env: z.string().max(32).nullish() });
const verifyOtpBody = z.object({ uid, code: sixDigitCode });

/** Seed 002's reply: `error` is null on a send, `{}` on a verify, the error code when it fails. */
const envelope = z.object({ success: z.boolean(), data: z.unknown().nullable(), message: z.string(), error: z.union([z.string(), z.object({})]).nullable() });
/** Seed 001's errors are FastAPI's `{detail}`; the envelope's `error` is given too. */
const seed001Error = errorBody.extend({ detail: z.string() });
const seed001Errors = { 400: seed001Error, 401: seed001Error, 403: seed001Error, 429: seed001Error, 500: seed001Error, 503: seed001Error };
/** 403: a key without the otp scope, or a number the fraud guard never allows; 503: overloaded, no route or the store away. */
const envelopeErrors = { 400: envelope, 401: envelope, 403: envelope, 429: envelope, 500: envelope, 503: envelope };
/** How seed 002 writes a number back: E.164 without the `+`. */
const seedDigits = (e164: string) => e164.replace(/^\+/, "");

/** Seed 001 allowed 3 checks per code. */
const SEED_001_CHECKS_PER_CODE = 3;
/** Seed 002's codes: 6 digits, valid 3 minutes. */
const SEED_002_CODE = { codeLength: 6, ttlSeconds: 180 } as const;

/** The policy seed 001's codes are issued under: its 3 checks per code, or the node's limit when that is lower. */
export function seed001Policy(policy: OtpPolicy): OtpPolicy {
  return { ...policy, maxAttempts: Math.min(SEED_001_CHECKS_PER_CODE, policy.maxAttempts) };
}

/**
 * `seed001Otp`: the same service built with seed001Policy (the record keeps its limit, so /v1/otp/verify
 * counts the same 3); absent, seed 001's codes get the node's OTP_MAX_ATTEMPTS.
 */
export const seedRoutes: FastifyPluginAsyncZod<{ otp: OtpService; seed001Otp?: OtpService }> = async (app, { otp, seed001Otp = otp }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "otp"));

  // The /send-code pair answers errors in the envelope plus FastAPI's `detail`, which seed 001's clients read.
  await app.register(async (scope) => {
    const seed001 = scope.withTypeProvider<ZodTypeProvider>();
    seed001.setErrorHandler(
      seedErrors((apiError, details) => ({ error: { code: apiError.code, message: apiError.message, ...(details ? { details } : {}) }, detail: apiError.message })),
    );

    seed001.post(
      "/send-code",
      {
        schema: {
          summary: "Seed-compatible: send a code",
          tags: ["compat"],
          body: sendCodeBody,
          response: { 200: z.object({ message: z.string(), user_id: z.string(), method: z.enum(["sms", "email"]) }), ...seed001Errors },
        },
      },
      async (request) => {
        const { user_id, method, phone, email } = request.body;
        await seed001Otp.issue({ userId: user_id, channel: method, to: phone, email, codeLength: 6 }, callerOf(request.principal)).catch(otpErrorToApi);
        return { message: `OTP sent successfully via ${method}`, user_id, method };
      },
    );

    seed001.post(
      "/verify-code",
      {
        schema: {
          summary: "Seed-compatible: check a code",
          tags: ["compat"],
          body: verifyCodeBody,
          response: { 200: z.object({ success: z.literal(true), message: z.string(), user_id: z.string() }), ...seed001Errors },
        },
      },
      async (request) => {
        const { user_id, passcode } = request.body;
        const result = await seed001Otp.verify({ userId: user_id, code: passcode }).catch(seedVerifyError);
        if (!result.valid) throw notAccepted(result.status, result.attemptsLeft);
        return { success: true as const, message: "OTP verified successfully", user_id };
      },
    );
  });

  // The /send-otp pair answers every outcome, errors included, in the {success, data, message, error} envelope.
  await app.register(async (scope) => {
    const envelopeScope = scope.withTypeProvider<ZodTypeProvider>();
    envelopeScope.setErrorHandler(seedErrors((apiError) => ({ success: false, data: null, message: apiError.message, error: apiError.code })));

    envelopeScope.post(
      "/send-otp",
      { schema: { summary: "Seed-compatible: send an OTP by SMS", tags: ["compat"], body: sendOtpBody, response: { 200: envelope, ...envelopeErrors } } },
      async (request) => {
        // `env` is accepted for compatibility and ignored: no mode ever returns the code in the reply.
        await otp.issue({ userId: request.body.uid, to: request.body.phone, channel: "sms", ...SEED_002_CODE }, callerOf(request.principal)).catch(otpErrorToApi);
        return { success: true, data: { status: "Sent", number: seedDigits(request.body.phone) }, message: "OTP sent successfully", error: null };
      },
    );

    envelopeScope.post(
      "/verify-otp",
      { schema: { summary: "Seed-compatible: check an OTP", tags: ["compat"], body: verifyOtpBody, response: { 200: envelope, ...envelopeErrors } } },
      async (request) => {
        const result = await otp.verify({ userId: request.body.uid, code: request.body.code }).catch(seedVerifyError);
        if (!result.valid) throw notAccepted(result.status, result.attemptsLeft);
        const contact = result.to ? seedDigits(result.to) : (result.email ?? "");
        return { success: true, data: { message: "OTP verified successfully", contact_value: contact }, message: "Verification successful", error: {} };
      },
    );
  });
};

/**
 * Every failure in that seed's shape, 5xx included: its clients read the body whatever the status
 * (seed 002's JavaScript example calls response.json() unconditionally). Retry-After is kept, and a
 * failure that is not the client's is logged as sendError logs it.
 */
function seedErrors(shape: (apiError: ApiError, details: ReturnType<typeof toApiError>["details"]) => unknown) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { error: apiError, details } = toApiError(error);
    if (apiError.code === "client_aborted") request.log.debug({ err: error }, "client closed the connection mid-request");
    else if (!(error instanceof ApiError) && apiError.statusCode >= 500) request.log.error({ err: error }, "request failed");
    if (apiError.retryAfterSeconds) reply.header("retry-after", String(apiError.retryAfterSeconds));
    return reply.status(apiError.statusCode).send(shape(apiError, details));
  };
}

/** No code for that user is a 400 in the seeds (wrong, expired or unknown), not /v1's 404. */
function seedVerifyError(error: unknown): never {
  if (error instanceof OtpError && error.code === "not_found") throw new ApiError(400, "not_found", "no code was sent to that user, or it is gone");
  return otpErrorToApi(error);
}

/** A wrong, used or expired code: 400 in both seeds. */
function notAccepted(status: OtpStatus, attemptsLeft: number): ApiError {
  if (status === "pending") return new ApiError(400, "invalid_code", `the code is wrong; ${attemptsLeft} attempt(s) left`);
  const why = { approved: "the code was already used", expired: "the code has expired", max_attempts: "too many wrong codes for this OTP" } as const;
  return new ApiError(400, status, why[status]);
}
