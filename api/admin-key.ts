/**
 * `npm run admin-key`: a new admin API key for DATA_DIR, for an operator who
 * lost the one printed on the first start. Its digest replaces the kept one
 * (DATA_DIR/admin-key.sha256, in every store mode: the admin key is never in
 * the store); the key is printed once. A running gateway reads the digest when
 * it starts, so it takes the new key, and refuses the old one, once restarted.
 */
import { loadConfigOrExit } from "./config/config.js";
import { replaceAdminKey } from "./config/secrets.js";

// The same environment as `npm start`, so the key lands in the DATA_DIR the gateway uses.
const config = loadConfigOrExit(process.env);
if (config.adminApiKey) {
  console.error("otpgate: ADMIN_API_KEY: set, so the gateway uses it and ignores any key kept in DATA_DIR; change ADMIN_API_KEY itself, or unset it and run this again");
  process.exit(1);
}

const { key, file } = replaceAdminKey(config.dataDir);
const perNode = config.store === "redis" ? "  Each node keeps its own admin key in its DATA_DIR: run this on every node you want it on.\n" : "";
process.stdout.write(
  `\n  New admin API key (shown once, store it now):\n\n    ${key}\n\n` +
    `  Its digest is in ${file}. Restart the gateway to use it; the previous admin key stops working then.\n${perNode}\n`,
);
