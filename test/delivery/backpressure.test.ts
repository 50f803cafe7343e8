import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";

const SID = "AC00000000000000000000000000000bp";
const TOKEN = "backpressure-token";

describe("backpressure", () => {
  let twilio: FakeTwilio;
  let gw: TestGateway;

  beforeAll(async () => {
    twilio = await startFakeTwilio({ accountSid: SID, authToken: TOKEN });
    gw = await startGateway({
      env: { ...twilioEnv(twilio, { accountSid: SID, authToken: TOKEN }), DISPATCH_MAX_IN_FLIGHT: "2" },
    });
  });
  afterAll(async () => {
    await gw?.close();
    await twilio?.close();
  });

  it("refuses new work with 503 and Retry-After while the node is at capacity, and takes it again after", async () => {
    twilio.delayMs = 600;
    const accepted = await Promise.all([
      gw.call("POST", "/v1/messages", { to: "+254711000501", body: "one" }),
      gw.call("POST", "/v1/messages", { to: "+254711000502", body: "two" }),
    ]);
    expect(accepted.map((r) => r.status)).toEqual([202, 202]);

    const refused = await gw.call("POST", "/v1/messages", { to: "+254711000503", body: "three" });
    expect(refused.status).toBe(503);
    expect(refused.json.error.code).toBe("overloaded");
    expect(refused.headers.get("retry-after")).toBe("1");
    const otp = await gw.call("POST", "/v1/otp", { to: "+254711000504" });
    expect(otp.status).toBe(503);
    expect(otp.json.error.code).toBe("overloaded");

    await gw.gateway.dispatcher.drain();
    twilio.delayMs = 0;
    expect((await gw.call("POST", "/v1/messages", { to: "+254711000503", body: "three" })).status).toBe(202);
    // Refused work was never sent: only the accepted messages reached the provider.
    await gw.gateway.dispatcher.drain();
    expect(twilio.received.map((m) => m.body).sort()).toEqual(["one", "three", "two"]);
    // A refused OTP request did not start a cooldown or count against the number.
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000504" })).status).toBe(202);
  });
});
