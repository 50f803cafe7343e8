import { describe, expect, it } from "vitest";
import { CliUsageError, parseCliArgs } from "../../tools/phone-simulator/cli-args.js";
import { buildProvisioningUri } from "../../broker/provisioning.js";

const FP = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";

describe("parseCliArgs", () => {
  it("takes the connection from a provisioning URI", () => {
    const uri = buildProvisioningUri({ mqttUrl: "mqtts://h:8883", deviceId: "d1", token: "t", caFingerprint: FP, caUrl: "http://h/ca.pem" });
    expect(parseCliArgs(["--provisioning", uri, "--latency", "20", "--delivered-after", "never", "--silent"])).toEqual({
      kind: "run",
      settings: {
        phone: { url: "mqtts://h:8883", deviceId: "d1", token: "t", latencyMs: 20, deliveredAfterMs: null, silent: true },
        caFingerprint: FP,
        caUrl: "http://h/ca.pem",
      },
    });
  });

  it("takes every broker of a provisioning URI with repeated mqtt=, in order", () => {
    const mqttUrls = ["mqtts://gw-1:8883", "mqtts://gw-2:8883"];
    const uri = buildProvisioningUri({ mqttUrls, deviceId: "d1", token: "t", caFingerprint: FP });
    expect(parseCliArgs(["--provisioning", uri])).toEqual({
      kind: "run",
      settings: { phone: { url: mqttUrls, deviceId: "d1", token: "t", silent: false }, caFingerprint: FP },
    });
  });

  it("takes --url more than once as brokers to try in order", () => {
    const command = parseCliArgs(["--url", "mqtts://a", "--url", "mqtts://b", "--device", "d1", "--token", "t"]);
    expect(command).toMatchObject({ kind: "run", settings: { phone: { url: ["mqtts://a", "mqtts://b"] } } });
  });

  it("takes explicit flags, leaving unset behaviour to the phone's defaults", () => {
    const command = parseCliArgs(["--url", "mqtts://h", "--device", "d1", "--token", "t", "--ca-file", "ca.pem", "--failure-rate", "0.25"]);
    expect(command).toEqual({
      kind: "run",
      settings: { phone: { url: "mqtts://h", deviceId: "d1", token: "t", failureRate: 0.25, silent: false }, caFile: "ca.pem" },
    });
  });

  it.each([
    [[], /give --provisioning or --device-file, or all of --url, --device, --token/],
    [["--url", "mqtts://h", "--device", "d"], /--token/],
    [["--provisioning", "otpgate://provision?v=1", "--token", "x"], /--provisioning already sets --token/],
    [["--url", "mqtts://h", "--device", "d", "--token", "t", "--failure-rate", "2"], /--failure-rate must be a number from 0 to 1/],
    [["--url", "mqtts://h", "--device", "d", "--token", "t", "--latency", "-5"], /--latency/],
    [["--url", "mqtts://h", "--device", "d", "--token", "t", "--bogus"], /Unknown option '--bogus'/],
  ])("refuses %j", (argv, message) => {
    expect(() => parseCliArgs(argv)).toThrow(CliUsageError);
    expect(() => parseCliArgs(argv)).toThrow(message);
  });

  describe("--device-file", () => {
    const uri = buildProvisioningUri({ mqttUrl: "mqtts://vm:8883", deviceId: "dev_1", token: "og_dev_t", caFingerprint: FP, caUrl: "http://vm:8080/ca.pem" });
    const files: Record<string, string> = {
      "device.json": JSON.stringify({ id: "dev_1", name: "simulator", token: "og_dev_t", provisioning: uri }),
      "error.json": JSON.stringify({ error: { code: "unauthorized", message: "missing or invalid API key" } }),
      "text.json": "Unauthorized",
    };
    const read = (file: string) => {
      const text = files[file];
      if (text === undefined) throw new Error(`ENOENT: no such file or directory, open '${file}'`);
      return text;
    };

    it("takes the device, token, pin and CA URL from the saved POST /v1/devices answer", () => {
      expect(parseCliArgs(["--device-file", "device.json"], read)).toEqual({
        kind: "run",
        settings: { phone: { url: "mqtts://vm:8883", deviceId: "dev_1", token: "og_dev_t", silent: false }, caFingerprint: FP, caUrl: "http://vm:8080/ca.pem" },
      });
    });

    it("lets --url replace the file's brokers, and keeps its pin", () => {
      const command = parseCliArgs(["--device-file", "device.json", "--url", "mqtts://localhost:8883", "--show-code"], read);
      expect(command).toMatchObject({ kind: "run", settings: { phone: { url: "mqtts://localhost:8883", deviceId: "dev_1", showCode: true }, caFingerprint: FP } });
    });

    it.each([
      [["--device-file", "missing.json"], /--device-file missing.json: ENOENT/],
      [["--device-file", "text.json"], /--device-file text.json is not JSON; save the JSON answer of POST \/v1\/devices/],
      [["--device-file", "error.json"], /has no "provisioning" field \(it holds an error reply: missing or invalid API key\)/],
      [["--device-file", "device.json", "--provisioning", uri], /--provisioning and --device-file both name the device/],
      [["--device-file", "device.json", "--token", "x"], /--device-file already sets --token/],
    ])("refuses %j", (argv, message) => {
      expect(() => parseCliArgs(argv, read)).toThrow(CliUsageError);
      expect(() => parseCliArgs(argv, read)).toThrow(message);
    });
  });

  it("takes --show-code, and leaves it out when absent", () => {
    const base = ["--url", "mqtts://localhost", "--device", "d1", "--token", "t"];
    expect(parseCliArgs([...base, "--show-code"])).toMatchObject({ settings: { phone: { showCode: true } } });
    const command = parseCliArgs(base);
    expect(command.kind === "run" && "showCode" in command.settings.phone).toBe(false);
  });

  it("answers --help", () => {
    expect(parseCliArgs(["--help"])).toEqual({ kind: "help" });
  });
});
