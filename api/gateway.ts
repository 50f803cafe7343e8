/**
 * Wires one otpgate node from a validated Config: store, broker, providers,
 * dispatcher, services and the HTTP server. No globals: tests build as many
 * gateways as they like, each with its own ports and data.
 */
import type { AsyncApiServer } from "../broker/asyncapi.js";
import type { FastifyInstance } from "fastify";
import { createRequire } from "node:module";
import { hostname } from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { Gauge } from "prom-client";
import { MqttBroker, type BrokerOptions } from "../broker/mqtt-broker.js";
import { ensureDevCertificates } from "../broker/tls/dev-certificates.js";
import { loadTlsMaterial, type TlsMaterial } from "../broker/tls/tls-material.js";
import { CallbackNotifier } from "./callbacks/callback-notifier.js";
import { CircuitWatch } from "./console/circuit-watch.js";
import { ConsoleEvents } from "./console/console-events.js";
import type { Config } from "./config/config.js";
import { loadSecrets } from "./config/secrets.js";
import { emailRoute, smsRoute } from "./delivery/cloud-routes.js";
import { createAckRecorder } from "./delivery/device-acks.js";
import { deviceRoute } from "./delivery/device-route.js";
import { Dispatcher, type DeliveryRoute } from "./delivery/dispatcher.js";
import { isSettled, type Job } from "./delivery/job-state.js";
import { MessageService } from "./delivery/message-service.js";
import { connectMqttIntake } from "./delivery/mqtt-intake.js";
import { withBreaker } from "./delivery/route-breaker.js";
import { DeviceService } from "./devices/device-service.js";
import { PresenceTracker } from "./devices/presence-tracker.js";
import { FraudGuard } from "./fraud/fraud-guard.js";
import { seed001Policy } from "./http/routes/seed-routes.js";
import { buildHttpServer } from "./http/server.js";
import { ApiIds } from "./logging/api-ids.js";
import { createLogger } from "./logging/logger.js";
import { createMetrics, type Metrics } from "./metrics/metrics.js";
import { OtpService, type OtpServiceDeps } from "./otp/otp-service.js";
import { createAfricasTalkingProvider } from "./providers/africastalking-provider.js";
import { createEmailProvider } from "./providers/email-provider.js";
import { createTwilioProvider } from "./providers/twilio-provider.js";
import { createSealer, type Sealer } from "./security/sealing.js";
import { MemoryStore } from "./store/memory-store.js";
import { RedisStore } from "./store/redis-store.js";
import { SqliteStore } from "./store/sqlite-store.js";
import type { Store } from "./store/store.js";

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

/** How long a plain message may wait for a route before it is useless. */
const MESSAGE_TTL_SECONDS = 3600;
/** How long a stopping node lets cloud calls under way finish before it hands their jobs back. */
const SHUTDOWN_DRAIN_MS = 15_000;
/** How often each node reloads the cancels kept in the store (live ones reach it as signals). */
const CANCEL_RELOAD_MS = 60_000;
/** Each node confirms the phones it holds this often; a presence older than three rounds is stale. */
const PRESENCE_REFRESH_MS = 30_000;

export interface ListeningAddresses {
  http: string;
  mqtts?: number;
  mqtt?: number;
  publicMqttUrl: string;
}

export interface Gateway {
  http: FastifyInstance;
  store: Store;
  broker: MqttBroker;
  dispatcher: Dispatcher;
  devices: DeviceService;
  presence: PresenceTracker;
  callbacks: CallbackNotifier;
  metrics: Metrics;
  /** Seals what the store must not hold in clear (message bodies, records). */
  sealer: Sealer;
  logger: Logger;
  tls: TlsMaterial;
  /** Set only on the first start of a DATA_DIR without ADMIN_API_KEY. */
  generatedAdminKey?: string;
  /** Configured routes, in failover order. */
  routes: string[];
  /** Starts every enabled listener; `ephemeral` puts each on a free port (tests). */
  listen(options?: { ephemeral?: boolean }): Promise<ListeningAddresses>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  logger?: Logger;
  /** Process metrics (event loop, memory) are off in tests, where many gateways share a process. */
  defaultMetrics?: boolean;
  /** Redis key namespace; tests give each gateway its own. */
  redisKeyPrefix?: string;
  /** Admission of new MQTT/TLS connections (broker/connection-gate.ts); tests shrink it. */
  admission?: BrokerOptions["admission"];
}

