/**
 * The admission gate for MQTT/TLS connections: in arrival order, never more
 * than its limit at once, stale or excess connections closed unserved; and,
 * through a real gateway, silent or garbage connections cannot keep phones out.
 */
import { createServer, connect as tcpConnect, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ConnectionGate } from "../../broker/connection-gate.js";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { endClient, metricValue, tryConnect } from "../support/mqtt-clients.js";
import { registerDevice } from "../support/phones.js";

const servers: Server[] = [];
const clients: Socket[] = [];
const gates: { gate: ConnectionGate; started: { socket: Socket }[] }[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  for (const { gate, started } of gates.splice(0)) {
    gate.close();
    for (const { socket } of started) socket.destroy();
  }
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
});

/** A real listening socket feeding a gate; `clock` drives its wait limit. */
async function gateOn(options: { maxConnecting: number; maxWaitMs?: number; maxQueued?: number; lifoAfterMs?: number }) {
  const clock = { now: 0 };
  const started: { socket: Socket; done: () => void; order: number }[] = [];
  const gate = new ConnectionGate(
    { maxConnecting: options.maxConnecting, maxWaitMs: options.maxWaitMs ?? 60_000, maxQueued: options.maxQueued ?? 100, lifoAfterMs: options.lifoAfterMs, now: () => clock.now },
    (socket, done) => {
      started.push({ socket, done, order: Number(socket.remotePort) });
      // Read it, as the TLS server does with an admitted connection, so a close from the client is seen.
      socket.resume();
    },
  );
  gates.push({ gate, started });
  const server = createServer({ pauseOnConnect: true }, (socket) => gate.offer(socket));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const open = async () => {
    const client = tcpConnect(port, "127.0.0.1");
    clients.push(client);
    client.on("error", () => {});
    await new Promise<void>((resolve) => client.once("connect", () => resolve()));
    const closedByServer = new Promise<void>((resolve) => client.once("close", () => resolve()));
    return { client, closedByServer, port: client.localPort! };
  };
  const until = async (check: () => boolean) => {
    for (let i = 0; i < 200 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(check()).toBe(true);
  };
  return { gate, started, open, clock, until };
}

describe("connection gate", () => {
  it("starts connections in arrival order, at most maxConnecting at once, the next when one finishes or closes", async () => {
    const { gate, started, open, until } = await gateOn({ maxConnecting: 2 });
    const opened = [];
    for (let i = 0; i < 5; i++) opened.push(await open());
    await until(() => gate.stats.queued === 3);
    expect(started.map((s) => s.order)).toEqual(opened.slice(0, 2).map((o) => o.port));
    started[0]!.done();
    await until(() => started.length === 3);
    // The client closing its connection frees its slot too.
    opened[1]!.client.destroy();
    await until(() => started.length === 4);
    expect(started.map((s) => s.order)).toEqual(opened.slice(0, 4).map((o) => o.port));
    expect(gate.stats).toEqual({ connecting: 2, queued: 1, shed: 0 });
  });

  it("closes unserved the connections that waited past maxWaitMs", async () => {
    const { gate, started, open, clock, until } = await gateOn({ maxConnecting: 1, maxWaitMs: 1000 });
    const first = await open();
    await until(() => started.length === 1);
    const stale = [await open(), await open()];
    await until(() => gate.stats.queued === 2);
    clock.now = 999;
    const fresh = await open();
    await until(() => gate.stats.queued === 3);
    clock.now = 1500;
    started[0]!.done();
    // The two queued at 0 waited 1.5 s: closed; the one queued at 999 is served.
    await Promise.all(stale.map((s) => s.closedByServer));
    await until(() => started.length === 2);
    expect(started[1]!.order).toBe(fresh.port);
    expect(gate.stats).toEqual({ connecting: 1, queued: 0, shed: 2 });
    expect(first.client.destroyed).toBe(false);
  });

  it("serves the newest first while the oldest has waited past lifoAfterMs, and in arrival order again once the queue is fresh", async () => {
    const { gate, started, open, clock, until } = await gateOn({ maxConnecting: 1, maxWaitMs: 10_000, lifoAfterMs: 1000 });
    await open();
    await until(() => started.length === 1);
    const early = [await open(), await open(), await open()];
    await until(() => gate.stats.queued === 3);
    // 1.5 s later the oldest has waited past 1 s: overload, newest first.
    clock.now = 1500;
    const late = await open();
    await until(() => gate.stats.queued === 4);
    started[0]!.done();
    await until(() => started.length === 2);
    expect(started[1]!.order).toBe(late.port);
    started[1]!.done();
    await until(() => started.length === 3);
    expect(started[2]!.order).toBe(early[2]!.port);
    // Nothing was closed: overload changes the order, only maxWaitMs sheds.
    expect(gate.stats).toEqual({ connecting: 1, queued: 2, shed: 0 });
    // Much later the two left are stale (closed unserved); newcomers to a fresh queue go in arrival order.
    clock.now = 20_000;
    const fresh = [await open(), await open()];
    await until(() => gate.stats.queued === 4);
    started[2]!.done();
    await until(() => started.length === 4);
    expect(started[3]!.order).toBe(fresh[0]!.port);
    await Promise.all([early[0]!.closedByServer, early[1]!.closedByServer]);
    expect(gate.stats).toEqual({ connecting: 1, queued: 1, shed: 2 });
  });

  it("closes a newcomer when the queue is full, and every waiting connection on close()", async () => {
    const { gate, open, until } = await gateOn({ maxConnecting: 1, maxQueued: 2 });
    await open();
    const waiting = [await open(), await open()];
    await until(() => gate.stats.queued === 2);
    const extra = await open();
    await extra.closedByServer;
    expect(gate.stats.shed).toBe(1);
    gate.close();
    await Promise.all(waiting.map((w) => w.closedByServer));
    expect(gate.stats.queued).toBe(0);
  });
});

describe("admission through a gateway", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ admission: { maxConnecting: 2, handshakeTimeoutMs: 1000 } });
  });
  afterAll(async () => gw?.close());

  it("lets a phone in past connections that say nothing or send garbage, and refused CONNECTs free their slot", async () => {
    const device = await registerDevice(gw);
    const silent = tcpConnect(gw.mqtts, "127.0.0.1");
    const garbage = tcpConnect(gw.mqtts, "127.0.0.1", () => garbage.write(Buffer.alloc(4096, 0x41)));
    for (const socket of [silent, garbage]) {
      clients.push(socket);
      socket.on("error", () => {});
    }
    const silentClosed = new Promise<number>((resolve) => {
      const at = Date.now();
      silent.once("close", () => resolve(Date.now() - at));
    });
    const url = `mqtts://127.0.0.1:${gw.mqtts}`;
    const tls = { ca: gw.gateway.tls.caPem, servername: "localhost" };
    // Wrong tokens: CONNACK 4, and the slots are free again.
    for (let i = 0; i < 3; i++) {
      const refused = await tryConnect(url, { ...tls, clientId: device.id, username: device.id, password: "og_dev_wrong" }, 5000);
      expect(refused.code).toBe(4);
    }
    const phone = await tryConnect(url, { ...tls, clientId: device.id, username: device.id, password: device.token, clean: false }, 5000);
    expect(phone.code).toBe(0);
    await endClient(phone.client);
    // The silent connection was dropped by the handshake timeout, not held for Node's default 120 s.
    expect(await silentClosed).toBeLessThan(4000);
    expect(await metricValue(gw, "otpgate_mqtt_connections_admitting", { phase: "queued" })).toBe(0);
  });

  it("serves 20 phones connecting at once through 2 slots", async () => {
    const devices = await Promise.all(Array.from({ length: 20 }, () => registerDevice(gw)));
    const url = `mqtts://127.0.0.1:${gw.mqtts}`;
    const outcomes = await Promise.all(
      devices.map((d) => tryConnect(url, { ca: gw.gateway.tls.caPem, servername: "localhost", clientId: d.id, username: d.id, password: d.token }, 10_000)),
    );
    expect(outcomes.map((o) => o.code)).toEqual(devices.map(() => 0));
    await Promise.all(outcomes.map((o) => endClient(o.client)));
    expect(await metricValue(gw, "otpgate_mqtt_connections_admitting", { phase: "connecting" })).toBe(0);
  });
});
