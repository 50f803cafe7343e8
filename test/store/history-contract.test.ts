/**
 * The history listing (GET /v1/messages, GET /v1/otp), one behaviour for
 * three stores: filters and time bounds, newest-first order, cursor pages
 * that neither repeat nor skip while records keep arriving (from two handles,
 * as two nodes would), and the retention: what is older goes, with its index
 * entries, in the clean-up; what is younger stays past its caller's own TTL.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, inject, it } from "vitest";
import type { Attempt, Job, JobState } from "../../api/delivery/job-state.js";
import { DEFAULT_POLICY, type OtpPolicy } from "../../api/otp/rules.js";
import { createSealer } from "../../api/security/sealing.js";
import { newestFirst, positionOfMember, type HistoryPosition, type HistoryQuery } from "../../api/store/history.js";
import { MemoryStore } from "../../api/store/memory-store.js";
import { RedisStore } from "../../api/store/redis-store.js";
import { SqliteStore } from "../../api/store/sqlite-store.js";
import type { Store } from "../../api/store/store.js";
import { otpRecord } from "./store-contract.js";

const sealer = createSealer("history-contract-sealing-secret-0123456789");
const DAY = 86_400_000;

interface HistoryFactory {
  create(options: { historyRetentionMs?: number }): Store;
  /** A second handle on the same data (another node); the memory store is its own. */
  sibling(store: Store): Store;
  sweep(store: Store, now: number): Promise<void>;
  /** The ids the store's history index holds for a kind, whatever their records' state. */
  indexed(store: Store, kind: "message" | "otp"): Promise<string[]>;
}

const factories: Record<"memory" | "sqlite" | "redis", HistoryFactory> = {
  memory: {
    create: (options) => new MemoryStore(options),
    sibling: (store) => store,
    sweep: async (store, now) => (store as MemoryStore).sweep(now),
    // The memory store lists its records themselves: its index is the record map, which the listing shows.
    indexed: async (store, kind) => {
      const all: string[] = [];
      for (let after: HistoryPosition | undefined, more = true; more; ) {
        const page = await (kind === "message" ? store.listMessages({ limit: 500, after }) : store.listOtps({ limit: 500, after }, Date.now()));
        all.push(...page.ids);
        after = page.next ?? undefined;
        more = page.next !== null;
      }
      return all;
    },
  },
  sqlite: {
    create: (options) => new SqliteStore({ file: path.join(mkdtempSync(path.join(tmpdir(), "otpgate-history-")), "otpgate.db"), sealer, ...options }),
    sibling: (store) => new SqliteStore({ file: (store as SqliteStore).file, sealer }),
    sweep: async (store, now) => (store as SqliteStore).sweep(now),
    indexed: async (store, kind) => {
      const db = new Database((store as SqliteStore).file, { readonly: true });
      try {
        const sql = kind === "message" ? "SELECT id FROM jobs WHERE kind = 'message'" : "SELECT id FROM otps";
        return (db.prepare(sql).all() as { id: string }[]).map((row) => row.id);
      } finally {
        db.close();
      }
    },
  },
  redis: {
    create: (options) => new RedisStore({ url: inject("redisUrl"), keyPrefix: `hist:${randomUUID()}:`, sealer, ...options }),
    sibling: (store) => new RedisStore({ url: inject("redisUrl"), keyPrefix: (store as RedisStore).keyPrefix, sealer }),
    sweep: (store, now) => (store as RedisStore).sweep(now),
    indexed: async (store, kind) => {
      const redis = store as RedisStore;
      const entries = await redis.redis.zrange(`${redis.keyPrefix}hist:${kind}`, 0, -1);
      const kept = await redis.redis.zrange(`${redis.keyPrefix}hist:keep`, 0, -1);
      // The expiry index and the listing index move together.
      expect(kept.filter((member) => member.startsWith(`${kind}:`)).sort()).toEqual(entries.map((entry) => `${kind}:${entry}`).sort());
      return entries.map((entry) => positionOfMember(entry).id);
    },
  },
};

const policy: OtpPolicy = { ...DEFAULT_POLICY, resendCooldownSeconds: 0, maxSendsPerHour: 1000 };

function message(createdAt: number, overrides: Partial<Job> = {}): Job {
  const at = new Date(createdAt).toISOString();
  return {
    id: randomUUID(),
    kind: "message",
    channel: "sms",
    to: "+254711000111",
    sealedBody: sealer.seal("history body"),
    state: "queued",
    attempts: [],
    createdAt: at,
    updatedAt: at,
    expiresAt: new Date(createdAt + 3_600_000).toISOString(),
    ...overrides,
  };
}

