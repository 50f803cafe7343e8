import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createTwilioProvider } from "../../api/providers/twilio-provider.js";
import { startFakeTwilio, type FakeTwilio } from "../support/fake-twilio.js";
import { expectPromptTimeout, failure } from "../support/provider-failure.js";

const accountSid = `AC${"a1".repeat(16)}`;
const authToken = "secret-token";
const from = "+15005550006";
const msg = { jobId: "job-1", to: "+254711000111", body: "Your code is 123456" };

describe("twilio provider", () => {
  let fake: FakeTwilio;
  const signal = () => new AbortController().signal;

  beforeEach(async () => {
    fake = await startFakeTwilio({ accountSid, authToken });
  });
  afterEach(async () => {
    await fake.close();
  });

  it("sends To/From/Body with the account's credentials and returns the SID", async () => {
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });

    const receipt = await provider.send(msg, signal());

    // The fake answers 401 unless Basic auth is exactly accountSid:authToken (see the next test).
    expect(fake.received).toEqual([{ to: msg.to, from, body: msg.body, sid: expect.stringMatching(/^SM[0-9a-f]{32}$/) }]);
    expect(receipt).toEqual({ providerMessageId: fake.received[0]?.sid, providerStatus: "queued" });
  });

  it("wrong credentials are permanent twilio:20003", async () => {
    const provider = createTwilioProvider({ accountSid, authToken: "wrong", from, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect(err.kind).toBe("permanent");
    expect(err.code).toBe("twilio:20003");
    expect(fake.received).toHaveLength(0);
  });

  it("an invalid number is permanent twilio:21211 and the error text does not carry the number", async () => {
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });
    const err = await failure(provider.send({ ...msg, to: "+1234567890123456789" }, signal()));
    expect(err.kind).toBe("permanent");
    expect(err.code).toBe("twilio:21211");
    expect(err.message).not.toContain("1234567890123456789");
    expect(fake.received).toHaveLength(0);
  });

  it("an unsubscribed recipient (21610) is permanent", async () => {
    fake.respondWith(() => ({
      status: 400,
      body: { code: 21610, message: "Attempt to send to unsubscribed recipient", more_info: "", status: 400 },
    }));
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect([err.kind, err.code]).toEqual(["permanent", "twilio:21610"]);
  });

  it("500 is transient and 429 is transient without an automatic retry", async () => {
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });
    fake.respondWith(() => ({ status: 500, body: { code: 20500, message: "Internal Server Error", status: 500 } }));
    const err500 = await failure(provider.send(msg, signal()));
    expect([err500.kind, err500.code]).toEqual(["transient", "twilio:20500"]);

    let calls = 0;
    fake.respondWith(() => {
      calls++;
      return { status: 429, body: { code: 20429, message: "Too Many Requests", status: 429 } };
    });
    const err429 = await failure(provider.send(msg, signal()));
    expect([err429.kind, err429.code]).toEqual(["transient", "twilio:20429"]);
    expect(calls).toBe(1);
  });

  it("a slow API fails as transient 'timeout' near timeoutMs", async () => {
    fake.delayMs = 3000;
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl, timeoutMs: 300 });
    await expectPromptTimeout(() => provider.send(msg, signal()), 250);
  });

  it("the caller's AbortSignal ends the send promptly", async () => {
    fake.delayMs = 3000;
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });
    await expectPromptTimeout(() => provider.send(msg, AbortSignal.timeout(200)));

    const aborted = new AbortController();
    aborted.abort();
    fake.delayMs = 0;
    const early = await failure(provider.send(msg, aborted.signal));
    expect(early.code).toBe("timeout");
    await new Promise((r) => setTimeout(r, 100));
    expect(fake.received).toHaveLength(1); // only the slow one; an already-aborted send never leaves
  });

  it("an unreachable API is transient", async () => {
    await fake.close();
    const provider = createTwilioProvider({ accountSid, authToken, from, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect([err.kind, err.code]).toEqual(["transient", "twilio:network"]);
    fake = await startFakeTwilio({ accountSid, authToken }); // for afterEach
  });
});
