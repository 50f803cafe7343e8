/**
 * One phone's MQTT session for the reconnect storm, written against mqtt-packet over a raw TLS
 * socket instead of mqtt.js. mqtt.js costs the generator about as much CPU per connection as the
 * gateway spends on it (its stores, timers and option handling), and on a 2-core machine every
 * millisecond the generator burns is taken from the gateway, which then times phones out. The
 * packets are exactly the app's: CONNECT (clean = false, client id = device id, keepalive 60 s,
 * retained offline will), SUBSCRIBE sms/out/<id> at QoS 1, then a retained status at QoS 1.
 */
import { connect as tlsConnect, type SecureContext, type TLSSocket } from "node:tls";
import mqttPacket, { type Packet } from "mqtt-packet";
import type { Credentials } from "./phone-channel-client.js";

export interface SessionTarget {
  host: string;
  port: number;
  secureContext: SecureContext;
  /** Check the gateway's certificate against the CA in `secureContext`, as the app does. */
  verify: boolean;
}

export const KEEPALIVE_SECONDS = 60;
const SUBSCRIBE_ID = 1;
const STATUS_ID = 2;

/** A live connection: `socket` stays open after the attempt resolves, until dropped. */
export interface LeanSession {
  socket: TLSSocket;
  subscribedAt: number;
  publishedAt: number;
}

/**
 * CONNECT → CONNACK → SUBSCRIBE → SUBACK → status PUBLISH → PUBACK within `timeoutMs`, or a
 * rejection naming the step that failed (the socket is destroyed then).
 */
export function openSession(target: SessionTarget, device: Credentials, timeoutMs: number, now: () => number): Promise<LeanSession> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: target.host,
      port: target.port,
      servername: "localhost",
      secureContext: target.secureContext,
      rejectUnauthorized: target.verify,
    });
    const parser = mqttPacket.parser({ protocolVersion: 4 });
    // tcp: no connection yet (SYNs dropped by a full listen queue); tls: connected, waiting for the handshake.
    let step = "tcp";
    socket.once("connect", () => {
      if (step === "tcp") step = "tls";
    });
    let subscribedAt = 0;
    let settled = false;
    const fail = (message: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(message));
    };
    const timer = setTimeout(() => fail(`${step} timeout`), timeoutMs);
    const send = (packet: Packet) => socket.write(mqttPacket.generate(packet));

    socket.once("secureConnect", () => {
      step = "connack";
      send({
        cmd: "connect",
        protocolId: "MQTT",
        protocolVersion: 4,
        clean: false,
        clientId: device.id,
        keepalive: KEEPALIVE_SECONDS,
        username: device.id,
        password: Buffer.from(device.token),
        will: { topic: `sms/device/${device.id}`, payload: Buffer.from('{"online":false}'), qos: 1, retain: true },
      });
    });
    socket.on("error", (error) => fail(`${error.message}`));
    socket.on("close", () => fail(`connection closed before ${step}`));
    socket.on("data", (chunk: Buffer) => parser.parse(chunk));
    parser.on("error", (error) => fail(`bad packet: ${error.message}`));
    parser.on("packet", (packet) => {
      if (packet.cmd === "publish" && packet.qos === 1 && packet.messageId !== undefined) {
        // A job waiting in the session: acknowledged so the gateway does not resend it.
        send({ cmd: "puback", messageId: packet.messageId });
        return;
      }
      if (settled) return;
      if (step === "connack" && packet.cmd === "connack") {
        if (packet.returnCode !== 0) return fail(`connack refused (${packet.returnCode})`);
        step = "suback";
        send({ cmd: "subscribe", messageId: SUBSCRIBE_ID, subscriptions: [{ topic: `sms/out/${device.id}`, qos: 1 }] });
      } else if (step === "suback" && packet.cmd === "suback" && packet.messageId === SUBSCRIBE_ID) {
        if (packet.granted[0] === 128) return fail(`subscription to sms/out/${device.id} refused`);
        subscribedAt = now();
        step = "puback";
        send({
          cmd: "publish",
          topic: `sms/device/${device.id}`,
          payload: JSON.stringify({ online: true, battery: 90, at: new Date().toISOString() }),
          qos: 1,
          retain: true,
          dup: false,
          messageId: STATUS_ID,
        });
      } else if (step === "puback" && packet.cmd === "puback" && packet.messageId === STATUS_ID) {
        settled = true;
        clearTimeout(timer);
        resolve({ socket, subscribedAt, publishedAt: now() });
      }
    });
  });
}

const PINGREQ = mqttPacket.generate({ cmd: "pingreq" });

/** Keeps idle sessions alive: one timer for a whole process instead of one per connection. */
export function pingEvery(seconds: number, sockets: () => Iterable<TLSSocket | undefined>): NodeJS.Timeout {
  const timer = setInterval(() => {
    for (const socket of sockets()) if (socket && !socket.destroyed) socket.write(PINGREQ);
  }, seconds * 1000);
  timer.unref();
  return timer;
}
