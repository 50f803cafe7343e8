/**
 * The `device` route: a job goes to one of the gateway's own phones over MQTT.
 * `prepare` picks the phone (online, under its per-minute budget, least busy,
 * preferring phones whose prefixes match the number); `deliver` publishes the
 * job and waits for two deadlines: the transport ack (the phone's PUBACK)
 * and its `sent` ack. The phone's acks are written to the job by the node
 * that receives them (device-acks.ts), so a `sent` is recorded once, there;
 * this route only learns of it. When the dispatcher gives up on an attempt it
 * calls `takeBack`: the cancel is kept in the store (every node, and a
 * restarted one, withholds the job from the phone) and sent to the phone.
 */
import { MAX_PAYLOAD_BYTES, jobPayload, type AckPayload, type JobPayload } from "../../broker/payloads.js";
import { ProviderError, type SendReceipt } from "../providers/provider.js";
import type { DevicePresence, DeviceRecord, Store } from "../store/store.js";
import type { DeliveryRoute } from "./dispatcher.js";
import { deviceOf, deviceTarget, type Job } from "./job-state.js";

/** What the route needs of the broker (implemented by broker/mqtt-broker.ts). */
export interface DeviceChannel {
  publishJob(deviceId: string, job: JobPayload): Promise<void>;
  cancelJob(deviceId: string, jobId: string, keepUntil: number): Promise<void>;
  on(event: "clusterAck", listener: (deviceId: string, ack: AckPayload) => void): unknown;
  on(event: "transportAck", listener: (deviceId: string, jobId: string) => void): unknown;
}

export interface DeviceRouteOptions {
  store: Store;
  channel: DeviceChannel;
  /** The phone must PUBACK the job within this (catches half-open connections fast). */
  transportAckTimeoutMs: number;
  /** ...and report `sent` within this after publishing. */
  sentTimeoutMs: number;
  /** A presence not refreshed for this long is treated as offline (a node died holding the phone). */
  presenceStaleMs: number;
  /** How old the fleet snapshot that ranks phones may be (default 250 ms; 0 reads on every job). */
  snapshotMs?: number;
  now?: () => number;
}

export function isOnline(presence: DevicePresence | null, now: number, staleMs: number): boolean {
  return Boolean(presence?.online && now - Date.parse(presence.seenAt ?? presence.since) < staleMs);
}

export function prefixMatches(device: DeviceRecord, to: string): boolean {
  return device.prefixes.some((prefix) => to.startsWith(prefix));
}

/**
 * The `sms/out/<id>` payload of a job, or why a phone would refuse it. Phones
 * apply broker/payloads.ts to the letter, so the gateway checks what it is about
 * to publish by the same rules: `expiresAt` is rewritten as toISOString (UTC, Z),
 * and a job no phone would take (a body over 1600 characters, a payload over
 * 8 KiB once JSON-escaped) fails this route at once instead of waiting for
 * acks that never come.
 */
