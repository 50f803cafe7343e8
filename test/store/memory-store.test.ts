import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { MemoryStore } from "../../api/store/memory-store.js";
import type { Store } from "../../api/store/store.js";
import { storeContract } from "./store-contract.js";

const files = new WeakMap<Store, string>();

storeContract("memory", {
  async create() {
    const file = path.join(mkdtempSync(path.join(tmpdir(), "otpgate-store-")), "state.json");
    const store = new MemoryStore({ persistFile: file });
    files.set(store, file);
    return store;
  },
  async sibling(store) {
    return store;
  },
  async restart(store) {
    return new MemoryStore({ persistFile: files.get(store)! });
  },
});
