/**
 * The "outside world" of the benchmark, run in a worker thread by otp-throughput.ts: the
 * autocannon load generator and the SMTP server the gateway mails codes to. Keeping both off the
 * main thread means the main thread's event loop serves only the server under test, so its
 * numbers are not shared with the client's own work.
 *
 * Protocol: the main thread posts `{ seq, op, ... }`; the worker answers `{ seq, result }` or
 * `{ seq, error }`.
 */
import type { AddressInfo } from "node:net";
import { parentPort } from "node:worker_threads";
import autocannon from "autocannon";
import { SMTPServer } from "smtp-server";

export interface LoadResult {
  /** Responses received. */
  requests: number;
  seconds: number;
  rps: number;
  p50: number;
  p99: number;
  /** Socket errors and timeouts. */
  errors: number;
  /** Count per status code that is not the one expected. */
  unexpectedStatus: Record<string, number>;
  /** Expected status but a body that says the work was not done (no id, code not approved). */
  badBodies: number;
}

export interface LoadTarget {
  url: string;
  connections: number;
  apiKey?: string;
}

export type Request =
  | { op: "startSink" }
  | ({ op: "baseline"; seconds: number } & LoadTarget)
  | ({ op: "create"; seconds: number } & LoadTarget)
  | { op: "mailStatus" }
  | ({ op: "verify" } & LoadTarget)
  | { op: "close" };

/** email → code, filled by the SMTP sink as mail arrives. */
const codes = new Map<string, string>();
/** email → OTP id, for the OTPs the last create phase got a 202 for. */
let created = new Map<string, string>();
/** Makes every email and userId unique across phases, so no cooldown or hourly cap applies. */
let phase = 0;
let sink: SMTPServer | undefined;

function startSink(): Promise<number> {
  sink = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        // The code is the first run of digits in the body; headers (Date, Message-ID) have digits too.
        const body = raw.slice(raw.indexOf("\r\n\r\n") + 4);
        const code = /\b(\d{4,10})\b/.exec(body)?.[1];
        const to = session.envelope.rcptTo[0]?.address.toLowerCase();
        // Recorded before the 250 reply, so once the gateway's dispatcher has drained, every code is here.
        if (code && to) codes.set(to, code);
        callback();
      });
    },
  });
  return new Promise((resolve, reject) => {
    sink!.once("error", reject);
    sink!.listen(0, "127.0.0.1", () => resolve((sink!.server.address() as AddressInfo).port));
  });
}

function headers(target: LoadTarget): Record<string, string> {
  return { "content-type": "application/json", ...(target.apiKey ? { authorization: `Bearer ${target.apiKey}` } : {}) };
}

/** Untyped in @types/autocannon; decodes the histograms of raw results. */
const { aggregateResult } = autocannon as unknown as {
  aggregateResult(results: unknown[], options: autocannon.Options): autocannon.Result;
};

async function run(options: autocannon.Options, expectedStatus: number): Promise<LoadResult> {
  const opts = { ...options, pipelining: 1 };
  // Off the main thread autocannon hands back raw results (its own workers mode aggregates them
  // on the main thread), so aggregate here to get latency percentiles.
  const result = aggregateResult([await autocannon(opts)], opts);
  const unexpectedStatus: Record<string, number> = {};
  for (const [status, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) {
    if (Number(status) !== expectedStatus && count > 0) unexpectedStatus[status] = count;
  }
  return {
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    unexpectedStatus,
    badBodies: 0,
  };
}

/** Context autocannon keeps per connection; with pipelining 1 it belongs to the one request in flight. */
interface Ctx {
  email?: string;
  id?: string;
}

async function create(target: LoadTarget & { seconds: number }): Promise<LoadResult> {
  phase += 1;
  let n = 0;
  let badBodies = 0;
  created = new Map();
  const result = await run(
    {
      url: target.url,
      connections: target.connections,
      duration: target.seconds,
      requests: [
        {
          method: "POST",
          path: "/v1/otp",
          headers: headers(target),
          setupRequest(request, context) {
            const user = `p${phase}-u${n++}`;
            const email = `${user}@bench.example.com`;
            (context as Ctx).email = email;
            return { ...request, body: JSON.stringify({ email, userId: user, channel: "email" }) };
          },
          onResponse(status, body, context) {
            const email = (context as Ctx).email;
            if (status !== 202) return;
            const id = (JSON.parse(body) as { id?: unknown }).id;
            if (typeof id === "string" && email) created.set(email, id);
            else badBodies++;
          },
        },
      ],
    },
    202,
  );
  return { ...result, badBodies };
}

/** Verifies every OTP of the last create phase once, with the code from its mail. */
async function verify(target: LoadTarget): Promise<LoadResult> {
  const queue = [...created].flatMap(([email, id]) => {
    const code = codes.get(email);
    return code ? [{ id, code }] : [];
  });
  if (queue.length === 0) throw new Error("verify: the create phase left no OTP with a received code");
  let next = 0;
  let badBodies = 0;
  // autocannon only notices that an `amount` run is over at its next 1 s sample tick, so its own
  // duration is rounded up to whole seconds; time the phase to the last response instead.
  const started = performance.now();
  let finished = started;
  const result = await run(
    {
      url: target.url,
      // autocannon refuses more connections than requests.
      connections: Math.max(1, Math.min(target.connections, queue.length)),
      // `amount` (not a duration) so each OTP is verified exactly once: a second correct verify
      // would be answered `valid: false`, which is no longer the work being measured.
      amount: queue.length,
      requests: [
        {
          method: "POST",
          path: "/v1/otp/verify",
          headers: headers(target),
          setupRequest(request, context) {
            // autocannon makes exactly `amount` requests; the fallback is an id that does not exist
            // (a 404 the report would show), never a silent repeat.
            const item = queue[next++] ?? { id: "missing", code: "000000" };
            (context as Ctx).id = item.id;
            return { ...request, body: JSON.stringify(item) };
          },
          onResponse(status, body) {
            finished = performance.now();
            if (status !== 200) return;
            const reply = JSON.parse(body) as { valid?: unknown; status?: unknown };
            if (reply.valid !== true || reply.status !== "approved") badBodies++;
          },
        },
      ],
    },
    200,
  );
  const seconds = (finished - started) / 1000;
  return { ...result, seconds, rps: result.requests / seconds, badBodies };
}

async function handle(request: Request): Promise<unknown> {
  switch (request.op) {
    case "startSink":
      return startSink();
    case "baseline":
      return run(
        {
          url: `${request.url}/echo`,
          connections: request.connections,
          duration: request.seconds,
          method: "POST",
          headers: headers(request),
          body: JSON.stringify({ hello: "world" }),
        },
        200,
      );
    case "create":
      return create(request);
    case "mailStatus":
      return { accepted: created.size, withCode: [...created.keys()].filter((email) => codes.has(email)).length };
    case "verify":
      return verify(request);
    case "close":
      await new Promise<void>((resolve) => (sink ? sink.close(() => resolve()) : resolve()));
      return null;
  }
}

parentPort!.on("message", ({ seq, ...request }: { seq: number } & Request) => {
  handle(request).then(
    (result) => parentPort!.postMessage({ seq, result }),
    (error: unknown) => parentPort!.postMessage({ seq, error: error instanceof Error ? error.stack : String(error) }),
  );
});
