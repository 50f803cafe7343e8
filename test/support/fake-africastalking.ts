/**
 * A local stand-in for Africa's Talking's bulk SMS endpoint (`POST /version1/messaging`),
 * speaking its wire format: `apiKey` header, form-encoded request, plain-text auth errors and the
 * SMSMessageData JSON. Point the provider at it with `apiBase: fake.baseUrl`.
 */
import { randomBytes } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

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

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startFakeAfricasTalking(opts: { username: string; apiKey: string }): Promise<FakeAfricasTalking> {
  let override: ((req: FakeAfricasTalkingRequest) => FakeAfricasTalkingResponse | undefined) | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const fake: FakeAfricasTalking = {
    baseUrl: "",
    received: [],
    delayMs: 0,
    respondWith(fn) {
      override = fn;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const t of timers) clearTimeout(t);
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // fetch keeps connections alive
      }),
  };

  async function answer(req: IncomingMessage): Promise<FakeAfricasTalkingResponse> {
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

    const custom = override?.(msg);
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

  function write(res: ServerResponse, { status, body }: FakeAfricasTalkingResponse) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const type = typeof body === "string" ? "text/plain" : "application/json";
    res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(text) }).end(text);
  }

  const server = createServer((req, res) => {
    answer(req).then(
      (result) => {
        if (fake.delayMs <= 0) return write(res, result);
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) write(res, result);
        }, fake.delayMs);
        timers.add(t);
      },
      (err: unknown) => write(res, { status: 500, body: String(err) }),
    );
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
