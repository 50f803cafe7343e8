/** Phone numbers: E.164 in, E.164 stored, masked in logs. */
import { parsePhoneNumberWithError, type CountryCode } from "libphonenumber-js/max";

export class InvalidPhoneNumber extends Error {}

/**
 * Normalises to E.164. Numbers without a `+` need a default country; with none
 * they are refused rather than guessed.
 */
export function toE164(input: string, defaultCountry?: CountryCode): string {
  let parsed;
  try {
    parsed = parsePhoneNumberWithError(input.trim(), defaultCountry ? { defaultCountry } : undefined);
  } catch (error) {
    throw new InvalidPhoneNumber(`"${input}" is not a phone number (${(error as Error).message})`);
  }
  if (!parsed.isValid()) throw new InvalidPhoneNumber(`"${input}" is not a valid number for ${parsed.country ?? "its country code"}`);
  return parsed.number;
}

/** `+254711222333` → `+254*****2333`: enough to debug, not enough to identify. */
export function maskPhone(e164: string): string {
  if (e164.length <= 7) return "*".repeat(e164.length);
  return `${e164.slice(0, 4)}${"*".repeat(e164.length - 8)}${e164.slice(-4)}`;
}

export function maskEmail(address: string): string {
  const [local = "", domain = ""] = address.split("@");
  return `${local.slice(0, 1)}***@${domain}`;
}
