/**
 * The error envelope: `{"error": {"code", "message"}}` with the right status,
 * for every failure, including the ones Fastify and its plugins raise.
 */
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from "fastify";
import { STATUS_CODES } from "node:http";
import type { Duplex } from "node:stream";
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
  FST_ERR_BAD_URL: [400, "invalid_url"],
  FST_ERR_MAX_PARAM_LENGTH: [414, "uri_too_long"],
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

/**
 * The client closed its connection before its request was read (Node's "aborted", raised on the
 * request stream while the body is being read). Nobody is left to answer, and it says nothing about
 * the store, although it carries the same ECONNRESET code as a lost Redis connection.
 */
export function isClientAbort(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return (code === "ECONNRESET" && error.message === "aborted") || code === "ERR_STREAM_PREMATURE_CLOSE" || code === "ECONNABORTED";
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
  if (isClientAbort(error)) return { error: new ApiError(400, "client_aborted", "the client closed the connection before the request was read") };
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
  if (apiError.code === "client_aborted") request.log.debug({ err: error }, "client closed the connection mid-request");
  else if (!(error instanceof ApiError) && apiError.statusCode >= 500) request.log.error({ err: error }, "request failed");
  if (apiError.retryAfterSeconds) reply.header("retry-after", String(apiError.retryAfterSeconds));
  const body: ErrorBody = { error: { code: apiError.code, message: apiError.message, ...(details ? { details } : {}) } };
  return reply.status(apiError.statusCode).send(body);
}

/** What Node's parser and timers report on a connection, and the status each deserves. */
const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, "request_timeout", "the request was not received in time"],
  HPE_HEADER_OVERFLOW: [431, "headers_too_large", "the request headers are too large"],
  HPE_CHUNK_EXTENSIONS_OVERFLOW: [413, "payload_too_large", "the chunk extensions are too large"],
};

/** How long a connection that was answered with an error may linger before it is cut. */
const CLIENT_ERROR_LINGER_MS = 1000;

/**
 * Node's `clientError` (malformed request, headers too large, request or headers timeout) happens
 * below Fastify, on the raw socket: answer it in the envelope while nothing has been written yet,
 * then close. A reset connection has nobody to answer.
 */
export function answerClientError(error: NodeJS.ErrnoException, socket: Duplex, log: FastifyBaseLogger): void {
  log.debug({ err: error }, "client error");
  if (error.code === "ECONNRESET" || socket.destroyed) return;
  // A connection already answered (Node reports each later parse error too) only waits to be cut.
  if (socket.writableEnded) return;
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  const [status, code, message] = CLIENT_ERRORS[error.code ?? ""] ?? [400, "invalid_request", `malformed HTTP request${error.code ? ` (${error.code})` : ""}`];
  if (socket.writable && !inFlight?.headersSent) endWithError(socket, status, code, message);
  else socket.destroy();
}

/**
 * Answers on a raw socket (no Fastify reply: a parse error, a refused WebSocket
 * upgrade) with the envelope, then closes it.
 */
export function endWithError(socket: Duplex, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ error: { code, message } } satisfies ErrorBody);
  const extra = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`).join("");
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
  // end() lets the reply reach the client before the close; the timer stops a peer that never closes its side.
  setTimeout(() => socket.destroy(), CLIENT_ERROR_LINGER_MS).unref();
}
