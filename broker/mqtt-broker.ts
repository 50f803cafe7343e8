/**
 * The embedded MQTT broker: Aedes with otpgate's authentication, ACL and
 * payload checks, listening on TLS (phones), plain TCP on loopback and
 * WebSocket at /mqtt. It turns MQTT traffic into typed events for the
 * gateway (acks, device status, publisher jobs) and carries the gateway's
 * jobs and cancels to phones. With Redis, every node's broker shares one
 * emitter and one persistence, so any node can reach any phone.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, Server as HttpServer } from "node:http";
import { createServer as createTcpServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import type { Duplex } from "node:stream";
import { createServer as createTlsServer } from "node:tls";
import proxyAddr from "@fastify/proxy-addr";
import { Aedes, type AedesPublishPacket, type Client } from "aedes";
import type { FastifyBaseLogger } from "fastify";
import { Redis } from "ioredis";
import { WebSocketServer, createWebSocketStream } from "ws";
import { canPublish, canSubscribe, type MqttPrincipal } from "./acl.js";
import { Admission, DEFAULT_LIMITS, type AdmissionLimits, type Connection } from "./admission.js";
import { extraAcceptHandles } from "./accept-handles.js";
import { ConnectionGate, DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS, type ConnectionGateOptions, type ConnectionGateStats } from "./connection-gate.js";
import {
  MAX_PAYLOAD_BYTES,
  ackPayload,
  deviceStatusPayload,
  jobPayload,
  maskSimNumbers,
  parsePayload,
  sendPayload,
  type AckPayload,
  type DeviceStatusPayload,
  type JobPayload,
} from "./payloads.js";
import { guardStream, MAX_PACKET_BYTES, type PacketGuard } from "./packet-guard.js";
import { RefusalLog, type RefusalLogOptions } from "./refusal-log.js";
import { fastRetainedLookup } from "./retained-lookup.js";
import { sealQueuedJobs, type QueuePersistence, type QueuedPacket } from "./sealed-queue.js";
import { parseTopic, topicFor } from "./topics.js";
import { endWithError } from "../api/http/errors.js";
import type { Sealer } from "../api/security/sealing.js";

/** Checks MQTT credentials; returns who the client is, or why it is refused. */
export type MqttAuthenticator = (
  clientId: string,
  username: string | undefined,
  password: Buffer | undefined,
) => Promise<{ ok: true; principal: MqttPrincipal } | { ok: false; reason: string; badCredentials: boolean }>;

/** Messages between the brokers of a cluster (and, in one process, to itself). */
type Signal =
  | { type: "transport"; deviceId: string; jobId: string }
  | { type: "ack"; deviceId: string; ack: AckPayload }
  | { type: "revoke"; jobId: string; until: number }
  | { type: "disconnect"; clientId: string; reason: string };

const SIGNAL_TOPIC = "$otpgate/signal";

export interface BrokerEvents {
  /** Any node: an ack (already in the store) or a transport ack seen anywhere in the cluster, for whoever waits on the job. */
  clusterAck: [deviceId: string, ack: AckPayload];
  transportAck: [deviceId: string, jobId: string];
  deviceStatus: [deviceId: string, status: DeviceStatusPayload, session: string];
  deviceConnected: [deviceId: string, session: string];
  deviceDisconnected: [deviceId: string, session: string];
  publisherSend: [publisher: string, payload: unknown];
  publisherJob: [publisher: string, deviceId: string, job: JobPayload];
  refused: [what: string, reason: string];
  /** A connection closed by admission control: reason = node_limit, source_limit, login_backoff, connect_too_large, … */
  connectionRefused: [reason: string];
}

export interface BrokerOptions {
  authenticate: MqttAuthenticator;
  /**
   * Writes a phone's ack to the store. The ack packet is acknowledged (PUBACK)
   * only once this resolves; if it throws, the connection is closed without a
   * PUBACK and the phone sends the ack again when it reconnects.
   */
  recordAck: (deviceId: string, ack: AckPayload) => Promise<void>;
  logger: FastifyBaseLogger;
  /** Shared emitter and persistence for a cluster; omit for one process. */
  redisUrl?: string;
  /** Seals the jobs queued for phones in the Redis persistence (sealed-queue.ts). */
  sealer?: Sealer;
  /** Phones must keep alive at most this often (DESIGN: ≤ 60 s). */
  maxKeepaliveSeconds?: number;
  /** Admission of new TLS connections (connection-gate.ts); defaults in DEFAULT_ADMISSION. */
  admission?: Partial<ConnectionGateOptions & { handshakeTimeoutMs: number }>;
  /** Connection and login limits on every listener (admission.ts); defaults in DEFAULT_LIMITS. */
  limits?: Partial<AdmissionLimits>;
  /** Summary logging of refusals (refusal-log.ts); default one line per source a minute. */
  refusalLog?: Partial<RefusalLogOptions>;
  /**
   * TRUST_PROXY: the HTTP proxies whose X-Forwarded-For names the client of a WebSocket
   * connection, so the per-source limits count phones and not the load balancer.
   */
  trustProxy?: boolean | string[];
}

