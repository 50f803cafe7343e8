import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { DuplicateMessageError, NoRouteError, OverloadedError, type MessageService } from "../../delivery/message-service.js";
import { callerOf, requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { fraudErrorToApi } from "../otp-errors.js";
import { acceptedMessage, errorBody, idParams, messageView, sendMessageBody } from "../schemas.js";

export const messageRoutes: FastifyPluginAsyncZod<{ messages: MessageService }> = async (app, { messages }) => {
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
};
