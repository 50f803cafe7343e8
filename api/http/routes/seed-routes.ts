/**
 * Routes kept for callers written against the earlier otp services:
 * `/send-code` + `/verify-code` (seed 001) and `/send-otp` + `/verify-otp`
 * (seed 002). Same rules as /v1/otp; the field names, reply shapes and
 * statuses are the seeds' own, so their clients work unchanged.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { FastifyPluginAsyncZod, ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import { OtpError, type OtpService } from "../../otp/otp-service.js";
import type { OtpStatus } from "../../otp/rules.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError, sendError, toApiError } from "../errors.js";
import { otpErrorToApi } from "../otp-errors.js";
import { errorBody, phoneNumber } from "../schemas.js";

const code = z.string().regex(/^\d{4,10}$/, "must be 4 to 10 digits, as a string");
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
const sendOtpBody = z.object({ phone: seedPhone, uid, env: z.string().max(32).optional() });
const verifyOtpBody = z.object({ uid, code });

/** Seed 002's reply: `error` is null on a send, `{}` on a verify, the error code when it fails. */
const envelope = z.object({ success: z.boolean(), data: z.unknown().nullable(), message: z.string(), error: z.union([z.string(), z.object({})]).nullable() });
/** Seed 001's errors are FastAPI's `{detail}`; the envelope's `error` is given too. */
const seed001Error = errorBody.extend({ detail: z.string() });
/** How seed 002 writes a number back: E.164 without the `+`. */
const seedDigits = (e164: string) => e164.replace(/^\+/, "");

export const seedRoutes: FastifyPluginAsyncZod<{ otp: OtpService }> = async (app, { otp }) => {
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
          response: { 200: z.object({ message: z.string(), user_id: z.string(), method: z.enum(["sms", "email"]) }), 400: seed001Error, 401: seed001Error, 403: seed001Error, 429: seed001Error },
        },
      },
      async (request) => {
        const { user_id, method, phone, email } = request.body;
        await otp.issue({ userId: user_id, channel: method, to: phone, email }, callerOf(request.principal)).catch(otpErrorToApi);
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
          response: { 200: z.object({ success: z.literal(true), message: z.string(), user_id: z.string() }), 400: seed001Error, 401: seed001Error, 404: seed001Error, 429: seed001Error },
        },
      },
      async (request) => {
        const { user_id, passcode } = request.body;
        const result = await otp.verify({ userId: user_id, code: passcode }).catch(seedVerifyError);
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
      { schema: { summary: "Seed-compatible: send an OTP by SMS", tags: ["compat"], body: sendOtpBody, response: { 200: envelope, 400: envelope, 401: envelope, 403: envelope, 429: envelope } } },
      async (request) => {
        // `env` is accepted for compatibility and ignored: no mode ever returns the code in the reply.
        await otp.issue({ userId: request.body.uid, to: request.body.phone, channel: "sms" }, callerOf(request.principal)).catch(otpErrorToApi);
        return { success: true, data: { status: "Sent", number: seedDigits(request.body.phone) }, message: "OTP sent successfully", error: null };
      },
    );

    envelopeScope.post(
      "/verify-otp",
      { schema: { summary: "Seed-compatible: check an OTP", tags: ["compat"], body: verifyOtpBody, response: { 200: envelope, 400: envelope, 401: envelope, 404: envelope, 429: envelope } } },
      async (request) => {
        const result = await otp.verify({ userId: request.body.uid, code: request.body.code }).catch(seedVerifyError);
        if (!result.valid) throw notAccepted(result.status, result.attemptsLeft);
        const contact = result.to ? seedDigits(result.to) : (result.email ?? "");
        return { success: true, data: { message: "OTP verified successfully", contact_value: contact }, message: "Verification successful", error: {} };
      },
    );
  });
};

/** A seed's client errors in that seed's shape (Retry-After kept); a 5xx keeps otpgate's envelope and its log line. */
function seedErrors(shape: (apiError: ApiError, details: ReturnType<typeof toApiError>["details"]) => unknown) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const { error: apiError, details } = toApiError(error);
    if (apiError.statusCode >= 500) return sendError(error, request, reply);
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
