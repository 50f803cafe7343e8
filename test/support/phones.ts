/** Registers phones through the API and connects simulated ones over TLS with the pinned CA. */
import { startPhone, type PhoneOptions, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import type { TestGateway } from "./gateway.js";

export interface RegisteredDevice {
  id: string;
  token: string;
  caFingerprint: string;
  mqttUrl: string;
}

export async function registerDevice(gw: TestGateway, body: Record<string, unknown> = { name: "test phone" }): Promise<RegisteredDevice> {
  const created = await gw.call("POST", "/v1/devices", body);
  if (created.status !== 201) throw new Error(`device not created: ${created.status} ${JSON.stringify(created.json)}`);
  return { id: created.json.id, token: created.json.token, caFingerprint: created.json.caFingerprint, mqttUrl: created.json.mqtt.url };
}

/** Connects like the app: TLS to the gateway's MQTT port on loopback, pinning the CA the API handed out. */
export function connectPhone(gw: Pick<TestGateway, "mqtts">, device: RegisteredDevice, options: Partial<PhoneOptions> = {}): Promise<SimulatedPhone> {
  return startPhone({
    url: `mqtts://127.0.0.1:${gw.mqtts}`,
    deviceId: device.id,
    token: device.token,
    caFingerprint: device.caFingerprint,
    heartbeatSeconds: 3600,
    deliveredAfterMs: null,
    ...options,
  });
}

/** Waits until the gateway has recorded the phone as online (its connect reached the store). */
export async function waitOnline(gw: TestGateway, deviceId: string, online = true, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const view = await gw.call("GET", `/v1/devices/${deviceId}`);
    if (view.json?.online === online) return;
    if (Date.now() > deadline) throw new Error(`device ${deviceId} never became ${online ? "online" : "offline"}: ${JSON.stringify(view.json)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
