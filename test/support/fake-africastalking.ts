/**
 * A local stand-in for Africa's Talking's bulk SMS endpoint (`POST /version1/messaging`),
 * speaking its wire format: `apiKey` header, form-encoded request, plain-text auth errors and the
 * SMSMessageData JSON. Point the provider at it with `apiBase: fake.baseUrl`.
 */
import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { readBody, startFakeApi } from "./fake-http-server.js";

export interface FakeAfricasTalkingRequest {
  to: string;
  message: string;
  from?: string;
  username: string;
}

export interface FakeAfricasTalkingResponse {
  status: number;
  body: unknown;
}

export interface FakeAfricasTalking {
  baseUrl: string;
  /** One entry per recipient the fake accepted, oldest first. */
  received: FakeAfricasTalkingRequest[];
  /** Overrides the answer to authenticated requests; return undefined to fall through to normal handling. */
  respondWith(fn: ((req: FakeAfricasTalkingRequest) => FakeAfricasTalkingResponse | undefined) | undefined): void;
  /** Delay before each answer is written, in ms. */
  delayMs: number;
  close(): Promise<void>;
}

const PHONE = /^\+?[1-9]\d{6,14}$/;
const COST_PER_SMS = 0.8;

export async function startFakeAfricasTalking(opts: { username: string; apiKey: string }): Promise<FakeAfricasTalking> {
  async function answer(
    req: IncomingMessage,
    fake: FakeAfricasTalking,
    override: (msg: FakeAfricasTalkingRequest) => FakeAfricasTalkingResponse | undefined,
  ): Promise<FakeAfricasTalkingResponse> {
    const form = new URLSearchParams(await readBody(req));
    if (req.method !== "POST" || new URL(req.url ?? "/", "http://fake").pathname !== "/version1/messaging") {
      return { status: 404, body: "Not Found" };
    }
    if (req.headers.apikey !== opts.apiKey || form.get("username") !== opts.username) {
      return { status: 401, body: "The supplied authentication is invalid" };
    }
    const msg: FakeAfricasTalkingRequest = {
      to: form.get("to") ?? "",
      message: form.get("message") ?? "",
      username: form.get("username") ?? "",
    };
    const from = form.get("from");
    if (from) msg.from = from;

    const custom = override(msg);
    if (custom) {
      if (custom.status >= 200 && custom.status < 300) fake.received.push(msg);
      return custom;
    }

    if (!msg.to) return { status: 400, body: "Request is missing required form field 'to'" };
    if (!msg.message) return { status: 400, body: "Request is missing required form field 'message'" };

    // `to` may list several numbers; each gets its own Recipients entry, as on the real API.
    const recipients = msg.to.split(",").map((raw) => {
      const number = raw.trim();
      if (!PHONE.test(number)) {
        return { statusCode: 403, number, status: "InvalidPhoneNumber", cost: "0", messageId: "None" };
      }
      // Recorded now, before any delay: the SMS is on its way even if the client gives up waiting.
      fake.received.push({ ...msg, to: number });
      const messageId = `ATXid_${randomBytes(16).toString("hex")}`;
      return { statusCode: 101, number, status: "Success", cost: `KES ${COST_PER_SMS.toFixed(4)}`, messageId };
    });
    const sent = recipients.filter((r) => r.statusCode === 101).length;
    const summary = `Sent to ${sent}/${recipients.length} Total Cost: KES ${(sent * COST_PER_SMS).toFixed(4)}`;
    return { status: 201, body: { SMSMessageData: { Message: summary, Recipients: recipients } } };
  }

  return startFakeApi({
    answer,
    jsonContentType: "application/json",
    onError: (err) => ({ status: 500, body: String(err) }),
  });
}
