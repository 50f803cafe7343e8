/**
 * The OTP funnel, issued → delivered → verified, by route and by country,
 * read from the store's history (the same records GET /v1/otp lists), so it
 * covers the cluster and survives restarts. Delivered means the job reached
 * `sent` or `delivered`: a cloud provider that took the message gives no
 * further signal. A code counts under the route its job is on or ended on
 * (`device` for every phone) and the country of its number (`email` for
 * codes sent by email); only the country leaves this module, never the number.
 */
import { deliveryOf, routeKind, type Job } from "../delivery/job-state.js";
import { classifyNumber } from "../fraud/fraud-rules.js";
import type { OtpRecord } from "../otp/rules.js";
import type { Store } from "../store/store.js";

export interface FunnelRow {
  key: string;
  issued: number;
  delivered: number;
  verified: number;
}

export interface Funnel {
  since: string;
  until: string;
  /** OTPs looked at; when `truncated`, the newest `issued` of the window. */
  issued: number;
  truncated: boolean;
  total: FunnelRow;
  byRoute: FunnelRow[];
  byCountry: FunnelRow[];
}

export interface FunnelEntry {
  route: string;
  country: string;
  delivered: boolean;
  verified: boolean;
}

export function funnelEntry(record: Pick<OtpRecord, "channel" | "to" | "status">, job: Job | null): FunnelEntry {
  const { state, route } = deliveryOf(job);
  const country = record.channel === "email" || !record.to ? "email" : (countryOf(record.to) ?? "unknown");
  return {
    route: route === null ? "none" : routeKind(route),
    country,
    delivered: state === "sent" || state === "delivered",
    verified: record.status === "approved",
  };
}

function countryOf(e164: string): string | null {
  const info = classifyNumber(e164);
  return info.country ?? (info.callingCode ? `+${info.callingCode}` : null);
}

/** Rows per key, largest first. */
function rows(entries: readonly FunnelEntry[], keyOf: (entry: FunnelEntry) => string): FunnelRow[] {
  const byKey = new Map<string, FunnelRow>();
  for (const entry of entries) {
    const key = keyOf(entry);
    let row = byKey.get(key);
    if (!row) byKey.set(key, (row = { key, issued: 0, delivered: 0, verified: 0 }));
    row.issued++;
    if (entry.delivered) row.delivered++;
    if (entry.verified) row.verified++;
  }
  return [...byKey.values()].sort((a, b) => b.issued - a.issued || a.key.localeCompare(b.key));
}

export function summarise(entries: readonly FunnelEntry[], window: { since: number; until: number }, truncated: boolean): Funnel {
  return {
    since: new Date(window.since).toISOString(),
    until: new Date(window.until).toISOString(),
    issued: entries.length,
    truncated,
    total: rows(entries, () => "all")[0] ?? { key: "all", issued: 0, delivered: 0, verified: 0 },
    byRoute: rows(entries, (entry) => entry.route),
    byCountry: rows(entries, (entry) => entry.country),
  };
}

/** Page size, and the most OTPs one funnel reads (each costs two store reads). */
const PAGE = 500;
export const FUNNEL_MAX_OTPS = 5000;

export async function readFunnel(store: Store, window: { since: number; until: number }, now = Date.now(), max = FUNNEL_MAX_OTPS): Promise<Funnel> {
  const entries: FunnelEntry[] = [];
  let after: { createdAt: number; id: string } | undefined;
  let truncated = false;
  for (;;) {
    const page = await store.listOtps({ limit: PAGE, since: window.since, until: window.until, ...(after ? { after } : {}) }, now);
    const records = await Promise.all(page.ids.map((id) => store.getOtp(id)));
    const jobs = await Promise.all(records.map((record) => (record ? store.getJob(record.jobId) : null)));
    records.forEach((record, i) => {
      if (record && entries.length < max) entries.push(funnelEntry(record, jobs[i] ?? null));
    });
    if (!page.next) break;
    if (entries.length >= max) {
      truncated = true;
      break;
    }
    after = page.next;
  }
  return summarise(entries, window, truncated);
}
