/**
 * Several brokers (the provisioning URI's repeated `mqtt=`): the simulated
 * phone tries them in order and moves on to the next when one cannot be
 * reached (connection refused, a TLS failure, a timeout), cycling, with its
 * reconnect backoff between attempts. Against real TLS Aedes brokers on
 * loopback and ports that are closed or never answer.
 */
import net from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProvisioningUri } from "../../broker/provisioning.js";
import { parseCliArgs } from "../../tools/phone-simulator/cli-args.js";
import { startPhone, type PhoneOptions, type SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { BrokerRotation, TLS_UNTRUSTED } from "../../tools/phone-simulator/transport.js";
import { job } from "./support/harness.js";
import { createAuthority, issueServerCertificate, type Authority } from "./support/pki.js";
import { startTlsBroker, type TestBroker } from "./support/tls-broker.js";

const DEVICE = "cluster-phone";
const TOKEN = "cluster-phone-token-secret";

let ca: Authority;
let otherCa: Authority;
const brokers: TestBroker[] = [];
const phones: SimulatedPhone[] = [];
const servers: net.Server[] = [];
let lines: string[] = [];

beforeAll(async () => {
  ca = await createAuthority();
  otherCa = await createAuthority("CN=unrelated CA");
});
afterEach(async () => {
  await Promise.all(phones.splice(0).map((phone) => phone.close()));
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
  for (const server of servers.splice(0)) server.close();
  lines = [];
});
afterAll(async () => {
  await Promise.all(brokers.splice(0).map((broker) => broker.close()));
});

/** A TLS broker whose certificate `issuer` signed (the test CA by default). */
async function broker(options: { issuer?: Authority; port?: number } = {}): Promise<TestBroker> {
  const issuer = options.issuer ?? ca;
  const leaf = await issueServerCertificate(issuer, { dns: ["localhost"], ips: ["127.0.0.1"] });
  const started = await startTlsBroker({
    key: leaf.keyPem,
    certChain: `${leaf.pem}\n${issuer.pem}\n`,
    tokens: { [DEVICE]: TOKEN },
    ...(options.port === undefined ? {} : { port: options.port }),
  });
  brokers.push(started);
  return started;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A loopback port nothing listens on: connecting to it is refused at once. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A port that accepts TCP and then says nothing: no TLS handshake, no CONNACK, ever. */
async function silentPort(): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const held = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    accepted += 1;
    held.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => held.delete(socket));
  });
  server.on("close", () => held.forEach((socket) => socket.destroy()));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  servers.push(server);
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

async function start(url: string[], overrides: Partial<PhoneOptions> = {}): Promise<SimulatedPhone> {
  const phone = await startPhone({
    url,
    deviceId: DEVICE,
    token: TOKEN,
    caFingerprint: ca.fingerprint,
    latencyMs: 0,
    deliveredAfterMs: 20,
    connectTimeoutMs: 10_000,
    reconnectMinMs: 50,
    reconnectMaxMs: 200,
    logger: (line) => lines.push(line),
    ...overrides,
  });
  phones.push(phone);
  return phone;
}

/** The phone is connected to `target` and subscribed there (it subscribes itself on every connection). */
async function waitUntilOn(target: TestBroker): Promise<void> {
  await vi.waitFor(() => expect(target.subscriptions.some((sub) => sub.clientId === DEVICE)).toBe(true), { timeout: 5_000 });
}

/** A job through `broker` reaches the phone and is acked as sent by it. */
async function expectJobThrough(target: TestBroker, phone: SimulatedPhone, id: string): Promise<void> {
  await target.publishOut(DEVICE, job(id));
  await vi.waitFor(() => expect(target.acks(DEVICE).filter((ack) => ack.id === id).map((ack) => ack.status)).toContain("sent"), { timeout: 5_000 });
  expect(phone.sent.map((sms) => sms.id)).toContain(id);
}

