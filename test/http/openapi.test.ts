import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "../support/gateway.js";

interface Operation {
  operationId?: string;
  security?: unknown[];
  requestBody?: { content: Record<string, { schema: object; example?: unknown; examples?: Record<string, { value: unknown }> }> };
  responses: Record<string, { description: string }>;
}
type Document = { security: unknown[]; paths: Record<string, Record<string, Operation>> };

let gw: TestGateway;
let doc: Document;
const operations = () => Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));
const op = (method: string, path: string) => doc.paths[path]![method]!;

beforeAll(async () => {
  gw = await startGateway();
  doc = (await (await fetch(`${gw.url}/docs/json`)).json()) as Document;
});
afterAll(async () => gw?.close());

describe("the OpenAPI document", () => {
  it("gives every operation a unique operationId", () => {
    const ids = operations().map(({ op }) => op.operationId);
    expect(ids.every((id) => typeof id === "string" && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(op("post", "/v1/otp/verify").operationId).toBe("postV1OtpVerify");
  });

  it("puts no lock on public routes and one on every route that needs a key", () => {
    for (const path of ["/healthz", "/readyz", "/metrics", "/ca.pem"]) expect(op("get", path).security, path).toEqual([]);
    expect(doc.security.length).toBeGreaterThan(0);
    for (const { path, method, op: operation } of operations().filter(({ path }) => path.startsWith("/v1/"))) {
      expect(operation.security, `${method} ${path}`).toBeUndefined();
      expect(Object.keys(operation.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["401", "403", "429", "500", "503"]));
    }
  });

  it("describes every status, never 'Default Response', and lists 400 where there is input", () => {
    for (const { path, method, op: operation } of operations()) {
      for (const [status, response] of Object.entries(operation.responses)) {
        expect(response.description, `${method} ${path} ${status}`).not.toBe("Default Response");
        expect(response.description.length, `${method} ${path} ${status}`).toBeGreaterThan(1);
      }
      if (operation.requestBody) expect(Object.keys(operation.responses), `${method} ${path}`).toEqual(expect.arrayContaining(["400", "413"]));
    }
    expect(Object.keys(op("post", "/v1/otp").responses)).toEqual(expect.arrayContaining(["202", "400", "401", "403", "413", "429", "500", "503"]));
  });

  it("gives request bodies examples that the route itself accepts", async () => {
    const withBodies = operations().filter(({ op: operation }) => operation.requestBody?.content["application/json"]);
    expect(withBodies.length).toBeGreaterThan(5);
    // Each documented example is sent to the route it documents: none may be refused as invalid input.
    const tried: string[] = [];
    for (const { path, method, op: operation } of withBodies) {
      const content = operation.requestBody!.content["application/json"]!;
      const examples = [content.example, ...Object.values(content.examples ?? {}).map((e) => e.value)].filter((e) => e !== undefined);
      if (!["/v1/otp", "/v1/otp/verify", "/v1/messages", "/v1/keys", "/v1/devices"].includes(path)) continue;
      expect(examples.length, `${method} ${path} has an example`).toBeGreaterThan(0);
      for (const example of examples) {
        const reply = await gw.call(method.toUpperCase(), path, example);
        expect(reply.json?.error?.code, `${method} ${path}: ${JSON.stringify(reply.json)}`).not.toBe("invalid_request");
        expect(reply.status, `${method} ${path}`).not.toBe(400);
        tried.push(path);
      }
    }
    expect(new Set(tried)).toEqual(new Set(["/v1/otp", "/v1/otp/verify", "/v1/messages", "/v1/keys", "/v1/devices"]));
  });
});
