/**
 * The Fastify app: schemas, auth, rate limits, errors, docs and the routes.
 * Everything it needs is passed in, so tests build it with real parts on
 * ephemeral ports.
 */
import { AUTHENTICATED, openApiTransform } from "./openapi.js";
import { asyncApiDocument, type AsyncApiServer } from "../../broker/asyncapi.js";
import rateLimit from "@fastify/rate-limit";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import {
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { Redis } from "ioredis";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { HttpHardening } from "../config/config.js";
import { RequestLog } from "../logging/request-log.js";
import type { MessageService } from "../delivery/message-service.js";
import type { FraudGuard } from "../fraud/fraud-guard.js";
import type { DeviceService } from "../devices/device-service.js";
import type { Metrics } from "../metrics/metrics.js";
import type { OtpService } from "../otp/otp-service.js";
import { RedisStore } from "../store/redis-store.js";
import type { Store } from "../store/store.js";
import { createAuthenticator } from "./auth.js";
import { answerClientError, ApiError, endWithError, sendError } from "./errors.js";
import { healthRoutes } from "./routes/health-routes.js";
import { deviceRoutes } from "./routes/device-routes.js";
import { fraudRoutes } from "./routes/fraud-routes.js";
import { keyRoutes } from "./routes/key-routes.js";
import { messageRoutes } from "./routes/message-routes.js";
import { attachMyOtpSocket, MYOTP_PATH } from "./routes/myotp-socket.js";
import { otpRoutes } from "./routes/otp-routes.js";
import { seedRoutes } from "./routes/seed-routes.js";
import { consoleApi, consoleAssets, type ConsoleDeps } from "../console/console-plugin.js";

export interface HttpServerDeps {
  store: Store;
  otp: OtpService;
  /** The OTP service under seed 001's policy (3 checks per code) for /send-code; absent, `otp`. */
  seed001Otp?: OtpService;
  messages: MessageService;
  metrics: Metrics;
  adminKeyDigest: string;
  rateLimit: { perKeyPerMinute: number; perIpPerMinute: number; redis?: Redis };
  bodyLimitBytes: number;
  /** Timeouts and TRUST_PROXY (config.http). */
  hardening: HttpHardening;
  /** Paths another listener upgrades (the broker's MQTT over WebSocket); every other upgrade is refused here. */
  webSocketPaths?: string[];
  devices: DeviceService;
  /** The fraud guard, for its operator routes (/v1/fraud/holds). */
  fraud?: FraudGuard;
  /** The broker's CA, public: phones fetch it and check it against the pinned fingerprint. */
  caPem: string;
  logger: FastifyBaseLogger;
  version: string;
  /** The broker's listeners for the AsyncAPI document at /docs/asyncapi.json (broker/asyncapi.ts). */
  mqttServers?: () => Record<string, AsyncApiServer>;
  /** The web console at `/` (api/console/); absent, there is none. */
  console?: ConsoleDeps;
}

/** Node checks header and request deadlines on a timer (30 s by default); check often enough that they hold to about a second. */
function checkingIntervalMs(limits: HttpHardening): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs) / 4)));
}

export async function buildHttpServer(deps: HttpServerDeps): Promise<FastifyInstance> {
  const limits = deps.hardening;
  const app = Fastify({
    loggerInstance: deps.logger,
    // One line per request, on its response (api/logging/request-log.ts), instead of Fastify's two.
    logController: new RequestLog(),
    bodyLimit: deps.bodyLimitBytes,
    // Job ids from MQTT publishers may be up to 128 characters; Fastify's default cuts path parameters at 100.
    routerOptions: { maxParamLength: 200 },
    // Fastify's default request timeout is none: a slow body would hold its socket forever.
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, requestTimeout: limits.requestTimeoutMs, connectionsCheckingInterval: checkingIntervalMs(limits) },
    // Off by default: the socket's peer is the client. Behind proxies, request.ip (and so the per-IP limit) is X-Forwarded-For's client.
    trustProxy: limits.trustProxy,
    // Fastify answers these itself, outside the envelope, unless handed over.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    clientErrorHandler: (error, socket) => answerClientError(error, socket, deps.logger),
    // Fastify's own closing 503 is outside the envelope; the onRequest hook below answers instead.
    return503OnClosing: false,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((error, request, reply) => sendError(error as Error, request, reply));
  // A known path under another method is a 404 too (test/http/bad-input.test.ts holds that), as is a method Fastify has no router for.
  app.setNotFoundHandler((request, reply) => sendError(new ApiError(404, "not_found", `no route ${request.method} ${request.url.split("?")[0]}`), request, reply));

  let closing = false;
  app.addHook("preClose", async () => {
    closing = true;
  });
  app.addHook("onRequest", async () => {
    if (closing) throw new ApiError(503, "shutting_down", "this node is shutting down; try again", 1);
  });

  // With any upgrade listener attached, Node hands every Upgrade request to it and nothing else answers or times it out.
  const webSocketPaths = [...(deps.webSocketPaths ?? ["/mqtt"]), MYOTP_PATH];
  app.server.on("upgrade", (request: IncomingMessage, socket: Duplex) => {
    let path = "/";
    try {
      path = new URL(request.url ?? "/", "http://localhost").pathname;
    } catch {
      // not a URL: refused below like any unknown path
    }
    if (webSocketPaths.includes(path)) return;
    endWithError(socket, 404, "not_found", `no WebSocket endpoint at ${path}`);
  });

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
    transform: openApiTransform,
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });
  // The MQTT contract beside the REST one; public like /docs. MQTT over WebSocket is on this very port, so its host is the request's.
  app.get("/docs/asyncapi.json", { schema: { hide: true } }, async (request) =>
    asyncApiDocument({
      version: deps.version,
      servers: {
        ...deps.mqttServers?.(),
        websocket: { host: request.host, protocol: request.protocol === "https" ? "wss" : "ws", pathname: "/mqtt", description: "MQTT over WebSocket, on the HTTP port" },
      },
    }),
  );

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
  if (deps.console) await app.register(consoleAssets);

  const authenticate = createAuthenticator({ store: deps.store, adminKeyDigest: deps.adminKeyDigest, seedKeylessFrom: limits.seedKeylessFrom });
  attachMyOtpSocket(app, { authenticate, messages: deps.messages, metrics: deps.metrics, logger: deps.logger, authTimeoutMs: limits.headersTimeoutMs, idleTimeoutMs: limits.idleTimeoutMs });
  await app.register(async (authenticated) => {
    // Marked for the OpenAPI document (openapi.ts): these routes carry the lock and their 401/403.
    authenticated.addHook("onRoute", (route) => {
      route.config = { ...route.config, [AUTHENTICATED]: true } as typeof route.config;
    });
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
    await authenticated.register(otpRoutes, { otp: deps.otp, store: deps.store });
    await authenticated.register(messageRoutes, { messages: deps.messages, store: deps.store });
    await authenticated.register(keyRoutes, { store: deps.store });
    await authenticated.register(deviceRoutes, { devices: deps.devices, store: deps.store });
    await authenticated.register(seedRoutes, { otp: deps.otp, seed001Otp: deps.seed001Otp });
    if (deps.fraud) await authenticated.register(fraudRoutes, { fraud: deps.fraud });
    if (deps.console) await authenticated.register(consoleApi, { ...deps.console, devices: deps.devices, store: deps.store, metrics: deps.metrics });
  });

  return app;
}
