/** What a logged or recorded provider error keeps of a recipient (api/security/redact.ts). */
import { describe, expect, it } from "vitest";
import { maskPhone } from "../../api/phone/phone-number.js";
import { redactContacts } from "../../api/security/redact.js";

describe("redactContacts", () => {
  it("masks numbers and addresses quoted in vendor errors, keeps the rest", () => {
    const twilio = redactContacts("twilio:21211: The 'To' number +254711222333 is not a valid phone number.");
    expect(twilio).toBe("twilio:21211: The 'To' number …333 is not a valid phone number.");
    const smtp = redactContacts("email:550: 550 5.1.1 <ana.maria+otp@mail.example.org>: Recipient address rejected");
    expect(smtp).toBe("email:550: 550 5.1.1 <a***@mail.example.org>: Recipient address rejected");
    expect(redactContacts("timeout: no answer within 10000 ms")).toBe("timeout: no answer within 10000 ms");
  });

  it("masks a number in a view as +254*****2333", () => {
    expect(maskPhone("+254711222333")).toBe("+254*****2333");
  });
});
