/**
 * The provisioning URI a phone scans as a QR code (and that `POST /v1/devices`
 * returns as `provisioning`):
 *
 *   otpgate://provision?v=1&mqtt=<mqtts URL>[&mqtt=<mqtts URL>…]&id=<device id>&token=<token>&fp=<CA SHA-256>[&ca=<http(s) URL of the CA PEM>]
 *
 * Values are URL-encoded query parameters. `mqtt` may be repeated, up to
 * MAX_MQTT_URLS times: the brokers of a cluster, in the order a phone tries
 * them, moving to the next when one is unreachable (DESIGN.md). A URI with one
 * `mqtt` is exactly the v=1 URI it always was; a phone that predates the list
 * refuses a URI with several (a repeated parameter) rather than pick one. Every
 * other parameter appears at most once. `fp` is the pin: the phone trusts a
 * broker only if the TLS chain it presents leads to the CA with this
 * fingerprint. `ca` is optional help: where the phone can download that CA's
 * PEM; the download is trusted only if its fingerprint equals `fp`, so the URL
 * may be plain http. Unknown parameters are ignored so later versions can add
 * some; a different `v` is refused because its meaning is unknown.
 *
 * Pure and shared with the server, which builds the URI with the same checks.
 * Error messages never repeat the token.
 */
import { normalizeFingerprint } from "./fingerprint.js";
import { DEVICE_ID_PATTERN } from "./topics.js";

export const PROVISIONING_VERSION = "1";
const MAX_TOKEN_CHARS = 512;
/** Brokers one URI may list: a cluster's worth, and the QR code stays scannable. */
export const MAX_MQTT_URLS = 8;

export interface ProvisioningFields {
  /** mqtts://host:port of every broker, in the order a phone tries them; at least one. */
  mqttUrls: string[];
  /** The first of mqttUrls, for callers that use one broker. */
  mqttUrl: string;
  deviceId: string;
  token: string;
  /** SHA-256 of the broker's CA, "AB:CD:…" (normalized on parse and build). */
  caFingerprint: string;
  /** http(s) URL where the CA PEM can be fetched. */
  caUrl?: string;
}

/**
 * What buildProvisioningUri takes: the fields with the brokers given as
 * `mqttUrls`, or as a single `mqttUrl` (as before the list). Given both,
 * `mqttUrl` must be the first of `mqttUrls` (as parseProvisioningUri returns them).
 */
export type ProvisioningInput = Omit<ProvisioningFields, "mqttUrl" | "mqttUrls"> &
  ({ mqttUrls: readonly string[]; mqttUrl?: string } | { mqttUrl: string; mqttUrls?: undefined });

export class ProvisioningError extends Error {
  override name = "ProvisioningError";
}

function fail(message: string): never {
  throw new ProvisioningError(message);
}

function checkMqttUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail("mqtt is not a URL; expected mqtts://host:port");
  }
  if (url.protocol !== "mqtts:") fail(`mqtt must be an mqtts:// URL (phones reach the broker over TLS), got ${url.protocol}//`);
  if (url.hostname === "") fail("mqtt URL has no host");
  if (url.username !== "" || url.password !== "") fail("mqtt URL must not carry credentials; they go in id and token");
  return value;
}

function checkCaUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    fail("ca is not a URL; expected an http(s) URL of the CA certificate");
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") fail(`ca must be an http or https URL, got ${url.protocol}//`);
  return value;
}

/** One to MAX_MQTT_URLS mqtts:// URLs; the same broker listed twice is allowed (and tried twice). */
function checkMqttUrls(values: readonly string[]): string[] {
  if (values.length === 0 || (values.length === 1 && values[0] === "")) fail("parameter mqtt is missing");
  if (values.length > MAX_MQTT_URLS) fail(`mqtt appears ${values.length} times; at most ${MAX_MQTT_URLS} brokers`);
  values.forEach((value, index) => {
    if (value === "") fail(`mqtt number ${index + 1} is empty`);
    checkMqttUrl(value);
  });
  return [...values];
}

function checkFields(fields: ProvisioningInput): ProvisioningFields {
  const mqttUrls = checkMqttUrls(fields.mqttUrls ?? [fields.mqttUrl ?? ""]);
  if (fields.mqttUrls !== undefined && fields.mqttUrl !== undefined && fields.mqttUrl !== mqttUrls[0]) {
    fail("mqttUrl must be the first of mqttUrls");
  }
  if (!DEVICE_ID_PATTERN.test(fields.deviceId)) fail("id: a device id is 1 to 64 letters, digits, _ or -");
  if (fields.token.length === 0 || fields.token.length > MAX_TOKEN_CHARS) fail(`token must be 1 to ${MAX_TOKEN_CHARS} characters`);
  const caFingerprint = normalizeFingerprint(fields.caFingerprint);
  if (caFingerprint === null) fail("fp must be a SHA-256 fingerprint: 32 hex bytes, e.g. AB:CD:…");
  const checked: ProvisioningFields = { mqttUrls, mqttUrl: mqttUrls[0]!, deviceId: fields.deviceId, token: fields.token, caFingerprint };
  if (fields.caUrl !== undefined) checked.caUrl = checkCaUrl(fields.caUrl);
  return checked;
}

export function buildProvisioningUri(fields: ProvisioningInput): string {
  const checked = checkFields(fields);
  const query = new URLSearchParams({ v: PROVISIONING_VERSION });
  // Repeated in order; a single broker gives the same URI as before the list.
  for (const mqttUrl of checked.mqttUrls) query.append("mqtt", mqttUrl);
  query.set("id", checked.deviceId);
  query.set("token", checked.token);
  query.set("fp", checked.caFingerprint);
  if (checked.caUrl !== undefined) query.set("ca", checked.caUrl);
  return `otpgate://provision?${query.toString()}`;
}

export function parseProvisioningUri(uri: string): ProvisioningFields {
  let url: URL;
  try {
    url = new URL(uri.trim());
  } catch {
    fail("not a URI; expected otpgate://provision?v=1&…");
  }
  if (url.protocol !== "otpgate:" || url.hostname !== "provision" || (url.pathname !== "" && url.pathname !== "/")) {
    fail("not an otpgate provisioning URI; expected otpgate://provision?v=1&…");
  }

  const single = (name: string): string | undefined => {
    const values = url.searchParams.getAll(name);
    if (values.length > 1) fail(`parameter ${name} appears ${values.length} times`);
    return values[0];
  };
  const required = (name: string): string => {
    const value = single(name);
    if (value === undefined || value === "") fail(`parameter ${name} is missing`);
    return value;
  };

  const version = required("v");
  if (version !== PROVISIONING_VERSION) fail(`unsupported provisioning version v=${version}; this phone understands v=${PROVISIONING_VERSION}`);
  const mqttUrls = url.searchParams.getAll("mqtt");
  if (mqttUrls.every((value) => value === "")) fail("parameter mqtt is missing");
  const fields: ProvisioningInput = {
    mqttUrls,
    deviceId: required("id"),
    token: required("token"),
    caFingerprint: required("fp"),
  };
  const caUrl = single("ca");
  if (caUrl !== undefined && caUrl !== "") fields.caUrl = caUrl;
  return checkFields(fields);
}
