/** What an API key looks like and how it is stored. */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";

/** `og_<kind>_<43 chars>`: 256 random bits, recognisable in logs and secret scanners. Devices and publishers use the same form. */
export function newApiKey(kind: "admin" | "live" | "dev" | "pub" = "live"): string {
  return `og_${kind}_${randomBytes(32).toString("base64url")}`;
}

export function keyDigest(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function digestEquals(aHex: string, bHex: string): boolean {
  const a = Buffer.from(aHex, "hex");
  const b = Buffer.from(bHex, "hex");
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `og_live_` plus four random characters: enough to tell keys apart in a list,
 * far too little to guess the rest. The random part is base64url and may hold
 * `_` itself, so the kind ends at the second `_`, not the last.
 */
export function keyPrefix(key: string): string {
  const kindEnd = key.indexOf("_", "og_".length);
  return key.slice(0, kindEnd + 1 + 4);
}
