// A local GitHub Actions cache service (v2, Twirp over JSON) for the REAL @actions/cache 6.3.0.
//
// Wire format, as lib/internal/shared/cacheTwirpClient.js and lib/generated/results/api/v1/cache.* use it:
// POST {ACTIONS_RESULTS_URL origin}/twirp/github.actions.results.api.v1.CacheService/<Method>, bearer
// ACTIONS_RUNTIME_TOKEN, JSON bodies with proto (snake_case) field names; int64s travel as strings. Errors
// are Twirp's `{code, msg}`. The archive itself goes straight to blob storage: uploaded with
// @azure/storage-blob's BlockBlobClient.uploadFile to `signed_upload_url`, downloaded with a plain GET of
// `signed_download_url` (the SDK is only used for hosts ending in .blob.core.windows.net). Both are Azurite
// SAS URLs here.
//
// What @actions/cache 6.3.0 does when this service misbehaves (pinned by test/services/cache-service.test.ts):
//
// restoreCache never throws for service trouble: it logs `::warning::Failed to restore: ...` and returns
// undefined, which is indistinguishable from a miss except by that log line. It only throws ValidationError
// (bad key, more than 10 keys, no paths).
//  - outage (HTTP 500/502/503/504): retried, 5 attempts with 3 s, ~4.5-6.8 s, ~6.8-10 s, ~10-15 s waits, so a
//    restore blocks ~25-35 s before giving up with the warning.
//  - unreachable (connection reset/refused): NetworkError, not retried; warning at once.
//  - throttle (429): RateLimitError, not retried; warning at once (plus a "rate limit will reset" warning
//    when Retry-After is set).
//  - read-denied (403 `cache read denied:`): CacheReadDeniedError, warning, undefined.
//  - hang (no answer): @actions/http-client gives up after 3 minutes ("Request timeout", no error code), which
//    the Twirp client retries like a 5xx: ~15 minutes before the warning. (CacheStore's watchdog ends a silent
//    connection with ETIMEDOUT, a network error that is not retried.)
//  - cut (download broken off halfway): `Failed to restore: aborted`, at once.
//  - truncate (a short download with a matching Content-Length): the library's own length check passes and
//    tar fails: `Failed to restore: "/usr/bin/tar" failed with error: ... exit code 2`, logged after
//    `Cache hit for restore-key: K` (the only place the entry's name appears).
//
// saveCache never throws for service trouble either: it returns -1 (the entry id on success). It throws only
// ValidationError and, before any request, "Path Validation Error" when none of the paths exist.
//  - Any failure of CreateCacheEntry other than write-denied (409 duplicate key, 500 after the same 5
//    attempts, 429, connection reset) becomes ReserveCacheError and is logged with core.info only (no
//    warning!) as "Failed to save: Unable to reserve cache with key K, another job may be creating this
//    cache." The real cause is only in the debug log.
//  - write-denied (CreateCacheEntry answering 200 `{ok: false, message: "cache write denied: ..."}`, as the
//    service does for a read-only token): CacheWriteDeniedError, logged as `::warning::Failed to save:
//    Unable to reserve cache with key K. More details: cache write denied: ...`.
//  - Failures after the reservation (blob upload, FinalizeCacheEntryUpload) are warnings; the entry stays
//    reserved but unfinalized, so that key can never be saved again by anyone.
//  - cut (upload broken off halfway): the Azure SDK retries the upload 4 times (~16 s), then
//    `::warning::Failed to save: socket hang up` and -1.
//  - hang: as for restore, ~15 minutes in CreateCacheEntry without the watchdog.
//  - core.error is never used by the v2 path: its "5xx is an error" branch tests for HttpClientError, which
//    the Twirp client never throws.
//
// Compression: the library uses zstd (`cache.tzst`, ZstdWithoutLong) when `zstd` is on PATH, else gzip
// (`cache.tgz`); the method is hashed into the entry version, so a zstd save is invisible to a gzip restore.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Azurite } from './azurite.js';
import type { BlobProxy } from './blob-proxy.js';
import {
  applyTransportFault,
  type FaultMode,
  FaultSwitch,
  type Handler,
  type HttpService,
  isBlobFault,
  RequestCounter,
  readJson,
  sendJson,
  shapeReply,
  startHttpService,
  str,
  twirpError,
} from './http.js';
import { parseRuntimeToken } from './token.js';

