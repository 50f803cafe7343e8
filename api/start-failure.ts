/**
 * Why a start failed, as one line that names the setting to change: a busy or
 * forbidden port, an unreachable Redis, an unreadable TLS file, a DATA_DIR that
 * cannot be written. Never a stack trace, never a secret: URLs are not echoed.
 */
import type { Config } from "./config/config.js";

interface Listener {
  variable: string;
  hostVariable: string;
  host: string;
  port: number;
}

function listeners(config: Config): Listener[] {
  return [
    { variable: "PORT", hostVariable: "HOST", host: config.http.host, port: config.http.port },
    { variable: "MQTT_TLS_PORT", hostVariable: "HOST", host: config.http.host, port: config.mqtt.tlsPort },
    { variable: "MQTT_PORT", hostVariable: "MQTT_HOST", host: config.mqtt.host, port: config.mqtt.port },
  ];
}

/** loadTlsMaterial's messages start with the file they are about. */
const TLS_FILES: [prefix: string, variable: string][] = [
  ["TLS certificate file ", "TLS_CERT_FILE"],
  ["TLS key file ", "TLS_KEY_FILE"],
  ["TLS CA file ", "TLS_CA_FILE"],
];

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, " ").trim();
}

function listenFailure(error: NodeJS.ErrnoException & { port?: number; address?: string }, config: Config): string | undefined {
  if (error.code === "EADDRNOTAVAIL") {
    const hosts = new Set(listeners(config).filter((listener) => listener.host === error.address).map((listener) => listener.hostVariable));
    return hosts.size > 0 ? `${[...hosts].join(", ")}: ${error.address} is not an address of this machine` : undefined;
  }
  // Port 0 (ephemeral) never collides; a listener that is off (MQTT port 0) never fails.
  const matching = listeners(config).filter((listener) => listener.port !== 0 && listener.port === error.port);
  if (matching.length === 0) return undefined;
  const variables = matching.map((listener) => listener.variable).join(", ");
  const where = `port ${error.port}${error.address ? ` on ${error.address}` : ""}`;
  switch (error.code) {
    case "EADDRINUSE":
      return `${variables}: ${where} is already in use (another otpgate, or another program, listens there); stop it or set ${variables} to a free port (0 turns an MQTT listener off)`;
    case "EACCES":
      return `${variables}: not allowed to listen on ${where} (ports below 1024 need privileges); choose a port above 1023`;
    default:
      return undefined;
  }
}

export function describeStartFailure(error: unknown, config: Config): string {
  const failure = error as NodeJS.ErrnoException & { port?: number; address?: string; hostname?: string };
  const message = oneLine(error instanceof Error ? error.message : String(error));

  if (failure.syscall === "listen" || failure.code === "EADDRINUSE") {
    const described = listenFailure(failure, config);
    if (described) return described;
  }
  if ((failure.code === "ENOTFOUND" || failure.code === "EAI_AGAIN") && failure.hostname) {
    const variable = failure.hostname === config.mqtt.host && failure.hostname !== config.http.host ? "MQTT_HOST" : "HOST";
    return `${variable}: cannot resolve ${failure.hostname}`;
  }
  for (const [prefix, variable] of TLS_FILES) {
    if (message.startsWith(prefix)) return `${variable}: ${message.slice(prefix.length)}`;
  }
  // Files under DATA_DIR (the secrets, the dev certificates, the SQLite store) that cannot be written or read.
  if (failure.path && ["EACCES", "EPERM", "EROFS", "ENOSPC", "ENOTDIR", "EISDIR"].includes(failure.code ?? "")) {
    return `DATA_DIR: cannot use ${failure.path} (${failure.code}); DATA_DIR is ${config.dataDir}`;
  }
  if (failure.code?.startsWith("SQLITE_")) return `DATA_DIR: the store ${config.dataDir}/otpgate.db cannot be used: ${message}`;
  // Already names its setting (e.g. "REDIS_URL: cannot reach Redis at …").
  if (/^[A-Z][A-Z0-9_]+: /.test(message)) return message;
  return `cannot start: ${message}`;
}
