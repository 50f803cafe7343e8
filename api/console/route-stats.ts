/**
 * Success rate and latency per route, read from the Prometheus metrics the
 * dispatcher already keeps (otpgate_route_attempts_total and
 * otpgate_delivery_duration_seconds): since this node started, and over the
 * last few minutes from snapshots taken on a timer, so a provider failing now
 * is not hidden by a good week.
 */
import type { Metrics } from "../metrics/metrics.js";

export interface RouteFigures {
  /** Attempts by outcome: sent, failed, timeout, skipped (the route could not take the job, e.g. no phone online). */
  outcomes: Record<string, number>;
  /** sent ÷ (sent + failed + timeout); null with no such attempt. */
  successRate: number | null;
  /** Seconds a route took to accept a message it sent: mean and the 50th/95th percentiles from the histogram's buckets. */
  latency: { mean: number | null; p50: number | null; p95: number | null };
}

export interface RouteStatsView {
  route: string;
  sinceStart: RouteFigures;
  recent: RouteFigures;
}

interface RouteSnapshot {
  outcomes: Record<string, number>;
  /** Cumulative counts of sent attempts per bucket upper bound (seconds), ascending; +Inf last. */
  buckets: [number, number][];
  sum: number;
  count: number;
}

type Snapshot = { at: number; routes: Map<string, RouteSnapshot> };

const EMPTY: RouteSnapshot = { outcomes: {}, buckets: [], sum: 0, count: 0 };

export async function snapshot(metrics: Metrics, at = Date.now()): Promise<Snapshot> {
  const routes = new Map<string, RouteSnapshot>();
  const of = (route: string) => {
    let entry = routes.get(route);
    if (!entry) routes.set(route, (entry = { outcomes: {}, buckets: [], sum: 0, count: 0 }));
    return entry;
  };
  for (const { labels, value } of (await metrics.sends.get()).values) {
    const entry = of(String(labels.route));
    const outcome = String(labels.outcome);
    entry.outcomes[outcome] = (entry.outcomes[outcome] ?? 0) + value;
  }
  for (const { labels: named, value, metricName } of (await metrics.deliveryDuration.get()).values) {
    // Bucket entries carry `le` beside the declared labels.
    const labels = named as Record<string, string | number | undefined>;
    if (labels.outcome !== "sent") continue;
    const entry = of(String(labels.route));
    if (metricName?.endsWith("_bucket")) entry.buckets.push([labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(labels.le), value]);
    else if (metricName?.endsWith("_sum")) entry.sum = value;
    else if (metricName?.endsWith("_count")) entry.count = value;
  }
  for (const entry of routes.values()) entry.buckets.sort((a, b) => a[0] - b[0]);
  return { at, routes };
}

/** What happened between two snapshots of one route. */
function between(later: RouteSnapshot, earlier: RouteSnapshot): RouteSnapshot {
  const outcomes: Record<string, number> = {};
  for (const [outcome, value] of Object.entries(later.outcomes)) outcomes[outcome] = value - (earlier.outcomes[outcome] ?? 0);
  const before = new Map(earlier.buckets);
  return {
    outcomes,
    buckets: later.buckets.map(([le, count]) => [le, count - (before.get(le) ?? 0)]),
    sum: later.sum - earlier.sum,
    count: later.count - earlier.count,
  };
}

/** The q-quantile from cumulative bucket counts, interpolating inside the bucket it falls in (as Prometheus' histogram_quantile does). */
export function quantile(buckets: readonly [number, number][], q: number): number | null {
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      // The open-ended bucket has no upper bound: its lower one is the best estimate.
      if (!Number.isFinite(le)) return lower;
      const inside = count - below;
      return inside > 0 ? lower + ((le - lower) * (rank - below)) / inside : le;
    }
    lower = le;
    below = count;
  }
  return lower;
}

export function figures(entry: RouteSnapshot): RouteFigures {
  const { sent = 0, failed = 0, timeout = 0 } = entry.outcomes;
  const decided = sent + failed + timeout;
  return {
    outcomes: entry.outcomes,
    successRate: decided > 0 ? sent / decided : null,
    latency: {
      mean: entry.count > 0 ? entry.sum / entry.count : null,
      p50: quantile(entry.buckets, 0.5),
      p95: quantile(entry.buckets, 0.95),
    },
  };
}

export class RouteStats {
  private readonly history: Snapshot[] = [];
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly metrics: Metrics,
    /** How far back `recent` looks. */
    readonly windowMs = 5 * 60_000,
    sampleMs = 15_000,
  ) {
    this.timer = setInterval(() => void this.sample(), sampleMs);
    this.timer.unref();
    void this.sample();
  }

  private async sample(): Promise<void> {
    const taken = await snapshot(this.metrics);
    this.history.push(taken);
    // Keep one snapshot at least a window old, to diff against.
    while (this.history.length > 2 && this.history[1]!.at <= taken.at - this.windowMs) this.history.shift();
  }

  /** Every route the metrics name, and `configured` ones that have not been tried yet. */
  async views(configured: readonly string[]): Promise<RouteStatsView[]> {
    const now = await snapshot(this.metrics);
    const base = this.history.find((s) => s.at >= now.at - this.windowMs) ?? this.history[0];
    const names = [...new Set([...configured, ...now.routes.keys()])];
    return names.map((route) => {
      const current = now.routes.get(route) ?? EMPTY;
      return { route, sinceStart: figures(current), recent: figures(between(current, base?.routes.get(route) ?? EMPTY)) };
    });
  }

  close(): void {
    clearInterval(this.timer);
  }
}
