import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { SendWindow } from "../../tools/phone-simulator/send-window.js";
import { reconnectDelay } from "../../tools/phone-simulator/backoff.js";
import { CANCEL_RETENTION_MS, HANDLED_GRACE_MS, JobLedger, MAX_REMEMBERED_CANCELS } from "../../tools/phone-simulator/ledger.js";
import { loadLedger, saveLedger } from "../../tools/phone-simulator/state-file.js";
import { maskDigits, maskPhoneNumber } from "../../tools/phone-simulator/redact.js";

const T0 = 1_000_000;

describe("SendWindow (maxPerMinute)", () => {
  it("lets max sends through, then holds the next until the oldest leaves the minute", () => {
    const window = new SendWindow(2);
    expect(window.nextSlotAt(T0)).toBe(T0);
    window.record(T0);
    expect(window.nextSlotAt(T0 + 10)).toBe(T0 + 10);
    window.record(T0 + 10);
    expect(window.nextSlotAt(T0 + 20)).toBe(T0 + 60_000);
    expect(window.nextSlotAt(T0 + 59_999)).toBe(T0 + 60_000);
    expect(window.nextSlotAt(T0 + 60_000)).toBe(T0 + 60_000);
    window.record(T0 + 60_000);
    // Now the send at T0 + 10 is the oldest that blocks.
    expect(window.nextSlotAt(T0 + 60_001)).toBe(T0 + 60_010);
  });

  it("refuses a limit below one send", () => {
    expect(() => new SendWindow(0)).toThrow(/maxPerMinute/);
    expect(() => new SendWindow(1.5)).toThrow(/maxPerMinute/);
  });
});

describe("reconnectDelay", () => {
  const bounds = { minMs: 1_000, maxMs: 60_000 };
  it("doubles from the minimum up to the maximum", () => {
    const middle = () => 0.5; // jitter factor exactly 1
    expect([0, 1, 2, 3, 6, 7, 50].map((attempt) => reconnectDelay(attempt, bounds, middle))).toEqual([
      1_000, 2_000, 4_000, 8_000, 60_000, 60_000, 60_000,
    ]);
  });
  it("spreads retries by ±20% without leaving the bounds", () => {
    expect(reconnectDelay(0, bounds, () => 0)).toBe(800);
    expect(reconnectDelay(0, bounds, () => 0.999)).toBe(1_200);
    expect(reconnectDelay(10, bounds, () => 0.999)).toBe(60_000);
  });
});

describe("JobLedger", () => {
  it("remembers handled jobs with their latest status", () => {
    const ledger = new JobLedger();
    ledger.record("a", { status: "received", expiresAt: T0 });
    ledger.setStatus("a", "failed", "EXPIRED");
    expect(ledger.isHandled("a")).toBe(true);
    expect(ledger.latestAck("a")).toEqual({ id: "a", status: "failed", error: "EXPIRED" });
    ledger.setStatus("a", "sent");
    expect(ledger.latestAck("a")).toEqual({ id: "a", status: "sent" });
    expect(ledger.latestAck("b")).toBeUndefined();
  });

  it("forgets a handled id only well after its job expired, and old cancels after a day", () => {
    const ledger = new JobLedger();
    ledger.record("a", { status: "sent", expiresAt: T0 });
    ledger.rememberCancel("c", T0);
    ledger.prune(T0 + HANDLED_GRACE_MS);
    expect(ledger.isHandled("a")).toBe(true);
    ledger.prune(T0 + HANDLED_GRACE_MS + 1);
    expect(ledger.isHandled("a")).toBe(false);
    expect(ledger.isCancelled("c")).toBe(true);
    ledger.prune(T0 + CANCEL_RETENTION_MS + 1);
    expect(ledger.isCancelled("c")).toBe(false);
  });

  it("caps remembered cancels, forgetting the oldest", () => {
    const ledger = new JobLedger();
    for (let i = 0; i <= MAX_REMEMBERED_CANCELS; i += 1) ledger.rememberCancel(`c${i}`, T0 + i);
    expect(ledger.size.cancelled).toBe(MAX_REMEMBERED_CANCELS);
    expect(ledger.isCancelled("c0")).toBe(false);
    expect(ledger.isCancelled(`c${MAX_REMEMBERED_CANCELS}`)).toBe(true);
  });
});

describe("state file", () => {
  let dir = "";
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = "";
  });

  it("round-trips the ledger and starts empty when the file does not exist", () => {
    dir = mkdtempSync(path.join(tmpdir(), "phone-state-"));
    const file = path.join(dir, "nested", "state.json");
    expect(loadLedger(file, T0).size).toEqual({ handled: 0, cancelled: 0 });
    const ledger = new JobLedger();
    ledger.record("a", { status: "delivered", expiresAt: T0 + 60_000 });
    ledger.record("b", { status: "failed", error: "CANCELLED", expiresAt: T0 + 60_000 });
    ledger.rememberCancel("c", T0);
    saveLedger(file, ledger);
    const loaded = loadLedger(file, T0);
    expect(loaded.latestAck("a")).toEqual({ id: "a", status: "delivered" });
    expect(loaded.latestAck("b")).toEqual({ id: "b", status: "failed", error: "CANCELLED" });
    expect(loaded.isCancelled("c")).toBe(true);
    // Only ids, statuses and times are written.
    expect(Object.keys(JSON.parse(readFileSync(file, "utf8")))).toEqual(["version", "handled", "cancelled"]);
  });

  it("refuses to start from a corrupt file instead of forgetting what was sent", () => {
    dir = mkdtempSync(path.join(tmpdir(), "phone-state-"));
    const file = path.join(dir, "state.json");
    writeFileSync(file, "{truncated");
    expect(() => loadLedger(file, T0)).toThrow(/state file .* is unreadable/);
    writeFileSync(file, JSON.stringify({ version: 1, handled: { a: { status: "sent" } }, cancelled: {} }));
    expect(() => loadLedger(file, T0)).toThrow(/job a is malformed/);
  });
});

describe("redaction", () => {
  it("masks every digit of a body and all but two digits of a number", () => {
    expect(maskDigits("Your code is 123-456. Valid 5 min")).toBe("Your code is ***-***. Valid * min");
    expect(maskPhoneNumber("+254712345678")).toBe("+**********78");
    expect(maskPhoneNumber("1234")).toBe("****");
  });
});