export function phoneJobPayload(job: Pick<Job, "id" | "to" | "expiresAt">, text: string): { ok: true; payload: JobPayload } | { ok: false; reason: string } {
  const expiry = Date.parse(job.expiresAt);
  if (!Number.isFinite(expiry)) return { ok: false, reason: "the job's expiry is not a time" };
  const payload = { id: job.id, to: job.to ?? "", body: text, expiresAt: new Date(expiry).toISOString() };
  const checked = jobPayload.safeParse(payload);
  if (!checked.success) return { ok: false, reason: checked.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ") };
  const size = Buffer.byteLength(JSON.stringify(checked.data));
  if (size > MAX_PAYLOAD_BYTES) return { ok: false, reason: `the payload would be ${size} bytes, over ${MAX_PAYLOAD_BYTES}` };
  return { ok: true, payload: checked.data };
}

interface Waiter {
  deviceId: string;
  onTransportAck(): void;
  onAck(ack: AckPayload): void;
}

/**
 * The phones, their presence and their send counts, read at most once per
 * `maxAgeMs` however many jobs ask: under load every job would otherwise read
 * the whole fleet. A snapshot that old only ranks phones; the store's
 * reservation still decides, and a phone gone meanwhile misses its transport
 * ack deadline like any other.
 */
function fleetSnapshot(store: Store, maxAgeMs: number) {
  type Fleet = { devices: DeviceRecord[]; presence: (DevicePresence | null)[]; counts: Map<string, number> };
  let cached: { at: number; fleet: Promise<Fleet> } | undefined;
  const load = async (at: number): Promise<Fleet> => {
    const devices = await store.listDevices();
    const ids = devices.map((d) => d.id);
    const [presence, counts] = await Promise.all([store.getPresence(ids), store.deviceSendCounts(ids, at)]);
    return { devices, presence, counts: new Map(ids.map((id, i) => [id, counts[i] ?? 0])) };
  };
  return {
    read(at: number, fresh = false): Promise<Fleet> {
      if (fresh || !cached || at - cached.at >= maxAgeMs || at < cached.at) {
        const fleet = load(at);
        cached = { at, fleet };
        // A failed read is not kept: the next job reads again.
        fleet.catch(() => {
          if (cached?.fleet === fleet) cached = undefined;
        });
      }
      return cached.fleet;
    },
  };
}

export function deviceRoute(options: DeviceRouteOptions): DeliveryRoute {
  const now = options.now ?? Date.now;
  const fleet = fleetSnapshot(options.store, options.snapshotMs ?? 250);
  const waiters = new Map<string, Waiter>();
  options.channel.on("transportAck", (deviceId, jobId) => {
    const waiter = waiters.get(jobId);
    if (waiter?.deviceId === deviceId) waiter.onTransportAck();
  });
  options.channel.on("clusterAck", (deviceId, ack) => {
    const waiter = waiters.get(ack.id);
    if (waiter?.deviceId === deviceId) waiter.onAck(ack);
  });

  async function pick(job: Job, fresh: boolean): Promise<string> {
    const to = job.to!;
    const { store } = options;
    const at = now();
    const { devices, presence, counts: allCounts } = await fleet.read(at, fresh);
    const online = devices.filter((_, i) => isOnline(presence[i] ?? null, at, options.presenceStaleMs));
    if (online.length === 0) throw new ProviderError("no phone is online", "transient", "device:offline");
    // Phones without prefixes take any number; phones with prefixes only theirs.
    const eligible = online.filter((d) => d.prefixes.length === 0 || prefixMatches(d, to));
    if (eligible.length === 0) throw new ProviderError(`no online phone serves ${to.slice(0, 4)}…`, "transient", "device:no_match");
    // Phones already at their budget are not asked: the reservation below would refuse them anyway.
    const ranked = eligible
      .map((device) => ({ device, load: allCounts.get(device.id) ?? 0, match: prefixMatches(device, to) ? 0 : 1, tie: Math.random() }))
      .filter(({ device, load }) => load < device.maxPerMinute)
      .sort((a, b) => a.match - b.match || a.load - b.load || a.tie - b.tie);
    for (const { device } of ranked) {
      if (await store.reserveDeviceSend(device.id, device.maxPerMinute, at)) return deviceTarget(device.id);
    }
    throw new ProviderError("every online phone is at its per-minute limit", "transient", "device:rate");
  }

  return {
    name: "device",
    channel: "sms",
    attemptTimeoutMs: options.transportAckTimeoutMs + options.sentTimeoutMs + 1_000,
    outcomeRecordedByAck: true,

    async takeBack(job, target) {
      const deviceId = deviceOf(target);
      if (deviceId === null) return;
      const until = Date.parse(job.expiresAt);
      await options.store.saveCancel({ jobId: job.id, deviceId, until });
      await options.channel.cancelJob(deviceId, job.id, until);
    },

    async prepare(job) {
      try {
        return await pick(job, false);
      } catch (error) {
        // "No phone" from a snapshot may be a phone that just connected: look once more, afresh.
        const code = error instanceof ProviderError ? error.code : "";
        if (code === "device:offline" || code === "device:no_match") return pick(job, true);
        throw error;
      }
    },



    deliver(job: Job, text: string, signal: AbortSignal, target: string): Promise<SendReceipt> {
      const deviceId = deviceOf(target) ?? "";
      const built = phoneJobPayload(job, text);
      // Nothing was published, so there is nothing to take back; another route may carry it.
      if (!built.ok) return Promise.reject(new ProviderError(`no phone would take this job: ${built.reason}`, "permanent", "device:invalid_job"));
      return new Promise<SendReceipt>((resolve, reject) => {
        let settled = false;
        let timer: NodeJS.Timeout | undefined;
        const finish = (error?: ProviderError) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          waiters.delete(job.id);
          signal.removeEventListener("abort", onAbort);
          if (!error) return resolve({ providerStatus: "sent" });
          // No cancel here: the dispatcher takes the job back (takeBack) only when it moves on, not when it stops.
          reject(error);
        };
        const onAbort = () => finish(new ProviderError("attempt abandoned", "transient", "timeout"));
        const deadline = (ms: number, code: string, what: string) => {
          clearTimeout(timer);
          timer = setTimeout(() => finish(new ProviderError(`${what} within ${ms} ms`, "transient", code)), ms);
        };
        if (signal.aborted) return onAbort();
        signal.addEventListener("abort", onAbort);

        waiters.set(job.id, {
          deviceId,
          onTransportAck: () => deadline(options.sentTimeoutMs, "device:no_sent_ack", "the phone did not report the SMS sent"),
          onAck: (ack) => {
            if (ack.status === "sent" || ack.status === "delivered") finish();
            else if (ack.status === "failed") finish(new ProviderError(`the phone could not send it (${ack.error ?? "no reason"})`, "transient", `device:${ack.error ?? "failed"}`));
            else if (ack.status === "received") deadline(options.sentTimeoutMs, "device:no_sent_ack", "the phone did not report the SMS sent");
          },
        });
        deadline(options.transportAckTimeoutMs, "device:no_transport_ack", "the phone did not acknowledge the job");
        options.channel
          .publishJob(deviceId, built.payload)
          .catch((error: unknown) => finish(new ProviderError(`publish failed: ${(error as Error).message}`, "transient", "device:publish")));
      });
    },
  };
}
