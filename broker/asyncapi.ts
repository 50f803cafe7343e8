/**
 * The MQTT contract (DESIGN.md, "MQTT contract") as an AsyncAPI 3.0 document,
 * served beside the OpenAPI one. The payload schemas are generated from the
 * zod schemas of payloads.ts, the rules the broker applies, so the document
 * cannot describe a payload the broker would judge differently; the topic
 * addresses come from topics.ts and the examples are checked against the same
 * schemas by test/mqtt/asyncapi.test.ts.
 */
import { z } from "zod";
import {
  ackPayload,
  cancelPayload,
  deviceStatusPayload,
  jobPayload,
  MAX_PAYLOAD_BYTES,
  sendPayload,
} from "./payloads.js";
import { SEND_TOPIC, topicFor } from "./topics.js";

export interface AsyncApiServer {
  /** host[:port] */
  host: string;
  protocol: "mqtt" | "mqtts" | "ws" | "wss";
  pathname?: string;
  description: string;
}

/** A payload schema in the JSON Schema draft the AsyncAPI 3.0 Schema Object extends (draft-07). */
function payloadSchema(schema: z.ZodType): Record<string, unknown> {
  // Input side: what a client writes on the wire (`at` is read leniently and normalised afterwards).
  const { $schema: _ignored, ...json } = z.toJSONSchema(schema, { target: "draft-7", io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return json;
}

const PARAMETER = { deviceId: { description: "The device id: 1 to 64 of A-Z a-z 0-9 _ -, equal to the MQTT username and client id." } };
/** Examples shown in the document; the test parses each with the schema its message names. */
export const ASYNCAPI_EXAMPLES = {
  job: { id: "job_7Hq2", to: "+254700000001", body: "Your code is 482913", expiresAt: "2030-01-01T00:05:00Z" },
  cancel: { id: "job_7Hq2", cancel: true },
  ackSent: { id: "job_7Hq2", status: "sent", at: "2030-01-01T00:00:03Z" },
  ackFailed: { id: "job_7Hq2", status: "failed", error: "RESULT_ERROR_NO_SERVICE", at: 1893456003000 },
  statusOnline: { online: true, battery: 87, signal: 3, sims: [{ slot: 0, carrier: "Safaricom" }], app: "otpgate-android 1.0", at: "2030-01-01T00:00:00Z" },
  statusOffline: { online: false },
  send: { id: "order-1042", to: "+254700000001", body: "Your order has shipped" },
} as const;

const example = (name: string, payload: unknown) => [{ name, payload }];

/** The document for a gateway reachable at `servers`. */
export function asyncApiDocument(options: { version: string; servers: Record<string, AsyncApiServer> }): Record<string, unknown> {
  const message = (title: string, summary: string, schema: z.ZodType, examples: { name: string; payload: unknown }[]) => ({
    name: title,
    title,
    summary,
    contentType: "application/json",
    payload: payloadSchema(schema),
    examples,
  });
  return {
    asyncapi: "3.0.0",
    info: {
      title: "otpgate MQTT",
      version: options.version,
      description:
        "MQTT 3.1.1 between otpgate and its phones and publishers. Username = device id or publisher name, password = its token. " +
        "Phones connect with cleanSession=false, a client id equal to the device id and keepalive ≤ 60 s. Every payload is UTF-8 JSON of at most " +
        `${MAX_PAYLOAD_BYTES} bytes; anything else is refused and logged. A device may subscribe only to sms/out/<own id> (no wildcards) and publish ` +
        "only to sms/ack/<own id> and sms/device/<own id>; a publisher may publish to sms/send and sms/out/<device id> and subscribes to nothing.",
    },
    defaultContentType: "application/json",
    servers: Object.fromEntries(
      Object.entries(options.servers).map(([name, server]) => [
        name,
        { ...server, security: [{ $ref: "#/components/securitySchemes/token" }] },
      ]),
    ),
    channels: {
      jobs: {
        address: topicFor.out("{deviceId}"),
        title: "Jobs for one phone",
        description: "The gateway (or a publisher) hands a phone an SMS to send, or takes one back. QoS 1, kept in the phone's session while it is offline.",
        parameters: PARAMETER,
        messages: {
          job: message("job", "An SMS to send before expiresAt", jobPayload, example("job", ASYNCAPI_EXAMPLES.job)),
          cancel: message("cancel", "Do not send this job (it failed over or was withdrawn)", cancelPayload, example("cancel", ASYNCAPI_EXAMPLES.cancel)),
        },
      },
      acks: {
        address: topicFor.ack("{deviceId}"),
        title: "A phone's word on its jobs",
        description:
          "QoS 1. Only id and status are required; at may be missing, RFC 3339, or epoch seconds or milliseconds, and the gateway's clock decides. " +
          "The gateway sends the PUBACK only once its store holds the ack, and ignores repeats.",
        parameters: PARAMETER,
        messages: {
          ack: message("ack", "received, sent, delivered, or failed with an error", ackPayload, [
            ...example("sent", ASYNCAPI_EXAMPLES.ackSent),
            ...example("failed, at in epoch ms", ASYNCAPI_EXAMPLES.ackFailed),
          ]),
        },
      },
      status: {
        address: topicFor.device("{deviceId}"),
        title: "A phone's status",
        description: "QoS 1, retained. The will message, published by the broker when the connection is lost, is {\"online\":false}. SIM numbers given as text are masked on the way in.",
        parameters: PARAMETER,
        messages: {
          status: message("status", "Online with what the phone knows of itself, or offline", deviceStatusPayload, [
            ...example("online", ASYNCAPI_EXAMPLES.statusOnline),
            ...example("offline (the will)", ASYNCAPI_EXAMPLES.statusOffline),
          ]),
        },
      },
      send: {
        address: SEND_TOPIC,
        title: "SMS from publishers",
        description: "QoS 1. Routed like POST /v1/messages: a phone first, then the cloud routes of FAILOVER_ORDER. A repeated id is one job.",
        messages: { send: message("send", "A plain SMS", sendPayload, example("send", ASYNCAPI_EXAMPLES.send)) },
      },
    },
    operations: {
      receiveJobs: { action: "receive", title: "A phone receives its jobs", channel: { $ref: "#/channels/jobs" }, messages: [{ $ref: "#/channels/jobs/messages/job" }, { $ref: "#/channels/jobs/messages/cancel" }] },
      sendAcks: { action: "send", title: "A phone acknowledges a job", channel: { $ref: "#/channels/acks" }, messages: [{ $ref: "#/channels/acks/messages/ack" }] },
      sendStatus: { action: "send", title: "A phone reports its status", channel: { $ref: "#/channels/status" }, messages: [{ $ref: "#/channels/status/messages/status" }] },
      publishSms: { action: "send", title: "A publisher hands the gateway an SMS", channel: { $ref: "#/channels/send" }, messages: [{ $ref: "#/channels/send/messages/send" }] },
    },
    components: {
      securitySchemes: {
        token: { type: "userPassword", description: "MQTT username = device id or publisher name; password = the token given at provisioning (stored by the gateway only as a digest)." },
      },
    },
  };
}
