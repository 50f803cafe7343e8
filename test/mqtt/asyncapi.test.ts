import { afterAll, beforeAll, describe, expect, it } from "vitest";
import mqtt from "mqtt";
import { startGateway, type TestGateway } from "../support/gateway.js";
import { Ajv } from "ajv";
import addFormats from "ajv-formats";
import specs from "@asyncapi/specs";
import { asyncApiDocument, ASYNCAPI_EXAMPLES } from "../../broker/asyncapi.js";
import { ackPayload, cancelPayload, deviceStatusPayload, jobPayload, parsePayload, sendPayload } from "../../broker/payloads.js";
import { topicFor } from "../../broker/topics.js";

const document = asyncApiDocument({
  version: "1.2.3",
  servers: { phones: { host: "gateway.example:8883", protocol: "mqtts", description: "phones" } },
});

type Channels = Record<string, { address: string; messages: Record<string, { payload: object; examples: { payload: unknown }[] }> }>;
const channels = document.channels as Channels;

describe("the AsyncAPI document of the MQTT contract", () => {
  it("is a valid AsyncAPI 3.0 document by the specification's own JSON Schema", () => {
    // The specification bundles its own copy of the draft-07 meta-schema, which would clash with Ajv's.
    const ajv = new Ajv({ strict: false, allErrors: true, meta: false, validateSchema: false });
    addFormats.default(ajv);
    const validate = ajv.compile(specs.schemas["3.0.0"] as object);
    const valid = validate(document);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // The validator is not blind: a document without channels' addresses typed right fails.
    expect(validate({ ...document, channels: { jobs: { address: 42 } } })).toBe(false);
    // Nor is it blind to AsyncAPI 2 habits: operations are "send" or "receive" in 3.0, not "publish".
    const operations = document.operations as Record<string, object>;
    expect(validate({ ...document, operations: { ...operations, sendAcks: { ...operations.sendAcks, action: "publish" } } })).toBe(false);
  });

  it("names the topics topics.ts builds", () => {
    expect(channels.jobs!.address.replace("{deviceId}", "phone-1")).toBe(topicFor.out("phone-1"));
    expect(channels.acks!.address.replace("{deviceId}", "phone-1")).toBe(topicFor.ack("phone-1"));
    expect(channels.status!.address.replace("{deviceId}", "phone-1")).toBe(topicFor.device("phone-1"));
    expect(channels.send!.address).toBe("sms/send");
  });

  it("gives examples the broker accepts, each under the schema of its message", () => {
    const cases = [
      [channels.jobs!.messages.job!, jobPayload],
      [channels.jobs!.messages.cancel!, cancelPayload],
      [channels.acks!.messages.ack!, ackPayload],
      [channels.status!.messages.status!, deviceStatusPayload],
      [channels.send!.messages.send!, sendPayload],
    ] as const;
    let examples = 0;
    for (const [message, schema] of cases) {
      for (const { payload } of message.examples) {
        expect(parsePayload(schema as never, JSON.stringify(payload))).toMatchObject({ ok: true });
        examples++;
      }
    }
    expect(examples).toBe(Object.keys(ASYNCAPI_EXAMPLES).length);
  });

  it("carries the broker's payload rules as JSON Schema: what the broker refuses, the schema refuses", () => {
    const ajv = new Ajv({ strict: false });
    addFormats.default(ajv);
    const job = ajv.compile(channels.jobs!.messages.job!.payload);
    const ack = ajv.compile(channels.acks!.messages.ack!.payload);
    expect(job(ASYNCAPI_EXAMPLES.job)).toBe(true);
    const refused = [
      { ...ASYNCAPI_EXAMPLES.job, to: "0700000001" },
      { ...ASYNCAPI_EXAMPLES.job, expiresAt: "2030-01-01 00:05" },
      { ...ASYNCAPI_EXAMPLES.job, body: "" },
      { ...ASYNCAPI_EXAMPLES.job, sim: 8 },
    ];
    for (const payload of refused) {
      expect(job(payload)).toBe(false);
      expect(parsePayload(jobPayload, JSON.stringify(payload)).ok).toBe(false);
    }
    // Lenient where the broker is: an ack without `at`, or with epoch seconds, is accepted by both.
    for (const payload of [{ id: "j1", status: "sent" }, { id: "j1", status: "delivered", at: 1893456003 }]) {
      expect(ack(payload)).toBe(true);
      expect(parsePayload(ackPayload, JSON.stringify(payload)).ok).toBe(true);
    }
    expect(ack({ id: "j1", status: "failed" })).toBe(false);
    expect(parsePayload(ackPayload, JSON.stringify({ id: "j1", status: "failed" })).ok).toBe(false);
  });
});

describe("GET /docs/asyncapi.json on a running gateway", () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(async () => gw?.close());

  it("is public, valid, and names the listeners this gateway really has", async () => {
    const response = await fetch(`${gw.url}/docs/asyncapi.json`);
    expect(response.status).toBe(200);
    const served = (await response.json()) as { asyncapi: string; servers: Record<string, { host: string; protocol: string; pathname?: string }> };
    const ajv = new Ajv({ strict: false, meta: false, validateSchema: false });
    addFormats.default(ajv);
    expect(ajv.validate(specs.schemas["3.0.0"] as object, served)).toBe(true);
    expect(served.servers.phones).toMatchObject({ protocol: "mqtts", host: expect.stringMatching(new RegExp(`:${gw.mqtts}$`)) });
    expect(served.servers.local).toEqual(expect.objectContaining({ protocol: "mqtt", host: `127.0.0.1:${gw.mqtt}` }));
    const ws = served.servers.websocket!;
    expect(ws).toMatchObject({ protocol: "ws", pathname: "/mqtt", host: new URL(gw.url).host });
    // The document's WebSocket server is one an MQTT client can reach: a wrong password is refused by the broker, not a 404.
    const client = mqtt.connect(`${ws.protocol}://${ws.host}${ws.pathname}`, { username: "nobody", password: "wrong", reconnectPeriod: 0, connectTimeout: 5000 });
    const outcome = await new Promise<string>((resolve) => {
      client.once("error", (error) => resolve(error.message));
      client.once("connect", () => resolve("connected"));
    });
    client.end(true);
    expect(outcome).toMatch(/Not authorized|Bad username or password/i);
  });
});
