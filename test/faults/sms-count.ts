/**
 * Counts every SMS per job, wherever it left (a simulated phone or the
 * counting Twilio stand-in), and sorts the doubles by why they happened, so a
 * fault test can assert the ones that must never happen and report the ones
 * nobody can avoid.
 */
import type { Job } from "../../api/delivery/job-state.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import type { FakeTwilio } from "../support/fake-twilio.js";

export interface JobCount {
  id: string;
  phones: number;
  cloud: number;
}

export interface CountReport {
  perJob: JobCount[];
  /** Jobs that left more than once although the store recorded a phone's `sent` in time: never allowed. */
  doubledAfterSent: string[];
  /** Jobs a phone sent whose `sent` reached the store only after the gateway had moved on (a late ack): by nature. */
  doubledLateAck: string[];
  /** Jobs a phone sent and never acked before the job went elsewhere (the phone, or its node, died first): by nature. */
  doubledUnacked: string[];
  /** Jobs that went out twice with no phone involved: a cloud attempt whose node died after the provider took it. */
  doubledInCloud: string[];
  /** Settled as sent, yet nothing left. */
  lost: string[];
}

/** `bodyOf` maps a job id to its unique body, which is how Twilio's copies are traced. */
export function countSms(jobs: Map<string, Job>, bodyOf: Map<string, string>, phones: SimulatedPhone[], twilio: FakeTwilio): CountReport {
  const idByBody = new Map([...bodyOf].map(([id, body]) => [body, id]));
  const phoneSends = new Map<string, number>();
  for (const phone of phones) for (const sms of phone.sent) phoneSends.set(sms.id, (phoneSends.get(sms.id) ?? 0) + 1);
  const cloudSends = new Map<string, number>();
  for (const sms of twilio.received) {
    const id = idByBody.get(sms.body);
    if (id) cloudSends.set(id, (cloudSends.get(id) ?? 0) + 1);
  }
  const report: CountReport = { perJob: [], doubledAfterSent: [], doubledLateAck: [], doubledUnacked: [], doubledInCloud: [], lost: [] };
  for (const [id, job] of jobs) {
    const count = { id, phones: phoneSends.get(id) ?? 0, cloud: cloudSends.get(id) ?? 0 };
    report.perJob.push(count);
    const total = count.phones + count.cloud;
    if (total === 0 && (job.state === "sent" || job.state === "delivered")) report.lost.push(id);
    if (total <= 1) continue;
    const deviceSentInTime = job.attempts.some((a) => a.route.startsWith("device:") && (a.state === "sent" || a.state === "delivered"));
    const lateSent = job.attempts.some((a) => a.route.startsWith("device:") && (a.late?.status === "sent" || a.late?.status === "delivered"));
    if (deviceSentInTime && count.cloud > 0) report.doubledAfterSent.push(id);
    else if (count.phones === 0) report.doubledInCloud.push(id);
    else if (lateSent) report.doubledLateAck.push(id);
    else if (count.phones > 1) report.doubledAfterSent.push(id);
    else report.doubledUnacked.push(id);
  }
  return report;
}

/** One line for the test output: what left how often, and the doubles by cause. */
export function describeCount(label: string, report: CountReport): string {
  const phones = report.perJob.reduce((sum, c) => sum + c.phones, 0);
  const cloud = report.perJob.reduce((sum, c) => sum + c.cloud, 0);
  return (
    `${label}: ${report.perJob.length} jobs, ${phones} SMS by phones, ${cloud} by Twilio; doubles: ` +
    `${report.doubledAfterSent.length} after a recorded sent (never allowed), ` +
    `${report.doubledLateAck.length} by a phone whose sent came after its deadline, ` +
    `${report.doubledUnacked.length} by a phone that sent but never acked in time, ` +
    `${report.doubledInCloud.length} by a cloud call cut short; ${report.lost.length} recorded sent but never left`
  );
}
