/**
 * Trusting the broker: CA pinning by fingerprint and verification against a
 * given CA. A refused server must never receive the CONNECT packet, since it
 * carries the device token: the broker harness counts CONNECTs (preConnect),
 * accepted clients, and every application byte each TLS connection delivered.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { Aedes } from "aedes";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startPhone, type PhoneOptions, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { createAuthority, createIntermediate, issueServerCertificate, type Authority } from "./support/pki.js";
import { startTlsBroker, type TestBroker } from "./support/tls-broker.js";
import { sleep } from "./support/harness.js";

const DEVICE = "tls-phone";
const TOKEN = "tls-phone-token-secret";

let ca: Authority;
let otherCa: Authority;
const brokers: TestBroker[] = [];
const phones: SimulatedPhone[] = [];

beforeAll(async () => {
  ca = await createAuthority();
  otherCa = await createAuthority("CN=unrelated CA");
});
afterEach(async () => {
  await Promise.all(phones.splice(0).map((phone) => phone.close()));
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});
afterAll(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

/** A broker presenting `leaf` issued by `issuer`, then `intermediates`, then `presentedCa` (the real CA by default). */
async function brokerWith(
  options: {
    issuer?: Authority;
    intermediates?: Authority[];
    presentedCa?: Authority;
    dns?: string[];
    ips?: string[];
    withoutAuthorityKeyId?: boolean;
    notAfter?: Date;
  } = {},
) {
  const leaf = await issueServerCertificate(options.issuer ?? ca, {
    dns: options.dns ?? ["localhost"],
    ips: options.ips ?? ["127.0.0.1"],
    withoutAuthorityKeyId: options.withoutAuthorityKeyId ?? false,
    ...(options.notAfter ? { notAfter: options.notAfter } : {}),
  });
  const chain = [leaf.pem, ...(options.intermediates ?? []).map((intermediate) => intermediate.pem), (options.presentedCa ?? ca).pem];
  const broker = await startTlsBroker({
    key: leaf.keyPem,
    certChain: `${chain.join("\n")}\n`,
    tokens: { [DEVICE]: TOKEN },
  });
  brokers.push(broker);
  return broker;
}

async function start(broker: TestBroker, trust: Partial<PhoneOptions>): Promise<SimulatedPhone> {
  const phone = await startPhone({ url: broker.url, deviceId: DEVICE, token: TOKEN, connectTimeoutMs: 5_000, ...trust });
  phones.push(phone);
  return phone;
}

/** The phone dialled the broker, and not one MQTT byte reached it. */
async function expectRefusedBeforeConnect(broker: TestBroker): Promise<void> {
  await vi.waitFor(() => expect(broker.tcpConnections).toBeGreaterThanOrEqual(1));
  await sleep(100);
  expect(broker.applicationBytes).toBe(0);
  expect(broker.connects).toEqual([]);
  expect(broker.clients).toEqual([]);
}

