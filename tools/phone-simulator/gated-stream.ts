/**
 * A duplex that holds everything written to it until `open()` is called.
 *
 * mqtt.js asks its stream builder for a stream synchronously and writes the
 * CONNECT packet (username and token) into it at once, long before a TLS
 * handshake can have finished. A raw TLS socket would queue that packet and
 * flush it right after 'secureConnect': only a handler that destroys the
 * socket synchronously, in that very event, stops it, and any check that is
 * asynchronous or merely runs later leaks the token to an unverified server
 * (the TLS tests catch exactly that). With this gate the CONNECT stays in
 * memory until the server has been verified; a server that fails verification
 * gets the gate destroyed and never receives a byte of MQTT.
 *
 * The socket may come later (`attach`): a pinned phone first learns its CA
 * from a probe connection and only then dials the connection it verifies.
 */
import { Duplex } from "node:stream";
import type { Socket } from "node:net";

export class GatedStream extends Duplex {
  #socket: Socket | undefined;
  #open = false;
  #held: Array<{ chunk: Buffer; done: (error?: Error | null) => void }> = [];

  constructor(socket?: Socket) {
    super();
    if (socket) this.attach(socket);
  }

  /** The connection to hold writes for; a gate takes one socket. */
  attach(socket: Socket): void {
    if (this.#socket) throw new Error("the gate already has a socket");
    if (this.destroyed) {
      socket.destroy();
      return;
    }
    this.#socket = socket;
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  /** The server is trusted: release the held writes and start reading. */
  open(): void {
    const socket = this.#socket;
    if (this.#open || this.destroyed || !socket) return;
    this.#open = true;
    // Reading starts only now, so nothing the server sends early reaches the MQTT parser.
    socket.on("data", (data: Buffer) => {
      if (!this.push(data)) socket.pause();
    });
    socket.on("end", () => this.push(null));
    const held = this.#held;
    this.#held = [];
    for (const { chunk, done } of held) socket.write(chunk, done);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.#open) this.#socket!.write(chunk, done);
    else this.#held.push({ chunk, done });
  }

  override _read(): void {
    if (this.#open) this.#socket!.resume();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#socket?.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // Held writes are dropped with the connection: they were never sent.
    this.#held = [];
    this.#socket?.destroy();
    done(error);
  }
}
