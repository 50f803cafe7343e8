/**
 * MQTT over WebSocket at /mqtt on the HTTP port, and provisioning: the URI a
 * phone scans (as a PNG or SVG QR code), what it carries, and the CA it pins.
 */
import { X509Certificate, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { connect as tlsConnect } from "node:tls";
import type { MqttClient } from "mqtt";
import QRCode from "qrcode";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseProvisioningUri } from "../../broker/provisioning.js";
import { startPhone, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { ADMIN_KEY, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { ackFor, collect, connectClient, endClient, subscribeCodes, tryConnect } from "../support/mqtt-clients.js";
import { registerDevice, waitOnline } from "../support/phones.js";

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

describe("MQTT over WebSocket, QR codes and provisioning", () => {
  let gw: TestGateway;
  let wsUrl: string;
  const clients: MqttClient[] = [];
  const phones: SimulatedPhone[] = [];

  const fetchRaw = async (route: string, key: string | null = ADMIN_KEY) => {
    const response = await fetch(gw.url + route, { headers: key ? { authorization: `Bearer ${key}` } : {} });
    return { status: response.status, headers: response.headers, body: Buffer.from(await response.arrayBuffer()) };
  };
  const qrRoute = (id: string, token: string, format?: "png" | "svg") =>
    `/v1/devices/${encodeURIComponent(id)}/qr?token=${encodeURIComponent(token)}${format ? `&format=${format}` : ""}`;

  beforeAll(async () => {
    gw = await startGateway({ env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "1000", DEVICE_SENT_TIMEOUT_MS: "1500" } });
    wsUrl = `ws://127.0.0.1:${new URL(gw.url).port}/mqtt`;
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map(endClient));
    await Promise.all(phones.splice(0).map((p) => p.close()));
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("a device connected over WebSocket at /mqtt receives a job and its acks settle it", async () => {
    const device = await registerDevice(gw, { name: "websocket phone" });
    const client = await connectClient(wsUrl, { clientId: device.id, username: device.id, password: device.token, clean: false });
    clients.push(client);
    const jobs = collect(client);
    expect(await subscribeCodes(client, `sms/out/${device.id}`)).toEqual([1]);
    await waitOnline(gw, device.id);

    const to = "+254722000950";
    const created = await gw.call("POST", "/v1/messages", { to, body: "over a websocket" });
    expect(created.status).toBe(202);
    await eventually(async () => jobs.length > 0, 3000, "the job over the WebSocket");
    expect(jobs).toHaveLength(1);
    expect(jobs[0]!.topic).toBe(`sms/out/${device.id}`);
    expect(JSON.parse(jobs[0]!.payload)).toMatchObject({ id: created.json.id, to, body: "over a websocket", expiresAt: expect.any(String) });

    await client.publishAsync(`sms/ack/${device.id}`, ackFor(created.json.id, "received"), { qos: 1 });
    await client.publishAsync(`sms/ack/${device.id}`, ackFor(created.json.id, "sent"), { qos: 1 });
    const view = await eventually(async () => {
      const v = (await gw.call("GET", `/v1/messages/${created.json.id}`)).json;
      return v.status === "sent" && v;
    }, 3000, "the job to be sent");
    expect(view.delivery.route).toBe(`device:${device.id}`);
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${device.id}`, state: "sent", receivedAt: expect.any(String) })]);
  });

  it("WebSocket clients face the same authentication: a wrong token is refused (4), another device's client id too (5)", async () => {
    const device = await registerDevice(gw, { name: "websocket auth" });
    expect((await tryConnect(wsUrl, { clientId: device.id, username: device.id, password: "og_dev_wrong" })).code).toBe(4);
    expect((await tryConnect(wsUrl, { clientId: `not-${device.id}`, username: device.id, password: device.token })).code).toBe(5);
    const ok = await tryConnect(wsUrl, { clientId: device.id, username: device.id, password: device.token });
    expect(ok.code).toBe(0);
    clients.push(ok.client!);
  });

  it("GET /v1/devices/:id/qr gives the provisioning URI as a PNG, or an SVG; a wrong token gives 404", async () => {
    const created = await gw.call("POST", "/v1/devices", { name: "qr phone" });
    const { id, token, provisioning } = created.json as { id: string; token: string; provisioning: string };

    const png = await fetchRaw(qrRoute(id, token));
    expect(png.status).toBe(200);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(png.headers.get("cache-control")).toBe("no-store");
    expect(png.body.subarray(0, 8)).toEqual(PNG_SIGNATURE);
    expect(png.body.subarray(12, 16).toString("ascii")).toBe("IHDR");
    expect([png.body.readUInt32BE(16), png.body.readUInt32BE(20)]).toEqual([512, 512]);
    // It encodes exactly the provisioning URI (the same QR, drawn the same way, is byte for byte the same).
    expect(png.body.equals(await QRCode.toBuffer(provisioning, { type: "png", errorCorrectionLevel: "M", width: 512 }))).toBe(true);
    expect(png.body.equals(await QRCode.toBuffer(`${provisioning}x`, { type: "png", errorCorrectionLevel: "M", width: 512 }))).toBe(false);

    const svg = await fetchRaw(qrRoute(id, token, "svg"));
    expect(svg.status).toBe(200);
    expect(svg.headers.get("content-type")).toMatch(/^image\/svg\+xml/);
    expect(svg.body.toString()).toContain("<svg");
    expect(svg.body.toString()).toBe(await QRCode.toString(provisioning, { type: "svg", errorCorrectionLevel: "M" }));

    const wrong = await fetchRaw(qrRoute(id, `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`));
    expect(wrong.status).toBe(404);
    expect(wrong.headers.get("content-type")).toMatch(/^application\/json/);
    expect(wrong.body.toString()).not.toContain(token);
    expect((await fetchRaw(qrRoute(`dev_${"0".repeat(12)}`, token))).status).toBe(404);
    expect((await fetchRaw(`/v1/devices/${id}/qr`)).status).toBe(400);

    // After a rotation only the new token draws the code.
    const rotated = await gw.call("POST", `/v1/devices/${id}/token`);
    expect((await fetchRaw(qrRoute(id, token))).status).toBe(404);
    const fresh = await fetchRaw(qrRoute(id, rotated.json.token, "svg"));
    expect(fresh.status).toBe(200);
    expect(fresh.body.toString()).toBe(await QRCode.toString(rotated.json.provisioning, { type: "svg", errorCorrectionLevel: "M" }));
  });

  it("the provisioning URI carries the mqtts URL, the device id, its token and the CA fingerprint, and is enough to connect", async () => {
    const created = await gw.call("POST", "/v1/devices", { name: "provisioned phone" });
    expect(created.status).toBe(201);
    const fields = parseProvisioningUri(created.json.provisioning);
    const caFingerprint = new X509Certificate(gw.gateway.tls.caPem).fingerprint256;

    expect(fields.mqttUrl).toBe(created.json.mqtt.url);
    const mqttUrl = new URL(fields.mqttUrl);
    expect(mqttUrl.protocol).toBe("mqtts:");
    expect(Number(mqttUrl.port)).toBe(gw.mqtts);
    expect(fields.deviceId).toBe(created.json.id);
    expect(fields.token).toBe(created.json.token);
    expect(fields.caFingerprint).toBe(caFingerprint);
    expect(created.json.caFingerprint).toBe(caFingerprint);
    expect(created.json.mqtt).toEqual({ url: fields.mqttUrl, username: created.json.id, password: created.json.token, clientId: created.json.id });
    const caUrl = new URL(fields.caUrl!);
    expect(caUrl.pathname).toBe("/ca.pem");
    expect(caUrl.port).toBe(new URL(gw.url).port);

    // A phone that knows only what it scanned (pinning the fingerprint; loopback stands in for the host name).
    const phone = await startPhone({
      url: `mqtts://127.0.0.1:${mqttUrl.port}`,
      deviceId: fields.deviceId,
      token: fields.token,
      caFingerprint: fields.caFingerprint,
      heartbeatSeconds: 3600,
      deliveredAfterMs: null,
      connectTimeoutMs: 5000,
    });
    phones.push(phone);
    expect(phone.connected).toBe(true);
    await waitOnline(gw, fields.deviceId);
  });

  it("GET /ca.pem needs no key and serves the CA the fingerprint names", async () => {
    const ca = await fetchRaw("/ca.pem", null);
    expect(ca.status).toBe(200);
    expect(ca.headers.get("content-type")).toMatch(/^application\/x-pem-file/);
    const pem = ca.body.toString();
    expect(pem).toBe(gw.gateway.tls.caPem);
    expect(pem).toBe(readFileSync(path.join(gw.dataDir, "tls", "ca.pem"), "utf8"));
    const certificate = new X509Certificate(pem);
    expect(certificate.ca).toBe(true);
    const device = await gw.call("POST", "/v1/devices", { name: `ca check ${randomUUID().slice(0, 6)}` });
    expect(parseProvisioningUri(device.json.provisioning).caFingerprint).toBe(certificate.fingerprint256);
    // The broker's TLS certificate chains to it.
    const served = await new Promise<X509Certificate>((resolve, reject) => {
      const socket = tlsConnect({ host: "127.0.0.1", port: gw.mqtts, ca: pem }, () => {
        const peer = socket.getPeerX509Certificate();
        socket.destroy();
        if (!socket.authorized || !peer) reject(new Error(`not authorised: ${String(socket.authorizationError)}`));
        else resolve(peer);
      });
      socket.once("error", reject);
    });
    expect(served.checkIssued(certificate)).toBe(true);
    expect(served.checkIP("127.0.0.1")).toBe("127.0.0.1");
  });
});
