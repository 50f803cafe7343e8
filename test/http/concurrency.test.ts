import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeIn, startGateway, type TestGateway } from "../support/gateway.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

describe.each(["sqlite", "redis"] as const)("racing verifies over HTTP (%s store)", (storeKind) => {
  let smtp: SmtpSink;
  let nodes: TestGateway[];

  beforeAll(async () => {
    smtp = await startSmtpSink();
    const env = { SMTP_URL: smtp.url, EMAIL_FROM: "codes@otpgate.test", FAILOVER_ORDER: "email", OTP_LOCKOUT_THRESHOLD: "100" };
    const first = await startGateway({ store: storeKind, env });
    // With Redis, a second node on the same data: the race then crosses processes' connections too.
    const second =
      storeKind === "redis"
        ? await startGateway({ store: "redis", env, redisKeyPrefix: first.redisKeyPrefix, dataDir: first.dataDir })
        : first;
    nodes = [first, second];
  });
  afterAll(async () => {
    await Promise.all([...new Set(nodes)].map((node) => node.close()));
    await smtp?.close();
  });

  async function issue(email: string): Promise<{ id: string; code: string }> {
    const created = await nodes[0]!.call("POST", "/v1/otp", { email });
    expect(created.status).toBe(202);
    const mail = await smtp.waitForMessage((m) => m.to.includes(email));
    return { id: created.json.id, code: codeIn(mail.text) };
  }

  it("approves exactly once when 50 correct verifies arrive at the same moment", async () => {
    const { id, code } = await issue("race-right@example.com");
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => nodes[i % 2]!.call("POST", "/v1/otp/verify", { id, code })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    expect(results.filter((r) => r.json.valid === true)).toHaveLength(1);
    expect(results.every((r) => r.json.status === "approved")).toBe(true);
  });

  it("counts no more than 5 attempts when 50 wrong verifies race, and the right code is then refused", async () => {
    const { id, code } = await issue("race-wrong@example.com");
    const wrong = code === "000000" ? "111111" : "000000";
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => nodes[i % 2]!.call("POST", "/v1/otp/verify", { id, code: wrong })),
    );
    expect(results.every((r) => r.status === 200 && r.json.valid === false)).toBe(true);
    // Exactly four answers saw the code still pending (4, 3, 2, 1 attempts left), each count once.
    const pending = results.filter((r) => r.json.status === "pending").map((r) => r.json.attemptsLeft).sort();
    expect(pending).toEqual([1, 2, 3, 4]);
    const after = await nodes[0]!.call("POST", "/v1/otp/verify", { id, code });
    expect(after.json).toEqual({ valid: false, status: "max_attempts", attemptsLeft: 0 });
    expect((await nodes[1]!.call("GET", `/v1/otp/${id}`)).json.attemptsLeft).toBe(0);
  });
});
