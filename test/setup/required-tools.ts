/**
 * What `npm test` needs from the machine besides node_modules: every program
 * or library that a test, a test helper or an Android script it runs uses,
 * each with the Debian package that provides it. This is the one list: the
 * globalSetup check (tools-check.ts) reads it, and so does .ci/run (through
 * the command line below), so the two cannot disagree.
 *
 *   node --import tsx test/setup/required-tools.ts                     check; install as root, else one line and exit 1
 *   node --import tsx test/setup/required-tools.ts --packages          every package of the list, one line
 *   node --import tsx test/setup/required-tools.ts --missing-packages  the packages of what is missing here, one line
 *
 * Left out on purpose: bash and stdbuf (Debian's essential packages, always
 * there), node and npm (they run this), and Maven Central's reachability
 * (a network question, answered by the Android scripts themselves).
 */
import { spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));

/**
 * The interpreter test/mqtt/paho-device.test.ts runs (its PYTHON): Debian's own,
 * which sees python3-paho-mqtt, whatever `python3` on PATH is.
 */
export const PAHO_PYTHON = "/usr/bin/python3";

/** android-all 15's class files are Java 17 (major 61): older javac cannot read them. */
const MIN_JAVAC = 17;

/** Where the probes look: what the scripts themselves read, so the check sees what they will see. */
export interface ProbeEnv {
  path: string;
  /** JAVA_LIBS of jvm-test.sh. */
  javaLibs: string;
  /** OTPGATE_JAR_CACHE of the Android scripts. */
  jarCache: string;
}

export function probeEnvFrom(env: NodeJS.ProcessEnv): ProbeEnv {
  return {
    path: env.PATH ?? "",
    javaLibs: env.JAVA_LIBS || "/usr/share/java",
    jarCache: env.OTPGATE_JAR_CACHE || path.join(REPO, "android-client/.cache/jars"),
  };
}

export interface Requirement {
  /** As the message names it. */
  name: string;
  debianPackage: string;
  /** Who needs it, for whoever edits this list. */
  usedBy: string;
  /** undefined when usable; otherwise "" (absent) or what is wrong with it. */
  problem(env: ProbeEnv): string | undefined;
}

/** The executable `command` resolves to on `searchPath`, as execvp would find it. */
export function onPath(command: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, command);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: next directory
    }
  }
  return undefined;
}

const command = (name: string): Requirement["problem"] => (env) => (onPath(name, env.path) ? undefined : "");

const readable = (file: (env: ProbeEnv) => string): Requirement["problem"] => (env) => {
  try {
    accessSync(file(env), constants.R_OK);
    return undefined;
  } catch {
    return "";
  }
};

function javacProblem(env: ProbeEnv): string | undefined {
  const javac = onPath("javac", env.path);
  if (!javac) return "";
  const run = spawnSync(javac, ["-version"], { encoding: "utf8", timeout: 30_000, env: { ...process.env, PATH: env.path } });
  // JDK 9+ prints "javac 17.0.15" on stdout, JDK 8 "javac 1.8.0_392" on stderr.
  const match = /javac (\d+)(?:\.(\d+))?/.exec(`${run.stdout ?? ""}${run.stderr ?? ""}`);
  if (!match) return "its -version names no version";
  const major = match[1] === "1" ? Number(match[2]) : Number(match[1]);
  return major >= MIN_JAVAC ? undefined : `found ${major}, needs ${MIN_JAVAC} or newer`;
}

function pahoProblem(): string | undefined {
  const run = spawnSync(PAHO_PYTHON, ["-c", "import paho.mqtt.client"], { stdio: "ignore", timeout: 30_000 });
  return run.status === 0 ? undefined : "";
}

/**
 * The jars the Android scripts fetch with mvn, read from the scripts themselves
 * (their GROUP:ARTIFACT:VERSION assignments), so a version bump there needs no
 * edit here. Each lands in the cache as ARTIFACT-VERSION.jar.
 */
export function mavenJars(): string[] {
  const jars = new Set<string>();
  for (const script of ["compile-app.sh", "jvm-test.sh"]) {
    const text = readFileSync(path.join(REPO, "android-client/scripts", script), "utf8");
    for (const match of text.matchAll(/^\s*[A-Za-z_]+="?([\w.-]+):([\w.-]+):([\w.-]+)"?\s*$/gm)) {
      jars.add(`${match[2]}-${match[3]}.jar`);
    }
  }
  return [...jars];
}

function mvnProblem(env: ProbeEnv): string | undefined {
  if (onPath("mvn", env.path)) return undefined;
  const jars = mavenJars();
  const cached = (jar: string) => {
    try {
      return statSync(path.join(env.jarCache, jar)).size > 0;
    } catch {
      return false;
    }
  };
  // No coordinates found means the scripts changed shape: assume they need mvn rather than guess.
  return jars.length > 0 && jars.every(cached) ? undefined : "";
}

