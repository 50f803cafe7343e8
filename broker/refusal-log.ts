/**
 * Refusals logged in summary: at most one line per source address and
 * interval, with counts per reason and one example. A SUBSCRIBE with 2,000
 * refused filters, or a client reconnecting in a loop with a bad token, is one
 * line, not 2,000: a hostile client must not be able to fill the disk or
 * drown the lines that matter. The first refusal from a quiet source is
 * written after `gatherMs` (so one packet's burst is one line); later ones
 * wait until `intervalMs` has passed since that source's last line.
 */
import type { FastifyBaseLogger } from "fastify";

export interface RefusalLogOptions {
  intervalMs: number;
  gatherMs: number;
  /** Sources tracked at once; beyond, refusals are summed under "other sources". */
  maxSources?: number;
}

interface Entry {
  counts: Map<string, number>;
  example?: string;
  lastLineAt: number;
  timer?: NodeJS.Timeout;
}

export class RefusalLog {
  private readonly sources = new Map<string, Entry>();
  private closed = false;

  constructor(
    private readonly logger: FastifyBaseLogger,
    private readonly options: RefusalLogOptions,
  ) {}

  /** One refusal: `reason` is a short key (it is counted), `detail` a sentence (the first of an interval is logged). */
  note(source: string | undefined, reason: string, detail: string): void {
    if (this.closed) return;
    let key = source ?? "unknown";
    if (!this.sources.has(key) && this.sources.size >= (this.options.maxSources ?? 10_000)) key = "other sources";
    let entry = this.sources.get(key);
    if (!entry) {
      entry = { counts: new Map(), lastLineAt: -Infinity };
      this.sources.set(key, entry);
    }
    entry.counts.set(reason, (entry.counts.get(reason) ?? 0) + 1);
    entry.example ??= detail;
    if (!entry.timer) this.schedule(key, entry, Math.max(this.options.gatherMs, entry.lastLineAt + this.options.intervalMs - Date.now()));
  }

  private schedule(key: string, entry: Entry, delayMs: number): void {
    entry.timer = setTimeout(() => this.flush(key, entry), delayMs);
    entry.timer.unref();
  }

  private flush(key: string, entry: Entry): void {
    entry.timer = undefined;
    if (entry.counts.size === 0) {
      // Quiet for a whole interval: forget the source.
      this.sources.delete(key);
      return;
    }
    const refused = Object.fromEntries(entry.counts);
    const total = [...entry.counts.values()].reduce((a, b) => a + b, 0);
    this.logger.warn({ source: key, refused, total, example: entry.example }, `mqtt: refused ${total} from ${key}`);
    entry.counts.clear();
    entry.example = undefined;
    entry.lastLineAt = Date.now();
    // Wakes once more after the interval: to write what came meanwhile, or to forget the source.
    this.schedule(key, entry, this.options.intervalMs);
  }

  /** Writes what is pending (shutdown). */
  close(): void {
    for (const [key, entry] of this.sources) {
      clearTimeout(entry.timer);
      if (entry.counts.size > 0) {
        entry.lastLineAt = -Infinity;
        this.flush(key, entry);
        clearTimeout(entry.timer);
      }
    }
    this.sources.clear();
    this.closed = true;
  }
}
