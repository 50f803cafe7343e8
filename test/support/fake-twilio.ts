/**
 * A local stand-in for Twilio's Messages API (2010-04-01), speaking its wire format: HTTP Basic
 * auth, form-encoded request, Twilio's JSON error bodies and Message resources. Point the Twilio
 * provider at it with `apiBase: fake.baseUrl`.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { readBody, startFakeApi } from "./fake-http-server.js";

export interface FakeTwilioRequest {
  to: string;
  from: string;
  body: string;
}

export interface FakeTwilioResponse {
  status: number;
  body: unknown;
}

export interface FakeTwilio {
  baseUrl: string;
  /** Messages the fake accepted (answered 2xx), oldest first. */
  received: Array<FakeTwilioRequest & { sid: string }>;
  /** Overrides the answer to authenticated requests; return undefined to fall through to normal handling. */
  respondWith(fn: ((req: FakeTwilioRequest) => FakeTwilioResponse | undefined) | undefined): void;
  /** Delay before each answer is written, in ms. */
  delayMs: number;
  close(): Promise<void>;
}

const E164 = /^\+[1-9]\d{6,14}$/;

function twilioError(status: number, code: number, message: string): FakeTwilioResponse {
  return { status, body: { code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status } };
}

/** GSM-7 fits 160 characters (153 per part when split); anything else goes as UCS-2, 70 (67). */
function segments(body: string): number {
  const gsm = /^[\x20-\x7e\n\r£¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ¤¡ÄÖÑÜ§¿äöñüà]*$/.test(body);
  const [single, part] = gsm ? [160, 153] : [70, 67];
  return body.length <= single ? 1 : Math.ceil(body.length / part);
}

function messageResource(accountSid: string, req: FakeTwilioRequest, sid: string) {
  const now = new Date().toUTCString().replace("GMT", "+0000"); // Twilio dates are RFC 2822
  const uri = `/2010-04-01/Accounts/${accountSid}/Messages/${sid}`;
  return {
    account_sid: accountSid,
    api_version: "2010-04-01",
    body: req.body,
    date_created: now,
    date_sent: null,
    date_updated: now,
    direction: "outbound-api",
    error_code: null,
    error_message: null,
    from: req.from,
    messaging_service_sid: null,
    num_media: "0",
    num_segments: String(segments(req.body)),
    price: null,
    price_unit: "USD",
    sid,
    status: "queued",
    subresource_uris: { media: `${uri}/Media.json` },
    to: req.to,
    uri: `${uri}.json`,
  };
}

export async function startFakeTwilio(opts: { accountSid: string; authToken: string }): Promise<FakeTwilio> {
  const expectedAuth = `Basic ${Buffer.from(`${opts.accountSid}:${opts.authToken}`).toString("base64")}`;
  const path = `/2010-04-01/Accounts/${opts.accountSid}/Messages.json`;

  async function answer(
    req: IncomingMessage,
    fake: FakeTwilio,
    override: (msg: FakeTwilioRequest) => FakeTwilioResponse | undefined,
  ): Promise<FakeTwilioResponse> {
    const raw = await readBody(req);
    if (req.headers.authorization !== expectedAuth) return twilioError(401, 20003, "Authenticate");
    const url = new URL(req.url ?? "/", "http://fake");
    if (req.method !== "POST" || url.pathname !== path) {
      return twilioError(404, 20404, `The requested resource ${url.pathname} was not found`);
    }
    const form = new URLSearchParams(raw);
    const msg = { to: form.get("To") ?? "", from: form.get("From") ?? "", body: form.get("Body") ?? "" };

    const custom = override(msg);
    if (custom) {
      if (custom.status >= 200 && custom.status < 300) {
        const sid = (custom.body as { sid?: unknown } | null)?.sid;
        fake.received.push({ ...msg, sid: typeof sid === "string" ? sid : newSid() });
      }
      return custom;
    }

    if (!msg.to) return twilioError(400, 21604, "A 'To' phone number is required.");
    if (!msg.from) return twilioError(400, 21603, "A 'From' phone number is required.");
    if (!msg.body) return twilioError(400, 21602, "Message body is required.");
    if (!E164.test(msg.to)) return twilioError(400, 21211, `The 'To' number ${msg.to} is not a valid phone number.`);
    if (msg.body.length > 1600) return twilioError(400, 21617, "The concatenated message body exceeds the 1600 character limit.");

    const sid = newSid();
    // Recorded now, before any delay: like the real Twilio, the message is on its way even if
    // the client gives up waiting for the answer.
    fake.received.push({ ...msg, sid });
    return { status: 201, body: messageResource(opts.accountSid, msg, sid) };
  }

  return startFakeApi({
    answer,
    jsonContentType: "application/json; charset=utf-8",
    onError: (err) => ({ status: 500, body: { code: 20500, message: String(err), status: 500 } }),
  });
}

function newSid(): string {
  return `SM${randomBytes(16).toString("hex")}`;
}

/** Gateway env for a single Twilio route pointed at `fake`; spread it and add (or override) the rest. */
export function twilioEnv(
  fake: Pick<FakeTwilio, "baseUrl">,
  creds: { accountSid: string; authToken: string; from?: string },
): Record<string, string> {
  return {
    TWILIO_ACCOUNT_SID: creds.accountSid,
    TWILIO_AUTH_TOKEN: creds.authToken,
    TWILIO_FROM: creds.from ?? "+15005550006",
    TWILIO_API_BASE: fake.baseUrl,
    FAILOVER_ORDER: "twilio",
  };
}
