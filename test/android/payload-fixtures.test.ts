/**
 * One set of payload rules, three implementations: the gateway's schemas
 * (broker/payloads.ts), the phone simulator's rules
 * (tools/phone-simulator/job-rules.ts) and the Android core
 * (android-client/core, asked through `jvm-test.sh --fixture-verdicts`).
 * Provisioning URIs have one parser on the TypeScript side
 * (broker/provisioning.ts) and Provisioning.java on the phone.
 *
 * Every fixture of test/fixtures/mqtt-payloads.json must get its `valid`
 * verdict from every implementation: no fixture may be accepted by one and
 * refused by another. The core's PayloadFixturesTest (run by jvm-core.test.ts)
 * checks its side too, so the Gradle build of the app holds the same line.
 *
 * Needs what jvm-core.test.ts needs (a JDK 17, junit4 and libandroid-json-java
 * jars); without them the Java verdicts FAIL with the reason rather than being
 * skipped.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ackPayload, cancelPayload, deviceStatusPayload, jobPayload, parsePayload } from "../../broker/payloads.js";
import { parseProvisioningUri } from "../../broker/provisioning.js";
import {
  WILL_PAYLOAD,
  ackProblem,
  buildAck,
  buildOfflineStatus,
  buildOnlineStatus,
  parseOutboundPayload,
  statusProblem,
  type AckInput,
  type SimInfo,
} from "../../tools/phone-simulator/job-rules.js";

type Kind = "job" | "cancel" | "ack" | "status" | "provisioning";
interface Fixture {
  name: string;
  kind: Kind;
  payload: unknown;
  valid: boolean;
  /** On a valid ack or status: the `at` it reads as (an ISO instant in UTC), or null when it counts as absent. */
  readsAt?: string | null;
  why?: string;
}
interface Verdicts {
  server: boolean;
  simulator: boolean;
  java: boolean | undefined;
}

const file = new URL("../fixtures/mqtt-payloads.json", import.meta.url);
const { fixtures } = JSON.parse(readFileSync(file, "utf8")) as { fixtures: Fixture[] };
const label = (fixture: Fixture) => `${fixture.kind}: ${fixture.name}`;

