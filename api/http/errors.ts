/**
 * The error envelope: `{"error": {"code", "message"}}` with the right status,
 * for every failure, including the ones Fastify and its plugins raise.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: { field: string; message: string }[] };
}

/** Fastify's own error codes that are the client's fault, and what we call them. */
const FASTIFY_CLIENT_ERRORS: Record<string, [number, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, "invalid_json"],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, "invalid_json"],
  FST_ERR_CTP_BODY_TOO_LARGE: [413, "payload_too_large"],
  FST_ERR_CTP_INVALID_MEDIA_TYPE: [415, "unsupported_media_type"],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, "invalid_request"],
};

interface ZodIssueLike {
  path?: PropertyKey[];
  message?: string;
  errors?: ZodIssueLike[][];
}

/**
 * A failed union (such as `{to, body}` | `{cell, message}`) reports one issue list per
 * branch under a bare "Invalid input"; name the fields of the branch the caller came
 * closest to (fewest issues) instead, so a bad `to` is reported as a bad `to`.
 */
function describeIssue(field: string, message: string | undefined, unionBranches?: ZodIssueLike[][]): { field: string; message: string }[] {
  const closest = unionBranches?.reduce<ZodIssueLike[] | undefined>((best, branch) => (!best || branch.length < best.length ? branch : best), undefined);
  if (closest && closest.length > 0) {
    return closest.flatMap((issue) => describeIssue([field, ...(issue.path ?? []).map(String)].join("."), issue.message, issue.errors));
  }
  return [{ field, message: message ?? "is invalid" }];
}

/** ioredis' ways of saying Redis is out of reach: the request may succeed later, so 503, not 500. */
function isStoreUnavailable(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (
    error.name === "MaxRetriesPerRequestError" ||
    (code !== undefined && ["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE"].includes(code)) ||
    /Connection is closed|Stream isn't writeable/.test(error.message)
  );
}

export function toApiError(error: FastifyError | Error): { error: ApiError; details?: { field: string; message: string }[] } {
  if (error instanceof ApiError) return { error };
  if (hasZodFastifySchemaValidationErrors(error)) {
    const details = error.validation.flatMap((issue) =>
      describeIssue(
        `${error.validationContext ?? "body"}${issue.instancePath.replaceAll("/", ".")}`.replace(/\.$/, ""),
        issue.message,
        issue.params.errors as ZodIssueLike[][] | undefined,
      ),
    );
    const message = details.map((d) => `${d.field}: ${d.message}`).join("; ");
    return { error: new ApiError(400, "invalid_request", message), details };
  }
  if (isStoreUnavailable(error)) return { error: new ApiError(503, "store_unavailable", "the store is not answering; try again shortly") };
  const fastifyError = error as FastifyError;
  const known = fastifyError.code ? FASTIFY_CLIENT_ERRORS[fastifyError.code] : undefined;
  if (known) return { error: new ApiError(known[0], known[1], fastifyError.message) };
  if (error instanceof SyntaxError) return { error: new ApiError(400, "invalid_json", error.message) };
  const status = fastifyError.statusCode;
  if (status && status >= 400 && status < 500) return { error: new ApiError(status, "invalid_request", fastifyError.message) };
  return { error: new ApiError(500, "internal", "internal error") };
}

export function sendError(error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const { error: apiError, details } = toApiError(error);
  if (!(error instanceof ApiError) && apiError.statusCode >= 500) request.log.error({ err: error }, "request failed");
  if (apiError.retryAfterSeconds) reply.header("retry-after", String(apiError.retryAfterSeconds));
  const body: ErrorBody = { error: { code: apiError.code, message: apiError.message, ...(details ? { details } : {}) } };
  return reply.status(apiError.statusCode).send(body);
}
