/**
 * What the fake provider APIs share: a loopback HTTP server on an ephemeral port holding the
 * state a test drives (what was accepted, a `respondWith` override, a delay before each answer),
 * that closes cleanly (pending delayed answers dropped, kept-alive connections cut). Each fake
 * supplies only its wire format, as `answer`.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface FakeHttpReply {
  status: number;
  /** A string goes out as text/plain; anything else as JSON. */
  body: unknown;
}

/** The shape every fake API has; each fake's own interface spells it out with its types. */
export interface FakeApi<Req, Res, Rec> {
  baseUrl: string;
  received: Rec[];
  respondWith(fn: ((req: Req) => Res | undefined) | undefined): void;
  delayMs: number;
  close(): Promise<void>;
}

export interface FakeApiOptions<Req, Res extends FakeHttpReply, Rec> {
  /**
   * Builds the answer to one request. `override(msg)` is what the test's `respondWith` function
   * returns for `msg` (undefined when none is set, or it falls through to normal handling).
   */
  answer(req: IncomingMessage, fake: FakeApi<Req, Res, Rec>, override: (msg: Req) => Res | undefined): Promise<Res>;
  /** Content-Type for JSON bodies. */
  jsonContentType: string;
  /** The answer when `answer` rejects. */
  onError(err: unknown): Res;
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

export async function startFakeApi<Req, Res extends FakeHttpReply, Rec>(opts: FakeApiOptions<Req, Res, Rec>): Promise<FakeApi<Req, Res, Rec>> {
  let override: ((req: Req) => Res | undefined) | undefined;
  const timers = new Set<NodeJS.Timeout>();

  const fake: FakeApi<Req, Res, Rec> = {
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
        server.closeAllConnections(); // clients (fetch, the twilio SDK) keep connections alive
      }),
  };

  function write(res: ServerResponse, { status, body }: FakeHttpReply) {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    const type = typeof body === "string" ? "text/plain" : opts.jsonContentType;
    res.writeHead(status, { "Content-Type": type, "Content-Length": Buffer.byteLength(text) }).end(text);
  }

  const server = createServer((req, res) => {
    opts.answer(req, fake, (msg) => override?.(msg)).then(
      (result) => {
        if (fake.delayMs <= 0) return write(res, result);
        const t = setTimeout(() => {
          timers.delete(t);
          if (!res.destroyed) write(res, result);
        }, fake.delayMs);
        timers.add(t);
      },
      (err: unknown) => write(res, opts.onError(err)),
    );
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return fake;
}
