// Local stand-ins for the GitHub services a JavaScript action talks to, so tests can run the REAL
// @actions/cache and @actions/artifact: one Azurite for blob storage, one "results" server (both
// libraries' Twirp APIs share ACTIONS_RESULTS_URL, so they must share an origin) and one REST API server.
//
//   const services = await startServices();
//   const restore = setEnv(services.envFor({ runId: 7, runAttempt: 2 }));
//   try { await cache.saveCache([dir], key); } finally { restore(); }
//   expect(services.cache.entries()).toHaveLength(1);
//   await services.stop();
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ArtifactService, createArtifactService, type RunRef } from './artifact-service.js';
import { type Azurite, startAzurite } from './azurite.js';
import { type BlobProxy, startBlobProxy } from './blob-proxy.js';
import { type CacheService, createCacheService } from './cache-service.js';
import { type HttpService, startHttpService } from './http.js';
import { cacheScopes, makeRuntimeToken } from './token.js';

export type { ArtifactRecord, ArtifactService, RunRef } from './artifact-service.js';
export type { Azurite } from './azurite.js';
export type { BlobProxy } from './blob-proxy.js';
export type { CacheEntry, CacheService } from './cache-service.js';
export { captureCore, settleWithCoreLog, withCoreLog } from './core-log.js';
export type { FaultMode } from './http.js';

export interface ServicesOptions {
  /** GITHUB_REPOSITORY, default `octo-org/octo-repo`. */
  repository?: string;
  /** GITHUB_RUN_ID / GITHUB_RUN_ATTEMPT of `env`; default 1000 / 1. */
  runId?: number;
  runAttempt?: number;
  /** The token REST calls must carry (what the action's `github-token` input would be). */
  githubToken?: string;
}

export interface Services {
  /** The runner's environment for the default run (see envFor). */
  env: Record<string, string>;
  /**
   * What the runner gives a JavaScript action of this run attempt: ACTIONS_RUNTIME_TOKEN (a JWT naming the
   * run's backend ids), ACTIONS_RESULTS_URL (with the runner's trailing slash), ACTIONS_CACHE_URL,
   * ACTIONS_CACHE_SERVICE_V2, ACTIONS_RUNTIME_URL, GITHUB_API_URL, GITHUB_SERVER_URL, GITHUB_REPOSITORY,
   * GITHUB_RUN_ID, GITHUB_RUN_ATTEMPT, plus RUNNER_TEMP (without it @actions/cache stages its archive under
   * /home/actions/temp).
   */
  envFor(run?: Partial<RunRef>): Record<string, string>;
  githubToken: string;
  repository: { owner: string; repo: string; full: string };
  cache: CacheService;
  artifact: ArtifactService;
  azurite: Azurite;
  /** The pass-through in front of Azurite that the `cut` / `truncate` faults send blob transfers to. */
  blobProxy: BlobProxy;
  /** Origin of the Twirp server (ACTIONS_RESULTS_URL without the slash). */
  resultsUrl: string;
  /** GITHUB_API_URL. */
  apiUrl: string;
  /**
   * For a process that downloads from `*.blob.core.windows.net` URLs (cache.setAzureHost): NODE_OPTIONS that
   * resolve that host to 127.0.0.1, where Azurite (or the blob proxy) listens.
   */
  azureEnv(): Record<string, string>;
  /** Requests no fake handled, e.g. a library calling the v1 cache API; should stay empty. */
  unhandled(): string[];
  /** Idempotent; stops Azurite even if a server fails to close. */
  stop(): Promise<void>;
}

/**
 * Sets the given variables on process.env and returns a function restoring exactly the previous state
 * (variables that were unset are deleted again).
 */
