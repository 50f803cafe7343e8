/*
 * Messages and OTPs from the REST API's history (GET /v1/messages,
 * GET /v1/otp): filtered by state, route and time, newest first, a page at a
 * time; each one's timeline of attempts and failovers; a test send. Job state
 * changes arrive on the live stream. Nothing here ever shows a text or a
 * code: the API does not return them.
 */
/* global FormData, CSS, setTimeout */
import { get, post, query } from "./api.js";
import { badge, clear, h, shortId, time } from "./dom.js";

const STATES = ["queued", "dispatched", "sent", "delivered", "failed", "expired"];
const OTP_STATUSES = ["pending", "approved", "expired", "max_attempts"];

const KINDS = {
  messages: { label: "Messages", list: "/v1/messages", item: "/v1/messages/", field: "messages" },
  otps: { label: "OTPs", list: "/v1/otp", item: "/v1/otp/", field: "otps" },
};

/** The time a datetime-local field means, as an instant. */
function instant(value) {
  if (!value) return undefined;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** Attempts in order, with a failover marker between an attempt that failed and the next. */
export function timeline(view, kind) {
  const attempts = view.delivery.attempts;
  const items = [h("li", { class: "created" }, h("div", {}, h("b", { text: kind === "otps" ? "OTP accepted" : "message accepted" })), h("div", { class: "when", text: time(view.createdAt) }))];
  attempts.forEach((attempt, i) => {
    items.push(
      h(
        "li",
        { class: attempt.state, dataset: { route: attempt.route, state: attempt.state } },
        h("div", {}, h("b", { text: attempt.route }), " ", badge(attempt.state)),
        h("div", { class: "when", text: time(attempt.at) }),
        attempt.receivedAt ? h("div", { class: "detail", text: `the phone had it at ${time(attempt.receivedAt)}` }) : null,
        attempt.providerMessageId ? h("div", { class: "detail" }, "provider id ", h("code", { text: attempt.providerMessageId })) : null,
        attempt.error ? h("div", { class: "detail mono", text: attempt.error }) : null,
        attempt.late ? h("div", { class: "detail", text: `late ack: ${attempt.late.status} at ${time(attempt.late.at)} (recorded, not acted on)` }) : null,
      ),
    );
    const next = attempts[i + 1];
    if (next && (attempt.state === "failed" || attempt.state === "cancelled")) items.push(h("li", { class: "failover", text: `failover → ${next.route}` }));
  });
  const end = view.delivery.state;
  items.push(
    h(
      "li",
      { class: end },
      h("div", {}, h("b", { text: "now " }), badge(end), kind === "otps" ? [" ", badge(view.status)] : null),
      h("div", { class: "when", text: view.updatedAt ? `updated ${time(view.updatedAt)}` : "" }),
    ),
  );
  return h("ol", { class: "timeline" }, items);
}

/** Later in a job's course: more attempts, or the same ones changed later. Both sides come from the server's clock. */
function later(a, b) {
  if (a.attempts.length !== b.attempts.length) return a.attempts.length > b.attempts.length;
  const [atA, atB] = [a.attempts.at(-1)?.at ?? "", b.attempts.at(-1)?.at ?? ""];
  if (atA !== atB) return atA > atB;
  // A job may end (no route left) without its attempts changing.
  return STAGE[a.state] > STAGE[b.state];
}
const STAGE = { queued: 0, dispatched: 1, sent: 2, delivered: 3, failed: 3, expired: 3 };

export function mount(container, ctx) {
  /** The newest course seen on the stream per id: a view fetched just before a change must not undo it. */
  const latest = new Map();
  const freshen = (view) => {
    const seen = latest.get(view.id);
    if (!seen || !later(seen.delivery, view.delivery)) return view;
    return { ...view, delivery: seen.delivery, ...(kind === "messages" ? { status: seen.delivery.state, updatedAt: seen.updatedAt } : {}) };
  };
  let kind = "messages";
  let rows = [];
  let nextCursor = null;
  let selected = null;
  let detail = null;

  const tbody = h("tbody");
  const thead = h("thead");
  const detailBox = h("section", { class: "panel", id: "timeline" }, h("p", { class: "muted", text: "Pick a row to see its attempts." }));
  const more = h("button", { type: "button", class: "quiet", text: "Load more", hidden: true, onclick: () => load(true) });
  const routeOptions = ["device", ...ctx.session.routes.filter((route) => route !== "device")];
  const filters = h(
    "form",
    { class: "row", id: "filters" },
    h("label", {}, "State", h("select", { name: "state" }, h("option", { value: "", text: "any" }), STATES.map((state) => h("option", { value: state, text: state })))),
    h("label", { id: "status-filter", hidden: true }, "OTP status", h("select", { name: "status" }, h("option", { value: "", text: "any" }), OTP_STATUSES.map((status) => h("option", { value: status, text: status.replace("_", " ") })))),
    h("label", {}, "Route", h("select", { name: "route" }, h("option", { value: "", text: "any" }), routeOptions.map((route) => h("option", { value: route, text: route })))),
    h("label", {}, "Since", h("input", { type: "datetime-local", name: "since", step: 1 })),
    h("label", {}, "Until", h("input", { type: "datetime-local", name: "until", step: 1 })),
    h("button", { type: "submit", text: "Apply" }),
    h("button", { type: "reset", class: "quiet", text: "Clear" }),
  );
  const tabs = h(
    "div",
    { class: "tabs", role: "group" },
    Object.entries(KINDS).map(([name, { label }]) =>
      h("button", { type: "button", dataset: { kind: name }, "aria-pressed": String(name === kind), text: label, onclick: () => switchKind(name) }),
    ),
  );
  const sendForm = h(
    "form",
    { class: "row", id: "test-send" },
    h("label", {}, "To", h("input", { name: "to", required: true, placeholder: "+254711222333", autocomplete: "off" })),
    h("label", {}, "Text", h("input", { name: "body", required: true, maxlength: 1600, size: 36, placeholder: "otpgate test message", autocomplete: "off" })),
    h("button", { type: "submit", text: "Send a test SMS" }),
  );

  container.append(
    h("section", { class: "panel" }, h("h2", { text: "Test send" }), h("p", { class: "hint", text: "A plain SMS through POST /v1/messages, routed like any other." }), sendForm),
    h(
      "div",
      { class: "split" },
      h("section", { class: "panel" }, tabs, filters, h("table", { id: "jobs-table" }, thead, tbody), more),
      detailBox,
    ),
  );

  const headers = () =>
    kind === "messages" ? ["Created", "Message", "To", "State", "Route", "Attempts"] : ["Created", "OTP", "Channel", "Status", "Delivery", "Route", "Attempts"];

  function row(view) {
    const cells =
      kind === "messages"
        ? [time(view.createdAt), shortId(view.id), h("span", { class: "mono", text: view.to }), badge(view.status), view.delivery.route ?? "—", view.delivery.attempts.length]
        : [time(view.createdAt), shortId(view.id), view.channel, badge(view.status), badge(view.delivery.state), view.delivery.route ?? "—", view.delivery.attempts.length];
    return h(
      "tr",
      { class: ["clickable", selected === view.id && "selected"], dataset: { id: view.id, state: view.delivery.state }, onclick: () => select(view.id) },
      cells.map((cell) => h("td", {}, cell)),
    );
  }

  function render(emptyText = "Nothing matches.") {
    thead.replaceChildren(h("tr", {}, headers().map((text) => h("th", { text }))));
    if (rows.length === 0) tbody.replaceChildren(h("tr", {}, h("td", { colspan: headers().length, class: "empty", text: emptyText })));
    else tbody.replaceChildren(...rows.map(row));
    more.hidden = !nextCursor;
  }

  function currentFilters() {
    const data = new FormData(filters);
    const values = {
      state: data.get("state") || undefined,
      route: data.get("route") || undefined,
      since: instant(data.get("since")),
      until: instant(data.get("until")),
    };
    if (kind === "otps") values.status = data.get("status") || undefined;
    return values;
  }

  /** Whether a record fits the filters in force, to place a live newcomer in the list or not. */
  function fits(view) {
    const f = currentFilters();
    if (f.state && view.delivery.state !== f.state) return false;
    if (f.status && view.status !== f.status) return false;
    if (f.route && !(f.route === "device" ? (view.delivery.route ?? "").startsWith("device:") : view.delivery.route === f.route)) return false;
    if (f.since && view.createdAt < f.since) return false;
    if (f.until && view.createdAt >= f.until) return false;
    return true;
  }

  async function load(append = false) {
    try {
      const page = await get(`${KINDS[kind].list}${query({ ...currentFilters(), cursor: append ? nextCursor : undefined })}`);
      const items = page[KINDS[kind].field];
      rows = (append ? [...rows, ...items] : items).map(freshen);
      nextCursor = page.nextCursor;
      render();
    } catch (error) {
      // A gateway from before the history routes: live changes and test sends still show.
      if (error.status === 404 && !append) return render(`This gateway has no history listing (GET ${KINDS[kind].list}); new ones appear as they change.`);
      ctx.failed(error);
    }
  }

  function showDetail() {
    if (!detail) return clear(detailBox).append(h("p", { class: "muted", text: "Pick a row to see its attempts." }));
    clear(detailBox).append(
      h("div", { class: "card-head" }, h("h2", { text: kind === "otps" ? "OTP" : "Message" }), h("code", { text: detail.id })),
      kind === "messages" ? h("p", { class: "muted" }, "to ", h("span", { class: "mono", text: detail.to })) : h("p", { class: "muted", text: `${detail.channel} · ${detail.attemptsLeft} checks left · expires ${time(detail.expiresAt)}` }),
      timeline(detail, kind),
    );
  }

  async function select(id) {
    selected = id;
    render();
    try {
      detail = freshen(await get(`${KINDS[kind].item}${encodeURIComponent(id)}`));
      if (selected === id) showDetail();
    } catch (error) {
      ctx.failed(error);
    }
  }

  function switchKind(name) {
    if (name === kind) return;
    kind = name;
    for (const tab of tabs.querySelectorAll("button")) tab.setAttribute("aria-pressed", String(tab.dataset.kind === kind));
    filters.querySelector("#status-filter").hidden = kind !== "otps";
    selected = null;
    detail = null;
    rows = [];
    nextCursor = null;
    showDetail();
    render();
    void load();
  }

  filters.addEventListener("submit", (event) => {
    event.preventDefault();
    void load();
  });
  // "reset" fires before the fields are cleared: load once they are.
  filters.addEventListener("reset", () => setTimeout(() => load(), 0));

  sendForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const data = new FormData(sendForm);
    const button = sendForm.querySelector("button");
    button.disabled = true;
    try {
      const accepted = await post("/v1/messages", { to: String(data.get("to")).trim(), body: String(data.get("body")) });
      // The text leaves the page once sent: the console shows courses, not contents.
      sendForm.elements.namedItem("body").value = "";
      ctx.toast(`Accepted: ${accepted.id}`);
      if (kind !== "messages") switchKind("messages");
      const view = freshen(await get(`/v1/messages/${encodeURIComponent(accepted.id)}`));
      if (!rows.some((r) => r.id === view.id)) rows.unshift(view);
      await select(view.id);
    } catch (error) {
      ctx.failed(error);
    } finally {
      button.disabled = false;
    }
  });

  /** A job changed: its row and open timeline follow; a newcomer that fits the filters joins the top. */
  const onJob = async (event) => {
    const job = event.detail;
    if ((kind === "messages") !== (job.kind === "message")) return;
    const id = job.kind === "message" ? job.id : job.otpId;
    if (!id) return;
    const delivery = { state: job.state, route: job.route, attempts: job.attempts };
    const seen = latest.get(id);
    if (seen && !later(delivery, seen.delivery)) return;
    latest.set(id, { delivery, updatedAt: job.updatedAt });
    if (latest.size > 5000) latest.delete(latest.keys().next().value);
    const known = rows.find((r) => r.id === id);
    if (known) {
      known.delivery = delivery;
      if (kind === "messages") known.status = job.state;
      known.updatedAt = job.updatedAt;
      const current = tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`);
      current?.replaceWith(row(known));
    }
    if (detail && detail.id === id) {
      detail = freshen(detail);
      showDetail();
    }
    if (known) return;
    try {
      const view = freshen(await get(`${KINDS[kind].item}${encodeURIComponent(id)}`));
      if (rows.some((r) => r.id === id) || !fits(view)) return;
      rows.unshift(view);
      render();
      tbody.querySelector(`tr[data-id="${CSS.escape(id)}"]`)?.classList.add("flash");
    } catch {
      // Gone already, or not readable: the next load shows what is there.
    }
  };
  ctx.live.addEventListener("job", onJob);

  render();
  void load();
  return () => ctx.live.removeEventListener("job", onJob);
}