/**
 * 256 connections between first byte and CONNACK keep two cores busy on
 * loopback and still ~850 handshakes a second over a 300 ms mobile round trip.
 * 5 s of waiting leaves a phone with a 10 s CONNACK timeout (the simulator's;
 * the app's is 15 s) time to finish once admitted, even when its SYN waited in
 * the backlog first; at 8 s, 10,000 phones took 25 s instead of 22 s.
 */
export const DEFAULT_ADMISSION: ConnectionGateOptions & { handshakeTimeoutMs: number } = {
  maxConnecting: 256,
  maxWaitMs: 5_000,
  maxQueued: 32_768,
  handshakeTimeoutMs: DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS,
};
const LISTEN_BACKLOG = 4096;
/**
 * The TLS port's extra accept handles (accept-handles.ts): a loop turn accepts up to 16 connections.
 * 10,000 phones at once (bench:phones part d, quiet machine, same session): 30.5 s and 2.67 ms of CPU
 * per phone with 16, 37.5 s and 2.97 ms with 1 (README, Benchmarks).
 */
const EXTRA_ACCEPT_HANDLES = 15;

export interface ListenOptions {
  port: number;
  host: string;
}

export class MqttBroker extends EventEmitter<BrokerEvents> {
  private readonly principals = new WeakMap<Client, MqttPrincipal>();
  private readonly sessions = new WeakMap<Client, string>();
  /** The will each CONNECT carried, checked once we know who sent it. */
  private readonly wills = new WeakMap<Client, { topic: string; payload?: Buffer | string }>();
  /** Jobs the gateway has taken back: never forward them, even from an offline queue. */
  private readonly revoked = new Map<string, number>();
  private readonly servers: NetServer[] = [];
  private readonly gates: ConnectionGate[] = [];
  /** TLS connections admitted by the gate whose handshake is not done yet, by connection key. */
  private readonly handshaking = new Map<string, Connection>();
  /** The raw sockets of the TLS listeners, until their handshake is done. */
  private readonly rawConnections = new WeakMap<Socket, Connection>();
  /** Every connection Aedes serves, by the stream it was handed (client.conn). */
  private readonly connections = new WeakMap<object, Connection>();
  private readonly limiter: Admission;
  /** Devices connected whose sms/out subscription is not in place yet: not online until it is. */
  private readonly awaitingSubscription = new WeakSet<Client>();
  private readonly refusals: RefusalLog;
  private webSockets?: WebSocketServer;
  private readonly sweeper: NodeJS.Timeout;
  private closeBackends: () => Promise<void> = async () => {};

