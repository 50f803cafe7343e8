/**
 * Command-line parsing for cli.ts, kept pure (argv in, settings out) so it can
 * be tested without starting anything.
 */
import { parseArgs } from "node:util";
import { parseProvisioningUri } from "../../broker/provisioning.js";
import type { PhoneOptions } from "./phone.js";

export const USAGE = `Usage:
  npm run phone -- --provisioning "otpgate://provision?v=1&mqtt=…[&mqtt=…]&id=…&token=…&fp=…[&ca=…]" [behaviour]
  npm run phone -- --url mqtts://host:8883 [--url mqtts://other:8883 …] --device <id> --token <token> [--ca-file ca.pem | --ca-fingerprint AB:CD:…] [behaviour]

Behaviour:
  --latency <ms>            received → sent delay (default 100)
  --delivered-after <ms>    sent → delivered delay, or "never" (default 500)
  --failure-rate <0..1>     share of sends that fail with RESULT_ERROR_GENERIC_FAILURE (default 0)
  --silent                  receive jobs but never act on them or ack them (a hung phone)
  --max-per-minute <n>      sends per sliding minute (default 30)
  --heartbeat <seconds>     status interval (default 60)
  --battery <0..100>        battery level to report (default 100)
  --state-file <path>       remember handled job ids across restarts

Several brokers (repeated mqtt= in the URI, or repeated --url) are tried in
order: when one cannot be reached (refused, TLS failure, timeout) the phone
moves on to the next, cycling, with its reconnect backoff between attempts.
With a provisioning URI that has ca=<url>, the CA PEM is downloaded and trusted
only if its SHA-256 fingerprint equals fp=. Without ca=, the CA with that
fingerprint is taken from the chain the broker presents and TLS verifies against it alone. Ctrl-C disconnects cleanly.`;

/** What cli.ts must still resolve (files, downloads) before it can start the phone. */
export interface CliSettings {
  phone: Omit<PhoneOptions, "ca" | "caFingerprint" | "logger">;
  caFingerprint?: string;
  caFile?: string;
  caUrl?: string;
}

export type CliCommand = { kind: "help" } | { kind: "run"; settings: CliSettings };

export class CliUsageError extends Error {
  override name = "CliUsageError";
}

const NUMBER = /^\d+(\.\d+)?$/;

function number(flag: string, value: string | undefined, min: number, max = Number.POSITIVE_INFINITY): number | undefined {
  if (value === undefined) return undefined;
  const parsed = NUMBER.test(value) ? Number(value) : Number.NaN;
  if (!(parsed >= min && parsed <= max)) {
    throw new CliUsageError(`--${flag} must be a number from ${min}${max === Number.POSITIVE_INFINITY ? "" : ` to ${max}`}, got ${JSON.stringify(value)}`);
  }
  return parsed;
}

const FLAGS = {
  help: { type: "boolean", short: "h" },
  provisioning: { type: "string" },
  url: { type: "string", multiple: true },
  device: { type: "string" },
  token: { type: "string" },
  "ca-file": { type: "string" },
  "ca-fingerprint": { type: "string" },
  latency: { type: "string" },
  "delivered-after": { type: "string" },
  "failure-rate": { type: "string" },
  silent: { type: "boolean" },
  "max-per-minute": { type: "string" },
  heartbeat: { type: "string" },
  battery: { type: "string" },
  "state-file": { type: "string" },
} as const;

function readFlags(argv: readonly string[]) {
  try {
    return parseArgs({ args: [...argv], strict: true, allowPositionals: false, options: FLAGS }).values;
  } catch (error) {
    throw new CliUsageError((error as Error).message);
  }
}

/** One broker as a plain string (as before the lists), several as the list in order. */
function oneOrMany(urls: readonly string[]): string | readonly string[] {
  return urls.length === 1 ? urls[0]! : urls;
}

export function parseCliArgs(argv: readonly string[]): CliCommand {
  const values = readFlags(argv);
  if (values.help) return { kind: "help" };

  let connection: Pick<PhoneOptions, "url" | "deviceId" | "token">;
  const settings: Omit<CliSettings, "phone"> = {};
  if (values.provisioning !== undefined) {
    const clashing = (["url", "device", "token", "ca-fingerprint"] as const).filter((flag) => values[flag] !== undefined);
    if (clashing.length > 0) throw new CliUsageError(`--provisioning already sets ${clashing.map((flag) => `--${flag}`).join(", ")}`);
    const fields = parseProvisioningUri(values.provisioning);
    connection = { url: oneOrMany(fields.mqttUrls), deviceId: fields.deviceId, token: fields.token };
    settings.caFingerprint = fields.caFingerprint;
    if (fields.caUrl !== undefined) settings.caUrl = fields.caUrl;
  } else {
    const missing = (["url", "device", "token"] as const).filter((flag) => !values[flag]);
    if (missing.length > 0) throw new CliUsageError(`give --provisioning, or all of ${missing.map((flag) => `--${flag}`).join(", ")}`);
    connection = { url: oneOrMany(values.url ?? []), deviceId: values.device ?? "", token: values.token ?? "" };
    if (values["ca-fingerprint"] !== undefined) settings.caFingerprint = values["ca-fingerprint"];
  }
  // With --provisioning, a local copy of the CA still has to match fp= (checked in cli.ts).
  if (values["ca-file"] !== undefined) settings.caFile = values["ca-file"];
  if (settings.caFile !== undefined && settings.caUrl !== undefined) {
    throw new CliUsageError("--ca-file and the provisioning URI's ca= both name a CA; keep one");
  }

  const delivered = values["delivered-after"];
  const phone: CliSettings["phone"] = {
    ...connection,
    latencyMs: number("latency", values.latency, 0),
    deliveredAfterMs: delivered === "never" ? null : number("delivered-after", delivered, 0),
    failureRate: number("failure-rate", values["failure-rate"], 0, 1),
    silent: values.silent ?? false,
    maxPerMinute: number("max-per-minute", values["max-per-minute"], 1),
    heartbeatSeconds: number("heartbeat", values.heartbeat, 1),
    battery: number("battery", values.battery, 0, 100),
    stateFile: values["state-file"],
  };
  // Absent flags leave the phone's own defaults in charge.
  for (const key of Object.keys(phone) as Array<keyof typeof phone>) {
    if (phone[key] === undefined) delete phone[key];
  }
  return { kind: "run", settings: { phone, ...settings } };
}
