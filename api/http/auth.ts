/**
 * API key authentication: `Authorization: Bearer <key>` or `x-api-key: <key>`.
 * Keys are looked up by their SHA-256 digest; the admin key's digest is
 * compared in constant time.
 */
import type { FastifyRequest } from "fastify";
import { digestEquals, keyDigest } from "../keys/api-key-format.js";
import type { ApiKeyScope, Store } from "../store/store.js";
import { ApiError } from "./errors.js";

export interface Principal {
  id: string;
  name: string;
  scopes: ApiKeyScope[];
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

export function createAuthenticator(deps: { store: Store; adminKeyDigest: string }) {
  return async function authenticate(request: FastifyRequest): Promise<Principal> {
    const key = presentedKey(request);
    if (!key) throw new ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key> or x-api-key)");
    const digest = keyDigest(key);
    if (digestEquals(digest, deps.adminKeyDigest)) return { id: "admin", name: "admin", scopes: ["admin"] };
    const record = await deps.store.findApiKeyByDigest(digest);
    if (!record || record.revokedAt) throw new ApiError(401, "unauthorized", "the API key is not valid");
    return { id: record.id, name: record.name, scopes: record.scopes };
  };
}

export function requireScope(principal: Principal, scope: ApiKeyScope): void {
  if (principal.scopes.includes("admin") || principal.scopes.includes(scope)) return;
  throw new ApiError(403, "forbidden", `this key lacks the ${scope} scope`);
}