  private constructor(
    readonly aedes: Aedes,
    private readonly options: BrokerOptions,
  ) {
    super();
    this.limiter = new Admission({ ...DEFAULT_LIMITS, ...options.limits });
    this.refusals = new RefusalLog(options.logger, { intervalMs: 60_000, gatherMs: 1_000, ...options.refusalLog });
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [jobId, until] of this.revoked) if (until < now) this.revoked.delete(jobId);
    }, 60_000);
    this.sweeper.unref();
  }

  static async create(options: BrokerOptions): Promise<MqttBroker> {
    const backends = options.redisUrl ? await redisBackends(options.redisUrl, options.logger, options.sealer) : undefined;
    const aedes = await Aedes.createBroker({
      ...(backends ? { mq: backends.mq, persistence: backends.persistence } : {}),
      id: `otpgate-${randomUUID().slice(0, 8)}`,
      keepaliveLimit: options.maxKeepaliveSeconds ?? 60,
      // Aedes starts this when it is handed the stream (after TLS) and stops it on a complete CONNECT: a
      // silent client, or one that drips its CONNECT, is closed then, on every transport.
      connectTimeout: options.limits?.connectTimeoutMs ?? DEFAULT_LIMITS.connectTimeoutMs,
    });
    // Retained statuses for exact topics by lookup, not a scan per SUBSCRIBE: a reconnecting fleet costs phones, not phones².
    fastRetainedLookup(aedes);
    const broker = new MqttBroker(aedes, options);
    if (backends) broker.closeBackends = backends.close;
    broker.install();
    await new Promise<void>((resolve) => aedes.subscribe(SIGNAL_TOPIC, (packet, done) => (broker.onSignal(packet), done()), resolve));
    return broker;
  }

  private clients(): Record<string, Client> {
    return (this.aedes as unknown as { clients: Record<string, Client> }).clients;
  }

  get connectedClients(): number {
    return this.aedes.connectedClients;
  }

  /** New TLS connections being served and waiting, over every TLS listener. */
  get admission(): ConnectionGateStats {
    const total: ConnectionGateStats = { connecting: 0, queued: 0, shed: 0 };
    for (const gate of this.gates) {
      const stats = gate.stats;
      total.connecting += stats.connecting;
      total.queued += stats.queued;
      total.shed += stats.shed;
    }
    return total;
  }

  /** Open MQTT connections on this node, on every listener (authenticated or not). */
  get openConnections(): number {
    return this.limiter.connections;
  }

  private sourceOf(client: Client | null | undefined): string | undefined {
    return client ? this.connections.get(client.conn)?.source : undefined;
  }

  /** A refused CONNECT, publish or subscription: counted at once, logged in summary per source. */
  private refuse(what: string, reason: string, client?: Client | null): void {
    const who = client?.id && !reason.includes(client.id) ? ` (client ${client.id})` : "";
    this.refusals.note(this.sourceOf(client), what.split(" ")[0] ?? what, `${what}: ${reason}${who}`);
    this.emit("refused", what, reason);
  }

  /** A connection closed by admission control. */
  private refuseConnection(source: string | undefined, reason: string, detail: string): void {
    this.refusals.note(source, reason, detail);
    this.emit("connectionRefused", reason);
  }

  /** Tracks a new connection from accept to close, or refuses it (destroyed unread). */
  private accept(raw: Socket, transport: string, address: string | undefined = raw.remoteAddress): Connection | undefined {
    const verdict = this.limiter.accept(address);
    if ("refused" in verdict) {
      raw.destroy();
      this.refuseConnection(verdict.source, verdict.refused, `${transport} connection refused: ${verdict.refused.replace("_", " ")}`);
      return undefined;
    }
    raw.once("close", () => this.limiter.closed(verdict));
    return verdict;
  }

  /** Hands a connection's MQTT stream to Aedes, behind its packet guard. */
  private serve(stream: Duplex, connection: Connection, request?: IncomingMessage): void {
    this.connections.set(stream, connection);
    guardStream(stream, connection.guard, (refusal) => this.packetRefused(connection, stream, refusal));
    this.aedes.handle(stream, request);
  }

  private packetRefused(connection: Connection, stream: Duplex, refusal: NonNullable<PacketGuard["refusal"]>): void {
    const client = (stream as Duplex & { client?: Client }).client;
    const limit = connection.authenticated ? MAX_PACKET_BYTES : this.limiter.limits.maxConnectBytes;
    const detail = `${refusal.packet} packet claiming ${refusal.claimed} bytes (limit ${limit}${connection.authenticated ? "" : " before CONNACK"})${client?.id ? ` from client ${client.id}` : ""}`;
    // Counted where payload refusals always were, too, so an oversized publish reads the same in /metrics.
    if (connection.authenticated && refusal.packet === "publish") this.emit("refused", "publish", detail);
    // Only a hostile client claims that much before logging in: like a failed login, it counts towards the back-off.
    if (!connection.authenticated && !connection.exempt) this.limiter.backoff.failed(connection.source, undefined, Date.now());
    this.refuseConnection(connection.source, refusal.reason, `connection closed: ${detail}`);
  }

  private install(): void {
    const { aedes } = this;

    // A will may be published long after CONNECT by a node that no longer holds the client (another
    // node of a cluster, or this one after a crash), which cannot check it then: check it at CONNECT.
    aedes.preConnect = (client, packet, done) => {
      if (packet.will) this.wills.set(client, packet.will);
      done(null, true);
    };

    aedes.authenticate = (client, username, password, done) => {
      const connection = this.connections.get(client.conn);
      const source = connection && !connection.exempt ? connection.source : undefined;
      const refuseLogin = (reason: string, returnCode: number) => {
        this.refuse("connection", `${reason} (client ${client.id}, user ${username ?? "none"})`, client);
        const answer = () => done(Object.assign(new Error(reason), { returnCode }) as Parameters<typeof done>[0], false);
        // Only wrong credentials (4) are guesses; a right token with a bad will or client id (5) is a misconfiguration.
        const holdMs = returnCode === 4 ? this.limiter.backoff.failed(source, username, Date.now()) : 0;
        if (holdMs <= 0) return answer();
        // A late answer slows whoever guesses at this username; waiting costs a timer, not a TLS admission slot.
        connection?.releaseAdmission?.();
        setTimeout(answer, holdMs).unref();
      };
      this.options.authenticate(client.id, username, password).then(
        (result) => {
          const willProblem = result.ok ? checkWill(result.principal, this.wills.get(client)) : undefined;
          if (willProblem) return refuseLogin(willProblem, 5);
          if (!result.ok) return refuseLogin(result.reason, result.badCredentials ? 4 : 5);
          this.limiter.backoff.succeeded(source, username);
          this.principals.set(client, result.principal);
          this.sessions.set(client, `${aedes.id}:${randomUUID()}`);
          // A client id is a session, and a second CONNECT with it closes the first (takeover). Each
          // publisher's ids live in its own namespace, as a device's id is its own: no publisher can close
          // another's connection. (Devices are dev_…, which publishers may not use; names have no ":".)
          if (result.principal.kind === "publisher") client.id = `pub:${result.principal.name}:${client.id}`;
          done(null, true);
        },
        (error: unknown) => {
          this.options.logger.error({ err: error }, "mqtt: authentication failed");
          done(Object.assign(new Error("server unavailable"), { returnCode: 3 }) as Parameters<typeof done>[0], false);
        },
      );
    };

    aedes.authorizePublish = (client, packet, done) => {
      // No client: the broker publishing a will on its own; it was authorised when it was set (at CONNECT).
      if (!client) return done(null);
      const principal = this.principals.get(client);
      if (!principal) return done(new Error("not authenticated"));
      const decision = canPublish(principal, packet.topic);
      if (!decision.allowed) {
        this.refuse(`publish to ${packet.topic}`, decision.reason, client);
        return done(new Error(decision.reason));
      }
      const size = packet.payload?.length ?? 0;
      if (size > MAX_PAYLOAD_BYTES) {
        this.refuse(`publish to ${packet.topic}`, `payload of ${size} bytes is over ${MAX_PAYLOAD_BYTES}`, client);
        return done(new Error("payload too large"));
      }
      const topic = parseTopic(packet.topic);
      // A retained job would be replayed to the phone on every subscribe, and kept (body and number) in the retained store.
      if (topic?.kind === "out" || topic?.kind === "send") packet.retain = false;
      if (principal.kind === "device" && topic?.kind === "ack") return this.takeAck(client, principal.deviceId, packet, done);
      if (topic?.kind === "device") {
        const masked = maskSimNumbers(packet.payload as Buffer);
        if (masked) packet.payload = masked;
      }
      done(null);
    };

    aedes.authorizeSubscribe = (client, subscription, done) => {
      const principal = this.principals.get(client);
      const decision: ReturnType<typeof canSubscribe> = principal
        ? canSubscribe(principal, subscription.topic)
        : { allowed: false, reason: "not authenticated" };
      if (decision.allowed) return done(null, subscription);
      this.refuse(`subscription to ${subscription.topic}`, decision.reason, client);
      // A null subscription is refused in the SUBACK (0x80) without dropping the connection.
      done(null, null);
    };

    aedes.authorizeForward = (client, packet) => {
      const topic = parseTopic(packet.topic);
      if (topic?.kind !== "out") return packet;
      const job = parsePayload(jobPayload, packet.payload as Buffer);
      if (job.ok && this.revoked.has(job.value.id)) {
        this.options.logger.info({ device: client.id, jobId: job.value.id }, "mqtt: dropped a job taken back from this phone");
        return null;
      }
      return packet;
    };

    // Aedes raises its own failures here (e.g. a persistence sweep while Redis is away); unheard, they end the process.
    (aedes as EventEmitter).on("error", (error: Error) => this.options.logger.error({ err: error.message }, "mqtt: broker error"));

    // A phone is online once a job published now reaches it: when its own sms/out subscription is in place,
    // restored with its session or made after CONNECT. Online at CONNECT, a job routed before the SUBSCRIBE of a
    // phone whose session the broker lost (a restarted single node keeps sessions in memory) went to nobody.
    const ownSubscription = (client: Client, deviceId: string) => Boolean((client as Client & { subscriptions: Record<string, unknown> }).subscriptions[topicFor.out(deviceId)]);
    aedes.on("clientReady", (client) => {
      // A connection can close during its offline-queue drain and still report ready afterwards.
      if (client.closed) return;
      const principal = this.principals.get(client);
      if (principal?.kind !== "device") return;
      if (ownSubscription(client, principal.deviceId)) this.emit("deviceConnected", principal.deviceId, this.sessions.get(client)!);
      else this.awaitingSubscription.add(client);
    });
    aedes.on("subscribe", (subscriptions, client) => {
      if (!client || !this.awaitingSubscription.has(client)) return;
      const principal = this.principals.get(client);
      if (principal?.kind !== "device" || !subscriptions.some((s) => s.topic === topicFor.out(principal.deviceId) && (s.qos as number) !== 128)) return;
      this.awaitingSubscription.delete(client);
      this.emit("deviceConnected", principal.deviceId, this.sessions.get(client)!);
    });
    aedes.on("clientDisconnect", (client) => {
      this.awaitingSubscription.delete(client);
      const principal = this.principals.get(client);
      if (principal?.kind === "device") this.emit("deviceDisconnected", principal.deviceId, this.sessions.get(client)!);
    });
    // A refused CONNECT gets its CONNACK too: either way the connection is past TLS admission.
    aedes.on("connackSent", (connack, client) => {
      const connection = this.connections.get(client.conn);
      if (!connection) return;
      connection.releaseAdmission?.();
      connection.releaseAdmission = undefined;
      if (connack.returnCode === 0) this.limiter.authenticated(connection);
    });
    // Errors of connections without a CONNECT yet: the connect timeout, or bytes that are not MQTT.
    aedes.on("connectionError", (client, error) => {
      if ((error as NodeJS.ErrnoException).code) return; // resets and the like: the peer left, nothing refused
      const reason = error.message === "connect did not arrive in time" ? "connect_timeout" : "protocol_error";
      this.refuseConnection(this.sourceOf(client), reason, `connection closed before CONNECT: ${error.message}`);
    });
    aedes.on("keepaliveTimeout", (client) => this.options.logger.info({ client: client.id }, "mqtt: keepalive missed, closing"));
    aedes.on("clientError", (client, error) => this.options.logger.info({ client: client.id, err: error.message }, "mqtt: client error"));

    // Transport ack: the phone's PUBACK for a job. Only this node sees it, so tell the cluster.
    aedes.on("ack", (acked, client) => {
      // Aedes passes `undefined` for a PUBACK that matches nothing it sent (a repeat, or a client's
      // invention); a throw here is an unhandled rejection, which ends the process.
      const packet = acked as typeof acked | undefined;
      if (!packet || !("topic" in packet) || !packet.topic) return;
      const topic = parseTopic(packet.topic);
      if (topic?.kind !== "out" || !packet.payload) return;
      const job = parsePayload(jobPayload, packet.payload as Buffer);
      // Credit the PUBACK to the device that authenticated, never to a bare client id.
      const principal = this.principals.get(client);
      if (job.ok && principal?.kind === "device") this.signal({ type: "transport", deviceId: principal.deviceId, jobId: job.value.id });
    });

    aedes.on("publish", (packet, client) => this.onPublish(packet, client));
  }

  /**
   * A phone's ack: written to the store before Aedes may PUBACK it (Aedes
   * acknowledges right after this hook), then told to the cluster. A garbled
   * ack is acknowledged and dropped: sending it again would not mend it.
   */
  private takeAck(client: Client, deviceId: string, packet: { payload?: unknown }, done: (error?: Error | null) => void): void {
    const ack = parsePayload(ackPayload, packet.payload as Buffer);
    if (!ack.ok) {
      this.refuse(`ack from ${deviceId}`, ack.error, client);
      return done(null);
    }
    this.options.recordAck(deviceId, ack.value).then(
      () => {
        done(null);
        this.signal({ type: "ack", deviceId, ack: ack.value });
      },
      (error: unknown) => {
        this.options.logger.warn({ device: deviceId, jobId: ack.value.id, err: (error as Error).message }, "mqtt: could not record an ack; closing so the phone sends it again");
        done(new Error("ack not recorded"));
      },
    );
  }

  private onPublish(packet: AedesPublishPacket, client: Client | null): void {
    if (!client) return;
    const principal = this.principals.get(client);
    const topic = parseTopic(packet.topic);
    if (!principal || !topic) return;
    const payload = packet.payload as Buffer;
    const log = this.options.logger;

    // Acks were taken in authorizePublish, before their PUBACK.
    if (principal.kind === "device" && topic.kind === "device") {
      const status = parsePayload(deviceStatusPayload, payload);
      if (!status.ok) return this.refuse(`status from ${principal.deviceId}`, status.error, client);
      this.emit("deviceStatus", principal.deviceId, status.value, this.sessions.get(client)!);
    } else if (principal.kind === "publisher" && topic.kind === "send") {
      const send = parsePayload(sendPayload, payload);
      if (!send.ok) return this.refuse(`sms/send from ${principal.name}`, send.error, client);
      this.emit("publisherSend", principal.name, send.value);
    } else if (principal.kind === "publisher" && topic.kind === "out") {
      const job = parsePayload(jobPayload, payload);
      if (!job.ok) {
        // Already on its way to the phone, which refuses it by the same rules; nothing to track.
        log.warn({ publisher: principal.name, device: topic.deviceId, reason: job.error }, "mqtt: untracked job with an invalid payload");
        return;
      }
      this.emit("publisherJob", principal.name, topic.deviceId, job.value);
    }
  }

  private signal(message: Signal): void {
    this.aedes.publish({ topic: SIGNAL_TOPIC, payload: Buffer.from(JSON.stringify(message)), qos: 0, retain: false, cmd: "publish", dup: false }, () => {});
  }

  private onSignal(packet: AedesPublishPacket): void {
    let message: Signal;
    try {
      message = JSON.parse(String(packet.payload)) as Signal;
    } catch {
      return;
    }
    switch (message.type) {
      case "transport":
        this.emit("transportAck", message.deviceId, message.jobId);
        break;
      case "ack":
        this.emit("clusterAck", message.deviceId, message.ack);
        break;
      case "revoke":
        this.revoked.set(message.jobId, message.until);
        break;
      case "disconnect": {
        // `publisher:<name>` means every connection of that publisher, whatever its client id.
        const publisher = message.clientId.startsWith("publisher:") ? message.clientId.slice("publisher:".length) : undefined;
        for (const client of Object.values(this.clients())) {
          const principal = this.principals.get(client);
          const matches = publisher ? principal?.kind === "publisher" && principal.name === publisher : client.id === message.clientId;
          if (!matches) continue;
          this.options.logger.info({ client: client.id, reason: message.reason }, "mqtt: disconnecting client");
          client.close();
        }
        break;
      }
    }
  }

  /** Sends a job to a phone at QoS 1; queued by the broker if the phone's session is offline. */
  async publishJob(deviceId: string, job: JobPayload): Promise<void> {
    await this.publish(topicFor.out(deviceId), job);
  }

  /**
   * Takes a job back: no broker anywhere forwards the job from now on, the
   * phone gets a cancel, and the job leaves the phone's offline queue.
   * (The caller keeps the cancel in the store, so a restarted node withholds
   * it too: see `withhold`.)
   */
  async cancelJob(deviceId: string, jobId: string, keepUntil: number): Promise<void> {
    this.revoked.set(jobId, keepUntil);
    this.signal({ type: "revoke", jobId, until: keepUntil });
    await this.dropQueued(deviceId, jobId);
    await this.publish(topicFor.out(deviceId), { id: jobId, cancel: true });
  }

  /** Jobs taken back earlier (read from the store at start): never forwarded again. */
  withhold(cancels: { jobId: string; until: number }[]): void {
    for (const cancel of cancels) this.revoked.set(cancel.jobId, Math.max(this.revoked.get(cancel.jobId) ?? 0, cancel.until));
  }

  /**
   * Removes a job from a phone's offline queue in the broker's persistence
   * (memory or Redis), so it is not even stored for a phone that is away.
   * Aedes offers no call for this; the persistence's public outgoing-queue
   * methods do it: find the packet, give it a message id if it has none yet,
   * then clear that id.
   */
  async dropQueued(deviceId: string, jobId: string): Promise<number> {
    const { persistence } = this.aedes as unknown as { persistence: QueuePersistence };
    const client = { id: deviceId };
    const hits: QueuedPacket[] = [];
    // Every packet in flight to the client is in its queue with its id (cleanSession=false), so an id
    // not among them is free to lend to a packet that has none yet.
    const used = new Set<number>();
    for await (const packet of persistence.outgoingStream(client)) {
      if (typeof packet.messageId === "number") used.add(packet.messageId);
      if (packet.topic !== topicFor.out(deviceId) || !packet.payload) continue;
      const job = parsePayload(jobPayload, Buffer.from(packet.payload));
      if (job.ok && job.value.id === jobId) hits.push(packet);
    }
    for (const packet of hits) {
      let messageId = packet.messageId;
      while (typeof messageId !== "number" || (packet.messageId === undefined && used.has(messageId))) messageId = 1 + Math.floor(Math.random() * 65_535);
      used.add(messageId);
      await persistence.outgoingUpdate(client, { ...packet, messageId });
      await persistence.outgoingClearMessageId(client, { messageId });
    }
    return hits.length;
  }

  /** Closes the client's connection on whichever node holds it. */
  disconnect(clientId: string, reason: string): void {
    this.signal({ type: "disconnect", clientId, reason });
  }

  private publish(topic: string, payload: object): Promise<void> {
    return new Promise((resolve, reject) =>
      this.aedes.publish(
        { topic, payload: Buffer.from(JSON.stringify(payload)), qos: 1, retain: false, cmd: "publish", dup: false },
        (error) => (error ? reject(error) : resolve()),
      ),
    );
  }

  private async listenOn(server: NetServer, options: ListenOptions): Promise<AddressInfo> {
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // Node's default backlog (511) drops the SYNs of a fleet reconnecting at once: the phones wait out
      // SYN retransmits (1 s, 3 s, …) before the gate even sees them. The kernel caps it at somaxconn.
      server.listen({ port: options.port, host: options.host, backlog: LISTEN_BACKLOG }, () => {
        server.off("error", reject);
        resolve();
      });
    });
    return server.address() as AddressInfo;
  }

  /**
   * MQTT over TLS for phones. `cert` is the full chain (server certificate, then the CA), so phones can pin the CA.
   * TCP connections are accepted unread and pass a ConnectionGate before any TLS work is done for them;
   * several handles accept from the port's queue, so a storm waits at the gate and not in the kernel.
   */
  async listenTls(options: ListenOptions & { cert: string; key: string }): Promise<AddressInfo> {
    const admission = { ...DEFAULT_ADMISSION, ...this.options.admission };
    const tls = createTlsServer(
      { cert: options.cert, key: options.key, minVersion: "TLSv1.2", handshakeTimeout: admission.handshakeTimeoutMs },
      (socket) => {
        const key = connectionKey(socket);
        const connection = key ? this.handshaking.get(key) : undefined;
        if (!connection) return socket.destroy();
        this.handshaking.delete(key!);
        this.serve(socket, connection);
      },
    );
    // With a listener here, Node leaves closing the socket to it (a handshake timeout would otherwise keep it open).
    tls.on("tlsClientError", (error: NodeJS.ErrnoException, socket) => {
      // Named before the destroy: a destroyed socket no longer knows its peer.
      const key = connectionKey(socket);
      const source = key ? this.handshaking.get(key)?.source : undefined;
      socket.destroy();
      const reason = error.code === "ERR_TLS_HANDSHAKE_TIMEOUT" ? "tls_handshake_timeout" : "tls_error";
      this.refuseConnection(source, reason, `TLS handshake failed: ${error.message}`);
    });
    const gate = new ConnectionGate(admission, (raw, done) => {
      const connection = this.rawConnections.get(raw);
      const key = connectionKey(raw);
      if (connection && key) {
        connection.releaseAdmission = done;
        this.handshaking.set(key, connection);
        raw.once("close", () => this.handshaking.delete(key));
      }
      // The TLS server is never listening itself: it is handed each admitted connection.
      tls.emit("connection", raw);
    });
    this.gates.push(gate);
    const makeServer = () =>
      createTcpServer({ pauseOnConnect: true }, (raw) => {
        // Judged before it waits at the gate: a source over its limits does not even take a place in the queue.
        const connection = this.accept(raw, "TLS");
        if (!connection) return;
        this.rawConnections.set(raw, connection);
        gate.offer(raw);
      });
    const server = makeServer();
    const address = await this.listenOn(server, options);
    this.servers.push(...(await extraAcceptHandles(server, EXTRA_ACCEPT_HANDLES, LISTEN_BACKLOG, makeServer)));
    return address;
  }

  /** Plain MQTT, meant for loopback (local publishers, tests). */
  listenTcp(options: ListenOptions): Promise<AddressInfo> {
    return this.listenOn(
      createTcpServer((socket) => {
        const connection = this.accept(socket, "TCP");
        if (connection) this.serve(socket, connection);
      }),
      options,
    );
  }

  /** MQTT over WebSocket on the HTTP server, at `path`. */
  attachWebSocket(http: HttpServer, path = "/mqtt"): void {
    // ws would otherwise buffer frames of up to 100 MB before MQTT sees them.
    const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
    this.webSockets = wss;
    // ws answers a bad handshake with an HTML page; like every HTTP error here it gets the envelope instead.
    wss.on("wsClientError", (error: Error, socket: Duplex) => {
      const status = error.message === "Invalid HTTP method" ? 405 : 400;
      endWithError(socket, status, "invalid_websocket_handshake", error.message, error.message.includes("Version") ? { "Sec-WebSocket-Version": "13, 8" } : {});
    });
    http.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // A request line that is not a URL (`GET //[`) must not throw here: an upgrade listener's throw ends the process.
      const url = request.url ?? "/";
      if (!URL.canParse(url, "http://localhost") || new URL(url, "http://localhost").pathname !== path) return;
      // The same limits as MQTT over TCP: counted from the upgrade, on the socket under the WebSocket.
      const connection = this.accept(socket as Socket, "WebSocket", this.webSocketClient(request));
      if (!connection) return;
      wss.handleUpgrade(request, socket, head, (ws) => this.serve(createWebSocketStream(ws), connection, request));
    });
  }

  /** A WebSocket's client: the peer, or behind a trusted proxy the client X-Forwarded-For names (the same rule as HTTP). */
  private webSocketClient(request: IncomingMessage): string | undefined {
    const trust = this.options.trustProxy;
    if (!trust) return request.socket.remoteAddress;
    this.trusted ??= trust === true ? () => true : proxyAddr.compile(trust);
    return proxyAddr(request, this.trusted);
  }

  private trusted?: (address: string, hop: number) => boolean;

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.limiter.close();
    this.refusals.close();
    for (const gate of this.gates) gate.close();
    for (const client of Object.values(this.clients())) client.conn.destroy();
    this.webSockets?.close();
    await Promise.all(this.servers.map((server) => new Promise((resolve) => server.close(resolve))));
    await withTimeout(new Promise<void>((resolve) => this.aedes.close(() => resolve())), 3_000);
    await this.closeBackends();
  }
}

