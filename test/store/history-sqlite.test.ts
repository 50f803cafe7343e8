/**
 * The SQLite side of the history: a file written by the previous schema
 * (version 1) is upgraded in place, its rows listed like new ones, and the
 * listing reads by index rather than scanning and sorting the tables.
 */
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { Job } from "../../api/delivery/job-state.js";
import { createSealer } from "../../api/security/sealing.js";
import { SqliteStore } from "../../api/store/sqlite-store.js";
import { otpRecord } from "./store-contract.js";

const sealer = createSealer("history-sqlite-sealing-secret-0123456789");
const otherSealer = createSealer("an-earlier-otp-secret-000000000000000000");

/** The two tables as version 1 made them (the rest of its schema is unchanged). */
const V1_TABLES = `
CREATE TABLE otps (id TEXT PRIMARY KEY, sealed TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL, expires_at INTEGER NOT NULL, keep_until INTEGER NOT NULL);
CREATE INDEX otps_keep ON otps (keep_until);
CREATE TABLE jobs (id TEXT PRIMARY KEY, sealed TEXT NOT NULL, kind TEXT NOT NULL, state TEXT NOT NULL, due_at INTEGER, created_at INTEGER NOT NULL, keep_until INTEGER NOT NULL);
CREATE INDEX jobs_due ON jobs (due_at) WHERE due_at IS NOT NULL;
CREATE INDEX jobs_keep ON jobs (keep_until);
CREATE INDEX jobs_history ON jobs (kind, created_at);
PRAGMA user_version = 1;`;

describe("SQLite history", () => {
  const stores: SqliteStore[] = [];
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((store) => store.close()));
  });
  const fileIn = () => path.join(mkdtempSync(path.join(tmpdir(), "otpgate-history-v1-")), "otpgate.db");

  it("upgrades a version 1 file: its OTPs and messages are listed and filtered like new ones", async () => {
    const file = fileIn();
    const now = Date.now();
    const record = otpRecord({}, now - 5_000);
    const at = new Date(now - 4_000).toISOString();
    const job: Job = {
      id: randomUUID(), kind: "message", channel: "sms", to: "+254711000111", sealedBody: sealer.seal("old body"), state: "sent",
      attempts: [{ route: "twilio", state: "sent", at }], createdAt: at, updatedAt: at, expiresAt: new Date(now + 60_000).toISOString(),
    };
    const unreadable = otpRecord({}, now - 6_000);
    const v1 = new Database(file);
    v1.exec(V1_TABLES);
    const { status: _s, attempts: _a, ...sealedOtp } = record;
    const { status: _s2, attempts: _a2, ...sealedUnreadable } = unreadable;
    const insertOtp = v1.prepare("INSERT INTO otps (id, sealed, status, attempts, expires_at, keep_until) VALUES (?, ?, 'pending', 0, ?, ?)");
    insertOtp.run(record.id, sealer.seal(JSON.stringify(sealedOtp)), record.expiresAt, now + 3_600_000);
    // Sealed under an OTP_SECRET since rotated: the upgrade must not stop on it.
    insertOtp.run(unreadable.id, otherSealer.seal(JSON.stringify(sealedUnreadable)), unreadable.expiresAt, now + 3_600_000);
    v1.prepare("INSERT INTO jobs (id, sealed, kind, state, due_at, created_at, keep_until) VALUES (?, ?, 'message', 'sent', NULL, ?, ?)")
      .run(job.id, sealer.seal(JSON.stringify(job)), Date.parse(job.createdAt), now + 3_600_000);
    v1.close();

    const store = new SqliteStore({ file, sealer });
    stores.push(store);
    expect((await store.listMessages({ limit: 10, route: "twilio", states: ["sent"] })).ids).toEqual([job.id]);
    // The unreadable one has no known creation time: it is listed at its expiry, until it is swept.
    expect((await store.listOtps({ limit: 10 }, now)).ids).toEqual([unreadable.id, record.id]);
    expect((await store.listOtps({ limit: 10, since: now - 5_500, until: now }, now)).ids).toEqual([record.id]);
    expect(await store.getOtp(record.id)).toMatchObject({ id: record.id, jobId: record.jobId });

    // The upgrade ran once: a reopen keeps version 2 and the rows as they are.
    await store.close();
    const reopened = new SqliteStore({ file, sealer });
    stores.push(reopened);
    const db = new Database(file, { readonly: true });
    expect(db.pragma("user_version", { simple: true })).toBe(2);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'jobs_history'").all()).toEqual([]);
    db.close();
    expect((await reopened.listOtps({ limit: 10 }, now)).ids).toEqual([unreadable.id, record.id]);
  });

  it("reads the listing by index, newest first, without a sort step", async () => {
    const file = fileIn();
    const store = new SqliteStore({ file, sealer });
    stores.push(store);
    const db = new Database(file, { readonly: true });
    const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as { detail: string }[]).map((row) => row.detail).join("; ");
    const messages = plan("SELECT id, created_at FROM jobs WHERE kind = 'message' AND (created_at, id) < (1, 'x') ORDER BY created_at DESC, id DESC LIMIT 51");
    expect(messages).toContain("jobs_listing");
    expect(messages).not.toContain("TEMP B-TREE");
    const otps = plan("SELECT o.id, o.created_at FROM otps o WHERE o.created_at >= 0 ORDER BY o.created_at DESC, o.id DESC LIMIT 51");
    expect(otps).toContain("otps_listing");
    expect(otps).not.toContain("TEMP B-TREE");
    db.close();
  });
});
