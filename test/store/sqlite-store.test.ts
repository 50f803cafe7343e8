import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createSealer } from "../../api/security/sealing.js";
import { SqliteStore } from "../../api/store/sqlite-store.js";
import type { Store } from "../../api/store/store.js";
import { storeContract } from "./store-contract.js";

const sealer = createSealer("contract-sealing-secret-0123456789abcdef");
const reopen = (store: Store) => new SqliteStore({ file: (store as SqliteStore).file, sealer });

storeContract("sqlite", {
  async create() {
    return new SqliteStore({ file: path.join(mkdtempSync(path.join(tmpdir(), "otpgate-sqlite-")), "otpgate.db"), sealer });
  },
  // A second connection to the same file.
  sibling: async (store) => reopen(store),
  restart: async (store) => reopen(store),
});
