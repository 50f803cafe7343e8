/**
 * The per-minute send limit as a sliding window (Android counts the SMS an app
 * sent in the last stretch of time, not per calendar minute). Pure: callers
 * pass the time, so tests can move the clock without waiting a minute.
 */
export class SendWindow {
  readonly #sentAt: number[] = [];

  constructor(
    readonly maxPerWindow: number,
    readonly windowMs = 60_000,
  ) {
    if (!Number.isInteger(maxPerWindow) || maxPerWindow < 1) throw new Error("maxPerMinute must be a whole number ≥ 1");
  }

  /** The earliest time ≥ now at which one more send fits in the window. */
  nextSlotAt(now: number): number {
    this.#forgetBefore(now);
    if (this.#sentAt.length < this.maxPerWindow) return now;
    const oldestThatBlocks = this.#sentAt[this.#sentAt.length - this.maxPerWindow] ?? now;
    return oldestThatBlocks + this.windowMs;
  }

  record(now: number): void {
    this.#sentAt.push(now);
  }

  #forgetBefore(now: number): void {
    while (this.#sentAt.length > 0 && (this.#sentAt[0] ?? now) + this.windowMs <= now) this.#sentAt.shift();
  }
}
