/**
 * Issuing and checking OTPs: joins the rules, the store and the dispatcher.
 * Transport-free: the HTTP routes (v1 and seed-compatible) both call this.
 */
import { randomUUID } from "node:crypto";
import type { Dispatcher } from "../delivery/dispatcher.js";
import type { FraudGuard, SendCaller } from "../fraud/fraud-guard.js";
import { FraudRefusal } from "../fraud/fraud-rules.js";
import { deliveryOf, newJob, type Attempt, type Delivery } from "../delivery/job-state.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Sealer } from "../security/sealing.js";
import type { Store } from "../store/store.js";
import {
  codeDigest,
  digestsMatch,
  generateCode,
  subjectKey,
  subjectsFor,
  type OtpChannel,
  type OtpPolicy,
  type OtpRecord,
  type OtpStatus,
} from "./rules.js";
import { otpEmail, otpSmsText } from "./templates.js";

export interface IssueOtpInput {
  to?: string;
  email?: string;
  channel?: OtpChannel | "auto";
  userId?: string;
  codeLength?: number;
  ttlSeconds?: number;
  locale?: string;
  appHash?: string;
  origin?: string;
  callbackUrl?: string;
}

export type VerifyOtpInput = { id?: string; userId?: string; to?: string; email?: string; code: string };

