/**
 * Draws the README's console screenshots (docs/console-*.png) from a real
 * gateway with simulated phones and some traffic:
 *   npx tsx test/console/screenshots.ts
 * Not a test: run it by hand when the console's look changes.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { codeIn, eventually } from "../support/gateway.js";
import { connectPhone, registerDevice } from "../support/phones.js";
import { startConsoleHarness } from "./harness.js";

const docs = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../docs");

mkdirSync(docs, { recursive: true });
const h = await startConsoleHarness();
const phones: SimulatedPhone[] = [];
try {
  const { gw, page } = h;
  // Toasts are transient: keep them out of the pictures.
  const quiet = () => page.evaluate('document.getElementById("toast")?.setAttribute("hidden", "")');
  const kenya = await registerDevice(gw, { name: "Nairobi drawer 1", maxPerMinute: 20, prefixes: ["+254"] });
  const uganda = await registerDevice(gw, { name: "Kampala shelf", maxPerMinute: 12, prefixes: ["+256"] });
  const flaky = await registerDevice(gw, { name: "old Moto G", maxPerMinute: 10 });
  await registerDevice(gw, { name: "spare (not set up)" });
  phones.push(await connectPhone(gw, kenya, { battery: 84, latencyMs: 30 }));
  phones.push(await connectPhone(gw, uganda, { battery: 23, latencyMs: 30 }));
  const flakyPhone = await connectPhone(gw, flaky, { battery: 57, failureRate: 1, latencyMs: 30 });
  phones.push(flakyPhone);

  // Traffic: OTPs (most verified), plain messages, a failover from the failing phone to Twilio.
  const numbers = ["+254711222301", "+254711222302", "+254711222303", "+256700123401", "+256700123402", "+14155550101", "+447400123456"];
  for (const [i, to] of numbers.entries()) {
    const issued = await gw.call("POST", "/v1/otp", { to, userId: `user-${i}` });
    if (issued.status !== 202) throw new Error(`otp refused: ${JSON.stringify(issued.json)}`);
    await eventually(async () => ["sent", "delivered", "failed"].includes((await gw.call("GET", `/v1/otp/${issued.json.id}`)).json.delivery.state), 15_000, "otp settled");
    if (i % 3 === 2) continue;
    const sms = phones.flatMap((p) => p.sent).find((s) => s.to === to) ?? h.twilio.received.find((r) => r.to === to);
    if (sms) await gw.call("POST", "/v1/otp/verify", { id: issued.json.id, code: codeIn(sms.body) });
  }
  for (const to of ["+254711222310", "+256700123410"]) await gw.call("POST", "/v1/messages", { to, body: "Your parcel is ready" });
  await gw.call("POST", "/v1/keys", { name: "billing service", scopes: ["otp"] });
  await gw.call("POST", "/v1/keys", { name: "shop backend" });

  await h.signIn();
  await page.waitForSelector('#live[data-state="live"]');
  await h.show("#phones");
  await page.waitForSelector(`#phones-table tr[data-device-id="${flaky.id}"]`);
  await page.waitForTimeout(500);
  await quiet();
  await page.screenshot({ path: path.join(docs, "console-phones.png"), fullPage: true });

  await h.show("#messages");
  await page.fill('#test-send input[name="to"]', "+14155550102");
  await page.fill('#test-send input[name="body"]', "otpgate test message");
  // Only the failing phone takes +1 numbers (the others have prefixes): the test send fails over to Twilio.
  await page.click('#test-send button[type="submit"]');
  await page.waitForSelector('#timeline li[data-route="twilio"][data-state="sent"]', { timeout: 20_000 });
  await page.waitForTimeout(500);
  await quiet();
  await page.screenshot({ path: path.join(docs, "console-messages.png"), fullPage: true });

  await h.show("#routes");
  await page.waitForSelector('#funnel-by-country svg g[data-key="KE"]');
  await page.waitForTimeout(500);
  await quiet();
  await page.screenshot({ path: path.join(docs, "console-routes.png"), fullPage: true });
  console.log(`screenshots written to ${docs}/console-{phones,messages,routes}.png`);
} finally {
  for (const phone of phones) await phone.close().catch(() => {});
  await h.close();
}