/** The line an operator reads when a job ends undelivered: why, and where it was last tried. */
function logUndelivered(logger: Logger, job: Job): void {
  const last = job.attempts.at(-1);
  const lastError = last?.error && last.error !== "expired" ? last.error : undefined;
  const reason =
    job.state === "expired"
      ? `expired before a route sent it${lastError ? `; last attempt: ${lastError}` : ""}`
      : (lastError ?? "no route delivered it");
  logger.warn({ jobId: job.id, kind: job.kind, route: last?.route ?? null, reason, attempts: job.attempts.length }, `${job.kind === "otp" ? "OTP" : "message"} ${job.state}: ${reason}`);
}

function openStore(config: Config, sealer: Sealer, logger: Logger, redisKeyPrefix?: string): Store {
  const historyRetentionMs = config.historyRetentionDays * 86_400_000;
  const onSweepError = (error: unknown) => logger.warn({ err: error }, "store: clean-up of old rows failed; trying again later");
  switch (config.store) {
    case "redis":
      return new RedisStore({ url: config.redisUrl!, keyPrefix: redisKeyPrefix, sealer, historyRetentionMs, onSweepError });
    case "memory":
      return new MemoryStore({ historyRetentionMs });
    case "sqlite":
      return new SqliteStore({ file: path.join(config.dataDir, "otpgate.db"), sealer, historyRetentionMs, onSweepError });
  }
}

/** Redis must answer at start: without it nothing works, and the broker would wait for it silently. */
async function reachable(store: RedisStore, url: string): Promise<void> {
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no answer within 10 s")), 10_000).unref());
  try {
    await Promise.race([store.ping(), timeout]);
  } catch (error) {
    await store.close();
    const where = new URL(url);
    throw new Error(`REDIS_URL: cannot reach Redis at ${where.hostname}:${where.port || 6379} (${(error as Error).message})`);
  }
}

async function tlsMaterial(config: Config): Promise<TlsMaterial> {
  if (config.tls) return loadTlsMaterial(config.tls);
  const hostnames = ["localhost", "127.0.0.1", "::1", hostname()];
  // The host phones dial must be in the certificate too.
  for (const url of config.mqtt.publicUrls ?? []) hostnames.push(new URL(url).hostname);
  return ensureDevCertificates({ dir: path.join(config.dataDir, "tls"), hostnames });
}

