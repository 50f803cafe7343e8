/**
 * The stream builder handed to mqtt.js: every (re)connection goes through it.
 *
 * Why a custom builder rather than mqtt.js's `mqtts://` support: pinning, and
 * holding the token back. Node can only verify a server against CA
 * certificates it holds, and a phone that was provisioned with a fingerprint
 * holds none at first. Every `mqtts:` connection is verified by Node itself
 * (chain and checkServerIdentity) and judged when the handshake completes
 * (`secureConnect`: `socket.authorized`), while mqtt.js's CONNECT packet, which
 * carries the token, waits in a GatedStream:
 *
 *   - pinned (`caFingerprint`): the CA with the pinned fingerprint is the only
 *     `ca`. The first connection learns it from the chain the broker presents
 *     (a probe that sends nothing, pinning.ts) and keeps it for later ones;
 *   - `ca`: that CA is the only `ca`; no trust option: the system store.
 *
 * The gate opens only for a trusted server; otherwise it is destroyed with a
 * TlsTrustError and the server never sees an MQTT byte.
 * `mqtt:` (plain, for loopback tests and the dev broker) is a bare TCP socket.
 */
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { GatedStream } from "./gated-stream.js";
import { describeVerifyError, findPinnedCa, presentedChain } from "./pinning.js";

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

/** `pinned.ca` is the pinned CA once a connection has learnt it. */
export type Trust = { kind: "pinned"; fingerprint: string; ca?: string } | { kind: "ca"; ca: string | Buffer } | { kind: "system" };

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

    const gate = new GatedStream();
    const refuse = (problem: string) => gate.destroy(new TlsTrustError(`refusing ${target.host}:${target.port}: ${problem}`));
    const connectVerified = (ca: string | Buffer | undefined) => {
      const socket = connectTls(target, ca);
      onSocket(socket);
      gate.attach(socket);
      socket.once("secureConnect", () => {
        // Node ran chain and hostname verification during the handshake and recorded the outcome.
        if (socket.authorized) gate.open();
        else refuse(describeVerifyError(String(socket.authorizationError ?? "unknown reason"), target.host));
      });
    };

    if (trust.kind !== "pinned") {
      connectVerified(trust.kind === "ca" ? trust.ca : undefined);
      return gate;
    }
    if (trust.ca !== undefined) {
      connectVerified(trust.ca);
      return gate;
    }
    // The probe: its chain only shows which certificate carries the pin; not one byte is written to it.
    const probe = connectTls(target, undefined);
    onSocket(probe);
    let probed = false;
    const dropProbe = () => probe.destroy();
    gate.once("close", dropProbe);
    probe.on("error", (error) => {
      if (!probed) gate.destroy(error);
    });
    probe.once("close", () => {
      if (!probed) gate.destroy(new Error(`${target.host}:${target.port} closed the connection during the TLS handshake`));
    });
    probe.once("secureConnect", () => {
      probed = true;
      const pinned = findPinnedCa(presentedChain(probe.getPeerCertificate(true)), trust.fingerprint);
      gate.off("close", dropProbe);
      probe.destroy();
      if (gate.destroyed) return;
      if (!pinned.ok) {
        refuse(pinned.reason);
        return;
      }
      trust.ca = pinned.pem;
      connectVerified(pinned.pem);
    });
    return gate;
  };
}

/**
 * A TLS connection verified by Node against `ca` only (the system store when
 * undefined). Rejection is left to the caller, at `secureConnect`, so that a
 * refusal carries the reason and counts as a TlsTrustError.
 */
function connectTls(target: BrokerTarget, ca: string | Buffer | undefined): tls.TLSSocket {
  const socket = tls.connect({
    host: target.host,
    port: target.port,
    // SNI must be a DNS name; Node warns and ignores it for IP addresses. checkServerIdentity checks the host either way.
    ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
    rejectUnauthorized: false,
    ...(ca !== undefined ? { ca } : {}),
  });
  // Acks are small packets; Nagle's algorithm would hold each one ~40 ms waiting for the previous ACK.
  socket.setNoDelay(true);
  return socket;
}
