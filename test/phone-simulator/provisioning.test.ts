import { describe, expect, it } from "vitest";
import {
  ProvisioningError,
  buildProvisioningUri,
  parseProvisioningUri,
  type ProvisioningFields,
} from "../../broker/provisioning.js";

const FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
const fields: ProvisioningFields = {
  mqttUrls: ["mqtts://gateway.example.com:8883"],
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
/** The fields as buildProvisioningUri takes them, brokers left to each test. */
const { mqttUrls: _urls, mqttUrl: _url, ...rest } = fields;

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
    expect(parsed).toEqual({ mqttUrls: ["mqtts://h:8883"], mqttUrl: "mqtts://h:8883", deviceId: "d1", token: "t", caFingerprint: FP });
  });

  it("builds the same v=1 URI from a single mqttUrl as before the list, and reads one written before it", () => {
    const single = { ...rest, mqttUrl: fields.mqttUrl };
    const before =
      "otpgate://provision?v=1&mqtt=mqtts%3A%2F%2Fgateway.example.com%3A8883&id=dev_7f3a&token=s3cr3t%26token%3Dwith%3Fodd%2Fchars" +
      "&fp=AB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89%3AAB%3ACD%3AEF%3A01%3A23%3A45%3A67%3A89" +
      "&ca=https%3A%2F%2Fgateway.example.com%2Fv1%2Fca.pem%3Fx%3D1%26y%3D2";
    expect(buildProvisioningUri(single)).toBe(before);
    expect(buildProvisioningUri(fields)).toBe(before);
    expect(parseProvisioningUri(before)).toEqual(fields);
  });

  describe("several brokers", () => {
    const cluster = ["mqtts://gw-1.example.com:8883", "mqtts://gw-2.example.com:8883", "mqtts://[fd00::3]:9883"];

    it("are repeated mqtt parameters, in the order to try them, and read back in that order", () => {
      const uri = buildProvisioningUri({ ...rest, mqttUrls: cluster });
      const query = new URL(uri).searchParams;
      expect(query.getAll("mqtt")).toEqual(cluster);
      expect(uri).toContain(`v=1&mqtt=${encodeURIComponent(cluster[0]!)}&mqtt=${encodeURIComponent(cluster[1]!)}&mqtt=`);
      expect(parseProvisioningUri(uri)).toEqual({ ...fields, mqttUrls: cluster, mqttUrl: cluster[0] });
    });

    it("round-trip what parse returns (mqttUrl is the first of mqttUrls)", () => {
      const parsed = parseProvisioningUri(buildProvisioningUri({ ...rest, mqttUrls: cluster }));
      expect(parseProvisioningUri(buildProvisioningUri(parsed))).toEqual(parsed);
      expect(() => buildProvisioningUri({ ...parsed, mqttUrl: cluster[1] })).toThrow(/mqttUrl must be the first of mqttUrls/);
    });

    it("may be hand-written anywhere in the query, raw colons and all; the same broker twice is allowed", () => {
      const parsed = parseProvisioningUri(`otpgate://provision?mqtt=mqtts://a:8883&v=1&id=d1&mqtt=mqtts://b&token=t&fp=${FP}&mqtt=mqtts://a:8883`);
      expect(parsed.mqttUrls).toEqual(["mqtts://a:8883", "mqtts://b", "mqtts://a:8883"]);
      expect(parsed.mqttUrl).toBe("mqtts://a:8883");
    });

    it("allows 8 and refuses 9", () => {
      const eight = Array.from({ length: 8 }, (_, i) => `mqtts://gw-${i}.example.com:8883`);
      expect(parseProvisioningUri(buildProvisioningUri({ ...rest, mqttUrls: eight })).mqttUrls).toEqual(eight);
      const nine = [...eight, "mqtts://gw-9.example.com:8883"];
      expect(() => buildProvisioningUri({ ...rest, mqttUrls: nine })).toThrow(/at most 8 brokers/);
      const query = new URLSearchParams({ v: "1", id: "d1", token: "t", fp: FP });
      for (const url of nine) query.append("mqtt", url);
      expect(() => parseProvisioningUri(`otpgate://provision?${query.toString()}`)).toThrow(/mqtt appears 9 times; at most 8 brokers/);
    });

    it.each([
      ["an empty one among them", `&mqtt=`, /mqtt number 2 is empty/],
      ["a plain mqtt:// one among them", `&mqtt=${encodeURIComponent("mqtt://h:1883")}`, /mqtts:\/\//],
      ["one with credentials among them", `&mqtt=${encodeURIComponent("mqtts://u:p@h")}`, /credentials/],
    ])("are refused with %s", (_label, extra, message) => {
      expect(() => parseProvisioningUri(`${uriWith(base)}${extra}`)).toThrow(message);
    });

    it("cannot be an empty list", () => {
      expect(() => buildProvisioningUri({ ...rest, mqttUrls: [] })).toThrow(/parameter mqtt is missing/);
      expect(() => parseProvisioningUri(uriWith(base).replace(/mqtt=[^&]*&/, ""))).toThrow(/parameter mqtt is missing/);
    });
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

  it("refuses a repeated parameter other than mqtt rather than guessing which one counts", () => {
    expect(() => parseProvisioningUri(`${uriWith(base)}&id=other`)).toThrow(/parameter id appears 2 times/);
    for (const name of ["v", "token", "fp", "ca"]) {
      expect(() => parseProvisioningUri(`${uriWith({ ...base, ca: "https://h/ca.pem" })}&${name}=x`)).toThrow(`parameter ${name} appears 2 times`);
    }
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
    expect(() => buildProvisioningUri({ ...rest, mqttUrl: "mqtt://h:1883" })).toThrow(/mqtts/);
    expect(() => buildProvisioningUri({ ...rest, mqttUrls: [fields.mqttUrl, "mqtt://h:1883"] })).toThrow(/mqtts/);
    expect(() => buildProvisioningUri({ ...fields, token: "" })).toThrow(/token/);
  });
});