export class OtpError extends Error {
  constructor(
    readonly code: "invalid_request" | "no_route" | "rate_limited" | "not_found" | "overloaded",
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface IssuedOtp {
  id: string;
  status: "pending";
  channel: OtpChannel;
  expiresAt: string;
  delivery: Delivery;
}

export interface OtpView {
  id: string;
  status: OtpStatus;
  channel: OtpChannel;
  attemptsLeft: number;
  createdAt: string;
  expiresAt: string;
  delivery: Delivery & { attempts: Attempt[] };
}

export interface OtpServiceDeps {
  store: Store;
  dispatcher: Dispatcher;
  sealer: Sealer;
  metrics: Metrics;
  secret: string;
  policy: OtpPolicy;
  defaultTtlSeconds: number;
  appName: string;
  /** Checks every SMS code before it is issued; absent in unit tests that build the service alone. */
  fraud?: FraudGuard;
  now?: () => number;
}

export class OtpService {
  private readonly now: () => number;

  constructor(private readonly deps: OtpServiceDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** `caller`: the API key asking, whose fraud quotas and geo permissions apply. */
  async issue(input: IssueOtpInput, caller?: SendCaller): Promise<IssuedOtp> {
    const { store, dispatcher, sealer, policy } = this.deps;
    const requested = input.channel ?? "auto";
    const channel: OtpChannel = requested === "auto" ? (input.to ? "sms" : "email") : requested;
    if (channel === "sms" && !input.to) throw new OtpError("invalid_request", "to: a phone number is required for channel sms");
    if (channel === "email" && !input.email) throw new OtpError("invalid_request", "email: an address is required for channel email");

    const now = this.now();
    const ttlSeconds = input.ttlSeconds ?? this.deps.defaultTtlSeconds;
    const id = randomUUID();
    const jobId = randomUUID();
    const destinations = {
      channel,
      to: channel === "sms" ? input.to : undefined,
      email: input.email,
      emailFallback: requested === "auto" && Boolean(input.email),
    };
    if (dispatcher.routesFor(destinations).length === 0) {
      this.deps.metrics.otpIssued.inc({ channel, outcome: "no_route" });
      throw new OtpError("no_route", `no configured route can deliver ${channel}; see FAILOVER_ORDER and the provider settings`);
    }

    if (!dispatcher.hasCapacity()) {
      this.deps.metrics.otpIssued.inc({ channel, outcome: "overloaded" });
      throw new OtpError("overloaded", "too many deliveries under way; retry in a second", 1);
    }

    const code = generateCode(input.codeLength);
    const record: OtpRecord = {
      id,
      digest: codeDigest(this.deps.secret, id, code),
      channel,
      ...(destinations.to ? { to: destinations.to } : {}),
      ...(input.email ? { email: input.email } : {}),
      ...(input.userId ? { userId: input.userId } : {}),
      subjects: this.subjectKeys({ userId: input.userId, to: destinations.to, email: channel === "email" ? input.email : undefined }),
      status: "pending",
      attempts: 0,
      maxAttempts: policy.maxAttempts,
      createdAt: now,
      expiresAt: now + ttlSeconds * 1000,
      jobId,
    };
    // Before the store counts anything for the OTP: a refused number must not start a cooldown.
    const ticket = destinations.to ? await this.admit(destinations.to, channel, caller) : null;
    const issued = await store.issueOtp(record, policy, now);
    if (!issued.ok) {
      await this.deps.fraud?.release(ticket);
      this.deps.metrics.otpIssued.inc({ channel, outcome: issued.reason });
      const why = { cooldown: "a code was sent moments ago", hourly_cap: "too many codes this hour", locked: "too many wrong codes" };
      throw new OtpError("rate_limited", `${why[issued.reason]}; retry in ${issued.retryAfterSeconds} s`, issued.retryAfterSeconds);
    }

    const text = { code, appName: this.deps.appName, ttlSeconds, locale: input.locale, origin: input.origin, appHash: input.appHash };
    const body = channel === "sms" ? otpSmsText(text) : otpEmail(text).text;
    const job = newJob(
      {
        id: jobId,
        kind: "otp",
        otpId: id,
        ...destinations,
        sealedBody: sealer.seal(body),
        subject: otpEmail(text).subject,
        expiresAt: new Date(record.expiresAt).toISOString(),
        ...(input.callbackUrl ? { callbackUrl: input.callbackUrl } : {}),
      },
      new Date(now),
      dispatcher.newLease(),
    );
    await store.createJob(job, ttlSeconds + policy.retentionSeconds);
    dispatcher.submit(jobId);
    this.deps.metrics.otpIssued.inc({ channel, outcome: "accepted" });
    return { id, status: "pending", channel, expiresAt: job.expiresAt, delivery: deliveryOf(job) };
  }

  private async admit(to: string, channel: OtpChannel, caller: SendCaller | undefined) {
    try {
      return (await this.deps.fraud?.admit({ to, kind: "otp", caller })) ?? null;
    } catch (error) {
      if (error instanceof FraudRefusal) this.deps.metrics.otpIssued.inc({ channel, outcome: "fraud_refused" });
      throw error;
    }
  }

  /** What the store counts this OTP against: keyed digests of the user, number and address. */
  private subjectKeys(input: { userId?: string; to?: string; email?: string }): string[] {
    return subjectsFor(input).map((subject) => subjectKey(this.deps.secret, subject));
  }

  /** The OTP a verify request means: by id, else the newest for the user, number or address. */
  private async resolveId(input: VerifyOtpInput): Promise<string> {
    if (input.id) return input.id;
    const subject = this.subjectKeys({ userId: input.userId, to: input.to, email: input.email })[0];
    if (!subject) throw new OtpError("invalid_request", "one of id, userId, to or email is required");
    const id = await this.deps.store.latestOtpId(subject);
    if (!id) throw new OtpError("not_found", "no code was sent to that user or number");
    return id;
  }

  /** `to` / `email`: where the code went, for the seed routes that echo it to their caller. */
  async verify(input: VerifyOtpInput): Promise<{ id: string; valid: boolean; status: OtpStatus; attemptsLeft: number; to?: string; email?: string }> {
    const { store, metrics, policy } = this.deps;
    const id = await this.resolveId(input);
    const record = await store.getOtp(id);
    if (!record) throw new OtpError("not_found", `no OTP with id ${id}`);
    const matched = digestsMatch(record.digest, codeDigest(this.deps.secret, id, input.code));
    const result = await store.verifyOtp(id, matched, policy, this.now());
    if (!result.found) throw new OtpError("not_found", `no OTP with id ${id}`);
    if (result.lockedForSeconds) {
      metrics.verifications.inc({ outcome: "locked" });
      throw new OtpError("rate_limited", `too many wrong codes; retry in ${result.lockedForSeconds} s`, result.lockedForSeconds);
    }
    metrics.verifications.inc({ outcome: result.valid ? "approved" : result.status === "pending" ? "wrong_code" : result.status });
    // A verified SMS code is what the conversion watch counts.
    if (result.valid && record.channel === "sms" && record.to) await this.deps.fraud?.verified(record.to);
    return { id, valid: result.valid, status: result.status, attemptsLeft: result.attemptsLeft, ...(record.to ? { to: record.to } : {}), ...(record.email ? { email: record.email } : {}) };
  }

  async view(id: string): Promise<OtpView | null> {
    const record = await this.deps.store.getOtp(id);
    if (!record) return null;
    const job = await this.deps.store.getJob(record.jobId);
    // An unverified code past its expiry reads as expired even before anyone checks it.
    const status = record.status === "pending" && this.now() >= record.expiresAt ? "expired" : record.status;
    return {
      id,
      status,
      channel: record.channel,
      attemptsLeft: Math.max(0, record.maxAttempts - record.attempts),
      createdAt: new Date(record.createdAt).toISOString(),
      expiresAt: new Date(record.expiresAt).toISOString(),
      delivery: { ...deliveryOf(job), attempts: job?.attempts ?? [] },
    };
  }
}
