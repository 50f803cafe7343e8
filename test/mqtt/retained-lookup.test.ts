/**
 * broker/retained-lookup.ts against a real Aedes broker (in-memory persistence) on plain
 * loopback TCP, with real `mqtt` clients: a subscriber to a plain topic gets its retained
 * message once, a deleted one not at all, a wildcard subscriber every match, and a plain-topic
 * SUBSCRIBE no longer runs the persistence's scan of every retained message (counted, not timed).
 */
import { createServer, type AddressInfo, type Server } from "node:net";
import { Aedes } from "aedes";
import { Redis } from "ioredis";
import mqtt, { type MqttClient } from "mqtt";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { bypassFastRetainedLookup, fastRetainedLookup, retainedLookupMode } from "../../broker/retained-lookup.js";

interface Received {
  topic: string;
  payload: string;
  retain: boolean;
}

type Persistence = {
  createRetainedStreamCombi(patterns: string[]): NodeJS.ReadableStream;
  storeRetained(packet: object): Promise<void>;
};

async function collect(stream: NodeJS.ReadableStream): Promise<string[]> {
  const out: string[] = [];
  for await (const packet of stream as AsyncIterable<{ topic: string; payload: Buffer }>) out.push(`${packet.topic}=${packet.payload.toString()}`);
  return out;
}

/** Aedes' typings leave its persistence out. */
const persistenceOf = (broker: Aedes) => (broker as unknown as { persistence: Persistence }).persistence;

const retainedPacket = (topic: string, payload: string) => ({ cmd: "publish", qos: 1, topic, payload: Buffer.from(payload), retain: true });

