// The package ships no types; otpgate only hands the instance to Aedes and destroys it.
declare module "aedes-persistence-redis/asyncPersistence.js" {
  export default class AsyncRedisPersistence {
    constructor(options: Record<string, unknown>);
    destroy(): Promise<void>;
  }
}
