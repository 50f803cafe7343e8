/**
 * Bounds what an MQTT connection can make the gateway hold in memory.
 *
 * Aedes' parser (mqtt-packet) keeps a packet's bytes until all of them are in,
 * whatever length the packet claims: a CONNECT that claims 200 MB and then
 * streams zeros is buffered for as long as the bytes keep coming. The MQTT
 * fixed header states the claim in its first 2 to 5 bytes, so the guard reads
 * just those bytes of every packet as chunks arrive, skips the bodies without
 * touching them, and closes the connection as soon as a claim is over its limit.
 * Chunks are passed on as they are (no copy); the work is per packet, not per byte.
 */
import type { Readable } from "node:stream";
import { MAX_PAYLOAD_BYTES } from "./payloads.js";
import { MAX_TOPIC_BYTES } from "./topics.js";

/**
 * Largest remaining length of any packet once authenticated: a PUBLISH of the
 * largest payload any otpgate topic accepts (MAX_PAYLOAD_BYTES) to the longest
 * otpgate topic, with the topic's 2-byte length and the 2-byte packet id. A
 * bigger packet cannot be valid, so it is refused before it is read.
 */
export const MAX_PACKET_BYTES = MAX_PAYLOAD_BYTES + 2 + MAX_TOPIC_BYTES + 2;

export interface PacketLimits {
  /** Remaining length any packet may claim before the CONNACK (the CONNECT and anything pipelined after it). */
  preAuthPacketBytes: number;
  /** Bytes read in all before the CONNACK. */
  preAuthBytes: number;
  /** Remaining length any packet may claim after a CONNACK that accepted the client. */
  packetBytes: number;
}

export type PacketRefusal = "connect_too_large" | "preauth_too_large" | "packet_too_large" | "malformed_length";

/** MQTT control packet types by their number (the fixed header's high nibble), for log lines. */
const PACKET_TYPES = ["reserved", "connect", "connack", "publish", "puback", "pubrec", "pubrel", "pubcomp", "subscribe", "suback", "unsubscribe", "unsuback", "pingreq", "pingresp", "disconnect", "auth"];

export class PacketGuard {
  /** Set by the broker once it has sent a CONNACK accepting the client. */
  authenticated = false;
  refusal?: { reason: PacketRefusal; packet: string; claimed: number };
  private preAuthRead = 0;
  private packets = 0;
  /** Body bytes of the current packet not yet seen. */
  private body = 0;
  /** -1: the next byte is a fixed header's first byte; 0..3: that many remaining-length bytes read so far. */
  private lengthBytes = -1;
  private type = 0;
  private claimed = 0;

  constructor(private readonly limits: PacketLimits) {}

  /** Reads the headers in `chunk`; false when the connection must be closed (see `refusal`). */
  scan(chunk: Buffer): boolean {
    const size = chunk.length;
    if (!this.authenticated) {
      this.preAuthRead += size;
      if (this.preAuthRead > this.limits.preAuthBytes) return this.refuse("preauth_too_large", this.preAuthRead);
    }
    let at = 0;
    while (at < size) {
      if (this.body > 0) {
        const skip = Math.min(this.body, size - at);
        this.body -= skip;
        at += skip;
        continue;
      }
      const byte = chunk[at++]!;
      if (this.lengthBytes < 0) {
        this.type = byte >> 4;
        this.claimed = 0;
        this.lengthBytes = 0;
        continue;
      }
      // Remaining length: 7 bits a byte, least significant first, at most 4 bytes (MQTT 3.1.1, 2.2.3).
      this.claimed += (byte & 0x7f) * 128 ** this.lengthBytes;
      this.lengthBytes++;
      if (byte & 0x80) {
        if (this.lengthBytes === 4) return this.refuse("malformed_length", this.claimed);
        continue;
      }
      this.lengthBytes = -1;
      if (!this.check()) return false;
      this.body = this.claimed;
      this.packets++;
    }
    return true;
  }

  private check(): boolean {
    if (this.authenticated) return this.claimed <= this.limits.packetBytes || this.refuse("packet_too_large", this.claimed);
    if (this.claimed <= this.limits.preAuthPacketBytes) return true;
    return this.refuse(this.packets === 0 ? "connect_too_large" : "preauth_too_large", this.claimed);
  }

  private refuse(reason: PacketRefusal, claimed: number): false {
    this.refusal = { reason, packet: PACKET_TYPES[this.type] ?? "unknown", claimed };
    return false;
  }
}

/**
 * Puts `guard` in front of `stream`'s readable side. Every Readable receives
 * its data through push() (net and TLS sockets from libuv, ws's stream from
 * each message), so the chunks are seen before anything buffers them; a
 * refused chunk is never pushed, and the stream is destroyed at once.
 */
export function guardStream(stream: Readable, guard: PacketGuard, onRefused: (refusal: NonNullable<PacketGuard["refusal"]>) => void): void {
  const push = stream.push;
  stream.push = function guardedPush(this: Readable, chunk: unknown, encoding?: BufferEncoding): boolean {
    if (chunk === null || chunk === undefined) return push.call(this, chunk, encoding);
    if (guard.refusal) return false;
    if (!guard.scan(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, encoding))) {
      onRefused(guard.refusal!);
      this.destroy();
      return false;
    }
    return push.call(this, chunk, encoding);
  };
}
