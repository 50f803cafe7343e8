/*
 * Phones: presence (online or offline, since when), battery, signal, SIMs,
 * sends in the last minute against the phone's budget, and the last failed
 * attempt seen on it; register one (its provisioning QR is shown once),
 * rotate its token, remove it. Presence changes arrive on the live stream.
 */
/* global URL, CSS, FormData, setInterval, clearInterval */
import { del, get, post } from "./api.js";
import { ago, badge, clear, copyButton, h, s, shortId, time, twoStep } from "./dom.js";

function batteryMeter(level) {
  if (level === undefined || level === null) return h("span", { class: "muted", text: "—" });
  const width = Math.round((Math.max(0, Math.min(100, level)) / 100) * 28);
  return h(
    "span",
    { class: "meter", title: `battery ${level} %` },
    s("svg", { width: 34, height: 14, viewBox: "0 0 34 14", "aria-hidden": "true" },
      s("rect", { x: 0.5, y: 0.5, width: 30, height: 13, rx: 2, class: "bar-bg", stroke: "#8c959f" }),
      s("rect", { x: 31, y: 4, width: 2.5, height: 6, rx: 1, fill: "#8c959f" }),
      s("rect", { x: 1.5, y: 1.5, width, height: 11, rx: 1.5, class: ["bar-fill", level <= 15 ? "full" : level <= 30 ? "hot" : ""] }),
    ),
    `${level} %`,
  );
}

function signalMeter(level) {
  if (level === undefined || level === null) return h("span", { class: "muted", text: "—" });
  return h(
    "span",
    { class: "meter", title: `signal ${level} of 4` },
    s("svg", { width: 22, height: 14, viewBox: "0 0 22 14", "aria-hidden": "true" },
      [1, 2, 3, 4].map((bar) => s("rect", { x: (bar - 1) * 5.5, y: 14 - bar * 3.5, width: 4, height: bar * 3.5, rx: 0.8, class: bar <= level ? "signal-on" : "signal-off" })),
    ),
    `${level}/4`,
  );
}

function budgetMeter(used, max) {
  const ratio = max > 0 ? Math.min(1, used / max) : 0;
  return h(
    "span",
    { class: "meter", title: `${used} SMS in the last minute; the phone may send ${max}` },
    s("svg", { width: 60, height: 10, viewBox: "0 0 60 10", "aria-hidden": "true" },
      s("rect", { x: 0, y: 0, width: 60, height: 10, rx: 3, class: "bar-bg" }),
      s("rect", { x: 0, y: 0, width: Math.round(ratio * 60), height: 10, rx: 3, class: ["bar-fill", ratio >= 1 ? "full" : ratio >= 0.75 ? "hot" : ""] }),
    ),
    h("span", { class: "mono", text: `${used} / ${max}` }),
  );
}

function sims(list) {
  if (!Array.isArray(list) || list.length === 0) return h("span", { class: "muted", text: "—" });
  // A SIM's own number is left out: the carrier and slot are what an operator needs.
  return list.map((sim, i) =>
    h("div", { text: `${sim && sim.slot !== undefined ? `slot ${sim.slot}` : `SIM ${i + 1}`}${sim && sim.carrier ? ` · ${sim.carrier}` : ""}` }),
  );
}

const sinceText = (iso) => `since ${time(iso)} (${ago(iso)})`;

