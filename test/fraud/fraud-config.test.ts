/** The fraud guard's settings: on by default, each variable checked and named when wrong. */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../api/config/config.js";
import { DEFAULT_FRAUD_SETTINGS } from "../../api/fraud/fraud-rules.js";

describe("fraud guard configuration", () => {
  it("is on by default with the documented defaults", () => {
    const result = loadConfig({});
    expect(result.ok && result.config.fraud).toEqual({ ...DEFAULT_FRAUD_SETTINGS, geo: { blocked: [] } });
    expect(DEFAULT_FRAUD_SETTINGS.allowedNumberTypes).toEqual(["MOBILE", "FIXED_LINE_OR_MOBILE", "FIXED_LINE", "VOIP"]);
  });

  it("reads lists case-insensitively and turns limits off with 0", () => {
    const result = loadConfig({
      SMS_ALLOWED_NUMBER_TYPES: "mobile, satellite",
      SMS_ALLOWED_COUNTRIES: "ke,tz",
      SMS_BLOCKED_COUNTRIES: "UG",
      FRAUD_KEY_MAX_PER_MINUTE: "0",
      FRAUD_WATCH_MIN_CONVERSION: "0.05",
      FRAUD_GUARD: "off",
    });
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.fraud).toMatchObject({
      enabled: false,
      allowedNumberTypes: ["MOBILE", "SATELLITE"],
      geo: { allowed: ["KE", "TZ"], blocked: ["UG"] },
      keyMaxPerMinute: 0,
      watch: { minConversion: 0.05 },
    });
  });

  it("names the variable of a bad value", () => {
    const result = loadConfig({ SMS_ALLOWED_NUMBER_TYPES: "MOBILE,CHEAP", SMS_BLOCKED_COUNTRIES: "KE,XX", FRAUD_WATCH_MIN_CONVERSION: "2", FRAUD_GUARD: "maybe" });
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems;
    expect(problems.find((p) => p.startsWith("SMS_ALLOWED_NUMBER_TYPES:"))).toContain("PREMIUM_RATE");
    expect(problems.find((p) => p.startsWith("SMS_BLOCKED_COUNTRIES:"))).toContain("XX is not an ISO 3166 country code");
    expect(problems.some((p) => p.startsWith("FRAUD_WATCH_MIN_CONVERSION:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("FRAUD_GUARD: must be on or off"))).toBe(true);
  });
});
