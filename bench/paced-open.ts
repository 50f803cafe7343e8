/**
 * Opens connections for a list at most `perSecond` a second and `maxPending`
 * at a time, so they wait in the load generator rather than in the gateway
 * (where a CONNECT not handled within its timeout is reset). Shared by the
 * idle-phone and reconnect-storm generators.
 */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export interface OpenResult {
  connected: number;
  failed: number;
  firstError?: string;
}

export async function openPaced<T>(items: readonly T[], perSecond: number, maxPending: number, open: (item: T) => Promise<void>): Promise<OpenResult> {
  const started = performance.now();
  const result: OpenResult = { connected: 0, failed: 0 };
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) {
      const wait = started + (i * 1000) / perSecond - performance.now();
      if (wait > 0) await sleep(wait);
      try {
        await open(items[i]!);
        result.connected++;
      } catch (error) {
        result.failed++;
        result.firstError ??= (error as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: maxPending }, worker));
  return result;
}
