/**
 * The process logger: JSON lines for machines, or one readable line per event
 * for a person at a terminal (LOG_FORMAT). Both carry ISO 8601 UTC times.
 */
import { pino, stdTimeFunctions, type DestinationStream, type Logger } from "pino";
import pretty from "pino-pretty";
import type { Config } from "../config/config.js";

export type LogFormat = NonNullable<Config["logFormat"]>;

export interface LoggerOptions {
  level: string;
  /** Unset: pretty when stdout is a terminal, JSON otherwise (a pipe, a file, a service manager). */
  format?: LogFormat;
}

export function resolveLogFormat(format: LogFormat | undefined, stdoutIsTerminal = Boolean(process.stdout.isTTY)): LogFormat {
  return format ?? (stdoutIsTerminal ? "pretty" : "json");
}

/**
 * Synchronous writes: lines stay in order with what main.ts prints to stdout
 * itself (the admin key), and none are lost when a failed start exits at once.
 */
function destination(format: LogFormat): DestinationStream {
  if (format === "json") return pino.destination({ dest: 1, sync: true });
  return pretty({
    destination: 1,
    sync: true,
    colorize: Boolean(process.stdout.isTTY),
    // One line per event; only an `err` (with its stack) spreads over several.
    singleLine: true,
    errorLikeObjectKeys: ["err"],
    // The time is already ISO (see `timestamp` below): shown as written.
    translateTime: false,
    ignore: "pid,hostname,component",
    messageFormat: "{if component}{component}: {end}{msg}",
  });
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      timestamp: stdTimeFunctions.isoTime,
      redact: ["req.headers.authorization", 'req.headers["x-api-key"]'],
      serializers: {
        // Query strings may carry a device token (the QR route); log the path only.
        req: (request: { method?: string; url?: string; ip?: string }) => ({
          method: request.method,
          url: request.url?.split("?")[0],
          remoteAddress: request.ip,
        }),
      },
    },
    destination(resolveLogFormat(options.format)),
  );
}
