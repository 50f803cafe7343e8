/**
 * The CLI as a user runs it: a child process given a provisioning URI whose
 * ca= points at a loopback HTTP server. It must check the downloaded CA against
 * fp=, connect, print masked event lines, and leave cleanly on SIGINT.
 */
import { runSimulatorCli } from "../support/simulator-cli.js";
import type { ChildProcess } from "node:child_process";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { buildProvisioningUri } from "../../broker/provisioning.js";
import { createHarness, job, type Harness } from "./support/harness.js";
import { createAuthority } from "./support/pki.js";


let h: Harness;
let caServer: http.Server;
let caUrl = "";
let servedPem = "";
const children: ChildProcess[] = [];

beforeAll(async () => {
  h = await createHarness();
  servedPem = h.ca.pem;
  caServer = http.createServer((_request, response) => {
    response.writeHead(200, { "content-type": "application/x-pem-file" });
    response.end(servedPem);
  });
  await new Promise<void>((resolve) => caServer.listen(0, "127.0.0.1", resolve));
  caUrl = `http://127.0.0.1:${(caServer.address() as AddressInfo).port}/ca.pem`;
});
afterEach(() => {
  servedPem = h.ca.pem;
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill("SIGKILL");
});
afterAll(async () => {
  await new Promise<void>((resolve) => caServer.close(() => resolve()));
  await h?.close();
});

const runCli = (args: string[]) => runSimulatorCli(args, children);

function provisioning(deviceId: string, token: string): string {
  return buildProvisioningUri({ mqttUrl: h.broker.url, deviceId, token, caFingerprint: h.ca.fingerprint, caUrl });
}

describe("phone CLI", () => {
  it("provisions from a URI, prints masked events, and disconnects cleanly on Ctrl-C", async () => {
    const { deviceId, token } = h.newDevice();
    const run = runCli(["--provisioning", provisioning(deviceId, token), "--latency", "0", "--delivered-after", "20"]);
    await vi.waitFor(() => expect(run.output.stdout).toContain("is up"), { timeout: 15_000 });
    expect(run.output.stdout).toContain(`matches fingerprint ${h.ca.fingerprint}`);

    await h.broker.publishOut(deviceId, job("cli-1"));
    await vi.waitFor(() => expect(run.output.stdout).toContain("acked job cli-1: delivered"));
    const lines = run.output.stdout.trim().split("\n");
    expect(lines.every((line) => /^\d{4}-\d{2}-\d{2}T\S+Z /.test(line))).toBe(true);
    expect(run.output.stdout).toContain("job cli-1 received");
    expect(run.output.stdout).toContain("job cli-1 sent");
    expect(run.output.stdout).not.toContain("482913");
    expect(run.output.stdout).not.toContain("254712345678");
    expect(run.output.stdout + run.output.stderr).not.toContain(token);

    run.child.kill("SIGINT");
    expect(await run.exited).toBe(0);
    const last = h.broker.statuses(deviceId).at(-1);
    expect(JSON.parse(last?.payload ?? "{}")).toMatchObject({ online: false, at: expect.any(String) });
    // A clean leave: the bare will payload was never published.
    expect(h.broker.statuses(deviceId).some((seen) => seen.payload === '{"online":false}')).toBe(false);
  });

  it("refuses a downloaded CA whose fingerprint is not the pinned one", async () => {
    servedPem = (await createAuthority("CN=swapped CA")).pem;
    const { deviceId, token } = h.newDevice();
    const run = runCli(["--provisioning", provisioning(deviceId, token)]);
    expect(await run.exited).toBe(1);
    expect(run.output.stderr).toMatch(/does not have the pinned fingerprint .*refusing to trust it/);
    expect(h.broker.clients.some((client) => client.id === deviceId)).toBe(false);
  });

  it("explains a malformed provisioning URI and exits with 2", async () => {
    const run = runCli(["--provisioning", "otpgate://provision?v=2"]);
    expect(await run.exited).toBe(2);
    expect(run.output.stderr).toContain("unsupported provisioning version v=2");
    expect(run.output.stderr).toContain("Usage:");
  });
});
