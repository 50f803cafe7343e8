import { Agent as HttpAgent } from "node:http";
import twilio from "twilio";
import type RequestClient from "twilio/lib/base/RequestClient.js";
import { ProviderError, abortable, maskNumbers, timeoutError, type SmsProvider } from "./provider.js";

export interface TwilioProviderOptions {
  accountSid: string;
  authToken: string;
  /** Sender: an E.164 number or alphanumeric sender id. */
  from: string;
  /** Origin of a Twilio-compatible API (e.g. `http://127.0.0.1:4010`), replacing `https://api.twilio.com`. */
  apiBase?: string;
  /** Per-request deadline in ms (default 10000). */
  timeoutMs?: number;
}

/**
 * Error codes that fail again however often they are retried on Twilio. Any other 4xx (except
 * 429) is treated as permanent too; this list is here so these stay permanent even if Twilio
 * ever returns them with an unusual HTTP status.
 */
const PERMANENT_CODES = new Set([
  20003, // authentication failed
  21211, // invalid 'To' number
  21408, // no permission to send to that region
  21610, // recipient replied STOP (unsubscribed / blocked)
  21614, // 'To' is not a mobile number
]);

/**
 * The library's RequestClient with auto-retry forced off (a retried POST can send the SMS twice)
 * and, when `apiBase` is set, every request re-pointed at that origin. The whole origin is
 * replaced, not only `https://api.twilio.com`, because TWILIO_REGION / TWILIO_EDGE in the
 * environment make the library rewrite the hostname (api.dublin.ie1.twilio.com, ...).
 */
class OtpgateRequestClient extends twilio.RequestClient {
  constructor(
    timeoutMs: number,
    private readonly apiBase: string | undefined,
  ) {
    super({ timeout: timeoutMs, autoRetry: false });
    // The library pools only https (its agent: 20 sockets per host, 100 in all). An http:// base
    // fell to Node's global agent, which has no socket limit: a burst of jobs opened one new
    // connection per message at once, and under load many took seconds to set up, so sends that
    // the API had accepted timed out (test/load/phones-load.test.ts). Same pool as https here.
    if (apiBase?.startsWith("http:")) {
      this.axios.defaults.httpAgent = new HttpAgent({ keepAlive: true, timeout: timeoutMs, maxSockets: 20, maxTotalSockets: 100, maxFreeSockets: 5 });
    }
  }

  override request<TData>(opts: RequestClient.RequestOptions<TData>) {
    if (!this.apiBase) return super.request(opts);
    const original = new URL(opts.uri);
    const uri = this.apiBase.replace(/\/+$/, "") + original.pathname + original.search;
    return super.request({ ...opts, uri });
  }
}

export function createTwilioProvider(opts: TwilioProviderOptions): SmsProvider {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const client = twilio(opts.accountSid, opts.authToken, {
    httpClient: new OtpgateRequestClient(timeoutMs, opts.apiBase),
    autoRetry: false,
  });

  return {
    route: "twilio",
    async send(message, signal) {
      if (signal.aborted) throw timeoutError("twilio");
      try {
        const sent = await abortable(
          client.messages.create({ to: message.to, from: opts.from, body: message.body }),
          signal,
          "twilio",
        );
        return { providerMessageId: sent.sid, providerStatus: sent.status };
      } catch (err) {
        throw toProviderError(err);
      }
    },
  };
}

/** Exported for tests: turns whatever the twilio library throws into a ProviderError. */
export function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as { status?: unknown; code?: unknown; message?: unknown; isAxiosError?: unknown };
  const message = maskNumbers(typeof e.message === "string" ? e.message : String(err));

  // No HTTP answer: axios (inside the library) failed to connect, or hit the request timeout.
  if (e.isAxiosError === true || typeof e.status !== "number") {
    if (e.code === "ECONNABORTED" || e.code === "ETIMEDOUT") return timeoutError("twilio");
    return new ProviderError(`twilio: ${message}`, "transient", "twilio:network");
  }

  // RestException / TwilioServiceException: the HTTP status plus Twilio's numeric error code.
  const status = e.status;
  const code = typeof e.code === "number" && e.code > 0 ? e.code : undefined;
  const transient = status === 429 || status >= 500;
  const kind = code !== undefined && PERMANENT_CODES.has(code) ? "permanent" : transient ? "transient" : "permanent";
  return new ProviderError(`twilio: HTTP ${status}: ${message}`, kind, `twilio:${code ?? status}`);
}
