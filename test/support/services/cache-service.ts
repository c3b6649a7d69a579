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
import { AZURE_BLOB_SUFFIX, type BlobProxy } from './blob-proxy.js';
import {
  applyTransportFault,
  type BlobFault,
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
import { type CacheScope, parseRuntimeToken, tokenScopes } from './token.js';

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
  /** The ref it was saved under: the first writable scope of the saving token's `ac` claim. */
  scope: string;
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
  /** The cache REST API (list and delete by the GitHub token); mount it on the GITHUB_API_URL server. */
  restHandler: Handler;
  /** What the GitHub token may do with the REST API: `write` (`actions: write`), `read`, or `none`. */
  setRestPermission(p: 'write' | 'read' | 'none'): void;
  /** The next `count` REST requests answer 429 with `Retry-After: retryAfterSecs`. */
  throttleRest(count: number, retryAfterSecs: number): void;
  /** REST requests received, as `VERB path?query`. */
  restRequests(): string[];
  /**
   * Hands out download URLs on `<account>.blob.core.windows.net` (port kept), as github.com does, so that
   * @actions/cache takes its Azure SDK path (ranged segments, retries, segment timeout). The process
   * downloading must resolve that host to 127.0.0.1 (services.azureEnv()).
   */
  setAzureHost(on: boolean): void;
  /** Every download of the entry `key` suffers `mode` (through the blob proxy); `none` lifts it. */
  setEntryFault(key: string, mode: BlobFault | 'none'): void;
}

function isCacheMethod(m: string): m is CacheMethod {
  return (CACHE_METHODS as readonly string[]).includes(m);
}

