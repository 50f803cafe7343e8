import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ADMIN_KEY_DIGEST_FILE, adminKey } from "../../api/config/secrets.js";
import { keyDigest } from "../../api/keys/api-key-format.js";

describe("the admin key kept in DATA_DIR", () => {
  it("takes an empty or torn digest file for no key: a new key is made, and it is the one kept", () => {
    for (const torn of ["", "\n", "3f2a"]) {
      const dir = mkdtempSync(path.join(tmpdir(), "otpgate-admin-"));
      writeFileSync(path.join(dir, ADMIN_KEY_DIGEST_FILE), torn);
      const admin = adminKey(dir);
      expect(admin.source).toBe("generated");
      if (admin.source !== "generated") continue;
      expect(readFileSync(path.join(dir, ADMIN_KEY_DIGEST_FILE), "utf8").trim()).toBe(keyDigest(admin.key));
    }
  });

  it("keeps a whole digest as it is", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "otpgate-admin-"));
    const first = adminKey(dir);
    expect(first.source).toBe("generated");
    expect(adminKey(dir)).toMatchObject({ source: "kept", digest: first.digest });
  });
});
