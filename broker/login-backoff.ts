/**
 * Back-off for repeated failed MQTT logins, per source address and per username.
 *
 * - A source with `after` failures (and no success since) is refused at
 *   accept, before any TLS work, for 1 s, then 2 s, 4 s … up to `maxMs` as it
 *   keeps failing. A success from that source clears it: phones behind one NAT
 *   address share its record, and the first of them to log in lifts the block
 *   for the others, so a noisy neighbour costs them at most `maxMs` at a time.
 * - A username with `after` failures gets its *failed* answers late, by the
 *   same growing delay. Right credentials are always answered at once: knowing
 *   a device id (it is in its topics) must not let anyone lock that phone out.
 *
 * Failures are forgotten after `forgetMs` without another. Pure: time comes in.
 */
export interface LoginBackoffOptions {
  /** Failures before the back-off starts. */
  after: number;
  /** Longest block (source) or delay (username). */
  maxMs: number;
  /** A record with no failure for this long is dropped. */
  forgetMs: number;
  /** Records kept per kind; the oldest go first (a spray of invented usernames must not grow memory). */
  maxEntries?: number;
}

interface Entry {
  failures: number;
  lastFailureAt: number;
  blockedUntil: number;
}

const BASE_MS = 1000;

export class LoginBackoff {
  private readonly sources = new Map<string, Entry>();
  private readonly usernames = new Map<string, Entry>();

  constructor(private readonly options: LoginBackoffOptions) {}

  /** How long connections from `source` are still refused (0: not blocked). */
  blockedFor(source: string, now: number): number {
    const record = this.live(this.sources, source, now);
    return record ? Math.max(0, record.blockedUntil - now) : 0;
  }

  /** Records a failed login; returns how long to hold the refusal for this username. */
  failed(source: string | undefined, username: string | undefined, now: number): number {
    let holdMs = 0;
    if (username) {
      const record = this.bump(this.usernames, username, now);
      if (record.failures >= this.options.after) holdMs = this.delay(record.failures);
    }
    if (source !== undefined) {
      const record = this.bump(this.sources, source, now);
      // From when the late answer goes out: a block that lapsed while the answer was held would be none.
      if (record.failures >= this.options.after) record.blockedUntil = now + holdMs + this.delay(record.failures);
    }
    return holdMs;
  }

  succeeded(source: string | undefined, username: string | undefined): void {
    if (source !== undefined) this.sources.delete(source);
    if (username) this.usernames.delete(username);
  }

  /** Drops forgotten records (call now and then). */
  sweep(now: number): void {
    for (const map of [this.sources, this.usernames]) {
      for (const [key, record] of map) if (now - record.lastFailureAt > this.options.forgetMs) map.delete(key);
    }
  }

  get size(): { sources: number; usernames: number } {
    return { sources: this.sources.size, usernames: this.usernames.size };
  }

  private delay(failures: number): number {
    return Math.min(this.options.maxMs, BASE_MS * 2 ** Math.min(30, failures - this.options.after));
  }

  private live(map: Map<string, Entry>, key: string, now: number): Entry | undefined {
    const record = map.get(key);
    if (record && now - record.lastFailureAt > this.options.forgetMs) {
      map.delete(key);
      return undefined;
    }
    return record;
  }

  private bump(map: Map<string, Entry>, key: string, now: number): Entry {
    const record = this.live(map, key, now) ?? { failures: 0, lastFailureAt: now, blockedUntil: 0 };
    record.failures++;
    record.lastFailureAt = now;
    // Re-inserted so the map's order is oldest failure first.
    map.delete(key);
    map.set(key, record);
    const max = this.options.maxEntries ?? 10_000;
    if (map.size > max) map.delete(map.keys().next().value!);
    return record;
  }
}
