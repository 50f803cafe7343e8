/**
 * Admission control against hostile clients (broker/admission.ts,
 * packet-guard.ts, login-backoff.ts, refusal-log.ts), on real sockets over
 * loopback. Attackers connect from 127.0.0.2 and up (all of 127/8 is
 * loopback on Linux), so the per-source limits apply to them while the
 * phones and publishers of the test connect from 127.0.0.1, exempt.
 */
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { Writable } from "node:stream";
import { generate } from "mqtt-packet";
import { pino } from "pino";
import { WebSocket } from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { MqttBroker } from "../../broker/mqtt-broker.js";
import { MAX_PACKET_BYTES, PacketGuard } from "../../broker/packet-guard.js";
import { MAX_PAYLOAD_BYTES } from "../../broker/payloads.js";
import { MAX_TOPIC_BYTES } from "../../broker/topics.js";
import { LoginBackoff } from "../../broker/login-backoff.js";
import { sourceKey } from "../../broker/admission.js";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectClient, endClient, metricValue, sleep, subscribeCodes, tryConnect } from "../support/mqtt-clients.js";
import { connectPhone, registerDevice, waitOnline } from "../support/phones.js";
import type { MqttClient } from "mqtt";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";

const REFUSED = "otpgate_mqtt_connections_refused_total";
const sockets: Socket[] = [];
const mqttClients: MqttClient[] = [];
const phones: SimulatedPhone[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(mqttClients.splice(0).map((c) => endClient(c)));
  await Promise.all(phones.splice(0).map((p) => p.close()));
});

/** MQTT's variable-length remaining length. */
function remainingLength(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    bytes.push(byte);
  } while (n > 0);
  return Buffer.from(bytes);
}

const CLAIM_200MB = Buffer.concat([Buffer.from([0x10]), remainingLength(200 * 1024 * 1024)]);
const ZEROS = Buffer.alloc(64 * 1024);

interface Flood {
  /** Bytes the kernel took from us before the server closed the connection. */
  written: number;
  closedAfterMs: number;
}

/** Claims a 200 MB CONNECT, then writes zeros as fast as the socket takes them until the server closes it. */
function flood(open: () => Socket | WebSocket, maxMs = 5000): Promise<Flood> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let written = 0;
    const timer = setTimeout(() => reject(new Error(`still open after ${maxMs} ms, ${written} bytes written`)), maxMs);
    const target = open();
    const finish = () => {
      clearTimeout(timer);
      resolve({ written, closedAfterMs: Date.now() - started });
    };
    if (target instanceof WebSocket) {
      target.on("error", () => {});
      target.on("close", finish);
      target.on("open", () => {
        target.send(CLAIM_200MB);
        const pump = () => {
          if (target.readyState !== WebSocket.OPEN) return;
          // ws frames of 16 KiB, under the 64 KiB frame cap: the MQTT packet is what is too big.
          while (target.bufferedAmount < 1024 * 1024 && target.readyState === WebSocket.OPEN) {
            target.send(ZEROS.subarray(0, 16 * 1024));
            written += 16 * 1024;
          }
          setImmediate(pump);
        };
        pump();
      });
      return;
    }
    sockets.push(target);
    target.on("error", () => {});
    target.on("close", finish);
    const pump = () => {
      while (!target.destroyed && target.write(ZEROS)) written += ZEROS.length;
      if (!target.destroyed) written += ZEROS.length;
    };
    target.on("drain", pump);
    const start = () => {
      target.write(CLAIM_200MB);
      pump();
    };
    if (target.readyState === "open" && !(target as { encrypted?: boolean }).encrypted) start();
    else target.once((target as { encrypted?: boolean }).encrypted ? "secureConnect" : "connect", start);
  });
}

