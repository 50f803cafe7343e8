import { ProviderError, maskNumbers, timeoutError, type FailureKind, type SmsProvider } from "./provider.js";

export interface AfricasTalkingProviderOptions {
  username: string;
  apiKey: string;
  /** Registered sender id or short code; AT picks its default sender when unset. */
  from?: string;
  /** Origin of an AT-compatible API, replacing the live/sandbox host. */
  apiBase?: string;
  /** Per-request deadline in ms (default 10000). */
  timeoutMs?: number;
}

/** The API origin: `apiBase` when given, else the sandbox host for username `sandbox`, else the live host. */
export function africasTalkingBaseUrl(opts: { username: string; apiBase?: string }): string {
  if (opts.apiBase) return opts.apiBase.replace(/\/+$/, "");
  return opts.username === "sandbox" ? "https://api.sandbox.africastalking.com" : "https://api.africastalking.com";
}

/**
 * Per-recipient statusCode → outcome.
 *   100 Processed, 101 Sent, 102 Queued                       → success
 *   405 InsufficientBalance                                    → transient: topping up the account fixes it
 *   500 InternalServerError, 501 GatewayError,
 *   502 RejectedByGateway                                      → transient: trouble on AT's or the carrier's side
 *   401 RiskHold, 402 InvalidSenderId, 403 InvalidPhoneNumber,
 *   404 UnsupportedNumberType, 406 UserInBlacklist,
 *   407 CouldNotRoute, 409 DoNotDisturbRejection               → permanent: the same request fails again
 * Codes not listed follow the HTTP convention: 5xx transient, anything else permanent.
 */
export function classifyRecipientStatus(statusCode: number): "success" | FailureKind {
  if (statusCode >= 100 && statusCode <= 102) return "success";
  if (statusCode === 405 || statusCode >= 500) return "transient";
  return "permanent";
}

interface AtRecipient {
  statusCode?: number;
  status?: string;
  messageId?: string;
}

interface AtResponse {
  SMSMessageData?: { Message?: string; Recipients?: AtRecipient[] };
}

export function createAfricasTalkingProvider(opts: AfricasTalkingProviderOptions): SmsProvider {
  const url = `${africasTalkingBaseUrl(opts)}/version1/messaging`;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  return {
    route: "africastalking",
    async send(message, signal) {
      if (signal.aborted) throw timeoutError("africastalking");
      const form = new URLSearchParams({ username: opts.username, to: message.to, message: message.body });
      if (opts.from) form.set("from", opts.from);

      const deadline = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
      let res: Response;
      let text: string;
      try {
        // No retries here: fetch sends the POST once; failover is the dispatcher's decision.
        res = await fetch(url, {
          method: "POST",
          headers: {
            apiKey: opts.apiKey,
            Accept: "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
          },
          body: form,
          signal: deadline,
        });
        text = await res.text();
      } catch (err) {
        // Checked on the signal, not the error: an abort reason can be any value.
        if (deadline.aborted) throw timeoutError("africastalking");
        throw new ProviderError(`africastalking: ${String(err)}`, "transient", "africastalking:network");
      }

      if (!res.ok) {
        // 401: bad apiKey/username. 429 and 5xx may pass later; other 4xx reject the request itself.
        const kind: FailureKind = res.status === 429 || res.status >= 500 ? "transient" : "permanent";
        const detail = maskNumbers(text.slice(0, 200));
        throw new ProviderError(`africastalking: HTTP ${res.status}: ${detail}`, kind, `africastalking:${res.status}`);
      }

      let data: AtResponse;
      try {
        data = JSON.parse(text) as AtResponse;
      } catch {
        // 2xx we cannot read: AT may have sent it, but nothing tells us so.
        throw new ProviderError("africastalking: unreadable response", "transient", "africastalking:bad_response");
      }
      const recipient = data.SMSMessageData?.Recipients?.[0];
      if (!recipient || typeof recipient.statusCode !== "number") {
        // AT answers a request it refuses as a whole with no recipients and the reason in Message.
        const reason = maskNumbers(String(data.SMSMessageData?.Message ?? "no recipients"));
        throw new ProviderError(`africastalking: ${reason}`, "permanent", `africastalking:${res.status}`);
      }
      const outcome = classifyRecipientStatus(recipient.statusCode);
      if (outcome !== "success") {
        throw new ProviderError(
          `africastalking: ${recipient.status ?? "failed"}`,
          outcome,
          `africastalking:${recipient.statusCode}`,
        );
      }
      return { providerMessageId: recipient.messageId, providerStatus: recipient.status };
    },
  };
}
