import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  africasTalkingBaseUrl,
  classifyRecipientStatus,
  createAfricasTalkingProvider,
} from "../../api/providers/africastalking-provider.js";
import { startFakeAfricasTalking, type FakeAfricasTalking } from "../support/fake-africastalking.js";
import { expectPromptTimeout, failure } from "../support/provider-failure.js";

const username = "otpgate";
const apiKey = "atsk_test_key";
const msg = { jobId: "job-1", to: "+254711000111", body: "Your code is 123456" };

function recipientsReply(statusCode: number, status: string) {
  return {
    status: 201,
    body: {
      SMSMessageData: {
        Message: "Sent to 0/1 Total Cost: 0",
        Recipients: [{ statusCode, number: msg.to, status, cost: "0", messageId: "None" }],
      },
    },
  };
}

describe("africastalking base URL", () => {
  it("selects sandbox, live or an explicit base", () => {
    expect(africasTalkingBaseUrl({ username: "sandbox" })).toBe("https://api.sandbox.africastalking.com");
    expect(africasTalkingBaseUrl({ username: "acme" })).toBe("https://api.africastalking.com");
    expect(africasTalkingBaseUrl({ username: "sandbox", apiBase: "http://127.0.0.1:9/" })).toBe("http://127.0.0.1:9");
  });

  it("classifies recipient status codes", () => {
    expect([100, 101, 102].map(classifyRecipientStatus)).toEqual(["success", "success", "success"]);
    expect([401, 402, 403, 404, 406, 407, 409].map(classifyRecipientStatus)).toEqual(Array(7).fill("permanent"));
    expect([405, 500, 501, 502].map(classifyRecipientStatus)).toEqual(Array(4).fill("transient"));
  });
});

describe("africastalking provider", () => {
  let fake: FakeAfricasTalking;
  const signal = () => new AbortController().signal;

  beforeEach(async () => {
    fake = await startFakeAfricasTalking({ username, apiKey });
  });
  afterEach(async () => {
    await fake.close();
  });

  it("posts username/to/message/from with the apiKey and returns the messageId", async () => {
    const provider = createAfricasTalkingProvider({ username, apiKey, from: "OTPGATE", apiBase: fake.baseUrl });
    const receipt = await provider.send(msg, signal());
    // The fake answers 401 unless the apiKey header and username field match (see below).
    expect(fake.received).toEqual([{ to: msg.to, message: msg.body, from: "OTPGATE", username }]);
    expect(receipt.providerMessageId).toMatch(/^ATXid_[0-9a-f]{32}$/);
    expect(receipt.providerStatus).toBe("Success");
  });

  it("leaves out `from` when none is configured", async () => {
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    await provider.send(msg, signal());
    expect(fake.received).toEqual([{ to: msg.to, message: msg.body, username }]);
  });

  it("a wrong apiKey or username is permanent africastalking:401", async () => {
    for (const creds of [
      { username, apiKey: "wrong" },
      { username: "someone-else", apiKey },
    ]) {
      const provider = createAfricasTalkingProvider({ ...creds, apiBase: fake.baseUrl });
      const err = await failure(provider.send(msg, signal()));
      expect([err.kind, err.code]).toEqual(["permanent", "africastalking:401"]);
    }
    expect(fake.received).toHaveLength(0);
  });

  it("an invalid number is permanent with the recipient's status code", async () => {
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    const err = await failure(provider.send({ ...msg, to: "07-not-a-number" }, signal()));
    expect([err.kind, err.code]).toEqual(["permanent", "africastalking:403"]);
    expect(fake.received).toHaveLength(0);
  });

  it("an empty Recipients list is permanent", async () => {
    fake.respondWith(() => ({ status: 201, body: { SMSMessageData: { Message: "InvalidPhoneNumber", Recipients: [] } } }));
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect(err.kind).toBe("permanent");
    expect(err.message).toContain("InvalidPhoneNumber");
  });

  it("recipient-level failures map to permanent or transient", async () => {
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    fake.respondWith(() => recipientsReply(406, "UserInBlacklist"));
    const blacklisted = await failure(provider.send(msg, signal()));
    expect([blacklisted.kind, blacklisted.code]).toEqual(["permanent", "africastalking:406"]);

    fake.respondWith(() => recipientsReply(405, "InsufficientBalance"));
    const broke = await failure(provider.send(msg, signal()));
    expect([broke.kind, broke.code]).toEqual(["transient", "africastalking:405"]);
  });

  it("HTTP 500 is transient", async () => {
    fake.respondWith(() => ({ status: 500, body: "Internal Server Error" }));
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect([err.kind, err.code]).toEqual(["transient", "africastalking:500"]);
  });

  it("a slow API fails as transient 'timeout' near timeoutMs", async () => {
    fake.delayMs = 3000;
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl, timeoutMs: 300 });
    await expectPromptTimeout(() => provider.send(msg, signal()), 250);
  });

  it("the caller's AbortSignal ends the send promptly", async () => {
    fake.delayMs = 3000;
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("dispatcher gave up")), 200);
    await expectPromptTimeout(() => provider.send(msg, controller.signal));
  });

  it("an unreachable API is transient", async () => {
    await fake.close();
    const provider = createAfricasTalkingProvider({ username, apiKey, apiBase: fake.baseUrl });
    const err = await failure(provider.send(msg, signal()));
    expect([err.kind, err.code]).toEqual(["transient", "africastalking:network"]);
    fake = await startFakeAfricasTalking({ username, apiKey }); // for afterEach
  });
});
