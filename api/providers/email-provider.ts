import { createTransport, type NodemailerError } from "nodemailer";
import { ProviderError, abortable, maskNumbers, timeoutError, type EmailProvider } from "./provider.js";

export interface EmailProviderOptions {
  /** e.g. `smtp://user:pass@host:587`, `smtps://host:465`; nodemailer options may ride in the query (`?pool=true`). */
  smtpUrl: string;
  from: string;
  /** Connect, greeting and idle-socket deadline in ms (default 10000). */
  timeoutMs?: number;
}

/** SMTP errors that say nothing about the message, so another try (or route) may succeed. */
const CONNECTION_CODES = new Set(["ECONNECTION", "ESOCKET", "EDNS", "ETLS", "EPROXY"]);

export function createEmailProvider(opts: EmailProviderOptions): EmailProvider {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  // The object form (not `createTransport(url, defaults)`: the second argument holds message
  // defaults, not transport options) lets settings in the URL win over these timeouts.
  // TLS: nodemailer's default is kept on purpose. `smtps://` is TLS from the start; on `smtp://`
  // it upgrades with STARTTLS whenever the server offers it and stays plain when the server does
  // not (as our loopback test sink). Forcing `ignoreTLS` would send credentials in clear to a
  // server that supports TLS; operators who need it either way add `?requireTLS=true` or
  // `?ignoreTLS=true` to SMTP_URL, which nodemailer reads from the query.
  const transport = createTransport({
    url: opts.smtpUrl,
    // A pool reuses SMTP connections; one connection per code capped create throughput at the
    // mail server's handshake rate (bench/). `?pool=false` in SMTP_URL turns it off.
    pool: true,
    maxConnections: 10,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });

  return {
    route: "email",
    async send(message, signal) {
      if (signal.aborted) throw timeoutError("email");
      try {
        const info = await abortable(
          // nodemailer also gets the signal, so an abort closes the SMTP connection.
          transport.sendMail({ from: opts.from, to: message.to, subject: message.subject, text: message.text, signal }),
          signal,
          "email",
        );
        return { providerMessageId: info.messageId, providerStatus: info.response };
      } catch (err) {
        throw toProviderError(err);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/** Exported for tests: SMTP reply codes decide first (5xx permanent, 4xx transient), then nodemailer's error code. */
export function toProviderError(err: unknown): ProviderError {
  if (err instanceof ProviderError) return err;
  const e = (err ?? {}) as NodemailerError;
  const message = `email: ${maskNumbers(e.response ?? e.message ?? String(err))}`;
  if (e.code === "EABORT" || e.code === "ETIMEDOUT") return timeoutError("email");
  if (typeof e.responseCode === "number" && e.responseCode >= 400) {
    // 503 (bad command sequence) is about the session, not the message: it may pass on a new connection.
    const permanent = e.responseCode >= 500 && e.responseCode !== 503;
    return new ProviderError(message, permanent ? "permanent" : "transient", `email:${e.responseCode}`);
  }
  if (e.code && CONNECTION_CODES.has(e.code)) return new ProviderError(message, "transient", "email:network");
  // No reply code and not the network: bad address, bad credentials setup, bad configuration.
  return new ProviderError(message, "permanent", `email:${e.code ?? "error"}`);
}
