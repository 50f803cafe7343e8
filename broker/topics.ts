/** The MQTT topics of DESIGN.md, built and parsed in one place. */

export const SEND_TOPIC = "sms/send";

export const topicFor = {
  out: (deviceId: string) => `sms/out/${deviceId}`,
  ack: (deviceId: string) => `sms/ack/${deviceId}`,
  device: (deviceId: string) => `sms/device/${deviceId}`,
};

export type ParsedTopic = { kind: "out" | "ack" | "device"; deviceId: string } | { kind: "send" } | null;

/** Device ids are one topic level of plain characters: no wildcards, separators or `$`. */
export const DEVICE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export function parseTopic(topic: string): ParsedTopic {
  if (topic === SEND_TOPIC) return { kind: "send" };
  const match = /^sms\/(out|ack|device)\/([^/]+)$/.exec(topic);
  if (!match || !DEVICE_ID_PATTERN.test(match[2]!)) return null;
  return { kind: match[1] as "out" | "ack" | "device", deviceId: match[2]! };
}

/** The longest otpgate topic in UTF-8 bytes: `sms/device/` and a 64-character device id. */
export const MAX_TOPIC_BYTES = "sms/device/".length + 64;