/** A raw connection that sends nothing; resolves with how long the server kept it open. */
function silent(open: () => Socket | WebSocket, maxMs = 8000): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const timer = setTimeout(() => reject(new Error(`silent connection still open after ${maxMs} ms`)), maxMs);
    const target = open();
    if (!(target instanceof WebSocket)) sockets.push(target);
    target.on("error", () => {});
    target.on("close", () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

/** One raw CONNECT from `localAddress`: the CONNACK return code, or "closed" if the server closed first. */
function rawConnect(port: number, localAddress: string, fields: { clientId: string; username?: string; password?: string }): Promise<number | "closed"> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ port, host: "127.0.0.1", localAddress });
    sockets.push(socket);
    socket.on("error", () => {});
    socket.once("connect", () =>
      socket.write(
        generate({
          cmd: "connect",
          protocolId: "MQTT",
          protocolVersion: 4,
          clean: true,
          keepalive: 30,
          clientId: fields.clientId,
          ...(fields.username ? { username: fields.username } : {}),
          ...(fields.password ? { password: Buffer.from(fields.password) } : {}),
        }),
      ),
    );
    socket.once("data", (data: Buffer) => {
      resolve(data[0] === 0x20 ? data[3]! : "closed");
      socket.destroy();
    });
    socket.once("close", () => resolve("closed"));
  });
}

/** TLS from a given loopback address (tls.connect's types lack localAddress; a TCP socket of our own carries it). */
function tlsFrom(port: number, localAddress: string): TLSSocket {
  return tlsConnect({ socket: tcpConnect({ port, host: "127.0.0.1", localAddress }), rejectUnauthorized: false });
}

const rssMb = () => process.memoryUsage().rss / 2 ** 20;

