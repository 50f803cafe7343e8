/**
 * Reconnect delays: doubling from `minMs` to `maxMs`, each scaled by a random
 * factor in [0.8, 1.2). The jitter matters when a broker restarts: without it
 * every phone of a fleet would knock again in the same millisecond.
 */
export function reconnectDelay(attempt: number, bounds: { minMs: number; maxMs: number }, random: () => number): number {
  const doubled = bounds.minMs * 2 ** Math.max(0, Math.min(attempt, 30));
  const capped = Math.min(bounds.maxMs, doubled);
  return Math.max(1, Math.min(bounds.maxMs, Math.round(capped * (0.8 + 0.4 * random()))));
}
