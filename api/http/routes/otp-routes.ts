import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { OtpService, OtpView } from "../../otp/otp-service.js";
import type { HistoryStore } from "../../store/store.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { createOtpBody, errorBody, idParams, issuedOtp, otpHistoryQuery, otpList, otpView, verifyOtpBody, verifyResult } from "../schemas.js";
import { otpErrorToApi } from "../otp-errors.js";
import { sendCsv, viewsOf, wantsCsv, type CsvColumns } from "./history.js";

/** The CSV form of GET /v1/otp: an OTP view, flattened. Like the view, no code and no destination. */
const OTP_CSV: CsvColumns<OtpView> = [
  ["id", (o) => o.id],
  ["status", (o) => o.status],
  ["channel", (o) => o.channel],
  ["attemptsLeft", (o) => o.attemptsLeft],
  ["deliveryState", (o) => o.delivery.state],
  ["route", (o) => o.delivery.route],
  ["deliveryAttempts", (o) => o.delivery.attempts.length],
  ["error", (o) => o.delivery.attempts.at(-1)?.error],
  ["createdAt", (o) => o.createdAt],
  ["expiresAt", (o) => o.expiresAt],
];

/** `store`: where the history is read (GET /v1/otp). */
export const otpRoutes: FastifyPluginAsyncZod<{ otp: OtpService; store: HistoryStore }> = async (app, { otp, store }) => {
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

  app.get(
    "/v1/otp",
    {
      schema: {
        summary: "OTP history, newest first: filters, cursor pagination, JSON or CSV (never a code)",
        description:
          "Each item is what GET /v1/otp/:id shows. With `format=csv` or `Accept: text/csv` the same page comes as text/csv " +
          "(columns id, status, channel, attemptsLeft, deliveryState, route, deliveryAttempts, error, createdAt, expiresAt) and the next cursor in the `x-next-cursor` header.",
        tags: ["otp"],
        querystring: otpHistoryQuery,
        response: { 200: otpList, 400: errorBody, 401: errorBody, 403: errorBody },
      },
    },
    async (request, reply) => {
      // Records carry no owning key, so the whole history (every tenant's ids) is for the operator only.
      requireScope(request.principal!, "admin");
      const { cursor, limit, since, until, state, status, route, format } = request.query;
      const query = { limit, after: cursor, since, until, states: state, statuses: status, route };
      const page = await viewsOf(await store.listOtps(query, Date.now()), (id) => otp.view(id));
      reply.header("vary", "accept");
      if (wantsCsv(format, request.headers.accept)) return sendCsv(reply, "otps", OTP_CSV, page);
      return { otps: page.items, nextCursor: page.nextCursor };
    },
  );
};
