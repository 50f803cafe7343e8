import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { OtpService } from "../../otp/otp-service.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { createOtpBody, errorBody, idParams, issuedOtp, otpView, verifyOtpBody, verifyResult } from "../schemas.js";
import { otpErrorToApi } from "../otp-errors.js";

export const otpRoutes: FastifyPluginAsyncZod<{ otp: OtpService }> = async (app, { otp }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "otp"));

  app.post(
    "/v1/otp",
    {
      schema: {
        summary: "Send a one-time code by SMS or email",
        tags: ["otp"],
        body: createOtpBody,
        response: { 202: issuedOtp, 400: errorBody, 401: errorBody, 403: errorBody, 429: errorBody, 503: errorBody },
      },
    },
    async (request, reply) => {
      const issued = await otp.issue(request.body, callerOf(request.principal)).catch(otpErrorToApi);
      return reply.status(202).send(issued);
    },
  );

  app.post(
    "/v1/otp/verify",
    {
      schema: {
        summary: "Check a code; a code is accepted once",
        tags: ["otp"],
        body: verifyOtpBody,
        response: { 200: verifyResult, 400: errorBody, 404: errorBody, 429: errorBody },
      },
    },
    async (request) => {
      const { valid, status, attemptsLeft } = await otp.verify(request.body).catch(otpErrorToApi);
      return { valid, status, attemptsLeft };
    },
  );

  app.get(
    "/v1/otp/:id",
    { schema: { summary: "An OTP's status and delivery attempts (never the code)", tags: ["otp"], params: idParams, response: { 200: otpView, 404: errorBody } } },
    async (request) => {
      const view = await otp.view(request.params.id);
      if (!view) throw new ApiError(404, "not_found", `no OTP with id ${request.params.id}`);
      return view;
    },
  );
};
