/**
 * What the console's live stream carries: phone presence and job state
 * changes, stripped to what an operator may see (never a number in full, a
 * body or a code; jobs carry neither the text nor the recipient here).
 *
 * Sources, all on this node: the gateway's job state changes (dispatcher and
 * acks), acks applied on any node of a cluster (the broker's clusterAck), and
 * the broker's connects, disconnects and statuses, read back from the store
 * once the presence tracker wrote them. While someone watches, the device
 * list is also read every few seconds: phones held by other nodes, devices
 * added or removed elsewhere, and presences that went stale (a dead node)
 * change without any event here.
 */
import type { MqttBroker } from "../../broker/mqtt-broker.js";
import type { AckPayload } from "../../broker/payloads.js";
import { deviceOf, type Attempt, type Job, type JobState } from "../delivery/job-state.js";
import type { DeviceService, DeviceView } from "../devices/device-service.js";
import type { Store } from "../store/store.js";

/** A job as the console shows it: its course, not its content. */
export interface ConsoleJob {
  /** The job id; for a message it is the message id. */
  id: string;
  kind: "otp" | "message";
  otpId?: string;
  channel: "sms" | "email";
  state: JobState;
  /** The route of the newest attempt. */
  route: string | null;
  createdAt: string;
  updatedAt: string;
  attempts: Attempt[];
}

export interface DeviceError {
  at: string;
  error: string;
  jobId: string;
}

export type ConsoleDevice = DeviceView & { lastError: DeviceError | null };

export type ConsoleEvent = { type: "job"; job: ConsoleJob } | { type: "device"; device: ConsoleDevice } | { type: "deviceRemoved"; id: string };

export interface ConsoleSources {
  broker: Pick<MqttBroker, "on" | "off">;
  /** Resolves once the presence tracker's pending writes are in the store. */
  presenceSettled(): Promise<void>;
  devices: DeviceService;
  store: Store;
  /** How often the device list is read while someone watches. */
  pollMs?: number;
  onError?(error: unknown): void;
}

export function consoleJob(job: Job): ConsoleJob {
  return {
    id: job.id,
    kind: job.kind,
    ...(job.otpId ? { otpId: job.otpId } : {}),
    channel: job.channel,
    state: job.state,
    route: job.attempts.at(-1)?.route ?? null,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    attempts: job.attempts.map((attempt) => ({ ...attempt })),
  };
}

/** How many job fingerprints are kept to drop repeats (the same change seen as a state change and as a cluster ack). */
const SEEN_JOBS = 2000;
/** Phones whose last error is remembered (devices come and go; the map must not grow forever). */
const KNOWN_ERRORS = 10_000;

export class ConsoleEvents {
  private readonly watchers = new Set<(event: ConsoleEvent) => void>();
  private readonly lastErrors = new Map<string, DeviceError>();
  /** job id → fingerprint of the last change emitted. */
  private readonly seenJobs = new Map<string, string>();
  /** device id → JSON of the last view emitted. */
  private readonly shownDevices = new Map<string, string>();
  private sources?: ConsoleSources;
  private poller?: NodeJS.Timeout;
  private readonly detach: (() => void)[] = [];

  /** A job changed state on this node (the gateway's onStateChange). */
  jobChanged(job: Job): void {
    for (const attempt of job.attempts) {
      const deviceId = deviceOf(attempt.route);
      if (!deviceId || attempt.state !== "failed" || !attempt.error) continue;
      const known = this.lastErrors.get(deviceId);
      if (known && known.at >= attempt.at) continue;
      this.lastErrors.delete(deviceId);
      this.lastErrors.set(deviceId, { at: attempt.at, error: attempt.error, jobId: job.id });
      if (this.lastErrors.size > KNOWN_ERRORS) this.lastErrors.delete(this.lastErrors.keys().next().value!);
      if (this.sources) void this.refreshDevice(deviceId);
    }
    const fingerprint = `${job.updatedAt}|${job.state}|${job.attempts.length}|${job.attempts.at(-1)?.state ?? ""}`;
    if (this.seenJobs.get(job.id) === fingerprint) return;
    this.seenJobs.delete(job.id);
    this.seenJobs.set(job.id, fingerprint);
    if (this.seenJobs.size > SEEN_JOBS) this.seenJobs.delete(this.seenJobs.keys().next().value!);
    this.emit({ type: "job", job: consoleJob(job) });
  }

