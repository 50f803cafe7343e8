/**
 * The MyOtp socket's shutdown when a frame outlasts the drain window. The
 * message service here is a stand-in that takes its time on purpose: a real
 * store cannot be made to stall for 5 s on cue, and what is tested is the
 * socket's ordering of replies, not the service.
 */
import Fastify from "fastify";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket from "ws";
import type { MessageService } from "../../api/delivery/message-service.js";
import { attachMyOtpSocket, MYOTP_PATH } from "../../api/http/routes/myotp-socket.js";
import { createMetrics } from "../../api/metrics/metrics.js";

const apps: { close(): Promise<unknown> }[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close().catch(() => undefined);
});

describe("MyOtp socket shutdown", () => {
  it("answers a frame still running at the drain deadline before the shutting_down replies of the frames behind it", { timeout: 20_000 }, async () => {
    let sends = 0;
    const messages = {
      send: async () => {
        sends++;
        // Past the 5 s drain window, within the 1 s grace after it.
        await new Promise((resolve) => setTimeout(resolve, 5_400));
        return { id: "job-1", status: "queued" };
      },
    } as unknown as MessageService;
    const app = Fastify();
    apps.push(app);
    attachMyOtpSocket(app, {
      authenticate: async () => ({ id: "k1", name: "sender", scopes: ["messages"] }),
      messages,
      metrics: createMetrics(),
      logger: pino({ level: "silent" }),
      authTimeoutMs: 5_000,
      idleTimeoutMs: 60_000,
    });
    await app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = app.server.address() as { port: number };
    const ws = new WebSocket(`ws://127.0.0.1:${port}${MYOTP_PATH}`, { headers: { authorization: "Bearer any" } });
    const replies: unknown[] = [];
    ws.on("message", (data) => replies.push(JSON.parse(data.toString())));
    const closed = new Promise<number>((resolve) => ws.once("close", (code) => resolve(code)));
    await new Promise((resolve) => ws.once("open", resolve));
    for (let i = 1; i <= 3; i++) ws.send(JSON.stringify({ cell: "+258840000001", message: `frame ${i}` }));
    // Let the three frames be read before the node stops.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await app.close();
    expect(await closed).toBe(1001);
    expect(sends).toBe(1);
    expect(replies).toEqual([
      { id: "job-1", status: "queued" },
      { error: expect.objectContaining({ code: "shutting_down" }) },
      { error: expect.objectContaining({ code: "shutting_down" }) },
    ]);
  });
});
