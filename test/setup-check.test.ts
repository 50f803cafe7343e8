/**
 * The tool check that runs first in `npm test` (test/setup/required-tools.ts,
 * wired as the first globalSetup). Each case runs the check, or vitest itself,
 * as a child process with a PATH built for it: a folder of links to the real
 * PATH's programs minus the ones the case takes away, plus stubs. Nothing is
 * uninstalled, and the real apt-get is never on a child's PATH: where the
 * install path is tested, `apt-get` is a stub that records its arguments.
 */
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { PAHO_PYTHON, REQUIRED_TOOLS, mavenJars, onPath, packagesOf } from "./setup/required-tools.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CHECK = path.join(ROOT, "test/setup/required-tools.ts");
const VITEST = path.join(ROOT, "node_modules/vitest/vitest.mjs");
const root = process.getuid?.() === 0;
const sudo = root ? "" : "sudo ";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "otpgate-tools-"));
  // World-readable, so a case run as another user (below) can use it.
  chmodSync(dir, 0o755);
  dirs.push(dir);
  return dir;
}

/** A PATH of one folder: links to every program of this process's PATH except `without`, then `stubs` (name → sh script). */
function farm(without: readonly string[], stubs: Record<string, string> = {}): string {
  const dir = tempDir();
  for (const source of (process.env.PATH ?? "").split(path.delimiter)) {
    if (!source || !existsSync(source)) continue;
    for (const name of readdirSync(source)) {
      const link = path.join(dir, name);
      if (without.includes(name) || existsSync(link)) continue;
      try {
        symlinkSync(path.join(source, name), link);
      } catch {
        // a dangling or duplicate entry: the first of PATH wins, as for execvp
      }
    }
  }
  for (const [name, script] of Object.entries(stubs)) {
    writeFileSync(path.join(dir, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
  }
  return dir;
}

/** JAVA_LIBS and OTPGATE_JAR_CACHE that hold what the Android scripts want, so cases vary only what they mean to. */
function javaFolders(): { JAVA_LIBS: string; OTPGATE_JAR_CACHE: string } {
  const libs = tempDir();
  for (const jar of ["junit4.jar", "hamcrest-core.jar", "com.android.json.jar"]) writeFileSync(path.join(libs, jar), "jar");
  const cache = tempDir();
  for (const jar of mavenJars()) writeFileSync(path.join(cache, jar), "jar");
  return { JAVA_LIBS: libs, OTPGATE_JAR_CACHE: cache };
}

function runCheck(env: Record<string, string>, options: SpawnSyncOptions = {}) {
  const run = spawnSync(process.execPath, ["--import", "tsx", CHECK], {
    cwd: ROOT,
    env: { HOME: process.env.HOME ?? "/tmp", ...env },
    encoding: "utf8",
    timeout: 60_000,
    ...options,
  });
  return { status: run.status, stdout: String(run.stdout), stderr: String(run.stderr) };
}

const pahoHere = spawnSync(PAHO_PYTHON, ["-c", "import paho.mqtt.client"], { stdio: "ignore" }).status === 0;

describe("the tool check (test/setup/required-tools.ts)", () => {
  it("with nothing on PATH, names every missing tool and the one command in one line, and exits 1", () => {
    const empty = tempDir();
    const run = runCheck({ PATH: empty, JAVA_LIBS: tempDir(), OTPGATE_JAR_CACHE: tempDir() });
    // The Paho probe runs /usr/bin/python3 by its path (as paho-device.test.ts does), whatever PATH says.
    const paho = pahoHere ? [] : [`paho-mqtt for ${PAHO_PYTHON}`];
    const pahoPackage = pahoHere ? [] : ["python3-paho-mqtt"];
    const tools = ["redis-server", "mosquitto_pub", "mosquitto_sub", ...paho, "python3", "openssl", "javac", "java", "junit4.jar", "hamcrest-core.jar", "com.android.json.jar", "chromium", "mvn"];
    const packages = ["redis-server", "mosquitto-clients", ...pahoPackage, "python3", "openssl", "default-jdk-headless", "junit4", "libandroid-json-java", "chromium", "maven"];
    expect(run.stderr).toBe(`otpgate tests: missing ${tools.join(", ")}; run: ${sudo}apt-get install -y ${packages.join(" ")}\n`);
    expect(run.stdout).toBe("");
    expect(run.status).toBe(1);
  });

  it("names only what is missing: Debian's jars, with every program on PATH", () => {
    const run = runCheck({ PATH: farm(["apt-get"]), ...javaFolders(), JAVA_LIBS: tempDir() });
    expect(run.stderr).toBe(`otpgate tests: missing junit4.jar, hamcrest-core.jar, com.android.json.jar; run: ${sudo}apt-get install -y junit4 libandroid-json-java\n`);
    expect(run.status).toBe(1);
  });

  it("names a javac older than 17 with its version", () => {
    const run = runCheck({ PATH: farm(["apt-get", "javac"], { javac: 'echo "javac 11.0.20"' }), ...javaFolders() });
    expect(run.stderr).toBe(`otpgate tests: missing javac (found 11, needs 17 or newer); run: ${sudo}apt-get install -y default-jdk-headless\n`);
    expect(run.status).toBe(1);
  });

  it("needs mvn only while the jars the Android scripts fetch from Maven Central are not cached", () => {
    const path = farm(["apt-get", "mvn"]);
    expect(runCheck({ PATH: path, ...javaFolders() })).toEqual({ status: 0, stdout: "", stderr: "" });
    const uncached = runCheck({ PATH: path, ...javaFolders(), OTPGATE_JAR_CACHE: tempDir() });
    expect(uncached.stderr).toBe(`otpgate tests: missing mvn; run: ${sudo}apt-get install -y maven\n`);
    expect(uncached.status).toBe(1);
  });

  it.runIf(root)("as root with apt-get: one update, one install -y of exactly the missing packages (output shown), a second look, and 0", () => {
    const calls = path.join(tempDir(), "calls");
    const bin = farm(["apt-get", "redis-server", "mosquitto_pub", "mosquitto_sub"], {
      // The stub "installs" by linking the real programs into this PATH folder.
      "apt-get": [
        `echo "$*" >> ${calls}`,
        'echo "stub apt-get $*"',
        'case "$*" in *" install "*)',
        ...["redis-server", "mosquitto_pub", "mosquitto_sub"].map((tool) => `  ln -s ${onPath(tool, process.env.PATH ?? "")} "$(dirname "$0")/${tool}"`),
        "  ;;",
        "esac",
      ].join("\n"),
    });
    const run = runCheck({ PATH: bin, ...javaFolders() });
    expect(readFileSync(calls, "utf8").trim().split("\n")).toEqual([
      "-o DPkg::Lock::Timeout=300 update",
      "-o DPkg::Lock::Timeout=300 install -y redis-server mosquitto-clients",
    ]);
    expect(run.stdout).toContain("stub apt-get -o DPkg::Lock::Timeout=300 install -y redis-server mosquitto-clients");
    expect(run.stderr).toBe(
      "otpgate tests: missing redis-server, mosquitto_pub, mosquitto_sub; installing redis-server mosquitto-clients with apt-get\n" +
        "otpgate tests: every required tool is installed now\n",
    );
    expect(run.status).toBe(0);
  });

  it.runIf(root)("as root, an apt-get that fails stops the run with the line and 1", () => {
    const run = runCheck({ PATH: farm(["apt-get", "redis-server"], { "apt-get": 'case "$*" in *install*) exit 100 ;; esac' }), ...javaFolders() });
    expect(run.stderr.split("\n").at(-2)).toBe("otpgate tests: apt-get install failed (exit 100); missing redis-server; run: apt-get install -y redis-server");
    expect(run.status).toBe(1);
  });

  it("as anyone but root, never runs apt-get and says to use sudo", () => {
    const calls = path.join(tempDir(), "calls");
    // python3 by Debian's path: the first one on this PATH may sit in a home only its owner can enter.
    const bin = farm(["apt-get", "redis-server", "python3"], { "apt-get": `echo "$*" >> ${calls}`, python3: `exec ${PAHO_PYTHON} "$@"` });
    // As root, run it as nobody (65534), with a TMPDIR it may write tsx's cache to.
    const asOther: SpawnSyncOptions = root ? { uid: 65534, gid: 65534 } : {};
    const scratch = tempDir();
    chmodSync(scratch, 0o1777);
    const run = runCheck({ PATH: bin, ...javaFolders(), TMPDIR: scratch }, asOther);
    expect(run.stderr).toBe("otpgate tests: missing redis-server; run: sudo apt-get install -y redis-server\n");
    expect(run.status).toBe(1);
    expect(existsSync(calls)).toBe(false);
  });

  it("npm test stops in its first globalSetup with only that line: no redis start, no 'No test files found'", () => {
    const run = spawnSync(process.execPath, [VITEST, "run", "test/phone-simulator/cli-args.test.ts"], {
      cwd: ROOT,
      env: { HOME: process.env.HOME ?? "/tmp", PATH: farm(["apt-get", "redis-server"]), ...javaFolders(), CI: "1" },
      encoding: "utf8",
      timeout: 90_000,
    });
    expect(run.stderr).toBe(`otpgate tests: missing redis-server; run: ${sudo}apt-get install -y redis-server\n`);
    expect(run.stdout).not.toMatch(/No test files found|Unhandled Error|ENOENT/);
    expect(run.status).toBe(1);
  }, 120_000);

  it(".ci/run installs from the same list", () => {
    expect(readFileSync(path.join(ROOT, ".ci/run"), "utf8")).toContain("node --import tsx test/setup/required-tools.ts --missing-packages");
    const printed = spawnSync(process.execPath, ["--import", "tsx", CHECK, "--packages"], { cwd: ROOT, encoding: "utf8" });
    expect(printed.stdout).toBe(`${packagesOf(REQUIRED_TOOLS).join(" ")}\n`);
    expect(packagesOf(REQUIRED_TOOLS)).toEqual(["redis-server", "mosquitto-clients", "python3-paho-mqtt", "python3", "openssl", "default-jdk-headless", "junit4", "libandroid-json-java", "chromium", "maven"]);
  });
});