/** The Android core's verdict per fixture label, or why there is none. */
function javaVerdicts(): { verdicts: Map<string, boolean>; problem: string | null } {
  const script = fileURLToPath(new URL("../../android-client/scripts/jvm-test.sh", import.meta.url));
  let stdout: string;
  try {
    stdout = execFileSync("bash", [script, "--fixture-verdicts"], {
      cwd: fileURLToPath(new URL("../..", import.meta.url)),
      encoding: "utf8",
      timeout: 5 * 60_000,
      maxBuffer: 16 * 1024 * 1024,
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (error) {
    const failure = error as { stderr?: string; message: string };
    const stderr = (failure.stderr ?? "").trim().split("\n").slice(-15).join("\n");
    return { verdicts: new Map(), problem: `jvm-test.sh --fixture-verdicts failed:\n${stderr || failure.message}` };
  }
  const verdicts = new Map<string, boolean>();
  for (const line of stdout.split("\n")) {
    if (!line.startsWith('{"fixture":')) continue;
    const { fixture, accepted } = JSON.parse(line) as { fixture: string; accepted: boolean };
    verdicts.set(fixture, accepted);
  }
  return { verdicts, problem: null };
}

const java = javaVerdicts();

/** A string payload is the exact text; anything else goes on the wire as JSON.stringify. */
function text(fixture: Fixture): string {
  return typeof fixture.payload === "string" ? fixture.payload : JSON.stringify(fixture.payload);
}

function verdicts(fixture: Fixture): Verdicts {
  const payload = text(fixture);
  const javaSays = java.verdicts.get(label(fixture));
  switch (fixture.kind) {
    case "job":
    case "cancel": {
      const phone = parseOutboundPayload(payload);
      return {
        server: fixture.kind === "job" ? parsePayload(jobPayload, payload).ok : parsePayload(cancelPayload, payload).ok,
        simulator: phone.ok && phone.message.kind === fixture.kind,
        java: javaSays,
      };
    }
    case "ack":
      return { server: parsePayload(ackPayload, payload).ok, simulator: ackProblem(payload) === null, java: javaSays };
    case "status":
      return { server: parsePayload(deviceStatusPayload, payload).ok, simulator: statusProblem(payload) === null, java: javaSays };
    case "provisioning": {
      // One TypeScript parser serves both: the server builds URIs with it and the simulator reads them with it.
      let ok = true;
      try {
        parseProvisioningUri(payload);
      } catch {
        ok = false;
      }
      return { server: ok, simulator: ok, java: javaSays };
    }
  }
}

describe("test/fixtures/mqtt-payloads.json", () => {
  it("is well formed, covers every kind both ways and has unique names", () => {
    const names = new Set(fixtures.map(label));
    expect(names.size).toBe(fixtures.length);
    for (const fixture of fixtures) {
      expect(["job", "cancel", "ack", "status", "provisioning"]).toContain(fixture.kind);
      expect(typeof fixture.valid).toBe("boolean");
      if (fixture.kind === "provisioning") expect(typeof fixture.payload).toBe("string");
      if ("readsAt" in fixture) {
        expect(fixture.valid && (fixture.kind === "ack" || fixture.kind === "status"), `${label(fixture)}: readsAt only on a valid ack or status`).toBe(true);
      }
      // The old "server and phone disagree:" notes are gone for good: no fixture is accepted by only one side.
      expect(fixture.why ?? "", label(fixture)).not.toMatch(/^server and phone disagree/i);
    }
    for (const kind of ["job", "cancel", "ack", "status", "provisioning"]) {
      expect(fixtures.some((f) => f.kind === kind && f.valid), `a valid ${kind}`).toBe(true);
      expect(fixtures.some((f) => f.kind === kind && !f.valid), `an invalid ${kind}`).toBe(true);
    }
    expect(fixtures.filter((f) => f.valid).length).toBeGreaterThanOrEqual(15);
    expect(fixtures.filter((f) => !f.valid).length).toBeGreaterThanOrEqual(15);
  });

  it("has a verdict of the Android core for every fixture", () => {
    if (java.problem) expect.fail(java.problem);
    expect([...java.verdicts.keys()].sort()).toEqual(fixtures.map(label).sort());
  });

  it.each(fixtures.map((fixture) => [label(fixture), fixture] as const))("%s", (_label, fixture) => {
    const { valid } = fixture;
    expect(verdicts(fixture), fixture.why ?? "").toEqual({ server: valid, simulator: valid, java: valid });
  });

  it("gets the same verdict from the gateway, the simulator and the Android core on every fixture", () => {
    const disagreements = fixtures
      .map((fixture) => ({ fixture: label(fixture), ...verdicts(fixture) }))
      .filter(({ server, simulator, java: javaSays }) => server !== simulator || server !== javaSays);
    expect(disagreements).toEqual([]);
  });

  it.each(fixtures.filter((f) => f.readsAt !== undefined).map((fixture) => [label(fixture), fixture] as const))(
    "%s: the gateway reads its at as the fixture says",
    (_label, fixture) => {
      const parsed = fixture.kind === "ack" ? parsePayload(ackPayload, text(fixture)) : parsePayload(deviceStatusPayload, text(fixture));
      if (!parsed.ok) expect.fail(parsed.error);
      // Absent and unreadable alike leave no `at` member at all, not an undefined one.
      if (fixture.readsAt === null) expect(Object.keys(parsed.value)).not.toContain("at");
      else expect(parsed.value.at).toBe(fixture.readsAt);
    },
  );

  it("has the will exactly as the simulator sets it", () => {
    const will = fixtures.find((fixture) => fixture.name === "the will");
    expect(will && text(will)).toBe(WILL_PAYLOAD);
  });
});

describe("the simulator writes only what the gateway accepts", () => {
  const NOW = Date.parse("2030-01-01T12:00:00Z");
  const gatewayTakesAck = (ack: object) => parsePayload(ackPayload, JSON.stringify(ack)).ok && ackProblem(JSON.stringify(ack)) === null;
  const gatewayTakesStatus = (status: object | string) => {
    const payload = typeof status === "string" ? status : JSON.stringify(status);
    return parsePayload(deviceStatusPayload, payload).ok && statusProblem(payload) === null;
  };

  it("cuts an ack's error to 200 characters and never leaves it empty", () => {
    const inputs: AckInput[] = [
      { id: "a", status: "received" },
      { id: "a", status: "sent" },
      { id: "a", status: "delivered" },
      { id: "a", status: "failed", error: "EXPIRED" },
      { id: "a", status: "failed", error: "e".repeat(300) },
      { id: "a", status: "failed", error: "" },
    ];
    for (const input of inputs) expect(gatewayTakesAck(buildAck(input, NOW)), JSON.stringify(input)).toBe(true);
    expect(buildAck({ id: "a", status: "failed", error: "e".repeat(300) }, NOW)).toMatchObject({ error: "e".repeat(200) });
    expect(buildAck({ id: "a", status: "failed", error: "" }, NOW)).toMatchObject({ error: "UNKNOWN" });
  });

  it("keeps a status within the limits whatever the device reports", () => {
    const sims: SimInfo[] = Array.from({ length: 12 }, (_, slot) => ({ slot, carrier: "c", number: null }));
    const statuses = [
      buildOnlineStatus({ battery: 55.5, signal: 2.4, app: "a".repeat(150), sims }, NOW),
      buildOnlineStatus({ battery: Number.NaN, signal: Number.POSITIVE_INFINITY, app: "" }, NOW),
      buildOnlineStatus({ battery: -3, signal: 9, app: "otpgate-sim/1" }, NOW),
      buildOfflineStatus(NOW),
    ];
    for (const status of statuses) expect(gatewayTakesStatus(status), JSON.stringify(status)).toBe(true);
    expect(statuses[0]).toMatchObject({ battery: 56, signal: 2, app: "a".repeat(100) });
    expect((statuses[0] as { sims: unknown[] }).sims).toHaveLength(8);
    expect(gatewayTakesStatus(WILL_PAYLOAD)).toBe(true);
  });
});

describe("payload bytes", () => {
  const cancel = '{"id":"a","cancel":true}';

  it("are refused alike by the gateway and the simulator when they are not UTF-8 or start with a byte order mark", () => {
    for (const bytes of [Buffer.from([0x7b, 0xff, 0x7d]), Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(cancel)])]) {
      expect(parsePayload(cancelPayload, bytes).ok).toBe(false);
      expect(parseOutboundPayload(bytes).ok).toBe(false);
    }
    expect(parsePayload(cancelPayload, Buffer.from(cancel)).ok).toBe(true);
    expect(parseOutboundPayload(Buffer.from(cancel)).ok).toBe(true);
  });
});
