/**
 * The fraud guard: every SMS the gateway accepts (POST /v1/otp, POST
 * /v1/messages, the seed routes, MQTT publishers) passes `admit` first. The
 * decisions are in fraud-rules.ts; the counters and holds are in the store,
 * so they hold across nodes. Refusals are FraudRefusal errors, counted in
 * otpgate_fraud_refusals_total and logged without the number.
 */
import type { FastifyBaseLogger } from "fastify";
import type { Metrics } from "../metrics/metrics.js";
import { subjectKey } from "../otp/rules.js";
import type { FraudStore } from "../store/store.js";
import {
  FraudRefusal,
  classifyNumber,
  geoRefusal,
  numberTypeRefusal,
  type FraudCode,
  type FraudHold,
  type FraudQuota,
  type FraudSettings,
  type KeyFraudSettings,
  type SendReservation,
} from "./fraud-rules.js";

/** Who asks for the send: an API key (its id and settings) or an MQTT publisher. */
export interface SendCaller {
  id: string;
  settings?: KeyFraudSettings;
}

/** otp: an OTP by SMS (feeds the watch); message: a plain SMS; direct: a publisher's job straight to a phone. */
export type SendKind = "otp" | "message" | "direct";

/** What an admitted send counted, to take back if the send is refused further on. */
export interface FraudTicket {
  request: SendReservation;
  at: number;
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

export interface FraudGuardDeps {
  store: FraudStore;
  /** Keys the per-number counters (subjectKey), so no store holds a number in clear. */
  secret: string;
  settings: FraudSettings;
  metrics: Metrics;
  logger: FastifyBaseLogger;
  now?: () => number;
}

export class FraudGuard {
  private readonly now: () => number;

  constructor(private readonly deps: FraudGuardDeps) {
    this.now = deps.now ?? Date.now;
  }

  get settings(): FraudSettings {
    return this.deps.settings;
  }

  /**
   * Refuses (throws FraudRefusal) or counts the send. In this order: number
   * type, geo permissions (node, then key), then in the store the prefix's
   * hold or conversion collapse, the key's minute and day quotas, the
   * number's hourly quota (plain messages) and the prefix's hourly quota.
   */
  async admit(input: { to: string; kind: SendKind; caller?: SendCaller }): Promise<FraudTicket | null> {
    const { settings } = this.deps;
    if (!settings.enabled) return null;
    const info = classifyNumber(input.to);
    const where = info.country ?? (info.callingCode ? `+${info.callingCode}` : "unknown");
    const refused =
      numberTypeRefusal(info, settings.allowedNumberTypes) ??
      geoRefusal(info, settings.geo, input.caller?.settings ? { allowed: input.caller.settings.allowedCountries, blocked: input.caller.settings.blockedCountries } : undefined);
    if (refused) throw this.refusal(refused, input, where);

    const request = this.reservation(input, info.prefix);
    const at = this.now();
    const outcome = await this.deps.store.reserveSend(request, at);
    if (outcome.ok) return { request, at };
    if (outcome.reason === "held") {
      const seconds = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
      const ratio = outcome.sent > 0 ? Math.round((outcome.verified / outcome.sent) * 100) : 0;
      if (outcome.tripped) {
        this.deps.metrics.fraudHolds.inc({ prefix: outcome.prefix, event: "tripped" });
        this.deps.logger.warn(
          { prefix: outcome.prefix, sent: outcome.sent, verified: outcome.verified, holdSeconds: seconds },
          `fraud guard: conversion to +${outcome.prefix} collapsed (${outcome.verified} of ${outcome.sent} codes verified); holding new sends there`,
        );
      }
      throw this.refusal(
        new FraudRefusal(
          "fraud_suspected",
          `sends to +${outcome.prefix} are held back: ${outcome.verified} of ${outcome.sent} recent codes verified (${ratio} %), which looks like SMS pumping; an operator can lift it with DELETE /v1/fraud/holds/${outcome.prefix}`,
          seconds,
        ),
        input,
        where,
      );
    }
    const seconds = Math.max(1, Math.ceil(outcome.retryAfterMs / 1000));
    const [code, what]: [FraudCode, string] = outcome.key.startsWith("key:")
      ? ["key_quota_exceeded", `this key's ${outcome.key.endsWith(":d") ? "daily" : "per-minute"} quota of ${outcome.limit} SMS`]
      : outcome.key.startsWith("number:")
        ? ["number_quota_exceeded", `${outcome.limit} messages per hour to one number`]
        : ["prefix_quota_exceeded", `${outcome.limit} SMS per hour to +${info.prefix}`];
    throw this.refusal(new FraudRefusal(code, `over ${what}; retry in ${seconds} s`, seconds), input, where);
  }

