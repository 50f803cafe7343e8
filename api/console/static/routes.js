/*
 * Routes: each route's circuit (cloud routes), success rate and latency over
 * the last minutes and since the node started, from the gateway's own
 * metrics; and the OTP funnel, issued → delivered → verified, by route and by
 * country, from the stored history.
 */
/* global setInterval, clearInterval */
import { get, query } from "./api.js";
import { funnelChart, groupedBars, outcomeBar } from "./charts.js";
import { badge, clear, h, percent, seconds, time } from "./dom.js";

const WINDOWS = [
  ["1 hour", 3_600_000],
  ["24 hours", 86_400_000],
  ["7 days", 7 * 86_400_000],
];

const CIRCUIT = { closed: ["closed", "ok"], open: ["open", "bad"], half_open: ["half-open", "warn"] };

function figures(label, f) {
  return h(
    "div",
    { class: "stats" },
    h("div", { class: "stat" }, h("b", { text: percent(f.successRate) }), h("span", { text: `success, ${label}` })),
    h("div", { class: "stat" }, h("b", { text: seconds(f.latency.p50) }), h("span", { text: "p50 latency" })),
    h("div", { class: "stat" }, h("b", { text: seconds(f.latency.p95) }), h("span", { text: "p95 latency" })),
  );
}

function legend(names) {
  return h("div", { class: "legend" }, names.map((name) => h("span", { class: name, text: name })));
}

function routeCard(view, windowSeconds) {
  const circuit = view.circuit;
  const [label, kind] = circuit ? CIRCUIT[circuit.state] : ["no breaker", "idle"];
  const sum = (outcomes) => Object.values(outcomes).reduce((a, b) => a + b, 0);
  return h(
    "section",
    { class: "panel route", dataset: { route: view.route, circuit: circuit?.state ?? "none" } },
    h("div", { class: "card-head" }, h("h3", { text: view.route }), badge(view.route === "device" ? "phones" : `circuit ${label}`, view.route === "device" ? "info" : kind)),
    circuit && circuit.state !== "closed" && circuit.since ? h("p", { class: "muted", text: `${label} since ${time(circuit.since)}` }) : null,
    circuit ? h("p", { class: "muted", text: `${circuit.recentFailures} of ${circuit.recentCalls} calls failed in the last 30 s; ${circuit.refused} refused by the open circuit since start` }) : null,
    figures(`last ${Math.round(windowSeconds / 60)} min`, view.recent),
    outcomeBar(view.recent.outcomes, { title: `${view.route}: attempts in the last ${Math.round(windowSeconds / 60)} min` }),
    h("p", { class: "muted", text: `${sum(view.recent.outcomes)} attempts recently · since start: ${sum(view.sinceStart.outcomes)} attempts, ${percent(view.sinceStart.successRate)} success, p95 ${seconds(view.sinceStart.latency.p95)}` }),
    view.configured ? null : h("p", { class: "muted", text: "not in FAILOVER_ORDER any more" }),
  );
}

export function mount(container, ctx) {
  let windowMs = WINDOWS[1][1];
  const cards = h("div", { class: "grid", id: "route-cards" });
  const funnelBox = h("div", { id: "funnel" });
  const select = h(
    "select",
    { id: "funnel-window", onchange: () => ((windowMs = Number(select.value)), void loadFunnel()) },
    WINDOWS.map(([label, ms]) => h("option", { value: ms, text: label, selected: ms === windowMs })),
  );

  container.append(
    h("section", { class: "panel" }, h("h2", { text: "Routes" }), h("p", { class: "hint", text: "From this node's metrics: a cluster's other nodes keep their own counts and circuits." }), legend(["sent", "failed", "timeout", "skipped"]), cards),
    h(
      "section",
      { class: "panel" },
      h("div", { class: "card-head" }, h("h2", { text: "OTP funnel" }), h("label", {}, "Window", select)),
      h("p", { class: "hint", text: "Issued → delivered (a route sent it) → verified, from the stored OTP history of the whole cluster. Bars read issued, delivered, verified, top to bottom." }),
      funnelBox,
    ),
  );

  async function loadRoutes() {
    try {
      const { routes, windowSeconds } = await get("/console/api/routes");
      cards.replaceChildren(...(routes.length ? routes.map((view) => routeCard(view, windowSeconds)) : [h("p", { class: "muted", text: "No route is configured." })]));
    } catch (error) {
      ctx.failed(error);
    }
  }

  async function loadFunnel() {
    try {
      const until = Date.now();
      const funnel = await get(`/console/api/funnel${query({ since: new Date(until - windowMs).toISOString(), until: new Date(until).toISOString() })}`);
      clear(funnelBox).append(
        legend(["issued", "delivered", "verified"]),
        h("h3", { text: "All OTPs" }),
        h("p", { class: "muted", text: funnel.truncated ? `The newest ${funnel.issued} OTPs of the window.` : `${funnel.issued} OTPs in the window.` }),
        funnelChart(funnel.total),
        h("div", { class: "split" },
          h("div", { id: "funnel-by-route" }, h("h3", { text: "By route" }), groupedBars(funnel.byRoute, { title: "OTP funnel by route" })),
          h("div", { id: "funnel-by-country" }, h("h3", { text: "By country" }), groupedBars(funnel.byCountry, { title: "OTP funnel by country" })),
        ),
      );
    } catch (error) {
      ctx.failed(error);
    }
  }

  void loadRoutes();
  void loadFunnel();
  const timer = setInterval(() => {
    void loadRoutes();
    void loadFunnel();
  }, 10_000);
  return () => clearInterval(timer);
}