describe("fast retained lookup (memory persistence, real Aedes over TCP)", () => {
  let aedes: Aedes;
  let server: Server;
  let url: string;
  /** Calls that reached the persistence's own createRetainedStreamCombi (the full scan), with their patterns. */
  const scans: string[][] = [];
  const clients: MqttClient[] = [];
  let serial = 0;

  const connect = async () => {
    const client = await mqtt.connectAsync(url, { clientId: `c${++serial}`, protocolVersion: 4, clean: true, reconnectPeriod: 0 });
    clients.push(client);
    return client;
  };
  const retain = async (topic: string, payload: string) => {
    const publisher = await connect();
    await publisher.publishAsync(topic, payload, { qos: 1, retain: true });
    await publisher.endAsync();
  };
  /**
   * Subscribes, then publishes a live (not retained) marker on `marker`, which the
   * subscription covers: what arrives before the marker is what the SUBSCRIBE delivered.
   */
  const subscribeAndDrain = async (filter: string, marker: string): Promise<Received[]> => {
    const subscriber = await connect();
    const received: Received[] = [];
    const sawMarker = new Promise<void>((resolve) =>
      subscriber.on("message", (topic, payload, packet) => {
        if (payload.toString() === "marker") return resolve();
        received.push({ topic, payload: payload.toString(), retain: packet.retain });
      }),
    );
    await subscriber.subscribeAsync(filter, { qos: 1 });
    const publisher = await connect();
    await publisher.publishAsync(marker, "marker", { qos: 1 });
    await sawMarker;
    return received;
  };

  beforeAll(async () => {
    aedes = await Aedes.createBroker();
    const persistence = persistenceOf(aedes);
    const scan = persistence.createRetainedStreamCombi.bind(persistence);
    persistence.createRetainedStreamCombi = (patterns) => {
      scans.push([...patterns]);
      return scan(patterns);
    };
    // As broker/mqtt-broker.ts does: on the broker, which finds its persistence.
    expect(fastRetainedLookup(aedes)).toBe(aedes);
    expect(retainedLookupMode(aedes)).toBe("direct");
    expect(retainedLookupMode(persistence)).toBe("direct");
    server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.endAsync(true)));
  });
  afterAll(async () => {
    await new Promise((resolve) => server?.close(resolve));
    await new Promise<void>((resolve) => (aedes ? aedes.close(() => resolve()) : resolve()));
  });

  it("delivers the retained message of a plain topic once, with the retain flag", async () => {
    await retain("sms/device/dev_one", "online");
    const received = await subscribeAndDrain("sms/device/dev_one", "sms/device/dev_one");
    expect(received).toEqual([{ topic: "sms/device/dev_one", payload: "online", retain: true }]);
  });

  it("delivers the latest retained message, and none once an empty payload has deleted it", async () => {
    await retain("sms/device/dev_two", "first");
    await retain("sms/device/dev_two", "second");
    expect(await subscribeAndDrain("sms/device/dev_two", "sms/device/dev_two")).toEqual([{ topic: "sms/device/dev_two", payload: "second", retain: true }]);

    await retain("sms/device/dev_two", "");
    expect(await subscribeAndDrain("sms/device/dev_two", "sms/device/dev_two")).toEqual([]);

    // Retained again after the delete: found again.
    await retain("sms/device/dev_two", "third");
    expect(await subscribeAndDrain("sms/device/dev_two", "sms/device/dev_two")).toEqual([{ topic: "sms/device/dev_two", payload: "third", retain: true }]);
  });

  it("a wildcard subscription still gets every matching retained message, through the persistence's own matcher", async () => {
    await retain("a/1", "one");
    await retain("a/2", "two");
    await retain("a/2/deeper", "not a level of a/+");
    await retain("b/1", "other branch");
    await retain("a/3", "three");
    await retain("a/3", "");
    const before = scans.length;
    const received = await subscribeAndDrain("a/+", "a/marker");
    expect(received.sort((x, y) => x.topic.localeCompare(y.topic))).toEqual([
      { topic: "a/1", payload: "one", retain: true },
      { topic: "a/2", payload: "two", retain: true },
    ]);
    expect(scans.slice(before)).toEqual([["a/+"]]);
  });

  it("plain-topic SUBSCRIBEs never run the scan of all retained messages, however many there are", async () => {
    // 300 phones' retained statuses, then each of 300 phones subscribes to its own sms/out topic
    // (no retained message) and 60 of them to a status topic (one each).
    const publisher = await connect();
    await Promise.all(Array.from({ length: 300 }, (_, i) => publisher.publishAsync(`sms/device/dev_s${i}`, `status ${i}`, { qos: 1, retain: true })));
    const before = scans.length;
    const subscriber = await connect();
    const received: string[] = [];
    subscriber.on("message", (topic, payload) => received.push(`${topic}=${payload.toString()}`));
    for (let i = 0; i < 300; i++) await subscriber.subscribeAsync(`sms/out/dev_s${i}`, { qos: 1 });
    for (let i = 0; i < 60; i++) await subscriber.subscribeAsync(`sms/device/dev_s${i}`, { qos: 1 });
    // One SUBSCRIBE with several plain topics: still no scan.
    await subscriber.subscribeAsync([`sms/device/dev_s100`, `sms/out/dev_s100`, `sms/device/dev_s101`], { qos: 1 });
    await subscriber.publishAsync("sms/out/dev_s0", "marker", { qos: 1 });
    await new Promise<void>((resolve) => subscriber.on("message", (_topic, payload) => payload.toString() === "marker" && resolve()));
    expect(scans.length - before).toBe(0);
    expect(received.filter((r) => !r.endsWith("=marker")).sort()).toEqual(
      [...Array.from({ length: 60 }, (_, i) => `sms/device/dev_s${i}=status ${i}`), "sms/device/dev_s100=status 100", "sms/device/dev_s101=status 101"].sort(),
    );
  });
});

