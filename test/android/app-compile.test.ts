/**
 * The Android app (android-client/app) compiled with javac against Android 15's
 * framework jar, Paho and the core by android-client/scripts/compile-app.sh,
 * once, when this file is collected: so `npm test` proves the app compiles, its
 * R references resolve, the framework names in res/ and the manifest exist, and
 * every component the manifest names was built.
 *
 * Needs a JDK 17, python3 and Maven (the first run fetches the jars from Maven
 * Central into android-client/.cache/). When any is missing this file FAILS with
 * the reason: a skipped compile would hide that the app no longer builds.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const repo = fileURLToPath(new URL("../..", import.meta.url));
const script = fileURLToPath(new URL("../../android-client/scripts/compile-app.sh", import.meta.url));

function compileApp(): { stdout: string; problem: string | null } {
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
    // javac prints every error; the last lines name the file and the reason.
    const stderr = (failure.stderr ?? "").trim().split("\n").slice(-40).join("\n");
    const how = failure.signal ? `was killed (${failure.signal})` : `exited with status ${failure.status ?? "?"}`;
    return { stdout: failure.stdout ?? "", problem: `android-client/scripts/compile-app.sh ${how}:\n${stderr || failure.message}` };
  }
}

const { stdout, problem } = compileApp();

describe("android-client app (javac against Android 15's framework)", () => {
  it("compile-app.sh compiled every app source", () => {
    if (problem !== null) expect.fail(problem);
    expect(stdout).toMatch(/^compile-app: ok: \d+ app sources/m);
  });
});
