/**
 * A throwaway Aedes broker behind `tls.createServer`, on loopback, standing in
 * for the real broker while the simulator is tested on its own. It records
 * what a test needs to assert on: every CONNECT seen (preConnect), every
 * accepted client, every publish, and the application bytes each TLS
 * connection delivered, which proves that a refused phone never sent its
 * CONNECT (and so its token).
 */
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import { Aedes, type AuthenticateError, type Client, type ConnectPacket } from "aedes";

export interface SeenPublish {
  topic: string;
  payload: string;
  retain: boolean;
  qos: number;
  /** The publishing client, or null for the broker itself (wills, test publishes). */
  clientId: string | null;
}

export interface TestBroker {
  url: string;
  aedes: Aedes;
  connects: ConnectPacket[];
  clients: Array<{ id: string; clean: boolean }>;
  publishes: SeenPublish[];
  subscriptions: Array<{ clientId: string; topic: string; qos: number }>;
  /** TCP connections accepted, whether or not their TLS handshake completed. */
  tcpConnections: number;
  tlsHandshakes: number;
  applicationBytes: number;
  /** Publishes a job (object → JSON, string/Buffer as is) on sms/out/<deviceId>, QoS 1. */
  publishOut(deviceId: string, payload: unknown): Promise<void>;
  acks(deviceId: string): Array<{ id: string; status: string; error?: string; at: string }>;
  statuses(deviceId: string): SeenPublish[];
  retained(topic: string): Promise<string | null>;
  /** Destroys the broker side of a client's connection (network loss seen from the server). */
  dropClient(clientId: string): void;
  close(): Promise<void>;
}

export async function startTlsBroker(options: {
  key: string;
  /** Server certificate first, then the CA (the chain the broker presents). */
  certChain: string;
  tokens: Record<string, string>;
  /** A fixed loopback port (a broker coming back where it was); default: any free one. */
  port?: number;
}): Promise<TestBroker> {
  const aedes = await Aedes.createBroker({
    preConnect: (_client, packet, done) => {
      state.connects.push(packet);
      done(null, true);
    },
    authenticate: (_client, username, password, done) => {
      const expected = username === undefined ? undefined : options.tokens[username];
      if (expected !== undefined && password?.toString() === expected) {
        done(null, true);
        return;
      }
      const error = new Error("bad credentials") as AuthenticateError;
      error.returnCode = 4;
      done(error, null);
    },
  });

  const liveClients = new Map<string, Client>();
  const state: TestBroker = {
    url: "",
    aedes,
    connects: [],
    clients: [],
    publishes: [],
    subscriptions: [],
    tcpConnections: 0,
    tlsHandshakes: 0,
    applicationBytes: 0,
    publishOut: (deviceId, payload) =>
      new Promise<void>((resolve, reject) => {
        const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === "string" ? payload : JSON.stringify(payload));
        aedes.publish(
          { cmd: "publish", topic: `sms/out/${deviceId}`, payload: bytes, qos: 1, retain: false, dup: false },
          (error) => (error ? reject(error) : resolve()),
        );
      }),
    acks: (deviceId) =>
      state.publishes.filter((seen) => seen.topic === `sms/ack/${deviceId}`).map((seen) => JSON.parse(seen.payload)),
    statuses: (deviceId) => state.publishes.filter((seen) => seen.topic === `sms/device/${deviceId}`),
    retained: async (topic) => {
      // Aedes's typings leave out its persistence; the in-memory one streams retained packets.
      const { persistence } = aedes as unknown as { persistence: { createRetainedStream(pattern: string): AsyncIterable<unknown> } };
      for await (const packet of persistence.createRetainedStream(topic)) {
        return (packet as { payload: Buffer }).payload.toString();
      }
      return null;
    },
    dropClient: (clientId) => {
      liveClients.get(clientId)?.conn.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };

  aedes.on("client", (client) => {
    state.clients.push({ id: client.id, clean: client.clean });
    liveClients.set(client.id, client);
  });
  aedes.on("clientDisconnect", (client) => {
    if (liveClients.get(client.id) === client) liveClients.delete(client.id);
  });
  aedes.on("subscribe", (subscriptions, client) => {
    for (const { topic, qos } of subscriptions) state.subscriptions.push({ clientId: client.id, topic, qos });
  });
  aedes.on("publish", (packet, client) => {
    if (packet.topic.startsWith("$SYS")) return;
    state.publishes.push({
      topic: packet.topic,
      payload: packet.payload.toString(),
      retain: packet.retain,
      qos: packet.qos,
      clientId: client ? client.id : null,
    });
  });

  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ key: options.key, cert: options.certChain }, (socket) => {
    state.tlsHandshakes += 1;
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on("close", () => sockets.delete(socket));
    // Aedes reads with 'readable'; this listener sees the same chunks as it reads them.
    socket.on("data", (chunk: Buffer) => {
      state.applicationBytes += chunk.length;
    });
    aedes.handle(socket);
  });
  server.on("connection", () => {
    state.tcpConnections += 1;
  });
  // A phone that refuses the server tears the connection down mid-handshake; that is not a test failure.
  server.on("tlsClientError", () => {});
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  state.url = `mqtts://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}