export const CACHE_TWIRP_SERVICE = 'github.actions.results.api.v1.CacheService';
export const CACHE_METHODS = [
  'CreateCacheEntry',
  'FinalizeCacheEntryUpload',
  'GetCacheEntryDownloadURL',
] as const;
export type CacheMethod = (typeof CACHE_METHODS)[number];
export const CACHE_SAVE_METHODS: readonly CacheMethod[] = ['CreateCacheEntry', 'FinalizeCacheEntryUpload'];
export const CACHE_RESTORE_METHODS: readonly CacheMethod[] = ['GetCacheEntryDownloadURL'];

/** What github.com answers (HTTP 409, Twirp already_exists) when a key+version is created twice. */
export const DUPLICATE_ENTRY_MESSAGE = 'cache entry with the same key, version, and scope already exists';
/** The stable prefixes @actions/cache dispatches on (CACHE_WRITE_DENIED_PREFIX / CACHE_READ_DENIED_PREFIX). */
export const WRITE_DENIED_MESSAGE = 'cache write denied: token has no writable scopes';
export const READ_DENIED_MESSAGE = 'cache read denied: token has no readable scopes';

export interface CacheEntry {
  id: number;
  key: string;
  version: string;
  /** Blob name inside `container`. */
  blob: string;
  createdAt: Date;
  /** Unset until FinalizeCacheEntryUpload; only finalized entries are restorable. */
  finalizedAt?: Date;
  sizeBytes?: number;
  /** The workflow run backend id from the caller's runtime token. */
  runBackendId?: string;
}

export interface CacheService {
  container: string;
  /** Claims the CacheService Twirp routes; mount it on the server ACTIONS_RESULTS_URL points at. */
  handler: Handler;
  /** Copies, in creation order. */
  entries(): CacheEntry[];
  /** `only`: 'save' (Create + Finalize), 'restore' (GetCacheEntryDownloadURL) or a list of methods. */
  setFault(mode: FaultMode, only?: 'save' | 'restore' | Iterable<CacheMethod>): void;
  /** Requests received per method, faulted ones included. */
  counts(): Partial<Record<CacheMethod, number>>;
  count(method: CacheMethod): number;
  resetCounts(): void;
  /** Forgets every entry (blobs stay in Azurite, unreachable). */
  clear(): void;
}

function isCacheMethod(m: string): m is CacheMethod {
  return (CACHE_METHODS as readonly string[]).includes(m);
}

