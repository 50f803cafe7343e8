/**
 * Part (c) of bench/phone-channel.ts: an MQTT broker on a plain loopback TCP port, in its own
 * process like the Mosquitto it is compared with.
 *   - `aedes`: the aedes package as it comes (Aedes.createBroker(), default in-memory persistence);
 *   - `otpgate`: otpgate's broker (broker/mqtt-broker.ts: Aedes plus authentication, the ACL,
 *     payload checks and the transport-ack signal), with a fixed list of principals in place of
 *     the device store, which is not what is measured.
 */
import { createServer, type AddressInfo, type Server } from "node:net";
import { Aedes } from "aedes";
import { pino } from "pino";
import { MqttBroker } from "../broker/mqtt-broker.js";
import { serve } from "./ipc.js";

let server: Server | undefined;
let close: () => Promise<void> = async () => {};

async function start(args: { kind: "aedes" | "otpgate" }): Promise<number> {
  if (args.kind === "aedes") {
    const aedes = await Aedes.createBroker();
    server = createServer((socket) => aedes.handle(socket));
    await new Promise<void>((resolve) => server!.listen(0, "127.0.0.1", resolve));
    close = async () => {
      await new Promise((resolve) => server!.close(resolve));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    };
    return (server.address() as AddressInfo).port;
  }
  const broker = await MqttBroker.create({
    logger: pino({ level: "silent" }),
    recordAck: async () => {},
    // `dev_…` users are phones (client id must equal the id), anything else a publisher.
    authenticate: async (clientId, username) =>
      username?.startsWith("dev_")
        ? clientId === username
          ? { ok: true, principal: { kind: "device", deviceId: username } }
          : { ok: false, reason: "client id must be the device id", badCredentials: false }
        : { ok: true, principal: { kind: "publisher", name: username ?? "anonymous" } },
  });
  const { port } = await broker.listenTcp({ port: 0, host: "127.0.0.1" });
  close = () => broker.close();
  return port;
}

serve(async (op, args) => {
  switch (op) {
    case "start":
      return start(args);
    case "close":
      return close();
    default:
      throw new Error(`unknown op ${op}`);
  }
});