describe("CA pinning (caFingerprint)", () => {
  it("connects when the pinned CA issued the server certificate", async () => {
    const broker = await brokerWith();
    const phone = await start(broker, { caFingerprint: ca.fingerprint });
    expect(phone.connected).toBe(true);
    expect(broker.clients).toEqual([{ id: DEVICE, clean: false }]);
  });

  it("accepts the fingerprint in any spelling", async () => {
    const broker = await brokerWith();
    const phone = await start(broker, { caFingerprint: ca.fingerprint.replace(/:/g, "").toLowerCase() });
    expect(phone.connected).toBe(true);
  });

  it("refuses a wrong fingerprint before sending CONNECT", async () => {
    const broker = await brokerWith();
    await expect(start(broker, { caFingerprint: otherCa.fingerprint })).rejects.toThrow(/pinned CA fingerprint/);
    await expectRefusedBeforeConnect(broker);
  });

  it("refuses an impostor certificate with the real CA appended to its chain", async () => {
    // Same issuer name as the real CA and no key identifier: only the signature tells them apart.
    const impostor = await createAuthority(ca.name);
    const broker = await brokerWith({ issuer: impostor, presentedCa: ca, withoutAuthorityKeyId: true });
    await expect(start(broker, { caFingerprint: ca.fingerprint })).rejects.toThrow(/refusing 127\.0\.0\.1/);
    await expectRefusedBeforeConnect(broker);
  });

  it("refuses a certificate from the pinned CA that names another host", async () => {
    const broker = await brokerWith({ dns: ["broker.example.com"], ips: [] });
    await expect(start(broker, { caFingerprint: ca.fingerprint })).rejects.toThrow(/not valid for 127\.0\.0\.1/);
    await expectRefusedBeforeConnect(broker);
  });

  it("connects through an intermediate CA of the pinned CA", async () => {
    const intermediate = await createIntermediate(ca, "CN=otpgate test intermediate");
    const broker = await brokerWith({ issuer: intermediate, intermediates: [intermediate] });
    const phone = await start(broker, { caFingerprint: ca.fingerprint });
    expect(phone.connected).toBe(true);
  });

  it("refuses a chain through a certificate of the pinned CA that is not a CA (basicConstraints)", async () => {
    const notCa = await createIntermediate(ca, "CN=an ordinary certificate", { ca: false });
    const broker = await brokerWith({ issuer: notCa, intermediates: [notCa] });
    await expect(start(broker, { caFingerprint: ca.fingerprint })).rejects.toThrow(/refusing 127\.0\.0\.1.*certificate not trusted/);
    await expectRefusedBeforeConnect(broker);
  });

  it("refuses a chain longer than an intermediate's path length allows", async () => {
    const limited = await createIntermediate(ca, "CN=no CA below me", { pathLength: 0 });
    const below = await createIntermediate(limited, "CN=a CA below it anyway");
    const broker = await brokerWith({ issuer: below, intermediates: [below, limited] });
    await expect(start(broker, { caFingerprint: ca.fingerprint })).rejects.toThrow(/refusing 127\.0\.0\.1.*certificate not trusted/);
    await expectRefusedBeforeConnect(broker);
  });

  it("refuses an expired server certificate from the pinned CA", async () => {
    const broker = await brokerWith({ notAfter: new Date(Date.now() - 60_000) });
    await expect(start(broker, { caFingerprint: ca.fingerprint })).rejects.toThrow(/expired or not yet valid/);
    await expectRefusedBeforeConnect(broker);
  });

  it("keeps trusting a pinned server when it also has the CA PEM", async () => {
    const broker = await brokerWith();
    const phone = await start(broker, { caFingerprint: ca.fingerprint, ca: `${otherCa.pem}\n${ca.pem}` });
    expect(phone.connected).toBe(true);
  });

  it("refuses options whose CA PEM does not carry the pinned fingerprint", async () => {
    const broker = await brokerWith();
    await expect(start(broker, { caFingerprint: ca.fingerprint, ca: otherCa.pem })).rejects.toThrow(/ca holds no certificate with fingerprint/);
    expect(broker.tcpConnections).toBe(0);
  });
});

describe("verification against a given CA (ca)", () => {
  it("connects to a server whose certificate that CA issued", async () => {
    const broker = await brokerWith();
    const phone = await start(broker, { ca: ca.pem });
    expect(phone.connected).toBe(true);
  });

  it("refuses a server issued by another CA before sending CONNECT", async () => {
    const broker = await brokerWith({ issuer: otherCa, presentedCa: otherCa });
    await expect(start(broker, { ca: ca.pem })).rejects.toThrow(/certificate not trusted/);
    await expectRefusedBeforeConnect(broker);
  });

  it("refuses a server certificate for another host", async () => {
    const broker = await brokerWith({ dns: ["broker.example.com"], ips: [] });
    await expect(start(broker, { ca: ca.pem })).rejects.toThrow(/ERR_TLS_CERT_ALTNAME_INVALID/);
    await expectRefusedBeforeConnect(broker);
  });

  it("speaks plain mqtt:// to a loopback dev broker", async () => {
    const aedes = await Aedes.createBroker();
    const server = net.createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const phone = await startPhone({ url, deviceId: DEVICE, token: TOKEN, connectTimeoutMs: 5_000, latencyMs: 0 });
      phones.push(phone);
      aedes.publish(
        { cmd: "publish", topic: `sms/out/${DEVICE}`, qos: 1, retain: false, dup: false, payload: Buffer.from(JSON.stringify({ id: "p1", to: "+15550001111", body: "hi", expiresAt: new Date(Date.now() + 60_000).toISOString() })) },
        () => {},
      );
      await phone.waitFor(() => phone.sent.length === 1);
      await phone.close();
    } finally {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("refuses pinning options on a plain mqtt:// url", async () => {
    await expect(startPhone({ url: "mqtt://127.0.0.1:1", deviceId: DEVICE, token: TOKEN, caFingerprint: ca.fingerprint })).rejects.toThrow(
      /need an mqtts:\/\/ url/,
    );
  });
});
