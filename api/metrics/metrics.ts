/**
 * Prometheus metrics. One registry per app instance (no prom-client global),
 * so tests can build several apps in one process. Labels never carry numbers,
 * codes or keys.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export interface Metrics {
  registry: Registry;
  /** Route attempts: route = device|twilio|africastalking|email, outcome = sent|failed|timeout. */
  sends: Counter<"route" | "outcome">;
  /** Jobs that ended: state = sent|delivered|failed|expired. */
  jobsSettled: Counter<"kind" | "state">;
  jobsTakenOver: Counter;
  verifications: Counter<"outcome">;
  otpIssued: Counter<"channel" | "outcome">;
  httpDuration: Histogram<"method" | "route" | "status">;
  /** Jobs from MQTT publishers: kind = send|direct. */
  mqttIntake: Counter<"kind" | "outcome">;
  /** Acks from phones: status, and whether they changed the job (applied) or came late/duplicate. */
  deviceAcks: Counter<"status" | "outcome">;
  mqttRefusals: Counter<"what">;
  /** Connections the broker's admission control closed: reason = node_limit, source_limit, login_backoff, connect_too_large, … */
  mqttConnectionsRefused: Counter<"reason">;
  callbacks: Counter<"outcome">;
  deliveryDuration: Histogram<"route" | "outcome">;
  /** Sends the fraud guard refused: reason = its error code, kind = otp|message|direct (a publisher's job to a phone). */
  fraudRefusals: Counter<"reason" | "kind">;
  /** Conversion-watch holds per prefix (a calling code, never a number): event = tripped|recovered|cleared. */
  fraudHolds: Counter<"prefix" | "event">;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "otpgate_" });
  const registers = [registry];
  return {
    registry,
    sends: new Counter({ name: "otpgate_route_attempts_total", help: "Delivery attempts by route and outcome", labelNames: ["route", "outcome"], registers }),
    jobsSettled: new Counter({ name: "otpgate_jobs_settled_total", help: "Jobs that reached a final state", labelNames: ["kind", "state"], registers }),
    jobsTakenOver: new Counter({ name: "otpgate_jobs_taken_over_total", help: "Jobs this node took over after their lease lapsed", registers }),
    verifications: new Counter({ name: "otpgate_verifications_total", help: "OTP checks by outcome", labelNames: ["outcome"], registers }),
    otpIssued: new Counter({ name: "otpgate_otp_issued_total", help: "OTP requests by channel and outcome", labelNames: ["channel", "outcome"], registers }),
    mqttIntake: new Counter({ name: "otpgate_mqtt_intake_total", help: "Jobs published by MQTT publishers", labelNames: ["kind", "outcome"], registers }),
    deviceAcks: new Counter({ name: "otpgate_device_acks_total", help: "Acks from phones", labelNames: ["status", "outcome"], registers }),
    mqttRefusals: new Counter({ name: "otpgate_mqtt_refusals_total", help: "Connections, publishes and subscriptions the broker refused", labelNames: ["what"], registers }),
    mqttConnectionsRefused: new Counter({ name: "otpgate_mqtt_connections_refused_total", help: "MQTT connections closed by admission control, by reason", labelNames: ["reason"], registers }),
    callbacks: new Counter({ name: "otpgate_callbacks_total", help: "Status callback deliveries by outcome", labelNames: ["outcome"], registers }),
    httpDuration: new Histogram({
      name: "otpgate_http_request_duration_seconds",
      help: "HTTP request latency",
      labelNames: ["method", "route", "status"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    fraudRefusals: new Counter({ name: "otpgate_fraud_refusals_total", help: "Sends the fraud guard refused, by reason", labelNames: ["reason", "kind"], registers }),
    fraudHolds: new Counter({ name: "otpgate_fraud_holds_total", help: "Prefixes held back by the conversion watch, and holds lifted", labelNames: ["prefix", "event"], registers }),
    deliveryDuration: new Histogram({
      name: "otpgate_delivery_duration_seconds",
      help: "Time a route took to accept a message",
      labelNames: ["route", "outcome"],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    }),
  };
}