export function createCacheService(
  azurite: Azurite,
  opts: {
    /** `owner/name` and the token the REST API takes (both needed for restHandler to answer). */
    repository?: string;
    githubToken?: string;
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
    scopes: CacheScope[],
  ) {
    const key = str(body, 'key');
    const version = str(body, 'version');
    if (!key || !version) return twirpError(res, 400, 'invalid_argument', 'key and version are required');
    // Saved under the token's first writable scope (the job's own ref); a token without one (read-only,
    // such as pull_request_target's) is refused the way github.com refuses it.
    const scope = scopes.find((s) => (s.Permission & 2) !== 0)?.Scope;
    if (scope === undefined) return sendJson(res, 200, { ok: false, message: WRITE_DENIED_MESSAGE });
    // Entries are immutable: a second create of key+version+scope is a conflict, pending ones included
    // (another job "may be creating this cache").
    if (entries.some((e) => e.key === key && e.version === version && e.scope === scope)) {
      return twirpError(res, 409, 'already_exists', DUPLICATE_ENTRY_MESSAGE);
    }
    await azurite.ensureContainer(container);
    const id = nextId++;
    const blob = `entries/${id}`;
    entries.push({ id, key, version, blob, createdAt: new Date(), runBackendId, scope });
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

  function lookup(
    key: string,
    restoreKeys: string[],
    version: string,
    scopes: CacheScope[],
  ): CacheEntry | undefined {
    // Each readable scope in the token's order (the job's ref, then the base and default branches): an
    // entry of another branch is never found, one of the default branch only when the ref has none.
    for (const scope of scopes.filter((s) => (s.Permission & 1) !== 0)) {
      // Newest first: ids grow with creation, and two entries can share a millisecond.
      const usable = entries
        .filter((e) => e.finalizedAt && e.version === version && e.scope === scope.Scope)
        .sort((a, b) => b.id - a.id);
      // github.com: exact key, then prefix of key, then each restore key in order (exact before prefix).
      const exact = usable.find((e) => e.key === key);
      if (exact) return exact;
      for (const k of [key, ...restoreKeys]) {
        const hit = usable.find((e) => e.key === k) ?? usable.find((e) => e.key.startsWith(k));
        if (hit) return hit;
      }
    }
    return undefined;
  }

  let azureHost = false;
  const entryFaults = new Map<string, BlobFault>();
  /** `http://127.0.0.1:P/<account>/<container>/<blob>?sas` → `http://<account>.blob.core.windows.net:P/<container>/<blob>?sas`. */
  const onAzureHost = (sasUrl: string): string => {
    if (!azureHost) return sasUrl;
    const u = new URL(sasUrl);
    const [, account, ...rest] = u.pathname.split('/');
    return `http://${account}${AZURE_BLOB_SUFFIX}:${u.port}/${rest.join('/')}${u.search}`;
  };

  function download(body: Record<string, unknown>, res: ServerResponse, route: Route, scopes: CacheScope[]) {
    const key = str(body, 'key');
    const version = str(body, 'version');
    const raw = body.restore_keys;
    const restoreKeys = Array.isArray(raw) ? raw.filter((k): k is string => typeof k === 'string') : [];
    if (!scopes.some((s) => (s.Permission & 1) !== 0))
      return twirpError(res, 403, 'permission_denied', READ_DENIED_MESSAGE);
    const hit = lookup(key, restoreKeys, version, scopes);
    // A miss is `ok: false` in a 200, not an error: the library turns it into `undefined`.
    if (!hit) return sendJson(res, 200, { ok: false });
    const own = entryFaults.get(hit.key);
    const proxy = opts.blobProxy;
    const via: Route = own && proxy ? (u) => proxy.route(u, own) : route;
    sendJson(res, 200, {
      ok: true,
      signed_download_url: via(onAzureHost(azurite.sasUrl(container, hit.blob, 'r'))),
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
    const scopes = tokenScopes(req.headers.authorization);
    switch (method) {
      case 'CreateCacheEntry':
        if (fault === 'write-denied') sendJson(res, 200, { ok: false, message: WRITE_DENIED_MESSAGE });
        else await create(body, res, ids.workflowRunBackendId, route, scopes);
        break;
      case 'FinalizeCacheEntryUpload':
        await finalize(body, res);
        break;
      case 'GetCacheEntryDownloadURL':
        if (fault === 'read-denied') twirpError(res, 403, 'permission_denied', READ_DENIED_MESSAGE);
        else download(body, res, route, scopes);
        break;
    }
    return true;
  };

  // ---- REST: GET/DELETE /repos/{owner}/{repo}/actions/caches[/{id}] with the GitHub token ----
  let restPermission: 'write' | 'read' | 'none' = 'write';
  let throttle = { count: 0, secs: 0 };
  const restLog: string[] = [];
  const restRe = /^\/repos\/([^/]+)\/([^/]+)\/actions\/caches(?:\/(\d+))?$/;

  function restEntry(e: CacheEntry) {
    return {
      id: e.id,
      ref: e.scope,
      key: e.key,
      version: e.version,
      // Whole seconds, as GitHub's timestamps.
      last_accessed_at: new Date(Math.floor(e.createdAt.getTime() / 1000) * 1000).toISOString(),
      created_at: new Date(Math.floor(e.createdAt.getTime() / 1000) * 1000).toISOString(),
      size_in_bytes: e.sizeBytes ?? 0,
    };
  }

  const restHandler: Handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    const m = restRe.exec(url.pathname);
    if (!m || (req.method !== 'GET' && req.method !== 'DELETE')) return false;
    restLog.push(`${req.method} ${url.pathname}${url.search}`);
    const fail = (status: number, message: string): true => {
      sendJson(res, status, { message, documentation_url: 'https://docs.github.com/rest/actions/cache' });
      return true;
    };
    if (throttle.count > 0) {
      throttle.count -= 1;
      res.writeHead(429, { 'retry-after': String(throttle.secs), 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: 'API rate limit exceeded' }));
      return true;
    }
    const auth = /^(?:token|Bearer) (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!opts.githubToken || auth !== opts.githubToken) return fail(401, 'Bad credentials');
    if (`${m[1]}/${m[2]}`.toLowerCase() !== (opts.repository ?? '').toLowerCase())
      return fail(404, 'Not Found');
    if (restPermission === 'none' || (req.method === 'DELETE' && restPermission !== 'write'))
      return fail(403, 'Resource not accessible by integration');
    const key = url.searchParams.get('key');
    const ref = url.searchParams.get('ref');
    if (req.method === 'DELETE') {
      const id = m[3] === undefined ? undefined : Number(m[3]);
      const gone = entries.filter((e) =>
        id !== undefined ? e.id === id : e.key === key && (ref === null || e.scope === ref),
      );
      if (gone.length === 0) return fail(404, 'Not Found');
      entries = entries.filter((e) => !gone.includes(e));
      if (id !== undefined) {
        res.writeHead(204);
        res.end();
      } else sendJson(res, 200, { total_count: gone.length, actions_caches: gone.map(restEntry) });
      return true;
    }
    // GET: `key` is a key or a prefix of keys; newest first unless asked otherwise.
    const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 30) || 30, 100);
    const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
    const asc = url.searchParams.get('direction') === 'asc';
    const all = entries
      .filter(
        (e) => e.finalizedAt && (key === null || e.key.startsWith(key)) && (ref === null || e.scope === ref),
      )
      .sort((a, b) => (asc ? a.id - b.id : b.id - a.id));
    sendJson(res, 200, {
      total_count: all.length,
      actions_caches: all.slice((page - 1) * perPage, page * perPage).map(restEntry),
    });
    return true;
  };

  return {
    container,
    handler,
    restHandler,
    setRestPermission(p) {
      restPermission = p;
    },
    throttleRest(count, secs) {
      throttle = { count, secs };
    },
    restRequests: () => [...restLog],
    setAzureHost(on) {
      azureHost = on;
    },
    setEntryFault(key, mode) {
      if (mode === 'none') entryFaults.delete(key);
      else entryFaults.set(key, mode);
    },
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
