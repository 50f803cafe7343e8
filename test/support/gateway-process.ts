/**
 * A gateway as users run it: `node --import tsx api/main.ts` in its own
 * process (what `npm start` runs, without npm in between, so a signal reaches
 * the gateway itself), configured by environment only. Fixed ports, so a
 * restarted node is where phones and callers left it.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ADMIN_KEY, FRAUD_VOLUME_CHECKS_OFF } from "./gateway.js";
import { freePort } from "./ports.js";

const root = path.resolve(import.meta.dirname, "../..");

export interface GatewayProcess {
  name: string;
  url: string;
  mqtts: number;
  dataDir: string;
  env: Record<string, string>;
  /** Everything it printed, stdout and stderr. */
  output(): string;
  /** Null while it runs. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Sends the signal and waits for the exit. */
  kill(signal: NodeJS.Signals): Promise<void>;
  /** Starts it again with the same environment, ports and DATA_DIR. */
  restart(): Promise<void>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call(method: string, route: string, body?: unknown): Promise<{ status: number; json: any }>;
}

export interface GatewayProcessOptions {
  name: string;
  env?: Record<string, string>;
  dataDir?: string;
  /** The MQTT/TLS port, when others must know it before the start (a cluster's broker list). */
  mqttsPort?: number;
}

export async function spawnGateway(options: GatewayProcessOptions): Promise<GatewayProcess> {
  const [http, mqtts] = [await freePort(), options.mqttsPort ?? (await freePort())];
  const dataDir = options.dataDir ?? mkdtempSync(path.join(tmpdir(), `otpgate-${options.name}-`));
  const env: Record<string, string> = {
    PATH: process.env.PATH!,
    HOME: process.env.HOME ?? "/tmp",
    DATA_DIR: dataDir,
    ADMIN_API_KEY: ADMIN_KEY,
    HOST: "127.0.0.1",
    PORT: String(http),
    MQTT_TLS_PORT: String(mqtts),
    MQTT_PORT: "0",
    PUBLIC_MQTT_URL: `mqtts://127.0.0.1:${mqtts}`,
    LOG_LEVEL: "warn",
    OTP_RESEND_COOLDOWN_SECONDS: "0",
    RATE_LIMIT_PER_IP: "100000",
    RATE_LIMIT_PER_KEY: "100000",
    ...FRAUD_VOLUME_CHECKS_OFF,
    ...options.env,
  };
  let child: ChildProcess;
  let text = "";
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const url = `http://127.0.0.1:${http}`;

  const launch = async () => {
    exited = null;
    child = spawn(process.execPath, ["--import", "tsx", "api/main.ts"], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.stderr!.on("data", (chunk: Buffer) => (text += chunk.toString()));
    child.once("exit", (code, signal) => (exited = { code, signal }));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      if (exited) break;
      const ready = await fetch(`${url}/readyz`).then((r) => r.status === 200, () => false);
      if (ready) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`gateway ${options.name} did not come up (exit ${JSON.stringify(exited)}):\n${text.slice(-4000)}`);
  };
  await launch();

  return {
    name: options.name,
    url,
    mqtts,
    dataDir,
    env,
    output: () => text,
    exit: () => exited,
    async kill(signal) {
      if (exited) return;
      const gone = new Promise((resolve) => child.once("exit", resolve));
      child.kill(signal);
      await gone;
    },
    restart: launch,
    async call(method, route, body) {
      const response = await fetch(url + route, {
        method,
        headers: { authorization: `Bearer ${ADMIN_KEY}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const raw = await response.text();
      let json: unknown = raw;
      try {
        json = raw ? JSON.parse(raw) : undefined;
      } catch {
        // not JSON: kept as text
      }
      return { status: response.status, json };
    },
  };
}
