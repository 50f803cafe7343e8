/** `npm start`: read the config once, bring the gateway up, stop cleanly on SIGINT/SIGTERM. */
import { loadConfig } from "./config/config.js";
import { createGateway } from "./gateway.js";

const result = loadConfig(process.env);
if (!result.ok) {
  console.error("otpgate: configuration is invalid:");
  for (const problem of result.problems) console.error(`  ${problem}`);
  process.exit(1);
}
const { config } = result;

const gateway = await createGateway(config);
const addresses = await gateway.listen();

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
if (gateway.generatedAdminKey) {
  // Printed once, to the terminal only: DATA_DIR keeps just its digest.
  process.stdout.write(
    `\n  Admin API key (shown once, store it now):\n\n    ${gateway.generatedAdminKey}\n\n` +
      `  Try: curl -H "Authorization: Bearer <key>" http://localhost:${config.http.port}/v1/keys\n\n`,
  );
}

let stopping = false;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
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
