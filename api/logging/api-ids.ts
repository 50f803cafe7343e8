/**
 * Log lines about a job name it by `jobId`, the delivery job's own id. For a
 * message that is the id the REST API shows; an OTP's job has an id of its
 * own, which no caller ever sees. This remembers, for the jobs this node
 * touches, which API id each job id belongs to, and adds it (`otpId` or
 * `messageId`) to every line that carries a `jobId`.
 */
import type { Job } from "../delivery/job-state.js";
import type { Store } from "../store/store.js";

/** Jobs remembered at once; the oldest are forgotten first (a line about them then lacks the API id). */
const REMEMBERED_JOBS = 20_000;

type ApiId = { otpId: string } | { messageId: string };

export class ApiIds {
  private readonly byJobId = new Map<string, ApiId>();

  constructor(private readonly capacity = REMEMBERED_JOBS) {}

  remember(job: Pick<Job, "id" | "kind" | "otpId"> | null | undefined): void {
    if (!job) return;
    const apiId: ApiId = job.kind === "otp" && job.otpId ? { otpId: job.otpId } : { messageId: job.id };
    // Re-inserted, so the Map's order is least recently seen first.
    this.byJobId.delete(job.id);
    this.byJobId.set(job.id, apiId);
    if (this.byJobId.size > this.capacity) this.byJobId.delete(this.byJobId.keys().next().value!);
  }

  of(jobId: string): ApiId | undefined {
    return this.byJobId.get(jobId);
  }

  /** A pino `formatters.log`: a line with a known `jobId` gets its API id too. */
  readonly annotate = (line: object): object => {
    const jobId = (line as { jobId?: unknown }).jobId;
    if (typeof jobId !== "string" || "otpId" in line || "messageId" in line) return line;
    const apiId = this.byJobId.get(jobId);
    // The API id first: it is what an operator searches for.
    return apiId ? { ...apiId, ...line } : line;
  };

  /**
   * The store as the delivery side sees it, noting every job it reads or
   * writes: a job taken over from another node, or from before a restart, is
   * read before anything is logged about it.
   */
  watching(store: Store): Store {
    const remember = (job: Job | null) => {
      this.remember(job);
      return job;
    };
    return new Proxy(store, {
      get: (target, property) => {
        if (property === "getJob") return (id: string) => target.getJob(id).then(remember);
        if (property === "updateJob") return (id: string, change: (job: Job) => Job | null) => target.updateJob(id, change).then(remember);
        if (property === "createJob") {
          return (job: Job, ttlSeconds: number) => {
            this.remember(job);
            return target.createJob(job, ttlSeconds);
          };
        }
        const value: unknown = Reflect.get(target, property);
        // Methods run on the store itself, so private fields (#…) and `this` work as before.
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
  }
}
