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
import { describe, expect, it } from "vitest";
import { runAndroidScript } from "./android-script.js";

// javac prints every error; the last lines name the file and the reason.
const { stdout, problem } = runAndroidScript("compile-app.sh", 40);

describe("android-client app (javac against Android 15's framework)", () => {
  it("compile-app.sh compiled every app source", () => {
    if (problem !== null) expect.fail(problem);
    expect(stdout).toMatch(/^compile-app: ok: \d+ app sources/m);
  });
});
