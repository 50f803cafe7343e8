/**
 * Command-line parsing for cli.ts, kept pure (argv in, settings out; the one
 * file it reads, --device-file, through `readText`) so it can be tested
 * without starting anything.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { parseProvisioningUri, type ProvisioningFields } from "../../broker/provisioning.js";
import type { PhoneOptions } from "./phone.js";

export const USAGE = `Usage:
  npm run phone -- --provisioning "otpgate://provision?v=1&mqtt=…[&mqtt=…]&id=…&token=…&fp=…[&ca=…]" [behaviour]
  npm run phone -- --device-file <file> [--url mqtts://localhost:8883 …] [behaviour]
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
  --show-code               development only: print each SMS body in full (the code included) when sent;
                            refused unless every broker is reached over loopback (127.0.0.0/8, ::1)

--device-file reads the JSON the gateway answered to POST /v1/devices (or POST
/v1/devices/<id>/token) and takes its provisioning URI, so the token stays off
the command line; --url then replaces the URI's brokers (the public address a
real phone dials may not be the way to reach the gateway from here).

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

/** Reads a file as text; cli.ts reads from disk, tests hand in strings. */
export type ReadText = (file: string) => string;

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
  "device-file": { type: "string" },
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
  "show-code": { type: "boolean" },
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

/** The provisioning URI out of a saved POST /v1/devices answer. */
function readDeviceFile(file: string, readText: ReadText): ProvisioningFields {
  const hint = "save the JSON answer of POST /v1/devices (or POST /v1/devices/<id>/token) in it";
  let text: string;
  try {
    text = readText(file);
  } catch (error) {
    throw new CliUsageError(`--device-file ${file}: ${(error as Error).message}`);
  }
  let answer: { provisioning?: unknown; error?: { message?: unknown } } | null;
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    throw new CliUsageError(`--device-file ${file} is not JSON; ${hint}`);
  }
  if (typeof answer?.provisioning !== "string") {
    // A failed curl leaves the gateway's error envelope in the file: say what it said.
    const said = typeof answer?.error?.message === "string" ? ` (it holds an error reply: ${answer.error.message})` : "";
    throw new CliUsageError(`--device-file ${file} has no "provisioning" field${said}; ${hint}`);
  }
  return parseProvisioningUri(answer.provisioning);
}

export function parseCliArgs(argv: readonly string[], readText: ReadText = (file) => readFileSync(file, "utf8")): CliCommand {
  const values = readFlags(argv);
  if (values.help) return { kind: "help" };

  let connection: Pick<PhoneOptions, "url" | "deviceId" | "token">;
  const settings: Omit<CliSettings, "phone"> = {};
  if (values.provisioning !== undefined && values["device-file"] !== undefined) {
    throw new CliUsageError("--provisioning and --device-file both name the device; keep one");
  }
  if (values.provisioning !== undefined || values["device-file"] !== undefined) {
    const source = values.provisioning !== undefined ? "--provisioning" : "--device-file";
    // A device file's brokers may be replaced with --url; a URI given inline is taken whole, as before.
    const setByIt = source === "--provisioning" ? (["url", "device", "token", "ca-fingerprint"] as const) : (["device", "token", "ca-fingerprint"] as const);
    const clashing = setByIt.filter((flag) => values[flag] !== undefined);
    if (clashing.length > 0) throw new CliUsageError(`${source} already sets ${clashing.map((flag) => `--${flag}`).join(", ")}`);
    const fields = values.provisioning !== undefined ? parseProvisioningUri(values.provisioning) : readDeviceFile(values["device-file"]!, readText);
    const urls = values.url !== undefined && values.url.length > 0 ? values.url : fields.mqttUrls;
    connection = { url: oneOrMany(urls), deviceId: fields.deviceId, token: fields.token };
    settings.caFingerprint = fields.caFingerprint;
    if (fields.caUrl !== undefined) settings.caUrl = fields.caUrl;
  } else {
    const missing = (["url", "device", "token"] as const).filter((flag) => !values[flag]);
    if (missing.length > 0) throw new CliUsageError(`give --provisioning or --device-file, or all of ${missing.map((flag) => `--${flag}`).join(", ")}`);
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
    showCode: values["show-code"],
  };
  // Absent flags leave the phone's own defaults in charge.
  for (const key of Object.keys(phone) as Array<keyof typeof phone>) {
    if (phone[key] === undefined) delete phone[key];
  }
  return { kind: "run", settings: { phone, ...settings } };
}
