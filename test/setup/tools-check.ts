/**
 * The first globalSetup: before redis-server is started and before any test
 * file runs, every external tool of the suite must be there (required-tools.ts).
 * Without this, a missing redis-server surfaced as vitest's "No test files
 * found" and a missing mosquitto or JDK as a hundred ENOENT failures. Exiting
 * here, rather than throwing, keeps the output to the check's own line.
 */
import { ensureTools } from "./required-tools.js";

export function setup(): void {
  const status = ensureTools();
  if (status !== 0) process.exit(status);
}
