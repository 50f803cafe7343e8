/**
 * Keeps each device's presence in the store from what the broker sees:
 * connect and disconnect, the phone's retained `sms/device/<id>` status and
 * its will. A connection's own session id guards against an old connection's
 * close (or will) marking a newer one offline. Every node refreshes `seenAt`
 * for the phones it holds, so a node that dies leaves presences that go stale.
 */
import type { FastifyBaseLogger } from "fastify";
import type { DeviceStatusPayload } from "../../broker/payloads.js";
import type { DevicePresence, PresenceWrite, Store } from "../store/store.js";

interface PresenceChange {
  onlyIfSession: string | undefined;
  /** The new presence, or null for no change. */
  next: (previous: DevicePresence | null, now: string) => DevicePresence | null;
}

/**
 * A device's changes of one batch applied in order to what the store held:
 * the one write they make, if any. It is unconditional when any change was
 * (a new connection wins whatever was stored); when all were guarded, it is
 * guarded by the session they matched, so a newer connection recorded by
 * another node since the read is not overwritten.
 */
export function applyChanges(deviceId: string, stored: DevicePresence | null, changes: readonly PresenceChange[], now: string): PresenceWrite | null {
  let state = stored;
  let changed = false;
  let unconditional = false;
  let guard: string | undefined;
  for (const { onlyIfSession, next } of changes) {
    if (onlyIfSession !== undefined && state?.session !== onlyIfSession) continue;
    const updated = next(state, now);
    if (!updated) continue;
    if (onlyIfSession === undefined) unconditional = true;
    else guard ??= onlyIfSession;
    state = updated;
    changed = true;
  }
  if (!changed || !state) return null;
  return unconditional ? { deviceId, presence: state } : { deviceId, presence: state, onlyIfSession: guard };
}

export interface PresenceSource {
  on(event: "deviceConnected" | "deviceDisconnected", listener: (deviceId: string, session: string) => void): unknown;
  on(event: "deviceStatus", listener: (deviceId: string, status: DeviceStatusPayload, session: string) => void): unknown;
}

export class PresenceTracker {
  /** Phones connected to this node: device id → session. */
  private readonly local = new Map<string, string>();
  /** Changes not yet written, per device in the order reported. */
  private pending = new Map<string, PresenceChange[]>();
  /** The batch that will take the changes now pending, once the one before it is written. */
  private nextBatch?: Promise<void>;
  private lastBatch: Promise<void> = Promise.resolve();
  private readonly refresher: NodeJS.Timeout;

  constructor(
    private readonly deps: { store: Store; logger: FastifyBaseLogger; refreshMs: number; now?: () => Date },
    source: PresenceSource,
  ) {
    source.on("deviceConnected", (deviceId, session) => {
      this.local.set(deviceId, session);
      // A new connection wins whatever was stored.
      this.change(deviceId, undefined, (previous, now) => ({ ...previous, online: true, session, since: now, seenAt: now }));
    });
    source.on("deviceDisconnected", (deviceId, session) => {
      if (this.local.get(deviceId) === session) this.local.delete(deviceId);
      this.change(deviceId, session, (previous, now) => (previous ? { ...previous, online: false, since: now } : null));
    });
    source.on("deviceStatus", (deviceId, status, session) => {
      const current = this.local.get(deviceId) === session;
      // A will or an "offline" from an old connection says nothing about the current one.
      if (!status.online && !current) return;
      this.change(deviceId, current ? undefined : session, (previous, now) => {
        const base: DevicePresence = previous ?? { online: status.online, session, since: now };
        return {
          ...base,
          ...(status.online ? { online: true, session } : { online: false, since: now }),
          ...(status.battery !== undefined ? { battery: status.battery } : {}),
          ...(status.signal !== undefined ? { signal: status.signal } : {}),
          ...(status.sims ? { sims: status.sims } : {}),
          ...(status.app ? { app: status.app } : {}),
          reportedAt: status.at ?? now,
          seenAt: now,
        };
      });
    });
    this.refresher = setInterval(() => this.refresh(), deps.refreshMs);
    this.refresher.unref();
  }

  private now(): string {
    return (this.deps.now?.() ?? new Date()).toISOString();
  }

  /**
   * Queues a read-change-write. With `onlyIfSession` the change applies only
   * while the stored presence is still that connection's: another node may
   * have recorded a newer connection in between. Changes are written in
   * batches, one per turn of the event loop and one at a time, in the order
   * the broker reported them: a fleet reconnecting at once costs a read and a
   * transaction per batch, not per phone.
   */
  private change(deviceId: string, onlyIfSession: string | undefined, next: PresenceChange["next"]): Promise<void> {
    const list = this.pending.get(deviceId);
    if (list) list.push({ onlyIfSession, next });
    else this.pending.set(deviceId, [{ onlyIfSession, next }]);
    if (!this.nextBatch) {
      const batch = this.lastBatch
        .then(() => new Promise<void>((resolve) => setImmediate(resolve)))
        .then(() => {
          this.nextBatch = undefined;
          const changes = this.pending;
          this.pending = new Map();
          return this.write(changes);
        });
      this.nextBatch = batch;
      this.lastBatch = batch;
    }
    return this.nextBatch;
  }

  private async write(changes: Map<string, PresenceChange[]>): Promise<void> {
    try {
      const ids = [...changes.keys()];
      const stored = await this.deps.store.getPresence(ids);
      const now = this.now();
      const writes: PresenceWrite[] = [];
      ids.forEach((deviceId, i) => {
        const write = applyChanges(deviceId, stored[i] ?? null, changes.get(deviceId)!, now);
        if (write) writes.push(write);
      });
      if (writes.length > 0) await this.deps.store.setPresences(writes);
    } catch (error) {
      this.deps.logger.error({ err: error, devices: changes.size }, "presence update failed");
    }
  }

  /** Marks the phones this node holds as still there. */
  async refresh(): Promise<void> {
    await Promise.all(
      [...this.local].map(([deviceId, session]) =>
        this.change(deviceId, session, (previous, now) => (previous?.online ? { ...previous, seenAt: now } : null)),
      ),
    );
  }

  /** Waits for pending writes (tests, shutdown). */
  async settle(): Promise<void> {
    while (this.nextBatch) await this.nextBatch;
    await this.lastBatch;
  }

  close(): void {
    clearInterval(this.refresher);
  }
}
