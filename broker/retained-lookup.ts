/**
 * Retained messages for exact topics by direct lookup, not by a scan.
 *
 * On every SUBSCRIBE Aedes asks its persistence for the retained messages of
 * the subscribed patterns (`createRetainedStreamCombi`). The in-memory
 * aedes-persistence answers by walking its whole retained map and testing
 * each topic with a qlobber built for the pattern, even when the pattern is a
 * plain topic. A phone subscribes to exactly one plain topic (`sms/out/<id>`)
 * and keeps one retained status (`sms/device/<id>`), so a fleet reconnecting
 * at once costs phones × phones: 5,000 phones took over a minute to be
 * subscribed again.
 *
 * `fastRetainedLookup(aedes)` (or the persistence itself) keeps a Map topic → packet beside the
 * memory persistence's own (kept in step by wrapping its `storeRetained`,
 * with the same rules: an empty payload deletes) and answers patterns without
 * `+` or `#` from it. Wildcard patterns still go to the persistence's own
 * method, in the order they were asked for, so what a subscriber receives is
 * unchanged. aedes-persistence-redis already answers plain topics with one
 * HGET (or GET in a cluster), so a Redis persistence, like any persistence
 * this module does not know, is left as it is.
 */
import { Readable } from "node:stream";

/** A retained packet as the persistence stores it (Aedes reads cmd, qos, topic and payload). */
interface RetainedPacket {
  topic: string;
  payload: { length: number };
  [key: string]: unknown;
}

/** The in-memory aedes-persistence class (asyncPersistence.js), as far as this module uses it. */
interface MemoryBackend {
  storeRetained(packet: RetainedPacket): Promise<void>;
  destroy(...args: unknown[]): unknown;
}

/** An Aedes persistence: aedes-persistence's CallBackPersistence (around a backend) or a backend itself. */
interface Persistence {
  createRetainedStreamCombi(patterns: string[]): NodeJS.ReadableStream;
  createRetainedStream(pattern: string): NodeJS.ReadableStream;
  asyncPersistence?: unknown;
}

export type RetainedLookupMode =
  /** Plain topics are looked up directly (memory persistence). */
  | "direct"
  /** Installed, but sent back to the persistence's own scan by bypassFastRetainedLookup(). */
  | "bypassed"
  /** Not installed: a Redis persistence (already a direct lookup), or one this module does not know. */
  | "untouched";

interface State {
  /** fastRetainedLookup() has wrapped this (memory) persistence. */
  installed: boolean;
  /** bypassFastRetainedLookup() was called, possibly before fastRetainedLookup(). */
  bypass: boolean;
  /** Until the backend's existing retained messages have been copied, every lookup goes to the backend. */
  seeded: boolean;
}

/** Shared by name, so every copy of this module (and a benchmark's preload) sees one state per persistence. */
const STATE = Symbol.for("otpgate.retainedLookup");

function stateOf(persistence: object): State | undefined {
  return (persistence as { [STATE]?: State })[STATE];
}

function attach(persistence: object, state: State): State {
  Object.defineProperty(persistence, STATE, { value: state, enumerable: false, configurable: true });
  return state;
}

/** A topic filter with a wildcard level: answered by the persistence's own matcher. */
function hasWildcard(pattern: string): boolean {
  return pattern.includes("+") || pattern.includes("#");
}

/** The persistence of an Aedes broker, or `target` itself if it is a persistence (Aedes' typings leave `persistence` out). */
function persistenceOf(target: object): object {
  const { persistence, handle } = target as { persistence?: unknown; handle?: unknown };
  return typeof handle === "function" && typeof persistence === "object" && persistence !== null ? persistence : target;
}

/** The memory backend behind `persistence`, if that is what it is (matched by class name: the package is Aedes' own dependency). */
function memoryBackend(persistence: Persistence): MemoryBackend | undefined {
  const isMemory = (candidate: unknown): candidate is MemoryBackend =>
    typeof candidate === "object" && candidate !== null && candidate.constructor?.name === "MemoryPersistence" && typeof (candidate as MemoryBackend).storeRetained === "function";
  if (isMemory(persistence.asyncPersistence)) return persistence.asyncPersistence;
  if (isMemory(persistence)) return persistence;
  return undefined;
}

/**
 * Installs the direct lookup on `target`: an Aedes broker (its persistence) or the persistence
 * given to one. Returns `target`. Safe to call more than once, and at any time: retained messages
 * stored before are copied first, and lookups go to the persistence's own scan until they are.
 */
