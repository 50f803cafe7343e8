/**
 * A gateway with real parts for the console's browser tests and the
 * screenshot script: the default SQLite store, the device route with
 * simulated phones over MQTT/TLS, a local Twilio stand-in behind it (so a
 * failing phone fails over), and headless Chromium recording every request
 * URL the page makes.
 */
import { Writable } from "node:stream";
import { pino } from "pino";
import { chromium, type Browser, type Page } from "playwright-core";
import { onPath } from "../setup/required-tools.js";
import { startFakeTwilio, twilioEnv, type FakeTwilio } from "../support/fake-twilio.js";
import { ADMIN_KEY, startGateway, type TestGateway } from "../support/gateway.js";

const accountSid = `AC${"d4".repeat(16)}`;
const authToken = "console-test-token";

export interface ConsoleHarness {
  gw: TestGateway;
  twilio: FakeTwilio;
  browser: Browser;
  page: Page;
  /** Every URL the page requested, in order. */
  requestUrls: string[];
  /** The gateway's log, every line at debug level and above. */
  logLines: string[];
  /** Script errors and CSP or Trusted Types violations the page reported. */
  pageProblems: string[];
  /** Moves the page to a view (#phones, #messages, …) the way its links do: no reload. */
  show(hash: string): Promise<void>;
  /** Opens the console and signs in with `key` (the admin key by default). */
  signIn(key?: string): Promise<void>;
  close(): Promise<void>;
}

export async function startConsoleHarness(): Promise<ConsoleHarness> {
  const twilio = await startFakeTwilio({ accountSid, authToken });
  const logLines: string[] = [];
  const logStream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString("utf8"));
      done();
    },
  });
  const gw = await startGateway({
    logger: pino({ level: "debug" }, logStream),
    env: {
      ...twilioEnv(twilio, { accountSid, authToken }),
      FAILOVER_ORDER: "device,twilio",
      DEVICE_ACK_TIMEOUT_MS: "2000",
      DEVICE_SENT_TIMEOUT_MS: "4000",
    },
  });
  // Debian's chromium; as root (CI containers) it needs --no-sandbox.
  const browser = await chromium.launch({ executablePath: onPath("chromium", process.env.PATH ?? "") ?? "/usr/bin/chromium", args: process.getuid?.() === 0 ? ["--no-sandbox"] : [] });
  const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const requestUrls: string[] = [];
  page.on("request", (request) => requestUrls.push(request.url()));
  const pageProblems: string[] = [];
  page.on("pageerror", (error) => pageProblems.push(`error: ${error.message}`));
  page.on("console", (message) => {
    // Refused requests (a wrong key's 401) are logged too; they are the API's answers, not the page's faults.
    if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) pageProblems.push(message.text());
  });
  return {
    gw,
    twilio,
    browser,
    page,
    requestUrls,
    logLines,
    pageProblems,
    // Page code as text: the project's types are Node's, without the DOM.
    show: (hash) => page.evaluate(`void (window.location.hash = ${JSON.stringify(hash)})`),
    async signIn(key = ADMIN_KEY) {
      await page.goto(`${gw.url}/`);
      await page.fill("#login-key", key);
      await page.click("#login-submit");
    },
    async close() {
      await browser.close();
      await gw.close();
      await twilio.close();
    },
  };
}