export async function createGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  // Every line about a job gets the id the API shows (otpId / messageId) beside its job id.
  const apiIds = new ApiIds();
  const logger = (options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat })).child({}, { formatters: { log: apiIds.annotate } });
  const jobLogger = logger.child({ component: "jobs" });
  const secrets = loadSecrets(config.dataDir, {
    otpSecret: config.otpSecret,
    adminApiKey: config.adminApiKey,
    callbackSecret: config.callbackSecret,
  });
  const tls = await tlsMaterial(config);
  const sealer = createSealer(secrets.otpSecret);
  const store = openStore(config, sealer, logger, options.redisKeyPrefix);
  if (store instanceof RedisStore) await reachable(store, config.redisUrl!);
  const metrics = createMetrics({ defaultMetrics: options.defaultMetrics });
  const callbacks = new CallbackNotifier({
    secret: secrets.callbackSecret,
    logger: logger.child({ component: "callbacks" }),
    onOutcome: (outcome) => metrics.callbacks.inc({ outcome }),
  });
  const consoleEvents = new ConsoleEvents();
  const onStateChange = (job: Job) => {
    consoleEvents.jobChanged(job);
    apiIds.remember(job);
    if (isSettled(job)) metrics.jobsSettled.inc({ kind: job.kind, state: job.state });
    if (job.state === "failed" || job.state === "expired") logUndelivered(jobLogger, job);
    if (job.callbackUrl) callbacks.notify(job);
  };

  // Filled in by listen(): the port phones are told about is the one actually bound.
  const publicAddress = { mqttUrls: config.mqtt.publicUrls ?? [], httpPort: config.http.port, plainMqttPort: config.mqtt.port };
  /** The broker's listeners as the AsyncAPI document names them (the WebSocket one is added per request, from its Host). */
  const mqttServers = (): Record<string, AsyncApiServer> => {
    const servers: Record<string, AsyncApiServer> = {};
    publicAddress.mqttUrls.forEach((url, i) => {
      servers[i === 0 ? "phones" : `phones${i + 1}`] = { host: new URL(url).host, protocol: "mqtts", description: "MQTT over TLS, for phones (PUBLIC_MQTT_URL)" };
    });
    if (publicAddress.plainMqttPort !== 0) {
      servers.local = { host: `${config.mqtt.host}:${publicAddress.plainMqttPort}`, protocol: "mqtt", description: "plain MQTT for local publishers (MQTT_HOST, MQTT_PORT)" };
    }
    return servers;
  };
  const publicHost = () => (config.mqtt.publicUrls ? new URL(config.mqtt.publicUrls[0]!).hostname : hostname());

  // `devices` is declared below; the broker calls it only once clients connect, after listen().
  const broker = await MqttBroker.create({
    authenticate: (clientId, username, password) => devices.authenticate(clientId, username, password),
    recordAck: (deviceId, ack) => recordAck(deviceId, ack),
    logger: logger.child({ component: "broker" }),
    redisUrl: config.redisUrl,
    sealer,
    admission: { handshakeTimeoutMs: config.mqtt.tlsHandshakeTimeoutMs, ...options.admission },
    limits: config.mqtt.limits,
    trustProxy: config.http.trustProxy,
  });
  broker.on("refused", (what) => metrics.mqttRefusals.inc({ what: what.split(" ")[0] ?? what }));
  broker.on("connectionRefused", (reason) => metrics.mqttConnectionsRefused.inc({ reason }));
  // A phone counts as connected once its job subscription is in place (the broker's deviceConnected), as for presence.
  const phoneLogger = logger.child({ component: "phones" });
  const phoneSince = new Map<string, number>();
  broker.on("deviceConnected", (deviceId: string, session: string) => {
    phoneSince.set(session, Date.now());
    phoneLogger.info({ device: deviceId }, `phone ${deviceId} connected`);
  });
  broker.on("deviceDisconnected", (deviceId: string, session: string) => {
    const since = phoneSince.get(session);
    phoneSince.delete(session);
    const connectedForS = since === undefined ? undefined : Math.round((Date.now() - since) / 1000);
    phoneLogger.info({ device: deviceId, ...(connectedForS === undefined ? {} : { connectedForS }) }, `phone ${deviceId} disconnected`);
  });
  const devices = new DeviceService({
    store,
    disconnect: (clientId, reason) => broker.disconnect(clientId, reason),
    get publicMqttUrls() {
      return publicAddress.mqttUrls;
    },
    caFingerprint: tls.caFingerprint,
    get caUrl() {
      return `http://${publicHost()}:${publicAddress.httpPort}/ca.pem`;
    },
    presenceStaleMs: 3 * PRESENCE_REFRESH_MS,
  });
  const presence = new PresenceTracker({ store, logger: logger.child({ component: "presence" }), refreshMs: PRESENCE_REFRESH_MS }, broker);
  const recordAck = createAckRecorder({
    store: apiIds.watching(store),
    logger: logger.child({ component: "acks" }),
    onStateChange,
    onOutcome: (status, outcome) => metrics.deviceAcks.inc({ status, outcome }),
  });
  broker.withhold(await store.activeCancels(Date.now()));

  const timeoutMs = config.providerTimeoutMs;
  const email = config.email ? createEmailProvider({ ...config.email, timeoutMs }) : undefined;
  const cloudRoutes: DeliveryRoute[] = [];
  if (config.twilio) cloudRoutes.push(smsRoute(createTwilioProvider({ ...config.twilio, timeoutMs })));
  if (config.africasTalking) cloudRoutes.push(smsRoute(createAfricasTalkingProvider({ ...config.africasTalking, timeoutMs })));
  if (email) cloudRoutes.push(emailRoute(email, config.otp.appName));
  const breakerLogger = logger.child({ component: "breaker" });
  const circuits = new CircuitWatch(config.breaker.resetSeconds);
  const routes = [
    deviceRoute({ store, channel: broker, ...config.device, presenceStaleMs: 3 * PRESENCE_REFRESH_MS }),
    ...cloudRoutes.map((route) => circuits.watch(withBreaker(route, { ...config.breaker, logger: breakerLogger }))),
  ];

  const dispatcher = new Dispatcher({
    store: apiIds.watching(store),
    routes,
    order: config.failoverOrder,
    sealer,
    metrics,
    logger: logger.child({ component: "dispatcher" }),
    attemptTimeoutMs: timeoutMs,
    maxInFlight: config.maxInFlight,
    leaseGraceMs: config.leases.graceMs,
    onStateChange,
  });
  // An ack applied on any node: whoever waits on that job looks again.
  broker.on("clusterAck", (_deviceId, ack) => dispatcher.jobChanged(ack.id));
  const fraud = new FraudGuard({ store, secret: secrets.otpSecret, settings: config.fraud, metrics, logger: logger.child({ component: "fraud" }) });
  if (!config.fraud.enabled) logger.warn("fraud guard is off (FRAUD_GUARD=off): premium-rate and satellite numbers, quotas and the conversion watch are not checked");
  const otpDeps: OtpServiceDeps = {
    store,
    dispatcher,
    sealer,
    metrics,
    secret: secrets.otpSecret,
    policy: config.otp.policy,
    defaultTtlSeconds: config.otp.ttlSeconds,
    appName: config.otp.appName,
    fraud,
  };
  const otp = new OtpService(otpDeps);
  // Seed 001's clients were written for 3 checks per code; /send-code issues under that limit.
  const seed001Otp = new OtpService({ ...otpDeps, policy: seed001Policy(config.otp.policy) });
  const messages = new MessageService({
    store,
    dispatcher,
    sealer,
    messageTtlSeconds: MESSAGE_TTL_SECONDS,
    retentionSeconds: config.otp.policy.retentionSeconds,
    fraud,
  });
  connectMqttIntake(broker, {
    messages,
    store,
    sealer,
    metrics,
    logger: logger.child({ component: "mqtt-intake" }),
    retentionSeconds: config.otp.policy.retentionSeconds,
    fraud,
    cancel: (deviceId, jobId, keepUntil) => broker.cancelJob(deviceId, jobId, keepUntil),
  });

  // Every node takes over jobs whose lease lapsed: a node died, or stopped and handed them back.
  const sweeper = setInterval(() => {
    dispatcher.sweep().catch((error: unknown) => logger.error({ err: error }, "looking for jobs to take over failed"));
  }, config.leases.sweepIntervalMs);
  sweeper.unref();
  const cancelReload = setInterval(() => {
    store.activeCancels(Date.now()).then(
      (cancels) => broker.withhold(cancels),
      (error: unknown) => logger.warn({ err: error }, "reloading cancels failed"),
    );
  }, CANCEL_RELOAD_MS);
  cancelReload.unref();
  new Gauge({
    name: "otpgate_mqtt_connected_clients",
    help: "MQTT clients connected to this node",
    registers: [metrics.registry],
    collect() {
      this.set(broker.connectedClients);
    },
  });
  new Gauge({
    name: "otpgate_mqtt_connections_admitting",
    help: "New MQTT/TLS connections by phase: connecting (TLS handshake to CONNACK) or queued (accepted, not yet read)",
    labelNames: ["phase"],
    registers: [metrics.registry],
    collect() {
      const { connecting, queued } = broker.admission;
      this.set({ phase: "connecting" }, connecting);
      this.set({ phase: "queued" }, queued);
    },
  });
  new Gauge({
    name: "otpgate_fraud_held_prefixes",
    help: "Country prefixes the fraud guard's conversion watch holds back now (1 per prefix)",
    labelNames: ["prefix"],
    registers: [metrics.registry],
    async collect() {
      // Read from the store, so every node shows the cluster's holds; a store that is away leaves it empty.
      const holds = await fraud.holds().catch(() => []);
      this.reset();
      for (const hold of holds) this.set({ prefix: hold.prefix }, 1);
    },
  });
  new Gauge({
    name: "otpgate_mqtt_connections_shed",
    help: "New MQTT/TLS connections closed unserved since start: waited too long, or the queue was full",
    registers: [metrics.registry],
    collect() {
      this.set(broker.admission.shed);
    },
  });

  let http: FastifyInstance;
  try {
    http = await buildHttpServer({
      store,
      otp,
      seed001Otp,
      messages,
      devices,
      fraud,
      metrics,
      caPem: tls.caPem,
      adminKeyDigest: secrets.adminKeyDigest,
      rateLimit: { ...config.rateLimit, ...(store instanceof RedisStore ? { redis: store.redis } : {}) },
      bodyLimitBytes: config.http.bodyLimitBytes,
      hardening: config.http,
      logger,
      version,
      mqttServers,
      console: { events: consoleEvents, circuits, broker, presenceSettled: () => presence.settle(), routes: dispatcher.configuredRoutes(), version },
    });
  } catch (error) {
    clearInterval(sweeper);
    clearInterval(cancelReload);
    await broker.close();
    await store.close();
    throw error;
  }

  return {
    http,
    store,
    broker,
    dispatcher,
    devices,
    presence,
    callbacks,
    metrics,
    sealer,
    logger,
    tls,
    generatedAdminKey: secrets.generatedAdminKey,
    routes: dispatcher.configuredRoutes(),
    async listen({ ephemeral = false } = {}) {
      const port = (configured: number) => (ephemeral ? 0 : configured);
      const httpUrl = await http.listen({ port: port(config.http.port), host: config.http.host });
      publicAddress.httpPort = Number(new URL(httpUrl).port);
      broker.attachWebSocket(http.server);
      const addresses: ListeningAddresses = { http: httpUrl, publicMqttUrl: "" };
      if (config.mqtt.tlsPort !== 0) {
        const bound = await broker.listenTls({ port: port(config.mqtt.tlsPort), host: config.http.host, cert: tls.certPem, key: tls.keyPem });
        addresses.mqtts = bound.port;
      }
      if (config.mqtt.port !== 0) {
        addresses.mqtt = (await broker.listenTcp({ port: port(config.mqtt.port), host: config.mqtt.host })).port;
        publicAddress.plainMqttPort = addresses.mqtt;
      }
      if (!config.mqtt.publicUrls) publicAddress.mqttUrls = [`mqtts://${publicHost()}:${addresses.mqtts ?? config.mqtt.tlsPort}`];
      addresses.publicMqttUrl = publicAddress.mqttUrls.join(",");
      return addresses;
    },
    async close() {
      clearInterval(sweeper);
      clearInterval(cancelReload);
      presence.close();
      // No new work from here (new requests get 503); jobs waiting on phones are handed back with
      // their attempts open, so whoever takes them over waits for the same phone: no second send.
      await dispatcher.handBack(SHUTDOWN_DRAIN_MS);
      await http.close();
      await broker.close();
      await dispatcher.drain();
      await presence.settle();
      await callbacks.drain();
      callbacks.close();
      await email?.close?.();
      await store.close();
    },
  };
}