  /** The last failed attempt seen on each phone since this node started. */
  lastErrorOf(deviceId: string): DeviceError | null {
    return this.lastErrors.get(deviceId) ?? null;
  }

  withLastError(device: DeviceView): ConsoleDevice {
    return { ...device, lastError: this.lastErrorOf(device.id) };
  }

  /** Starts listening to the broker; the HTTP server calls it once it has what it needs. */
  attach(sources: ConsoleSources): void {
    this.sources = sources;
    const presence = (deviceId: string) => {
      void sources
        .presenceSettled()
        .then(() => this.refreshDevice(deviceId))
        .catch((error: unknown) => sources.onError?.(error));
    };
    const ack = (_deviceId: string, ackPayload: AckPayload) => {
      sources.store.getJob(ackPayload.id).then(
        (job) => job && this.jobChanged(job),
        (error: unknown) => sources.onError?.(error),
      );
    };
    sources.broker.on("deviceConnected", presence);
    sources.broker.on("deviceDisconnected", presence);
    sources.broker.on("deviceStatus", presence);
    sources.broker.on("clusterAck", ack);
    this.detach.push(() => {
      sources.broker.off("deviceConnected", presence);
      sources.broker.off("deviceDisconnected", presence);
      sources.broker.off("deviceStatus", presence);
      sources.broker.off("clusterAck", ack);
    });
  }

  /** Calls `listener` with every event from now on; returns the way to stop. */
  watch(listener: (event: ConsoleEvent) => void): () => void {
    this.watchers.add(listener);
    // Poll only while a console listens: an idle gateway reads nothing for it.
    if (!this.poller && this.sources) {
      this.poller = setInterval(() => void this.refreshAll(), this.sources.pollMs ?? 5000);
      this.poller.unref();
    }
    return () => {
      this.watchers.delete(listener);
      if (this.watchers.size > 0 || !this.poller) return;
      clearInterval(this.poller);
      this.poller = undefined;
    };
  }

  get watching(): number {
    return this.watchers.size;
  }

  private emit(event: ConsoleEvent): void {
    for (const listener of this.watchers) listener(event);
  }

  private showDevice(view: DeviceView): void {
    const shown = this.withLastError(view);
    const json = JSON.stringify(shown);
    if (this.shownDevices.get(view.id) === json) return;
    this.shownDevices.set(view.id, json);
    this.emit({ type: "device", device: shown });
  }

  private async refreshDevice(deviceId: string): Promise<void> {
    if (!this.sources) return;
    try {
      const view = await this.sources.devices.get(deviceId);
      if (view) this.showDevice(view);
      else if (this.shownDevices.delete(deviceId)) this.emit({ type: "deviceRemoved", id: deviceId });
    } catch (error) {
      this.sources.onError?.(error);
    }
  }

  private async refreshAll(): Promise<void> {
    if (!this.sources) return;
    try {
      const views = await this.sources.devices.list();
      const present = new Set(views.map((view) => view.id));
      for (const id of [...this.shownDevices.keys()]) {
        if (present.has(id)) continue;
        this.shownDevices.delete(id);
        this.emit({ type: "deviceRemoved", id });
      }
      for (const view of views) this.showDevice(view);
    } catch (error) {
      this.sources.onError?.(error);
    }
  }

  /** Snapshot for a new watcher; later changes are compared against it. */
  async devicesNow(): Promise<ConsoleDevice[]> {
    const views = (await this.sources?.devices.list()) ?? [];
    for (const view of views) this.shownDevices.set(view.id, JSON.stringify(this.withLastError(view)));
    return views.map((view) => this.withLastError(view));
  }

  close(): void {
    for (const undo of this.detach.splice(0)) undo();
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    this.watchers.clear();
  }
}
