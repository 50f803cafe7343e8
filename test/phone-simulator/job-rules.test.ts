import { describe, expect, it } from "vitest";
import {
  MAX_PAYLOAD_BYTES,
  buildAck,
  buildOnlineStatus,
  checkBeforeSend,
  decideOnArrival,
  deviceIdProblem,
  parseOutboundPayload,
  type JobMemory,
  type SmsJob,
} from "../../tools/phone-simulator/job-rules.js";

const NOW = Date.parse("2030-01-01T12:00:00Z");
const validJob = { id: "job-1", to: "+254700000001", body: "Your code is 123456", expiresAt: "2030-01-01T12:05:00Z" };

function memory(handled: string[] = [], cancelled: string[] = []): JobMemory {
  return { isHandled: (id) => handled.includes(id), isCancelled: (id) => cancelled.includes(id) };
}

function job(overrides: Partial<SmsJob> = {}): SmsJob {
  return { id: "job-1", to: "+254700000001", body: "hi", expiresAt: NOW + 60_000, ...overrides };
}

describe("parseOutboundPayload", () => {
  it("reads a job, with the expiry as epoch ms", () => {
    expect(parseOutboundPayload(JSON.stringify(validJob))).toEqual({
      ok: true,
      message: { kind: "job", job: { id: "job-1", to: "+254700000001", body: "Your code is 123456", expiresAt: NOW + 300_000 } },
    });
  });

  it("keeps an optional sim slot, and refuses a null one (absent is the default SIM; null is not a slot)", () => {
    const withSim = parseOutboundPayload(JSON.stringify({ ...validJob, sim: 1 }));
    expect(withSim.ok && withSim.message.kind === "job" && withSim.message.job.sim).toBe(1);
    const noSim = parseOutboundPayload(JSON.stringify(validJob));
    expect(noSim.ok && noSim.message.kind === "job" && "sim" in noSim.message.job).toBe(false);
    expect(parseOutboundPayload(JSON.stringify({ ...validJob, sim: null }))).toMatchObject({ ok: false, reason: expect.stringMatching(/sim/) });
  });

  it("reads a cancel, even from bytes", () => {
    expect(parseOutboundPayload(Buffer.from('{"id":"job-9","cancel":true}'))).toEqual({
      ok: true,
      message: { kind: "cancel", id: "job-9" },
    });
  });

  it("treats cancel:false as a job that must be complete", () => {
    expect(parseOutboundPayload(JSON.stringify({ ...validJob, cancel: false })).ok).toBe(true);
    expect(parseOutboundPayload('{"id":"a","cancel":false}').ok).toBe(false);
    expect(parseOutboundPayload('{"id":"a","cancel":"yes"}')).toMatchObject({ ok: false, reason: expect.stringMatching(/cancel/) });
  });

  it.each([
    ["bad JSON", "{not json", /not JSON/],
    ["a JSON array", "[1,2]", /must be a JSON object/],
    ["null", "null", /must be a JSON object/],
    ["invalid UTF-8", Buffer.from([0x7b, 0xff, 0x7d]), /UTF-8/],
    ["a missing id", JSON.stringify({ ...validJob, id: undefined }), /id/],
    ["an empty id", JSON.stringify({ ...validJob, id: "" }), /id/],
    ["a numeric id", JSON.stringify({ ...validJob, id: 5 }), /id/],
    ["an id with a newline", JSON.stringify({ ...validJob, id: "a\nb" }), /id/],
    ["a missing to", JSON.stringify({ ...validJob, to: undefined }), /^to: /],
    ["a to with letters", JSON.stringify({ ...validJob, to: "+2547abc" }), /^to: must be an E\.164/],
    ["a to without the plus", JSON.stringify({ ...validJob, to: "254700000001" }), /E\.164/],
    ["an id of 129 characters", JSON.stringify({ ...validJob, id: "x".repeat(129) }), /id/],
    ["an expiresAt in words", JSON.stringify({ ...validJob, expiresAt: "Jan 1 2030 12:05 GMT" }), /expiresAt/],
    ["a byte order mark", Buffer.from(`\uFEFF${JSON.stringify(validJob)}`), /not JSON/],
    ["a number as body", JSON.stringify({ ...validJob, body: 123456 }), /body/],
    ["an empty body", JSON.stringify({ ...validJob, body: "" }), /body/],
    ["a 1601-character body", JSON.stringify({ ...validJob, body: "x".repeat(1601) }), /body/],
    ["a missing expiresAt", JSON.stringify({ ...validJob, expiresAt: undefined }), /expiresAt/],
    ["an epoch expiresAt", JSON.stringify({ ...validJob, expiresAt: NOW }), /expiresAt/],
    ["a zoneless expiresAt", JSON.stringify({ ...validJob, expiresAt: "2030-01-01T12:05:00" }), /expiresAt/],
    ["an impossible date", JSON.stringify({ ...validJob, expiresAt: "2030-13-45T12:05:00Z" }), /expiresAt/],
    ["a fractional sim", JSON.stringify({ ...validJob, sim: 0.5 }), /sim/],
    ["a string sim", JSON.stringify({ ...validJob, sim: "0" }), /sim/],
  ])("ignores %s", (_label, payload, reason) => {
    const result = parseOutboundPayload(payload);
    expect(result.ok).toBe(false);
    expect(!result.ok && result.reason).toMatch(reason);
  });

  it("refuses an oversized payload before parsing it", () => {
    const huge = JSON.stringify({ ...validJob, body: "x".repeat(100 * 1024) });
    expect(parseOutboundPayload(huge)).toEqual({ ok: false, reason: expect.stringMatching(/bytes is over 8192/) });
    // The limit is on bytes, not characters: multi-byte text counts for what it weighs.
    const justOver = `{"id":"a","body":"${"é".repeat(MAX_PAYLOAD_BYTES / 2)}"}`;
    expect(parseOutboundPayload(justOver)).toMatchObject({ ok: false, reason: expect.stringMatching(/bytes is over/) });
  });
});

