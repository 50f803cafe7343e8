/**
 * `callbackUrl` end to end: a receiver gets each state change of an OTP's
 * job, signed with the callback secret, while a phone sends it.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, verifyCallback } from "../../api/callbacks/signature.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startReceiver, type Receiver } from "../callbacks/receiver.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectPhone, registerDevice, waitOnline } from "../support/phones.js";

describe("status callbacks", () => {
  let gw: TestGateway;
  let receiver: Receiver;
  let phone: SimulatedPhone;

  beforeAll(async () => {
    // The receiver fails its first request: the callback is retried, in order.
    receiver = await startReceiver((index) => (index === 0 ? 503 : 200));
    gw = await startGateway({ env: { FAILOVER_ORDER: "device" } });
    const device = await registerDevice(gw);
    phone = await connectPhone(gw, device, { deliveredAfterMs: 30 });
    await waitOnline(gw, device.id);
  });
  afterAll(async () => {
    await phone?.close();
    await gw?.close();
    await receiver?.close();
  });

  it("posts dispatched, sent and delivered, signed, retried past a failure, without the code", async () => {
    const created = await gw.call("POST", "/v1/otp", { to: "+254744000001", callbackUrl: receiver.url });
    expect(created.status).toBe(202);
    await eventually(async () => receiver.requests.length >= 4 || false, 8000, "callbacks");
    await gw.gateway.callbacks.drain();

    const secret = readFileSync(path.join(gw.dataDir, "callback-secret"), "utf8").trim();
    const bodies = receiver.requests.map((request) => {
      expect(request.path).toBe(new URL(receiver.url).pathname);
      expect(verifyCallback(secret, request.headers[SIGNATURE_HEADER], request.headers[TIMESTAMP_HEADER], request.body)).toBe(true);
      expect(verifyCallback("another-secret-that-is-long-enough!!", request.headers[SIGNATURE_HEADER], request.headers[TIMESTAMP_HEADER], request.body)).toBe(false);
      return JSON.parse(request.body) as { type: string; id: string; status: string; route: string | null };
    });
    // The first (failed) delivery of "dispatched" is repeated before anything later is sent.
    expect(bodies.map((b) => b.status)).toEqual(["dispatched", "dispatched", "sent", "delivered"]);
    expect(bodies.every((b) => b.type === "otp" && b.id === created.json.id)).toBe(true);
    expect(bodies.at(-1)!.route).toMatch(/^device:/);
    const code = phone.sent[0]!.body.match(/\d{6}/)![0];
    expect(receiver.requests.some((r) => r.body.includes(code))).toBe(false);
  });
});
