/**
 * Which routes a job may take, in order. Pure: FAILOVER_ORDER, what is
 * configured, and what the job carries decide it.
 */
import type { RouteName } from "../config/config.js";
import type { Job } from "./job-state.js";

export interface RouteCapability {
  name: RouteName;
  channel: "sms" | "email";
}

export type JobDestinations = Pick<Job, "channel" | "to" | "email" | "emailFallback">;

export function planRoutes<R extends RouteCapability>(order: readonly RouteName[], configured: readonly R[], job: JobDestinations): R[] {
  const byName = new Map(configured.map((route) => [route.name, route]));
  return order
    .map((name) => byName.get(name))
    .filter((route): route is R => route !== undefined)
    .filter((route) => {
      if (route.channel === "sms") return job.channel === "sms" && Boolean(job.to);
      return Boolean(job.email) && (job.channel === "email" || Boolean(job.emailFallback));
    });
}