export function createCacheService(
  azurite: Azurite,
  opts: {
    container?: string;
    /** Where `cut` / `truncate` send the blob transfers; without it they shape the Twirp reply instead. */
    blobProxy?: BlobProxy;
  } = {},
): CacheService {
  const container = opts.container ?? 'actions-cache';
  const faults = new FaultSwitch<CacheMethod>();
  const counter = new RequestCounter<CacheMethod>();
  let entries: CacheEntry[] = [];
  let nextId = 1;

  const prefix = `/twirp/${CACHE_TWIRP_SERVICE}/`;

  /** The SAS URL as handed out: through the blob proxy when a blob fault is set on the method. */
  type Route = (sasUrl: string) => string;
  const direct: Route = (u) => u;

  async function create(
    body: Record<string, unknown>,
    res: ServerResponse,
    runBackendId: string | undefined,
    route: Route,
  ) {
    const key = str(body, 'key');
    const version = str(body, 'version');
    if (!key || !version) return twirpError(res, 400, 'invalid_argument', 'key and version are required');
    // Pending (unfinalized) entries block the key too: another job "may be creating this cache".
    if (entries.some((e) => e.key === key && e.version === version)) {
      return twirpError(res, 409, 'already_exists', DUPLICATE_ENTRY_MESSAGE);
    }
    await azurite.ensureContainer(container);
    const id = nextId++;
    const blob = `entries/${id}`;
    entries.push({ id, key, version, blob, createdAt: new Date(), runBackendId });
    sendJson(res, 200, { ok: true, signed_upload_url: route(azurite.sasUrl(container, blob, 'cw')) });
  }

  async function finalize(body: Record<string, unknown>, res: ServerResponse) {
    const key = str(body, 'key');
    const version = str(body, 'version');
    const entry = entries.find((e) => e.key === key && e.version === version && !e.finalizedAt);
    if (!entry) return twirpError(res, 404, 'not_found', 'cache entry not found');
    // Like the real service, refuse to finalize what never reached storage.
    let stored: number;
    try {
      const props = await azurite.client
        .getContainerClient(container)
        .getBlobClient(entry.blob)
        .getProperties();
      stored = props.contentLength ?? -1;
    } catch {
      return sendJson(res, 200, { ok: false, message: 'cache entry upload not found' });
    }
    const declared = Number(body.size_bytes ?? 0);
    if (declared !== stored) {
      return sendJson(res, 200, {
        ok: false,
        message: `size mismatch: declared ${declared}, stored ${stored}`,
      });
    }
    entry.finalizedAt = new Date();
    entry.sizeBytes = stored;
    sendJson(res, 200, { ok: true, entry_id: String(entry.id) });
  }

  function lookup(key: string, restoreKeys: string[], version: string): CacheEntry | undefined {
    // Newest first: ids grow with creation, and two entries can share a millisecond.
    const usable = entries.filter((e) => e.finalizedAt && e.version === version).sort((a, b) => b.id - a.id);
    // github.com: exact key, then prefix of key, then each restore key in order (exact before prefix).
    const exact = usable.find((e) => e.key === key);
    if (exact) return exact;
    for (const k of [key, ...restoreKeys]) {
      const hit = usable.find((e) => e.key === k) ?? usable.find((e) => e.key.startsWith(k));
      if (hit) return hit;
    }
    return undefined;
  }

  function download(body: Record<string, unknown>, res: ServerResponse, route: Route) {
    const key = str(body, 'key');
    const version = str(body, 'version');
    const raw = body.restore_keys;
    const restoreKeys = Array.isArray(raw) ? raw.filter((k): k is string => typeof k === 'string') : [];
    const hit = lookup(key, restoreKeys, version);
    // A miss is `ok: false` in a 200, not an error: the library turns it into `undefined`.
    if (!hit) return sendJson(res, 200, { ok: false });
    sendJson(res, 200, {
      ok: true,
      signed_download_url: route(azurite.sasUrl(container, hit.blob, 'r')),
      matched_key: hit.key,
    });
  }

  const handler: Handler = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (!path.startsWith(prefix)) return false;
    const method = path.slice(prefix.length);
    if (req.method !== 'POST' || !isCacheMethod(method)) {
      twirpError(res, 404, 'bad_route', `no handler for ${req.method} ${path}`);
      return true;
    }
    counter.hit(method);
    const fault = faults.for(method);
    if (applyTransportFault(fault, req, res, 'twirp')) return true;
    let route = direct;
    if (isBlobFault(fault)) {
      const proxy = opts.blobProxy;
      const handsOutBlob = method === 'CreateCacheEntry' || method === 'GetCacheEntryDownloadURL';
      if (proxy && handsOutBlob) route = (u) => proxy.route(u, fault);
      else shapeReply(res, fault);
    }
    const body = await readJson(req);
    const ids = parseRuntimeToken(req.headers.authorization);
    if (!ids) {
      twirpError(res, 401, 'unauthenticated', 'missing or malformed runtime token');
      return true;
    }
    switch (method) {
      case 'CreateCacheEntry':
        if (fault === 'write-denied') sendJson(res, 200, { ok: false, message: WRITE_DENIED_MESSAGE });
        else await create(body, res, ids.workflowRunBackendId, route);
        break;
      case 'FinalizeCacheEntryUpload':
        await finalize(body, res);
        break;
      case 'GetCacheEntryDownloadURL':
        if (fault === 'read-denied') twirpError(res, 403, 'permission_denied', READ_DENIED_MESSAGE);
        else download(body, res, route);
        break;
    }
    return true;
  };

  return {
    container,
    handler,
    entries: () => entries.map((e) => ({ ...e })),
    setFault(mode, only) {
      if (only === 'save') faults.set(mode, CACHE_SAVE_METHODS);
      else if (only === 'restore') faults.set(mode, CACHE_RESTORE_METHODS);
      else faults.set(mode, only);
    },
    counts: () => counter.snapshot(),
    count: (m) => counter.get(m),
    resetCounts: () => counter.reset(),
    clear() {
      entries = [];
    },
  };
}

/** The cache service alone on its own port (index.ts shares one server with the artifact service). */
export async function startCacheService(azurite: Azurite): Promise<CacheService & { http: HttpService }> {
  const svc = createCacheService(azurite);
  return { ...svc, http: await startHttpService([svc.handler]) };
}
