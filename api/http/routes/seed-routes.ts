/**
 * Routes kept for callers written against the earlier otp services:
 * `/send-code` + `/verify-code` and `/send-otp` + `/verify-otp`. Same rules as
 * /v1/otp; only the field names and reply shapes differ.
 */
import type { FastifyError } from "fastify";
import type { FastifyPluginAsyncZod, ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { OtpService } from "../../otp/otp-service.js";
import { requireScope } from "../auth.js";
import { ApiError, sendError, toApiError } from "../errors.js";
import { otpErrorToApi } from "../otp-errors.js";
import { errorBody, phoneNumber } from "../schemas.js";

const code = z.string().regex(/^\d{4,10}$/, "must be 4 to 10 digits, as a string");
const uid = z.string().min(1).max(128);

const sendCodeBody = z
  .object({ user_id: uid, method: z.enum(["sms", "email"]), phone: phoneNumber.optional(), email: z.email().optional() })
  .refine((b) => (b.method === "sms" ? b.phone : b.email), { message: "phone is required for sms, email for email", path: ["phone"] });
const verifyCodeBody = z.object({ user_id: uid, passcode: code });
const sendOtpBody = z.object({ phone: phoneNumber, uid, env: z.string().max(32).optional() });
const verifyOtpBody = z.object({ uid, code });

const envelope = z.object({ success: z.boolean(), data: z.unknown().nullable(), message: z.string(), error: z.string().nullable() });

export const seedRoutes: FastifyPluginAsyncZod<{ otp: OtpService }> = async (app, { otp }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "otp"));

  app.post(
    "/send-code",
    { schema: { summary: "Seed-compatible: send a code", tags: ["compat"], body: sendCodeBody, response: { 200: z.object({ message: z.string(), id: z.string(), expiresAt: z.string() }), 400: errorBody } } },
    async (request) => {
      const { user_id, method, phone, email } = request.body;
      const issued = await otp.issue({ userId: user_id, channel: method, to: phone, email }).catch(otpErrorToApi);
      return { message: `code sent by ${issued.channel}`, id: issued.id, expiresAt: issued.expiresAt };
    },
  );

  app.post(
    "/verify-code",
    { schema: { summary: "Seed-compatible: check a code", tags: ["compat"], body: verifyCodeBody, response: { 200: z.object({ valid: z.boolean(), status: z.string(), attemptsLeft: z.number() }), 400: errorBody } } },
    async (request) => {
      const { valid, status, attemptsLeft } = await otp.verify({ userId: request.body.user_id, code: request.body.passcode }).catch(otpErrorToApi);
      return { valid, status, attemptsLeft };
    },
  );

  // The /send-otp pair answers every outcome, errors included, in the {success, data, message, error} envelope.
  await app.register(async (scope) => {
    const envelopeScope = scope.withTypeProvider<ZodTypeProvider>();
    envelopeScope.setErrorHandler((error: FastifyError, request, reply) => {
      const { error: apiError } = toApiError(error);
      if (apiError.statusCode >= 500) return sendError(error, request, reply);
      if (apiError.retryAfterSeconds) reply.header("retry-after", String(apiError.retryAfterSeconds));
      return reply.status(apiError.statusCode).send({ success: false, data: null, message: apiError.message, error: apiError.code });
    });

    envelopeScope.post(
      "/send-otp",
      { schema: { summary: "Seed-compatible: send an OTP by SMS", tags: ["compat"], body: sendOtpBody, response: { 200: envelope, 400: envelope, 401: envelope, 429: envelope } } },
      async (request) => {
        // `env` is accepted for compatibility and ignored: no mode ever returns the code in the reply.
        const issued = await otp.issue({ userId: request.body.uid, to: request.body.phone, channel: "sms" }).catch(otpErrorToApi);
        return { success: true, data: { id: issued.id, expiresAt: issued.expiresAt }, message: "OTP sent", error: null };
      },
    );

    envelopeScope.post(
      "/verify-otp",
      { schema: { summary: "Seed-compatible: check an OTP", tags: ["compat"], body: verifyOtpBody, response: { 200: envelope, 400: envelope, 401: envelope, 404: envelope, 429: envelope } } },
      async (request) => {
        const result = await otp.verify({ userId: request.body.uid, code: request.body.code }).catch(otpErrorToApi);
        const data = { valid: result.valid, status: result.status, attemptsLeft: result.attemptsLeft };
        if (!result.valid) throw new ApiError(400, result.status === "pending" ? "invalid_code" : result.status, `code not accepted (${result.status})`);
        return { success: true, data, message: "OTP verified", error: null };
      },
    );
  });
};
