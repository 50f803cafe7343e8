import { MemoryStore } from "../../api/store/memory-store.js";
import { storeContract } from "./store-contract.js";

// The memory store keeps nothing across a restart: no `restart` in its factory.
storeContract("memory", {
  async create() {
    return new MemoryStore();
  },
  async sibling(store) {
    return store;
  },
});
