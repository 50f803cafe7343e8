/** Assertions the provider tests share on how a send fails. */
import { expect } from "vitest";
import { ProviderError } from "../../api/providers/provider.js";

/** The ProviderError `p` rejects with (fails the test if it resolves or rejects with anything else). */
export async function failure(p: Promise<unknown>): Promise<ProviderError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

/**
 * Runs `send` and expects it to fail as transient "timeout" in under 2 s, and after at
 * least `minMs` when that is given (a provider's own timeoutMs, less some slack).
 */
export async function expectPromptTimeout(send: () => Promise<unknown>, minMs?: number): Promise<ProviderError> {
  const started = Date.now();
  const err = await failure(send());
  const elapsed = Date.now() - started;
  expect([err.kind, err.code]).toEqual(["transient", "timeout"]);
  if (minMs !== undefined) expect(elapsed).toBeGreaterThanOrEqual(minMs);
  expect(elapsed).toBeLessThan(2000);
  return err;
}
