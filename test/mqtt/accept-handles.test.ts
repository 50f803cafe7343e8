import { createConnection, createServer, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { extraAcceptHandles } from "../../broker/accept-handles.js";

const opened: (Server | Socket)[] = [];
afterEach(async () => {
  const items = opened.splice(0);
  // Sockets first: a server's close waits for its connections.
  for (const item of items) if ("destroy" in item) item.destroy();
  await Promise.all(items.map((item) => ("destroy" in item ? undefined : new Promise((resolve) => item.close(resolve)))));
});

function listening(onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ pauseOnConnect: true }, onConnection);
  opened.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", 64, () => resolve(server)));
}

/**
 * `clients` connections complete in the kernel while the loop is blocked; how many of them are
 * accepted in the first event-loop turn that follows (before a setImmediate queued now runs).
 */
async function acceptedInOneTurn(port: number, accepted: () => number, clients: number): Promise<number> {
  for (let i = 0; i < clients; i++) {
    const socket = createConnection({ port, host: "127.0.0.1" });
    socket.on("error", () => undefined);
    opened.push(socket);
  }
  // The handshakes are done by the kernel, not by this loop: wait for them without turning it.
  const until = Date.now() + 200;
  while (Date.now() < until) {
    /* blocked on purpose */
  }
  // From one check phase to the next: exactly one poll phase, where connections are accepted.
  return new Promise((resolve) =>
    setImmediate(() => {
      const before = accepted();
      setImmediate(() => resolve(accepted() - before));
    }),
  );
}

describe("extra accept handles on one listening socket", () => {
  it("without them the loop accepts a single connection a turn (libuv), which is why they exist", async () => {
    let accepted = 0;
    const server = await listening((socket) => {
      accepted++;
      opened.push(socket);
    });
    const port = (server.address() as { port: number }).port;
    expect(await acceptedInOneTurn(port, () => accepted, 8)).toBe(1);
  });

  it("with seven more, one turn accepts eight, each by a server made for it, and all are served", async () => {
    let accepted = 0;
    const sockets: Socket[] = [];
    const onConnection = (socket: Socket) => {
      accepted++;
      sockets.push(socket);
      opened.push(socket);
    };
    const server = await listening(onConnection);
    const port = (server.address() as { port: number }).port;
    const made: Server[] = [];
    const extras = await extraAcceptHandles(server, 7, 64, () => {
      const copy = createServer({ pauseOnConnect: true }, onConnection);
      made.push(copy);
      return copy;
    });
    opened.push(...extras);
    expect(extras).toHaveLength(7);
    expect(extras).toEqual(made);
    expect(await acceptedInOneTurn(port, () => accepted, 8)).toBe(8);
    // Accepted by a copy, a connection is an ordinary socket: paused as asked, readable when resumed.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(sockets.every((socket) => socket.isPaused())).toBe(true);
    const client = createConnection({ port, host: "127.0.0.1" });
    opened.push(client);
    const echoed = new Promise<string>((resolve) => client.once("data", (data) => resolve(data.toString())));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const last = sockets.at(-1)!;
    last.resume();
    last.once("data", (data) => last.write(`echo ${data.toString()}`));
    client.write("hello");
    expect(await echoed).toBe("echo hello");
  });

  it("closing the original and its copies frees the port", async () => {
    const server = await listening(() => undefined);
    const port = (server.address() as { port: number }).port;
    const extras = await extraAcceptHandles(server, 3, 64, () => createServer());
    await Promise.all([server, ...extras].map((s) => new Promise((resolve) => s.close(resolve))));
    opened.length = 0;
    const again = createServer();
    opened.push(again);
    await new Promise<void>((resolve, reject) => {
      again.once("error", reject);
      again.listen(port, "127.0.0.1", () => resolve());
    });
  });

  it("refuses a server that is not listening", async () => {
    await expect(extraAcceptHandles(createServer(), 2, 64, () => createServer())).rejects.toThrow(/not listening/);
  });
});
