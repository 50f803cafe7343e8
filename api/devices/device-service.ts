/**
 * Sending devices and MQTT publishers: registration (token shown once, kept
 * as a digest), listing with presence, removal (which disconnects at once),
 * and the MQTT authentication of both.
 */
import { randomBytes, randomUUID } from "node:crypto";
import type { MqttAuthenticator } from "../../broker/mqtt-broker.js";
import { DEVICE_ID_PATTERN } from "../../broker/topics.js";
import { buildProvisioningUri } from "../../broker/provisioning.js";
import { digestEquals, keyDigest, newApiKey } from "../keys/api-key-format.js";
import type { DevicePresence, DeviceRecord, PublisherRecord, Store } from "../store/store.js";
import { isOnline } from "../delivery/device-route.js";

export const DEFAULT_MAX_PER_MINUTE = 20;

export interface DeviceView {
  id: string;
  name: string;
  maxPerMinute: number;
  prefixes: string[];
  createdAt: string;
  online: boolean;
  sentLastMinute: number;
  presence: DevicePresence | null;
}

export interface Provisioning {
  mqtt: { url: string; username: string; password: string; clientId: string };
  caFingerprint: string;
  provisioning: string;
}

export interface DeviceServiceDeps {
  store: Store;
  /** Closes a client's MQTT connection on whichever node holds it. */
  disconnect(clientId: string, reason: string): void;
  /** The mqtts:// URLs handed to phones (PUBLIC_MQTT_URL), in the order they try them. */
  publicMqttUrls: string[];
  caFingerprint: string;
  /** Where a phone can fetch the CA PEM (checked against the fingerprint). */
  caUrl: string;
  presenceStaleMs: number;
}


export class DeviceService {
  constructor(private readonly deps: DeviceServiceDeps) {}

  private provisioning(device: DeviceRecord, token: string): Provisioning {
    const { publicMqttUrls, caFingerprint, caUrl } = this.deps;
    return {
      // `url` is the first broker, as before; the provisioning URI carries them all.
      mqtt: { url: publicMqttUrls[0] ?? "", username: device.id, password: token, clientId: device.id },
      caFingerprint,
      provisioning: buildProvisioningUri({ mqttUrls: publicMqttUrls, deviceId: device.id, token, caFingerprint, caUrl }),
    };
  }

  async create(input: { name: string; maxPerMinute?: number; prefixes?: string[] }): Promise<{ device: DeviceRecord; token: string } & Provisioning> {
    const token = newApiKey("dev");
    const device: DeviceRecord = {
      id: `dev_${randomBytes(6).toString("hex")}`,
      name: input.name,
      tokenDigest: keyDigest(token),
      maxPerMinute: input.maxPerMinute ?? DEFAULT_MAX_PER_MINUTE,
      prefixes: input.prefixes ?? [],
      createdAt: new Date().toISOString(),
    };
    await this.deps.store.saveDevice(device);
    return { device, token, ...this.provisioning(device, token) };
  }

  /** A new token; the old one stops working and its connection is closed. */
  async rotateToken(id: string): Promise<({ device: DeviceRecord; token: string } & Provisioning) | null> {
    const device = await this.deps.store.getDevice(id);
    if (!device) return null;
    const token = newApiKey("dev");
    const updated = { ...device, tokenDigest: keyDigest(token) };
    await this.deps.store.saveDevice(updated);
    this.deps.disconnect(id, "token rotated");
    return { device: updated, token, ...this.provisioning(updated, token) };
  }

  /** The provisioning of a device, for whoever holds its token (the QR code route). */
  async provisioningFor(id: string, token: string): Promise<Provisioning | null> {
    const device = await this.deps.store.getDevice(id);
    if (!device || !digestEquals(device.tokenDigest, keyDigest(token))) return null;
    return this.provisioning(device, token);
  }

  async list(): Promise<DeviceView[]> {
    const devices = (await this.deps.store.listDevices()).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return this.views(devices);
  }

  async get(id: string): Promise<DeviceView | null> {
    const device = await this.deps.store.getDevice(id);
    return device ? ((await this.views([device]))[0] ?? null) : null;
  }

  private async views(devices: DeviceRecord[]): Promise<DeviceView[]> {
    const ids = devices.map((d) => d.id);
    const now = Date.now();
    const [presence, counts] = await Promise.all([this.deps.store.getPresence(ids), this.deps.store.deviceSendCounts(ids, now)]);
    return devices.map(({ tokenDigest: _digest, ...device }, i) => ({
      ...device,
      online: isOnline(presence[i] ?? null, now, this.deps.presenceStaleMs),
      sentLastMinute: counts[i] ?? 0,
      presence: presence[i] ?? null,
    }));
  }

  async delete(id: string): Promise<boolean> {
    const deleted = await this.deps.store.deleteDevice(id);
    if (deleted) this.deps.disconnect(id, "device deleted");
    return deleted;
  }

  async createPublisher(name: string): Promise<{ publisher: PublisherRecord; token: string } | null> {
    if (await this.deps.store.findPublisherByName(name)) return null;
    const token = newApiKey("pub");
    const publisher: PublisherRecord = { id: randomUUID(), name, tokenDigest: keyDigest(token), createdAt: new Date().toISOString() };
    await this.deps.store.savePublisher(publisher);
    return { publisher, token };
  }

  async deletePublisher(id: string): Promise<boolean> {
    const publisher = (await this.deps.store.listPublishers()).find((p) => p.id === id);
    if (!publisher) return false;
    await this.deps.store.deletePublisher(id);
    // Publishers connect with any client id; close whichever uses this name.
    this.deps.disconnect(`publisher:${publisher.name}`, "publisher deleted");
    return true;
  }

  /** MQTT CONNECT: username = device id (with client id = device id) or publisher name; password = token. */
  authenticate: MqttAuthenticator = async (clientId, username, password) => {
    if (!username || !password) return { ok: false, reason: "no username or password", badCredentials: true };
    const digest = keyDigest(password.toString());
    if (DEVICE_ID_PATTERN.test(username) && username.startsWith("dev_")) {
      const device = await this.deps.store.getDevice(username);
      if (!device || !digestEquals(device.tokenDigest, digest)) return { ok: false, reason: "unknown device or wrong token", badCredentials: true };
      if (clientId !== device.id) return { ok: false, reason: `a device must connect with client id = its id (${device.id})`, badCredentials: false };
      return { ok: true, principal: { kind: "device", deviceId: device.id } };
    }
    const publisher = await this.deps.store.findPublisherByName(username);
    if (!publisher || !digestEquals(publisher.tokenDigest, digest)) return { ok: false, reason: "unknown publisher or wrong token", badCredentials: true };
    // A client id is a session: a publisher using a device's would take over that phone's session
    // (closing the phone, and receiving the jobs queued for it). dev_ belongs to devices, as in publisher names.
    if (clientId.startsWith("dev_")) return { ok: false, reason: `client ids starting with dev_ are reserved for devices (${clientId})`, badCredentials: false };
    return { ok: true, principal: { kind: "publisher", name: publisher.name } };
  };
}
