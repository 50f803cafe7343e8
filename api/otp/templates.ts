/**
 * OTP message texts. The code comes first so it shows in notification
 * previews; an origin-bound last line (`@example.com #123456`) lets browsers'
 * WebOTP API fill the code for that site only; an Android SMS Retriever app hash
 * lets the named app read the SMS without the SMS permission.
 */

const SMS_TEXTS = {
  en: (code: string, app: string, minutes: number) => `${code} is your ${app} verification code. It expires in ${minutes} min. Do not share it.`,
  pt: (code: string, app: string, minutes: number) => `${code} é o seu código de verificação ${app}. Expira em ${minutes} min. Não o partilhe.`,
  fr: (code: string, app: string, minutes: number) => `${code} est votre code de vérification ${app}. Il expire dans ${minutes} min. Ne le partagez pas.`,
  sw: (code: string, app: string, minutes: number) => `${code} ni nambari yako ya uthibitisho ya ${app}. Itaisha baada ya dakika ${minutes}. Usiishiriki na mtu yeyote.`,
  es: (code: string, app: string, minutes: number) => `${code} es tu código de verificación de ${app}. Caduca en ${minutes} min. No lo compartas.`,
} as const;

const EMAIL_SUBJECTS: Record<Locale, (app: string) => string> = {
  en: (app) => `Your ${app} verification code`,
  pt: (app) => `O seu código de verificação ${app}`,
  fr: (app) => `Votre code de vérification ${app}`,
  sw: (app) => `Nambari yako ya uthibitisho ya ${app}`,
  es: (app) => `Tu código de verificación de ${app}`,
};

export type Locale = keyof typeof SMS_TEXTS;
export const LOCALES = Object.keys(SMS_TEXTS) as Locale[];

/** `pt-BR`, `pt_PT`, `PT` → `pt`; anything unknown → `en`. */
export function resolveLocale(requested?: string): Locale {
  const language = requested?.toLowerCase().split(/[-_]/)[0];
  return LOCALES.includes(language as Locale) ? (language as Locale) : "en";
}

/** The 11-character hash Google's SMS Retriever API computes for an app. */
export const APP_HASH_PATTERN = /^[A-Za-z0-9+/]{11}$/;
/** A bare host (with optional port) as WebOTP expects it after the `@`. */
export const ORIGIN_HOST_PATTERN = /^(?=.{1,253}$)[a-z0-9-]+(\.[a-z0-9-]+)*(:\d{1,5})?$/i;

export interface OtpTextInput {
  code: string;
  appName: string;
  ttlSeconds: number;
  locale?: string;
  /** Host of the site the code is for, e.g. `example.com` (a full URL is reduced to its host). */
  origin?: string;
  appHash?: string;
}

export function originHost(origin: string): string {
  return /^https?:\/\//i.test(origin) ? new URL(origin).host : origin;
}

export function otpSmsText(input: OtpTextInput): string {
  const minutes = Math.max(1, Math.round(input.ttlSeconds / 60));
  const lines = [SMS_TEXTS[resolveLocale(input.locale)](input.code, input.appName, minutes)];
  if (input.appHash) lines.push(input.appHash);
  // WebOTP only reads the last line, so the origin line must stay last.
  if (input.origin) lines.push("", `@${originHost(input.origin)} #${input.code}`);
  return lines.join("\n");
}

export function otpEmail(input: OtpTextInput): { subject: string; text: string } {
  const minutes = Math.max(1, Math.round(input.ttlSeconds / 60));
  return {
    subject: EMAIL_SUBJECTS[resolveLocale(input.locale)](input.appName),
    text: SMS_TEXTS[resolveLocale(input.locale)](input.code, input.appName, minutes),
  };
}
