/**
 * Who may publish and subscribe to what (DESIGN.md, security rules). Pure:
 * the broker's hooks ask these functions and log the reason of every refusal.
 *
 * - A device subscribes only to `sms/out/<own id>` (no wildcards) and publishes
 *   only to `sms/ack/<own id>` and `sms/device/<own id>`.
 * - A publisher publishes to `sms/send` and `sms/out/<device id>`; it subscribes to nothing.
 * - Everything else is refused.
 */
import { parseTopic } from "./topics.js";

export type MqttPrincipal = { kind: "device"; deviceId: string } | { kind: "publisher"; name: string };

export type Decision = { allowed: true } | { allowed: false; reason: string };

const allow: Decision = { allowed: true };
const deny = (reason: string): Decision => ({ allowed: false, reason });

export function canPublish(principal: MqttPrincipal, topic: string): Decision {
  const parsed = parseTopic(topic);
  if (!parsed) return deny(`${topic} is not an otpgate topic`);
  if (principal.kind === "publisher") {
    return parsed.kind === "send" || parsed.kind === "out" ? allow : deny(`publishers may not publish to ${topic}`);
  }
  if (parsed.kind === "send" || parsed.kind === "out") return deny(`devices may not publish to ${topic}`);
  if (parsed.deviceId !== principal.deviceId) return deny(`device ${principal.deviceId} may not publish for device ${parsed.deviceId}`);
  return allow;
}

export function canSubscribe(principal: MqttPrincipal, topicFilter: string): Decision {
  if (principal.kind === "publisher") return deny("publishers may not subscribe");
  if (/[+#]/.test(topicFilter)) return deny(`devices may not use wildcards (${topicFilter})`);
  const parsed = parseTopic(topicFilter);
  if (parsed?.kind !== "out" || parsed.deviceId !== principal.deviceId) {
    return deny(`device ${principal.deviceId} may subscribe only to sms/out/${principal.deviceId}, not ${topicFilter}`);
  }
  return allow;
}