/**
 * Names a TCP connection the same way from its raw socket and from the TLS
 * socket wrapped around it: a live connection's two ends are unique on this host.
 */
function connectionKey(socket: Socket | undefined): string | undefined {
  if (!socket?.remotePort || !socket.localPort) return undefined;
  return `${socket.localPort} ${socket.remoteAddress} ${socket.remotePort}`;
}

/** Why a client may not leave this will, if it may not: the same rules as its publishes. */
function checkWill(principal: MqttPrincipal, will: { topic: string; payload?: Buffer | string } | undefined): string | undefined {
  if (!will) return undefined;
  const decision = canPublish(principal, will.topic);
  if (!decision.allowed) return `will refused: ${decision.reason}`;
  const size = typeof will.payload === "string" ? Buffer.byteLength(will.payload) : (will.payload?.length ?? 0);
  if (size > MAX_PAYLOAD_BYTES) return `will refused: payload of ${size} bytes is over ${MAX_PAYLOAD_BYTES}`;
  return undefined;
}

/** Redis-backed emitter and persistence, so every node's broker sees one cluster of clients. */
async function redisBackends(url: string, logger: FastifyBaseLogger, sealer: Sealer | undefined) {
  const { default: createEmitter } = await import("mqemitter-redis");
  const { default: createPersistence } = await import("aedes-persistence-redis");
  // Our own connections, so their errors are logged (not thrown as unhandled) and closing never waits on a dead Redis.
  const connections = [0, 1, 2].map(() => {
    const connection = new Redis(url, { maxRetriesPerRequest: 2 });
    connection.on("error", (error: Error) => logger.warn({ err: error.message }, "broker: Redis connection error"));
    return connection;
  });
  const [subConn, pubConn, conn] = connections as [Redis, Redis, Redis];
  // The emitter closes them with quit() and drops the promise, which rejects ("Connection is closed.")
  // when Redis hangs up before its reply is read: unheard, that rejection ends the process mid-shutdown.
  for (const connection of [subConn, pubConn]) {
    const quit = connection.quit.bind(connection) as () => Promise<"OK">;
    Object.assign(connection, {
      quit: () => {
        const quitting = quit();
        quitting.catch(() => {});
        return quitting;
      },
    });
  }
  const mq = createEmitter({ subConn, pubConn });
  // The emitter re-emits connection errors on `state`; unheard, they would crash the process.
  (mq as unknown as { state: EventEmitter }).state.on("error", () => {});
  // Queued jobs carry OTP texts: they must not outlive their use in Redis (an hour is longer than any OTP).
  const persistence = createPersistence({ conn, packetTTL: () => 3600 });
  survivesRedisOutages(conn, persistence as unknown as FragilePersistence, logger);
  if (sealer) sealQueuedJobs(persistence, sealer, (error) => logger.warn({ err: (error as Error).message }, "broker: skipped a queued job that cannot be unsealed"));
  return {
    mq,
    persistence,
    close: async () => {
      // Without a callback, destroy() hands back the inner promise instead of waiting for a `ready` event.
      await withTimeout(persistence.destroy(), 2_000).catch(() => {});
      for (const connection of connections) connection.disconnect();
    },
  };
}