describe("several brokers", () => {
  it("connects through the second when the first is a closed port, and takes a job there", async () => {
    const closed = await closedPort();
    const good = await broker();
    const phone = await start([`mqtts://127.0.0.1:${closed}`, good.url]);

    expect(phone.connected).toBe(true);
    expect(good.clients).toEqual([{ id: DEVICE, clean: false }]);
    expect(lines).toContainEqual(expect.stringContaining(`no connection to mqtts://127.0.0.1:${closed}; ${good.url} is next`));
    expect(lines).toContainEqual(expect.stringContaining(`connected to ${good.url}`));
    await expectJobThrough(good, phone, "via-second");
  });

  it("goes through the list from a provisioning URI with repeated mqtt=, as the CLI reads it", async () => {
    const closed = await closedPort();
    const good = await broker();
    const uri = buildProvisioningUri({ mqttUrls: [`mqtts://127.0.0.1:${closed}`, good.url], deviceId: DEVICE, token: TOKEN, caFingerprint: ca.fingerprint });
    const command = parseCliArgs(["--provisioning", uri]);
    if (command.kind !== "run") expect.fail("not a run");
    expect(command.settings.phone.url).toEqual([`mqtts://127.0.0.1:${closed}`, good.url]);

    const phone = await start([...command.settings.phone.url], { caFingerprint: command.settings.caFingerprint });
    await expectJobThrough(good, phone, "via-uri");
  });

  it("moves on from a broker that accepts the connection but never answers, after attemptTimeoutMs", async () => {
    const silent = await silentPort();
    const good = await broker();
    const started = Date.now();
    const phone = await start([`mqtts://127.0.0.1:${silent.port}`, good.url], { attemptTimeoutMs: 300 });

    expect(silent.accepted()).toBe(1);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(lines).toContainEqual(expect.stringContaining("connack timeout"));
    await expectJobThrough(good, phone, "after-timeout");
  });

  it("moves on from a broker whose certificate it cannot trust, without sending it the token", async () => {
    const impostor = await broker({ issuer: otherCa });
    const good = await broker();
    const phone = await start([impostor.url, good.url]);

    expect(phone.connected).toBe(true);
    expect(impostor.tcpConnections).toBeGreaterThanOrEqual(1);
    expect(impostor.applicationBytes).toBe(0);
    expect(impostor.connects).toEqual([]);
    await expectJobThrough(good, phone, "past-impostor");
  });

  it("gives up at once only when every broker of the list refuses it", async () => {
    const first = await broker({ issuer: otherCa });
    const second = await broker({ issuer: otherCa });
    const started = Date.now();
    await expect(start([first.url, second.url])).rejects.toMatchObject({ code: TLS_UNTRUSTED });
    // Both were tried, well before the 10 s connect timeout.
    expect(first.tcpConnections).toBeGreaterThanOrEqual(1);
    expect(second.tcpConnections).toBeGreaterThanOrEqual(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("follows the cluster: a broker that goes away sends it to the next, and past the last back to the first", async () => {
    const a = await broker();
    const b = await broker();
    const phone = await start([a.url, b.url]);
    expect(a.clients).toHaveLength(1);
    await expectJobThrough(a, phone, "on-a");

    // A dies: the phone retries it (refused), then reaches B.
    const portA = portOf(a.url);
    await a.close();
    brokers.splice(brokers.indexOf(a), 1);
    await waitUntilOn(b);
    await expectJobThrough(b, phone, "on-b");
    expect(b.clients).toHaveLength(1);

    // A comes back where it was, then B dies: B is retried first, then the list wraps around to A.
    const aAgain = await broker({ port: portA });
    await b.close();
    brokers.splice(brokers.indexOf(b), 1);
    await waitUntilOn(aAgain);
    await expectJobThrough(aAgain, phone, "on-a-again");
    expect(aAgain.clients).toHaveLength(1);
    expect(lines).toContainEqual(expect.stringContaining(`no connection to ${b.url}; ${a.url} is next`));
    // Each job was sent once, each through the broker it came from.
    expect(phone.sent.map((sms) => sms.id)).toEqual(["on-a", "on-b", "on-a-again"]);
  });

  it("reports every broker when none can be reached in time", async () => {
    const [one, two] = [await closedPort(), await closedPort()];
    await expect(start([`mqtts://127.0.0.1:${one}`, `mqtts://127.0.0.1:${two}`], { connectTimeoutMs: 600 })).rejects.toThrow(
      `could not connect to any of mqtts://127.0.0.1:${one}, mqtts://127.0.0.1:${two} within 600 ms`,
    );
  });

  it("refuses an empty list, and a bad URL anywhere in it, before dialling", async () => {
    const good = await broker();
    await expect(start([])).rejects.toThrow(/at least one broker URL/);
    await expect(start([good.url, "https://h"])).rejects.toThrow(/mqtts:\/\/ or mqtt:\/\//);
    // A CA pin makes no sense for a plain mqtt:// broker, wherever it is in the list.
    await expect(start([good.url, "mqtt://127.0.0.1:1"])).rejects.toThrow(/need an mqtts:\/\/ url/);
    expect(good.tcpConnections).toBe(0);
  });
});

describe("BrokerRotation", () => {
  it("starts with the first and cycles through the list in order", () => {
    const rotation = new BrokerRotation(["a", "b", "c"]);
    expect(rotation.current).toBe("a");
    expect([rotation.advance(), rotation.advance(), rotation.advance(), rotation.advance()]).toEqual(["b", "c", "a", "b"]);
    expect(rotation.index).toBe(1);
    expect(rotation.size).toBe(3);
  });

  it("stays on a single broker", () => {
    const rotation = new BrokerRotation(["only"]);
    expect(rotation.advance()).toBe("only");
  });

  it("needs at least one", () => {
    expect(() => new BrokerRotation([])).toThrow(/at least one broker/);
  });
});
