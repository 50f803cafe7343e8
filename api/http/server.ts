/**
 * The Fastify app: schemas, auth, rate limits, errors, docs and the routes.
 * Everything it needs is passed in, so tests build it with real parts on
 * ephemeral ports.
 */
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import type { MessageService } from "../delivery/message-service.js";
import type { DeviceService } from "../devices/device-service.js";
import type { Metrics } from "../metrics/metrics.js";
import type { OtpService } from "../otp/otp-service.js";
import { RedisStore } from "../store/redis-store.js";
import type { Store } from "../store/store.js";
import { createAuthenticator } from "./auth.js";
import { ApiError, sendError } from "./errors.js";
import { healthRoutes } from "./routes/health-routes.js";
import { deviceRoutes } from "./routes/device-routes.js";
import { keyRoutes } from "./routes/key-routes.js";
import { messageRoutes } from "./routes/message-routes.js";
import { otpRoutes } from "./routes/otp-routes.js";
import { seedRoutes } from "./routes/seed-routes.js";

export interface HttpServerDeps {
  store: Store;
  otp: OtpService;
  messages: MessageService;
  metrics: Metrics;
  adminKeyDigest: string;
  rateLimit: { perKeyPerMinute: number; perIpPerMinute: number; redis?: Redis };
  bodyLimitBytes: number;
  devices: DeviceService;
  /** The broker's CA, public: phones fetch it and check it against the pinned fingerprint. */
  caPem: string;
  logger: FastifyBaseLogger;
  version: string;
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    bodyLimit: deps.bodyLimitBytes,
    // Job ids from MQTT publishers may be up to 128 characters; Fastify's default cuts path parameters at 100.
    maxParamLength: 200,
    // Behind a proxy, set trustProxy in front of this; by default the socket address is the client.
    trustProxy: false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((error, request, reply) => sendError(error as Error, request, reply));
  app.setNotFoundHandler((request, reply) => sendError(new ApiError(404, "not_found", `no route ${request.method} ${request.url.split("?")[0]}`), request, reply));

  app.addHook("onResponse", async (request, reply) => {
    deps.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? "unmatched", status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
  });

  await app.register(swagger, {
    openapi: {
      info: { title: "otpgate", description: "Self-hosted OTP and SMS gateway", version: deps.version },
      components: {
        securitySchemes: {
          bearer: { type: "http", scheme: "bearer" },
          apiKey: { type: "apiKey", in: "header", name: "x-api-key" },
        },
      },
      security: [{ bearer: [] }, { apiKey: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  const tooMany = (max: number, after: string) => new ApiError(429, "rate_limited", `more than ${max} requests; retry in ${after}`);
  // Counters live in the store's Redis namespace, so deployments (and tests) sharing a Redis do not share them.
  const redisNamespace = deps.store instanceof RedisStore ? deps.store.keyPrefix : "otpgate:";
  await app.register(rateLimit, {
    global: true,
    max: deps.rateLimit.perIpPerMinute,
    timeWindow: 60_000,
    ...(deps.rateLimit.redis ? { redis: deps.rateLimit.redis, nameSpace: `${redisNamespace}ratelimit:ip:` } : {}),
    errorResponseBuilder: (_request, context) => tooMany(context.max, context.after),
  });

  await app.register(healthRoutes, { store: deps.store, metrics: deps.metrics });
  app.get("/ca.pem", { config: { rateLimit: false }, schema: { summary: "The broker's CA certificate (public)", tags: ["devices"] } }, async (_request, reply) =>
    reply.type("application/x-pem-file").send(deps.caPem),
  );

  const authenticate = createAuthenticator({ store: deps.store, adminKeyDigest: deps.adminKeyDigest });
  await app.register(async (authenticated) => {
    authenticated.decorateRequest("principal", null);
    authenticated.addHook("preHandler", async (request) => {
      request.principal = await authenticate(request);
    });
    // Not `authenticated.rateLimit()`: its hook returns early on any request the global
    // per-IP hook has already counted (one shared "ran" flag), so it never limited a key.
    const perKey = authenticated.createRateLimit({
      max: deps.rateLimit.perKeyPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => `key:${request.principal?.id ?? "none"}`,
    });
    authenticated.addHook("preHandler", async (request) => {
      const limit = await perKey(request);
      if (limit.isAllowed || !limit.isExceeded) return;
      const seconds = Math.max(1, limit.ttlInSeconds);
      throw new ApiError(429, "rate_limited", `more than ${limit.max} requests for this key; retry in ${seconds} s`, seconds);
    });
    await authenticated.register(otpRoutes, { otp: deps.otp });
    await authenticated.register(messageRoutes, { messages: deps.messages });
    await authenticated.register(keyRoutes, { store: deps.store });
    await authenticated.register(deviceRoutes, { devices: deps.devices, store: deps.store });
    await authenticated.register(seedRoutes, { otp: deps.otp });
  });

  return app;
}