  /** Takes back what `admit` counted; best effort, since the send is refused anyway. */
  async release(ticket: FraudTicket | null): Promise<void> {
    if (!ticket) return;
    await this.deps.store.releaseSend(ticket.request, ticket.at).catch((error: unknown) => {
      this.deps.logger.warn({ err: error }, "fraud guard: could not take back a refused send's count");
    });
  }

  /** A code sent by SMS was verified: it feeds the conversion watch of its prefix. Never throws. */
  async verified(to: string): Promise<void> {
    const { settings } = this.deps;
    if (!settings.enabled || settings.watch.minSends === 0) return;
    const { prefix } = classifyNumber(to);
    if (!prefix) return;
    // The code is verified either way: a store hiccup here must not fail the check, only be logged.
    const lifted = await this.deps.store.recordVerified(prefix, settings.watch, this.now()).then(
      (result) => result.lifted,
      (error: unknown) => {
        this.deps.logger.warn({ err: error, prefix }, "fraud guard: could not count a verified code");
        return false;
      },
    );
    if (lifted) {
      this.deps.metrics.fraudHolds.inc({ prefix, event: "recovered" });
      this.deps.logger.info({ prefix }, `fraud guard: conversion to +${prefix} recovered; sends there resume`);
    }
  }

  async holds(): Promise<FraudHold[]> {
    return this.deps.store.listFraudHolds(this.now());
  }

  /** An operator's clear: the hold goes and the prefix's watch starts afresh. */
  async clear(prefix: string, by: string): Promise<FraudHold | null> {
    const hold = await this.deps.store.clearFraudHold(prefix, this.now());
    if (hold) {
      this.deps.metrics.fraudHolds.inc({ prefix, event: "cleared" });
      this.deps.logger.warn({ prefix, by }, `fraud guard: hold on +${prefix} cleared by an operator`);
    }
    return hold;
  }

  private reservation(input: { to: string; kind: SendKind; caller?: SendCaller }, prefix: string): SendReservation {
    const { settings } = this.deps;
    const quotas: FraudQuota[] = [];
    const add = (key: string, limit: number | undefined, windowMs: number) => {
      if (limit && limit > 0) quotas.push({ key, limit, windowMs });
    };
    if (input.caller) {
      const own = input.caller.settings?.quotas;
      add(`key:${input.caller.id}:m`, own?.perMinute ?? settings.keyMaxPerMinute, MINUTE_MS);
      add(`key:${input.caller.id}:d`, own?.perDay ?? settings.keyMaxPerDay, DAY_MS);
    }
    // OTPs have their own per-number cap (OTP_MAX_SENDS_PER_HOUR); plain messages had none.
    if (input.kind !== "otp") add(`${subjectKey(this.deps.secret, `number:${input.to}`)}:h`, settings.numberMaxPerHour, HOUR_MS);
    if (prefix) add(`prefix:${prefix}:h`, settings.prefixMaxPerHour, HOUR_MS);
    const watching = settings.watch.minSends > 0 && prefix !== "";
    return { quotas, ...(watching ? { watch: { prefix, policy: settings.watch, countSend: input.kind === "otp" } } : {}) };
  }

  private refusal(refusal: FraudRefusal, input: { kind: SendKind; caller?: SendCaller }, where: string): FraudRefusal {
    this.deps.metrics.fraudRefusals.inc({ reason: refusal.code, kind: input.kind });
    // The country or calling code only: logs never carry a full number.
    this.deps.logger.info({ reason: refusal.code, kind: input.kind, caller: input.caller?.id, destination: where }, "fraud guard: send refused");
    return refusal;
  }
}
