/**
 * The console's server parts on their own: the circuit watch, the latency
 * quantiles, the funnel's rows, the live hub's filtering, and the live
 * stream read as a client reads it (fetch with the key, no browser).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CircuitWatch } from "../../api/console/circuit-watch.js";
import { ConsoleEvents, type ConsoleEvent } from "../../api/console/console-events.js";
import { funnelEntry, summarise } from "../../api/console/funnel.js";
import { figures, quantile } from "../../api/console/route-stats.js";
import type { DeliveryRoute } from "../../api/delivery/dispatcher.js";
import { withBreaker } from "../../api/delivery/route-breaker.js";
import { newJob, type Job } from "../../api/delivery/job-state.js";
import { ProviderError } from "../../api/providers/provider.js";
import { ADMIN_KEY, codeIn, eventually, startGateway, type TestGateway } from "../support/gateway.js";
import { connectPhone, registerDevice } from "../support/phones.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";

function fakeRoute(outcomes: (() => Promise<unknown>)[]): DeliveryRoute {
  return {
    name: "twilio",
    channels: ["sms"],
    async deliver() {
      const next = outcomes.shift();
      if (!next) throw new Error("no outcome left");
      await next();
      return {};
    },
  } as unknown as DeliveryRoute;
}

const job = {} as Job;
const signal = new AbortController().signal;

describe("CircuitWatch", () => {
  it("reads open from a refusal, half-open past the reset time, and the probe's outcome", async () => {
    let now = 1_000_000;
    const watch = new CircuitWatch(30, () => now);
    const transient = () => Promise.reject(new ProviderError("503", "transient", "twilio:503"));
    const permanent = () => Promise.reject(new ProviderError("bad number", "permanent", "twilio:21211"));
    const refused = () => Promise.reject(new ProviderError("skipped", "transient", "circuit_open"));
    const ok = () => Promise.resolve();
    const route = watch.watch(fakeRoute([permanent, transient, transient, refused, transient, ok]));
    const call = () => route.deliver(job, "", signal, "twilio").catch(() => undefined);

    await call();
    await call();
    expect(watch.views()[0]).toMatchObject({ route: "twilio", state: "closed", since: null, recentCalls: 2, recentFailures: 1 });
    await call();
    await call();
    expect(watch.views()[0]).toMatchObject({ state: "open", since: new Date(1_000_000).toISOString(), refused: 1, recentFailures: 2 });
    now += 30_000;
    expect(watch.views()[0]!.state).toBe("half_open");
    // The probe fails: open again, from now.
    await call();
    expect(watch.views()[0]).toMatchObject({ state: "open", since: new Date(now).toISOString() });
    // Nothing refused this time: the call that got through after the reset was the next probe, and it worked.
    now += 30_000;
    await call();
    expect(watch.views()[0]).toMatchObject({ state: "closed", recentCalls: 1, recentFailures: 0 });
  });
});

describe("CircuitWatch around a real breaker", () => {
  it("shows the breaker's own state: open as soon as it opens, before any call is refused", async () => {
    const silent = { warn: () => undefined, info: () => undefined } as unknown as Parameters<typeof withBreaker>[1]["logger"];
    const watch = new CircuitWatch(1);
    const failing = fakeRoute(Array.from({ length: 3 }, () => () => Promise.reject(new ProviderError("503", "transient", "twilio:503"))));
    const route = watch.watch(withBreaker(failing, { minCalls: 3, resetSeconds: 1, logger: silent }));
    for (let i = 0; i < 3; i++) await route.deliver(job, "", signal, "twilio").catch(() => undefined);
    // The third failure opened the breaker; no call has been refused yet, so only the breaker can know.
    expect(watch.views()[0]).toMatchObject({ state: "open", refused: 0 });
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect(watch.views()[0]!.state).toBe("half_open");
  });
});

describe("route figures", () => {
  it("interpolates quantiles inside buckets and leaves the open bucket at its lower bound", () => {
    const buckets: [number, number][] = [
      [0.1, 50],
      [1, 90],
      [10, 100],
      [Number.POSITIVE_INFINITY, 100],
    ];
    expect(quantile(buckets, 0.5)).toBeCloseTo(0.1);
    expect(quantile(buckets, 0.25)).toBeCloseTo(0.05);
    expect(quantile(buckets, 0.95)).toBeCloseTo(5.5);
    expect(quantile([[1, 0], [Number.POSITIVE_INFINITY, 4]], 0.5)).toBe(1);
    expect(quantile([], 0.5)).toBeNull();
  });

  it("counts success among decided attempts only", () => {
    expect(figures({ outcomes: { sent: 3, failed: 1, skipped: 10 }, buckets: [], sum: 0, count: 0 }).successRate).toBe(0.75);
    expect(figures({ outcomes: { skipped: 2 }, buckets: [], sum: 0, count: 0 }).successRate).toBeNull();
  });
});

describe("funnel", () => {
  const at = new Date("2026-05-01T10:00:00Z");
  const jobWith = (route: string | null, state: Job["state"]): Job => ({
    ...newJob({ id: "j", kind: "otp", channel: "sms", to: "+254711222333", sealedBody: "x", expiresAt: at.toISOString() }, at),
    state,
    attempts: route ? [{ route, state: state === "failed" ? "failed" : "sent", at: at.toISOString() }] : [],
  });

  it("groups phones under device, numbers under their country, and never keeps a number", () => {
    const entries = [
      funnelEntry({ channel: "sms", to: "+254711222333", status: "approved" }, jobWith("device:dev_a1", "sent")),
      funnelEntry({ channel: "sms", to: "+254711222334", status: "pending" }, jobWith("device:dev_b2", "delivered")),
      funnelEntry({ channel: "sms", to: "+14155550100", status: "expired" }, jobWith("twilio", "failed")),
      funnelEntry({ channel: "email", status: "approved" }, jobWith("email", "sent")),
      funnelEntry({ channel: "sms", to: "+254711222335", status: "pending" }, null),
    ];
    expect(JSON.stringify(entries)).not.toContain("711222");
    const funnel = summarise(entries, { since: at.getTime() - 1000, until: at.getTime() }, false);
    expect(funnel.total).toEqual({ key: "all", issued: 5, delivered: 3, verified: 2 });
    expect(funnel.byRoute).toEqual([
      { key: "device", issued: 2, delivered: 2, verified: 1 },
      { key: "email", issued: 1, delivered: 1, verified: 1 },
      { key: "none", issued: 1, delivered: 0, verified: 0 },
      { key: "twilio", issued: 1, delivered: 0, verified: 0 },
    ]);
    expect(funnel.byCountry).toEqual([
      { key: "KE", issued: 3, delivered: 2, verified: 1 },
      { key: "email", issued: 1, delivered: 1, verified: 1 },
      { key: "US", issued: 1, delivered: 0, verified: 0 },
    ]);
  });
});

describe("ConsoleEvents", () => {
  it("passes a job on without its number or text, once per change, and remembers a phone's last error", () => {
    const events = new ConsoleEvents();
    const seen: ConsoleEvent[] = [];
    events.watch((event) => seen.push(event));
    const at = new Date("2026-05-01T10:00:00Z");
    const base = newJob({ id: "m1", kind: "message", channel: "sms", to: "+254711222333", sealedBody: "sealed-text", expiresAt: at.toISOString(), callbackUrl: "https://example.com/cb" }, at);
    const failed: Job = {
      ...base,
      state: "dispatched",
      updatedAt: "2026-05-01T10:00:01.000Z",
      attempts: [{ route: "device:dev_a1", state: "failed", at: "2026-05-01T10:00:01.000Z", error: "RESULT_ERROR_GENERIC_FAILURE" }],
    };
    events.jobChanged(failed);
    events.jobChanged(failed);
    expect(seen).toHaveLength(1);
    const shown = JSON.stringify(seen[0]);
    expect(shown).not.toContain("711222333");
    expect(shown).not.toContain("sealed-text");
    expect(shown).not.toContain("example.com");
    expect(seen[0]).toMatchObject({ type: "job", job: { id: "m1", state: "dispatched", route: "device:dev_a1" } });
    expect(events.lastErrorOf("dev_a1")).toEqual({ at: "2026-05-01T10:00:01.000Z", error: "RESULT_ERROR_GENERIC_FAILURE", jobId: "m1" });
    events.close();
  });
});

describe("the live stream", () => {
  let gw: TestGateway;
  let phone: SimulatedPhone;
  let closed = false;

  beforeAll(async () => {
    gw = await startGateway({ store: "memory", env: { FAILOVER_ORDER: "device" } });
  });
  afterAll(async () => {
    await phone?.close();
    if (!closed) await gw?.close();
  });

  it("carries presence and job changes, never a code, a text or a full number, and ends when the gateway stops", async () => {
    const device = await registerDevice(gw, { name: "stream phone" });
    const controller = new AbortController();
    const response = await fetch(`${gw.url}/console/api/events`, { headers: { authorization: `Bearer ${ADMIN_KEY}` }, signal: controller.signal });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/event-stream");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    let text = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of response.body!) text += decoder.decode(chunk as Uint8Array, { stream: true });
    })().catch(() => undefined);

    await eventually(async () => text.includes("event: hello") && text.includes(device.id), 5000, "hello with the device");
    phone = await connectPhone(gw, device, { latencyMs: 10 });
    await eventually(async () => /event: device\ndata: \{[^\n]*"online":true/.test(text), 5000, "the phone online");

    const otp = await gw.call("POST", "/v1/otp", { to: "+254711222339" });
    const message = await gw.call("POST", "/v1/messages", { to: "+254711222338", body: "stream body 4242" });
    await phone.waitFor(() => phone.sent.length === 2, 10_000);
    const code = codeIn(phone.sent.find((sms) => sms.to === "+254711222339")!.body);
    await eventually(async () => text.includes(`"otpId":"${otp.json.id}"`) && text.includes(`"id":"${message.json.id}","kind":"message"`) && (text.match(/"state":"sent"/g) ?? []).length >= 2, 10_000, "both jobs sent");

    expect(text).not.toContain(code);
    expect(text).not.toContain("stream body");
    expect(text).not.toContain("711222339");
    expect(text).not.toContain("711222338");
    expect(text).not.toContain("sealedBody");
    expect(text).not.toContain("tokenDigest");

    await phone.disconnect();
    await eventually(async () => /event: device\ndata: \{[^\n]*"online":false/.test(text), 5000, "the phone offline");
    // An open stream must not hold the server's close.
    closed = true;
    const closing = gw.close();
    await reading;
    await closing;
    controller.abort();
  });
});
