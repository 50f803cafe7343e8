/** The fraud guard's pure decisions: number types, geo permissions, windows (api/fraud/fraud-rules.ts). */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_ALLOWED_NUMBER_TYPES,
  bucketMs,
  bucketOf,
  classifyNumber,
  geoRefusal,
  msUntilRoom,
  numberTypeRefusal,
  watchStats,
  windowCount,
  type WatchPolicy,
} from "../../api/fraud/fraud-rules.js";

describe("number types (libphonenumber-js max metadata)", () => {
  it.each([
    ["+254711222333", "MOBILE", "KE", "254"],
    ["+14155552671", "FIXED_LINE_OR_MOBILE", "US", "1415"],
    ["+19002345678", "PREMIUM_RATE", "US", "1900"],
    ["+80812345678", "SHARED_COST", undefined, "808"],
    ["+979123456789", "PREMIUM_RATE", undefined, "979"],
    ["+881612345678", "SATELLITE", undefined, "881"],
    ["+870773111632", "SATELLITE", undefined, "870"],
    ["+883510012345", "SATELLITE", undefined, "883"],
    ["+447012345678", "PERSONAL_NUMBER", "GB", "44"],
  ])("%s is %s", (number, category, country, prefix) => {
    expect(classifyNumber(number)).toEqual({ category, ...(country ? { country } : {}), callingCode: prefix.startsWith("1") ? "1" : prefix, prefix });
  });

  it("refuses premium-rate, shared-cost, satellite, unknown and other types by default, each with its own code", () => {
    const code = (number: string) => numberTypeRefusal(classifyNumber(number), DEFAULT_ALLOWED_NUMBER_TYPES)?.code ?? null;
    expect(code("+254711222333")).toBeNull();
    expect(code("+14155552671")).toBeNull();
    expect(code("+19002345678")).toBe("premium_rate_number");
    expect(code("+979123456789")).toBe("premium_rate_number");
    expect(code("+80812345678")).toBe("shared_cost_number");
    expect(code("+881612345678")).toBe("satellite_number");
    expect(code("+447012345678")).toBe("number_type_not_allowed");
    expect(numberTypeRefusal({ category: "UNKNOWN", callingCode: "254", prefix: "254" }, DEFAULT_ALLOWED_NUMBER_TYPES)?.code).toBe("unknown_number_type");
    const refusal = numberTypeRefusal(classifyNumber("+19002345678"), DEFAULT_ALLOWED_NUMBER_TYPES)!;
    expect(refusal.status).toBe(403);
    expect(refusal.message).toContain("SMS_ALLOWED_NUMBER_TYPES");
  });

  it("allows a type once it is enabled", () => {
    expect(numberTypeRefusal(classifyNumber("+881612345678"), [...DEFAULT_ALLOWED_NUMBER_TYPES, "SATELLITE"])).toBeNull();
    expect(numberTypeRefusal(classifyNumber("+19002345678"), ["PREMIUM_RATE"])).toBeNull();
  });
});

describe("geo permissions", () => {
  const ke = classifyNumber("+254711222333");
  const tz = classifyNumber("+255712345678");
  const sat = classifyNumber("+881612345678");

  it("a deny-list refuses its countries, an allow-list everything else; the key narrows the node", () => {
    expect(geoRefusal(ke, { blocked: ["TZ"] })).toBeNull();
    expect(geoRefusal(tz, { blocked: ["TZ"] })?.code).toBe("country_not_allowed");
    expect(geoRefusal(tz, { allowed: ["KE"] })?.code).toBe("country_not_allowed");
    expect(geoRefusal(ke, { allowed: ["KE", "TZ"] }, { allowed: ["KE"] })).toBeNull();
    expect(geoRefusal(tz, { allowed: ["KE", "TZ"] }, { allowed: ["KE"] })?.code).toBe("country_not_allowed");
    expect(geoRefusal(ke, {}, { blocked: ["KE"] })?.code).toBe("country_not_allowed");
    // A non-geographic number is outside every allow-list.
    expect(geoRefusal(sat, { allowed: ["KE"] })?.code).toBe("country_not_allowed");
    expect(geoRefusal(sat, { blocked: ["KE"] })).toBeNull();
  });
});

describe("sliding windows", () => {
  const minute = 60_000;
  const now = 10_000 * minute;

  it("counts the buckets inside the window and says when the oldest leaves it", () => {
    const buckets = new Map([
      [bucketOf(now - 70_000, minute), 5], // already outside
      [bucketOf(now - 30_000, minute), 2],
      [bucketOf(now, minute), 1],
    ]);
    expect(bucketMs(minute)).toBe(1000);
    expect(windowCount(buckets, minute, now)).toBe(3);
    expect(msUntilRoom(buckets, minute, 3, now)).toBe(30_000);
    expect(msUntilRoom(buckets, minute, 1, now)).toBe(60_000);
  });

  it("leaves sends inside the grace out of the watch's ratio", () => {
    const policy: WatchPolicy = { windowMs: 3_600_000, minSends: 10, minConversion: 0.2, graceMs: 120_000, holdMs: 3_600_000 };
    const hour = 3_600_000;
    const sent = new Map([
      [bucketOf(now - 30 * minute, hour), 10],
      [bucketOf(now - 30_000, hour), 7],
    ]);
    const verified = new Map([[bucketOf(now, hour), 3]]);
    expect(watchStats(sent, verified, policy, now)).toEqual({ sent: 10, verified: 3 });
    expect(watchStats(sent, verified, { ...policy, graceMs: 0 }, now)).toEqual({ sent: 17, verified: 3 });
  });
});
