import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { createSealer } from "../../api/security/sealing.js";
import { RedisStore } from "../../api/store/redis-store.js";
import { storeContract } from "./store-contract.js";

const url = inject("redisUrl");
const sealer = createSealer("contract-sealing-secret-0123456789abcdef");
const sameData = (store: unknown) => new RedisStore({ url, keyPrefix: (store as RedisStore).keyPrefix, sealer });

storeContract("redis", {
  async create() {
    return new RedisStore({ url, keyPrefix: `test:${randomUUID()}:`, sealer });
  },
  sibling: async (store) => sameData(store),
  restart: async (store) => sameData(store),
});
