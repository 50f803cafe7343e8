/**
 * What a phone's ack does to its job: the one writer of a device attempt's
 * `sent`, `delivered` and `failed`. Run on the node the phone is connected to,
 * before the broker acknowledges the ack packet (so a store that is away, or a
 * node that dies, makes the phone send it again instead of losing it). Every
 * change is a compare-and-set, so a repeated ack (QoS 1 redelivers) changes
 * nothing, and an ack for an attempt the gateway already gave up on is
 * recorded as late and never acted on. The gateway's clock dates every change:
 * the phone's `at` is informational.
 */
import type { FastifyBaseLogger } from "fastify";
import type { AckPayload } from "../../broker/payloads.js";
import { redactContacts } from "../security/redact.js";
import type { Store } from "../store/store.js";
import * as jobState from "./job-state.js";
import type { Job } from "./job-state.js";

export function applyAck(job: Job, deviceId: string, ack: AckPayload, now: Date): Job {
  const route = jobState.deviceTarget(deviceId);
  // A phone's error is free text: masked like a provider's before it is stored, logged, streamed or exported.
  const error = ack.error === undefined ? undefined : redactContacts(ack.error);
  const attempt = job.attempts.findLast((a) => a.route === route);
  if (!attempt) throw new jobState.InvalidTransition(`job ${job.id} was never sent to ${route}`);
  if (attempt.state === "failed" || attempt.state === "cancelled") {
    return jobState.recordLateAck(job, route, { status: ack.status, at: now.toISOString(), ...(error ? { error } : {}) });
  }
  switch (ack.status) {
    case "received":
      return jobState.markReceived(job, route, now);
    case "sent":
      return jobState.markSent(job, route, now);
    case "delivered":
      return jobState.markDelivered(job, route, now);
    case "failed":
      return jobState.markAttemptFailed(job, route, now, `device:${error ?? "failed"}: the phone could not send it`);
  }
}

export function createAckRecorder(deps: { store: Store; logger: FastifyBaseLogger; onStateChange?: (job: Job) => void; onOutcome?: (status: string, outcome: "applied" | "ignored") => void }) {
  return async function recordAck(deviceId: string, ack: AckPayload): Promise<void> {
    let known = true;
    let applied = false;
    // Read inside the compare-and-set: the state this ack actually moved the job from.
    let before: Job["state"] | undefined;
    const after = await deps.store.updateJob(ack.id, (job) => {
      before = job.state;
      known = true;
      try {
        const next = applyAck(job, deviceId, ack, new Date());
        applied = true;
        return next;
      } catch (error) {
        if (!(error instanceof jobState.InvalidTransition)) throw error;
        applied = false;
        known = job.attempts.some((a) => a.route === jobState.deviceTarget(deviceId));
        return null;
      }
    });
    if (!after) deps.logger.warn({ device: deviceId, jobId: ack.id, status: ack.status }, "ack for an unknown job ignored");
    else if (!known) deps.logger.warn({ device: deviceId, jobId: ack.id }, "ack from a phone the job was never sent to ignored");
    deps.onOutcome?.(ack.status, applied ? "applied" : "ignored");
    if (after && applied && after.state !== before) deps.onStateChange?.(after);
  };
}
