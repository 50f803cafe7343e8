import { randomUUID } from "node:crypto";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { keyDigest, keyPrefix, newApiKey } from "../../keys/api-key-format.js";
import type { ApiKeyRecord, Store } from "../../store/store.js";
import { requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { apiKeyList, apiKeyView, createKeyBody, createdKey, errorBody, idParams } from "../schemas.js";

const view = ({ digest: _digest, ...rest }: ApiKeyRecord) => rest;

export const keyRoutes: FastifyPluginAsyncZod<{ store: Store }> = async (app, { store }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "admin"));

  app.post(
    "/v1/keys",
    { schema: { summary: "Create an API key (shown once)", tags: ["keys"], body: createKeyBody, response: { 201: createdKey, 400: errorBody, 403: errorBody } } },
    async (request, reply) => {
      const key = newApiKey();
      const record: ApiKeyRecord = {
        id: randomUUID(),
        name: request.body.name,
        digest: keyDigest(key),
        scopes: request.body.scopes ?? ["otp", "messages"],
        createdAt: new Date().toISOString(),
        prefix: keyPrefix(key),
        ...(request.body.quotas ? { quotas: request.body.quotas } : {}),
        ...(request.body.allowedCountries ? { allowedCountries: request.body.allowedCountries } : {}),
        ...(request.body.blockedCountries ? { blockedCountries: request.body.blockedCountries } : {}),
      };
      await store.saveApiKey(record);
      return reply.status(201).send({ ...view(record), key });
    },
  );

  app.get("/v1/keys", { schema: { summary: "List API keys", tags: ["keys"], response: { 200: apiKeyList } } }, async () => ({
    keys: (await store.listApiKeys()).map(view).sort((a, b) => a.createdAt.localeCompare(b.createdAt)),
  }));

  app.delete(
    "/v1/keys/:id",
    { schema: { summary: "Revoke an API key", tags: ["keys"], params: idParams, response: { 200: apiKeyView, 404: errorBody } } },
    async (request) => {
      const revoked = await store.revokeApiKey(request.params.id, new Date());
      if (!revoked) throw new ApiError(404, "not_found", `no API key with id ${request.params.id}`);
      return view(revoked);
    },
  );
};

