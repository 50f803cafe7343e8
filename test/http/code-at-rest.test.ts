import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RedisStore } from "../../api/store/redis-store.js";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

describe("codes at rest (Redis)", () => {
  let smtp: SmtpSink;
  let gw: TestGateway;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    gw = await startGateway({ store: "redis", env: { SMTP_URL: smtp.url, EMAIL_FROM: "codes@otpgate.test", FAILOVER_ORDER: "email" } });
  });
  afterAll(async () => {
    await gw?.close();
    await smtp?.close();
  });

  it("no Redis key or value holds the code, only its digest and the sealed message", async () => {
    // Ten digits: a shorter code could turn up inside a timestamp by chance.
    const created = await gw.call("POST", "/v1/otp", { email: "scan@example.com", userId: "scan-user", codeLength: 10 });
    expect(created.status).toBe(202);
    const code = codeIn((await smtp.waitForMessage((m) => m.to.includes("scan@example.com"))).text);
    expect(code).toHaveLength(10);
    await eventually(async () => (await gw.call("GET", `/v1/otp/${created.json.id}`)).json.delivery.state === "sent");

    const redis = (gw.gateway.store as RedisStore).redis;
    const keys = await redis.keys(`${gw.redisKeyPrefix}*`);
    const dump: string[] = [];
    for (const key of keys) {
      const type = await redis.type(key);
      if (type === "string") dump.push(key, (await redis.get(key)) ?? "");
      else if (type === "hash") dump.push(key, ...Object.entries(await redis.hgetall(key)).flat());
      else dump.push(key, `<${type}>`);
    }
    const everything = dump.join("\n");
    // The scan did see the OTP, its job and the subject keys...
    expect(keys.some((k) => k.endsWith(`otp:${created.json.id}`))).toBe(true);
    expect(keys.some((k) => k.includes("latest:user:scan-user"))).toBe(true);
    expect(everything).toContain("sealedBody");
    // ...and the code is nowhere in it.
    expect(everything).not.toContain(code);
  });
});
