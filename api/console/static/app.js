/*
 * The console's entry: sign-in, the header, the views behind #phones,
 * #messages, #routes and #keys, and the live stream that feeds them.
 */
/* global document, window, setTimeout, clearTimeout, EventTarget, CustomEvent */
import { ApiError, get, openStream, signIn, signOut } from "./api.js";
import { clear } from "./dom.js";
import * as keys from "./keys.js";
import * as messages from "./messages.js";
import * as phones from "./phones.js";
import * as routes from "./routes.js";

const VIEWS = { phones, messages, routes, keys };

const $ = (id) => document.getElementById(id);
const loginForm = $("login-form");
const keyInput = $("login-key");
const loginError = $("login-error");

/** Events from the stream, as DOM events: `job`, `device`, `device-removed`, `hello`. */
const live = new EventTarget();
let stopStream = null;
let unmount = null;
let session = null;

let toastTimer;
function toast(text, bad = false) {
  const box = $("toast");
  box.textContent = text;
  box.classList.toggle("bad", bad);
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), bad ? 6000 : 3000);
}

/** What every view is given. */
const context = {
  live,
  toast,
  get session() {
    return session;
  },
  /** Shows an error the API gave; a refused key ends the session. */
  failed(error) {
    if (error instanceof ApiError && error.status === 401) {
      end("The key is no longer accepted; sign in again.");
      return;
    }
    toast(error instanceof ApiError ? `${error.message} (${error.status})` : String(error), true);
  },
};

function setLive(state) {
  const badge = $("live");
  badge.dataset.state = state;
  badge.textContent = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…", refused: "refused" }[state] ?? state;
}

function show(name) {
  const view = VIEWS[name] ? name : "phones";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  unmount?.();
  const container = clear($("view"));
  container.dataset.view = view;
  unmount = VIEWS[view].mount(container, context) ?? null;
}

function route() {
  if (session) show(window.location.hash.slice(1));
}

async function start(key) {
  signIn(key);
  try {
    session = await get("/console/api/session");
  } catch (error) {
    signOut();
    throw error;
  }
  $("login").hidden = true;
  $("shell").hidden = false;
  $("node").textContent = `${session.version} · ${session.store} · ${session.routes.join(" → ") || "no routes"}`;
  setLive("connecting");
  stopStream = openStream({
    onEvent: (name, data) => live.dispatchEvent(new CustomEvent(name, { detail: data })),
    onStatus: (state) => {
      setLive(state);
      if (state === "refused") end("The key is no longer accepted; sign in again.");
    },
  });
  route();
}

function end(message = "") {
  stopStream?.();
  stopStream = null;
  unmount?.();
  unmount = null;
  session = null;
  signOut();
  clear($("view"));
  $("shell").hidden = true;
  $("login").hidden = false;
  loginError.textContent = message;
  keyInput.focus();
}

loginForm.addEventListener("submit", async (event) => {
  // Never let the browser submit the form: the key would leave in a request body or, for GET, a URL.
  event.preventDefault();
  const key = keyInput.value.trim();
  // Out of the field at once, so nothing else on the page can read it back.
  keyInput.value = "";
  loginError.textContent = "";
  if (!key) return;
  const button = $("login-submit");
  button.disabled = true;
  try {
    await start(key);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) loginError.textContent = "That key was refused.";
    else if (error instanceof ApiError && error.status === 403) loginError.textContent = "That key is valid but lacks the admin scope.";
    else loginError.textContent = `Could not sign in: ${error.message}`;
  } finally {
    button.disabled = false;
  }
});

$("sign-out").addEventListener("click", () => end());
window.addEventListener("hashchange", route);
keyInput.focus();
