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
 */
import { Duplex } from "node:stream";
import type { Socket } from "node:net";

export class GatedStream extends Duplex {
  readonly #socket: Socket;
  #open = false;
  #held: Array<{ chunk: Buffer; done: (error?: Error | null) => void }> = [];

  constructor(socket: Socket) {
    super();
    this.#socket = socket;
    socket.on("error", (error) => this.destroy(error));
    socket.on("close", () => this.destroy());
  }

  /** The server is trusted: release the held writes and start reading. */
  open(): void {
    if (this.#open || this.destroyed) return;
    this.#open = true;
    // Reading starts only now, so nothing the server sends early reaches the MQTT parser.
    this.#socket.on("data", (data: Buffer) => {
      if (!this.push(data)) this.#socket.pause();
    });
    this.#socket.on("end", () => this.push(null));
    const held = this.#held;
    this.#held = [];
    for (const { chunk, done } of held) this.#socket.write(chunk, done);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    if (this.#open) this.#socket.write(chunk, done);
    else this.#held.push({ chunk, done });
  }

  override _read(): void {
    if (this.#open) this.#socket.resume();
  }

  override _final(done: (error?: Error | null) => void): void {
    this.#socket.end();
    done();
  }

  override _destroy(error: Error | null, done: (error?: Error | null) => void): void {
    // Held writes are dropped with the connection: they were never sent.
    this.#held = [];
    this.#socket.destroy();
    done(error);
  }
}
