/** Operator actions on the fraud guard (admin scope): see and lift conversion-watch holds. */
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { FraudGuard } from "../../fraud/fraud-guard.js";
import type { FraudHold } from "../../fraud/fraud-rules.js";
import { requireScope } from "../auth.js";
import { ApiError } from "../errors.js";
import { errorBody, fraudHold, fraudHoldList, prefixParams } from "../schemas.js";

const view = (hold: FraudHold) => ({ ...hold, heldAt: new Date(hold.heldAt).toISOString(), until: new Date(hold.until).toISOString() });

export const fraudRoutes: FastifyPluginAsyncZod<{ fraud: FraudGuard }> = async (app, { fraud }) => {
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "admin"));

  app.get(
    "/v1/fraud/holds",
    { schema: { summary: "Country prefixes held back by the conversion watch", tags: ["fraud"], response: { 200: fraudHoldList, 403: errorBody } } },
    async () => ({ holds: (await fraud.holds()).map(view) }),
  );

  app.delete(
    "/v1/fraud/holds/:prefix",
    {
      schema: {
        summary: "Lift a hold: sends to the prefix resume and its watch starts afresh",
        tags: ["fraud"],
        params: prefixParams,
        response: { 200: fraudHold, 403: errorBody, 404: errorBody },
      },
    },
    async (request) => {
      const prefix = request.params.prefix.replace(/^\+/, "");
      const cleared = await fraud.clear(prefix, request.principal!.id);
      if (!cleared) throw new ApiError(404, "not_found", `no hold on +${prefix}`);
      return view(cleared);
    },
  );
};
