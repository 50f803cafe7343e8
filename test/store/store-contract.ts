/**
 * One behaviour, three stores: every Store implementation (memory, SQLite,
 * Redis) runs these cases, the order of the OTP decisions included.
 */
import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { dueAt, type Job } from "../../api/delivery/job-state.js";
import { DEFAULT_POLICY, codeDigest, subjectsFor, type OtpPolicy, type OtpRecord } from "../../api/otp/rules.js";
import type { FraudQuota, SendReservation, WatchPolicy } from "../../api/fraud/fraud-rules.js";
import type { ApiKeyRecord, Store } from "../../api/store/store.js";

export interface StoreFactory {
  /** A fresh, empty store. */
  create(): Promise<Store>;
  /** A second handle on the same live data, as another node would have (memory: the store itself). */
  sibling(store: Store): Promise<Store>;
  /** A new store over what `store` persisted, as after a restart; absent for a store that keeps nothing. */
  restart?(store: Store): Promise<Store>;
}

const SECRET = "contract-secret";
const policy: OtpPolicy = { ...DEFAULT_POLICY, resendCooldownSeconds: 0 };

export function otpRecord(overrides: Partial<OtpRecord> = {}, now = Date.now()): OtpRecord {
  const id = overrides.id ?? randomUUID();
  const to = overrides.to ?? `+2547${String(Math.floor(Math.random() * 1e8)).padStart(8, "0")}`;
  return {
    id,
    digest: codeDigest(SECRET, id, "123456"),
    channel: "sms",
    to,
    subjects: subjectsFor({ to, userId: overrides.userId }),
    status: "pending",
    attempts: 0,
    maxAttempts: 5,
    createdAt: now,
    expiresAt: now + 300_000,
    jobId: randomUUID(),
    ...overrides,
  };
}

