import { randomUUID } from "node:crypto";
import { inject } from "vitest";
import { RedisStore } from "../../api/store/redis-store.js";
import { storeContract } from "./store-contract.js";

const url = inject("redisUrl");
const sameData = (store: unknown) => new RedisStore({ url, keyPrefix: (store as RedisStore).keyPrefix });

storeContract("redis", {
  async create() {
    return new RedisStore({ url, keyPrefix: `test:${randomUUID()}:` });
  },
  sibling: async (store) => sameData(store),
  restart: async (store) => sameData(store),
});
