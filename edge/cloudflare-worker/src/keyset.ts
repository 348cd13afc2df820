// The key set an edge decides with, synced from tollgate: a snapshot, then the change feed
// (`/api/v1/edge/changes?since=REV`). Kept in KV (shared by isolates, written by the cron
// trigger) and in the isolate's memory; a call waits for the feed only when the set is older
// than the sync interval, and a tollgate outage leaves the last set in force.

export interface EdgeKey {
  id: number;
  key_hash: string;
  team_id: number;
  status: "active" | "revoked" | "expired";
  expires_at: number | null;
  revoked_at: number | null;
  routes: number[] | null;
  models: string[] | null;
}

export interface EdgeRoute {
  id: number;
  name: string;
  prefix: string;
  kind: "http" | "openai" | "anthropic";
  team_id: number | null;
  enabled: boolean;
}

interface Stored {
  revision: number;
  routes: EdgeRoute[];
  keys: EdgeKey[];
  synced_at: number;
}

export interface SyncEnv {
  KEYS: KVNamespace;
  TOLLGATE_URL: string;
  TOLLGATE_EDGE_TOKEN: string;
  SYNC_INTERVAL_SECONDS?: string;
}

const KV_KEY = "keyset";

export class KeySet {
  revision = 0;
  routes: EdgeRoute[] = [];
  keys = new Map<string, EdgeKey>();
  syncedAt = 0;

  static from(stored: Stored): KeySet {
    const set = new KeySet();
    set.revision = stored.revision;
    set.routes = stored.routes;
    set.keys = new Map(stored.keys.map((k) => [k.key_hash, k]));
    set.syncedAt = stored.synced_at;
    return set;
  }

  toStored(): Stored {
    return { revision: this.revision, routes: this.routes, keys: [...this.keys.values()], synced_at: this.syncedAt };
  }

  /** The enabled route with the longest prefix covering `path` (on segment boundaries). */
  route(path: string): EdgeRoute | undefined {
    let best: EdgeRoute | undefined;
    for (const r of this.routes) {
      const covers = r.prefix === "/" || path === r.prefix || path.startsWith(r.prefix + "/");
      if (covers && (!best || r.prefix.length > best.prefix.length)) best = r;
    }
    return best;
  }
}

let cached: KeySet | null = null;

function interval(env: SyncEnv): number {
  const s = Number(env.SYNC_INTERVAL_SECONDS ?? "10");
  return (Number.isFinite(s) && s > 0 ? s : 10) * 1000;
}

async function tollgate(env: SyncEnv, path: string): Promise<Response> {
  const resp = await fetch(new URL(path, env.TOLLGATE_URL), {
    headers: { authorization: `Bearer ${env.TOLLGATE_EDGE_TOKEN}` },
    signal: AbortSignal.timeout(5000),
  });
  if (!resp.ok) throw new TollgateError(path, resp.status);
  return resp;
}

/** tollgate answered, but not with 2xx. */
class TollgateError extends Error {
  constructor(
    path: string,
    readonly status: number,
  ) {
    super(`tollgate ${path}: ${status}`);
  }
}

/** The feed cannot bring the set up to date: its changes were pruned (410 `snapshot_required`),
 * or the revision is not this store's (422). Only a new snapshot can. */
const needsSnapshot = (e: unknown): boolean =>
  e instanceof TollgateError && (e.status === 410 || e.status === 422);

async function snapshot(env: SyncEnv): Promise<KeySet> {
  const stored = (await (await tollgate(env, "/api/v1/edge/snapshot")).json()) as Stored;
  stored.synced_at = Date.now();
  return KeySet.from(stored);
}

/** Applies the change feed to `set` until it is current. */
async function catchUp(env: SyncEnv, set: KeySet): Promise<void> {
  for (;;) {
    const resp = await tollgate(env, `/api/v1/edge/changes?since=${set.revision}`);
    const changes = (await resp.json()) as {
      revision: number;
      keys: EdgeKey[];
      removed_keys: string[];
      routes: EdgeRoute[] | null;
      more: boolean;
    };
    for (const k of changes.keys) set.keys.set(k.key_hash, k);
    for (const h of changes.removed_keys) set.keys.delete(h);
    if (changes.routes) set.routes = changes.routes;
    set.revision = changes.revision;
    if (!changes.more) break;
  }
  set.syncedAt = Date.now();
}

/** The key set for a call: from memory, else KV, else a snapshot; refreshed from the change
 * feed when older than the interval. Errors from tollgate keep the set in hand. */
export async function current(env: SyncEnv): Promise<KeySet | null> {
  if (!cached) {
    const stored = await env.KEYS.get<Stored>(KV_KEY, "json");
    if (stored) cached = KeySet.from(stored);
  }
  if (!cached) {
    try {
      cached = await snapshot(env);
    } catch (e) {
      console.error("tollgate snapshot failed", e);
      return null;
    }
  }
  if (Date.now() - cached.syncedAt >= interval(env)) {
    try {
      try {
        await catchUp(env, cached);
      } catch (e) {
        if (!needsSnapshot(e)) throw e;
        // Too far behind the feed: re-read the whole set.
        cached = await snapshot(env);
      }
    } catch (e) {
      // tollgate is unreachable: keep deciding with the last set; try again next call.
      console.error("tollgate change feed failed", e);
      cached.syncedAt = Date.now() - interval(env) / 2;
    }
  }
  return cached;
}

/** The cron trigger's sync: brings the KV copy up to date (a snapshot when there is none, or
 * when tollgate refuses the revision). */
export async function syncToKv(env: SyncEnv): Promise<void> {
  const stored = await env.KEYS.get<Stored>(KV_KEY, "json");
  let set: KeySet;
  if (stored) {
    set = KeySet.from(stored);
    try {
      await catchUp(env, set);
    } catch (e) {
      // Too far behind the feed (410, 422): a new snapshot. tollgate unreachable: the snapshot
      // fails too, and the KV copy stays as it was.
      if (!needsSnapshot(e)) throw e;
      set = await snapshot(env);
    }
  } else {
    set = await snapshot(env);
  }
  await env.KEYS.put(KV_KEY, JSON.stringify(set.toStored()));
  cached = set;
}

/** Forgets the isolate's copy (tests). */
export function forget(): void {
  cached = null;
}
