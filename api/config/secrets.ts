/**
 * First-start bootstrap of DATA_DIR: the OTP HMAC secret and the admin API key.
 * The admin key is shown once and only its digest is kept, so a copy of
 * DATA_DIR does not hand out admin access.
 */
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
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

/** What keyDigest writes: SHA-256 in hex. */
const KEY_DIGEST = /^[0-9a-f]{64}$/;

/** Where the admin key's digest is kept, in DATA_DIR. */
export const ADMIN_KEY_DIGEST_FILE = "admin-key.sha256";

export type AdminKey =
  | { source: "env"; digest: string }
  | { source: "kept"; digest: string; file: string }
  /** Made by this call: shown once by the caller, or discarded if the start fails before it can be. */
  | { source: "generated"; digest: string; file: string; key: string; discard(): void };

function ensureDataDir(dataDir: string): void {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  chmodSync(dataDir, 0o700);
}

/** ADMIN_API_KEY if set, else the digest kept in DATA_DIR, else a new key whose digest is kept from now on. */
export function adminKey(dataDir: string, fromEnv?: string): AdminKey {
  if (fromEnv) return { source: "env", digest: keyDigest(fromEnv) };
  ensureDataDir(dataDir);
  const file = path.join(dataDir, ADMIN_KEY_DIGEST_FILE);
  const existing = readIfExists(file);
  if (existing !== undefined && KEY_DIGEST.test(existing)) return { source: "kept", digest: existing, file };
  // Empty or torn (a crash between creating the file and writing it): no key can match it, so it is no key.
  if (existing !== undefined) rmSync(file, { force: true });
  const key = newApiKey("admin");
  const digest = keyDigest(key);
  const stored = writeSecret(file, digest);
  // Lost the race to another process: its key is the admin key, not ours.
  if (stored !== digest) return { source: "kept", digest: stored, file };
  const discard = () => {
    // Only our own digest: `npm run admin-key` may have replaced it meanwhile.
    if (readIfExists(file) === digest) rmSync(file, { force: true });
  };
  return { source: "generated", digest, file, key, discard };
}

/**
 * Replaces the admin key (`npm run admin-key`): a new key's digest is written
 * over the kept one in one rename, so a reader sees the old digest or the new.
 */
export function replaceAdminKey(dataDir: string): { key: string; file: string } {
  ensureDataDir(dataDir);
  const file = path.join(dataDir, ADMIN_KEY_DIGEST_FILE);
  const key = newApiKey("admin");
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${keyDigest(key)}\n`, { mode: 0o600, flag: "w" });
  renameSync(temporary, file);
  return { key, file };
}

export function loadSecrets(dataDir: string, fromEnv: { otpSecret?: string; adminApiKey?: string; callbackSecret?: string }): Secrets {
  ensureDataDir(dataDir);

  // A secret from the environment wins; otherwise the one kept in DATA_DIR, made on first start.
  const kept = (name: string, fromEnvValue: string | undefined) => {
    const file = path.join(dataDir, name);
    return fromEnvValue ?? readIfExists(file) ?? writeSecret(file, randomBytes(32).toString("base64url"));
  };
  const otpSecret = kept("otp-secret", fromEnv.otpSecret);

  const shared = { otpSecret, callbackSecret: kept("callback-secret", fromEnv.callbackSecret) };

  const admin = adminKey(dataDir, fromEnv.adminApiKey);
  return { ...shared, adminKeyDigest: admin.digest, ...(admin.source === "generated" ? { generatedAdminKey: admin.key } : {}) };
}
