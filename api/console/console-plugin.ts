/**
 * The web console: its page and assets at `/` and `/console/…` (public: they
 * hold no data and no secret), and a few console-only JSON routes under
 * `/console/api/` that need the admin key like the REST API's admin routes.
 * Everything else the console shows comes from the REST API itself, called by
 * the page with the key in the Authorization header.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import QRCode from "qrcode";
import { z } from "zod";
import type { MqttBroker } from "../../broker/mqtt-broker.js";
import type { DeviceService } from "../devices/device-service.js";
import { requireScope } from "../http/auth.js";
import { ApiError } from "../http/errors.js";
import type { Metrics } from "../metrics/metrics.js";
import type { Store } from "../store/store.js";
import type { CircuitWatch } from "./circuit-watch.js";
import type { ConsoleEvent, ConsoleEvents } from "./console-events.js";
import { readFunnel } from "./funnel.js";
import { RouteStats } from "./route-stats.js";

/** What the gateway hands the console (api/gateway.ts). */
export interface ConsoleDeps {
  events: ConsoleEvents;
  circuits: CircuitWatch;
  broker: Pick<MqttBroker, "on" | "off">;
  presenceSettled(): Promise<void>;
  /** Configured routes, in failover order. */
  routes: readonly string[];
  version: string;
}

export type ConsoleApiOptions = ConsoleDeps & { devices: DeviceService; store: Store; metrics: Metrics };

/**
 * On every console response. The page runs only its own modules (no inline
 * script or style, no eval, DOM sinks only through Trusted Types, which the
 * console never uses), talks only to this origin, and may not be framed.
 */
export const CONSOLE_HEADERS: Record<string, string> = {
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' blob:",
    "connect-src 'self'",
    "base-uri 'none'",
    // The login form is never submitted: without its script nothing may carry the key anywhere.
    "form-action 'none'",
    "frame-ancestors 'none'",
    "require-trusted-types-for 'script'",
  ].join("; "),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

const STATIC_DIR = fileURLToPath(new URL("./static/", import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every file under static/, read once: the set served is fixed at start, so no request path reaches the disk. */
function loadAssets(dir: string, prefix = ""): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const name = prefix + entry.name;
    if (entry.isDirectory()) {
      for (const [nested, asset] of loadAssets(path.join(dir, entry.name), `${name}/`)) assets.set(nested, asset);
      continue;
    }
    const type = CONTENT_TYPES[path.extname(entry.name)];
    if (!type) continue;
    const body = readFileSync(path.join(dir, entry.name));
    assets.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
  }
  return assets;
}

function withConsoleHeaders(app: FastifyInstance): void {
  app.addHook("onSend", async (_request, reply) => {
    reply.headers(CONSOLE_HEADERS);
  });
}

/** The page and its assets. */
export async function consoleAssets(app: FastifyInstance): Promise<void> {
  const assets = loadAssets(STATIC_DIR);
  withConsoleHeaders(app);
  const serve = (name: string, ifNoneMatch: string | undefined, reply: FastifyReply) => {
    const asset = assets.get(name);
    if (!asset) throw new ApiError(404, "not_found", `no console file ${name}`);
    // Revalidated on each load, so a restarted gateway's new assets are used at once.
    reply.header("cache-control", "no-cache").header("etag", asset.etag);
    if (ifNoneMatch === asset.etag) return reply.status(304).send();
    return reply.type(asset.type).send(asset.body);
  };
  app.get("/", { schema: { hide: true } }, async (request, reply) => serve("index.html", request.headers["if-none-match"], reply));
  app.get<{ Params: { "*": string } }>("/console/*", { schema: { hide: true } }, async (request, reply) =>
    serve(request.params["*"], request.headers["if-none-match"], reply),
  );
}

const instant = z.iso.datetime({ offset: true }).transform((value) => Date.parse(value));
const funnelQuery = z.object({ since: instant.optional(), until: instant.optional() });
/** The funnel's default window. */
const FUNNEL_DEFAULT_MS = 24 * 3_600_000;