const attempt = (route: string, state: Attempt["state"] = "sent"): Attempt => ({ route, state, at: new Date().toISOString() });

/** Every page of a listing, following `next`, alternating between handles. */
async function everyPage(handles: Store[], list: (store: Store, after?: HistoryPosition) => ReturnType<Store["listMessages"]>): Promise<string[][]> {
  const pages: string[][] = [];
  let after: HistoryPosition | undefined;
  for (let i = 0; ; i++) {
    const page = await list(handles[i % handles.length]!, after);
    pages.push(page.ids);
    if (!page.next) return pages;
    after = page.next;
    if (i > 1000) throw new Error("the listing never ends");
  }
}

describe.each(Object.entries(factories))("history contract: %s", (_name, factory) => {
  const opened: Store[] = [];
  const open = (options: { historyRetentionMs?: number } = {}) => {
    const store = factory.create(options);
    opened.push(store);
    return store;
  };
  const sibling = (store: Store) => {
    const other = factory.sibling(store);
    if (other !== store) opened.push(other);
    return other;
  };
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close()));
  });

  const messages = (store: Store, query: Partial<HistoryQuery> = {}) => store.listMessages({ limit: 100, ...query });
  const otps = (store: Store, query: Partial<HistoryQuery> = {}, now = Date.now()) => store.listOtps({ limit: 100, ...query }, now);

  it("lists plain messages newest first, ties in the same millisecond by id, and not the jobs of OTPs", async () => {
    const store = open();
    const base = Date.now() - 60_000;
    const made = [message(base), message(base + 1000), message(base + 1000), message(base + 1000), message(base + 2000)];
    for (const job of made) expect(await store.createJob(job, 60)).toBe(true);
    await store.createJob(message(base + 3000, { kind: "otp", otpId: randomUUID() }), 60);
    const expected = made
      .map((job) => ({ createdAt: Date.parse(job.createdAt), id: job.id }))
      .sort(newestFirst)
      .map((p) => p.id);
    expect((await messages(store)).ids).toEqual(expected);
    expect((await messages(sibling(store))).ids).toEqual(expected);
    expect((await messages(store)).next).toBeNull();
  });

  it("filters by state (several at once), by exact route and by any phone", async () => {
    const store = open();
    const base = Date.now() - 60_000;
    const queued = message(base);
    const viaTwilio = message(base + 1, { state: "sent", attempts: [attempt("device:dev_a", "failed"), attempt("twilio")] });
    const viaPhone = message(base + 2, { state: "delivered", attempts: [attempt("device:dev_a", "delivered")] });
    const failed = message(base + 3, { state: "failed", attempts: [attempt("device:dev_b", "failed")] });
    for (const job of [queued, viaTwilio, viaPhone, failed]) await store.createJob(job, 60);

    expect((await messages(store, { states: ["queued"] })).ids).toEqual([queued.id]);
    expect((await messages(store, { states: ["failed", "delivered"] })).ids).toEqual([failed.id, viaPhone.id]);
    // The route is where the job is or ended (its newest attempt), not every route it tried.
    expect((await messages(store, { route: "twilio" })).ids).toEqual([viaTwilio.id]);
    expect((await messages(store, { route: "device:dev_a" })).ids).toEqual([viaPhone.id]);
    expect((await messages(store, { route: "device" })).ids).toEqual([failed.id, viaPhone.id]);
    expect((await messages(store, { route: "device", states: ["failed"] })).ids).toEqual([failed.id]);
    expect((await messages(store, { route: "email" })).ids).toEqual([]);
  });

  it("follows a job's updates: its new state and route are what the filters see", async () => {
    const store = open();
    const job = message(Date.now() - 1000);
    await store.createJob(job, 60);
    await store.updateJob(job.id, (current) => ({ ...current, state: "sent", attempts: [attempt("africastalking")] }));
    expect((await messages(store, { states: ["queued"] })).ids).toEqual([]);
    expect((await messages(store, { states: ["sent"], route: "africastalking" })).ids).toEqual([job.id]);
  });

  it("bounds by since (inclusive) and until (exclusive), to the millisecond", async () => {
    const store = open();
    const base = Date.now() - 60_000;
    const jobs = [0, 1, 2, 3].map((i) => message(base + i * 1000));
    for (const job of jobs) await store.createJob(job, 60);
    const [a, b, c, d] = jobs.map((job) => job.id);
    expect((await messages(store, { since: base + 1000 })).ids).toEqual([d, c, b]);
    expect((await messages(store, { since: base + 1001 })).ids).toEqual([d, c]);
    expect((await messages(store, { until: base + 2000 })).ids).toEqual([b, a]);
    expect((await messages(store, { until: base + 2001 })).ids).toEqual([c, b, a]);
    expect((await messages(store, { since: base + 1000, until: base + 3000 })).ids).toEqual([c, b]);
    expect((await messages(store, { since: base + 5000 })).ids).toEqual([]);
    // With a cursor the window still holds.
    const first = await messages(store, { since: base + 1000, until: base + 3000, limit: 1 });
    expect(first.ids).toEqual([c]);
    expect((await messages(store, { since: base + 1000, until: base + 3000, limit: 1, after: first.next! })).ids).toEqual([b]);
  });

  it("lists OTPs by status as their view reads it, and by their job's state and route", async () => {
    const store = open();
    const now = Date.now();
    const pending = otpRecord({}, now - 3000);
    const lapsed = otpRecord({ expiresAt: now - 1000 }, now - 2000);
    const approved = otpRecord({}, now - 1000);
    for (const record of [pending, lapsed, approved]) expect(await store.issueOtp(record, policy, record.createdAt)).toEqual({ ok: true });
    expect(await store.verifyOtp(approved.id, true, policy, now)).toMatchObject({ valid: true });
    const job = (record: typeof pending, state: JobState, attempts: Attempt[]) =>
      ({ ...message(record.createdAt), id: record.jobId, kind: "otp", otpId: record.id, state, attempts }) satisfies Job;
    await store.createJob(job(pending, "sent", [attempt("twilio")]), 60);
    await store.createJob(job(approved, "delivered", [attempt("device:dev_c", "delivered")]), 60);
    // `lapsed` has no job at all: it reads as queued with no route, as GET /v1/otp/:id shows it.

    expect((await otps(store)).ids).toEqual([approved.id, lapsed.id, pending.id]);
    // A pending code past its expiry is expired even before anyone checks it.
    expect((await otps(store, { statuses: ["expired"] }, now)).ids).toEqual([lapsed.id]);
    expect((await otps(store, { statuses: ["pending"] }, now)).ids).toEqual([pending.id]);
    expect((await otps(store, { statuses: ["pending"] }, pending.expiresAt)).ids).toEqual([]);
    expect((await otps(store, { statuses: ["approved", "pending"] }, now)).ids).toEqual([approved.id, pending.id]);
    expect((await otps(store, { states: ["queued"] })).ids).toEqual([lapsed.id]);
    expect((await otps(store, { states: ["sent", "delivered"] })).ids).toEqual([approved.id, pending.id]);
    expect((await otps(store, { route: "device" })).ids).toEqual([approved.id]);
    expect((await otps(store, { route: "twilio", statuses: ["pending"] }, now)).ids).toEqual([pending.id]);
    expect((await otps(store, { since: now - 2000, until: now - 1000 })).ids).toEqual([lapsed.id]);
  });

  it("pages through everything once, in order, while new records arrive on two nodes", async () => {
    const store = open();
    const other = sibling(store);
    const base = Date.now() - 600_000;
    // Groups of three in the same millisecond, so page boundaries fall inside ties.
    const seeded = Array.from({ length: 45 }, (_, i) => message(base + Math.floor(i / 3) * 1000));
    await Promise.all(seeded.map((job, i) => (i % 2 ? other : store).createJob(job, 600)));
    const expected = seeded
      .map((job) => ({ createdAt: Date.parse(job.createdAt), id: job.id }))
      .sort(newestFirst)
      .map((p) => p.id);

    const arrivals: Job[] = [];
    const pages = await everyPage([store, other], async (handle, after) => {
      // Each page races new messages being accepted, on both handles.
      const fresh = [message(Date.now()), message(Date.now())];
      arrivals.push(...fresh);
      const [page] = await Promise.all([handle.listMessages({ limit: 7, after }), store.createJob(fresh[0]!, 600), other.createJob(fresh[1]!, 600)]);
      return page;
    });
    const listed = pages.flat();
    const arrived = new Set(arrivals.map((job) => job.id));
    // The first page may or may not see what arrived during it; no later page sees anything newer than where it started.
    expect(listed.filter((id) => !arrived.has(id))).toEqual(expected);
    expect(new Set(listed).size).toBe(listed.length);
    expect(pages.slice(1).flat().some((id) => arrived.has(id))).toBe(false);
    expect(pages.slice(0, -1).every((page) => page.length === 7)).toBe(true);

    // Afterwards the arrivals are the newest, and a fresh listing shows all of them once.
    const again = (await everyPage([other, store], (handle, after) => handle.listMessages({ limit: 10, after }))).flat();
    expect(new Set(again)).toEqual(new Set([...expected, ...arrived]));
    expect(again).toHaveLength(expected.length + arrived.size);
  });

  it("pages through a rare filter: each match once, the last page says there is no next", async () => {
    const store = open();
    const base = Date.now() - 600_000;
    const jobs = Array.from({ length: 260 }, (_, i) => message(base + i, i % 40 === 0 ? { state: "failed", attempts: [attempt("twilio", "failed")] } : {}));
    for (const job of jobs) await store.createJob(job, 600);
    const failed = jobs.filter((job) => job.state === "failed").map((job) => job.id).reverse();
    expect(failed).toHaveLength(7);
    const pages = await everyPage([store], (handle, after) => handle.listMessages({ limit: 2, after, states: ["failed"] }));
    expect(pages.flat()).toEqual(failed);
    // Exactly a page's worth: no empty page after it.
    const exact = await store.listMessages({ limit: 7, states: ["failed"] });
    expect(exact.ids).toEqual(failed);
    expect(exact.next).toBeNull();
  });

  it("pages through OTPs the same way", async () => {
    const store = open();
    const base = Date.now() - 60_000;
    const records = Array.from({ length: 12 }, (_, i) => otpRecord({}, base + Math.floor(i / 2) * 10));
    for (const record of records) await store.issueOtp(record, policy, record.createdAt);
    const expected = records.map((r) => ({ createdAt: r.createdAt, id: r.id })).sort(newestFirst).map((p) => p.id);
    const pages = await everyPage([store, sibling(store)], (handle, after) => handle.listOtps({ limit: 5, after }, Date.now()));
    expect(pages.map((page) => page.length)).toEqual([5, 5, 2]);
    expect(pages.flat()).toEqual(expected);
  });

  it("refuses a page size below one", async () => {
    const store = open();
    await expect(store.listMessages({ limit: 0 })).rejects.toThrow(RangeError);
    await expect(store.listOtps({ limit: 0 }, Date.now())).rejects.toThrow(RangeError);
  });

  it("keeps records for the retention past their own TTL, then the clean-up removes them with their index entries", async () => {
    const store = open({ historyRetentionMs: DAY });
    const now = Date.now();
    const old = message(now - 2 * DAY);
    const recent = message(now - 3_600_000);
    // Their callers ask for one second; the retention decides for the recent ones.
    for (const job of [old, recent]) expect(await store.createJob(job, 1)).toBe(true);
    const brief = { ...policy, retentionSeconds: 0 };
    const oldOtp = otpRecord({ expiresAt: now + 500 }, now - 2 * DAY);
    const recentOtp = otpRecord({ expiresAt: now + 500 }, now - 3_600_000);
    for (const record of [oldOtp, recentOtp]) expect(await store.issueOtp(record, brief, now)).toEqual({ ok: true });
    expect((await messages(store)).ids).toEqual([recent.id, old.id]);
    expect((await otps(store)).ids).toEqual([recentOtp.id, oldOtp.id]);

    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await factory.sweep(store, Date.now());

    expect(await store.getJob(old.id)).toBeNull();
    expect(await store.getOtp(oldOtp.id)).toBeNull();
    expect(await store.getJob(recent.id)).toMatchObject({ id: recent.id });
    expect(await store.getOtp(recentOtp.id)).toMatchObject({ id: recentOtp.id, status: "pending" });
    expect((await messages(store)).ids).toEqual([recent.id]);
    expect((await otps(store)).ids).toEqual([recentOtp.id]);
    expect(await factory.indexed(store, "message")).toEqual([recent.id]);
    expect(await factory.indexed(store, "otp")).toEqual([recentOtp.id]);
  });

  it("without a retention keeps records only as long as their callers ask (as before)", async () => {
    const store = open();
    const job = message(Date.now() - 3_600_000);
    await store.createJob(job, 1);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    await factory.sweep(store, Date.now());
    expect(await store.getJob(job.id)).toBeNull();
    expect((await messages(store)).ids).toEqual([]);
    expect(await factory.indexed(store, "message")).toEqual([]);
  });
});
