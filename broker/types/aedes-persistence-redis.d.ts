// The package ships no types; otpgate only hands the instance to Aedes and destroys it.
declare module "aedes-persistence-redis" {
  export default function createPersistence(options: Record<string, unknown>): { destroy(): Promise<void> };
}