/** The aedes-persistence-redis calls that can fail with no one listening. */
interface FragilePersistence {
  delWill(client: unknown): Promise<unknown>;
  createRetainedStreamCombi(patterns: string[]): NodeJS.ReadableStream;
}

/**
 * aedes-persistence-redis 11 starts some Redis commands without awaiting or
 * catching them (`lrem`/`rpush` for wills and queue reads), Aedes chains
 * `delWill(...).finally()` with no catch, and pipes the retained stream of a
 * SUBSCRIBE with no error listener: during a Redis outage each of these ends
 * the process. Here the same calls go on, and a failure is logged instead.
 */
function survivesRedisOutages(conn: Redis, persistence: FragilePersistence, logger: FastifyBaseLogger): void {
  for (const name of ["lrem", "rpush"] as const) {
    const original = (conn[name] as (...args: unknown[]) => Promise<unknown>).bind(conn);
    Object.assign(conn, {
      [name]: (...args: unknown[]) => {
        const pending = original(...args);
        pending.catch((error: Error) => logger.warn({ err: error.message }, `broker: Redis ${name} failed`));
        return pending;
      },
    });
  }
  const delWill = persistence.delWill.bind(persistence);
  persistence.delWill = (client) =>
    delWill(client).catch((error: Error) => {
      logger.warn({ err: error.message }, "broker: could not clear a will in Redis");
      return undefined;
    });
  const retained = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => {
    const stream = retained(patterns);
    stream.on("error", (error: Error) => logger.warn({ err: error.message }, "broker: could not read retained messages from Redis"));
    return stream;
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), ms).unref())]);
}
