/**
 * One log line per HTTP request, written when the response is done: method,
 * route, status and time. Fastify's own pair (`incoming request`, `request
 * completed`, both at info) is replaced through its LogController, the way
 * Fastify 5 takes it without a deprecation warning.
 *
 * Nothing from the request itself is logged beyond its method: the route is
 * the pattern (`/v1/otp/:id`), never the URL, so neither a query string (the
 * QR route takes a device token there) nor a header nor a body can reach a log.
 */
import { LogController, type FastifyReply, type FastifyRequest } from "fastify";

/** Polled by load balancers and scrapers every few seconds: logged at debug while they answer well. */
const PROBES = new Set(["/healthz", "/readyz", "/metrics"]);
/** An unmatched path is logged (without its query) so a misdirected client can be found; this long at most. */
const MAX_PATH_CHARS = 200;

export class RequestLog extends LogController {
  /** At trace only: a request that never completes is then still seen arriving. */
  override incomingRequest(request: FastifyRequest): void {
    request.log.trace({ req: request }, "incoming request");
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    const route = request.routeOptions.url;
    const status = reply.statusCode;
    const line: Record<string, unknown> = { method: request.method, route: route ?? null, status, ms: Math.round(reply.elapsedTime * 10) / 10 };
    if (!route) line.path = request.url.split("?")[0]!.slice(0, MAX_PATH_CHARS);
    const message = `${request.method} ${route ?? line.path} ${status}`;
    if (error) reply.log.warn({ ...line, err: error.message }, `${message} (response failed)`);
    else if (route && PROBES.has(route) && status < 400) reply.log.debug(line, message);
    else reply.log.info(line, message);
  }
}
