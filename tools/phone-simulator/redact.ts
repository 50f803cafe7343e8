/**
 * Log redaction. Logs never carry codes or full phone numbers, and an SMS body
 * usually *is* a code, so every digit of a body is masked and a number keeps
 * only its last two digits (enough to tell two test phones apart). The one
 * exception is --show-code against a loopback gateway (show-code.ts).
 */

export function maskDigits(text: string): string {
  return text.replace(/\d/g, "*");
}

export function maskPhoneNumber(number: string): string {
  const digits = number.replace(/\D/g, "");
  const kept = digits.length > 4 ? digits.slice(-2) : "";
  const prefix = number.startsWith("+") ? "+" : "";
  return `${prefix}${"*".repeat(digits.length - kept.length)}${kept}`;
}
