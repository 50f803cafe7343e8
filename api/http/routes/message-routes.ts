import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { DuplicateMessageError, NoRouteError, OverloadedError, type MessageService, type MessageView } from "../../delivery/message-service.js";
import type { HistoryStore } from "../../store/store.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { fraudErrorToApi } from "../otp-errors.js";
import { acceptedMessage, errorBody, idParams, messageHistoryQuery, messageList, messageView, sendMessageBody } from "../schemas.js";
import { sendCsv, viewsOf, wantsCsv, type CsvColumns } from "./history.js";

/** The CSV form of GET /v1/messages: a message view, flattened; `to` masked as in the view. */
const MESSAGE_CSV: CsvColumns<MessageView> = [
  ["id", (m) => m.id],
  ["status", (m) => m.status],
  ["to", (m) => m.to],
  ["route", (m) => m.delivery.route],
  ["attempts", (m) => m.delivery.attempts.length],
  ["error", (m) => m.delivery.attempts.at(-1)?.error],
  ["createdAt", (m) => m.createdAt],
  ["updatedAt", (m) => m.updatedAt],
];

/** `store`: where the history is read (GET /v1/messages). */
export const messageRoutes: FastifyPluginAsyncZod<{ messages: MessageService; store: HistoryStore }> = async (app, { messages, store }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "messages"));

  app.post(
    "/v1/messages",
    {
      schema: {
        summary: "Send a plain SMS ({to, body} or {cell, message})",
        tags: ["messages"],
        body: sendMessageBody,
        response: { 202: acceptedMessage, 400: errorBody, 401: errorBody, 403: errorBody, 409: errorBody, 429: errorBody, 503: errorBody },
      },
    },
    async (request, reply) => {
      try {
        return reply.status(202).send(await messages.send(request.body, callerOf(request.principal)));
      } catch (error) {
        if (error instanceof NoRouteError) throw new ApiError(503, "no_route", error.message);
        if (error instanceof OverloadedError) throw new ApiError(503, "overloaded", error.message, 1);
        if (error instanceof DuplicateMessageError) throw new ApiError(409, "conflict", error.message);
        fraudErrorToApi(error);
      }
    },
  );

  app.get(
    "/v1/messages/:id",
    { schema: { summary: "A message's status and delivery attempts", tags: ["messages"], params: idParams, response: { 200: messageView, 404: errorBody } } },
    async (request) => {
      const view = await messages.view(request.params.id);
      if (!view) throw new ApiError(404, "not_found", `no message with id ${request.params.id}`);
      return view;
    },
  );

  app.get(
    "/v1/messages",
    {
      schema: {
        summary: "Message history, newest first: filters, cursor pagination, JSON or CSV (never a body or a full number)",
        description:
          "Each item is what GET /v1/messages/:id shows. With `format=csv` or `Accept: text/csv` the same page comes as text/csv " +
          "(columns id, status, to, route, attempts, error, createdAt, updatedAt) and the next cursor in the `x-next-cursor` header.",
        tags: ["messages"],
        querystring: messageHistoryQuery,
        response: { 200: messageList, 400: errorBody, 401: errorBody, 403: errorBody },
      },
    },
    async (request, reply) => {
      // Records carry no owning key, so the whole history (every tenant's ids) is for the operator only.
      requireScope(request.principal!, "admin");
      const { cursor, limit, since, until, state, route, format } = request.query;
      const page = await viewsOf(await store.listMessages({ limit, after: cursor, since, until, states: state, route }), (id) => messages.view(id));
      reply.header("vary", "accept");
      if (wantsCsv(format, request.headers.accept)) return sendCsv(reply, "messages", MESSAGE_CSV, page);
      return { messages: page.items, nextCursor: page.nextCursor };
    },
  );
};
