/**
 * The Android client's JVM core (android-client/core: payload rules,
 * provisioning, pinning, ledger, send window, the job engine) compiled and
 * tested with javac and JUnit 4 by android-client/scripts/jvm-test.sh, once,
 * when this file is collected. Each JUnit test becomes a vitest test, so the
 * totals of `npm test` count the Java tests too.
 *
 * Needs a JDK 17, openssl (the TLS tests' certificates and keys are generated
 * for each run, never committed) and Debian's junit4 and libandroid-json-java
 * packages. When they are missing this file FAILS with the reason: a skipped
 * suite would hide that the Android core went untested.
 */
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/** Fewer than this means test classes went missing from the run. */
const MIN_JUNIT_TESTS = 200;

interface JUnitResult {
  test: string;
  status: "passed" | "failed" | "skipped";
  message: string | null;
}

const repo = fileURLToPath(new URL("../..", import.meta.url));
const script = fileURLToPath(new URL("../../android-client/scripts/jvm-test.sh", import.meta.url));

function parseLines(stdout: string): JUnitResult[] {
  const results: JUnitResult[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith('{"test":')) continue;
    results.push(JSON.parse(line) as JUnitResult);
  }
  return results;
}

function runJvmTests(): { results: JUnitResult[]; problem: string | null } {
  try {
    const stdout = execFileSync("bash", [script], {
      cwd: repo,
      encoding: "utf8",
      timeout: 10 * 60_000,
      maxBuffer: 64 * 1024 * 1024,
      stdio: ["ignore", "pipe", "pipe"],
    });
    return { results: parseLines(stdout), problem: null };
  } catch (error) {
    const failure = error as { status?: number | null; signal?: string | null; stdout?: string; stderr?: string; message: string };
    const stderr = (failure.stderr ?? "").trim().split("\n").slice(-15).join("\n");
    const how = failure.signal ? `was killed (${failure.signal})` : `exited with status ${failure.status ?? "?"}`;
    return { results: parseLines(failure.stdout ?? ""), problem: `android-client/scripts/jvm-test.sh ${how}:\n${stderr || failure.message}` };
  }
}

const { results, problem } = runJvmTests();

describe("android-client JVM core (javac + JUnit 4)", () => {
  it("jvm-test.sh compiled the core and ran its tests", () => {
    // With no results at all the cause is the toolchain (javac, junit4.jar, com.android.json.jar) or a compile error.
    if (results.length === 0) expect.fail(problem ?? "jvm-test.sh printed no test result");
    const failed = results.filter((result) => result.status !== "passed").map((result) => result.test);
    expect(problem === null || failed.length > 0, problem ?? "").toBe(true);
  });

  it(`ran at least ${MIN_JUNIT_TESTS} JUnit tests`, () => {
    expect(results.length).toBeGreaterThanOrEqual(MIN_JUNIT_TESTS);
  });

  for (const result of results) {
    it(result.test, () => {
      expect(result.status, result.message ?? "").toBe("passed");
    });
  }
});
