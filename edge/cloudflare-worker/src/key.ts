// tollgate's key format, checked offline: `ntk_` + 30 base62 characters + 6 base62 characters
// of a CRC32 of the random part. A typo or a made-up key is refused without a look-up.

const PREFIX = "ntk_";
const RANDOM_LEN = 30;
const CHECKSUM_LEN = 6;
const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(text: string): number {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8);
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function checksum(random: string): string {
  let n = crc32(random);
  const out: string[] = [];
  for (let i = 0; i < CHECKSUM_LEN; i++) {
    out.unshift(BASE62[n % 62] ?? "0");
    n = Math.floor(n / 62);
  }
  return out.join("");
}

/** Whether `text` has the shape and checksum of a tollgate key. */
export function wellFormed(text: string): boolean {
  if (!text.startsWith(PREFIX)) return false;
  const body = text.slice(PREFIX.length);
  if (body.length !== RANDOM_LEN + CHECKSUM_LEN || !/^[0-9A-Za-z]+$/.test(body)) return false;
  return checksum(body.slice(0, RANDOM_LEN)) === body.slice(RANDOM_LEN);
}

/** Lower-case hex SHA-256 of the full key: tollgate's `key_hash` / `token_hash`. */
export async function keyHash(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The key a request presents, from the headers tollgate's gateway accepts. */
export function presentedKey(headers: Headers): string | null {
  const auth = headers.get("authorization");
  if (auth && /^bearer /i.test(auth)) return auth.slice(7).trim();
  return headers.get("x-api-key") ?? headers.get("api-key");
}
