/**
 * Admission control shared by every MQTT listener (TLS, plain TCP, WebSocket):
 * a cap on open connections per node, a cap on connections per source address
 * that have not been accepted by a CONNACK yet, and the failed-login back-off.
 * A connection is judged here when it is accepted, before a byte of it is read.
 */
import { isIPv6 } from "node:net";
import { addressMatcher, plainAddress } from "../api/config/address-list.js";
import { LoginBackoff } from "./login-backoff.js";
import { PacketGuard, MAX_PACKET_BYTES } from "./packet-guard.js";

export interface AdmissionLimits {
  /** Open MQTT connections on this node, authenticated or not. */
  maxConnections: number;
  /** Connections per source not yet accepted by a CONNACK (queued for TLS admission included); 0 = no cap. */
  maxUnauthenticatedPerSource: number;
  /** Remaining length the first packet (the CONNECT) may claim; anything before the CONNACK is held to it. */
  maxConnectBytes: number;
  /** Silence allowed between a connection's start (after TLS) and a complete CONNECT. */
  connectTimeoutMs: number;
  /** Failed logins from one source, or for one username, before the back-off starts. */
  loginBackoffAfter: number;
  loginBackoffMaxMs: number;
  /** Addresses and CIDRs exempt from the per-source limits (they still count towards the node's). */
  exemptSources: string[];
}

export const DEFAULT_LIMITS: AdmissionLimits = {
  maxConnections: 20_000,
  maxUnauthenticatedPerSource: 64,
  maxConnectBytes: 4096,
  connectTimeoutMs: 10_000,
  loginBackoffAfter: 10,
  loginBackoffMaxMs: 30_000,
  exemptSources: ["127.0.0.0/8", "::1"],
};

export type AdmissionRefusal = "node_limit" | "source_limit" | "login_backoff";

/** One MQTT connection from accept to close. */
export interface Connection {
  /** Source key: the IPv4 address, or the /64 of an IPv6 one. */
  readonly source: string;
  readonly exempt: boolean;
  readonly guard: PacketGuard;
  authenticated: boolean;
  closed: boolean;
  /** Frees the connection's TLS admission slot, if it holds one. */
  releaseAdmission?: () => void;
}

export class Admission {
  readonly backoff: LoginBackoff;
  private open = 0;
  private readonly unauthenticated = new Map<string, number>();
  private readonly isExempt: (address: string | undefined) => boolean;
  private readonly sweeper: NodeJS.Timeout;

  constructor(readonly limits: AdmissionLimits) {
    this.isExempt = addressMatcher(limits.exemptSources);
    this.backoff = new LoginBackoff({ after: limits.loginBackoffAfter, maxMs: limits.loginBackoffMaxMs, forgetMs: 10 * limits.loginBackoffMaxMs });
    this.sweeper = setInterval(() => this.backoff.sweep(Date.now()), 60_000);
    this.sweeper.unref();
  }

  get connections(): number {
    return this.open;
  }

  /**
   * A new connection from `address`: refused (why), or tracked until `closed()`.
   * Call with the raw socket's remote address, before any TLS or MQTT work.
   */
  accept(address: string | undefined): Connection | { refused: AdmissionRefusal; source: string } {
    const plain = address ? plainAddress(address) : "unknown";
    const source = sourceKey(plain);
    const exempt = this.isExempt(address);
    if (this.open >= this.limits.maxConnections) return { refused: "node_limit", source };
    if (!exempt) {
      if (this.backoff.blockedFor(source, Date.now()) > 0) return { refused: "login_backoff", source };
      const waiting = this.unauthenticated.get(source) ?? 0;
      if (this.limits.maxUnauthenticatedPerSource > 0 && waiting >= this.limits.maxUnauthenticatedPerSource) return { refused: "source_limit", source };
      this.unauthenticated.set(source, waiting + 1);
    }
    this.open++;
    const guard = new PacketGuard({ preAuthPacketBytes: this.limits.maxConnectBytes, preAuthBytes: 4 * this.limits.maxConnectBytes, packetBytes: MAX_PACKET_BYTES });
    return { source, exempt, guard, authenticated: false, closed: false };
  }

  /** Its CONNACK accepted the client: it no longer counts as unauthenticated, and every packet is held to MAX_PACKET_BYTES. */
  authenticated(connection: Connection): void {
    if (connection.authenticated || connection.closed) return;
    connection.authenticated = true;
    connection.guard.authenticated = true;
    this.leaveUnauthenticated(connection);
  }

  closed(connection: Connection): void {
    if (connection.closed) return;
    connection.closed = true;
    this.open--;
    if (!connection.authenticated) this.leaveUnauthenticated(connection);
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private leaveUnauthenticated(connection: Connection): void {
    if (connection.exempt) return;
    const left = (this.unauthenticated.get(connection.source) ?? 1) - 1;
    if (left > 0) this.unauthenticated.set(connection.source, left);
    else this.unauthenticated.delete(connection.source);
  }
}

/**
 * One key per party: an IPv4 address, or the /64 an IPv6 address is in (one
 * host usually holds a whole /64, so its addresses are not separate sources).
 */
export function sourceKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = "", tail = ""] = address.split("::");
  const left = head ? head.split(":") : [];
  const right = address.includes("::") && tail ? tail.split(":") : [];
  const groups = address.includes("::") ? [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":")}::/64`;
}
