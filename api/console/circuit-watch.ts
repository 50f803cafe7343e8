/**
 * What the console can say about each cloud route's circuit breaker. The
 * state is the breaker's own (`route.circuit()`, route-breaker.ts); `since`
 * is watched from outside: a call refused with `circuit_open` marks when the
 * circuit was found open, and a call that reaches the provider while it was
 * open was the probe, whose outcome closes or reopens it. A route without a
 * breaker's state is judged the same way (half-open past the reset time). The transient
 * failures of the last 30 s (the breaker's window) are counted beside it, so
 * a circuit about to open shows up before the first refusal.
 */
import { ProviderError } from "../providers/provider.js";
import type { DeliveryRoute } from "../delivery/dispatcher.js";

export type CircuitState = "closed" | "open" | "half_open";

export interface CircuitView {
  route: string;
  state: CircuitState;
  /** When the state began (the first refusal, or the probe that closed or reopened it); null = closed since start. */
  since: string | null;
  /** Calls that reached the provider in the last 30 s, and how many of them failed transiently. */
  recentCalls: number;
  recentFailures: number;
  /** Calls refused by the open circuit since this node started. */
  refused: number;
}

/** The breaker's own rolling window (route-breaker.ts). */
const WINDOW_MS = 30_000;

interface Circuit {
  /** The breaker's own state, when the route reports it. */
  reported?: () => CircuitState;
  state: "closed" | "open";
  since: number | null;
  /** Calls that reached the provider, per second of the last 30 s: how many, and how many failed transiently. */
  seconds: Map<number, { calls: number; failed: number }>;
  refused: number;
}

export class CircuitWatch {
  private readonly circuits = new Map<string, Circuit>();

  constructor(
    private readonly resetSeconds: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The same route, observed. Put it around the breaker (withBreaker), so refusals are seen. */
  watch(route: DeliveryRoute): DeliveryRoute {
    const circuit: Circuit = { reported: route.circuit?.bind(route), state: "closed", since: null, seconds: new Map(), refused: 0 };
    this.circuits.set(route.name, circuit);
    return {
      ...route,
      deliver: async (job, text, signal, target) => {
        try {
          const receipt = await route.deliver(job, text, signal, target);
          this.reached(circuit, false);
          return receipt;
        } catch (error) {
          if (error instanceof ProviderError && error.code === "circuit_open") {
            circuit.refused++;
            if (circuit.state !== "open") Object.assign(circuit, { state: "open", since: this.now() });
          } else {
            // Permanent errors say nothing about the provider's health (the breaker ignores them too).
            this.reached(circuit, !(error instanceof ProviderError && error.kind === "permanent"));
          }
          throw error;
        }
      },
    };
  }

  private reached(circuit: Circuit, failed: boolean): void {
    const now = this.now();
    this.prune(circuit, now);
    const second = Math.floor(now / 1000);
    const counts = circuit.seconds.get(second) ?? { calls: 0, failed: 0 };
    counts.calls++;
    if (failed) counts.failed++;
    circuit.seconds.set(second, counts);
    // A call that got through an open circuit was its probe.
    if (circuit.state === "open") {
      circuit.since = now;
      if (!failed) circuit.state = "closed";
    }
  }

  private prune(circuit: Circuit, now: number): void {
    const oldest = Math.floor((now - WINDOW_MS) / 1000);
    for (const second of circuit.seconds.keys()) if (second <= oldest) circuit.seconds.delete(second);
  }

  views(): CircuitView[] {
    const now = this.now();
    return [...this.circuits].map(([route, circuit]) => {
      this.prune(circuit, now);
      const probing = circuit.state === "open" && circuit.since !== null && now - circuit.since >= this.resetSeconds * 1000;
      const counts = [...circuit.seconds.values()];
      return {
        route,
        state: circuit.reported?.() ?? (probing ? "half_open" : circuit.state),
        since: circuit.since === null ? null : new Date(circuit.since).toISOString(),
        recentCalls: counts.reduce((sum, c) => sum + c.calls, 0),
        recentFailures: counts.reduce((sum, c) => sum + c.failed, 0),
        refused: circuit.refused,
      };
    });
  }
}
