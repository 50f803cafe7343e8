import { describe, expect, it } from "vitest";
import { otpEmail, otpSmsText, resolveLocale } from "../../api/otp/templates.js";

const base = { code: "482913", appName: "Acme", ttlSeconds: 300 };

describe("OTP texts", () => {
  it("put the code first and say the minutes, in each locale", () => {
    const expected: Record<string, RegExp> = {
      en: /^482913 is your Acme verification code\. It expires in 5 min/,
      pt: /^482913 é o seu código de verificação Acme\. Expira em 5 min/,
      fr: /^482913 est votre code de vérification Acme\. Il expire dans 5 min/,
      sw: /^482913 ni nambari yako ya uthibitisho ya Acme\. Itaisha baada ya dakika 5/,
      es: /^482913 es tu código de verificación de Acme\. Caduca en 5 min/,
    };
    for (const [locale, pattern] of Object.entries(expected)) expect(otpSmsText({ ...base, locale })).toMatch(pattern);
  });

  it("match regional variants and fall back to English", () => {
    expect(resolveLocale("pt-BR")).toBe("pt");
    expect(resolveLocale("fr_CA")).toBe("fr");
    expect(resolveLocale("SW")).toBe("sw");
    expect(resolveLocale("de")).toBe("en");
    expect(resolveLocale(undefined)).toBe("en");
  });

  it("end with the origin-bound line WebOTP reads, after the app hash", () => {
    const text = otpSmsText({ ...base, origin: "https://login.example.com", appHash: "FA+9qCX9VSu" });
    const lines = text.split("\n");
    expect(lines.at(-1)).toBe("@login.example.com #482913");
    expect(lines).toContain("FA+9qCX9VSu");
    expect(lines.indexOf("FA+9qCX9VSu")).toBeLessThan(lines.length - 1);
  });

  it("keep a bare host as it is", () => {
    expect(otpSmsText({ ...base, origin: "example.com" }).split("\n").at(-1)).toBe("@example.com #482913");
  });

  it("give the email a localised subject and the same text", () => {
    expect(otpEmail({ ...base, locale: "pt" })).toEqual({
      subject: "O seu código de verificação Acme",
      text: otpSmsText({ ...base, locale: "pt" }),
    });
  });
});
