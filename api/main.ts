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
await gateway.http.listen({ port: config.http.port, host: config.http.host });

const log = gateway.logger;
log.info({ store: gateway.store.kind, routes: gateway.routes, dataDir: config.dataDir }, "otpgate is up");
if (gateway.routes.length === 0) {
  log.warn("no delivery route is configured: set TWILIO_*, AT_* or SMTP_URL (see README); sends answer 503 until then");
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
