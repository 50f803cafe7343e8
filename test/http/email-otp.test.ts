import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

describe.each(["sqlite", "redis"] as const)("email OTP end to end (%s store)", (storeKind) => {
  let smtp: SmtpSink;
  let gw: TestGateway;

  beforeAll(async () => {
    smtp = await startSmtpSink();
    gw = await startGateway({
      store: storeKind,
      env: { SMTP_URL: smtp.url, EMAIL_FROM: "codes@otpgate.test", FAILOVER_ORDER: "email", OTP_APP_NAME: "Acme" },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await smtp?.close();
  });

  it("mails the code; the first verify approves it and the second does not", async () => {
    const created = await gw.call("POST", "/v1/otp", { email: "Ada@Example.com", channel: "email", locale: "fr" });
    expect(created.status).toBe(202);
    expect(created.json).toMatchObject({ status: "pending", channel: "email", delivery: { state: "queued" } });

    const mail = await smtp.waitForMessage((m) => m.to.includes("ada@example.com"));
    expect(mail.from).toBe("codes@otpgate.test");
    expect(mail.subject).toBe("Votre code de vérification Acme");
    const code = codeIn(mail.text);
    expect(code).toHaveLength(6);

    const sent = await eventually(async () => {
      const view = await gw.call("GET", `/v1/otp/${created.json.id}`);
      return view.json.delivery.state === "sent" && view.json;
    });
    expect(sent.delivery.route).toBe("email");
    expect(sent.delivery.attempts).toEqual([expect.objectContaining({ route: "email", state: "sent" })]);
    expect(JSON.stringify(sent)).not.toContain(code);

    const first = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code });
    expect(first.json).toEqual({ valid: true, status: "approved", attemptsLeft: 4 });
    const second = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code });
    expect(second.status).toBe(200);
    expect(second.json).toMatchObject({ valid: false, status: "approved" });
  });

  it("verifies by email address without the id, and refuses a wrong code", async () => {
    const created = await gw.call("POST", "/v1/otp", { email: "grace@example.com" });
    expect(created.json.channel).toBe("email");
    const mail = await smtp.waitForMessage((m) => m.to.includes("grace@example.com"));
    const code = codeIn(mail.text);
    const wrong = String((Number(code) + 1) % 1_000_000).padStart(6, "0");
    expect((await gw.call("POST", "/v1/otp/verify", { email: "grace@example.com", code: wrong })).json).toEqual({
      valid: false,
      status: "pending",
      attemptsLeft: 4,
    });
    expect((await gw.call("POST", "/v1/otp/verify", { email: "grace@example.com", code })).json.valid).toBe(true);
  });
});
