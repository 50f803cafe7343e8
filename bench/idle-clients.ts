/**
 * Part (b) of bench/phone-channel.ts: idle phones over MQTT/TLS, in a process of their own so
 * the gateway's RSS is measured alone. Several of these run at once to stay under per-process
 * file descriptor limits. Each connection does what the app does on connect, then nothing:
 * persistent session with client id = device id, keepalive 60 s, retained offline will,
 * subscription to its own sms/out, one retained online status.
 */
import { openPaced, type OpenResult } from "./paced-open.js";
import { readFileSync } from "node:fs";
import mqtt, { type MqttClient } from "mqtt";
import type { Credentials } from "./phone-channel-client.js";
import { serve } from "./ipc.js";

const clients: MqttClient[] = [];

async function connectOne(url: string, ca: Buffer, device: Credentials): Promise<void> {
  const client = await mqtt.connectAsync(url, {
    ca,
    servername: "localhost",
    clientId: device.id,
    username: device.id,
    password: device.token,
    clean: false,
    keepalive: 60,
    protocolVersion: 4,
    // A lost connection would be a result to report, not something to paper over.
    reconnectPeriod: 0,
    connectTimeout: 60_000,
    will: { topic: `sms/device/${device.id}`, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
  });
  clients.push(client);
  await client.subscribeAsync(`sms/out/${device.id}`, { qos: 1 });
  await client.publishAsync(`sms/device/${device.id}`, JSON.stringify({ online: true, battery: 90, at: new Date().toISOString() }), { qos: 1, retain: true });
}

/** Handshakes under way at once per process: the gateway's queue of half-open connections stays short. */
const MAX_PENDING = 32;

/**
 * Opens one connection per device, at most `perSecond` new ones a second and MAX_PENDING at a
 * time, so connections wait here rather than in the gateway, where a CONNECT not handled within
 * 10 s (Aedes' connectTimeout) is reset: the rate alone is not enough once each connection costs
 * the gateway more than the rate allows for.
 */
async function connect(args: { url: string; caFile: string; devices: Credentials[]; perSecond: number }): Promise<OpenResult> {
  const ca = readFileSync(args.caFile);
  return openPaced(args.devices, args.perSecond, MAX_PENDING, (device) => connectOne(args.url, ca, device));
}

/** Connections still open now (the gateway may have dropped some since they connected). */
function stillConnected(): number {
  return clients.filter((client) => client.connected).length;
}

serve(async (op, args) => {
  switch (op) {
    case "connect":
      return connect(args);
    case "count":
      return stillConnected();
    case "close":
      // Abrupt on purpose: thousands of goodbyes are not what is measured, and the gateway is stopped next.
      for (const client of clients) client.end(true);
      return null;
    default:
      throw new Error(`unknown op ${op}`);
  }
});