export function fastRetainedLookup<T extends object>(target: T): T {
  install(persistenceOf(target));
  return target;
}

function install(persistence: object): void {
  const target = persistence as Persistence;
  const existing = stateOf(persistence);
  if (existing?.installed) return;
  const state = existing ?? attach(persistence, { installed: false, bypass: false, seeded: false });
  const backend = memoryBackend(target);
  if (!backend) return;

  const retained = new Map<string, RetainedPacket>();
  /** Topics stored while the existing messages were being copied: what the copy read for them is older. */
  const storedDuringSeed = new Set<string>();
  let destroyed = false;

  const storeRetained = backend.storeRetained;
  backend.storeRetained = function (this: MemoryBackend, packet: RetainedPacket) {
    // The memory backend's storeRetained does all its work before its first (and only) await, so
    // its map has changed when the call returns: change ours in the same turn, by the same rule.
    const pending = storeRetained.call(this, packet);
    try {
      if (packet.payload.length === 0) retained.delete(packet.topic);
      else retained.set(packet.topic, Object.assign({}, packet));
      if (!state.seeded) storedDuringSeed.add(packet.topic);
    } catch {
      // A packet the backend could not read either (no payload): it has rejected and changed nothing.
    }
    return pending;
  };
  const destroy = backend.destroy;
  backend.destroy = function (this: MemoryBackend, ...args: unknown[]) {
    destroyed = true;
    retained.clear();
    return destroy.apply(this, args);
  };

  const scan = target.createRetainedStreamCombi.bind(target);
  target.createRetainedStreamCombi = (patterns: string[]) => {
    if (state.bypass || !state.seeded || destroyed) return scan(patterns);
    if (!patterns.some(hasWildcard)) return Readable.from(plainTopics(retained, patterns));
    return Readable.from(mixed(retained, patterns, scan));
  };
  state.installed = true;

  // Copy what the backend already holds (normally nothing: this is installed on a new broker).
  const copying = target.createRetainedStream("#");
  (async () => {
    for await (const packet of copying as AsyncIterable<RetainedPacket>) {
      if (!storedDuringSeed.has(packet.topic)) retained.set(packet.topic, Object.assign({}, packet));
    }
  })().then(
    () => {
      storedDuringSeed.clear();
      state.seeded = true;
    },
    // Left unseeded, every lookup keeps going to the backend's own scan: slower, never wrong.
    () => storedDuringSeed.clear(),
  );
}

/** Patterns without wildcards: at most one packet each, in the order asked, read when the stream is. */
function* plainTopics(retained: Map<string, RetainedPacket>, patterns: string[]): Generator<RetainedPacket> {
  for (const pattern of patterns) {
    const packet = retained.get(pattern);
    if (packet) yield packet;
  }
}

/** Plain topics looked up, each run of wildcard patterns handed to the backend, in the order asked. */
async function* mixed(retained: Map<string, RetainedPacket>, patterns: string[], scan: (patterns: string[]) => NodeJS.ReadableStream): AsyncGenerator<RetainedPacket> {
  for (let i = 0; i < patterns.length; ) {
    if (!hasWildcard(patterns[i]!)) {
      const packet = retained.get(patterns[i++]!);
      if (packet) yield packet;
      continue;
    }
    let end = i;
    while (end < patterns.length && hasWildcard(patterns[end]!)) end++;
    yield* scan(patterns.slice(i, end)) as AsyncIterable<RetainedPacket>;
    i = end;
  }
}

/**
 * Sends lookups back to the persistence's own scan (`bypass`, for a benchmark's baseline), or
 * ends that (`bypass = false`), whether fastRetainedLookup() is installed already or later. The
 * copy of the retained messages is kept up to date meanwhile, so only the lookup changes.
 */
export function bypassFastRetainedLookup(target: object, bypass = true): void {
  const persistence = persistenceOf(target);
  const state = stateOf(persistence) ?? attach(persistence, { installed: false, bypass: false, seeded: false });
  state.bypass = bypass;
}

/** How `target` (an Aedes broker or its persistence) answers retained lookups for plain topics now. */
export function retainedLookupMode(target: object): RetainedLookupMode {
  const state = stateOf(persistenceOf(target));
  if (!state?.installed) return "untouched";
  return state.bypass ? "bypassed" : "direct";
}
