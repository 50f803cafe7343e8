/**
 * The web console in headless Chromium against a real gateway: sign-in,
 * live presence, provisioning, the message timeline, keys, and what the page
 * must never hold or send (a code, the admin key in a URL or in storage).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_KEY, codeIn } from "../support/gateway.js";
import { connectPhone, registerDevice } from "../support/phones.js";
import type { SimulatedPhone } from "../../tools/phone-simulator/phone.js";
import { startConsoleHarness, type ConsoleHarness } from "./harness.js";

describe("web console", () => {
  let h: ConsoleHarness;
  const phones: SimulatedPhone[] = [];

  beforeAll(async () => {
    h = await startConsoleHarness();
  });
  afterAll(async () => {
    for (const phone of phones) await phone.close().catch(() => {});
    await h?.close();
  });

  it("serves its page with a strict CSP and no framing, and keeps its data behind the admin key", async () => {
    const page = await fetch(`${h.gw.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const csp = page.headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    const html = await page.text();
    // No inline script: every <script> has a src.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/https?:\/\//);

    const asset = await fetch(`${h.gw.url}/console/app.js`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get("content-type")).toContain("text/javascript");
    expect(await fetch(`${h.gw.url}/console/../package.json`).then((r) => r.status)).toBe(404);
    expect(await fetch(`${h.gw.url}/console/nothing.js`).then((r) => r.status)).toBe(404);

    expect((await h.gw.call("GET", "/console/api/session", undefined, null)).status).toBe(401);
    expect((await h.gw.call("GET", "/console/api/events", undefined, null)).status).toBe(401);
    const otpKey = await h.gw.call("POST", "/v1/keys", { name: "not admin", scopes: ["otp", "messages"] });
    expect((await h.gw.call("GET", "/console/api/routes", undefined, otpKey.json.key)).status).toBe(403);
    expect((await h.gw.call("GET", "/console/api/session")).json).toMatchObject({ name: "admin", store: "sqlite", routes: ["device", "twilio"] });
  });

  it("refuses a wrong key and lets the admin key in", async () => {
    await h.signIn("og_admin_this-is-not-the-key-0000000000");
    await expect.poll(() => h.page.textContent("#login-error")).toContain("refused");
    expect(await h.page.isVisible("#shell")).toBe(false);

    await h.page.fill("#login-key", ADMIN_KEY);
    await h.page.click("#login-submit");
    await h.page.waitForSelector("#shell", { state: "visible" });
    expect(await h.page.inputValue("#login-key")).toBe("");
    await h.page.waitForSelector('#live[data-state="live"]');
    // The CSP holds in the browser: no HTML string reaches the DOM, no inline script runs.
    const refused = await h.page.evaluate(`(() => {
      const results = [];
      try {
        document.body.insertAdjacentHTML("beforeend", "<b>x</b>");
        results.push("html allowed");
      } catch (error) {
        results.push(error.name);
      }
      try {
        const script = document.createElement("script");
        script.textContent = "window.inlineRan = true";
        document.body.append(script);
      } catch (error) {
        results.push(error.name);
      }
      results.push(String(window.inlineRan ?? false));
      return results;
    })()`);
    expect(refused).toEqual(["TypeError", "TypeError", "false"]);
    // Those two refusals were this test's own; the page is checked for any other at the end.
    await h.page.waitForTimeout(100);
    expect(h.pageProblems.every((line) => /Trusted ?(HTML|Script|Type)/i.test(line))).toBe(true);
    h.pageProblems.splice(0);
  });

  it("shows a phone coming online and going offline live, without a reload", async () => {
    const device = await registerDevice(h.gw, { name: "drawer 1", maxPerMinute: 20 });
    await h.show("#phones");
    const row = `#phones-table tr[data-device-id="${device.id}"]`;
    await h.page.waitForSelector(`${row}[data-online="false"]`, { timeout: 10_000 });
    // Marks this document: a reload would lose it.
    await h.page.evaluate("void (window.stayed = true)");

    const phone = await connectPhone(h.gw, device, { battery: 76 });
    phones.push(phone);
    await h.page.waitForSelector(`${row}[data-online="true"]`, { timeout: 5000 });
    await expect.poll(() => h.page.textContent(row)).toContain("76 %");
    expect(await h.page.textContent(row)).toContain("0 / 20");

    await phone.disconnect();
    await h.page.waitForSelector(`${row}[data-online="false"]`, { timeout: 5000 });
    expect(await h.page.evaluate("window.stayed")).toBe(true);
  });

  it("registers a phone, shows its provisioning QR, rotates its token and removes it", async () => {
    await h.show("#phones");
    await h.page.fill('#register-form input[name="name"]', "drawer 2");
    await h.page.fill('#register-form input[name="maxPerMinute"]', "12");
    await h.page.fill('#register-form input[name="prefixes"]', "+254");
    await h.page.click('#register-form button[type="submit"]');
    const qr = await h.page.waitForSelector("#provisioning-qr");
    await expect.poll(() => qr.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    expect(await qr.getAttribute("src")).toMatch(/^blob:/);
    const id = (await h.page.textContent("#provisioning .fields code"))!;
    expect(id).toMatch(/^dev_/);
    await h.page.waitForSelector(`#phones-table tr[data-device-id="${id}"]`);
    expect((await h.gw.call("GET", `/v1/devices/${id}`)).json).toMatchObject({ name: "drawer 2", maxPerMinute: 12, prefixes: ["+254"] });

    // The QR came through the console's POST route, so the token was in no URL.
    expect(h.requestUrls.some((url) => url.includes(`/console/api/devices/${id}/qr`))).toBe(true);
    expect(h.requestUrls.some((url) => url.includes("token="))).toBe(false);

    const firstQr = await qr.getAttribute("src");
    await h.page.click(`#phones-table tr[data-device-id="${id}"] [data-action="rotate"]`);
    // Polled from here, not with a string predicate: the page's CSP (no unsafe-eval) refuses what waitForFunction evaluates.
    await expect.poll(() => h.page.locator("#provisioning-qr").getAttribute("src"), { timeout: 10_000 }).not.toBe(firstQr);

    const remove = `#phones-table tr[data-device-id="${id}"] [data-action="remove"]`;
    await h.page.click(remove);
    await h.page.click(remove);
    await h.page.waitForSelector(`#phones-table tr[data-device-id="${id}"]`, { state: "detached" });
    expect((await h.gw.call("GET", `/v1/devices/${id}`)).status).toBe(404);
  });

  it("puts a test send in the messages list with its timeline, failover included", async () => {
    // A phone that fails every SMS: the job fails over to Twilio.
    const device = await registerDevice(h.gw, { name: "flaky phone" });
    const phone = await connectPhone(h.gw, device, { failureRate: 1, latencyMs: 10 });
    phones.push(phone);
    await h.show("#messages");
    await h.page.waitForSelector("#test-send");
    await h.page.fill('#test-send input[name="to"]', "+254711222333");
    await h.page.fill('#test-send input[name="body"]', "console test message");
    await h.page.click('#test-send button[type="submit"]');

    // The timeline follows the job live: the phone's failure, the failover, Twilio's send.
    await h.page.waitForSelector('#timeline li[data-route="twilio"][data-state="sent"]', { timeout: 15_000 });
    const messageId = (await h.page.textContent("#timeline .card-head code"))!;
    await h.page.waitForSelector(`#jobs-table tr[data-id="${messageId}"][data-state="sent"]`);
    expect(await h.page.$(`#timeline li[data-route="device:${device.id}"][data-state="failed"]`)).not.toBeNull();
    expect(await h.page.textContent("#timeline")).toContain("failover → twilio");
    expect(await h.page.inputValue('#test-send input[name="body"]')).toBe("");
    expect(await h.page.textContent("body")).not.toContain("console test message");

    // Filters go to the REST API's history.
    await h.page.selectOption('#filters select[name="route"]', "twilio");
    await h.page.click('#filters button[type="submit"]');
    await h.page.waitForSelector(`#jobs-table tr[data-id="${messageId}"]`);
    await h.page.selectOption('#filters select[name="state"]', "failed");
    await h.page.click('#filters button[type="submit"]');
    await h.page.waitForSelector(`#jobs-table tr[data-id="${messageId}"]`, { state: "detached" });
    expect(h.requestUrls.some((url) => /\/v1\/messages\?.*state=failed/.test(url) && url.includes("route=twilio"))).toBe(true);
    await h.page.click('#filters button[type="reset"]');
    await h.page.waitForSelector(`#jobs-table tr[data-id="${messageId}"]`);
    await phone.close();
  }, 40_000);

  it("creates an API key and revokes it", async () => {
    await h.show("#keys");
    await h.page.fill('#key-form input[name="name"]', "billing service");
    await h.page.uncheck('#key-form input[value="messages"]');
    await h.page.click('#key-form button[type="submit"]');
    const key = (await (await h.page.waitForSelector("#new-key-value")).textContent())!;
    expect(key).toMatch(/^og_live_/);
    expect((await h.gw.call("GET", "/v1/keys", undefined, key)).status).toBe(403);
    const listed = (await h.gw.call("GET", "/v1/keys")).json.keys.find((k: { name: string }) => k.name === "billing service");
    expect(listed.scopes).toEqual(["otp"]);
    const row = `#keys-table tr[data-key-id="${listed.id}"]`;
    await h.page.waitForSelector(`${row}[data-revoked="false"]`);

    await h.page.click(`${row} [data-action="revoke"]`);
    await h.page.click(`${row} [data-action="revoke"]`);
    await h.page.waitForSelector(`${row}[data-revoked="true"]`);
    expect((await h.gw.call("POST", "/v1/otp", { to: "+254711222334" }, key)).status).toBe(401);
  });

  it("shows an OTP's course but never its code", async () => {
    const device = await registerDevice(h.gw, { name: "otp phone" });
    const phone = await connectPhone(h.gw, device, { latencyMs: 10 });
    phones.push(phone);
    await h.show("#messages");
    await h.page.click('.tabs button[data-kind="otps"]');
    const issued = await h.gw.call("POST", "/v1/otp", { to: "+254711222335", userId: "console-user" });
    expect(issued.status).toBe(202);
    await phone.waitFor(() => phone.sent.length > 0, 10_000);
    const code = codeIn(phone.sent.at(-1)!.body);

    // The new OTP arrives in the list by itself (live), and its timeline opens.
    const row = `#jobs-table tr[data-id="${issued.json.id}"]`;
    await h.page.waitForSelector(`${row}[data-state="sent"]`, { timeout: 10_000 });
    await h.page.click(row);
    await h.page.waitForSelector(`#timeline li[data-route="device:${device.id}"][data-state="sent"]`);
    expect((await h.gw.call("POST", "/v1/otp/verify", { id: issued.json.id, code })).json.valid).toBe(true);
    await h.page.click('#filters button[type="submit"]');
    await h.page.click(row);
    await expect.poll(() => h.page.textContent("#timeline")).toContain("approved");

    for (const view of ["#messages", "#routes", "#phones"]) {
      await h.show(view);
      await h.page.waitForTimeout(300);
      expect(await h.page.content()).not.toContain(code);
    }
  });

  it("draws each route's circuit, success and latency, and the funnel by route and country", async () => {
    await h.show("#routes");
    await h.page.waitForSelector('#route-cards [data-route="twilio"][data-circuit="closed"]');
    await h.page.waitForSelector('#route-cards [data-route="device"]');
    expect(await h.page.textContent('#route-cards [data-route="twilio"]')).toContain("100 %");
    await h.page.waitForSelector('#funnel-by-route svg g[data-key="device"]');
    await h.page.waitForSelector('#funnel-by-country svg g[data-key="KE"]');
    const funnel = (await h.gw.call("GET", "/console/api/funnel")).json;
    expect(funnel.total).toMatchObject({ issued: 1, delivered: 1, verified: 1 });
    expect(funnel.byCountry).toEqual([{ key: "KE", issued: 1, delivered: 1, verified: 1 }]);
  });

  it("never put the admin key in a URL, a log line, storage or a cookie, and broke no CSP rule", async () => {
    expect(h.pageProblems).toEqual([]);
    expect(h.logLines.length).toBeGreaterThan(10);
    expect(h.logLines.join("")).not.toContain(ADMIN_KEY);
    expect(h.requestUrls.length).toBeGreaterThan(20);
    for (const url of h.requestUrls) {
      expect(url).not.toContain(ADMIN_KEY);
      expect(url).not.toContain(encodeURIComponent(ADMIN_KEY));
    }
    const kept = await h.page.evaluate<string>("JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie, url: location.href })");
    expect(kept).not.toContain(ADMIN_KEY);
    expect(await h.page.content()).not.toContain(ADMIN_KEY);

    await h.page.click("#sign-out");
    await h.page.waitForSelector("#login", { state: "visible" });
    await h.page.reload();
    await h.page.waitForSelector("#login", { state: "visible" });
    expect(await h.page.isVisible("#shell")).toBe(false);
  });
});
