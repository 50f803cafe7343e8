/**
 * API key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.
 * Keys are looked up by their SHA-256 digest; the admin key's digest is
 * compared in constant time.
 */
import type { FastifyRequest } from "fastify";
import type { SendCaller } from "../fraud/fraud-guard.js";
import { addressMatcher } from "../config/address-list.js";
import { digestEquals, keyDigest } from "../keys/api-key-format.js";
import type { ApiKeyScope, Store } from "../store/store.js";
import { ApiError } from "./errors.js";

export interface Principal {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
  /** The key's fraud-guard quotas and geo permissions (POST /v1/keys); absent = the node's. */
  fraud?: SendCaller["settings"];
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export function presentedKey(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (match) return match[1];
  }
  const apiKey = request.headers["x-api-key"];
  return typeof apiKey === "string" && apiKey.length > 0 ? apiKey : undefined;
}

/** Seed 001's pair, which its callers used without a key. */
const KEYLESS_SEED_ROUTES = new Set(["/send-code", "/verify-code"]);
/** Who a keyless seed call is counted as (per-key rate limit and fraud quotas). */
export const KEYLESS_SEED_PRINCIPAL: Principal = { id: "keyless-seed", name: "keyless seed 001 caller", scopes: ["otp"] };

export function createAuthenticator(deps: { store: Store; adminKeyDigest: string; seedKeylessFrom?: readonly string[] }) {
  const keylessAllowed = addressMatcher(deps.seedKeylessFrom ?? []);
  return async function authenticate(request: FastifyRequest): Promise<Principal> {
    const key = presentedKey(request);
    if (!key && KEYLESS_SEED_ROUTES.has(request.routeOptions.url ?? "") && keylessAllowed(request.ip)) return KEYLESS_SEED_PRINCIPAL;
    if (!key) throw new ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key> or x-api-key)");
    const digest = keyDigest(key);
    if (digestEquals(digest, deps.adminKeyDigest)) return { id: "admin", name: "admin", scopes: ["admin"] };
    const record = await deps.store.findApiKeyByDigest(digest);
    if (!record || record.revokedAt) throw new ApiError(401, "unauthorized", "the API key is not valid");
    const { quotas, allowedCountries, blockedCountries } = record;
    const fraud = quotas || allowedCountries || blockedCountries ? { quotas, allowedCountries, blockedCountries } : undefined;
    return { id: record.id, name: record.name, scopes: record.scopes, ...(fraud ? { fraud } : {}) };
  };
}

/** Who the fraud guard counts a send against: the key's id, with its own quotas and geo permissions. */
export function callerOf(principal: Principal | null): SendCaller | undefined {
  return principal ? { id: principal.id, ...(principal.fraud ? { settings: principal.fraud } : {}) } : undefined;
}

export function requireScope(principal: Principal, scope: ApiKeyScope): void {
  if (principal.scopes.includes("admin") || principal.scopes.includes(scope)) return;
  throw new ApiError(403, "forbidden", `this key lacks the ${scope} scope`);
}
