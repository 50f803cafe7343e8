/**
 * Jobs waiting for a phone in the broker's Redis persistence carry the SMS
 * text (an OTP code) and the number. aedes-persistence-redis stores packets
 * as they are, so without this they would sit in Redis in clear for up to an
 * hour. Here the payload of every `sms/out/…` packet is sealed (AES-GCM, the
 * key derived from OTP_SECRET that every node shares) on its way into the
 * queue and opened on its way out; the live delivery to a connected phone is
 * untouched (Aedes writes its own copy of the packet).
 *
 * Only the queue methods move packets for `sms/out/…`: enqueue, update (when
 * a message id is attached), clear (it returns the stored packet) and the
 * stream replayed when a phone reconnects.
 *
 * A publisher's packets to `sms/send` and `sms/out/…` reach three more places
 * (found by test/security/at-rest.test.ts): an `sms/send` at QoS 2 is kept as
 * an incoming packet until its PUBREL (forever, if the publisher never sends
 * it), a will on either topic is kept from CONNECT until it fires, and a
 * retained `sms/send` (or a will on `sms/out/…`, published with no client to
 * authorise) would stay in the retained hash. Incoming packets and wills are
 * sealed the same way; a job is never kept retained (no one may subscribe to
 * `sms/send`, and a retained job would be replayed to a phone on every
 * subscribe). Device statuses and their wills carry no secret and stay as
 * they are.
 */
import { Readable } from "node:stream";
import type { Sealer } from "../api/security/sealing.js";

const MARK = "otpgate-sealed:";

/** A packet as the persistence stores it. */
export interface QueuedPacket {
  topic?: string;
  payload?: Buffer | Uint8Array | string;
  brokerId?: string;
  brokerCounter?: number;
  messageId?: number;
}

/** The part of an Aedes persistence (memory or Redis) that holds clients' offline queues. */
export interface QueuePersistence {
  outgoingEnqueueCombi(subs: unknown[], packet: QueuedPacket): Promise<unknown>;
  outgoingUpdate(client: { id: string }, packet: QueuedPacket): Promise<unknown>;
  outgoingClearMessageId(client: { id: string }, packet: QueuedPacket): Promise<QueuedPacket | undefined>;
  outgoingStream(client: { id: string }): AsyncIterable<QueuedPacket>;
}

/** The rest of a persistence that can hold a publisher's job: incoming QoS 2 packets, wills, retained messages. */
interface HeldPersistence {
  incomingStorePacket?(client: unknown, packet: QueuedPacket): Promise<unknown>;
  incomingGetPacket?(client: unknown, packet: QueuedPacket): Promise<QueuedPacket>;
  putWill?(client: unknown, packet: QueuedPacket & { clientId?: string }): Promise<unknown>;
  getWill?(client: unknown): Promise<QueuedPacket | null | undefined>;
  delWill?(client: unknown): Promise<QueuedPacket | null | undefined>;
  streamWill?(brokers: unknown): AsyncIterable<QueuedPacket>;
  storeRetained?(packet: QueuedPacket): Promise<unknown>;
}

/** A job for a phone, or one for the gateway to route: its payload holds a number and a text. */
const carriesJob = (packet: QueuedPacket | null | undefined) => Boolean(packet?.topic?.startsWith("sms/out/") || packet?.topic === "sms/send");

export function sealQueuedJobs(persistence: unknown, sealer: Sealer, onUnreadable: (error: unknown) => void): void {
  const queue = persistence as QueuePersistence;
  const seal = (packet: QueuedPacket): QueuedPacket => {
    if (!carriesJob(packet) || packet.payload === undefined) return packet;
    const text = Buffer.from(packet.payload).toString("latin1");
    if (text.startsWith(MARK)) return packet;
    return { ...packet, payload: Buffer.from(MARK + sealer.seal(Buffer.from(packet.payload).toString("base64"))) };
  };
  const open = <P extends QueuedPacket | null | undefined>(packet: P): P => {
    if (!packet || !carriesJob(packet) || packet.payload === undefined) return packet;
    const text = Buffer.from(packet.payload).toString("latin1");
    if (!text.startsWith(MARK)) return packet;
    return { ...packet, payload: Buffer.from(sealer.open(text.slice(MARK.length)), "base64") };
  };

  const enqueue = queue.outgoingEnqueueCombi.bind(queue);
  queue.outgoingEnqueueCombi = (subs, packet) => enqueue(subs, seal(packet));

  const update = queue.outgoingUpdate.bind(queue);
  queue.outgoingUpdate = async (client, packet) => {
    const sealed = seal(packet);
    const result = await update(client, sealed);
    // The persistence may attach broker data to the packet it was given; Aedes reads it from its own.
    if (sealed !== packet) {
      for (const key of ["brokerId", "brokerCounter", "messageId"] as const) {
        if (packet[key] === undefined && sealed[key] !== undefined) Object.assign(packet, { [key]: sealed[key] });
      }
    }
    return result;
  };

  const clear = queue.outgoingClearMessageId.bind(queue);
  queue.outgoingClearMessageId = async (client, packet) => open(await clear(client, packet));

  const stream = queue.outgoingStream.bind(queue);
  queue.outgoingStream = (client) => {
    const source = stream(client);
    return (async function* () {
      for await (const packet of source) {
        // One packet that cannot be opened (sealed under another OTP_SECRET) must not fail every reconnect of the phone.
        let opened: QueuedPacket;
        try {
          opened = open(packet);
        } catch (error) {
          onUnreadable(error);
          continue;
        }
        yield opened;
      }
    })();
  };

  const held = persistence as HeldPersistence;
  /** Aedes asks these only whether the packet is there: one it cannot open is still there. */
  const openOrAsStored = <P extends QueuedPacket | null | undefined>(packet: P): P => {
    try {
      return open(packet);
    } catch (error) {
      onUnreadable(error);
      return packet;
    }
  };
  if (held.incomingStorePacket && held.incomingGetPacket) {
    const store = held.incomingStorePacket.bind(held);
    held.incomingStorePacket = (client, packet) => store(client, seal(packet));
    const get = held.incomingGetPacket.bind(held);
    held.incomingGetPacket = async (client, packet) => openOrAsStored(await get(client, packet));
  }
  if (held.putWill && held.getWill && held.delWill && held.streamWill) {
    const put = held.putWill.bind(held);
    held.putWill = async (client, packet) => {
      const sealed = seal(packet);
      const result = await put(client, sealed);
      // The persistence stamps the will it was given with its client and broker; Aedes may read them from its own.
      if (sealed !== packet) Object.assign(packet, { clientId: (sealed as { clientId?: string }).clientId, brokerId: sealed.brokerId });
      return result;
    };
    const get = held.getWill.bind(held);
    held.getWill = async (client) => openOrAsStored(await get(client));
    const del = held.delWill.bind(held);
    held.delWill = async (client) => openOrAsStored(await del(client));
    const wills = held.streamWill.bind(held);
    held.streamWill = (brokers) =>
      Readable.from(
        (async function* () {
          for await (const will of wills(brokers)) {
            // A will sealed under another OTP_SECRET is skipped, not published as a sealed blob.
            let opened: QueuedPacket;
            try {
              opened = open(will);
            } catch (error) {
              onUnreadable(error);
              continue;
            }
            yield opened;
          }
        })(),
      );
  }
  if (held.storeRetained) {
    const retain = held.storeRetained.bind(held);
    held.storeRetained = async (packet) => (carriesJob(packet) ? undefined : retain(packet));
  }
}