const qrBody = z.strictObject({ token: z.string().min(1).max(200) });
const idParams = z.object({ id: z.string().min(1).max(128) });

/** Console-only JSON routes and the live stream; registered where the REST API's authentication runs. */
export const consoleApi: FastifyPluginAsyncZod<ConsoleApiOptions> = async (app, options) => {
  const { events, circuits, devices, store, metrics } = options;
  withConsoleHeaders(app);
  app.addHook("preHandler", async (request) => requireScope(request.principal!, "admin"));

  events.attach({
    broker: options.broker,
    presenceSettled: options.presenceSettled,
    devices,
    store,
    onError: (error) => app.log.warn({ err: error }, "console: reading a change for the live stream failed"),
  });
  const stats = new RouteStats(metrics);
  const streams = new Set<() => void>();
  // Open streams would hold the server's close forever.
  app.addHook("preClose", async () => {
    for (const end of [...streams]) end();
  });
  app.addHook("onClose", async () => {
    stats.close();
    events.close();
  });

  app.get("/console/api/session", { schema: { hide: true } }, async (request) => ({
    name: request.principal!.name,
    version: options.version,
    store: store.kind,
    routes: options.routes,
  }));

  app.get("/console/api/routes", { schema: { hide: true } }, async () => {
    const circuitViews = new Map(circuits.views().map((view) => [view.route, view]));
    const views = await stats.views(options.routes);
    return {
      windowSeconds: stats.windowMs / 1000,
      routes: views.map((view) => ({ ...view, configured: options.routes.includes(view.route), circuit: circuitViews.get(view.route) ?? null })),
    };
  });

  app.get("/console/api/funnel", { schema: { hide: true, querystring: funnelQuery } }, async (request) => {
    const until = request.query.until ?? Date.now();
    const since = request.query.since ?? until - FUNNEL_DEFAULT_MS;
    if (since >= until) throw new ApiError(400, "invalid_request", "since must be before until");
    return readFunnel(store, { since, until });
  });

  app.get("/console/api/device-errors", { schema: { hide: true } }, async () => {
    const listed = await devices.list();
    return { errors: Object.fromEntries(listed.map((device) => [device.id, events.lastErrorOf(device.id)]).filter(([, error]) => error)) };
  });

  // POST, not the REST API's GET …/qr?token=: a device token is a credential, and query strings end up in access logs and history.
  app.post("/console/api/devices/:id/qr", { schema: { hide: true, params: idParams, body: qrBody } }, async (request, reply) => {
    const provisioning = await devices.provisioningFor(request.params.id, request.body.token);
    if (!provisioning) throw new ApiError(404, "not_found", "no device with that id and token");
    reply.header("cache-control", "no-store");
    return reply.type("image/svg+xml").send(await QRCode.toString(provisioning.provisioning, { type: "svg", errorCorrectionLevel: "M", margin: 2 }));
  });

  // Server-sent events, read by the page with fetch() so the request carries the key like every other call.
  app.get("/console/api/events", { schema: { hide: true } }, async (request, reply) => {
    const snapshot = await events.devicesNow();
    reply.hijack();
    const response = reply.raw;
    response.writeHead(200, {
      ...CONSOLE_HEADERS,
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      // Proxies that buffer (nginx) would hold the events back.
      "x-accel-buffering": "no",
    });
    const send = (name: string, data: unknown) => response.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
    response.write("retry: 3000\n\n");
    send("hello", { at: new Date().toISOString(), devices: snapshot });
    const stop = events.watch((event: ConsoleEvent) => {
      if (event.type === "job") send("job", event.job);
      else if (event.type === "device") send("device", event.device);
      else send("device-removed", { id: event.id });
    });
    // Comments keep idle proxies and the server's own idle timeout from closing a quiet stream.
    const beat = setInterval(() => response.write(": keep-alive\n\n"), 15_000);
    const end = () => {
      if (!streams.delete(end)) return;
      stop();
      clearInterval(beat);
      if (!response.writableEnded) response.end();
    };
    streams.add(end);
    request.raw.on("close", end);
    response.on("close", end);
    response.on("error", end);
  });
};
