import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DuplicateMessageError, MessageService } from "../../api/delivery/message-service.js";
import { createSealer } from "../../api/security/sealing.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { startGateway, type TestGateway } from "../support/gateway.js";

const SID = `AC${"e4".repeat(16)}`;
const TOKEN = "dispatcher-token";

describe.each(["sqlite", "redis"] as const)("dispatcher (%s store)", (storeKind) => {
  let twilio: FakeTwilio;
  let gw: TestGateway;
  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({ store: storeKind, env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), FAILOVER_ORDER: "twilio" } });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("sends a job once even when it is submitted twice at the same moment", async () => {
    twilio.delayMs = 100;
    const created = await gw.call("POST", "/v1/messages", { to: "+254755000001", body: "only once" });
    gw.gateway.dispatcher.submit(created.json.id);
    gw.gateway.dispatcher.submit(created.json.id);
    await gw.gateway.dispatcher.drain();
    expect(twilio.received.filter((m) => m.body === "only once")).toHaveLength(1);
    const view = (await gw.call("GET", `/v1/messages/${created.json.id}`)).json;
    expect(view.delivery.attempts).toHaveLength(1);
  });

  it("refuses a message id that exists, and sends nothing for the repeat", async () => {
    // The REST API makes its own ids; repeated ids arrive over MQTT (sms/send with an id) through this same service.
    const messages = new MessageService({
      store: gw.gateway.store,
      dispatcher: gw.gateway.dispatcher,
      sealer: createSealer("a-sealing-secret-for-this-test-only-0000"),
      messageTtlSeconds: 60,
      retentionSeconds: 60,
    });
    const first = await messages.send({ id: `dup-${storeKind}`, to: "+254755000002", body: "first" });
    await gw.gateway.dispatcher.drain();
    const sent = twilio.received.length;
    await expect(messages.send({ id: first.id, to: "+254755000002", body: "second" })).rejects.toBeInstanceOf(DuplicateMessageError);
    await gw.gateway.dispatcher.drain();
    expect(twilio.received.length).toBe(sent);
    expect(twilio.received.map((m) => m.body)).not.toContain("second");
  });
});
