/**
 * broker/sealed-queue.ts on the real aedes-persistence-redis (its own
 * redis-server: wills are shared by every broker on a Redis): what a
 * publisher's job leaves in the broker's persistence — a QoS 2 packet before
 * its PUBREL, a will, a retained message — is sealed or not kept, and Aedes
 * reads it back in clear, a dead broker's will included.
 */
import createPersistence from "aedes-persistence-redis";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sealQueuedJobs } from "../../broker/sealed-queue.js";
import { createSealer } from "../../api/security/sealing.js";
import { startRedisServer, type RedisServer } from "../support/redis-server.js";
import { redisRegions } from "./scan.js";

interface Persistence {
  broker: unknown;
  once(event: "ready", listener: () => void): void;
  incomingStorePacket(client: unknown, packet: unknown): Promise<void>;
  incomingGetPacket(client: unknown, packet: unknown): Promise<{ payload: Buffer }>;
  putWill(client: unknown, packet: unknown): Promise<void>;
  delWill(client: unknown): Promise<{ payload: Buffer } | null>;
  streamWill(brokers: Record<string, number>): AsyncIterable<{ topic: string; payload: Buffer; clientId: string }>;
  storeRetained(packet: unknown): Promise<void>;
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<{ topic: string; payload: Buffer }>;
  destroy(): Promise<void>;
}

describe("the broker's Redis persistence with sealed jobs", () => {
  let redis: RedisServer;
  let conn: Redis;
  let persistence: Persistence;
  const unreadable: unknown[] = [];

  beforeAll(async () => {
    redis = await startRedisServer();
    conn = new Redis(redis.url);
    persistence = createPersistence({ conn }) as unknown as Persistence;
    const ready = new Promise<void>((resolve) => persistence.once("ready", resolve));
    persistence.broker = { id: "broker-a", subscribe: (_t: string, _f: unknown, cb: () => void) => cb(), unsubscribe: (_t: string, _f: unknown, cb: () => void) => cb() };
    await ready;
    sealQueuedJobs(persistence, createSealer("x".repeat(32)), (error) => unreadable.push(error));
  });
  afterAll(async () => {
    await persistence?.destroy().catch(() => {});
    await redis?.stop();
  });

  const job = (text: string) => Buffer.from(JSON.stringify({ to: "+254711000555", body: text }));
  const dump = async () => Buffer.concat((await redisRegions(redis.url)).map((r) => r.bytes));

  it("seals a QoS 2 sms/send until its PUBREL and gives it back in clear", async () => {
    const client = { id: "pub:billing:1" };
    await persistence.incomingStorePacket(client, { cmd: "publish", topic: "sms/send", qos: 2, messageId: 9, payload: job("held until pubrel"), retain: false, dup: false });
    expect((await dump()).includes("held until pubrel")).toBe(false);
    expect(String((await persistence.incomingGetPacket(client, { messageId: 9 })).payload)).toContain("held until pubrel");
  });

  it("seals a will on sms/send, opens it for Aedes, and streams a dead broker's will in clear", async () => {
    const client = { id: "pub:billing:2", brokerId: "broker-a" };
    const will = { cmd: "publish", topic: "sms/send", qos: 1, payload: job("last will"), retain: false, dup: false };
    await persistence.putWill(client, will);
    expect((will as { brokerId?: string }).brokerId).toBe("broker-a");
    const stored = await dump();
    expect(stored.includes("last will")).toBe(false);
    expect(stored.includes("254711000555")).toBe(false);
    // Another broker, finding broker-a gone, publishes its wills: in clear.
    const streamed = [];
    for await (const packet of persistence.streamWill({})) streamed.push(packet);
    expect(streamed).toEqual([expect.objectContaining({ topic: "sms/send", clientId: "pub:billing:2" })]);
    expect(String(streamed[0]!.payload)).toContain("last will");
    expect(String((await persistence.delWill(client))!.payload)).toContain("last will");
    expect(unreadable).toEqual([]);
  });

  it("never keeps a job retained; keeps a device status retained as it is", async () => {
    await persistence.storeRetained({ cmd: "publish", topic: "sms/send", qos: 1, payload: job("retained job"), retain: true, dup: false });
    await persistence.storeRetained({ cmd: "publish", topic: "sms/device/dev_1", qos: 1, payload: Buffer.from('{"online":true,"battery":80}'), retain: true, dup: false });
    const stored = await dump();
    expect(stored.includes("retained job")).toBe(false);
    const retained = [];
    for await (const packet of persistence.createRetainedStreamCombi(["sms/send", "sms/device/dev_1"])) retained.push(packet.topic);
    expect(retained).toEqual(["sms/device/dev_1"]);
  });
});
