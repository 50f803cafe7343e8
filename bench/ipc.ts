/**
 * Request/response over a forked child's IPC channel, for bench/phone-channel.ts and the
 * processes it forks (phones and HTTP client, idle MQTT clients, a bare broker). Separate
 * processes, not worker threads: each side gets its own event loop and its own memory, so what
 * one side measures is not shared with the other's work.
 *
 * Parent → child: `{ seq, op, args }`; child → parent: `{ seq, result }` or `{ seq, error }`.
 * Anything else either side sends (no `seq`) is an event for `onEvent` / `onParentEvent`.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";

export interface RpcChild {
  readonly child: ChildProcess;
  /** Settles once the child listens (messages sent before that would be lost). */
  readonly ready: Promise<void>;
  call<T>(op: string, args?: unknown): Promise<T>;
  /** Fire-and-forget message to the child (no answer). */
  send(event: unknown): void;
  /** Asks the child to close (`close` op), then waits for it to exit; kills it if it hangs. */
  stop(): Promise<void>;
}

/** Resolved once, so a child finds tsx whatever its working directory. */
const TSX_LOADER = import.meta.resolve("tsx");

/** Runs a .ts file in a new Node process with the tsx loader; `onEvent` hears messages without `seq`. */
export function forkTs(file: URL, options: { onEvent?: (event: unknown) => void; execArgv?: string[] } = {}): RpcChild {
  const child = fork(fileURLToPath(file), [], {
    execArgv: ["--import", TSX_LOADER, ...(options.execArgv ?? [])],
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  // Last resort if the bench dies without stopping its children: never leave one behind.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const pending = new Map<number, { resolve: (value: never) => void; reject: (error: Error) => void }>();
  let seq = 0;
  let listening: () => void = () => {};
  const ready = new Promise<void>((resolve, reject) => {
    listening = resolve;
    child.once("exit", (code, signal) => reject(new Error(`${path(file)} exited (${signal ?? code}) before it was ready`)));
  });
  // Observed here so an early exit is not an unhandled rejection before anyone awaits `ready`.
  ready.catch(() => {});
  child.on("message", (message: { seq?: number; result?: unknown; error?: string; ready?: true }) => {
    if (message.ready) return listening();
    if (message.seq === undefined) return options.onEvent?.(message);
    const waiter = pending.get(message.seq);
    pending.delete(message.seq);
    if (message.error !== undefined) waiter?.reject(new Error(message.error));
    else waiter?.resolve(message.result as never);
  });
  child.once("exit", (code, signal) => {
    process.off("exit", killOnExit);
    for (const waiter of pending.values()) waiter.reject(new Error(`${path(file)} exited (${signal ?? code})`));
    pending.clear();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    ready,
    call<T>(op: string, args?: unknown): Promise<T> {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.reject(new Error(`${path(file)} is not running`));
      return new Promise<T>((resolve, reject) => {
        pending.set(++seq, { resolve, reject });
        child.send({ seq, op, args });
      });
    },
    send(event) {
      if (child.connected) child.send(event as object);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await this.call("close").catch(() => {});
      if (child.connected) child.disconnect();
      await exited;
      clearTimeout(timer);
    },
  };
}

function path(file: URL): string {
  return fileURLToPath(file).split("/").slice(-2).join("/");
}

/**
 * The child's side: answers the parent's calls with `handle`. The `close` op is answered, then
 * the process exits; a parent that disappears takes the child with it.
 */
export function serve(handle: (op: string, args: never) => Promise<unknown>, onParentEvent?: (event: unknown) => void): void {
  if (!process.send) throw new Error("run this file through bench/phone-channel.ts (it needs an IPC channel)");
  process.on("message", (message: { seq?: number; op?: string; args?: unknown }) => {
    if (message.seq === undefined || message.op === undefined) return onParentEvent?.(message);
    const { seq, op, args } = message;
    handle(op, args as never).then(
      (result) => {
        process.send!({ seq, result: result ?? null });
        if (op === "close") setImmediate(() => process.exit(0));
      },
      (error: unknown) => process.send!({ seq, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  process.on("disconnect", () => process.exit(0));
  process.send({ ready: true });
}

/** Events a child sends to its parent unasked (progress, notifications). */
export function emit(event: object): void {
  process.send?.(event);
}
