/**
 * PresenceTracker on a real SQLite store, fed events as the broker emits them:
 * a fleet's events become one batch, and batching keeps the rules of one
 * change at a time (order, the newer connection wins, an old close is ignored).
 */
import { EventEmitter } from "node:events";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { DeviceStatusPayload } from "../../broker/payloads.js";
import { PresenceTracker, applyChanges } from "../../api/devices/presence-tracker.js";
import { createSealer } from "../../api/security/sealing.js";
import { SqliteStore } from "../../api/store/sqlite-store.js";
import type { PresenceWrite } from "../../api/store/store.js";

type Events = {
  deviceConnected: [string, string];
  deviceDisconnected: [string, string];
  deviceStatus: [string, DeviceStatusPayload, string];
};

const opened: { close(): void }[] = [];
afterEach(() => {
  for (const item of opened.splice(0)) item.close();
});

function setUp() {
  const store = new SqliteStore({ file: path.join(mkdtempSync(path.join(tmpdir(), "otpgate-presence-")), "otpgate.db"), sealer: createSealer("presence-tracker-test-secret-0123456789") });
  // Counts the store's writes, as the tracker makes them.
  const batches: PresenceWrite[][] = [];
  const setPresences = store.setPresences.bind(store);
  store.setPresences = (writes) => (batches.push([...writes]), setPresences(writes));
  const broker = new EventEmitter<Events>();
  const tracker = new PresenceTracker({ store, logger: pino({ level: "silent" }), refreshMs: 60_000 }, broker);
  opened.push(tracker, store);
  return { store, broker, tracker, batches };
}

describe("presence tracker", () => {
  it("writes a reconnecting fleet's connects and statuses as one batch, each phone once", async () => {
    const { store, broker, tracker, batches } = setUp();
    const ids = Array.from({ length: 500 }, (_, i) => `dev_fleet${i}`);
    for (const id of ids) {
      broker.emit("deviceConnected", id, `${id}:s1`);
      broker.emit("deviceStatus", id, { online: true, battery: 77 }, `${id}:s1`);
    }
    await tracker.settle();
    expect(batches).toHaveLength(1);
    expect(batches[0]).toHaveLength(500);
    const stored = await store.getPresence(ids);
    expect(stored.every((p) => p?.online === true && p.battery === 77)).toBe(true);
    expect(stored.map((p) => p?.session)).toEqual(ids.map((id) => `${id}:s1`));
  });

  it("keeps the order of one phone's events within a batch and across batches", async () => {
    const { store, broker, tracker } = setUp();
    broker.emit("deviceConnected", "dev_a", "s1");
    broker.emit("deviceDisconnected", "dev_a", "s1");
    await tracker.settle();
    expect((await store.getPresence(["dev_a"]))[0]).toMatchObject({ online: false, session: "s1" });
    broker.emit("deviceConnected", "dev_a", "s2");
    // The close of the old connection, reported after the new one connected, changes nothing.
    broker.emit("deviceDisconnected", "dev_a", "s1");
    broker.emit("deviceStatus", "dev_a", { online: false }, "s1");
    await tracker.settle();
    expect((await store.getPresence(["dev_a"]))[0]).toMatchObject({ online: true, session: "s2" });
  });

  it("does not let an old connection's close overwrite a newer one another node stored meanwhile", async () => {
    const { store, broker, tracker } = setUp();
    broker.emit("deviceConnected", "dev_b", "s1");
    await tracker.settle();
    // Another node records the phone's next connection.
    await store.setPresence("dev_b", { online: true, session: "other-node", since: new Date().toISOString() });
    broker.emit("deviceDisconnected", "dev_b", "s1");
    await tracker.settle();
    expect((await store.getPresence(["dev_b"]))[0]).toMatchObject({ online: true, session: "other-node" });
  });
});

describe("applyChanges", () => {
  const now = "2026-12-02T00:00:00.000Z";
  const online = (session: string) => () => ({ online: true, session, since: now });
  const offline = (previous: { session?: string } | null) => (previous ? { ...previous, online: false, since: now } : null);

  it("writes unconditionally when a change was unconditional, else under the session the changes matched", () => {
    expect(applyChanges("d", null, [{ onlyIfSession: undefined, next: online("s2") }, { onlyIfSession: "s2", next: offline }], now)).toEqual({
      deviceId: "d",
      presence: { online: false, session: "s2", since: now },
    });
    expect(applyChanges("d", { online: true, session: "s1", since: now }, [{ onlyIfSession: "s1", next: offline }], now)).toEqual({
      deviceId: "d",
      presence: { online: false, session: "s1", since: now },
      onlyIfSession: "s1",
    });
  });

  it("writes nothing when no change applies", () => {
    expect(applyChanges("d", { online: true, session: "s2", since: now }, [{ onlyIfSession: "s1", next: offline }], now)).toBeNull();
    expect(applyChanges("d", null, [{ onlyIfSession: "s1", next: offline }], now)).toBeNull();
  });
});