export function setEnv(vars: Record<string, string | undefined>): () => void {
  const saved = new Map<string, string | undefined>();
  for (const [k, v] of Object.entries(vars)) {
    saved.set(k, process.env[k]);
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return () => {
    for (const [k, v] of saved) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

export async function startServices(opts: ServicesOptions = {}): Promise<Services> {
  const full = opts.repository ?? 'octo-org/octo-repo';
  const [owner = '', repo = ''] = full.split('/');
  const githubToken = opts.githubToken ?? 'ghs_localTestServicesToken000000000000';
  const defaults = { runId: opts.runId ?? 1000, runAttempt: opts.runAttempt ?? 1 };

  const azurite = await startAzurite();
  const closers: Array<() => Promise<void>> = [() => azurite.stop()];
  const stop = async () => {
    const pending = closers.splice(0).reverse();
    const results = await Promise.allSettled(pending.map((c) => c()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  };

  try {
    const runnerTemp = await mkdtemp(join(tmpdir(), 'runner-temp-'));
    closers.push(() => rm(runnerTemp, { recursive: true, force: true }));

    const blobProxy = await startBlobProxy(azurite.url);
    closers.push(() => blobProxy.close());
    let apiUrl = '';
    const cache = createCacheService(azurite, { blobProxy, repository: full, githubToken });
    const artifact = createArtifactService(azurite, {
      repository: full,
      githubToken,
      apiUrl: () => apiUrl,
      blobProxy,
    });

    // ACTIONS_CACHE_URL / ACTIONS_RUNTIME_URL (the v1 APIs) point here too but nothing serves them: with
    // ACTIONS_CACHE_SERVICE_V2 nothing should call them, and if something does it shows in unhandled().
    const results: HttpService = await startHttpService([cache.handler, artifact.twirpHandler]);
    closers.push(() => results.close());
    const api: HttpService = await startHttpService([artifact.restHandler, cache.restHandler]);
    closers.push(() => api.close());
    apiUrl = api.url;

    const envFor = (run: Partial<RunRef> = {}): Record<string, string> => {
      const ref: RunRef = { ...defaults, ...run };
      const ids = artifact.registerRun(ref);
      return {
        ACTIONS_RUNTIME_TOKEN: makeRuntimeToken(ids, full, cacheScopes(ref.ref ?? 'refs/heads/main')),
        ACTIONS_RESULTS_URL: `${results.url}/`,
        ACTIONS_CACHE_URL: `${results.url}/legacy-cache/`,
        ACTIONS_CACHE_SERVICE_V2: 'true',
        ACTIONS_RUNTIME_URL: `${results.url}/legacy-runtime/`,
        GITHUB_API_URL: api.url,
        // Must be github.com (or *.ghe.com / *.localhost): both libraries refuse GHES. Nothing contacts it.
        GITHUB_SERVER_URL: 'https://github.com',
        GITHUB_REPOSITORY: full,
        GITHUB_RUN_ID: String(ref.runId),
        GITHUB_RUN_ATTEMPT: String(ref.runAttempt),
        GITHUB_REF: ref.ref ?? 'refs/heads/main',
        RUNNER_TEMP: runnerTemp,
      };
    };

    // Loaded with --import into the process under test: only the Azure blob host is answered, and with the
    // loopback address; every other name resolves as usual.
    const dnsPreload = join(runnerTemp, 'azure-blob-dns.mjs');
    await writeFile(
      dnsPreload,
      [
        "import dns from 'node:dns';",
        'const lookup = dns.lookup;',
        'dns.lookup = function (host, opts, cb) {',
        "  if (typeof host === 'string' && host.endsWith('.blob.core.windows.net')) {",
        "    if (typeof opts === 'function') { cb = opts; opts = {}; }",
        "    if (opts && opts.all) return process.nextTick(cb, null, [{ address: '127.0.0.1', family: 4 }]);",
        "    return process.nextTick(cb, null, '127.0.0.1', 4);",
        '  }',
        '  return lookup.apply(this, arguments);',
        '};',
        '',
      ].join('\n'),
    );

    return {
      env: envFor(),
      azureEnv: () => ({ NODE_OPTIONS: `--import=file://${dnsPreload}` }),
      envFor,
      githubToken,
      repository: { owner, repo, full },
      cache,
      artifact,
      azurite,
      blobProxy,
      resultsUrl: results.url,
      apiUrl: api.url,
      unhandled: () => [...results.unhandled(), ...api.unhandled()],
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
