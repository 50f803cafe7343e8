/**
 * What a secret looks like at rest, and where to look for it: every Redis key
 * and value of every type (binary-safe, the server's append-only file too),
 * every file under a folder, and captured log text. Used by at-rest.test.ts.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { Redis } from "ioredis";

/** A place the scan read: a Redis key, a file, the log. */
export interface Region {
  where: string;
  bytes: Buffer;
}

export interface Secret {
  label: string;
  value: string;
}

export interface Finding {
  secret: string;
  encoding: string;
  where: string;
}

/**
 * The secret as bytes in the forms a store or a log could hold it: UTF-8 as it
 * is (JSON, msgpack and SQLite text keep strings so), UTF-16, URL-encoded (key
 * names), hex, and base64 / base64url at each of the three byte alignments a
 * substring can have inside a larger encoded value.
 */
export function encodings(value: string): Array<{ encoding: string; bytes: Buffer }> {
  const raw = Buffer.from(value, "utf8");
  const forms: Array<[string, Buffer]> = [
    ["utf8", raw],
    ["utf16le", Buffer.from(value, "utf16le")],
    ["url", Buffer.from(encodeURIComponent(value))],
    ["json", Buffer.from(JSON.stringify(value).slice(1, -1))],
    ["hex", Buffer.from(raw.toString("hex"))],
    ["HEX", Buffer.from(raw.toString("hex").toUpperCase())],
  ];
  for (const shift of [0, 1, 2]) {
    const padded = Buffer.concat([Buffer.alloc(shift), raw]);
    for (const kind of ["base64", "base64url"] as const) {
      const text = padded.toString(kind);
      // Drop the characters that also depend on the bytes before and after the secret.
      const start = shift === 0 ? 0 : 4;
      const end = Math.floor(padded.length / 3) * 4;
      const stable = text.slice(start, end);
      if (stable.length >= 8) forms.push([`${kind}@${shift}`, Buffer.from(stable)]);
    }
  }
  const seen = new Set<string>();
  return forms
    .filter(([, bytes]) => bytes.length > 0)
    .filter(([, bytes]) => {
      const key = bytes.toString("latin1");
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .map(([encoding, bytes]) => ({ encoding, bytes }));
}

export function findSecrets(regions: Region[], secrets: Secret[]): Finding[] {
  const findings: Finding[] = [];
  for (const secret of secrets) {
    for (const { encoding, bytes } of encodings(secret.value)) {
      for (const region of regions) {
        if (region.bytes.includes(bytes)) findings.push({ secret: secret.label, encoding, where: region.where });
      }
    }
  }
  return findings;
}

/** Every key of the Redis server (all of it: the broker's persistence takes no prefix), with its value, as bytes. */
export async function redisRegions(url: string): Promise<Region[]> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  try {
    const regions: Region[] = [];
    let cursor = "0";
    do {
      const [next, keys] = await redis.scanBuffer(cursor, "COUNT", 1000);
      cursor = String(next);
      for (const key of keys) {
        const name = key.toString("latin1");
        const type = await redis.type(key);
        const parts: Buffer[] = [key];
        if (type === "string") parts.push((await redis.getBuffer(key)) ?? Buffer.alloc(0));
        else if (type === "hash") parts.push(...(await redis.hgetallBuffer(key).then((h) => Object.entries(h).flatMap(([f, v]) => [Buffer.from(f, "latin1"), v]))));
        else if (type === "list") parts.push(...(await redis.lrangeBuffer(key, 0, -1)));
        else if (type === "set") parts.push(...(await redis.smembersBuffer(key)));
        else if (type === "zset") parts.push(...(await redis.zrangeBuffer(key, 0, -1, "WITHSCORES")));
        else if (type === "stream") parts.push(Buffer.from(JSON.stringify(await redis.xrange(key, "-", "+"))));
        else if (type !== "none") throw new Error(`unscanned Redis type ${type} at ${name}`);
        regions.push({ where: `redis ${type} ${name}`, bytes: Buffer.concat(parts.flatMap((p) => [p, Buffer.from("\n")])) });
      }
    } while (cursor !== "0");
    // What Redis writes to disk: everything ever written, deleted keys included, until a rewrite.
    const [, dir] = (await redis.config("GET", "dir")) as [string, string];
    regions.push(...fileRegions(dir, "redis dir"));
    return regions;
  } finally {
    redis.disconnect();
  }
}

/** Every file under `dir`, recursively, as bytes. */
export function fileRegions(dir: string, label = path.basename(dir)): Region[] {
  const regions: Region[] = [];
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const file = path.join(folder, name);
      const stat = statSync(file);
      if (stat.isDirectory()) walk(file);
      else if (stat.isFile()) regions.push({ where: `${label}/${path.relative(dir, file)}`, bytes: readFileSync(file) });
    }
  };
  walk(dir);
  return regions;
}

export function textRegion(where: string, text: string): Region {
  return { where, bytes: Buffer.from(text, "utf8") };
}
