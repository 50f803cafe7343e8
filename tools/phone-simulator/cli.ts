/**
 * `npm run phone -- …`: one simulated phone in the terminal, printing one line
 * per event (connected, job received, sent, acked, cancelled, expired). Phone
 * numbers and body digits are masked by the phone's logger (with --show-code
 * and a loopback gateway, the "sent" line shows the body); the token is never
 * printed. Ctrl-C publishes the offline status and disconnects cleanly.
 * Exit status: 0 after Ctrl-C, 1 when the phone cannot start, 2 for a usage
 * error or a refused --show-code.
 */
import { readFile } from "node:fs/promises";
import { CliUsageError, USAGE, parseCliArgs, type CliSettings } from "./cli-args.js";
import { findCertificateByFingerprint, normalizeFingerprint } from "../../broker/fingerprint.js";
import { ProvisioningError } from "../../broker/provisioning.js";
import { startPhone, type PhoneOptions } from "./phone.js";
import { ShowCodeRefused, showCodeProblem, showCodeRefusal } from "./show-code.js";
import { parseBrokerUrl } from "./transport.js";

/** A CA certificate is a few KB; anything much larger is not what we asked for. */
const MAX_CA_BYTES = 64 * 1024;

function print(line: string): void {
  console.log(`${new Date().toISOString()} ${line}`);
}

async function downloadCa(url: string): Promise<string> {
  const response = await fetch(url, { signal: AbortSignal.timeout(10_000), redirect: "follow" });
  if (!response.ok) throw new Error(`downloading the CA from ${url} failed: HTTP ${response.status}`);
  const text = await response.text();
  if (text.length > MAX_CA_BYTES) throw new Error(`the CA at ${url} is over ${MAX_CA_BYTES} bytes`);
  return text;
}

/**
 * Turns the trust settings into phone options. A CA obtained from a URL or a
 * file is only trusted when its fingerprint equals the pin: the download may be
 * plain http and the file may be stale; the fingerprint came with the token.
 */
async function resolveTrust(settings: CliSettings): Promise<Pick<PhoneOptions, "ca" | "caFingerprint">> {
  const pin = settings.caFingerprint === undefined ? undefined : normalizeFingerprint(settings.caFingerprint);
  if (pin === null) throw new CliUsageError("--ca-fingerprint must be a SHA-256 fingerprint (32 hex bytes, e.g. AB:CD:…)");

  let pem: string | undefined;
  let source = "";
  if (settings.caUrl !== undefined) {
    pem = await downloadCa(settings.caUrl);
    source = settings.caUrl;
  } else if (settings.caFile !== undefined) {
    pem = await readFile(settings.caFile, "utf8");
    source = settings.caFile;
  }
  if (pem === undefined) return pin === undefined ? {} : { caFingerprint: pin };
  if (pin === undefined) return { ca: pem };

  const pinned = findCertificateByFingerprint(pem, pin);
  if (pinned === null) throw new Error(`the CA from ${source} does not have the pinned fingerprint ${pin}; refusing to trust it`);
  print(`CA from ${source} matches fingerprint ${pin}`);
  return { ca: pinned };
}

async function main(argv: readonly string[]): Promise<number> {
  let settings: CliSettings;
  try {
    const command = parseCliArgs(argv);
    if (command.kind === "help") {
      console.log(USAGE);
      return 0;
    }
    settings = command.settings;
  } catch (error) {
    if (error instanceof CliUsageError || error instanceof ProvisioningError) {
      console.error(`phone: ${error.message}\n\n${USAGE}`);
      return 2;
    }
    throw error;
  }

  try {
    if (settings.phone.showCode) {
      // Before the CA download too: with a refused --show-code, nothing at all is contacted.
      const urls = typeof settings.phone.url === "string" ? [settings.phone.url] : settings.phone.url;
      const problem = await showCodeProblem(urls.map(parseBrokerUrl));
      if (problem !== null) throw showCodeRefusal(problem);
    }
    const trust = await resolveTrust(settings);
    const phone = await startPhone({ ...settings.phone, ...trust, logger: print });
    let stopping = false;
    const stop = () => {
      // A second Ctrl-C while the goodbye hangs leaves at once.
      if (stopping) process.exit(130);
      stopping = true;
      print("stopping…");
      void phone.close().then(() => process.exit(0));
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
    print(`phone ${phone.deviceId} is up; Ctrl-C to disconnect`);
    return 0;
  } catch (error) {
    console.error(`phone: ${(error as Error).message}`);
    return error instanceof ShowCodeRefused ? 2 : 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exit(code);
  },
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
