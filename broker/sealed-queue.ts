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
 * stream replayed when a phone reconnects. Wills and retained statuses hold
 * no secrets and are left alone.
 */
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

const carriesJob = (packet: QueuedPacket | undefined) => Boolean(packet?.topic?.startsWith("sms/out/"));

export function sealQueuedJobs(persistence: unknown, sealer: Sealer, onUnreadable: (error: unknown) => void): void {
  const queue = persistence as QueuePersistence;
  const seal = (packet: QueuedPacket): QueuedPacket => {
    if (!carriesJob(packet) || packet.payload === undefined) return packet;
    const text = Buffer.from(packet.payload).toString("latin1");
    if (text.startsWith(MARK)) return packet;
    return { ...packet, payload: Buffer.from(MARK + sealer.seal(Buffer.from(packet.payload).toString("base64"))) };
  };
  const open = <P extends QueuedPacket | undefined>(packet: P): P => {
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
}
