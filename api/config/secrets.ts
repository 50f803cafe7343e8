/**
 * First-start bootstrap of DATA_DIR: the OTP HMAC secret and the admin API key.
 * The admin key is shown once and only its digest is kept, so a copy of
 * DATA_DIR does not hand out admin access.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { keyDigest, newApiKey } from "../keys/api-key-format.js";

export interface Secrets {
  otpSecret: string;
  /** Signs status callbacks; receivers verify with it. */
  callbackSecret: string;
  adminKeyDigest: string;
  /** Set only on the start that generated it: the caller prints it once. */
  generatedAdminKey?: string;
}

function readIfExists(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

/** `wx`: never overwrite, so two processes starting at once cannot swap secrets under each other. */
function writeSecret(file: string, value: string): string {
  try {
    writeFileSync(file, `${value}\n`, { mode: 0o600, flag: "wx" });
    return value;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return readIfExists(file)!;
    throw error;
  }
}

export function loadSecrets(dataDir: string, fromEnv: { otpSecret?: string; adminApiKey?: string; callbackSecret?: string }): Secrets {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);

  // A secret from the environment wins; otherwise the one kept in DATA_DIR, made on first start.
  const kept = (name: string, fromEnvValue: string | undefined) => {
    const file = path.join(dataDir, name);
    return fromEnvValue ?? readIfExists(file) ?? writeSecret(file, randomBytes(32).toString("base64url"));
  };
  const otpSecret = kept("otp-secret", fromEnv.otpSecret);

  const shared = { otpSecret, callbackSecret: kept("callback-secret", fromEnv.callbackSecret) };

  if (fromEnv.adminApiKey) return { ...shared, adminKeyDigest: keyDigest(fromEnv.adminApiKey) };
  const adminDigestFile = path.join(dataDir, "admin-key.sha256");
  const existing = readIfExists(adminDigestFile);
  if (existing) return { ...shared, adminKeyDigest: existing };
  const adminKey = newApiKey("admin");
  const stored = writeSecret(adminDigestFile, keyDigest(adminKey));
  // Lost the race to another process: its key is the admin key, not ours.
  if (stored !== keyDigest(adminKey)) return { ...shared, adminKeyDigest: stored };
  return { ...shared, adminKeyDigest: stored, generatedAdminKey: adminKey };
}
