/**
 * The ledger on disk, so a restarted phone still refuses to send a job id it
 * handled before. Writes are synchronous and atomic (temporary file, then
 * rename): the phone saves right after accepting a job and before sending it,
 * so a crash at any point leaves either the old or the new state, and an id
 * that was sent is always on disk. The file holds only ids, statuses and
 * times, never numbers or bodies, and the ledger prunes expired ids, so it
 * stays small.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { JobLedger } from "./ledger.js";

export function loadLedger(path: string, now: number): JobLedger {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new JobLedger();
    throw error;
  }
  try {
    return JobLedger.fromJSON(JSON.parse(text), now);
  } catch (error) {
    // Starting empty would let the phone send old jobs again: refuse instead.
    throw new Error(`state file ${path} is unreadable (${(error as Error).message}); move it away to start afresh`);
  }
}

export function saveLedger(path: string, ledger: JobLedger): void {
  mkdirSync(dirname(path), { recursive: true });
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(ledger)}\n`, { mode: 0o600 });
  renameSync(temporary, path);
}