export const REQUIRED_TOOLS: readonly Requirement[] = [
  { name: "redis-server", debianPackage: "redis-server", usedBy: "globalSetup (test/setup/redis-server.ts), the Redis store and cluster suites, the Android live tests", problem: command("redis-server") },
  { name: "mosquitto_pub", debianPackage: "mosquitto-clients", usedBy: "test/mqtt/acl.test.ts, test/mqtt/publishers.test.ts", problem: command("mosquitto_pub") },
  { name: "mosquitto_sub", debianPackage: "mosquitto-clients", usedBy: "test/mqtt/acl.test.ts, test/mqtt/publishers.test.ts", problem: command("mosquitto_sub") },
  { name: `paho-mqtt for ${PAHO_PYTHON}`, debianPackage: "python3-paho-mqtt", usedBy: "test/mqtt/paho-device.test.ts", problem: pahoProblem },
  { name: "python3", debianPackage: "python3", usedBy: "android-client/scripts/compile-app.sh (app_resources.py)", problem: command("python3") },
  { name: "openssl", debianPackage: "openssl", usedBy: "test/tls, certs/make-certs.sh, the Android core's TLS test certificates", problem: command("openssl") },
  { name: "javac", debianPackage: "default-jdk-headless", usedBy: "android-client/scripts/*.sh (test/android)", problem: javacProblem },
  { name: "java", debianPackage: "default-jdk-headless", usedBy: "android-client/scripts/jvm-test.sh", problem: command("java") },
  { name: "junit4.jar", debianPackage: "junit4", usedBy: "android-client/scripts/jvm-test.sh", problem: readable((env) => path.join(env.javaLibs, "junit4.jar")) },
  { name: "hamcrest-core.jar", debianPackage: "junit4", usedBy: "android-client/scripts/jvm-test.sh (junit4 depends on it)", problem: readable((env) => path.join(env.javaLibs, "hamcrest-core.jar")) },
  { name: "com.android.json.jar", debianPackage: "libandroid-json-java", usedBy: "android-client/scripts/jvm-test.sh", problem: readable((env) => path.join(env.javaLibs, "com.android.json.jar")) },
  { name: "chromium", debianPackage: "chromium", usedBy: "test/console (the web console in a real headless browser, driven by playwright-core)", problem: command("chromium") },
  { name: "mvn", debianPackage: "maven", usedBy: "android-client/scripts/*.sh, until their Maven Central jars are cached", problem: mvnProblem },
];

export interface Missing {
  requirement: Requirement;
  detail: string;
}

export function findMissing(env: ProbeEnv, tools: readonly Requirement[] = REQUIRED_TOOLS): Missing[] {
  const missing: Missing[] = [];
  for (const requirement of tools) {
    const detail = requirement.problem(env);
    if (detail !== undefined) missing.push({ requirement, detail });
  }
  return missing;
}

/** Each package once, in list order. */
export function packagesOf(items: ReadonlyArray<Requirement | Missing>): string[] {
  const names = items.map((item) => ("requirement" in item ? item.requirement : item).debianPackage);
  return [...new Set(names)];
}

const describe = (missing: readonly Missing[]) =>
  missing.map(({ requirement, detail }) => (detail ? `${requirement.name} (${detail})` : requirement.name)).join(", ");

export function installCommand(missing: readonly Missing[], asRoot: boolean): string {
  return `${asRoot ? "" : "sudo "}apt-get install -y ${packagesOf(missing).join(" ")}`;
}

/** The one line printed when the tests cannot run. */
export function missingLine(missing: readonly Missing[], asRoot: boolean, before = "missing"): string {
  return `otpgate tests: ${before} ${describe(missing)}; run: ${installCommand(missing, asRoot)}`;
}

const isRoot = () => process.getuid?.() === 0;

/**
 * The check: 0 when everything is there. Otherwise, as root with apt-get on
 * PATH, one `apt-get update` and one `apt-get install -y` of exactly the
 * missing packages (their output shown), then a second look; anyone else gets
 * one line on stderr naming what is missing and the command to run, and 1.
 */
export function ensureTools(processEnv: NodeJS.ProcessEnv = process.env, log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): number {
  const env = probeEnvFrom(processEnv);
  const missing = findMissing(env);
  if (missing.length === 0) return 0;
  const root = isRoot();
  const aptGet = root ? onPath("apt-get", env.path) : undefined;
  if (!aptGet) {
    log(missingLine(missing, root));
    return 1;
  }

  const packages = packagesOf(missing);
  log(`otpgate tests: missing ${describe(missing)}; installing ${packages.join(" ")} with apt-get`);
  const aptEnv = { ...processEnv, DEBIAN_FRONTEND: "noninteractive" };
  // Two test runs at once would race for dpkg's lock; the second waits for it instead of failing.
  const lockWait = ["-o", "DPkg::Lock::Timeout=300"];
  for (const args of [[...lockWait, "update"], [...lockWait, "install", "-y", ...packages]]) {
    const run = spawnSync(aptGet, args, { stdio: ["ignore", "inherit", "inherit"], env: aptEnv });
    if (run.status !== 0) {
      log(missingLine(missing, root, `apt-get ${args.at(-1) === "update" ? "update" : "install"} failed (${run.error?.message ?? `exit ${run.status}`}); missing`));
      return 1;
    }
  }
  const still = findMissing(env);
  if (still.length > 0) {
    log(missingLine(still, root, "apt-get installed the packages but still missing"));
    return 1;
  }
  log("otpgate tests: every required tool is installed now");
  return 0;
}

function main(argv: readonly string[]): number {
  const [mode, ...rest] = argv;
  if (rest.length > 0 || (mode !== undefined && mode !== "--packages" && mode !== "--missing-packages")) {
    process.stderr.write("usage: required-tools.ts [--packages | --missing-packages]\n");
    return 2;
  }
  if (mode === "--packages") {
    console.log(packagesOf(REQUIRED_TOOLS).join(" "));
    return 0;
  }
  if (mode === "--missing-packages") {
    console.log(packagesOf(findMissing(probeEnvFrom(process.env))).join(" "));
    return 0;
  }
  return ensureTools();
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
