/**
 * @peculiar/x509 builds on tsyringe, which refuses to load unless the Reflect
 * metadata API exists (normally from the reflect-metadata package, not a
 * dependency here). tsyringe only stores and reads constructor metadata, so a
 * WeakMap-backed version of the three functions it calls is enough. Import this
 * module before @peculiar/x509. A real polyfill loaded earlier is left alone.
 */
type MetadataByProperty = Map<string | symbol | undefined, Map<unknown, unknown>>;

const store = new WeakMap<object, MetadataByProperty>();

function ownMap(target: object, property: string | symbol | undefined, create: boolean): Map<unknown, unknown> | undefined {
  let byProperty = store.get(target);
  if (!byProperty && create) store.set(target, (byProperty = new Map()));
  let map = byProperty?.get(property);
  if (!map && create && byProperty) byProperty.set(property, (map = new Map()));
  return map;
}

const shim = {
  defineMetadata(key: unknown, value: unknown, target: object, property?: string | symbol): void {
    ownMap(target, property, true)!.set(key, value);
  },
  getOwnMetadata(key: unknown, target: object, property?: string | symbol): unknown {
    return ownMap(target, property, false)?.get(key);
  },
  // Like reflect-metadata: inherited metadata is found along the prototype chain.
  getMetadata(key: unknown, target: object, property?: string | symbol): unknown {
    for (let t: object | null = target; t; t = Object.getPrototypeOf(t)) {
      const map = ownMap(t, property, false);
      if (map?.has(key)) return map.get(key);
    }
    return undefined;
  },
};

const reflect = Reflect as unknown as Record<string, unknown>;
if (typeof reflect.getMetadata !== "function") Object.assign(reflect, shim);
