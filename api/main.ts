/** `npm start`: read the config once, bring the gateway up, stop cleanly on SIGINT/SIGTERM. */
import { loadConfigOrExit } from "./config/config.js";
import { adminKey, type AdminKey } from "./config/secrets.js";
import { createGateway, type Gateway, type ListeningAddresses } from "./gateway.js";
import { describeStartFailure } from "./start-failure.js";

const config = loadConfigOrExit(process.env);

let admin: AdminKey | undefined;
let gateway: Gateway | undefined;
/** Set once every listener is up and the admin key (if new) printed. */
let up = false;
let stopping = false;

/**
 * A start that fails, or is interrupted, before the admin key it made was
 * shown keeps nothing of it: the next start makes a new one and shows that.
 */
function abandonStart(line: string | undefined, code: number): never {
  if (admin?.source === "generated") admin.discard();
  if (line) console.error(`otpgate: ${line}`);
  process.exit(code);
}

// SIGHUP too: a closed terminal during the first start must not keep a key nobody saw.
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    if (!gateway || !up) abandonStart(undefined, 1);
    const log = gateway.logger;
    log.info({ signal }, "stopping");
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "unclean stop");
        process.exit(1);
      },
    );
  });
}

// Until the key is shown, an uncaught exception also leaves no digest behind; after, Node's default stands (below).
const failedStarting = (error: unknown) => abandonStart(describeStartFailure(error, config), 1);
process.on("uncaughtException", failedStarting);

let addresses: ListeningAddresses;
try {
  // Before the gateway reads DATA_DIR, so this process knows whether the key is its own to show.
  admin = adminKey(config.dataDir, config.adminApiKey);
  const starting = await createGateway(config);
  gateway = starting;
  addresses = await starting.listen();
} catch (error) {
  abandonStart(describeStartFailure(error, config), 1);
}

const log = gateway.logger;
// Libraries start promises nobody awaits (Redis clients during an outage, most of all); one of them
// failing is logged, not fatal: every decision is in the store, and the node keeps serving. An
// uncaught exception is another matter (state may be half-changed): Node's default stands, the
// process exits, and leases let another node, or this one restarted, carry its jobs on.
process.on("unhandledRejection", (reason) => log.error({ err: reason }, "unhandled rejection (kept serving)"));
log.info(
  { store: gateway.store.kind, routes: gateway.routes, dataDir: config.dataDir, mqtts: addresses.mqtts, mqtt: addresses.mqtt, phonesConnectTo: addresses.publicMqttUrl, caFingerprint: gateway.tls.caFingerprint },
  "otpgate is up",
);
if (gateway.routes.length === 1 && gateway.routes[0] === "device") {
  log.warn("only the device route is configured: register a phone (POST /v1/devices, or `npm run phone`) or set TWILIO_*, AT_* or SMTP_URL");
}
if (admin.source === "generated") {
  // Printed once, to the terminal only: DATA_DIR keeps just its digest.
  process.stdout.write(
    `\n  Admin API key (shown once, store it now):\n\n    ${admin.key}\n\n` +
      `  Try: curl -H "Authorization: Bearer <key>" ${addresses.http}/v1/keys\n` +
      `  Lost it? \`npm run admin-key\` makes a new one.\n\n`,
  );
} else if (admin.source === "kept") {
  log.info({ digestFile: admin.file }, `admin API key: only its digest is kept, in ${admin.file}; to replace a lost key run \`npm run admin-key\` (same DATA_DIR) and restart`);
} else {
  log.info("admin API key: ADMIN_API_KEY");
}
up = true;
process.off("uncaughtException", failedStarting);
