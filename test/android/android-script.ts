/**
 * Runs one of android-client/scripts/ from the repository root, once, as the
 * Android test files do when they are collected: its stdout, and when it
 * failed, why (its exit status or signal and the last lines it wrote on stderr).
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("../..", import.meta.url));

export function runAndroidScript(name: string, stderrLines: number): { stdout: string; problem: string | null } {
  const script = fileURLToPath(new URL(`../../android-client/scripts/${name}`, import.meta.url));
  try {
    const stdout = execFileSync("bash", [script], {
      cwd: repo,
      encoding: "utf8",
      timeout: 10 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { stdout, problem: null };
  } catch (error) {
    const failure = error as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string; message: string };
    const stderr = (failure.stderr ?? "").trim().split("\n").slice(-stderrLines).join("\n");
    const how = failure.signal ? `was killed (${failure.signal})` : `exited with status ${failure.status ?? "?"}`;
    return { stdout: failure.stdout ?? "", problem: `android-client/scripts/${name} ${how}:\n${stderr || failure.message}` };
  }
}
