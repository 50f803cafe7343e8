/**
 * `--show-code`: the simulator prints the SMS body in full, code included, only
 * for a gateway reached over loopback (tools/phone-simulator/show-code.ts).
 * Real parts: a gateway listening on every interface (so it can be reached
 * both over loopback and over this machine's own non-loopback address), the
 * CLI as a child process, the device file as the gateway answered it.
 */
import { runSimulatorCli } from "../support/simulator-cli.js";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import path from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { startPhone } from "../../tools/phone-simulator/phone.js";
import { ShowCodeRefused, isLoopbackAddress, showCodeProblem } from "../../tools/phone-simulator/show-code.js";
import { parseBrokerUrl } from "../../tools/phone-simulator/transport.js";
import { startGateway, type TestGateway } from "../support/gateway.js";


/** This machine's own IPv4 address that is not loopback, if it has one. */
const lanAddress = Object.values(networkInterfaces())
  .flat()
  .find((entry) => entry !== undefined && entry.family === "IPv4" && !entry.internal)?.address;

let gw: TestGateway;
let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  gw = await startGateway({
    env: {
      HOST: "0.0.0.0",
      FAILOVER_ORDER: "device",
      // Puts the LAN address into the dev certificate, so the phone could connect there: only the rule refuses it.
      ...(lanAddress ? { PUBLIC_MQTT_URL: `mqtts://${lanAddress}:8883` } : {}),
    },
  });
  dir = mkdtempSync(path.join(tmpdir(), "otpgate-show-code-"));
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(async () => {
  await gw?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Registers a device and saves the gateway's answer as the tutorial does (curl -o, owner-only). */
async function deviceFile(name: string): Promise<{ file: string; id: string; token: string }> {
  const created = await gw.call("POST", "/v1/devices", { name });
  expect(created.status).toBe(201);
  const file = path.join(dir, `${name}.json`);
  writeFileSync(file, JSON.stringify(created.json), { mode: 0o600 });
  return { file, id: created.json.id, token: created.json.token };
}

const runCli = (args: string[]) => runSimulatorCli(args, children);

describe("--show-code against a gateway on loopback", () => {
  it("prints the body it sends in full, and the code in it verifies; the received line stays masked", async () => {
    const device = await deviceFile("show-code-loopback");
    const run = runCli(["--device-file", device.file, "--url", `mqtts://127.0.0.1:${gw.mqtts}`, "--show-code", "--latency", "0", "--delivered-after", "20"]);
    await vi.waitFor(() => expect(run.output.stdout).toContain("is up"), { timeout: 15_000 });

    const created = await gw.call("POST", "/v1/otp", { to: "+254711000101", userId: "show-code-user" });
    expect(created.status).toBe(202);
    await vi.waitFor(() => expect(run.output.stdout).toMatch(/ sent to \S+: "/), { timeout: 10_000 });

    const sentLine = run.output.stdout.split("\n").find((line) => / sent to /.test(line))!;
    const code = /: "(\d{6}) is your otpgate verification code\. It expires in 5 min\. Do not share it\."$/.exec(sentLine)?.[1];
    expect(code, sentLine).toBeDefined();
    expect(sentLine).toContain("sent to +**********01");
    const receivedLine = run.output.stdout.split("\n").find((line) => / received: /.test(line))!;
    expect(receivedLine).not.toContain(code!);
    expect(run.output.stdout + run.output.stderr).not.toContain(device.token);

    const verified = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code });
    expect(verified.json).toMatchObject({ valid: true, status: "approved" });

    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });

  it("without the flag, keeps every digit of the body masked", async () => {
    const device = await deviceFile("show-code-default");
    const run = runCli(["--device-file", device.file, "--url", `mqtts://localhost:${gw.mqtts}`, "--latency", "0", "--delivered-after", "20"]);
    await vi.waitFor(() => expect(run.output.stdout).toContain("is up"), { timeout: 15_000 });
    expect((await gw.call("POST", "/v1/otp", { to: "+254711000102", userId: "show-code-default-user" })).status).toBe(202);
    await vi.waitFor(() => expect(run.output.stdout).toContain("delivered"), { timeout: 10_000 });
    expect(run.output.stdout).toMatch(/ sent to \+\*{10}02\n/);
    expect(run.output.stdout).not.toMatch(/\d{6} is your/);
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });
});

describe.runIf(lanAddress)("--show-code against the same gateway over a non-loopback address", () => {
  it("connects there without the flag (the gateway is reachable and trusted at that address)", async () => {
    const device = await deviceFile("show-code-lan-control");
    const run = runCli(["--device-file", device.file, "--url", `mqtts://${lanAddress}:${gw.mqtts}`]);
    await vi.waitFor(() => expect(run.output.stdout).toContain("is up"), { timeout: 15_000 });
    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
  });

  it("refuses with one clear line and exit status 2, before contacting anything", async () => {
    const device = await deviceFile("show-code-lan");
    const url = `mqtts://${lanAddress}:${gw.mqtts}`;
    const run = runCli(["--device-file", device.file, "--url", url, "--show-code"]);
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toBe(
      `phone: --show-code refused: ${url} is ${lanAddress}, not this machine's loopback. It prints one-time codes in full, ` +
        "so it only works with a gateway reached over loopback (127.0.0.0/8, ::1): dial it as mqtts://localhost:<port> (--url), or leave --show-code out\n",
    );
    expect(run.output.stdout).toBe("");
    expect((await gw.call("GET", `/v1/devices/${device.id}`)).json).toMatchObject({ online: false });
  });

  it("startPhone({ showCode }) refuses too, with ShowCodeRefused, and never connects", async () => {
    const device = await deviceFile("show-code-lan-api");
    const created = (await gw.call("GET", `/v1/devices/${device.id}`)).json;
    expect(created.online).toBe(false);
    const starting = startPhone({ url: `mqtts://${lanAddress}:${gw.mqtts}`, deviceId: device.id, token: device.token, showCode: true, connectTimeoutMs: 5_000 });
    await expect(starting).rejects.toBeInstanceOf(ShowCodeRefused);
    await expect(starting).rejects.toThrow(/not this machine's loopback/);
    expect((await gw.call("GET", `/v1/devices/${device.id}`)).json).toMatchObject({ online: false });
  });
});

describe("the loopback rule", () => {
  it.each([
    ["127.0.0.1", true],
    ["127.0.1.1", true],
    ["::1", true],
    ["0:0:0:0:0:0:0:1", true],
    ["::ffff:127.0.0.1", true],
    ["192.0.2.2", false],
    ["::ffff:192.0.2.2", false],
    ["fd00::2", false],
    ["128.0.0.1", false],
    ["localhost", false],
  ])("%s is loopback: %s", (address, loopback) => {
    expect(isLoopbackAddress(address)).toBe(loopback);
  });

  it("wants every address a broker's name resolves to on loopback", async () => {
    const target = (url: string) => [parseBrokerUrl(url)];
    expect(await showCodeProblem(target("mqtts://localhost:8883"))).toBeNull();
    expect(await showCodeProblem(target("mqtts://[::1]:8883"))).toBeNull();
    const mixed = async () => ["127.0.0.1", "192.0.2.9"];
    expect(await showCodeProblem(target("mqtts://gw.test:8883"), mixed)).toBe("mqtts://gw.test:8883 is 192.0.2.9, not this machine's loopback");
    const unknown = async () => {
      throw Object.assign(new Error("getaddrinfo ENOTFOUND gw.invalid"), { code: "ENOTFOUND" });
    };
    expect(await showCodeProblem(target("mqtts://gw.invalid:8883"), unknown)).toBe("mqtts://gw.invalid:8883 does not resolve (ENOTFOUND)");
    // Every broker of a cluster's list counts, not only the first.
    expect(await showCodeProblem([...target("mqtts://127.0.0.1:1"), ...target("mqtts://192.0.2.7:2")])).toBe("mqtts://192.0.2.7:2 is 192.0.2.7, not this machine's loopback");
  });
});
