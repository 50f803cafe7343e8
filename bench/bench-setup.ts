/** What every benchmark shares: the gateway settings for a capacity run, medians, cleanup and the run-and-report frame. */
import type { ChildProcess } from "node:child_process";
import { constants } from "node:os";

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
    // The fraud guard's volume checks (per key, number and prefix, and the conversion watch) would
    // measure refusals; number types and countries are still checked on every send.
    FRAUD_KEY_MAX_PER_MINUTE: "0",
    FRAUD_KEY_MAX_PER_DAY: "0",
    FRAUD_NUMBER_MAX_PER_HOUR: "0",
    FRAUD_PREFIX_MAX_PER_HOUR: "0",
    FRAUD_WATCH_MIN_SENDS: "0",
    ...extra,
  };
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Everything a benchmark opened, closed in reverse order at the end, on failure and on Ctrl-C. */
const closers: { name: string; close: () => Promise<unknown> }[] = [];

export function onClose(name: string, close: () => Promise<unknown>): void {
  closers.push({ name, close });
}

/** How many things are open now; `closeAll(mark)` closes only what was opened after. */
export function openCount(): number {
  return closers.length;
}

export async function closeAll(downTo = 0): Promise<void> {
  while (closers.length > downTo) {
    const closer = closers.pop()!;
    await closer.close().catch((error: unknown) => console.error(`closing ${closer.name}: ${String(error)}`));
  }
}

/** SIGTERM, then SIGKILL if the child has not gone after 10 s. */
export function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/**
 * Runs a benchmark's `main`, closes everything, prints the problems it
 * collected (or `okLine`), and exits non-zero on any: explicitly, so a stray
 * handle in a dependency cannot hang the run.
 */
export async function runBench(main: () => Promise<void>, report: { problems: string[]; okLine: string; epilogue?: () => void }): Promise<never> {
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      console.error(`\n${signal}: stopping`);
      void closeAll().finally(() => process.exit(128 + constants.signals[signal]));
    });
  }
  let failed = false;
  try {
    await main();
  } catch (error) {
    failed = true;
    console.error(error);
  } finally {
    await closeAll();
  }
  report.epilogue?.();
  const { problems } = report;
  if (problems.length > 0) console.log(`\nFAILED: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join("\n")}`);
  else if (!failed) console.log(`\n${report.okLine}`);
  process.exit(failed || problems.length > 0 ? 1 : 0);
}
