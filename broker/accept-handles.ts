/**
 * More handles on one listening socket, so the event loop accepts more than
 * one connection a turn.
 *
 * libuv accepts a single connection per loop iteration and listening handle
 * (libuv 1.45, in Node 20). A gateway busy with TLS handshakes turns its loop
 * about once per handshake, so during a reconnect storm it accepted ~600
 * connections a second: the kernel's listen queue stayed full, SYNs were
 * dropped and retried after 1, 3, 7 s, and every phone reached the admission
 * gate (connection-gate.ts) seconds old, too late for it to choose whom to
 * serve. With `count` more descriptors of the same socket in the loop's epoll
 * set, each turn accepts up to `count + 1`, so connections wait at the gate,
 * unread and in arrival order, instead of in the kernel.
 *
 * Node 20 has no dup(2) and no `reusePort`; a descriptor passed over an IPC
 * channel arrives as a new descriptor of the same socket (SCM_RIGHTS). A short-lived
 * child process sends the raw handle back `count` times and exits; the child
 * never listens or accepts. Each copy is listened on with the same backlog,
 * since listen(2) on any descriptor sets the socket's.
 */
import { spawn } from "node:child_process";
import type { Server as NetServer } from "node:net";

/** The child: returns every handle it is sent, then leaves when the parent disconnects. */
const ECHO_HANDLES = `process.on("message", (message, handle) => process.send(message, handle, () => handle.close()));`;

/** A TCP server's libuv handle: internal to Node, but the documented `server.listen(handle)` and `subprocess.send(message, handle)` take it. */
type RawHandle = object;

function rawHandle(server: NetServer): RawHandle {
  const handle = (server as unknown as { _handle?: RawHandle | null })._handle;
  if (!handle) throw new Error("the server is not listening");
  return handle;
}

/**
 * `count` more handles for `listening` (already listening), each listened on by a server made with
 * `makeServer`; they accept from the same queue. Close them with the original.
 */
export async function extraAcceptHandles(listening: NetServer, count: number, backlog: number, makeServer: () => NetServer): Promise<NetServer[]> {
  if (count <= 0) return [];
  const handle = rawHandle(listening);
  const child = spawn(process.execPath, ["-e", ECHO_HANDLES], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  try {
    const copies = await new Promise<RawHandle[]>((resolve, reject) => {
      const received: RawHandle[] = [];
      child.once("error", reject);
      child.once("exit", (code) => reject(new Error(`the handle-copy process exited early (${code})`)));
      child.on("message", (_message, copy) => {
        if (!copy) return reject(new Error("the handle-copy process sent a message without a handle"));
        received.push(copy);
        if (received.length === count) resolve(received);
      });
      for (let i = 0; i < count; i++) child.send({ copy: i }, handle as never);
    });
    return await Promise.all(
      copies.map(
        (copy) =>
          new Promise<NetServer>((resolve, reject) => {
            const server = makeServer();
            server.once("error", reject);
            server.listen(copy as never, backlog, () => {
              server.off("error", reject);
              resolve(server);
            });
          }),
      ),
    );
  } finally {
    child.removeAllListeners("exit");
    // Its copies of the socket go with it: once it is gone, closing ours frees the port.
    const gone = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once("exit", resolve));
    if (child.connected) child.disconnect();
    await gone;
  }
}
