/**
 * Keeps each device's presence in the store from what the broker sees:
 * connect and disconnect, the phone's retained `sms/device/<id>` status and
 * its will. A connection's own session id guards against an old connection's
 * close (or will) marking a newer one offline. Every node refreshes `seenAt`
 * for the phones it holds, so a node that dies leaves presences that go stale.
 */
import type { FastifyBaseLogger } from "fastify";
import type { DeviceStatusPayload } from "../../broker/payloads.js";
import type { DevicePresence, Store } from "../store/store.js";

export interface PresenceSource {
  on(event: "deviceConnected" | "deviceDisconnected", listener: (deviceId: string, session: string) => void): unknown;
  on(event: "deviceStatus", listener: (deviceId: string, status: DeviceStatusPayload, session: string) => void): unknown;
}

export class PresenceTracker {
  /** Phones connected to this node: device id → session. */
  private readonly local = new Map<string, string>();
  /** One write at a time per device, in the order the broker reported them. */
  private readonly chains = new Map<string, Promise<void>>();
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
   * Read, change, write. With `onlyIfSession` the write lands only while the
   * stored presence is still that connection's: another node may have
   * recorded a newer connection in between.
   */
  private change(
    deviceId: string,
    onlyIfSession: string | undefined,
    next: (previous: DevicePresence | null, now: string) => DevicePresence | null,
  ): Promise<void> {
    const run = (this.chains.get(deviceId) ?? Promise.resolve()).then(async () => {
      const [previous] = await this.deps.store.getPresence([deviceId]);
      if (onlyIfSession !== undefined && previous?.session !== onlyIfSession) return;
      const updated = next(previous ?? null, this.now());
      if (updated) await this.deps.store.setPresence(deviceId, updated, onlyIfSession);
    });
    const guarded = run.catch((error: unknown) => this.deps.logger.error({ err: error, device: deviceId }, "presence update failed"));
    this.chains.set(deviceId, guarded);
    void guarded.finally(() => {
      if (this.chains.get(deviceId) === guarded) this.chains.delete(deviceId);
    });
    return guarded;
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
    while (this.chains.size > 0) await Promise.all([...this.chains.values()]);
  }

  close(): void {
    clearInterval(this.refresher);
  }
}