describe("fast retained lookup answers exactly what the scan answers", () => {
  it("for mixed, repeated and wildcard patterns, in the same order, including messages stored before it was installed", async () => {
    const fast = await Aedes.createBroker();
    const scan = await Aedes.createBroker();
    try {
      const [fastP, scanP] = [persistenceOf(fast), persistenceOf(scan)];
      const store = (packet: ReturnType<typeof retainedPacket>) => Promise.all([fastP.storeRetained({ ...packet }), scanP.storeRetained({ ...packet })]);
      // Stored before the lookup is installed: it must copy them.
      await store(retainedPacket("x/1", "early"));
      await store(retainedPacket("x/gone", "early, deleted later"));
      fastRetainedLookup(fastP);
      await store(retainedPacket("x/2", "two"));
      await store(retainedPacket("x/2/y", "deep"));
      await store(retainedPacket("x/gone", ""));
      await store(retainedPacket("$SYS/z", "dollar"));
      // The copy of what was there is read asynchronously; until then the scan answers.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const cases = [["x/1"], ["x/gone"], ["nothing/here"], ["x/1", "x/+", "x/2", "x/#", "x/1"], ["#"], ["x/2", "x/2/y", "$SYS/z"], ["+/2", "x/2"], []];
      for (const patterns of cases) expect(await collect(fastP.createRetainedStreamCombi([...patterns])), patterns.join(",")).toEqual(await collect(scanP.createRetainedStreamCombi([...patterns])));
    } finally {
      await Promise.all([fast, scan].map((broker) => new Promise<void>((resolve) => broker.close(() => resolve()))));
    }
  });

  it("can be bypassed (a benchmark's baseline), before or after it is installed, and is idempotent", async () => {
    const broker = await Aedes.createBroker();
    try {
      const persistence = persistenceOf(broker);
      const scans: string[][] = [];
      const scan = persistence.createRetainedStreamCombi.bind(persistence);
      persistence.createRetainedStreamCombi = (patterns) => (scans.push(patterns), scan(patterns));
      fastRetainedLookup(persistence);
      const installed = persistence.createRetainedStreamCombi;
      fastRetainedLookup(persistence);
      expect(persistence.createRetainedStreamCombi).toBe(installed);
      await persistence.storeRetained(retainedPacket("t/1", "v"));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await collect(persistence.createRetainedStreamCombi(["t/1"]))).toEqual(["t/1=v"]);
      expect(scans).toEqual([]);
      bypassFastRetainedLookup(persistence);
      expect(retainedLookupMode(persistence)).toBe("bypassed");
      expect(await collect(persistence.createRetainedStreamCombi(["t/1"]))).toEqual(["t/1=v"]);
      expect(scans).toEqual([["t/1"]]);
    } finally {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
    }
    const early = await Aedes.createBroker();
    try {
      bypassFastRetainedLookup(persistenceOf(early));
      fastRetainedLookup(persistenceOf(early));
      expect(retainedLookupMode(persistenceOf(early))).toBe("bypassed");
    } finally {
      await new Promise<void>((resolve) => early.close(() => resolve()));
    }
  });

  it("leaves a Redis persistence alone: it already answers plain topics with one HGET", async () => {
    const { default: createPersistence } = await import("aedes-persistence-redis");
    const conn = new Redis(inject("redisUrl"), { maxRetriesPerRequest: 2 });
    const persistence = createPersistence({ conn }) as unknown as Persistence & { destroy(): Promise<void> };
    const broker = await Aedes.createBroker({ persistence });
    try {
      const before = persistence.createRetainedStreamCombi;
      expect(fastRetainedLookup(persistence)).toBe(persistence);
      expect(persistence.createRetainedStreamCombi).toBe(before);
      expect(retainedLookupMode(persistence)).toBe("untouched");
      const topic = `sms/device/dev_redis${Date.now()}`;
      await persistence.storeRetained(retainedPacket(topic, "online"));
      expect(await collect(persistence.createRetainedStreamCombi([topic]))).toEqual([`${topic}=online`]);
      await persistence.storeRetained(retainedPacket(topic, ""));
      expect(await collect(persistence.createRetainedStreamCombi([topic]))).toEqual([]);
    } finally {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await persistence.destroy();
      conn.disconnect();
    }
  });
});
