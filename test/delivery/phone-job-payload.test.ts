/**
 * What the device route publishes on `sms/out/<id>` passes the payload rules
 * every phone applies (broker/payloads.ts, the simulator, the Android core).
 */
import { describe, expect, it } from "vitest";
import { jobPayload, parsePayload } from "../../broker/payloads.js";
import { phoneJobPayload } from "../../api/delivery/device-route.js";
import { parseOutboundPayload } from "../../tools/phone-simulator/job-rules.js";

const job = { id: "3f2c8a6e-5d1b-4c7e-9a0f-1b2c3d4e5f60", to: "+254700000001", expiresAt: "2030-01-01T12:05:00.000Z" };

function phonesTake(payload: object): boolean {
  const text = JSON.stringify(payload);
  const phone = parseOutboundPayload(text);
  return parsePayload(jobPayload, text).ok && phone.ok && phone.message.kind === "job";
}

describe("phoneJobPayload", () => {
  it("builds the job as phones read it, with expiresAt in UTC (Z)", () => {
    const built = phoneJobPayload({ ...job, expiresAt: "2030-01-01T15:05:00+03:00" }, "Your code is 123456");
    expect(built).toEqual({ ok: true, payload: { id: job.id, to: job.to, body: "Your code is 123456", expiresAt: "2030-01-01T12:05:00.000Z" } });
    expect(built.ok && phonesTake(built.payload)).toBe(true);
  });

  it("accepts the longest body phones take, in any script", () => {
    for (const body of ["x".repeat(1600), "😀".repeat(800), "é".repeat(1600)]) {
      const built = phoneJobPayload(job, body);
      expect(built.ok && phonesTake(built.payload)).toBe(true);
    }
  });

  it.each([
    ["a body over 1600 characters", job, "x".repeat(1601), /body/],
    ["an empty body", job, "", /body/],
    ["a number not in E.164", { ...job, to: "254700000001" }, "hi", /to/],
    ["an expiry that is not a time", { ...job, expiresAt: "soon" }, "hi", /expiry/],
    // Every control character becomes \u00XX in JSON: 1600 of them weigh 9600 bytes.
    ["a body over 8 KiB once JSON-escaped", job, "\u0001".repeat(1600), /bytes/],
  ])("refuses %s instead of publishing what phones would drop", (_label, target, body, reason) => {
    const built = phoneJobPayload(target, body);
    expect(built.ok).toBe(false);
    expect(!built.ok && built.reason).toMatch(reason);
  });
});