describe("the packet guard (unit)", () => {
  it("passes a PUBLISH of the largest payload to the longest topic, and refuses one byte more", () => {
    // The exact figure: 8 KiB payload + topic length (2) + the longest otpgate topic + packet id (2).
    expect(MAX_PACKET_BYTES).toBe(MAX_PAYLOAD_BYTES + 2 + MAX_TOPIC_BYTES + 2);
    const limits = { preAuthPacketBytes: 4096, preAuthBytes: 16384, packetBytes: MAX_PACKET_BYTES };
    const guard = new PacketGuard(limits);
    guard.authenticated = true;
    const topic = `sms/device/${"d".repeat(64)}`;
    const biggest = generate({ cmd: "publish", topic, payload: Buffer.alloc(MAX_PAYLOAD_BYTES), qos: 1, messageId: 7, retain: false, dup: false });
    // Split at every awkward place: inside the fixed header and inside the body.
    expect(guard.scan(biggest.subarray(0, 1))).toBe(true);
    expect(guard.scan(biggest.subarray(1, 2))).toBe(true);
    expect(guard.scan(biggest.subarray(2, 100))).toBe(true);
    expect(guard.scan(Buffer.concat([biggest.subarray(100), generate({ cmd: "pingreq" })]))).toBe(true);
    const tooBig = generate({ cmd: "publish", topic, payload: Buffer.alloc(MAX_PAYLOAD_BYTES + 1), qos: 1, messageId: 8, retain: false, dup: false });
    expect(guard.scan(tooBig.subarray(0, 5))).toBe(false);
    expect(guard.refusal).toMatchObject({ reason: "packet_too_large", packet: "publish", claimed: MAX_PACKET_BYTES + 1 });
  });

  it("before the CONNACK: a CONNECT over the limit, bytes over the budget, a malformed length", () => {
    const fresh = () => new PacketGuard({ preAuthPacketBytes: 4096, preAuthBytes: 16384, packetBytes: MAX_PACKET_BYTES });
    const big = fresh();
    expect(big.scan(CLAIM_200MB)).toBe(false);
    expect(big.refusal?.reason).toBe("connect_too_large");
    const ok = fresh();
    // A Paho phone's CONNECT with its will and token is ~250 bytes.
    const connect = generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: false, keepalive: 30, clientId: "dev_0123456789ab", username: "dev_0123456789ab", password: Buffer.from(`og_dev_${"x".repeat(43)}`), will: { topic: "sms/device/dev_0123456789ab", payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    expect(connect.length).toBeLessThan(300);
    expect(ok.scan(connect)).toBe(true);
    const pings = Buffer.concat(Array.from({ length: 9000 }, () => generate({ cmd: "pingreq" })));
    expect(ok.scan(pings)).toBe(false);
    expect(ok.refusal?.reason).toBe("preauth_too_large");
    const malformed = fresh();
    expect(malformed.scan(Buffer.from([0x10, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe(false);
    expect(malformed.refusal?.reason).toBe("malformed_length");
  });

  it("login back-off: a source is blocked after N failures, growing, and a success lifts it; usernames only get late answers", () => {
    const backoff = new LoginBackoff({ after: 3, maxMs: 4000, forgetMs: 60_000 });
    expect(backoff.failed("10.0.0.1", "dev_a", 0)).toBe(0);
    expect(backoff.failed("10.0.0.1", "dev_a", 0)).toBe(0);
    expect(backoff.blockedFor("10.0.0.1", 0)).toBe(0);
    // The third failure: its answer is held 1 s, and the address is blocked for 1 s after that answer.
    expect(backoff.failed("10.0.0.1", "dev_a", 0)).toBe(1000);
    expect(backoff.blockedFor("10.0.0.1", 0)).toBe(2000);
    expect(backoff.failed("10.0.0.1", "dev_a", 1000)).toBe(2000);
    expect(backoff.blockedFor("10.0.0.1", 1000)).toBe(4000);
    for (let i = 0; i < 10; i++) backoff.failed("10.0.0.1", "dev_a", 3000);
    expect(backoff.failed("10.0.0.1", "dev_a", 3000)).toBe(4000);
    expect(backoff.blockedFor("10.0.0.1", 3000)).toBe(8000);
    // The phone behind the same address gets in once the block lapses; its success clears the source.
    backoff.succeeded("10.0.0.1", "dev_b");
    expect(backoff.blockedFor("10.0.0.1", 11_001)).toBe(0);
    expect(backoff.failed("10.0.0.2", "dev_a", 11_001)).toBeGreaterThan(0); // the username is still backed off
    expect(backoff.failed("10.0.0.1", undefined, 11_001)).toBe(0);
    expect(backoff.blockedFor("10.0.0.1", 11_001)).toBe(0); // the address is not, until N new failures
    // Forgotten after a quiet while.
    backoff.sweep(11_001 + 60_001);
    expect(backoff.size).toEqual({ sources: 0, usernames: 0 });
  });

  it("IPv6 sources are keyed by their /64", () => {
    expect(sourceKey("2001:db8:1:2:aaaa::1")).toBe("2001:db8:1:2::/64");
    expect(sourceKey("2001:db8:1:2:bbbb:cccc:dddd:eeee")).toBe("2001:db8:1:2::/64");
    expect(sourceKey("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(sourceKey("192.0.2.1")).toBe("192.0.2.1");
  });
});

describe("hostile clients against a gateway", () => {
  let gw: TestGateway;
  let wsUrl: string;
  beforeAll(async () => {
    gw = await startGateway({
      store: "memory",
      env: {
        MQTT_EXEMPT_SOURCES: "127.0.0.1",
        MQTT_CONNECT_TIMEOUT_MS: "800",
        MQTT_MAX_UNAUTHENTICATED_PER_SOURCE: "8",
        MQTT_LOGIN_BACKOFF_AFTER: "3",
        MQTT_LOGIN_BACKOFF_MAX_MS: "1500",
      },
    });
    wsUrl = `${gw.url.replace("http", "ws")}/mqtt`;
  });
  afterAll(async () => gw?.close());

  it("drops 200 MB CONNECT claims on TCP, TLS and WebSocket at once, holds no memory for them, and a phone still gets its job", async () => {
    const device = await registerDevice(gw, { name: "under attack" });
    const phone = await connectPhone(gw, device);
    phones.push(phone);
    await waitOnline(gw, device.id);
    const before = await metricValue(gw, REFUSED, { reason: "connect_too_large" });
    const rssBefore = rssMb();
    let peak = rssBefore;
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb())), 50);

    // Several attackers at once, each reconnecting as soon as it is dropped, for ~3 s.
    const transports = {
      tcp: (i: number) => () => tcpConnect({ port: gw.mqtt, host: "127.0.0.1", localAddress: `127.0.0.${10 + i}` }),
      tls: (i: number) => () => tlsFrom(gw.mqtts, `127.0.0.${20 + i}`),
      ws: (i: number) => () => new WebSocket(wsUrl, "mqtt", { localAddress: `127.0.0.${30 + i}` }),
    };
    const results: Record<string, Flood[]> = { tcp: [], tls: [], ws: [] };
    const until = Date.now() + 3000;
    const attackers = Object.entries(transports).flatMap(([name, make]) =>
      [0, 1, 2].map(async (i) => {
        while (Date.now() < until) results[name]!.push(await flood(make(i)));
      }),
    );
    // Meanwhile a phone connects and gets a job.
    const late = await registerDevice(gw, { name: "arrives during the attack" });
    const latePhone = await connectPhone(gw, late);
    phones.push(latePhone);
    await waitOnline(gw, late.id);
    await phone.disconnect();
    await waitOnline(gw, device.id, false);
    const sent = await gw.call("POST", "/v1/messages", { to: "+254711000001", body: "still delivered" });
    expect(sent.status).toBe(202);
    await latePhone.waitFor(() => latePhone.sent.some((s) => s.id === sent.json.id), 5000);
    await Promise.all(attackers);
    clearInterval(sampler);

    for (const [name, floods] of Object.entries(results)) {
      expect(floods.length, name).toBeGreaterThan(3);
      const worst = floods.reduce((a, b) => (b.written > a.written ? b : a));
      // The kernel's socket buffers on loopback take a few MB before the close lands; nothing near 200 MB.
      expect(worst.written, `${name}: bytes written before the close`).toBeLessThan(16 * 2 ** 20);
      expect(Math.max(...floods.map((f) => f.closedAfterMs)), `${name}: time to close`).toBeLessThan(2000);
    }
    const total = Object.values(results).flat().reduce((sum, f) => sum + f.written, 0);
    // The whole attack wrote hundreds of MB; the gateway (this process) grew by a small fraction of it.
    expect(peak - rssBefore, `RSS growth while ${Math.round(total / 2 ** 20)} MB were thrown at it`).toBeLessThan(150);
    expect(await metricValue(gw, REFUSED, { reason: "connect_too_large" })).toBeGreaterThanOrEqual(before + 9);
    if (process.env.HOSTILE_REPORT) {
      const worst = Object.fromEntries(Object.entries(results).map(([n, f]) => [n, { floods: f.length, maxWrittenKB: Math.round(Math.max(...f.map((x) => x.written)) / 1024), maxCloseMs: Math.max(...f.map((x) => x.closedAfterMs)) }]));
      console.log(JSON.stringify({ totalMB: Math.round(total / 2 ** 20), rssGrowthMB: Math.round(peak - rssBefore), worst }));
    }
  }, 30_000);

  it("closes an authenticated client whose packet claims more than MAX_PACKET_BYTES; the biggest valid one passes", async () => {
    const device = await registerDevice(gw, { name: "big talker" });
    const refusedPublishes = await metricValue(gw, "otpgate_mqtt_refusals_total", { what: "publish" });
    const client = await connectClient(`mqtt://127.0.0.1:${gw.mqtt}`, { clientId: device.id, username: device.id, password: device.token });
    mqttClients.push(client);
    // Exactly MAX_PAYLOAD_BYTES on its own status topic: read, judged (not a valid status) and dropped; the connection stays.
    await client.publishAsync(`sms/device/${device.id}`, Buffer.alloc(MAX_PAYLOAD_BYTES, 0x20), { qos: 1 });
    expect(client.connected).toBe(true);
    // One byte over, on the wire by hand: the header is enough to close it.
    const socket = (client as unknown as { stream: Socket }).stream;
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    socket.write(Buffer.concat([Buffer.from([0x32]), remainingLength(MAX_PACKET_BYTES + 1), Buffer.alloc(1024)]));
    await closed;
    expect(await metricValue(gw, REFUSED, { reason: "packet_too_large" })).toBeGreaterThanOrEqual(1);
    expect(await metricValue(gw, "otpgate_mqtt_refusals_total", { what: "publish" })).toBe(refusedPublishes + 1);
  });

  it("closes a connection that says nothing within MQTT_CONNECT_TIMEOUT_MS on TCP, TLS (after the handshake) and WebSocket", async () => {
    const before = await metricValue(gw, REFUSED, { reason: "connect_timeout" });
    const [tcp, tls, ws] = await Promise.all([
      silent(() => tcpConnect({ port: gw.mqtt, host: "127.0.0.1", localAddress: "127.0.0.40" })),
      silent(() => tlsFrom(gw.mqtts, "127.0.0.41")),
      silent(() => new WebSocket(wsUrl, "mqtt", { localAddress: "127.0.0.42" })),
    ]);
    for (const [name, ms] of Object.entries({ tcp, tls, ws })) {
      expect(ms, name).toBeGreaterThanOrEqual(700);
      expect(ms, name).toBeLessThan(2500);
    }
    // A CONNECT dripped a byte at a time never completes, and is cut off at the same deadline.
    const drip = tcpConnect({ port: gw.mqtt, host: "127.0.0.1", localAddress: "127.0.0.43" });
    sockets.push(drip);
    const connect = generate({ cmd: "connect", protocolId: "MQTT", protocolVersion: 4, clean: true, keepalive: 30, clientId: "slowpoke" });
    let at = 0;
    const dripper = setInterval(() => at < connect.length - 1 && drip.write(connect.subarray(at, ++at)), 100);
    const dripped = await silent(() => drip);
    clearInterval(dripper);
    expect(dripped).toBeLessThan(2500);
    expect(await metricValue(gw, REFUSED, { reason: "connect_timeout" })).toBeGreaterThanOrEqual(before + 4);
  });

  it("caps unauthenticated connections per source across listeners; authenticated ones and other sources are not counted", async () => {
    const source = "127.0.0.50";
    const before = await metricValue(gw, REFUSED, { reason: "source_limit" });
    // Silent on plain TCP and WebSocket (the CONNECT timeout ends them) and on the TLS port (its handshake timeout does).
    const waiting = Array.from({ length: 8 }, (_, i) =>
      silent(() => (i % 2 ? tcpConnect({ port: gw.mqtt, host: "127.0.0.1", localAddress: source }) : new WebSocket(wsUrl, "mqtt", { localAddress: source }))),
    );
    await sleep(150);
    // The 9th, on any listener, is closed at once.
    const ninthTcp = await silent(() => tcpConnect({ port: gw.mqtt, host: "127.0.0.1", localAddress: source }));
    const ninthWs = await silent(() => new WebSocket(wsUrl, "mqtt", { localAddress: source }));
    expect(ninthTcp).toBeLessThan(300);
    expect(ninthWs).toBeLessThan(300);
    expect(await metricValue(gw, REFUSED, { reason: "source_limit" })).toBe(before + 2);
    // Another source is not affected.
    const device = await registerDevice(gw, { name: "next door" });
    expect(await rawConnect(gw.mqtt, "127.0.0.51", { clientId: device.id, username: device.id, password: device.token })).toBe(0);
    // Once the silent ones time out, the source can log in again; a logged-in connection frees its place.
    await Promise.all(waiting);
    expect(await rawConnect(gw.mqtt, source, { clientId: device.id, username: device.id, password: device.token })).toBe(0);
  });

  it("backs off a source after repeated failed logins; a phone behind the same address gets in once the block lapses", async () => {
    const neighbour = "127.0.0.60";
    const device = await registerDevice(gw, { name: "behind a NAT" });
    const before = await metricValue(gw, REFUSED, { reason: "login_backoff" });
    // Three different usernames, so no username is backed off: this is about the address.
    for (let i = 0; i < 3; i++) expect(await rawConnect(gw.mqtt, neighbour, { clientId: `guess-${i}`, username: `guess-${i}`, password: `wrong-${i}` })).toBe(4);
    // Blocked at accept: not even the right token gets a CONNACK (the cost of sharing an address with a guesser).
    expect(await rawConnect(gw.mqtt, neighbour, { clientId: device.id, username: device.id, password: device.token })).toBe("closed");
    expect(await metricValue(gw, REFUSED, { reason: "login_backoff" })).toBe(before + 1);
    // Other sources are not.
    expect(await rawConnect(gw.mqtt, "127.0.0.61", { clientId: device.id, username: device.id, password: device.token })).toBe(0);
    // The first block is 1 s; then the phone gets in, and its success clears the address.
    await sleep(1100);
    expect(await rawConnect(gw.mqtt, neighbour, { clientId: device.id, username: device.id, password: device.token })).toBe(0);
    expect(await rawConnect(gw.mqtt, neighbour, { clientId: "guess-x", username: "guess-x", password: "wrong" })).toBe(4);
    expect(await rawConnect(gw.mqtt, neighbour, { clientId: device.id, username: device.id, password: device.token })).toBe(0);
  });

  it("a publisher cannot take over another publisher's client id (nor a device's)", async () => {
    const make = async (name: string) => {
      const created = await gw.call("POST", "/v1/publishers", { name });
      expect(created.status).toBe(201);
      return created.json.mqtt as { username: string; password: string };
    };
    const billing = await make("billing");
    const intruder = await make("intruder");
    const url = `mqtt://127.0.0.1:${gw.mqtt}`;
    const owner = await connectClient(url, { clientId: "billing-1", ...billing });
    mqttClients.push(owner);
    const other = await connectClient(url, { clientId: "billing-1", ...intruder });
    mqttClients.push(other);
    await sleep(200);
    // Each publisher's client ids are its own: the intruder has a session of its own and billing stays connected.
    expect(owner.connected).toBe(true);
    expect(other.connected).toBe(true);
    const clients = (gw.gateway.broker.aedes as unknown as { clients: Record<string, unknown> }).clients;
    expect(Object.keys(clients)).toEqual(expect.arrayContaining(["pub:billing:billing-1", "pub:intruder:billing-1"]));
    // A device's client id is refused outright.
    const device = await registerDevice(gw, { name: "not yours" });
    expect((await tryConnect(url, { clientId: device.id, ...intruder })).code).toBe(5);
    // The same publisher reconnecting with its own id still takes over its own old session, as MQTT says.
    const again = await connectClient(url, { clientId: "billing-1", ...billing });
    mqttClients.push(again);
    await eventually(async () => !owner.connected, 2000, "billing's old connection to be replaced");
    expect(other.connected).toBe(true);
  });
});

describe("refusals are logged in summary", () => {
  it("2,000 refused filters from one client make one log line with the count; a 2,000-filter SUBSCRIBE is over the packet limit and closes the connection", async () => {
    const lines: Array<{ msg: string; source?: string; refused?: Record<string, number>; total?: number }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        for (const line of chunk.toString().split("\n").filter(Boolean)) lines.push(JSON.parse(line));
        callback();
      },
    });
    const broker = await MqttBroker.create({
      authenticate: async (clientId) => ({ ok: true, principal: { kind: "device", deviceId: clientId } }),
      recordAck: async () => {},
      logger: pino({ level: "warn" }, sink),
      refusalLog: { gatherMs: 2000, intervalMs: 60_000 },
    });
    try {
      const { port } = await broker.listenTcp({ port: 0, host: "127.0.0.1" });
      const client = await connectClient(`mqtt://127.0.0.1:${port}`, { clientId: "dev_noisy" });
      mqttClients.push(client);
      // Aedes drops repeats within a SUBSCRIBE, so 2,000 distinct filters, in packets under the limit.
      for (let batch = 0; batch < 5; batch++) {
        const filters = Array.from({ length: 400 }, (_, i) => `sms/out/x${batch * 400 + i}`);
        expect(new Set(await subscribeCodes(client, filters))).toEqual(new Set([128]));
      }
      await eventually(async () => lines.some((l) => l.total === 2000), 6000, "the summary line");
      await sleep(400);
      const summaries = lines.filter((l) => l.msg.startsWith("mqtt: refused"));
      expect(summaries).toHaveLength(1);
      expect(summaries[0]).toMatchObject({ source: "127.0.0.1", refused: { subscription: 2000 }, total: 2000 });
      expect(lines).toHaveLength(1);

      // All 2,000 in one SUBSCRIBE: ~25 KB, over MAX_PACKET_BYTES, closed on its header.
      const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
      client.subscribe(Array.from({ length: 2000 }, (_, i) => `sms/out/y${i}`), { qos: 1 });
      await closed;
    } finally {
      await broker.close();
    }
  });
});

describe("silent TLS connections", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ store: "memory", env: { MQTT_TLS_HANDSHAKE_TIMEOUT_MS: "500" } });
  });
  afterAll(async () => gw?.close());

  it("closes 300 silent TLS sockets within the handshake timeout (plus one turn of the gate), and a phone connects meanwhile", async () => {
    const device = await registerDevice(gw, { name: "patient" });
    const before = await metricValue(gw, REFUSED, { reason: "tls_handshake_timeout" });
    const started = Date.now();
    const all = Array.from({ length: 300 }, () => silent(() => tcpConnect({ port: gw.mqtts, host: "127.0.0.1" }), 5000));
    await sleep(100);
    const phone = await connectPhone(gw, device);
    phones.push(phone);
    const times = await Promise.all(all);
    // 256 are served at once and time out at 500 ms; the 44 behind them then get their own 500 ms.
    expect(Math.max(...times)).toBeLessThan(2000);
    expect(Date.now() - started).toBeLessThan(2500);
    await waitOnline(gw, device.id);
    expect(await metricValue(gw, REFUSED, { reason: "tls_handshake_timeout" })).toBeGreaterThanOrEqual(before + 300);
  });
});

