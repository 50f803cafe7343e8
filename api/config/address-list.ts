/**
 * Lists of client addresses in settings (MQTT_EXEMPT_SOURCES, SEED_KEYLESS_FROM,
 * TRUST_PROXY): single addresses or CIDRs, IPv4 or IPv6, checked at start and
 * matched with Node's BlockList rather than by hand.
 */
import { BlockList, isIP, isIPv6 } from "node:net";
import { z } from "zod";

export function isAddressOrCidr(entry: string): boolean {
  const [address = "", bits, extra] = entry.split("/");
  const family = isIP(address);
  if (family === 0 || extra !== undefined) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128));
}

/** A comma-separated list of addresses/CIDRs, or "none"; `fallback` when unset. */
export function addressList(fallback: readonly string[]) {
  return z
    .string()
    .trim()
    .default(fallback.join(","))
    .transform((value, ctx): string[] => {
      if (value === "" || value.toLowerCase() === "none") return [];
      const entries = value.split(",").map((entry) => entry.trim()).filter(Boolean);
      const bad = entries.filter((entry) => !isAddressOrCidr(entry));
      if (bad.length > 0) {
        ctx.addIssue({ code: "custom", message: `must be addresses or CIDRs separated by commas, or none; not an address: ${bad.join(", ")}` });
        return z.NEVER;
      }
      return entries;
    });
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is 10.0.0.1. */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/** Whether an address is in the list (entries already checked by addressList). */
export function addressMatcher(entries: readonly string[]): (address: string | undefined) => boolean {
  if (entries.length === 0) return () => false;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", bits] = entry.split("/");
    const family = isIPv6(address) ? "ipv6" : "ipv4";
    if (bits === undefined) list.addAddress(address, family);
    else list.addSubnet(address, Number(bits), family);
  }
  return (address) => {
    if (!address) return false;
    const plain = plainAddress(address);
    const family = isIP(plain);
    return family !== 0 && list.check(plain, family === 6 ? "ipv6" : "ipv4");
  };
}
