/**
 * API keys: shown once, stored as digests, scoped, revocable, and kept across
 * a restart (DATA_DIR without Redis, the Redis namespace with it).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { keyDigest } from "../../api/keys/api-key-format.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";

const accountSid = `AC${"c3".repeat(16)}`;
const authToken = "keys-test-token";

describe.each(["sqlite", "redis"] as const)("API keys (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid, authToken });
    gw = await startGateway({ store: storeKind, env: twilioEnv(twilio, { accountSid, authToken }) });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("POST /v1/keys returns the key once; GET /v1/keys never shows key or digest", async () => {
    const created = await gw.call("POST", "/v1/keys", { name: "billing" });
    expect(created.status).toBe(201);
    expect(created.json).toEqual({
      id: expect.any(String),
      name: "billing",
      scopes: ["otp", "messages"],
      prefix: expect.any(String),
      createdAt: expect.any(String),
      key: expect.stringMatching(/^og_live_[A-Za-z0-9_-]{43}$/),
    });
    const key: string = created.json.key;
    expect(key.startsWith(created.json.prefix)).toBe(true);
    expect(created.json).not.toHaveProperty("digest");

    const listed = await gw.call("GET", "/v1/keys");
    expect(listed.status).toBe(200);
    const mine = listed.json.keys.find((k: { id: string }) => k.id === created.json.id);
    expect(mine).toEqual({ id: created.json.id, name: "billing", scopes: ["otp", "messages"], prefix: created.json.prefix, createdAt: created.json.createdAt });
    expect(JSON.stringify(listed.json)).not.toContain(keyDigest(key));
    for (const k of listed.json.keys) {
      expect(k).not.toHaveProperty("key");
      expect(k).not.toHaveProperty("digest");
    }

    // Two keys are never the same.
    const other = await gw.call("POST", "/v1/keys", { name: "billing" });
    expect(other.json.key).not.toBe(key);
    expect(other.json.id).not.toBe(created.json.id);
  });

  it("neither POST nor GET /v1/keys shows more of a key than the kind and four characters", async () => {
    // The random part is base64url, so it may itself contain "_": 20 keys make sure some do.
    const keys: { key: string; prefix: string }[] = [];
    for (let i = 0; i < 20; i++) keys.push((await gw.call("POST", "/v1/keys", { name: `prefix-${i}`, scopes: ["otp"] })).json);
    const listed = (await gw.call("GET", "/v1/keys")).json.keys as { name: string; prefix: string }[];
    const text = JSON.stringify(listed);
    const shown = "og_live_".length + 4;
    for (const [i, { key, prefix }] of keys.entries()) {
      expect(text, `the list shows more than ${shown} characters of ${key}`).not.toContain(key.slice(0, shown + 1));
      expect(prefix, `prefix of ${key}`).toBe(key.slice(0, shown));
      expect(listed.find((k) => k.name === `prefix-${i}`)?.prefix).toBe(prefix);
    }
  });

  it("a new key works on the /v1/otp routes (Bearer and x-api-key)", async () => {
    const { json: created } = await gw.call("POST", "/v1/keys", { name: "app", scopes: ["otp"] });
    const sent = await gw.call("POST", "/v1/otp", { to: "+254711000101", userId: "key-user-1" }, created.key);
    expect(sent.status).toBe(202);
    expect(sent.json).toMatchObject({ status: "pending", channel: "sms" });
    await eventually(async () => twilio.received.find((m) => m.to === "+254711000101"), 5000, "the SMS at the fake Twilio");

    const viaHeader = await fetch(`${gw.url}/v1/otp/${sent.json.id}`, { headers: { "x-api-key": created.key } });
    expect(viaHeader.status).toBe(200);
    expect(((await viaHeader.json()) as { id: string }).id).toBe(sent.json.id);

    const verify = await gw.call("POST", "/v1/otp/verify", { id: sent.json.id, code: "000000" }, created.key);
    expect(verify.status).toBe(200);
    expect(verify.json).toMatchObject({ status: expect.any(String), attemptsLeft: expect.any(Number) });
  });

  it('a key with scopes ["messages"] gets 403 on /v1/otp and can send on /v1/messages', async () => {
    const { json: created } = await gw.call("POST", "/v1/keys", { name: "notifier", scopes: ["messages"] });
    const key: string = created.key;
    for (const [method, route, body] of [
      ["POST", "/v1/otp", { to: "+254711000102" }],
      ["POST", "/v1/otp/verify", { userId: "x", code: "123456" }],
      ["GET", "/v1/otp/00000000-0000-4000-8000-000000000000", undefined],
      ["POST", "/send-otp", { phone: "+254711000102", uid: "x" }],
    ] as const) {
      const reply = await gw.call(method, route, body, key);
      expect(reply.status, `${method} ${route}`).toBe(403);
      if (route.startsWith("/v1")) expect(reply.json.error.code).toBe("forbidden");
    }
    expect(twilio.received.some((m) => m.to === "+254711000102")).toBe(false);

    const message = await gw.call("POST", "/v1/messages", { to: "+254711000103", body: "Your parcel is on its way" }, key);
    expect(message.status).toBe(202);
    expect(message.json).toEqual({ id: expect.any(String), status: expect.any(String) });
    const delivered = await eventually(async () => twilio.received.find((m) => m.to === "+254711000103"), 5000, "the SMS at the fake Twilio");
    expect(delivered.body).toBe("Your parcel is on its way");
    const view = await gw.call("GET", `/v1/messages/${message.json.id}`, undefined, key);
    expect(view.status).toBe(200);
    // Masked in the view (README, Security: At rest); Twilio got it in full above.
    expect(view.json.to).toBe("+254*****0103");
  });

  it("an otp-only key gets 403 on /v1/messages", async () => {
    const { json: created } = await gw.call("POST", "/v1/keys", { name: "otp-only", scopes: ["otp"] });
    const reply = await gw.call("POST", "/v1/messages", { to: "+254711000104", body: "hi" }, created.key);
    expect(reply.status).toBe(403);
    expect(reply.json.error.code).toBe("forbidden");
    expect(twilio.received.some((m) => m.to === "+254711000104")).toBe(false);
  });

  it("a non-admin key gets 403 on every /v1/keys route; an admin-scoped key does not", async () => {
    const { json: plain } = await gw.call("POST", "/v1/keys", { name: "plain" });
    for (const [method, route, body] of [
      ["GET", "/v1/keys", undefined],
      ["POST", "/v1/keys", { name: "escalate", scopes: ["admin"] }],
      ["DELETE", `/v1/keys/${plain.id}`, undefined],
    ] as const) {
      const reply = await gw.call(method, route, body, plain.key);
      expect(reply.status, `${method} ${route}`).toBe(403);
      expect(reply.json.error.code).toBe("forbidden");
    }
    // The refused DELETE did not revoke anything, and the refused POST created nothing.
    const listed = (await gw.call("GET", "/v1/keys")).json.keys as { id: string; name: string; revokedAt?: string }[];
    expect(listed.find((k) => k.id === plain.id)?.revokedAt).toBeUndefined();
    expect(listed.some((k) => k.name === "escalate")).toBe(false);

    const { json: admin } = await gw.call("POST", "/v1/keys", { name: "second-admin", scopes: ["admin"] });
    expect((await gw.call("GET", "/v1/keys", undefined, admin.key)).status).toBe(200);
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000105" }, admin.key)).status).toBe(202);
  });

  it("a revoked key shows revokedAt in the list and stops working", async () => {
    const { json: created } = await gw.call("POST", "/v1/keys", { name: "to-revoke", scopes: ["otp"] });
    expect((await gw.call("GET", "/v1/otp/00000000-0000-4000-8000-000000000000", undefined, created.key)).status).toBe(404);
    const revoked = await gw.call("DELETE", `/v1/keys/${created.id}`);
    expect(revoked.status).toBe(200);
    expect(revoked.json).not.toHaveProperty("digest");
    expect(revoked.json).not.toHaveProperty("key");
    const listed = (await gw.call("GET", "/v1/keys")).json.keys as { id: string; revokedAt?: string }[];
    expect(listed.find((k) => k.id === created.id)?.revokedAt).toEqual(revoked.json.revokedAt);
    expect((await gw.call("GET", "/v1/otp/00000000-0000-4000-8000-000000000000", undefined, created.key)).status).toBe(401);
  });
});

describe("API keys survive a restart", () => {
  const open: TestGateway[] = [];
  afterEach(async () => {
    await Promise.all(open.splice(0).map((g) => g.close()));
  });

  async function restartKeepsKeys(first: TestGateway, startAgain: () => Promise<TestGateway>) {
    const kept = await first.call("POST", "/v1/keys", { name: "kept", scopes: ["otp"] });
    const dropped = await first.call("POST", "/v1/keys", { name: "dropped", scopes: ["otp"] });
    expect(kept.status).toBe(201);
    expect((await first.call("DELETE", `/v1/keys/${dropped.json.id}`)).status).toBe(200);
    await first.close();
    open.splice(open.indexOf(first), 1);

    const second = await startAgain();
    open.push(second);
    const probe = "/v1/otp/00000000-0000-4000-8000-000000000000";
    // The kept key authenticates (404 for the unknown id, not 401)...
    const withKept = await second.call("GET", probe, undefined, kept.json.key);
    expect(withKept.status).toBe(404);
    // ...the revoked one is still revoked...
    expect((await second.call("GET", probe, undefined, dropped.json.key)).status).toBe(401);
    // ...and the list is the same, still without secrets.
    const listed = (await second.call("GET", "/v1/keys")).json.keys as Record<string, unknown>[];
    expect(listed.map((k) => k.name).sort()).toEqual(["dropped", "kept"]);
    expect(listed.find((k) => k.name === "dropped")?.revokedAt).toEqual(expect.any(String));
    expect(listed.find((k) => k.name === "kept")?.revokedAt).toBeUndefined();
    for (const k of listed) expect(Object.keys(k).sort()).toEqual(expect.not.arrayContaining(["digest", "key"]));
    expect(JSON.stringify(listed)).not.toContain(keyDigest(kept.json.key));
    // A key created after the restart works alongside the old one.
    const fresh = await second.call("POST", "/v1/keys", { name: "fresh", scopes: ["otp"] });
    expect((await second.call("GET", probe, undefined, fresh.json.key)).status).toBe(404);
  }

  /** A key made on one gateway is unknown to a second one with its own DATA_DIR (SQLite) or key prefix (Redis). */
  async function otherGatewayRefusesKeys(store: "sqlite" | "memory" | "redis", name: string) {
    const first = await startGateway({ store });
    open.push(first);
    const created = await first.call("POST", "/v1/keys", { name, scopes: ["otp"] });
    const other = await startGateway({ store });
    open.push(other);
    expect((await other.call("GET", "/v1/keys", undefined, created.json.key)).status).toBe(401);
    expect((await other.call("GET", "/v1/keys")).json.keys).toEqual([]);
  }

  it("with the default SQLite store, with the same DATA_DIR", async () => {
    const first = await startGateway({ store: "sqlite" });
    open.push(first);
    await restartKeepsKeys(first, () => startGateway({ store: "sqlite", dataDir: first.dataDir }));
  });

  it("with the default SQLite store, a different DATA_DIR does not know the keys", async () => {
    await otherGatewayRefusesKeys("sqlite", "local");
  });

  it("in Redis mode, with the same key prefix (and a fresh DATA_DIR)", async () => {
    const first = await startGateway({ store: "redis" });
    open.push(first);
    await restartKeepsKeys(first, () => startGateway({ store: "redis", redisKeyPrefix: first.redisKeyPrefix }));
  });

  it("in Redis mode, another key prefix does not see the keys", async () => {
    await otherGatewayRefusesKeys("redis", "namespaced");
  });
});
