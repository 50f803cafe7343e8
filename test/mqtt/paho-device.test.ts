/**
 * A phone written against Eclipse Paho (Python paho-mqtt 1.6, the same client
 * family as the Android app) takes an OTP from the gateway over TLS: MQTT 3.1.1,
 * cleanSession=false, a retained will, QoS 1 jobs and acks.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { startProcess, type RunningProcess } from "../support/mqtt-clients.js";
import { registerDevice, waitOnline } from "../support/phones.js";

const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "paho_device.py");
/** Debian's interpreter, which has python3-paho-mqtt; `python3` on PATH may be another one. */
const PYTHON = "/usr/bin/python3";

type PahoEvent = { event: string; [field: string]: unknown };
const events = (stdout: string): PahoEvent[] =>
  stdout
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as PahoEvent);

describe("a Paho phone", () => {
  let gw: TestGateway;
  const processes: RunningProcess[] = [];

  const runPaho = (device: { id: string; token: string }, jobs = 1, timeoutSeconds = 20) => {
    const paho = startProcess(
      PYTHON,
      [SCRIPT, "--host", "127.0.0.1", "--port", String(gw.mqtts), "--ca", path.join(gw.dataDir, "tls", "ca.pem"), "--id", device.id, "--token", device.token, "--jobs", String(jobs), "--timeout", String(timeoutSeconds)],
      { timeoutMs: (timeoutSeconds + 10) * 1000 },
    );
    processes.push(paho);
    return paho;
  };

  beforeAll(async () => {
    gw = await startGateway({ env: { FAILOVER_ORDER: "device", DEVICE_ACK_TIMEOUT_MS: "2000", DEVICE_SENT_TIMEOUT_MS: "4000" } });
  });
  afterEach(() => {
    for (const paho of processes.splice(0)) paho.kill();
  });
  afterAll(async () => {
    await gw?.close();
  });

  it("receives an OTP job over TLS, acks received and sent, and the code verifies", async () => {
    const device = await registerDevice(gw, { name: "paho phone" });
    const paho = runPaho(device);
    await paho.waitForOutput((out) => out.includes('"event": "subscribed"'), 10_000);
    await waitOnline(gw, device.id);
    // The retained online status reached the presence record.
    await eventually(async () => (await gw.call("GET", `/v1/devices/${device.id}`)).json.presence?.app === "paho-test/1.6", 5000, "the Paho status");

    const to = "+254722000900";
    const created = await gw.call("POST", "/v1/otp", { to, userId: "paho-user" });
    expect(created.status).toBe(202);

    const result = await paho.result;
    const lines = events(result.stdout);
    expect(result.code, result.stderr).toBe(0);
    expect(lines[0]).toMatchObject({ event: "connected", rc: 0 });
    expect(lines.find((e) => e.event === "subscribed")).toEqual({ event: "subscribed", granted: [1] });
    const jobs = lines.filter((e) => e.event === "job");
    expect(jobs).toHaveLength(1);
    expect(lines.filter((e) => e.event === "duplicate" || e.event === "error")).toEqual([]);
    const job = jobs[0]!;
    expect(job).toMatchObject({ id: expect.any(String), to, expiresAt: expect.any(String) });
    // The job the phone got is this OTP's delivery job (the OTP's id is not the job's).
    expect((await gw.gateway.store.getJob(String(job.id)))?.otpId).toBe(created.json.id);
    expect(lines.filter((e) => e.event === "acked").map((e) => e.status)).toEqual(["received", "sent"]);
    expect(lines.at(-1)).toEqual({ event: "done", jobs: 1, acksConfirmed: true });

    const view = await eventually(async () => {
      const v = (await gw.call("GET", `/v1/otp/${created.json.id}`)).json;
      return v.delivery?.state === "sent" && v;
    }, 5000, "the OTP to be sent");
    expect(view.delivery.route).toBe(`device:${device.id}`);
    expect(view.delivery.attempts).toEqual([expect.objectContaining({ route: `device:${device.id}`, state: "sent", receivedAt: expect.any(String) })]);

    const code = /\b(\d{4,10})\b/.exec(String(job.body))?.[1];
    expect(code).toBeDefined();
    const verified = await gw.call("POST", "/v1/otp/verify", { id: created.json.id, code });
    expect(verified.json).toMatchObject({ valid: true, status: "approved" });

    // The script said goodbye with a retained offline status and a clean DISCONNECT.
    await waitOnline(gw, device.id, false);
  });

  it("is refused at CONNECT with a wrong token and reports it", async () => {
    const device = await registerDevice(gw, { name: "paho with a bad token" });
    const paho = runPaho({ id: device.id, token: "og_dev_not-the-token" }, 1, 5);
    const result = await paho.result;
    expect(result.code).toBe(1);
    expect(events(result.stdout)).toEqual([{ event: "connected", rc: 4, sessionPresent: false }]);
  });
});
