import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createEmailProvider } from "../../api/providers/email-provider.js";
import type { EmailProvider } from "../../api/providers/provider.js";
import { expectPromptTimeout, failure } from "../support/provider-failure.js";
import { startSmtpSink, type SmtpSink } from "../support/smtp-sink.js";

const from = "otpgate@example.test";
const msg = { jobId: "job-1", to: "alice@example.test", subject: "Your otpgate code", text: "Your code is 123456" };

/** A TCP server that accepts connections and never says a word: an SMTP server that hangs. */
async function startSilentServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => sockets.add(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `smtp://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

describe("email provider", () => {
  const cleanup: Array<() => Promise<void>> = [];
  const signal = () => new AbortController().signal;

  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function setup(sinkOpts?: { rejectRecipients?: RegExp }): Promise<[SmtpSink, EmailProvider]> {
    const sink = await startSmtpSink(sinkOpts);
    cleanup.push(() => sink.close());
    const provider = createEmailProvider({ smtpUrl: sink.url, from });
    cleanup.push(async () => provider.close?.());
    return [sink, provider];
  }

  it("delivers from/to/subject/text over plain SMTP and returns the Message-ID", async () => {
    const [sink, provider] = await setup();
    const receipt = await provider.send(msg, signal());
    const got = await sink.waitForMessage((m) => m.to.includes(msg.to));
    expect(got).toEqual({ to: [msg.to], from, subject: msg.subject, text: msg.text });
    expect(receipt.providerMessageId).toMatch(/^<.+@.+>$/);
    expect(receipt.providerStatus).toMatch(/^250 /);
  });

  it("a rejected recipient (550) is permanent email:550", async () => {
    const [sink, provider] = await setup({ rejectRecipients: /^blocked@/ });
    const err = await failure(provider.send({ ...msg, to: "blocked@example.test" }, signal()));
    expect([err.kind, err.code]).toEqual(["permanent", "email:550"]);
    expect(sink.messages).toHaveLength(0);
  });

  it("a server that never greets fails as transient 'timeout' near timeoutMs", async () => {
    const silent = await startSilentServer();
    cleanup.push(() => silent.close());
    const provider = createEmailProvider({ smtpUrl: silent.url, from, timeoutMs: 300 });
    await expectPromptTimeout(() => provider.send(msg, signal()), 250);
  });

  it("the caller's AbortSignal ends the send promptly", async () => {
    const silent = await startSilentServer();
    cleanup.push(() => silent.close());
    const provider = createEmailProvider({ smtpUrl: silent.url, from });
    await expectPromptTimeout(() => provider.send(msg, AbortSignal.timeout(200)));
  });

  it("an unreachable server is transient", async () => {
    const silent = await startSilentServer();
    await silent.close(); // the port is now closed
    const provider = createEmailProvider({ smtpUrl: silent.url, from });
    const err = await failure(provider.send(msg, signal()));
    expect([err.kind, err.code]).toEqual(["transient", "email:network"]);
  });

  it("the sink's waitForMessage times out when nothing matches", async () => {
    const [sink] = await setup();
    await expect(sink.waitForMessage(() => true, 100)).rejects.toThrow(/no matching message/);
  });
});
