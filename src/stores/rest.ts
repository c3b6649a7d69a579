// The few GitHub REST calls the stores make with the job's token (listing a key's cache entries, deleting
// old ones, listing a repository's artifacts). One place for the headers, for `Retry-After`, and for telling
// "the token may not" from an outage.

export interface RestOptions {
  apiUrl: string;
  token: string;
  /** owner/name */
  repository: string;
  /** Waits longer than this for a `Retry-After` are not waited for (the request fails as throttled). */
  maxWaitMs?: number;
  /** Aborts the request and any wait (main's SIGINT). */
  signal?: AbortSignal;
}

/** A REST answer other than 2xx; `status` 0 when no answer came (connection refused, reset). */
export class RestError extends Error {
  override name = 'RestError';
  readonly status: number;
  constructor(message: string, status: number, options?: ErrorOptions) {
    super(message, options);
    this.status = status;
  }
  /** The token lacks the permission (`403`/`404` on a route the repository has): not an outage. */
  get denied(): boolean {
    return this.status === 403 || this.status === 404;
  }
}

/** Throttled answers are retried at most this often after their `Retry-After`. */
const RETRIES = 2;
const DEFAULT_MAX_WAIT_MS = 60_000;

/**
 * How long a throttled answer asks to wait: `Retry-After` (seconds or an HTTP date), else for a 403 with
 * `x-ratelimit-remaining: 0` until `x-ratelimit-reset`; undefined when the answer is not a throttle.
 */
export function retryAfterMs(
  res: Pick<Response, 'status' | 'headers'>,
  now = Date.now(),
): number | undefined {
  if (res.status !== 429 && res.status !== 403) return undefined;
  const after = res.headers.get('retry-after');
  if (after !== null) {
    const secs = Number(after);
    if (Number.isFinite(secs)) return Math.max(0, secs * 1000);
    const at = Date.parse(after);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  if (res.headers.get('x-ratelimit-remaining') === '0') {
    const reset = Number(res.headers.get('x-ratelimit-reset'));
    if (Number.isFinite(reset)) return Math.max(0, reset * 1000 - now);
  }
  // A 429 without any hint: GitHub's guidance is to wait a minute.
  return res.status === 429 ? 60_000 : undefined;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(done, ms);
    function done() {
      signal?.removeEventListener('abort', abort);
      resolve();
    }
    function abort() {
      clearTimeout(t);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', abort, { once: true });
  });
}

/** One REST request; a throttled answer is retried after its `Retry-After` when that wait is affordable. */
export async function rest(o: RestOptions, method: 'GET' | 'DELETE', path: string): Promise<Response> {
  const url = `${o.apiUrl.replace(/\/$/, '')}/repos/${o.repository}${path}`;
  for (let attempt = 0; ; attempt++) {
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${o.token}`,
          accept: 'application/vnd.github+json',
          'x-github-api-version': '2022-11-28',
        },
        ...(o.signal ? { signal: o.signal } : {}),
      });
    } catch (err) {
      throw new RestError(`${method} ${url}: ${(err as Error).message}`, 0, { cause: err });
    }
    if (res.ok) return res;
    const wait = retryAfterMs(res);
    const text = await res.text().catch(() => '');
    if (wait !== undefined && attempt < RETRIES && wait <= (o.maxWaitMs ?? DEFAULT_MAX_WAIT_MS)) {
      await sleep(wait, o.signal);
      continue;
    }
    const why = text ? `: ${text.slice(0, 200)}` : '';
    throw new RestError(
      `${method} ${url}: HTTP ${res.status}${why}${wait !== undefined ? ` (throttled; retry after ${Math.ceil(wait / 1000)} s)` : ''}`,
      res.status,
    );
  }
}

export interface CacheListing {
  id: number;
  key: string;
  ref: string;
  createdAt: number;
}

/** The repository's cache entries whose key starts with `prefix`, newest first (ties: the higher id). */
export async function listCaches(o: RestOptions, prefix: string): Promise<CacheListing[]> {
  const out: CacheListing[] = [];
  // A checkpoint key has a few entries once pruning runs; without it (no `actions: write`) hundreds: five
  // pages reach far enough back for a restore to find an older good one.
  for (let page = 1; page <= 5; page++) {
    const res = await rest(
      o,
      'GET',
      `/actions/caches?key=${encodeURIComponent(prefix)}&per_page=100&page=${page}&sort=created_at&direction=desc`,
    );
    const body = (await res.json()) as {
      actions_caches?: Array<{ id: number; key: string; ref?: string; created_at?: string }>;
    };
    const list = body.actions_caches ?? [];
    for (const c of list)
      if (c.key.startsWith(prefix))
        out.push({
          id: c.id,
          key: c.key,
          ref: c.ref ?? '',
          createdAt: c.created_at ? Date.parse(c.created_at) : 0,
        });
    if (list.length < 100) break;
  }
  return out.sort((a, b) => b.createdAt - a.createdAt || b.id - a.id);
}

export async function deleteCache(o: RestOptions, id: number): Promise<void> {
  await rest(o, 'DELETE', `/actions/caches/${id}`);
}