export function mount(container, ctx) {
  const devices = new Map();
  const errors = new Map();
  let provisioningUrl = null;

  const tbody = h("tbody");
  const secretBox = h("section", { class: "panel secret", id: "provisioning", hidden: true });
  const form = h(
    "form",
    { class: "row", id: "register-form" },
    h("label", {}, "Name", h("input", { name: "name", required: true, maxlength: 100, placeholder: "drawer 1" })),
    h("label", {}, "SMS per minute", h("input", { name: "maxPerMinute", type: "number", min: 1, max: 60, placeholder: "20" })),
    h("label", {}, "Prefixes", h("input", { name: "prefixes", placeholder: "+254, +255 (empty = any)" })),
    h("button", { type: "submit", text: "Register a phone" }),
  );

  container.append(
    h("section", { class: "panel" }, h("h2", { text: "Register a phone" }), form),
    secretBox,
    h(
      "section",
      { class: "panel" },
      h("h2", { text: "Phones" }),
      h(
        "table",
        { id: "phones-table" },
        h("thead", {}, h("tr", {}, ["Phone", "Status", "Battery", "Signal", "SIMs", "Sends (last min)", "Last error", ""].map((t) => h("th", { text: t })))),
        tbody,
      ),
    ),
  );

  function row(device) {
    const presence = device.presence ?? {};
    const lastError = device.lastError ?? errors.get(device.id) ?? null;
    return h(
      "tr",
      { dataset: { deviceId: device.id, online: String(device.online) } },
      h("td", {}, h("div", { class: "nowrap", text: device.name }), shortId(device.id), device.prefixes.length ? h("div", { class: "muted", text: device.prefixes.join(" ") }) : null),
      h(
        "td",
        { class: "presence" },
        badge(device.online ? "online" : "offline", device.online ? "ok" : "idle"),
        presence.since ? h("div", { class: "muted since", title: presence.since, dataset: { since: presence.since }, text: sinceText(presence.since) }) : h("div", { class: "muted", text: "never connected" }),
        presence.app ? h("div", { class: "muted", text: presence.app }) : null,
      ),
      h("td", {}, batteryMeter(presence.battery)),
      h("td", {}, signalMeter(presence.signal)),
      h("td", {}, sims(presence.sims)),
      h("td", {}, budgetMeter(device.sentLastMinute, device.maxPerMinute)),
      h("td", {}, lastError ? [h("div", { class: "mono clip", title: lastError.error, text: lastError.error }), h("div", { class: "muted", text: time(lastError.at) })] : h("span", { class: "muted", text: "—" })),
      h(
        "td",
        {},
        h(
          "div",
          { class: "actions" },
          h("button", { type: "button", class: "quiet small", text: "Rotate token", dataset: { action: "rotate" }, onclick: () => rotate(device) }),
          twoStep("Remove", "Really remove?", () => remove(device), { attrs: { "data-action": "remove" } }),
        ),
      ),
    );
  }

  function render() {
    const list = [...devices.values()].sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    if (list.length === 0) return tbody.replaceChildren(h("tr", {}, h("td", { colspan: 8, class: "empty", text: "No phones yet: register one above." })));
    tbody.replaceChildren(...list.map(row));
  }

  const rowOf = (id) => tbody.querySelector(`tr[data-device-id="${CSS.escape(id)}"]`);

  /** One phone changed: only its row is redrawn, so a half-confirmed Remove elsewhere stays armed. */
  function upsert(device, flash = false) {
    const before = devices.get(device.id);
    devices.set(device.id, device);
    if (device.lastError) errors.set(device.id, device.lastError);
    const current = rowOf(device.id);
    if (!current) return render();
    const next = row(device);
    current.replaceWith(next);
    if (flash && before && before.online !== device.online) next.classList.add("flash");
  }

  function closeSecret() {
    if (provisioningUrl) URL.revokeObjectURL(provisioningUrl);
    provisioningUrl = null;
    clear(secretBox).hidden = true;
  }

  async function showProvisioning(created, why) {
    closeSecret();
    const qr = await post(`/console/api/devices/${encodeURIComponent(created.id)}/qr`, { token: created.token });
    provisioningUrl = URL.createObjectURL(qr);
    secretBox.append(
      h("div", { class: "card-head" }, h("h2", { text: `${why}: ${created.name}` }), h("button", { type: "button", class: "quiet", text: "Done", onclick: closeSecret })),
      h("p", { class: "hint", text: "Scan this with the otpgate app. It is shown once: the gateway keeps only a digest of the token. Lost it? Rotate the token." }),
      h(
        "div",
        { class: "secret-body" },
        h("img", { class: "qr", id: "provisioning-qr", src: provisioningUrl, alt: `Provisioning QR code for ${created.name}` }),
        h(
          "div",
          { class: "fields" },
          h("span", { class: "muted", text: "Device id" }), h("code", { text: created.id }),
          h("span", { class: "muted", text: "MQTT" }), h("code", { text: created.mqtt.url }),
          h("span", { class: "muted", text: "CA fingerprint" }), h("code", { text: created.caFingerprint }),
          h("span", { class: "muted", text: "Provisioning URI" }), h("div", {}, copyButton(() => created.provisioning, "Copy URI"), " ", copyButton(() => created.token, "Copy token")),
        ),
      ),
    );
    secretBox.hidden = false;
    secretBox.scrollIntoView({ block: "nearest" });
  }

  async function load() {
    try {
      const [{ devices: list }, { errors: known }] = await Promise.all([get("/v1/devices"), get("/console/api/device-errors")]);
      for (const [id, error] of Object.entries(known)) errors.set(id, error);
      devices.clear();
      for (const device of list) devices.set(device.id, device);
      render();
    } catch (error) {
      ctx.failed(error);
    }
  }

  async function rotate(device) {
    try {
      const rotated = await post(`/v1/devices/${encodeURIComponent(device.id)}/token`);
      await showProvisioning(rotated, "New token");
      ctx.toast(`New token for ${device.name}; the old one no longer works.`);
    } catch (error) {
      ctx.failed(error);
    }
  }

  async function remove(device) {
    try {
      await del(`/v1/devices/${encodeURIComponent(device.id)}`);
      devices.delete(device.id);
      render();
      ctx.toast(`${device.name} removed.`);
    } catch (error) {
      ctx.failed(error);
    }
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const body = { name: String(data.get("name")).trim() };
    if (data.get("maxPerMinute")) body.maxPerMinute = Number(data.get("maxPerMinute"));
    const prefixes = String(data.get("prefixes") ?? "").split(/[\s,]+/).filter(Boolean);
    if (prefixes.length) body.prefixes = prefixes;
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const created = await post("/v1/devices", body);
      form.reset();
      await showProvisioning(created, "Registered");
      const view = await get(`/v1/devices/${encodeURIComponent(created.id)}`);
      upsert(view);
    } catch (error) {
      ctx.failed(error);
    } finally {
      button.disabled = false;
    }
  });

  const onDevice = (event) => upsert(event.detail, true);
  const onRemoved = (event) => {
    if (devices.delete(event.detail.id)) render();
  };
  const onHello = (event) => {
    devices.clear();
    for (const device of event.detail.devices) devices.set(device.id, device);
    render();
  };
  ctx.live.addEventListener("device", onDevice);
  ctx.live.addEventListener("device-removed", onRemoved);
  ctx.live.addEventListener("hello", onHello);
  // "since … (5 min)" moves with time even without events.
  const ticker = setInterval(() => {
    for (const element of tbody.querySelectorAll(".since")) element.textContent = sinceText(element.dataset.since);
  }, 10_000);

  render();
  void load();
  return () => {
    clearInterval(ticker);
    closeSecret();
    ctx.live.removeEventListener("device", onDevice);
    ctx.live.removeEventListener("device-removed", onRemoved);
    ctx.live.removeEventListener("hello", onHello);
  };
}
