/**
 * Admission for new MQTT/TLS connections: at most `maxConnecting` are between
 * their first byte and their CONNACK at once; the rest wait, unread, in arrival
 * order (newest first under overload, below). Without it a fleet that
 * reconnects at once shares the CPU among every handshake, so all of them
 * finish late, past the phones' CONNACK timeouts, and
 * the retries (each a new handshake) make it worse. With it, the first phones
 * are served in milliseconds and the queue drains at the machine's pace.
 *
 * A socket waits at most `maxWaitMs`: after that its phone has probably given
 * up, and a handshake with a phone that has gone would be work for no one. It
 * is closed instead, which the phone sees as a failed attempt and backs off.
 * Nothing is read from a waiting socket, so a waiting stranger costs a file
 * descriptor and no CPU; `maxQueued` bounds those too.
 *
 * Under overload (the oldest waiting socket has waited more than `lifoAfterMs`)
 * the newest is served first. In arrival order every phone of a storm would
 * be served late, the ones that waited in the kernel's listen queue (a SYN
 * dropped there is retried after 1, 3, 7 s) past their own attempt timeout:
 * a handshake done for a phone that gives up just before its CONNACK. Served
 * newest first, a phone that is served is served at once, and the ones left
 * waiting are closed unserved at `maxWaitMs` and come back after their
 * back-off, which spreads the storm over time at no cost to the gateway.
 */
import type { Socket } from "node:net";

export interface ConnectionGateOptions {
  maxConnecting: number;
  maxWaitMs: number;
  maxQueued: number;
  /** Serve the newest first while the oldest has waited longer than this; default DEFAULT_LIFO_AFTER_MS. */
  lifoAfterMs?: number;
  now?: () => number;
}

/**
 * Far above a healthy wait (a few ms), far below a phone's 10 s attempt timeout. Against arrival
 * order, 10,000 phones at once (bench:phones part d): about 40 % fewer CONNACK timeouts in two
 * A/B pairs, but the run-to-run spread is as large (README, Benchmarks).
 */
export const DEFAULT_LIFO_AFTER_MS = 1_000;

/** A TLS handshake not done by then is dropped: Node's default is 120 s, a long hold on an admission slot. */
export const DEFAULT_TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ConnectionGateStats {
  connecting: number;
  queued: number;
  /** Closed unserved since start: waited past maxWaitMs, or arrived to a full queue. */
  shed: number;
}

interface Waiting {
  socket: Socket;
  since: number;
}

export class ConnectionGate {
  private readonly waiting: (Waiting | undefined)[] = [];
  private head = 0;
  private connecting = 0;
  private shed = 0;
  private readonly now: () => number;

  constructor(
    private readonly options: ConnectionGateOptions,
    /** Starts serving a socket; `done` must be called once its CONNACK is out, or it closed. */
    private readonly start: (socket: Socket, done: () => void) => void,
  ) {
    this.now = options.now ?? Date.now;
    this.lifoAfterMs = options.lifoAfterMs ?? DEFAULT_LIFO_AFTER_MS;
  }

  private readonly lifoAfterMs: number;

  get stats(): ConnectionGateStats {
    return { connecting: this.connecting, queued: this.waiting.length - this.head, shed: this.shed };
  }

  /** A new TCP connection, accepted with pauseOnConnect so nothing has been read from it. */
  offer(socket: Socket): void {
    // A reset while waiting must not become an uncaught error.
    socket.on("error", () => socket.destroy());
    if (this.waiting.length - this.head >= this.options.maxQueued) {
      this.shed++;
      socket.destroy();
      return;
    }
    this.waiting.push({ socket, since: this.now() });
    this.admit();
  }

  private admit(): void {
    while (this.connecting < this.options.maxConnecting) {
      const next = this.takeNext();
      if (!next) break;
      this.connecting++;
      let released = false;
      const done = () => {
        if (released) return;
        released = true;
        this.connecting--;
        // Not from inside the caller's stack: a burst of releases admits in one pass each.
        queueMicrotask(() => this.admit());
      };
      next.socket.once("close", done);
      this.start(next.socket, done);
    }
    // Compact once the consumed prefix dominates, so the array does not grow for ever.
    if (this.head > 1024 && this.head * 2 > this.waiting.length) {
      this.waiting.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The socket to serve next: stale ones at the front are closed first, then the oldest, or the newest under overload. */
  private takeNext(): Waiting | undefined {
    const now = this.now();
    while (this.head < this.waiting.length) {
      const oldest = this.waiting[this.head]!;
      if (!oldest.socket.destroyed && now - oldest.since <= this.options.maxWaitMs) break;
      this.waiting[this.head++] = undefined;
      if (!oldest.socket.destroyed) {
        this.shed++;
        oldest.socket.destroy();
      }
    }
    while (this.head < this.waiting.length) {
      const overloaded = now - this.waiting[this.head]!.since > this.lifoAfterMs;
      let next: Waiting;
      if (overloaded) {
        next = this.waiting.pop()!;
      } else {
        next = this.waiting[this.head]!;
        this.waiting[this.head++] = undefined;
      }
      if (!next.socket.destroyed) return next;
    }
    return undefined;
  }

  /** Closes every waiting socket (broker shutdown). */
  close(): void {
    for (let i = this.head; i < this.waiting.length; i++) this.waiting[i]?.socket.destroy();
    this.waiting.length = 0;
    this.head = 0;
  }
}
