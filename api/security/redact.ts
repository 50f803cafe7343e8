/**
 * What a log line or a recorded error may say about a recipient: vendor error
 * texts quote numbers ("The 'To' number +2547… is not valid") and addresses
 * ("550 5.1.1 <ana@example.org>: Recipient address rejected"). Numbers keep
 * their last three digits, addresses their first letter and domain.
 */
import { maskNumbers } from "../providers/provider.js";

const EMAIL = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)/g;

export function redactContacts(text: string): string {
  return maskNumbers(text.replace(EMAIL, (address, domain: string) => `${address.slice(0, 1)}***@${domain}`));
}
