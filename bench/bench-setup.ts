/** What every benchmark shares: the gateway's settings for a capacity run, and medians. */

export const ADMIN_KEY = "bench-admin-key-0123456789abcdef";
/** Limits far above anything a loopback run can reach, so no request is throttled or shed. */
export const UNLIMITED = "1000000000";

/** A gateway environment built from scratch (not process.env), so the caller's environment cannot change the setup. */
export function benchGatewayEnv(dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    HOST: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "silent",
    RATE_LIMIT_PER_IP: UNLIMITED,
    RATE_LIMIT_PER_KEY: UNLIMITED,
    // Capacity, not load shedding, is measured (backpressure has its own test, test/delivery/backpressure.test.ts).
    DISPATCH_MAX_IN_FLIGHT: UNLIMITED,
    ...extra,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
