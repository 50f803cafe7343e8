import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Metrics } from "../../metrics/metrics.js";
import type { Store } from "../../store/store.js";

const noRateLimit = { rateLimit: false } as const;

export const healthRoutes: FastifyPluginAsyncZod<{ store: Store; metrics: Metrics }> = async (app, { store, metrics }) => {
  app.get(
    "/healthz",
    { config: noRateLimit, schema: { summary: "The process is up", tags: ["health"], response: { 200: z.object({ status: z.literal("ok") }) } } },
    async () => ({ status: "ok" as const }),
  );

  const readiness = z.object({ status: z.enum(["ready", "unavailable"]), store: z.object({ kind: z.string(), ok: z.boolean(), error: z.string().optional() }) });
  app.get(
    "/readyz",
    { config: noRateLimit, schema: { summary: "The store answers; 503 when it does not", tags: ["health"], response: { 200: readiness, 503: readiness } } },
    async (_request, reply) => {
      try {
        await store.ping();
        return { status: "ready" as const, store: { kind: store.kind, ok: true } };
      } catch (error) {
        return reply.status(503).send({ status: "unavailable", store: { kind: store.kind, ok: false, error: (error as Error).message } });
      }
    },
  );

  app.get("/metrics", { config: noRateLimit, schema: { summary: "Prometheus metrics", tags: ["health"] } }, async (_request, reply) => {
    const body = await metrics.registry.metrics();
    return reply.type(metrics.registry.contentType).send(body);
  });
};