function job(overrides: Partial<Job> = {}): Job {
  const now = new Date().toISOString();
  return {
    id: randomUUID(),
    kind: "message",
    channel: "sms",
    to: "+254711000111",
    sealedBody: "v1.x.y.z",
    state: "queued",
    attempts: [],
    createdAt: now,
    updatedAt: now,
    expiresAt: now,
    ...overrides,
  };
}

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let store: Store;
    const opened = new Set<Store>();

    beforeEach(async () => {
      store = await factory.create();
      opened.add(store);
    });
    /** The store after a restart; a store that keeps nothing is just itself. */
    const reopen = async (current: Store) => (factory.restart ? factory.restart(current) : current);
    afterEach(async () => {
      await Promise.all([...opened].map((s) => s.close()));
      opened.clear();
    });

    describe("issuing", () => {
      it("saves the record with its digest and reads it back", async () => {
        const record = otpRecord();
        expect(await store.issueOtp(record, policy, Date.now())).toEqual({ ok: true });
        expect(await store.getOtp(record.id)).toEqual(record);
        expect(await store.latestOtpId(record.subjects[0]!)).toBe(record.id);
      });

      it("returns null for an unknown id", async () => {
        expect(await store.getOtp(randomUUID())).toBeNull();
        expect(await store.latestOtpId("phone:+10000000000")).toBeNull();
      });

      it("refuses a resend inside the cooldown with the seconds left", async () => {
        const now = Date.now();
        const first = otpRecord({}, now);
        const strict = { ...policy, resendCooldownSeconds: 30 };
        expect(await store.issueOtp(first, strict, now)).toEqual({ ok: true });
        const again = otpRecord({ to: first.to }, now + 5_000);
        const result = await store.issueOtp(again, strict, now + 5_000);
        expect(result).toMatchObject({ ok: false, reason: "cooldown" });
        expect(result.ok === false && result.retryAfterSeconds).toBeGreaterThanOrEqual(20);
        expect(result.ok === false && result.retryAfterSeconds).toBeLessThanOrEqual(30);
        expect(await store.getOtp(again.id)).toBeNull();
      });

      it("caps sends per subject per hour", async () => {
        const capped = { ...policy, maxSendsPerHour: 3 };
        const to = "+254722000333";
        for (let i = 0; i < 3; i++) expect((await store.issueOtp(otpRecord({ to }), capped, Date.now())).ok).toBe(true);
        const refused = await store.issueOtp(otpRecord({ to }), capped, Date.now());
        expect(refused).toMatchObject({ ok: false, reason: "hourly_cap" });
        expect(refused.ok === false && refused.retryAfterSeconds).toBeGreaterThan(3_500);
        // Another number is not affected.
        expect((await store.issueOtp(otpRecord(), capped, Date.now())).ok).toBe(true);
      });

      it("counts the user and the number separately", async () => {
        const capped = { ...policy, maxSendsPerHour: 1 };
        expect((await store.issueOtp(otpRecord({ userId: "u-1" }), capped, Date.now())).ok).toBe(true);
        const sameUserOtherNumber = await store.issueOtp(otpRecord({ userId: "u-1" }), capped, Date.now());
        expect(sameUserOtherNumber).toMatchObject({ ok: false, reason: "hourly_cap" });
      });

      it("expires the subject's previous pending code when a new one is issued", async () => {
        const first = otpRecord();
        await store.issueOtp(first, policy, Date.now());
        const second = otpRecord({ to: first.to });
        await store.issueOtp(second, policy, Date.now());
        expect((await store.getOtp(first.id))?.status).toBe("expired");
        expect(await store.latestOtpId(first.subjects[0]!)).toBe(second.id);
        expect(await store.verifyOtp(first.id, true, policy, Date.now())).toMatchObject({ valid: false, status: "expired" });
      });
    });

    describe("verifying", () => {
      it("approves a matching code once", async () => {
        const record = otpRecord();
        await store.issueOtp(record, policy, Date.now());
        expect(await store.verifyOtp(record.id, true, policy, Date.now())).toEqual({
          found: true,
          valid: true,
          status: "approved",
          attemptsLeft: 4,
        });
        expect(await store.verifyOtp(record.id, true, policy, Date.now())).toMatchObject({ valid: false, status: "approved" });
      });

      it("counts wrong codes and stops at maxAttempts", async () => {
        const record = otpRecord();
        await store.issueOtp(record, policy, Date.now());
        for (let left = 4; left >= 1; left--) {
          expect(await store.verifyOtp(record.id, false, policy, Date.now())).toMatchObject({
            valid: false,
            status: "pending",
            attemptsLeft: left,
          });
        }
        expect(await store.verifyOtp(record.id, false, policy, Date.now())).toMatchObject({ status: "max_attempts", attemptsLeft: 0 });
        // The right code no longer helps.
        expect(await store.verifyOtp(record.id, true, policy, Date.now())).toMatchObject({ valid: false, status: "max_attempts" });
      });

      it("refuses an expired code", async () => {
        const now = Date.now();
        const record = otpRecord({ expiresAt: now + 1_000 }, now);
        await store.issueOtp(record, policy, now);
        expect(await store.verifyOtp(record.id, true, policy, now + 1_000)).toMatchObject({ valid: false, status: "expired" });
        expect((await store.getOtp(record.id))?.status).toBe("expired");
      });

      it("reports an unknown id as not found", async () => {
        expect(await store.verifyOtp(randomUUID(), true, policy, Date.now())).toEqual({ found: false });
      });

      it("locks a number after repeated failures, across resends, and refuses sends and checks", async () => {
        const lockout = { ...policy, lockoutThreshold: 3, lockoutSeconds: 600 };
        const first = otpRecord();
        await store.issueOtp(first, lockout, Date.now());
        await store.verifyOtp(first.id, false, lockout, Date.now());
        await store.verifyOtp(first.id, false, lockout, Date.now());
        // A resend gives a fresh code, but the failure count carries on.
        const second = otpRecord({ to: first.to });
        await store.issueOtp(second, lockout, Date.now());
        expect((await store.verifyOtp(second.id, false, lockout, Date.now())).found).toBe(true);
        const locked = await store.verifyOtp(second.id, true, lockout, Date.now());
        expect(locked).toMatchObject({ valid: false, status: "pending" });
        expect(locked.found && locked.lockedForSeconds).toBeGreaterThan(590);
        // The refused check did not cost an attempt.
        expect((await store.getOtp(second.id))?.attempts).toBe(1);
        expect(await store.issueOtp(otpRecord({ to: first.to }), lockout, Date.now())).toMatchObject({ ok: false, reason: "locked" });
      });

      it("clears the failure count on success", async () => {
        const lockout = { ...policy, lockoutThreshold: 3 };
        const first = otpRecord();
        await store.issueOtp(first, lockout, Date.now());
        await store.verifyOtp(first.id, false, lockout, Date.now());
        await store.verifyOtp(first.id, false, lockout, Date.now());
        await store.verifyOtp(first.id, true, lockout, Date.now());
        const second = otpRecord({ to: first.to });
        await store.issueOtp(second, lockout, Date.now());
        await store.verifyOtp(second.id, false, lockout, Date.now());
        await store.verifyOtp(second.id, false, lockout, Date.now());
        expect(await store.verifyOtp(second.id, true, lockout, Date.now())).toMatchObject({ valid: true });
      });

      it("approves exactly once when 50 correct checks race", async () => {
        const record = otpRecord();
        await store.issueOtp(record, policy, Date.now());
        const results = await Promise.all(Array.from({ length: 50 }, () => store.verifyOtp(record.id, true, policy, Date.now())));
        expect(results.filter((r) => r.found && r.valid)).toHaveLength(1);
        expect(results.every((r) => r.found && r.status === "approved")).toBe(true);
      });

      it("never counts more than maxAttempts when 50 wrong checks race, from two handles", async () => {
        const record = otpRecord();
        await store.issueOtp(record, { ...policy, lockoutThreshold: 1000 }, Date.now());
        const other = await factory.sibling(store);
        opened.add(other);
        const racing = Array.from({ length: 50 }, (_, i) =>
          (i % 2 ? other : store).verifyOtp(record.id, false, { ...policy, lockoutThreshold: 1000 }, Date.now()),
        );
        const results = await Promise.all(racing);
        expect((await store.getOtp(record.id))?.attempts).toBe(5);
        expect(results.filter((r) => r.found && r.status === "pending")).toHaveLength(4);
      });
    });

    describe("the order of the OTP decisions (rules.ts)", () => {
      const lockout = { ...policy, lockoutThreshold: 2, lockoutSeconds: 600 };
      /** Locks the record's number with two wrong checks on a throwaway code. */
      async function lock(to: string, at: number) {
        const bait = otpRecord({ to }, at);
        await store.issueOtp(bait, lockout, at);
        await store.verifyOtp(bait.id, false, lockout, at);
        await store.verifyOtp(bait.id, false, lockout, at);
      }

      it("expired and locked: the check answers expired and counts nothing more", async () => {
        const now = Date.now();
        const record = otpRecord({ expiresAt: now + 1_000 }, now);
        await store.issueOtp(record, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        const result = await store.verifyOtp(record.id, true, lockout, now + 2_000);
        expect(result).toEqual({ found: true, valid: false, status: "expired", attemptsLeft: 3 });
        expect((await store.getOtp(record.id))?.attempts).toBe(2);
      });

      it("pending and locked: refused with the lock's time, not counted", async () => {
        const now = Date.now();
        const record = otpRecord({}, now);
        await store.issueOtp(record, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        const result = await store.verifyOtp(record.id, true, lockout, now + 20);
        expect(result).toMatchObject({ found: true, valid: false, status: "pending", attemptsLeft: 3 });
        expect(result.found && result.lockedForSeconds).toBeGreaterThan(590);
        expect((await store.getOtp(record.id))?.attempts).toBe(2);
      });

      it("approved and then locked: a settled code answers its status, not the lock", async () => {
        const now = Date.now();
        const record = otpRecord({}, now);
        await store.issueOtp(record, lockout, now);
        expect(await store.verifyOtp(record.id, true, lockout, now)).toMatchObject({ valid: true });
        await lock(record.to!, now + 10);
        expect(await store.verifyOtp(record.id, true, lockout, now + 20)).toEqual({ found: true, valid: false, status: "approved", attemptsLeft: 4 });
      });

      it("locked and cooling down: a send is refused as locked", async () => {
        const now = Date.now();
        const cooling = { ...lockout, resendCooldownSeconds: 60 };
        const first = otpRecord({}, now);
        await store.issueOtp(first, cooling, now);
        await store.verifyOtp(first.id, false, cooling, now);
        await store.verifyOtp(first.id, false, cooling, now);
        expect(await store.issueOtp(otpRecord({ to: first.to }, now + 10), cooling, now + 10)).toMatchObject({ ok: false, reason: "locked" });
      });

      it("cooling down and at the hourly cap: refused as cooldown, then as the cap once the cooldown ends", async () => {
        const now = Date.now();
        const strict = { ...policy, resendCooldownSeconds: 30, maxSendsPerHour: 1 };
        const first = otpRecord({}, now);
        await store.issueOtp(first, strict, now);
        expect(await store.issueOtp(otpRecord({ to: first.to }, now + 1_000), strict, now + 1_000)).toMatchObject({ ok: false, reason: "cooldown" });
        expect(await store.issueOtp(otpRecord({ to: first.to }, now + 31_000), strict, now + 31_000)).toMatchObject({ ok: false, reason: "hourly_cap" });
      });

      it("a refused send counts nothing: the cap is not used up by refusals", async () => {
        const now = Date.now();
        const strict = { ...policy, resendCooldownSeconds: 30, maxSendsPerHour: 2 };
        const first = otpRecord({}, now);
        await store.issueOtp(first, strict, now);
        for (let i = 1; i <= 5; i++) await store.issueOtp(otpRecord({ to: first.to }, now + i), strict, now + i);
        expect(await store.issueOtp(otpRecord({ to: first.to }, now + 31_000), strict, now + 31_000)).toEqual({ ok: true });
      });

      it("the lock ends on time, and checks count again", async () => {
        const now = Date.now();
        const record = otpRecord({ expiresAt: now + 3_600_000 }, now);
        await store.issueOtp(record, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        await store.verifyOtp(record.id, false, lockout, now);
        expect(await store.verifyOtp(record.id, true, lockout, now + 599_000)).toMatchObject({ valid: false, attemptsLeft: 3 });
        expect(await store.verifyOtp(record.id, true, lockout, now + 601_000)).toEqual({ found: true, valid: true, status: "approved", attemptsLeft: 2 });
      });
    });

    if (factory.restart) {
      it("keeps OTPs with their attempts, jobs with their leases, and cancels across a restart", async () => {
        const now = Date.now();
        const record = otpRecord({}, now);
        await store.issueOtp(record, policy, now);
        await store.verifyOtp(record.id, false, policy, now);
        const leased = job({ expiresAt: new Date(now + 60_000).toISOString(), lease: { owner: "node-a", until: new Date(now + 5_000).toISOString() } });
        await store.createJob(leased, 60);
        await store.saveCancel({ jobId: leased.id, deviceId: "dev_a", until: now + 60_000 });
        const restarted = await factory.restart!(store);
        opened.add(restarted);
        expect(await restarted.getOtp(record.id)).toMatchObject({ id: record.id, attempts: 1, status: "pending", digest: record.digest });
        expect(await restarted.latestOtpId(record.subjects[0]!)).toBe(record.id);
        expect(await restarted.getJob(leased.id)).toEqual(leased);
        expect(await restarted.dueJobIds(now + 5_000, 10)).toEqual([leased.id]);
        expect(await restarted.activeCancels(now)).toHaveLength(1);
        expect(await restarted.verifyOtp(record.id, true, policy, now)).toMatchObject({ valid: true, attemptsLeft: 3 });
      });
    }

    describe("jobs", () => {
      it("creates, reads and updates a job", async () => {
        const created = job();
        expect(await store.createJob(created, 60)).toBe(true);
        expect(await store.getJob(created.id)).toEqual(created);
        const updated = await store.updateJob(created.id, (j) => ({ ...j, state: "dispatched" }));
        expect(updated?.state).toBe("dispatched");
        expect((await store.getJob(created.id))?.state).toBe("dispatched");
        expect(await store.updateJob(created.id, () => null)).toMatchObject({ state: "dispatched" });
        expect(await store.updateJob(randomUUID(), (j) => j)).toBeNull();
        // A second create with the same id (a repeated publish) changes nothing.
        expect(await store.createJob({ ...created, state: "queued", to: "+19999999999" }, 60)).toBe(false);
        expect((await store.getJob(created.id))?.state).toBe("dispatched");
        expect(await store.getJob(randomUUID())).toBeNull();
      });

      it("loses no update when 20 writers race, from two handles", async () => {
        const created = job();
        await store.createJob(created, 60);
        const other = await factory.sibling(store);
        opened.add(other);
        await Promise.all(
          Array.from({ length: 20 }, (_, i) =>
            (i % 2 ? other : store).updateJob(created.id, (j) => ({
              ...j,
              attempts: [...j.attempts, { route: `r${i}`, state: "failed", at: new Date().toISOString() }],
            })),
          ),
        );
        const routes = (await store.getJob(created.id))!.attempts.map((a) => a.route).sort();
        expect(routes).toEqual(Array.from({ length: 20 }, (_, i) => `r${i}`).sort());
      });
    });

    describe("due jobs and leases", () => {
      const lease = (until: number) => ({ owner: "node-a", until: new Date(until).toISOString() });

      it("lists unsettled jobs whose lease lapsed, and forgets them once settled", async () => {
        const now = Date.now();
        const later = new Date(now + 60_000).toISOString();
        const lapsed = job({ expiresAt: later, state: "dispatched", lease: lease(now - 1_000) });
        const held = job({ expiresAt: later, lease: lease(now + 30_000) });
        // Expired under a live lease: its owner expires it; nobody else is asked to.
        const expiredButHeld = job({ expiresAt: new Date(now - 1_000).toISOString(), state: "dispatched", lease: lease(now + 40_000) });
        const unheld = job({ expiresAt: later, createdAt: new Date(now - 1_000).toISOString() });
        const done = job({ expiresAt: new Date(now - 1_000).toISOString(), state: "sent", lease: lease(now - 1_000) });
        for (const j of [lapsed, held, expiredButHeld, unheld, done]) expect(await store.createJob(j, 60)).toBe(true);
        expect((await store.dueJobIds(now, 100)).sort()).toEqual([lapsed.id, unheld.id].sort());
        expect((await store.dueJobIds(now + 45_000, 100)).sort()).toEqual([lapsed.id, held.id, expiredButHeld.id, unheld.id].sort());
        expect(await store.dueJobIds(now + 45_000, 1)).toHaveLength(1);
        for (const j of [lapsed, unheld]) await store.updateJob(j.id, (current) => ({ ...current, state: "sent" }));
        expect(await store.dueJobIds(now, 100)).toEqual([]);
      });

      it("moves a job in the due index when its lease is renewed", async () => {
        const now = Date.now();
        const leased = job({ expiresAt: new Date(now + 600_000).toISOString(), lease: lease(now - 1) });
        await store.createJob(leased, 60);
        expect(await store.dueJobIds(now, 10)).toEqual([leased.id]);
        const renewed = await store.updateJob(leased.id, (j) => ({ ...j, lease: lease(now + 20_000) }));
        expect(dueAt(renewed!)).toBe(now + 20_000);
        expect(await store.dueJobIds(now, 10)).toEqual([]);
        expect(await store.dueJobIds(now + 20_000, 10)).toEqual([leased.id]);
      });

      it("lets exactly one of two handles claim a lapsed lease", async () => {
        const now = Date.now();
        const leased = job({ expiresAt: new Date(now + 600_000).toISOString(), lease: lease(now - 1) });
        await store.createJob(leased, 60);
        const other = await factory.sibling(store);
        opened.add(other);
        const claims = await Promise.all(
          [store, other, store, other].map((handle, i) =>
            handle.updateJob(leased.id, (j) => (Date.parse(j.lease!.until) > now ? null : { ...j, lease: { owner: `claim-${i}`, until: new Date(now + 10_000).toISOString() } })),
          ),
        );
        const owners = new Set(claims.map((j) => j?.lease?.owner));
        expect(owners.size).toBe(1);
        expect((await store.getJob(leased.id))?.lease?.owner).toBe([...owners][0]);
      });
    });

    describe("cancels", () => {
      it("keeps cancels until their time, visible from every handle", async () => {
        const now = Date.now();
        await store.saveCancel({ jobId: "job-1", deviceId: "dev_a", until: now + 60_000 });
        await store.saveCancel({ jobId: "job-2", deviceId: "dev_b", until: now - 1 });
        const other = await factory.sibling(store);
        opened.add(other);
        expect(await other.activeCancels(now)).toEqual([{ jobId: "job-1", deviceId: "dev_a", until: now + 60_000 }]);
        expect(await store.activeCancels(now + 60_000)).toEqual([]);
      });
    });

    describe("devices, presence and publishers", () => {
      const device = (overrides = {}) => ({
        id: `dev_${randomUUID().slice(0, 8)}`,
        name: "drawer phone",
        tokenDigest: "ab".repeat(32),
        maxPerMinute: 20,
        prefixes: ["+254"],
        createdAt: new Date().toISOString(),
        ...overrides,
      });

      it("saves, lists and deletes devices, and keeps them across a restart", async () => {
        const a = device();
        const b = device({ name: "second", prefixes: [] });
        await store.saveDevice(a);
        await store.saveDevice(b);
        expect(await store.getDevice(a.id)).toEqual(a);
        expect((await store.listDevices()).map((d) => d.id).sort()).toEqual([a.id, b.id].sort());
        const restarted = await reopen(store);
        opened.add(restarted);
        expect(await restarted.getDevice(b.id)).toEqual(b);
        expect(await store.deleteDevice(a.id)).toBe(true);
        expect(await store.deleteDevice(a.id)).toBe(false);
        expect(await store.getDevice(a.id)).toBeNull();
      });

      it("keeps presence per device and forgets it with the device", async () => {
        const a = device();
        await store.saveDevice(a);
        expect(await store.getPresence([a.id, "dev_unknown"])).toEqual([null, null]);
        const online = { online: true, session: "s1", since: new Date().toISOString(), battery: 80, sims: [{ slot: 0 }] };
        expect(await store.setPresence(a.id, online)).toBe(true);
        expect(await store.getPresence([a.id])).toEqual([online]);
        // An old connection's close cannot overwrite a newer connection's presence.
        const newer = { ...online, session: "s2" };
        expect(await store.setPresence(a.id, newer)).toBe(true);
        expect(await store.setPresence(a.id, { ...online, online: false }, "s1")).toBe(false);
        expect(await store.getPresence([a.id])).toEqual([newer]);
        expect(await store.setPresence(a.id, { ...newer, online: false }, "s2")).toBe(true);
        expect((await store.getPresence([a.id]))[0]?.online).toBe(false);
        await store.deleteDevice(a.id);
        expect(await store.getPresence([a.id])).toEqual([null]);
      });

      it("writes a batch of presences in order, each under its own guard", async () => {
        const since = new Date().toISOString();
        const [a, b, c] = [device(), device(), device()];
        for (const d of [a, b, c]) await store.saveDevice(d);
        await store.setPresence(b.id, { online: true, session: "b1", since });
        const written = await store.setPresences([
          { deviceId: a.id, presence: { online: true, session: "a1", since } },
          // b moved on to b2 on another node: the close of b0 must not land, b1's may.
          { deviceId: b.id, presence: { online: false, session: "b0", since }, onlyIfSession: "b0" },
          { deviceId: b.id, presence: { online: true, session: "b1", since, battery: 50 }, onlyIfSession: "b1" },
          // A device named twice: the second write sees the first.
          { deviceId: c.id, presence: { online: true, session: "c1", since } },
          { deviceId: c.id, presence: { online: false, session: "c1", since }, onlyIfSession: "c1" },
          { deviceId: "dev_never_seen", presence: { online: false, session: "x", since }, onlyIfSession: "x" },
        ]);
        expect(written).toEqual([true, false, true, true, true, false]);
        expect(await store.getPresence([a.id, b.id, c.id, "dev_never_seen"])).toEqual([
          { online: true, session: "a1", since },
          { online: true, session: "b1", since, battery: 50 },
          { online: false, session: "c1", since },
          null,
        ]);
        expect(await store.setPresences([])).toEqual([]);
      });

      it("reads the presence of many phones by id among more stored", async () => {
        const since = new Date().toISOString();
        const stored = Array.from({ length: 60 }, (_, i) => `dev_many${i}`);
        await store.setPresences(stored.map((id, i) => ({ deviceId: id, presence: { online: i % 2 === 0, session: `m${i}`, since } })));
        const asked = [...stored.filter((_, i) => i % 3 === 0), "dev_many_unknown"];
        const read = await store.getPresence(asked);
        expect(read).toHaveLength(asked.length);
        expect(read.at(-1)).toBeNull();
        for (const [i, id] of asked.slice(0, -1).entries()) expect(read[i]).toEqual({ online: Number(id.slice(8)) % 2 === 0, session: `m${id.slice(8)}`, since });
      });

      it("holds each device to its per-minute budget over a sliding window", async () => {
        const now = Date.now();
        expect(await store.reserveDeviceSend("dev_rate", 2, now)).toBe(true);
        expect(await store.reserveDeviceSend("dev_rate", 2, now + 10)).toBe(true);
        expect(await store.reserveDeviceSend("dev_rate", 2, now + 20)).toBe(false);
        expect(await store.deviceSendCounts(["dev_rate", "dev_other"], now + 20)).toEqual([2, 0]);
        // The first send leaves the window a minute after it was made.
        expect(await store.reserveDeviceSend("dev_rate", 2, now + 60_001)).toBe(true);
        expect(await store.deviceSendCounts(["dev_rate"], now + 60_005)).toEqual([2]);
        expect(await store.deviceSendCounts(["dev_rate"], now + 60_015)).toEqual([1]);
      });

      it("answers presence and send counts for a whole fleet as it does for one phone", async () => {
        const now = Date.now();
        const fleet = Array.from({ length: 40 }, (_, i) => `dev_fleet${i}`);
        for (const [i, id] of fleet.entries()) {
          if (i % 3 === 0) await store.setPresence(id, { online: true, session: `s${i}`, since: new Date(now).toISOString() });
          for (let n = 0; n < i % 4; n++) await store.reserveDeviceSend(id, 20, now);
        }
        const one = await Promise.all(fleet.map(async (id) => [(await store.getPresence([id]))[0], (await store.deviceSendCounts([id], now))[0]]));
        const all = await store.getPresence(fleet);
        const counts = await store.deviceSendCounts(fleet, now);
        expect(fleet.map((_, i) => [all[i], counts[i]])).toEqual(one);
        expect(counts.reduce((sum, c) => sum + c, 0)).toBe(fleet.reduce((sum, _, i) => sum + (i % 4), 0));
        expect(all.filter(Boolean)).toHaveLength(14);
      });

      it("never lets racing reservations overrun the budget", async () => {
        const now = Date.now();
        const other = await factory.sibling(store);
        opened.add(other);
        const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? other : store).reserveDeviceSend("dev_race", 20, now)));
        expect(results.filter(Boolean)).toHaveLength(20);
      });

      it("saves, finds and deletes publishers", async () => {
        const publisher = { id: randomUUID(), name: "billing-system", tokenDigest: "cd".repeat(32), createdAt: new Date().toISOString() };
        await store.savePublisher(publisher);
        expect(await store.findPublisherByName("billing-system")).toEqual(publisher);
        expect(await store.findPublisherByName("nobody")).toBeNull();
        expect(await store.listPublishers()).toEqual([publisher]);
        const restarted = await reopen(store);
        opened.add(restarted);
        expect(await restarted.findPublisherByName("billing-system")).toEqual(publisher);
        expect(await store.deletePublisher(publisher.id)).toBe(true);
        expect(await store.findPublisherByName("billing-system")).toBeNull();
      });
    });

    describe("API keys", () => {
      const key = (overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord => ({
        id: randomUUID(),
        name: "billing",
        digest: randomUUID().replaceAll("-", ""),
        scopes: ["otp", "messages"],
        createdAt: new Date().toISOString(),
        prefix: "og_abcd",
        ...overrides,
      });

      it("saves, finds, lists and revokes keys, and keeps them across a reopen", async () => {
        const a = key();
        const b = key({ name: "support" });
        await store.saveApiKey(a);
        await store.saveApiKey(b);
        expect(await store.findApiKeyByDigest(a.digest)).toEqual(a);
        expect(await store.findApiKeyByDigest("nope")).toBeNull();
        expect((await store.listApiKeys()).map((k) => k.name).sort()).toEqual(["billing", "support"]);
        const revoked = await store.revokeApiKey(a.id, new Date("2026-01-01T00:00:00Z"));
        expect(revoked?.revokedAt).toBe("2026-01-01T00:00:00.000Z");
        expect(await store.revokeApiKey(randomUUID(), new Date())).toBeNull();

        const reopened = await reopen(store);
        opened.add(reopened);
        expect((await reopened.findApiKeyByDigest(a.digest))?.revokedAt).toBe("2026-01-01T00:00:00.000Z");
        expect(await reopened.findApiKeyByDigest(b.digest)).toEqual(b);
      });
    });

    describe("fraud guard (fraud-rules.ts)", () => {
      const watchPolicy: WatchPolicy = { windowMs: 3_600_000, minSends: 10, minConversion: 0.2, graceMs: 60_000, holdMs: 600_000 };
      const quota = (limit: number, windowMs = 60_000): FraudQuota => ({ key: `key:${randomUUID()}:m`, limit, windowMs });
      /** Whole watch buckets (a minute for an hour's window), so what is inside the grace does not depend on the clock. */
      const aligned = () => Math.ceil(Date.now() / 60_000) * 60_000;
      const otpSend = (prefix: string, quotas: FraudQuota[] = []): SendReservation => ({ quotas, watch: { prefix, policy: watchPolicy, countSend: true } });
      /** `count` OTP sends to the prefix at `at`, each admitted. */
      const sendMany = async (target: Store, prefix: string, count: number, at: number) => {
        for (let i = 0; i < count; i++) expect(await target.reserveSend(otpSend(prefix), at)).toEqual({ ok: true });
      };

      it("counts sends up to a quota, refuses the next with the time until there is room, and counts nothing refused", async () => {
        const now = Date.now();
        const q = quota(3);
        for (let i = 0; i < 3; i++) expect(await store.reserveSend({ quotas: [q] }, now + i * 1000)).toEqual({ ok: true });
        const refused = await store.reserveSend({ quotas: [q] }, now + 10_000);
        expect(refused).toMatchObject({ ok: false, reason: "quota", key: q.key, limit: 3 });
        // The first send leaves the 60 s window about 50 s later.
        expect(refused.ok === false && refused.reason === "quota" && refused.retryAfterMs).toBeGreaterThan(49_000);
        expect(refused.ok === false && refused.reason === "quota" && refused.retryAfterMs).toBeLessThanOrEqual(51_000);
        expect(await store.reserveSend({ quotas: [q] }, now + 62_000)).toEqual({ ok: true });
      });

      it("refuses at the first full quota and counts none of the others", async () => {
        const now = Date.now();
        const [open, full] = [quota(5), quota(1)];
        expect(await store.reserveSend({ quotas: [full] }, now)).toEqual({ ok: true });
        expect(await store.reserveSend({ quotas: [open, full] }, now)).toMatchObject({ ok: false, key: full.key });
        for (let i = 0; i < 5; i++) expect(await store.reserveSend({ quotas: [open] }, now)).toEqual({ ok: true });
        expect(await store.reserveSend({ quotas: [open] }, now)).toMatchObject({ ok: false, key: open.key });
      });

      it("admits exactly one of two concurrent reservations against a quota of one, across two nodes", async () => {
        const other = await factory.sibling(store);
        if (other !== store) opened.add(other);
        const now = Date.now();
        for (let round = 0; round < 5; round++) {
          const q = quota(1);
          const results = await Promise.all([store.reserveSend({ quotas: [q] }, now), other.reserveSend({ quotas: [q] }, now)]);
          expect(results.filter((r) => r.ok)).toHaveLength(1);
        }
      });

      it("takes a released send back", async () => {
        const now = Date.now();
        const q = quota(1);
        const request = { quotas: [q] };
        expect(await store.reserveSend(request, now)).toEqual({ ok: true });
        await store.releaseSend(request, now);
        expect(await store.reserveSend(request, now + 1000)).toEqual({ ok: true });
        expect(await store.reserveSend(request, now + 2000)).toMatchObject({ ok: false, reason: "quota" });
      });

      it("holds a prefix whose sends go unverified at volume, once the grace has passed, and refuses every send there", async () => {
        const now = aligned();
        await sendMany(store, "881", 10, now);
        // Within the grace the codes may still be typed: nothing is held yet.
        expect(await store.reserveSend(otpSend("881"), now + 30_000)).toEqual({ ok: true });
        const tripped = await store.reserveSend(otpSend("881"), now + 120_000);
        expect(tripped).toMatchObject({ ok: false, reason: "held", prefix: "881", tripped: true, sent: 11, verified: 0 });
        expect(await store.reserveSend(otpSend("881"), now + 121_000)).toMatchObject({ ok: false, reason: "held", tripped: false });
        // A plain message (not counted by the watch) is held back too; another prefix is not.
        expect(await store.reserveSend({ quotas: [], watch: { prefix: "881", policy: watchPolicy, countSend: false } }, now + 122_000)).toMatchObject({ reason: "held" });
        expect(await store.reserveSend(otpSend("254"), now + 122_000)).toEqual({ ok: true });
        const holds = await store.listFraudHolds(now + 123_000);
        expect(holds).toEqual([{ prefix: "881", heldAt: now + 120_000, until: now + 120_000 + watchPolicy.holdMs, sent: 11, verified: 0 }]);
        const reopened = await reopen(store);
        opened.add(reopened);
        expect((await reopened.listFraudHolds(now + 123_000)).map((h) => h.prefix)).toEqual(["881"]);
      });

      it("does not hold a prefix whose codes are verified", async () => {
        const now = aligned();
        for (let i = 0; i < 30; i++) {
          expect(await store.reserveSend(otpSend("254"), now + i * 10_000)).toEqual({ ok: true });
          if (i % 4 !== 0) expect(await store.recordVerified("254", watchPolicy, now + i * 10_000 + 5_000)).toEqual({ lifted: false });
        }
        expect(await store.listFraudHolds(now + 400_000)).toEqual([]);
      });

      it("lifts a hold when conversion recovers (late verifies), and lets sends through again", async () => {
        const now = aligned();
        await sendMany(store, "1876", 10, now);
        expect(await store.reserveSend(otpSend("1876"), now + 180_000)).toMatchObject({ reason: "held", tripped: true });
        expect(await store.recordVerified("1876", watchPolicy, now + 181_000)).toEqual({ lifted: false });
        expect(await store.recordVerified("1876", watchPolicy, now + 182_000)).toEqual({ lifted: true });
        expect(await store.listFraudHolds(now + 183_000)).toEqual([]);
        expect(await store.reserveSend(otpSend("1876"), now + 183_000)).toEqual({ ok: true });
      });

      it("an operator's clear lifts the hold and starts the watch afresh; a hold also lapses by itself", async () => {
        const now = aligned();
        await sendMany(store, "883", 10, now);
        expect(await store.reserveSend(otpSend("883"), now + 180_000)).toMatchObject({ reason: "held", tripped: true });
        expect(await store.clearFraudHold("883", now + 181_000)).toMatchObject({ prefix: "883", heldAt: now + 180_000 });
        expect(await store.clearFraudHold("883", now + 181_000)).toBeNull();
        expect(await store.clearFraudHold("999", now + 181_000)).toBeNull();
        expect(await store.reserveSend(otpSend("883"), now + 182_000)).toEqual({ ok: true });

        await sendMany(store, "870", 10, now);
        expect(await store.reserveSend(otpSend("870"), now + 180_000)).toMatchObject({ reason: "held", tripped: true });
        const lapsed = now + 180_000 + watchPolicy.holdMs;
        expect(await store.listFraudHolds(lapsed)).toEqual([]);
        // The window still shows the collapse, so the next send holds the prefix again.
        expect(await store.reserveSend(otpSend("870"), lapsed)).toMatchObject({ reason: "held", tripped: true });
      });

      it("checks a hold before any quota", async () => {
        const now = aligned();
        await sendMany(store, "882", 10, now);
        const full = quota(1);
        expect(await store.reserveSend({ quotas: [full] }, now)).toEqual({ ok: true });
        expect(await store.reserveSend(otpSend("882", [full]), now + 180_000)).toMatchObject({ reason: "held" });
      });
    });

    it("answers ping", async () => {
      await expect(store.ping()).resolves.toBeUndefined();
    });
  });
}
