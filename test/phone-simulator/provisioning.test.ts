import { describe, expect, it } from "vitest";
import {
  ProvisioningError,
  buildProvisioningUri,
  parseProvisioningUri,
  type ProvisioningFields,
} from "../../broker/provisioning.js";

const FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
const fields: ProvisioningFields = {
  mqttUrl: "mqtts://gateway.example.com:8883",
  deviceId: "dev_7f3a",
  token: "s3cr3t&token=with?odd/chars",
  caFingerprint: FP,
  caUrl: "https://gateway.example.com/v1/ca.pem?x=1&y=2",
};

function uriWith(params: Record<string, string>): string {
  return `otpgate://provision?${new URLSearchParams(params).toString()}`;
}

const base = { v: "1", mqtt: fields.mqttUrl, id: fields.deviceId, token: "tok", fp: FP };

describe("buildProvisioningUri / parseProvisioningUri", () => {
  it("round-trips every field, odd characters included", () => {
    const uri = buildProvisioningUri(fields);
    expect(uri.startsWith("otpgate://provision?v=1&mqtt=mqtts%3A%2F%2Fgateway.example.com%3A8883&id=dev_7f3a&token=")).toBe(true);
    expect(parseProvisioningUri(uri)).toEqual(fields);
  });

  it("leaves ca out when there is none", () => {
    const { caUrl: _unused, ...withoutCa } = fields;
    const uri = buildProvisioningUri(withoutCa);
    expect(uri).not.toContain("ca=");
    expect(parseProvisioningUri(uri)).toEqual(withoutCa);
  });

  it("normalizes the fingerprint spelling", () => {
    const plain = FP.replace(/:/g, "").toLowerCase();
    expect(parseProvisioningUri(uriWith({ ...base, fp: plain })).caFingerprint).toBe(FP);
    expect(buildProvisioningUri({ ...fields, caFingerprint: plain })).toContain(`fp=${encodeURIComponent(FP)}`);
  });

  it("accepts a hand-written URI with raw colons and ignores unknown parameters", () => {
    const parsed = parseProvisioningUri(`otpgate://provision?v=1&mqtt=mqtts://h:8883&id=d1&token=t&fp=${FP}&future=1`);
    expect(parsed).toEqual({ mqttUrl: "mqtts://h:8883", deviceId: "d1", token: "t", caFingerprint: FP });
  });

  it.each([
    ["not a URI", "hello", /not a URI/],
    ["another scheme", "https://provision?v=1", /not an otpgate provisioning URI/],
    ["another host", "otpgate://other?v=1", /not an otpgate provisioning URI/],
    ["no version", uriWith({ ...base, v: "" }), /parameter v is missing/],
    ["a later version", uriWith({ ...base, v: "2" }), /unsupported provisioning version v=2/],
    ["no mqtt", uriWith({ ...base, mqtt: "" }), /parameter mqtt is missing/],
    ["plain mqtt", uriWith({ ...base, mqtt: "mqtt://h:1883" }), /mqtts:\/\//],
    ["a broken mqtt URL", uriWith({ ...base, mqtt: "::" }), /mqtt is not a URL/],
    ["credentials in the mqtt URL", uriWith({ ...base, mqtt: "mqtts://u:p@h:8883" }), /credentials/],
    ["no id", uriWith({ ...base, id: "" }), /parameter id is missing/],
    ["an id with a slash", uriWith({ ...base, id: "a/b" }), /id: a device id/],
    ["no token", uriWith({ ...base, token: "" }), /parameter token is missing/],
    ["no fingerprint", uriWith({ ...base, fp: "" }), /parameter fp is missing/],
    ["a short fingerprint", uriWith({ ...base, fp: "AB:CD" }), /fp must be a SHA-256 fingerprint/],
    ["a non-http ca", uriWith({ ...base, ca: "file:///etc/ca.pem" }), /ca must be an http or https URL/],
  ])("refuses %s", (_label, uri, message) => {
    expect(() => parseProvisioningUri(uri)).toThrow(ProvisioningError);
    expect(() => parseProvisioningUri(uri)).toThrow(message);
  });

  it("refuses a repeated parameter rather than guessing which one counts", () => {
    expect(() => parseProvisioningUri(`${uriWith(base)}&id=other`)).toThrow(/parameter id appears 2 times/);
  });

  it("never repeats the token in an error", () => {
    const secret = "very-secret-token";
    try {
      parseProvisioningUri(uriWith({ ...base, token: secret, fp: "nope" }));
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain(secret);
    }
  });

  it("checks fields when building too", () => {
    expect(() => buildProvisioningUri({ ...fields, mqttUrl: "mqtt://h:1883" })).toThrow(/mqtts/);
    expect(() => buildProvisioningUri({ ...fields, token: "" })).toThrow(/token/);
  });
});
