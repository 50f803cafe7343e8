/**
 * A callback receiver for tests: a real HTTP server on an ephemeral loopback
 * port that records each request and answers what the test says, or holds the
 * request open ("hang") until `release`.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface ReceivedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** The raw body, as a receiver must verify it. */
  body: string;
}

export type Reply = number | "hang" | { status: number; headers: Record<string, string> };

export interface Receiver {
  url: string;
  requests: ReceivedRequest[];
  /** Answers every held request. */
  release(status?: number): void;
  close(): Promise<void>;
}

export async function startReceiver(reply: (index: number, request: ReceivedRequest) => Reply = () => 200): Promise<Receiver> {
  const requests: ReceivedRequest[] = [];
  const held: ServerResponse[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const request: ReceivedRequest = {
        method: req.method ?? "",
        path: req.url ?? "",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      };
      const answer = reply(requests.push(request) - 1, request);
      if (answer === "hang") {
        held.push(res);
        return;
      }
      const { status, headers } = typeof answer === "number" ? { status: answer, headers: {} } : answer;
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}/hooks/otpgate`,
    requests,
    release(status = 200) {
      for (const res of held.splice(0)) if (!res.destroyed) res.writeHead(status).end();
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections(); // held requests and kept-alive fetch connections
      }),
  };
}
