/**
 * Adapter interfaces for the cloud routes. The dispatcher only knows these; each
 * provider file turns its vendor's wire format into them.
 */

export type CloudRoute = "twilio" | "africastalking" | "email";

/** Why a send failed: a permanent error will fail again on the same provider; a transient one might not. */
export type FailureKind = "permanent" | "transient";

export class ProviderError extends Error {
  constructor(
    message: string,
    readonly kind: FailureKind,
    /** Stable, provider-prefixed code, e.g. `twilio:21211`, `africastalking:403`, `timeout`. */
    readonly code: string,
  ) {
    super(message);
    this.name = "ProviderError";
  }
}

export interface SendReceipt {
  /** The provider's own id for the message (Twilio SID, Africa's Talking messageId, SMTP message-id). */
  providerMessageId?: string;
  /** Provider status when it reports one (e.g. `queued`, `Success`). */
  providerStatus?: string;
}

export interface SmsMessage {
  /** otpgate job id, for logs and idempotency keys. */
  jobId: string;
  /** E.164 number. */
  to: string;
  body: string;
}

export interface EmailMessage {
  jobId: string;
  to: string;
  subject: string;
  text: string;
}

export interface SmsProvider {
  readonly route: "twilio" | "africastalking";
  /** Sends once. Must not retry internally in a way that could send twice. Throws ProviderError. */
  send(message: SmsMessage, signal: AbortSignal): Promise<SendReceipt>;
}

export interface EmailProvider {
  readonly route: "email";
  send(message: EmailMessage, signal: AbortSignal): Promise<SendReceipt>;
  close?(): Promise<void>;
}

/** What every provider throws when the caller's AbortSignal fires or its own deadline passes. */
export function timeoutError(route: CloudRoute): ProviderError {
  return new ProviderError(`${route}: no answer in time`, "transient", "timeout");
}

/**
 * Settles like `work`, but rejects with `timeoutError(route)` as soon as `signal` aborts. Some
 * clients cannot cancel a request in flight; the caller must not wait for them, so the late
 * result (or error) of `work` is dropped.
 */
export function abortable<T>(work: Promise<T>, signal: AbortSignal, route: CloudRoute): Promise<T> {
  work.catch(() => {}); // a rejection after the abort must not become an unhandled rejection
  if (signal.aborted) return Promise.reject(timeoutError(route));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(timeoutError(route));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** Vendor error texts often quote the recipient; logs must never carry full numbers (DESIGN.md). */
export function maskNumbers(text: string): string {
  return text.replace(/\+?\d{7,}/g, (digits) => `…${digits.slice(-3)}`);
}
