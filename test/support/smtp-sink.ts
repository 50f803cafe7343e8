/**
 * A real SMTP server on loopback that keeps what it receives, for email-route tests. Plain text
 * only (no STARTTLS offered); any AUTH is accepted so `smtp://user:pass@...` URLs work too.
 */
import type { AddressInfo } from "node:net";
import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

export interface SinkMessage {
  /** Envelope recipients (RCPT TO) the sink accepted. */
  to: string[];
  /** Envelope sender (MAIL FROM). */
  from: string;
  subject: string;
  text: string;
}

export interface SmtpSink {
  /** `smtp://127.0.0.1:PORT` */
  url: string;
  messages: SinkMessage[];
  /** Resolves with the first message (already received or still to come) matching `predicate`. */
  waitForMessage(predicate?: (msg: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  close(): Promise<void>;
}

export async function startSmtpSink(opts: { rejectRecipients?: RegExp } = {}): Promise<SmtpSink> {
  const messages: SinkMessage[] = [];
  const waiters = new Set<(msg: SinkMessage) => void>();

  const server = new SMTPServer({
    authOptional: true,
    allowInsecureAuth: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onAuth(auth, _session, callback) {
      callback(null, { user: auth.username ?? "anonymous" });
    },
    onRcptTo(address, _session, callback) {
      const reject = opts.rejectRecipients;
      if (reject) reject.lastIndex = 0; // a /g or /y pattern would otherwise alternate results
      if (reject?.test(address.address)) {
        const err = Object.assign(new Error("Requested action not taken: mailbox unavailable"), { responseCode: 550 });
        return callback(err);
      }
      callback();
    },
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (parsed) => {
          const msg: SinkMessage = {
            to: session.envelope.rcptTo.map((r) => r.address),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
            subject: parsed.subject ?? "",
            // MIME ends the body with a line break the sender did not write; drop it so
            // tests can compare with the text they passed in.
            text: (parsed.text ?? "").replace(/\r?\n$/, ""),
          };
          messages.push(msg);
          for (const waiter of waiters) waiter(msg);
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;

  return {
    url: `smtp://127.0.0.1:${port}`,
    messages,
    waitForMessage(predicate = () => true, timeoutMs = 5000) {
      const existing = messages.find(predicate);
      if (existing) return Promise.resolve(existing);
      return new Promise<SinkMessage>((resolve, reject) => {
        const waiter = (msg: SinkMessage) => {
          if (!predicate(msg)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(msg);
        };
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`smtp-sink: no matching message within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(waiter);
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
