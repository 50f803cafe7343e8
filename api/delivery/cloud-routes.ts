/** Adapts the cloud providers to the dispatcher's DeliveryRoute. */
import type { EmailProvider, SmsProvider } from "../providers/provider.js";
import type { DeliveryRoute } from "./dispatcher.js";

export function smsRoute(provider: SmsProvider): DeliveryRoute {
  return {
    name: provider.route,
    channel: "sms",
    deliver: (job, text, signal) => provider.send({ jobId: job.id, to: job.to!, body: text }, signal),
  };
}

/** `fallbackSubject` for a job without one of its own (OTP jobs carry their localised subject). */
export function emailRoute(provider: EmailProvider, fallbackSubject: string): DeliveryRoute {
  return {
    name: "email",
    channel: "email",
    deliver: (job, text, signal) =>
      provider.send({ jobId: job.id, to: job.email!, subject: job.subject ?? fallbackSubject, text }, signal),
  };
}