describe("MQTT over WebSocket behind a trusted proxy (TRUST_PROXY)", () => {
  let gw: TestGateway;
  let wsUrl: string;
  const proxy = "127.0.0.60";
  beforeAll(async () => {
    gw = await startGateway({
      store: "memory",
      env: { TRUST_PROXY: proxy, MQTT_EXEMPT_SOURCES: "none", MQTT_CONNECT_TIMEOUT_MS: "800", MQTT_MAX_UNAUTHENTICATED_PER_SOURCE: "2" },
    });
    wsUrl = `${gw.url.replace("http", "ws")}/mqtt`;
  });
  afterAll(async () => gw?.close());

  const viaProxy = (from: string, client: string) => () => new WebSocket(wsUrl, "mqtt", { localAddress: from, headers: { "x-forwarded-for": client } });

  it("counts each forwarded client on its own, so phones behind the load balancer do not share one limit", async () => {
    const before = await metricValue(gw, REFUSED, { reason: "source_limit" });
    const waiting = [silent(viaProxy(proxy, "198.51.100.1")), silent(viaProxy(proxy, "198.51.100.1"))];
    await sleep(150);
    // A third from the same client is over its limit; another client behind the same proxy is not.
    expect(await silent(viaProxy(proxy, "198.51.100.1"))).toBeLessThan(300);
    expect(await silent(viaProxy(proxy, "198.51.100.2"))).toBeGreaterThanOrEqual(700);
    await Promise.all(waiting);
    expect(await metricValue(gw, REFUSED, { reason: "source_limit" })).toBe(before + 1);
  });

  it("ignores X-Forwarded-For from a peer that is not a trusted proxy: a spoofed header does not dodge the limit", async () => {
    const before = await metricValue(gw, REFUSED, { reason: "source_limit" });
    const stranger = "127.0.0.61";
    const waiting = [silent(viaProxy(stranger, "198.51.100.7")), silent(viaProxy(stranger, "198.51.100.8"))];
    await sleep(150);
    expect(await silent(viaProxy(stranger, "198.51.100.9"))).toBeLessThan(300);
    await Promise.all(waiting);
    expect(await metricValue(gw, REFUSED, { reason: "source_limit" })).toBe(before + 1);
  });
});
