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
import { describe, expect, it } from "vitest";
import { runAndroidScript } from "./android-script.js";

/** Fewer than this means test classes went missing from the run. */
const MIN_JUNIT_TESTS = 200;

interface JUnitResult {
  test: string;
  status: "passed" | "failed" | "skipped";
  message: string | null;
}


function parseLines(stdout: string): JUnitResult[] {
  const results: JUnitResult[] = [];
  for (const line of stdout.split("\n")) {
    if (!line.startsWith('{"test":')) continue;
    results.push(JSON.parse(line) as JUnitResult);
  }
  return results;
}

function runJvmTests(): { results: JUnitResult[]; problem: string | null } {
  const { stdout, problem } = runAndroidScript("jvm-test.sh", 15);
  return { results: parseLines(stdout), problem };
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
