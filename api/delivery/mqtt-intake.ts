/**
 * Jobs that arrive over MQTT from publishers: `sms/send` is routed like
 * `POST /v1/messages`; a job published straight to `sms/out/<deviceId>` is
 * recorded so its acks are tracked like any other (the publisher chose the
 * phone, so there is no failover). MQTT 3.1.1 has no way to answer a publish
 * with an error, so refusals are logged and counted. Both go through the
 * fraud guard like any HTTP send; a direct job it refuses is already on its
 * way, so it is recorded as failed and taken back from the phone (cancel).
 */
import type { FastifyBaseLogger } from "fastify";
import type { JobPayload } from "../../broker/payloads.js";
import type { FraudGuard, FraudTicket } from "../fraud/fraud-guard.js";
import { FraudRefusal } from "../fraud/fraud-rules.js";
import type { Metrics } from "../metrics/metrics.js";
import { InvalidPhoneNumber, toE164 } from "../phone/phone-number.js";
import type { Sealer } from "../security/sealing.js";
import type { Store } from "../store/store.js";
import { deviceTarget, dispatch, exhaust, markAttemptFailed, newJob } from "./job-state.js";
import type { MessageService } from "./message-service.js";

export interface IntakeSource {
  on(event: "publisherSend", listener: (publisher: string, payload: { id?: string; to: string; body: string }) => void): unknown;
  on(event: "publisherJob", listener: (publisher: string, deviceId: string, job: JobPayload) => void): unknown;
}

export function connectMqttIntake(
  source: IntakeSource,
  deps: {
    messages: MessageService;
    store: Store;
    sealer: Sealer;
    metrics: Metrics;
    logger: FastifyBaseLogger;
    retentionSeconds: number;
    fraud?: FraudGuard;
    /** Takes a job back from a phone (the broker's cancelJob). */
    cancel?: (deviceId: string, jobId: string, keepUntil: number) => Promise<void>;
  },
): void {
  const { logger } = deps;

  source.on("publisherSend", (publisher, payload) => {
    let to: string;
    try {
      to = toE164(payload.to);
    } catch (error) {
      deps.metrics.mqttIntake.inc({ kind: "send", outcome: "invalid" });
      // The message would repeat the number, and logs never carry full numbers.
      logger.warn({ publisher, reason: error instanceof InvalidPhoneNumber ? "not a valid E.164 number" : "bad number" }, "sms/send refused");
      return;
    }
    deps.messages.send({ to, body: payload.body, ...(payload.id ? { id: payload.id } : {}) }, { id: `publisher:${publisher}` }).then(
      ({ id }) => {
        deps.metrics.mqttIntake.inc({ kind: "send", outcome: "accepted" });
        logger.info({ publisher, jobId: id }, "sms/send accepted");
      },
      (error: unknown) => {
        const fraud = error instanceof FraudRefusal ? error.code : undefined;
        deps.metrics.mqttIntake.inc({ kind: "send", outcome: fraud ? "fraud_refused" : "refused" });
        logger.warn({ publisher, jobId: payload.id, reason: (error as Error).message, ...(fraud ? { code: fraud } : {}) }, "sms/send refused");
      },
    );
  });

  source.on("publisherJob", (publisher, deviceId, payload) => {
    const now = new Date();
    // The publisher chose the phone and sent the job itself: it is born dispatched there, held by
    // the publisher until it expires (no node carries it on, nothing fails over), so only the
    // phone's acks or its expiry settle it.
    const expiry = new Date(Date.parse(payload.expiresAt));
    const job = dispatch(
      newJob(
        { id: payload.id, kind: "message", channel: "sms", to: payload.to, sealedBody: deps.sealer.seal(payload.body), expiresAt: expiry.toISOString() },
        now,
        { owner: `publisher:${publisher}`, until: expiry.toISOString() },
      ),
      deviceTarget(deviceId),
      now,
      expiry,
    );
    const ttl = Math.max(60, Math.ceil((Date.parse(payload.expiresAt) - now.getTime()) / 1000)) + deps.retentionSeconds;
    void (async () => {
      let ticket: FraudTicket | null = null;
      try {
        ticket = (await deps.fraud?.admit({ to: payload.to, kind: "direct", caller: { id: `publisher:${publisher}` } })) ?? null;
      } catch (error) {
        if (!(error instanceof FraudRefusal)) throw error;
        const route = deviceTarget(deviceId);
        const refused = exhaust(markAttemptFailed(job, route, now, `fraud:${error.code}`), now, `refused by the fraud guard (${error.code})`);
        // QoS 1 may bring the same publish twice; the first one is the job.
        if (!(await deps.store.createJob(refused, ttl))) return;
        deps.metrics.mqttIntake.inc({ kind: "direct", outcome: "fraud_refused" });
        logger.warn({ publisher, device: deviceId, jobId: job.id, code: error.code, reason: error.message }, "published job refused by the fraud guard; taking it back from the phone");
        // Kept in the store too, so every node (and a restarted one) withholds it.
        await deps.store.saveCancel({ jobId: job.id, deviceId, until: expiry.getTime() });
        await deps.cancel?.(deviceId, job.id, expiry.getTime());
        return;
      }
      // QoS 1 may bring the same publish twice; the first one is the job.
      if (!(await deps.store.createJob(job, ttl))) {
        await deps.fraud?.release(ticket);
        return;
      }
      await deps.store.reserveDeviceSend(deviceId, Number.MAX_SAFE_INTEGER, now.getTime());
      deps.metrics.mqttIntake.inc({ kind: "direct", outcome: "tracked" });
    })().catch((error: unknown) => logger.error({ err: error, publisher, jobId: job.id }, "could not track a published job"));
  });
}
