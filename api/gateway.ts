/**
 * Wires one otpgate node from a validated Config: store, providers,
 * dispatcher, services and the HTTP server. No globals: tests build as many
 * gateways as they like, each with its own ports and data.
 */
import type { FastifyInstance } from "fastify";
import { createRequire } from "node:module";
import path from "node:path";
import { pino, type Logger } from "pino";
import type { Config } from "./config/config.js";
import { loadSecrets } from "./config/secrets.js";
import { emailRoute, smsRoute } from "./delivery/cloud-routes.js";
import { Dispatcher, type DeliveryRoute } from "./delivery/dispatcher.js";
import { MessageService } from "./delivery/message-service.js";
import { withBreaker } from "./delivery/route-breaker.js";
import { buildHttpServer } from "./http/server.js";
import { createMetrics, type Metrics } from "./metrics/metrics.js";
import { OtpService } from "./otp/otp-service.js";
import { otpEmail } from "./otp/templates.js";
import { createAfricasTalkingProvider } from "./providers/africastalking-provider.js";
import { createEmailProvider } from "./providers/email-provider.js";
import { createTwilioProvider } from "./providers/twilio-provider.js";
import { createSealer } from "./security/sealing.js";
import { MemoryStore } from "./store/memory-store.js";
import { RedisStore } from "./store/redis-store.js";
import type { Store } from "./store/store.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** How long a plain message may wait for a route before it is useless. */
const MESSAGE_TTL_SECONDS = 3600;
/** How often each node looks for jobs a crashed node left unsettled. */
const REAP_INTERVAL_MS = 30_000;

export interface Gateway {
  http: FastifyInstance;
  store: Store;
  dispatcher: Dispatcher;
  metrics: Metrics;
  logger: Logger;
  /** Set only on the first start of a DATA_DIR without ADMIN_API_KEY. */
  generatedAdminKey?: string;
  /** Configured routes, in failover order. */
  routes: string[];
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: Logger;
  /** Process metrics (event loop, memory) are off in tests, where many gateways share a process. */
  defaultMetrics?: boolean;
  /** Redis key namespace; tests give each gateway its own. */
  redisKeyPrefix?: string;
}

export function createLogger(level: string): Logger {
  return pino({ level, redact: ["req.headers.authorization", 'req.headers["x-api-key"]'] });
}

export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.logLevel);
  const secrets = loadSecrets(config.dataDir, { otpSecret: config.otpSecret, adminApiKey: config.adminApiKey });
  const store: Store = config.redisUrl
    ? new RedisStore({ url: config.redisUrl, keyPrefix: options.redisKeyPrefix })
    : new MemoryStore({ persistFile: path.join(config.dataDir, "state.json") });
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics });
  const sealer = createSealer(secrets.otpSecret);

  const timeoutMs = config.providerTimeoutMs;
  const email = config.email ? createEmailProvider({ ...config.email, timeoutMs }) : undefined;
  const cloudRoutes: DeliveryRoute[] = [];
  if (config.twilio) cloudRoutes.push(smsRoute(createTwilioProvider({ ...config.twilio, timeoutMs })));
  if (config.africasTalking) cloudRoutes.push(smsRoute(createAfricasTalkingProvider({ ...config.africasTalking, timeoutMs })));
  if (email) cloudRoutes.push(emailRoute(email, otpEmail({ code: "", appName: config.otp.appName, ttlSeconds: 60 }).subject));
  const breakerLogger = logger.child({ component: "breaker" });
  const routes = cloudRoutes.map((route) => withBreaker(route, { ...config.breaker, logger: breakerLogger }));

  const dispatcher = new Dispatcher({
    store,
    routes,
    order: config.failoverOrder,
    sealer,
    metrics,
    logger: logger.child({ component: "dispatcher" }),
    attemptTimeoutMs: timeoutMs,
    maxInFlight: config.maxInFlight,
  });
  const otp = new OtpService({
    store,
    dispatcher,
    sealer,
    metrics,
    secret: secrets.otpSecret,
    policy: config.otp.policy,
    defaultTtlSeconds: config.otp.ttlSeconds,
    appName: config.otp.appName,
  });
  const messages = new MessageService({
    store,
    dispatcher,
    sealer,
    messageTtlSeconds: MESSAGE_TTL_SECONDS,
    retentionSeconds: config.otp.policy.retentionSeconds,
  });

  const reaper = setInterval(() => {
    dispatcher.reapOverdue().catch((error: unknown) => logger.error({ err: error }, "reaping overdue jobs failed"));
  }, REAP_INTERVAL_MS);
  reaper.unref();

  let http: FastifyInstance;
  try {
    http = await buildHttpServer({
      store,
      otp,
      messages,
      metrics,
      adminKeyDigest: secrets.adminKeyDigest,
      rateLimit: { ...config.rateLimit, ...(store instanceof RedisStore ? { redis: store.redis } : {}) },
      bodyLimitBytes: config.http.bodyLimitBytes,
      logger,
      version,
    });
  } catch (error) {
    clearInterval(reaper);
    await store.close();
    throw error;
  }

  return {
    http,
    store,
    dispatcher,
    metrics,
    logger,
    generatedAdminKey: secrets.generatedAdminKey,
    routes: dispatcher.configuredRoutes(),
    async close() {
      clearInterval(reaper);
      await http.close();
      await dispatcher.drain();
      await email?.close?.();
      await store.close();
    },
  };
}
