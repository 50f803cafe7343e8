/*
 * API keys through the REST API's admin routes: the list (prefix, scopes,
 * when made and revoked), a new key (shown once, here only), revocation.
 */
/* global FormData */
import { del, get, post } from "./api.js";
import { badge, clear, copyButton, h, shortId, time, twoStep } from "./dom.js";

const SCOPES = ["otp", "messages", "admin", "publisher"];

export function mount(container, ctx) {
  const tbody = h("tbody");
  const secretBox = h("section", { class: "panel secret", id: "new-key", hidden: true });
  const form = h(
    "form",
    { class: "row", id: "key-form" },
    h("label", {}, "Name", h("input", { name: "name", required: true, maxlength: 100, placeholder: "billing service" })),
    h("fieldset", { class: "row" }, h("legend", { class: "muted", text: "Scopes" }),
      SCOPES.map((scope) => h("label", { class: "check" }, h("input", { type: "checkbox", name: "scope", value: scope, checked: scope === "otp" || scope === "messages" }), scope)),
    ),
    h("button", { type: "submit", text: "Create key" }),
  );

  container.append(
    h("section", { class: "panel" }, h("h2", { text: "Create an API key" }), form),
    secretBox,
    h(
      "section",
      { class: "panel" },
      h("h2", { text: "API keys" }),
      h("p", { class: "hint", text: "The admin key from the gateway's first start is not listed: it is configuration (ADMIN_API_KEY or DATA_DIR), not a record." }),
      h("table", { id: "keys-table" }, h("thead", {}, h("tr", {}, ["Name", "Key", "Scopes", "Created", "State", ""].map((t) => h("th", { text: t })))), tbody),
    ),
  );

  function render(keys) {
    if (keys.length === 0) return tbody.replaceChildren(h("tr", {}, h("td", { colspan: 6, class: "empty", text: "No API keys yet." })));
    tbody.replaceChildren(
      ...[...keys].reverse().map((key) =>
        h(
          "tr",
          { dataset: { keyId: key.id, revoked: String(Boolean(key.revokedAt)) } },
          h("td", {}, h("div", { text: key.name }), shortId(key.id)),
          h("td", {}, h("code", { text: `${key.prefix}…` })),
          h("td", { text: key.scopes.join(", ") }),
          h("td", { text: time(key.createdAt) }),
          h("td", {}, key.revokedAt ? [badge("revoked", "bad"), h("div", { class: "muted", text: time(key.revokedAt) })] : badge("active", "ok")),
          h("td", {}, key.revokedAt ? null : twoStep("Revoke", "Really revoke?", () => revoke(key), { attrs: { "data-action": "revoke" } })),
        ),
      ),
    );
  }

  async function load() {
    try {
      render((await get("/v1/keys")).keys);
    } catch (error) {
      ctx.failed(error);
    }
  }

  async function revoke(key) {
    try {
      await del(`/v1/keys/${encodeURIComponent(key.id)}`);
      ctx.toast(`${key.name} revoked: it stops working at once.`);
      await load();
    } catch (error) {
      ctx.failed(error);
    }
  }

  function closeSecret() {
    clear(secretBox).hidden = true;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const scopes = data.getAll("scope").map(String);
    if (scopes.length === 0) return ctx.toast("Pick at least one scope.", true);
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const created = await post("/v1/keys", { name: String(data.get("name")).trim(), scopes });
      form.reset();
      closeSecret();
      secretBox.append(
        h("div", { class: "card-head" }, h("h2", { text: `New key: ${created.name}` }), h("button", { type: "button", class: "quiet", text: "Done", onclick: closeSecret })),
        h("p", { class: "hint", text: "Copy it now: it is shown once, and the gateway keeps only its digest." }),
        h("div", { class: "row" }, h("code", { id: "new-key-value", text: created.key }), copyButton(() => created.key)),
      );
      secretBox.hidden = false;
      await load();
    } catch (error) {
      ctx.failed(error);
    } finally {
      button.disabled = false;
    }
  });

  void load();
  return closeSecret;
}
