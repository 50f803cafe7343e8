/*
 * Building the page without HTML strings: every element is made with
 * createElement and every text set with textContent, so nothing a record
 * holds can become markup (and the CSP's Trusted Types rule would refuse
 * an innerHTML anyway).
 */
/* global document, navigator, setTimeout, clearTimeout, Node */

/**
 * h("button", { class: "quiet", onclick: fn, dataset: { id } }, "text", child)
 * Props: class, text, dataset, on<event> (listeners), and attributes otherwise
 * (false/null/undefined leave them out).
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  apply(element, props);
  append(element, children);
  return element;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function s(tag, props = {}, ...children) {
  const element = document.createElementNS(SVG_NS, tag);
  apply(element, props);
  append(element, children);
  return element;
}

function apply(element, props) {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.setAttribute("class", Array.isArray(value) ? value.filter(Boolean).join(" ") : value);
    else if (name === "text") element.textContent = String(value);
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") element.addEventListener(name.slice(2), value);
    else if (name === "value" || name === "checked" || name === "disabled" || name === "hidden") element[name] = value;
    else element.setAttribute(name, value === true ? "" : String(value));
  }
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(element) {
  element.replaceChildren();
  return element;
}


/** "10:42:07", with the date when it is not today. */
export function time(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  const today = new Date().toDateString() === date.toDateString();
  const clock = date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return today ? clock : `${date.toLocaleDateString([], { month: "short", day: "numeric" })} ${clock}`;
}

/** "5 min", "2 h 10 min", … since `iso`. */
export function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d`;
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? "—" : `${(ratio * 100).toFixed(ratio >= 0.995 || ratio === 0 ? 0 : 1)} %`;
}

export function seconds(value) {
  if (value === null || value === undefined) return "—";
  return value < 1 ? `${Math.round(value * 1000)} ms` : `${value.toFixed(2)} s`;
}

const STATE_CLASS = {
  queued: "idle",
  dispatched: "info",
  sent: "ok",
  delivered: "ok",
  failed: "bad",
  expired: "warn",
  cancelled: "bad",
  pending: "info",
  approved: "ok",
  max_attempts: "bad",
};

export function badge(text, kind = STATE_CLASS[text] ?? "idle") {
  return h("span", { class: ["badge", kind], text: String(text).replace(/_/g, " ") });
}

/**
 * A button that acts on its second click within a few seconds: a destructive
 * action needs a deliberate confirmation, without a modal dialog.
 */
export function twoStep(label, armedLabel, action, props = {}) {
  let timer;
  const button = h("button", { type: "button", class: ["danger", "small", props.class], ...props.attrs, text: label });
  button.addEventListener("click", async () => {
    if (!button.classList.contains("armed")) {
      button.classList.add("armed");
      button.textContent = armedLabel;
      timer = setTimeout(() => {
        button.classList.remove("armed");
        button.textContent = label;
      }, 4000);
      return;
    }
    clearTimeout(timer);
    button.disabled = true;
    try {
      await action();
    } finally {
      button.disabled = false;
      button.classList.remove("armed");
      button.textContent = label;
    }
  });
  return button;
}

export function copyButton(getText, label = "Copy") {
  return h("button", {
    type: "button",
    class: "quiet small",
    text: label,
    onclick: async (event) => {
      const button = event.currentTarget;
      try {
        await navigator.clipboard.writeText(getText());
        button.textContent = "Copied";
      } catch {
        button.textContent = "Copy failed";
      }
      setTimeout(() => (button.textContent = label), 1500);
    },
  });
}

/** A short form of an id for tables; the full one is in the title. */
export function shortId(id) {
  return h("code", { title: id, text: id.length > 14 ? `${id.slice(0, 8)}…${id.slice(-4)}` : id });
}
