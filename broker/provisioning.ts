/**
 * The provisioning URI a phone scans as a QR code (and that `POST /v1/devices`
 * returns as `provisioning`):
 *
 *   otpgate://provision?v=1&mqtt=<mqtts URL>&id=<device id>&token=<token>&fp=<CA SHA-256>[&ca=<http(s) URL of the CA PEM>]
 *
 * Values are URL-encoded query parameters. `fp` is the pin: the phone trusts a
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

export interface ProvisioningFields {
  /** mqtts://host:port */
  mqttUrl: string;
  deviceId: string;
  token: string;
  /** SHA-256 of the broker's CA, "AB:CD:…" (normalized on parse and build). */
  caFingerprint: string;
  /** http(s) URL where the CA PEM can be fetched. */
  caUrl?: string;
}

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

function checkFields(fields: ProvisioningFields): ProvisioningFields {
  checkMqttUrl(fields.mqttUrl);
  if (!DEVICE_ID_PATTERN.test(fields.deviceId)) fail("id: a device id is 1 to 64 letters, digits, _ or -");
  if (fields.token.length === 0 || fields.token.length > MAX_TOKEN_CHARS) fail(`token must be 1 to ${MAX_TOKEN_CHARS} characters`);
  const caFingerprint = normalizeFingerprint(fields.caFingerprint);
  if (caFingerprint === null) fail("fp must be a SHA-256 fingerprint: 32 hex bytes, e.g. AB:CD:…");
  const checked: ProvisioningFields = { mqttUrl: fields.mqttUrl, deviceId: fields.deviceId, token: fields.token, caFingerprint };
  if (fields.caUrl !== undefined) checked.caUrl = checkCaUrl(fields.caUrl);
  return checked;
}

export function buildProvisioningUri(fields: ProvisioningFields): string {
  const checked = checkFields(fields);
  const query = new URLSearchParams({
    v: PROVISIONING_VERSION,
    mqtt: checked.mqttUrl,
    id: checked.deviceId,
    token: checked.token,
    fp: checked.caFingerprint,
  });
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
  const fields: ProvisioningFields = {
    mqttUrl: required("mqtt"),
    deviceId: required("id"),
    token: required("token"),
    caFingerprint: required("fp"),
  };
  const caUrl = single("ca");
  if (caUrl !== undefined && caUrl !== "") fields.caUrl = caUrl;
  return checkFields(fields);
}
