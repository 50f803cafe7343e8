/**
 * `--show-code` (PhoneOptions.showCode): the "sent" line carries the SMS body
 * in full, so a developer trying the gateway can read the code and verify it.
 *
 * The rule: only with a gateway reached over loopback (127.0.0.0/8, ::1).
 * Whoever runs a gateway on this machine can already read everything it
 * holds (its DATA_DIR has OTP_SECRET and the store), so printing the codes it
 * sends here discloses nothing new; a gateway elsewhere is someone's staging
 * or production, whose codes belong in nobody's terminal or scrollback.
 * Checked twice: before connecting, every broker's name must resolve to
 * loopback addresses only (else the phone does not start, and the token goes
 * nowhere); and for each job, the connection it arrived on must have a
 * loopback peer (a name that resolved elsewhere later, say), else its body
 * stays masked. A tunnel (ssh -L) to another machine looks like loopback:
 * that is the operator's own doing and cannot be seen from here.
 */
import { lookup } from "node:dns/promises";
import net from "node:net";
import { describeTarget, type BrokerTarget } from "./transport.js";

export class ShowCodeRefused extends Error {
  override name = "ShowCodeRefused";
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  // An IPv4 peer on a dual-stack socket reads ::ffff:127.0.0.1.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  const bare = mapped ?? address;
  const family = net.isIP(bare);
  if (family === 0) return false;
  return LOOPBACK.check(bare, family === 4 ? "ipv4" : "ipv6");
}

export type Resolver = (host: string) => Promise<string[]>;

const resolveAll: Resolver = async (host) => (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/** Why showCode may not be used with these brokers, or null when every one is on loopback. */
export async function showCodeProblem(targets: readonly BrokerTarget[], resolve: Resolver = resolveAll): Promise<string | null> {
  for (const target of targets) {
    let addresses: string[];
    try {
      addresses = net.isIP(target.host) === 0 ? await resolve(target.host) : [target.host];
    } catch (error) {
      return `${describeTarget(target)} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
    }
    const elsewhere = addresses.filter((address) => !isLoopbackAddress(address));
    if (addresses.length === 0 || elsewhere.length > 0) {
      return `${describeTarget(target)} is ${(elsewhere.length > 0 ? elsewhere : ["nowhere"]).join(", ")}, not this machine's loopback`;
    }
  }
  return null;
}

/** The refusal, one line: what is wrong, why the rule exists, and the two ways on. */
export function showCodeRefusal(problem: string): ShowCodeRefused {
  return new ShowCodeRefused(
    `--show-code refused: ${problem}. It prints one-time codes in full, so it only works with a gateway reached over loopback ` +
      "(127.0.0.0/8, ::1): dial it as mqtts://localhost:<port> (--url), or leave --show-code out",
  );
}
