/**
 * Two nodes sharing one Redis: a phone connected to node A takes a job that
 * node B accepted, its acks reach B's waiting dispatcher, and removing the
 * device through B disconnects it from A.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectPhone, registerDevice, waitOnline } from "../support/phones.js";

describe("two nodes on one Redis", () => {
  let a: TestGateway;
  let b: TestGateway;
  let phone: SimulatedPhone | undefined;

  beforeAll(async () => {
    const env = { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "3000", DEVICE_SENT_TIMEOUT_MS: "3000" };
    a = await startGateway({ store: "redis", env });
    b = await startGateway({ store: "redis", env, redisKeyPrefix: a.redisKeyPrefix, dataDir: a.dataDir });
  });
  afterAll(async () => {
    await phone?.close();
    await Promise.all([a?.close(), b?.close()]);
  });

  it("a job accepted by node B is sent by a phone on node A, and B sees it sent", async () => {
    const device = await registerDevice(b, { name: "on node A" });
    phone = await connectPhone(a, device);
    await waitOnline(b, device.id);

    const created = await b.call("POST", "/v1/messages", { to: "+254733000001", body: "across nodes" });
    expect(created.status).toBe(202);
    const view = await eventually(async () => {
      const v = (await b.call("GET", `/v1/messages/${created.json.id}`)).json;
      return v.status === "sent" && v;
    }, 8000, "sent via the other node");
    expect(view.delivery.route).toBe(`device:${device.id}`);
    expect(phone.sent.map((s) => s.body)).toEqual(["across nodes"]);
    // Both nodes read the same job.
    expect((await a.call("GET", `/v1/messages/${created.json.id}`)).json.status).toBe("sent");
  });

  it("deleting the device on node B closes its connection on node A at once", async () => {
    const device = await registerDevice(b, { name: "to be removed" });
    const other = await connectPhone(a, device);
    try {
      await waitOnline(b, device.id);
      expect((await b.call("DELETE", `/v1/devices/${device.id}`)).status).toBe(204);
      await other.waitFor(() => !other.connected, 3000);
      expect(other.connected).toBe(false);
    } finally {
      await other.close();
    }
  });
});
