/**
 * The stream builder handed to mqtt.js: every (re)connection goes through it.
 *
 * Why a custom builder rather than mqtt.js's `mqtts://` support: pinning. Node
 * can only verify a server against CA certificates it holds, and a phone that
 * was provisioned with a fingerprint holds none. So for `mqtts:` we run
 * `tls.connect` with Node's own rejection off and decide ourselves when the
 * handshake completes (`secureConnect`), while mqtt.js's CONNECT packet, which
 * carries the token, waits in a GatedStream:
 *
 *   - pinned (`caFingerprint`): pinning.ts checks the presented chain;
 *   - `ca` or no trust option: Node's verification against that CA (or the
 *     system store) still runs, hostname included, and we require
 *     `socket.authorized`.
 *
 * Either way the gate opens only for a trusted server; otherwise it is
 * destroyed with a TlsTrustError and the server never sees an MQTT byte.
 * `mqtt:` (plain, for loopback tests and the dev broker) is a bare TCP socket.
 */
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { GatedStream } from "./gated-stream.js";
import { checkPinnedChain, presentedChain } from "./pinning.js";

export const TLS_UNTRUSTED = "ERR_OTPGATE_TLS_UNTRUSTED";

/** The server could not be trusted. Retrying the same server will not help. */
export class TlsTrustError extends Error {
  override name = "TlsTrustError";
  readonly code = TLS_UNTRUSTED;
}

export interface BrokerTarget {
  protocol: "mqtt:" | "mqtts:";
  host: string;
  port: number;
}

export type Trust = { kind: "pinned"; fingerprint: string } | { kind: "ca"; ca: string | Buffer } | { kind: "system" };

export function parseBrokerUrl(value: string): BrokerTarget {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`url ${JSON.stringify(value)} is not a URL; expected mqtts://host:port or mqtt://host:port`);
  }
  if (url.protocol !== "mqtt:" && url.protocol !== "mqtts:") {
    throw new Error(`url must start with mqtts:// or mqtt://, got ${url.protocol}//`);
  }
  if (url.hostname === "") throw new Error("url has no host");
  const port = url.port === "" ? (url.protocol === "mqtts:" ? 8883 : 1883) : Number(url.port);
  return { protocol: url.protocol, host: url.hostname.replace(/^\[|\]$/g, ""), port };
}

/** mqtts://host:port as a log line shows it, an IPv6 host in brackets. */
export function describeTarget(target: BrokerTarget): string {
  return `${target.protocol}//${target.host.includes(":") ? `[${target.host}]` : target.host}:${target.port}`;
}

/**
 * The brokers a phone may use (the provisioning URI's `mqtt` list), in order,
 * and which one the next connection attempt goes to. An attempt that ends
 * without a connection (refused, a TLS failure, a timeout, a refused CONNECT)
 * moves on to the next broker, after the last back to the first; a connection
 * that was up and then dropped is retried on the same broker first. Pure: the
 * phone reports outcomes, the delays between attempts stay the phone's backoff.
 */
export class BrokerRotation<T> {
  readonly targets: readonly T[];
  #index = 0;

  constructor(targets: readonly T[]) {
    if (targets.length === 0) throw new Error("give at least one broker URL");
    this.targets = [...targets];
  }

  get index(): number {
    return this.#index;
  }

  get current(): T {
    return this.targets[this.#index]!;
  }

  get size(): number {
    return this.targets.length;
  }

  /** The attempt on the current broker failed: the next attempt goes to the next one, cycling. */
  advance(): T {
    this.#index = (this.#index + 1) % this.targets.length;
    return this.current;
  }
}

/**
 * `onSocket` receives each raw socket so the phone can destroy it abruptly
 * (kill(): no DISCONNECT, the broker publishes the will).
 */
export function createStreamBuilder(
  target: BrokerTarget,
  trust: Trust,
  onSocket: (socket: net.Socket) => void,
): () => Duplex {
  return () => {
    if (target.protocol === "mqtt:") {
      const socket = net.connect({ host: target.host, port: target.port, noDelay: true });
      onSocket(socket);
      return socket;
    }

    const socket = tls.connect({
      host: target.host,
      port: target.port,
      // SNI must be a DNS name; Node warns and ignores it for IP addresses.
      ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
      // Our check below replaces the automatic rejection; nothing is written before it.
      rejectUnauthorized: false,
      ...(trust.kind === "ca" ? { ca: trust.ca } : {}),
    });
    // Acks are small packets; Nagle's algorithm would hold each one ~40 ms waiting for the previous ACK.
    socket.setNoDelay(true);
    onSocket(socket);
    const gate = new GatedStream(socket);
    socket.once("secureConnect", () => {
      const problem = judgeServer(socket, target.host, trust);
      if (problem === null) gate.open();
      else gate.destroy(new TlsTrustError(`refusing ${target.host}:${target.port}: ${problem}`));
    });
    return gate;
  };
}

function judgeServer(socket: tls.TLSSocket, host: string, trust: Trust): string | null {
  if (trust.kind === "pinned") {
    const verdict = checkPinnedChain(presentedChain(socket.getPeerCertificate(true)), {
      fingerprint: trust.fingerprint,
      host,
      now: Date.now(),
    });
    return verdict.ok ? null : verdict.reason;
  }
  // Node ran chain and hostname verification during the handshake and recorded the outcome.
  if (socket.authorized) return null;
  return `certificate not trusted (${String(socket.authorizationError ?? "unknown reason")})`;
}
