/**
 * Nothing readable at rest: after an OTP and a plain message went out, no
 * store holds the code, the message body, the number or the user id in clear:
 * the whole SQLite file (with its write-ahead log) and every Redis key and value.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RedisStore } from "../../api/store/redis-store.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";

const SID = "AC" + "3".repeat(32);
const TOKEN = "at-rest-token";

async function redisDump(gw: TestGateway): Promise<string> {
  const redis = (gw.gateway.store as RedisStore).redis;
  const dump: string[] = [];
  for (const key of await redis.keys(`${gw.redisKeyPrefix}*`)) {
    const type = await redis.type(key);
    if (type === "string") dump.push(key, (await redis.get(key)) ?? "");
    else if (type === "hash") dump.push(key, ...Object.entries(await redis.hgetall(key)).flat());
    else if (type === "zset") dump.push(key, ...(await redis.zrange(key, 0, -1)));
    else dump.push(key, `<${type}>`);
  }
  return dump.join("\n");
}

function sqliteFiles(gw: TestGateway): string {
  // latin1 keeps every byte, so text stored anywhere in a page is found as it is.
  return readdirSync(gw.dataDir)
    .filter((name) => name.startsWith("otpgate.db"))
    .map((name) => readFileSync(path.join(gw.dataDir, name)).toString("latin1"))
    .join("\n");
}

describe.each(["sqlite", "redis"] as const)("codes at rest (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({ store: storeKind, env: twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }) });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("holds no code, body, number or user id in clear, only digests and sealed records", async () => {
    const number = "+254733918273";
    const userId = "scan-user-4711";
    // Ten digits: a shorter code could turn up inside a timestamp by chance.
    const created = await gw.call("POST", "/v1/otp", { to: number, userId, codeLength: 10 });
    expect(created.status).toBe(202);
    const body = "Your parcel PX-99172 is at the depot";
    const message = await gw.call("POST", "/v1/messages", { to: "+254733918274", body });
    expect(message.status).toBe(202);
    await eventually(async () => twilio.received.length === 2);
    const code = codeIn(twilio.received.find((m) => m.to === number)!.body);
    expect(code).toHaveLength(10);
    await eventually(async () => (await gw.call("GET", `/v1/otp/${created.json.id}`)).json.delivery.state === "sent");
    await eventually(async () => (await gw.call("GET", `/v1/messages/${message.json.id}`)).json.status === "sent");

    const everything = storeKind === "redis" ? await redisDump(gw) : sqliteFiles(gw);
    // The scan did see the records (their ids are plain)...
    expect(everything).toContain(created.json.id);
    expect(everything).toContain(message.json.id);
    // ...and none of what they carry.
    for (const secret of [code, body, "254733918273", "254733918274", userId]) expect(everything).not.toContain(secret);
    // The OTP still verifies: what is sealed can be opened by the gateway.
    expect((await gw.call("POST", "/v1/otp/verify", { userId, code })).json).toMatchObject({ valid: true, status: "approved" });
  });
});
