/**
 * What the phone remembers between messages (and, through state-file.ts,
 * between restarts): the job ids it has handled with their latest status, and
 * cancels that arrived for ids it has not seen yet. Pure; the clock is passed in.
 */
import type { AckInput, AckStatus, JobMemory } from "./job-rules.js";

export interface HandledJob {
  status: AckStatus;
  error?: string;
  /** Epoch ms; it bounds how long the id must be kept (see prune). */
  expiresAt: number;
}

/**
 * A handled id may be forgotten once its job has expired: a redelivery after
 * that is refused as EXPIRED and still never sent. The hour of grace covers a
 * phone clock running behind the gateway's.
 */
export const HANDLED_GRACE_MS = 60 * 60 * 1000;
/** A cancel for an unseen job waits this long for the job to arrive. */
export const CANCEL_RETENTION_MS = 24 * 60 * 60 * 1000;
/** Cancels cost nothing to send, so their memory is capped (oldest forgotten first). */
export const MAX_REMEMBERED_CANCELS = 10_000;

export class JobLedger implements JobMemory {
  readonly #handled = new Map<string, HandledJob>();
  /** id → when the cancel arrived (epoch ms); Map order is arrival order. */
  readonly #cancelled = new Map<string, number>();

  isHandled(id: string): boolean {
    return this.#handled.has(id);
  }

  isCancelled(id: string): boolean {
    return this.#cancelled.has(id);
  }

  handled(id: string): Readonly<HandledJob> | undefined {
    return this.#handled.get(id);
  }

  /** The ack that restates the latest known status of `id`, for a redelivered job. */
  latestAck(id: string): AckInput | undefined {
    const entry = this.#handled.get(id);
    if (!entry) return undefined;
    return entry.status === "failed"
      ? { id, status: "failed", error: entry.error ?? "UNKNOWN" }
      : { id, status: entry.status };
  }

  record(id: string, entry: HandledJob): void {
    this.#handled.set(id, { ...entry });
  }

  setStatus(id: string, status: AckStatus, error?: string): void {
    const entry = this.#handled.get(id);
    if (!entry) return;
    entry.status = status;
    if (error === undefined) delete entry.error;
    else entry.error = error;
  }

  rememberCancel(id: string, now: number): void {
    this.#cancelled.delete(id);
    this.#cancelled.set(id, now);
    while (this.#cancelled.size > MAX_REMEMBERED_CANCELS) {
      const oldest = this.#cancelled.keys().next();
      if (oldest.done) break;
      this.#cancelled.delete(oldest.value);
    }
  }

  prune(now: number): void {
    for (const [id, entry] of this.#handled) {
      if (entry.expiresAt + HANDLED_GRACE_MS < now) this.#handled.delete(id);
    }
    for (const [id, at] of this.#cancelled) {
      if (at + CANCEL_RETENTION_MS < now) this.#cancelled.delete(id);
    }
  }

  get size(): { handled: number; cancelled: number } {
    return { handled: this.#handled.size, cancelled: this.#cancelled.size };
  }

  toJSON(): LedgerSnapshot {
    const handled: LedgerSnapshot["handled"] = {};
    for (const [id, entry] of this.#handled) {
      const saved: LedgerSnapshot["handled"][string] = { status: entry.status, expiresAt: new Date(entry.expiresAt).toISOString() };
      if (entry.error !== undefined) saved.error = entry.error;
      handled[id] = saved;
    }
    const cancelled: LedgerSnapshot["cancelled"] = {};
    for (const [id, at] of this.#cancelled) cancelled[id] = new Date(at).toISOString();
    return { version: 1, handled, cancelled };
  }

  /**
   * Rebuilds a ledger from a snapshot. A malformed snapshot throws rather than
   * starting empty: an empty ledger would let the phone send old jobs again.
   */
  static fromJSON(value: unknown, now: number): JobLedger {
    if (typeof value !== "object" || value === null) throw new Error("state is not a JSON object");
    const snapshot = value as Partial<LedgerSnapshot>;
    if (snapshot.version !== 1) throw new Error(`state has version ${String(snapshot.version)}, expected 1`);
    const ledger = new JobLedger();
    for (const [id, entry] of Object.entries(snapshot.handled ?? {})) {
      const expiresAt = Date.parse(entry?.expiresAt ?? "");
      if (!isStatus(entry?.status) || !Number.isFinite(expiresAt)) throw new Error(`state entry for job ${id} is malformed`);
      ledger.record(id, entry.error === undefined ? { status: entry.status, expiresAt } : { status: entry.status, error: entry.error, expiresAt });
    }
    for (const [id, at] of Object.entries(snapshot.cancelled ?? {})) {
      const when = Date.parse(at);
      if (!Number.isFinite(when)) throw new Error(`state cancel for job ${id} is malformed`);
      ledger.rememberCancel(id, when);
    }
    ledger.prune(now);
    return ledger;
  }
}

export interface LedgerSnapshot {
  version: 1;
  handled: Record<string, { status: AckStatus; error?: string; expiresAt: string }>;
  cancelled: Record<string, string>;
}

function isStatus(value: unknown): value is AckStatus {
  return value === "received" || value === "sent" || value === "delivered" || value === "failed";
}
