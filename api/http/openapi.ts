/**
 * What the OpenAPI document says about every route beyond its zod schemas:
 * an operationId, no lock on public routes, every status the framework and
 * the hooks can answer (not only the ones a handler returns), and a
 * description for each instead of "Default Response". Routes keep their own
 * schemas; this only fills in what they leave out, so a route that lists a
 * status with its own shape keeps it.
 */
import type { RouteOptions } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorBody } from "./schemas.js";

/** Set on every route registered in the authenticated scope (server.ts), so the document knows which need a key. */
export const AUTHENTICATED = "otpgateAuthenticated";

const STATUS_TEXT: Record<string, string> = {
  "200": "OK",
  "201": "Created",
  "202": "Accepted: the work goes on after the reply",
  "204": "No content",
  "400": "Invalid input: the message names the field (`invalid_request`), or a request the rules refuse",
  "401": "No API key, or a key that is unknown or revoked",
  "403": "The key lacks the scope this route needs, or the fraud guard refuses the number",
  "404": "Unknown id",
  "409": "Conflict with what already exists",
  "413": "Body over the size limit",
  "429": "Rate limited: retry after the `Retry-After` seconds",
  "500": "Internal error (logged; the reply carries no detail)",
  "503": "The node cannot serve it now (store unreachable, overloaded, no route, shutting down); `Retry-After` when known",
};

/** The error envelope as JSON Schema, for statuses a route does not describe itself. */
const ERROR_JSON = z.toJSONSchema(errorBody, { target: "draft-7" }) as Record<string, unknown>;
delete ERROR_JSON.$schema;

/** `POST /v1/otp/verify` → `postV1OtpVerify`; `GET /v1/devices/:id/qr` → `getV1DevicesByIdQr`. */
export function operationIdFor(method: string, url: string): string {
  const words = url
    .split("/")
    .filter(Boolean)
    .map((part) => (part.startsWith(":") ? `by-${part.slice(1)}` : part))
    .flatMap((part) => part.split(/[^A-Za-z0-9]+/))
    .filter(Boolean);
  const pascal = words.map((word) => word[0]!.toUpperCase() + word.slice(1)).join("");
  return `${method.toLowerCase()}${pascal || "Root"}`;
}

type Schema = Record<string, unknown> & { response?: Record<string, Record<string, unknown>> };

/** @fastify/swagger's `transform`: the zod provider's, then the additions above. */
export function openApiTransform(input: Parameters<typeof jsonSchemaTransform>[0]): ReturnType<typeof jsonSchemaTransform> {
  const out = jsonSchemaTransform(input);
  const route = input.route as RouteOptions & { config?: Record<string, unknown> };
  const schema = { ...(out.schema as Schema) };
  const method = (Array.isArray(route.method) ? route.method[0] : route.method) ?? "GET";
  const authenticated = route.config?.[AUTHENTICATED] === true;
  const limited = route.config?.rateLimit !== false;
  const takesInput = Boolean(schema.body || schema.querystring || schema.params);

  schema.operationId ??= operationIdFor(method, out.url);
  // zod leaves a body's `examples` out of its input-side JSON Schema when the body holds a transform; they come from its meta instead.
  const zodBody = (input.schema as { body?: unknown }).body;
  const examples = zodBody instanceof z.ZodType ? z.globalRegistry.get(zodBody)?.examples : undefined;
  if (examples && schema.body && typeof schema.body === "object" && !("examples" in schema.body)) schema.body = { ...schema.body, examples };
  if (!authenticated) schema.security = [];

  const response: Record<string, Record<string, unknown>> = { ...(schema.response ?? {}) };
  const statuses = [
    takesInput || schema.body ? "400" : undefined,
    authenticated ? "401" : undefined,
    authenticated ? "403" : undefined,
    schema.body ? "413" : undefined,
    limited ? "429" : undefined,
    "500",
    // Every authenticated request reads its key from the store first.
    authenticated ? "503" : undefined,
  ].filter((status): status is string => status !== undefined);
  for (const status of statuses) response[status] ??= { ...ERROR_JSON };
  for (const [status, body] of Object.entries(response)) {
    if (!body.description) response[status] = { ...body, description: STATUS_TEXT[status] ?? `HTTP ${status}` };
  }
  // A route without a 2xx of its own (e.g. /metrics, /ca.pem) keeps the framework's default success.
  if (!Object.keys(response).some((status) => status.startsWith("2"))) response["200"] = { description: STATUS_TEXT["200"] };
  schema.response = response;
  return { ...out, schema };
}
