/** Plain SMS (`POST /v1/messages`, and later `sms/send` over MQTT): a job with no OTP behind it. */
import { randomUUID } from "node:crypto";
import type { FraudGuard, SendCaller } from "../fraud/fraud-guard.js";
import { maskPhone } from "../phone/phone-number.js";
import type { Sealer } from "../security/sealing.js";
import type { Store } from "../store/store.js";
import type { Dispatcher } from "./dispatcher.js";
import { deliveryOf, newJob, type Attempt, type Delivery, type JobState } from "./job-state.js";

export interface SendMessageInput {
  to: string;
  body: string;
  callbackUrl?: string;
  /** Caller-chosen id (MQTT publishers); a new one is made otherwise. */
  id?: string;
}

export interface MessageView {
  id: string;
  status: JobState;
  /** Masked (maskPhone): the caller gave the number; a reply or a history page does not repeat it in full. */
  to: string;
  createdAt: string;
  updatedAt: string;
  delivery: Delivery & { attempts: Attempt[] };
}

export class NoRouteError extends Error {}
export class DuplicateMessageError extends Error {}
export class OverloadedError extends Error {}

export interface MessageServiceDeps {
  store: Store;
  dispatcher: Dispatcher;
  sealer: Sealer;
  /** How long a message may wait for a route before it is useless. */
  messageTtlSeconds: number;
  retentionSeconds: number;
  /** Checks every message before it is accepted; absent in unit tests that build the service alone. */
  fraud?: FraudGuard;
}

export class MessageService {
  constructor(private readonly deps: MessageServiceDeps) {}

  /** `caller`: the API key or MQTT publisher asking, whose fraud quotas and geo permissions apply. */
  async send(input: SendMessageInput, caller?: SendCaller): Promise<{ id: string; status: JobState }> {
    const { store, dispatcher, sealer } = this.deps;
    if (dispatcher.routesFor({ channel: "sms", to: input.to }).length === 0) {
      throw new NoRouteError("no configured route can deliver sms; see FAILOVER_ORDER and the provider settings");
    }
    if (!dispatcher.hasCapacity()) throw new OverloadedError("too many deliveries under way; retry in a second");
    const ticket = (await this.deps.fraud?.admit({ to: input.to, kind: "message", caller })) ?? null;
    const id = input.id ?? randomUUID();
    const now = new Date();
    const job = newJob(
      {
        id,
        kind: "message",
        channel: "sms",
        to: input.to,
        sealedBody: sealer.seal(input.body),
        expiresAt: new Date(now.getTime() + this.deps.messageTtlSeconds * 1000).toISOString(),
        ...(input.callbackUrl ? { callbackUrl: input.callbackUrl } : {}),
      },
      now,
      dispatcher.newLease(),
    );
    if (!(await store.createJob(job, this.deps.messageTtlSeconds + this.deps.retentionSeconds))) {
      await this.deps.fraud?.release(ticket);
      throw new DuplicateMessageError(`a message with id ${id} exists`);
    }
    dispatcher.submit(id);
    return { id, status: job.state };
  }

  async view(id: string): Promise<MessageView | null> {
    const job = await this.deps.store.getJob(id);
    if (!job || job.kind !== "message") return null;
    return {
      id,
      status: job.state,
      to: job.to ? maskPhone(job.to) : "",
      createdAt: job.createdAt,
      updatedAt: job.updatedAt,
      delivery: { ...deliveryOf(job), attempts: job.attempts },
    };
  }
}
