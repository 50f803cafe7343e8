/*
 * The console's only way to the gateway. The admin key lives in this
 * module's closure, nowhere else: not in a URL, not in storage, not in the
 * DOM. Every call sends it as `Authorization: Bearer`, like any API client,
 * and the live stream is read with fetch() for the same reason (EventSource
 * cannot send headers).
 */
/* global fetch, TextDecoderStream, AbortController, setTimeout, clearTimeout, console */

let key = null;

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function signIn(value) {
  key = value;
}

export function signOut() {
  key = null;
}

function headers(extra = {}) {
  if (key === null) throw new ApiError(401, "signed_out", "signed out");
  return { authorization: `Bearer ${key}`, ...extra };
}

/** Options every request shares: no cookies, no referrer, no cache. */
const BASE = { credentials: "omit", referrerPolicy: "no-referrer", cache: "no-store" };

/** JSON in, JSON (or a Blob for images) out; errors as ApiError from the gateway's envelope. */
export async function request(method, path, body) {
  const init = { ...BASE, method, headers: headers(body === undefined ? {} : { "content-type": "application/json" }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await response.json().catch(() => null) : await response.blob();
  if (!response.ok) {
    const error = data && data.error ? data.error : { code: "http_" + response.status, message: response.statusText };
    throw new ApiError(response.status, error.code, error.message);
  }
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});
export const del = (path) => request("DELETE", path);

/** A query string from the set fields of an object. */
export function query(params) {
  const parts = Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([name, value]) => `${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  return parts.length > 0 ? `?${parts.join("&")}` : "";
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Reads the console's server-sent events until stopped, reconnecting after
 * a break. `onEvent(name, data)` for each event; `onStatus` with
 * "live", "reconnecting" or "refused" (the key is no longer accepted).
 * Returns the function that stops it.
 */
export function openStream({ onEvent, onStatus }) {
  const controller = new AbortController();
  const { signal } = controller;
  let retryMs = 3000;
  const dispatch = (block) => {
    let name = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") name = value;
      else if (field === "data") data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
    if (data.length === 0) return;
    try {
      onEvent(name, JSON.parse(data.join("\n")));
    } catch (error) {
      console.warn("console: an event could not be handled", error);
    }
  };
  (async () => {
    while (!signal.aborted) {
      try {
        const response = await fetch("/console/api/events", { ...BASE, headers: headers({ accept: "text/event-stream" }), signal });
        if (response.status === 401 || response.status === 403) {
          onStatus("refused");
          return;
        }
        if (!response.ok || !response.body) throw new Error(`the stream answered ${response.status}`);
        onStatus("live");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, "\n");
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            dispatch(buffer.slice(0, end));
            buffer = buffer.slice(end + 2);
          }
        }
      } catch (error) {
        if (signal.aborted) return;
        if (error instanceof ApiError) return;
      }
      if (signal.aborted) return;
      onStatus("reconnecting");
      await pause(retryMs, signal);
    }
  })();
  return () => controller.abort();
}