describe("decideOnArrival", () => {
  it("sends a new, live, uncancelled job", () => {
    expect(decideOnArrival(job(), memory(), NOW)).toEqual({ action: "send" });
  });

  it("calls a handled id a duplicate, before anything else", () => {
    expect(decideOnArrival(job({ expiresAt: NOW - 1 }), memory(["job-1"], ["job-1"]), NOW)).toEqual({ action: "duplicate" });
  });

  it("refuses a job cancelled before it arrived", () => {
    expect(decideOnArrival(job(), memory([], ["job-1"]), NOW)).toEqual({ action: "refuse", error: "CANCELLED" });
  });

  it("refuses a job at or after its expiry", () => {
    expect(decideOnArrival(job({ expiresAt: NOW }), memory(), NOW)).toEqual({ action: "refuse", error: "EXPIRED" });
    expect(decideOnArrival(job({ expiresAt: NOW + 1 }), memory(), NOW)).toEqual({ action: "send" });
  });

  it("refuses a SIM slot the phone does not have", () => {
    expect(decideOnArrival(job({ sim: 1 }), memory(), NOW, [0])).toEqual({ action: "refuse", error: "SIM_NOT_AVAILABLE" });
    expect(decideOnArrival(job({ sim: 1 }), memory(), NOW, [0, 1])).toEqual({ action: "send" });
  });
});

describe("checkBeforeSend", () => {
  it("stops a job cancelled or expired while it waited", () => {
    expect(checkBeforeSend(job(), memory(), NOW)).toEqual({ ok: true });
    expect(checkBeforeSend(job(), memory([], ["job-1"]), NOW)).toEqual({ ok: false, error: "CANCELLED" });
    expect(checkBeforeSend(job(), memory(), NOW + 60_000)).toEqual({ ok: false, error: "EXPIRED" });
  });
});

describe("acks and status", () => {
  it("builds acks with an ISO time, and an error only when failed", () => {
    expect(buildAck({ id: "a", status: "sent" }, NOW)).toEqual({ id: "a", status: "sent", at: "2030-01-01T12:00:00.000Z" });
    expect(buildAck({ id: "a", status: "failed", error: "EXPIRED" }, NOW)).toEqual({
      id: "a",
      status: "failed",
      error: "EXPIRED",
      at: "2030-01-01T12:00:00.000Z",
    });
  });

  it("builds the online status with values clamped to the contract's ranges", () => {
    expect(buildOnlineStatus({ battery: 140, signal: -2, app: "otpgate-sim/1" }, NOW)).toEqual({
      online: true,
      battery: 100,
      signal: 0,
      sims: [{ slot: 0, carrier: "Sim", number: null }],
      app: "otpgate-sim/1",
      at: "2030-01-01T12:00:00.000Z",
    });
  });

  it("accepts device ids that are safe as a topic level and client id", () => {
    expect(deviceIdProblem("dev_01H-x.y")).toBeNull();
    for (const bad of ["", "a/b", "a+b", "a#", "a b", "x".repeat(129)]) expect(deviceIdProblem(bad)).not.toBeNull();
  });
});
