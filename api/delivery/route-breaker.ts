/**
 * A circuit breaker (opossum) around a cloud route. When a provider keeps
 * failing, later jobs skip it at once instead of each waiting for its error or
 * timeout; after `resetSeconds` one job is let through to probe it. Permanent
 * errors (a bad number, a blocked recipient) say nothing about the provider's
 * health, so they do not count.
 */
import CircuitBreaker from "opossum";
import type { FastifyBaseLogger } from "fastify";
import { ProviderError, type SendReceipt } from "../providers/provider.js";
import type { DeliveryRoute } from "./dispatcher.js";
import type { Job } from "./job-state.js";

export interface BreakerOptions {
  /** Failures in the rolling window (30 s) before the breaker may open. */
  minCalls: number;
  resetSeconds: number;
  logger: FastifyBaseLogger;
}

export function withBreaker(route: DeliveryRoute, options: BreakerOptions): DeliveryRoute {
  const breaker = new CircuitBreaker(
    (job: Job, text: string, signal: AbortSignal, target: string): Promise<SendReceipt> => route.deliver(job, text, signal, target),
    {
      // The dispatcher owns the per-attempt timeout.
      timeout: false,
      errorThresholdPercentage: 50,
      volumeThreshold: options.minCalls,
      rollingCountTimeout: 30_000,
      resetTimeout: options.resetSeconds * 1000,
      errorFilter: (error: unknown) => error instanceof ProviderError && error.kind === "permanent",
      name: route.name,
    },
  );
  breaker.on("open", () => options.logger.warn({ route: route.name }, "circuit opened: skipping this route for now"));
  breaker.on("close", () => options.logger.info({ route: route.name }, "circuit closed: route is back"));
  return {
    ...route,
    circuit: () => (breaker.opened ? "open" : breaker.halfOpen ? "half_open" : "closed"),
    async deliver(job, text, signal, target) {
      try {
        return await breaker.fire(job, text, signal, target);
      } catch (error) {
        if ((error as { code?: string }).code === "EOPENBREAKER") {
          throw new ProviderError(`${route.name} is failing; skipped while its circuit is open`, "transient", "circuit_open");
        }
        throw error;
      }
    },
  };
}
