// The REAL @actions/cache against the local cache service + Azurite: round trip, key matching, immutability,
// and what the library does when the service fails (the behaviour the cache store has to live with).
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cache from '@actions/cache';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DUPLICATE_ENTRY_MESSAGE } from '../support/services/cache-service.js';
import { snapshotTree, writeTree } from '../support/services/fixtures.js';
import { type Services, setEnv, startServices, withCoreLog } from '../support/services/index.js';

let services: Services;
let restoreEnv: (() => void) | undefined;
const cleanups: string[] = [];

beforeAll(async () => {
  services = await startServices();
});

afterAll(async () => {
  await services?.stop();
});

afterEach(async () => {
  restoreEnv?.();
  restoreEnv = undefined;
  services.cache.setFault('none');
  services.cache.resetCounts();
  await Promise.all(cleanups.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/**
 * A job's workspace: GITHUB_WORKSPACE plus the runner env of `run`. The checkpoint directory's absolute path
 * is what the library hashes into the entry version, so a "fresh machine" is the same path emptied.
 */
async function job(
  run: { runId?: number; runAttempt?: number; ref?: string } = {},
): Promise<{ ws: string; dir: string }> {
  const ws = await mkdtemp(join(tmpdir(), 'cache-ws-'));
  cleanups.push(ws);
  restoreEnv?.();
  restoreEnv = setEnv({ ...services.envFor(run), GITHUB_WORKSPACE: ws });
  return { ws, dir: join(ws, '.checkpoints') };
}

/** writeTree's seed, i.e. which save a restored tree came from. */
const journal = (dir: string) => readFile(join(dir, 'journal.jsonl'), 'utf8');

const zstdOnPath = spawnSync('zstd', ['--version']).status === 0;

describe('cache service with the real @actions/cache', () => {
  it('saves a directory and restores identical bytes on a fresh machine', async () => {
    const { ws, dir } = await job({ runId: 41, runAttempt: 1 });
    await writeTree(dir, 'round-trip');
    const before = await snapshotTree(dir);
    const key = 'checkpoint-v1-k-41-1-1';

    const saved = await withCoreLog(() => cache.saveCache([dir], key));
    expect(saved.result).toBeGreaterThan(0);
    expect(saved.log.warnings()).toEqual([]);
    const [entry] = services.cache.entries();
    expect(entry).toMatchObject({ id: saved.result, key, finalizedAt: expect.any(Date) });

    // Which compressor tar was given shows in the stored archive's magic bytes.
    const archive = await services.azurite.read(services.cache.container, entry?.blob ?? '');
    expect(archive.subarray(0, 3).toString('hex')).toBe(zstdOnPath ? '28b52f' : '1f8b08');

    await rm(ws, { recursive: true, force: true });
    const restored = await withCoreLog(() => cache.restoreCache([dir], key));
    expect(restored.result).toBe(key);
    expect(await snapshotTree(dir)).toEqual(before);
    expect(services.cache.counts()).toEqual({
      CreateCacheEntry: 1,
      FinalizeCacheEntryUpload: 1,
      GetCacheEntryDownloadURL: 1,
    });
    expect(services.unhandled()).toEqual([]);
  });

  it('restores by prefix: exact key first, else the newest entry under the prefix with the same version', async () => {
    const { ws, dir } = await job({ runId: 42, runAttempt: 2 });
    const save = async (key: string, paths = [dir]) => {
      await rm(dir, { recursive: true, force: true });
      await writeTree(dir, key);
      expect((await withCoreLog(() => cache.saveCache(paths, key))).result).toBeGreaterThan(0);
    };
    await save('ckpt-v1-pfx-42-1-1');
    await save('ckpt-v1-pfx-42-2-1');
    await save('ckpt-v1-pfx-42-2-2');
    await save('ckpt-v1-pfxother-42-2-3');
    // Same prefix, newer, but another path list: another version, never a match for [dir].
    const other = join(ws, 'other');
    await writeTree(other, 'other');
    await save('ckpt-v1-pfx-42-2-9', [other]);

    const fromPrefix = async (primary: string, restoreKeys: string[]) => {
      await rm(dir, { recursive: true, force: true });
      const { result } = await withCoreLog(() => cache.restoreCache([dir], primary, restoreKeys));
      if (result) expect(await journal(dir)).toContain(result);
      return result;
    };
    // How the cache store asks for "the newest entry under this prefix".
    expect(await fromPrefix('ckpt-v1-pfx-', ['ckpt-v1-pfx-'])).toBe('ckpt-v1-pfx-42-2-2');
    // Prefixes are plain text: without a separator at the end, key `pfx` also matches key `pfxother`.
    expect(await fromPrefix('ckpt-v1-pfx', ['ckpt-v1-pfx'])).toBe('ckpt-v1-pfxother-42-2-3');
    expect(await fromPrefix('ckpt-v1-pfx-42-', [])).toBe('ckpt-v1-pfx-42-2-2');
    expect(await fromPrefix('ckpt-v1-pfx-42-1-1', ['ckpt-v1-pfx-42-'])).toBe('ckpt-v1-pfx-42-1-1');
    expect(await fromPrefix('nothing-', ['also-nothing-', 'ckpt-v1-pfx-42-1'])).toBe('ckpt-v1-pfx-42-1-1');
    expect(await fromPrefix('nothing-', [])).toBeUndefined();
  });

  it('refuses to overwrite an existing key (HTTP 409), and the library only says so at info level', async () => {
    const { dir } = await job({ runId: 43 });
    const key = 'ckpt-v1-immutable-43-1-1';
    await writeTree(dir, 'first');
    expect((await withCoreLog(() => cache.saveCache([dir], key))).result).toBeGreaterThan(0);

    await writeTree(dir, 'second');
    const again = await withCoreLog(() => cache.saveCache([dir], key));
    expect(again.result).toBe(-1);
    expect(again.log.warnings()).toEqual([]);
    expect(again.log.infos().join('\n')).toContain(
      `Failed to save: Unable to reserve cache with key ${key}, another job may be creating this cache.`,
    );
    // The server's reason only reaches the debug log.
    expect(again.log.lines.join('\n')).toContain(`(409) Conflict: ${DUPLICATE_ENTRY_MESSAGE}`);
    expect(services.cache.entries().filter((e) => e.key === key)).toHaveLength(1);
    expect(services.cache.count('CreateCacheEntry')).toBe(2);
    expect(services.cache.count('FinalizeCacheEntryUpload')).toBe(1);

    await rm(dir, { recursive: true, force: true });
    await withCoreLog(() => cache.restoreCache([dir], key));
    expect(await journal(dir)).toContain('first');
  });

  it('write denied (read-only token): save warns with the `cache write denied:` prefix and returns -1', async () => {
    const { dir } = await job({ runId: 44 });
    await writeTree(dir, 'denied');
    services.cache.setFault('write-denied');
    const { result, log } = await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-denied-44-1-1'));
    expect(result).toBe(-1);
    expect(log.warnings()).toEqual([
      'Failed to save: Unable to reserve cache with key ckpt-v1-denied-44-1-1. More details: cache write denied: token has no writable scopes',
    ]);
    expect(services.cache.entries().filter((e) => e.key === 'ckpt-v1-denied-44-1-1')).toEqual([]);
  });

  it('read denied: restore warns and reports a miss', async () => {
    const { dir } = await job({ runId: 45 });
    await writeTree(dir, 'r');
    await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-rd-45-1-1'));
    services.cache.setFault('read-denied');
    const { result, log } = await withCoreLog(() => cache.restoreCache([dir], 'ckpt-v1-rd-'));
    expect(result).toBeUndefined();
    expect(log.warnings().join('\n')).toMatch(/^Failed to restore: .*cache read denied:/);
  });

  it('throttled (429): neither call retries; save logs info (plus a rate-limit warning), restore warns', async () => {
    const { dir } = await job({ runId: 46 });
    await writeTree(dir, 't');
    await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-thr-46-1-1'));
    services.cache.resetCounts();
    services.cache.setFault('throttle');

    const save = await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-thr-46-1-2'));
    expect(save.result).toBe(-1);
    expect(save.log.warnings()).toEqual([
      "You've hit a rate limit, your rate limit will reset in 60 seconds",
    ]);
    expect(save.log.infos().join('\n')).toContain('another job may be creating this cache');

    const restore = await withCoreLog(() => cache.restoreCache([dir], 'ckpt-v1-thr-'));
    expect(restore.result).toBeUndefined();
    expect(restore.log.warnings().join('\n')).toContain(
      'Failed to restore: Failed to GetCacheEntryDownloadURL: Rate limited',
    );
    expect(services.cache.counts()).toEqual({ CreateCacheEntry: 1, GetCacheEntryDownloadURL: 1 });
  });

  it('unreachable (connection reset): no retries; save logs info and returns -1, restore warns and misses', async () => {
    const { dir } = await job({ runId: 47 });
    await writeTree(dir, 'u');
    services.cache.setFault('unreachable');
    const save = await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-unr-47-1-1'));
    expect(save.result).toBe(-1);
    expect(save.log.warnings()).toEqual([]);
    expect(save.log.infos().join('\n')).toContain('another job may be creating this cache');
    const restore = await withCoreLog(() => cache.restoreCache([dir], 'ckpt-v1-unr-'));
    expect(restore.result).toBeUndefined();
    expect(restore.log.warnings().join('\n')).toContain('Unable to make request: ECONNRESET');
    expect(services.cache.counts()).toEqual({ CreateCacheEntry: 1, GetCacheEntryDownloadURL: 1 });
  });

  it('faults can hit only saves: restores keep working', async () => {
    const { dir } = await job({ runId: 48 });
    await writeTree(dir, 'only-saves');
    await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-os-48-1-1'));
    services.cache.setFault('unreachable', 'save');
    expect((await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-os-48-1-2'))).result).toBe(-1);
    expect((await withCoreLog(() => cache.restoreCache([dir], 'ckpt-v1-os-'))).result).toBe(
      'ckpt-v1-os-48-1-1',
    );
  });

  it('a save that fails at finalize leaves the key reserved forever (warning, -1)', async () => {
    const { dir } = await job({ runId: 49 });
    await writeTree(dir, 'f');
    const key = 'ckpt-v1-fin-49-1-1';
    services.cache.setFault('unreachable', ['FinalizeCacheEntryUpload']);
    const first = await withCoreLog(() => cache.saveCache([dir], key));
    expect(first.result).toBe(-1);
    expect(first.log.warnings().join('\n')).toContain('Failed to save: Failed to FinalizeCacheEntryUpload');
    services.cache.setFault('none');
    expect((await withCoreLog(() => cache.saveCache([dir], key))).result).toBe(-1);
    expect((await withCoreLog(() => cache.restoreCache([dir], key))).result).toBeUndefined();
    expect(services.cache.entries().find((e) => e.key === key)?.finalizedAt).toBeUndefined();
  });

  it('throws only for caller mistakes: missing paths, bad keys', async () => {
    const { ws } = await job({ runId: 50 });
    await expect(cache.saveCache([join(ws, 'missing')], 'ckpt-v1-x')).rejects.toThrow(
      /Path Validation Error/,
    );
    await expect(cache.saveCache([ws], 'a,b')).rejects.toThrow(/cannot contain commas/);
    await expect(
      cache.restoreCache(
        [ws],
        'k',
        Array.from({ length: 10 }, (_, i) => `r${i}`),
      ),
    ).rejects.toThrow(/Keys are limited to a maximum of 10/);
    expect(services.cache.counts()).toEqual({});
  });

  it('outage (HTTP 500): both calls retry 5 times over ~25-35 s, then save returns -1 (info) and restore misses (warning)', async () => {
    const { dir } = await job({ runId: 51 });
    await writeTree(dir, 'o');
    await withCoreLog(() => cache.saveCache([dir], 'ckpt-v1-out-51-1-1'));
    services.cache.resetCounts();
    services.cache.setFault('outage');
    const started = Date.now();
    // Concurrent, so the two backoff schedules overlap instead of adding up.
    const { result, log } = await withCoreLog(() =>
      Promise.all([cache.saveCache([dir], 'ckpt-v1-out-51-1-2'), cache.restoreCache([dir], 'ckpt-v1-out-')]),
    );
    const elapsed = Date.now() - started;
    expect(result).toEqual([-1, undefined]);
    // The library's own minimum backoff: 3000 + 4500 + 6750 + 10125 ms.
    expect(elapsed).toBeGreaterThanOrEqual(24_375);
    expect(services.cache.counts()).toEqual({ CreateCacheEntry: 5, GetCacheEntryDownloadURL: 5 });
    expect(log.infos().join('\n')).toContain('another job may be creating this cache');
    expect(log.warnings()).toEqual([
      expect.stringMatching(
        /^Failed to restore: Failed to GetCacheEntryDownloadURL: Failed to make request after 5 attempts: Failed request: \(500\)/,
      ),
    ]);
    expect(log.errors()).toEqual([]);
  }, 120_000);

  it("scopes entries per ref from the token's `ac` claim: own ref, then the default branch, never a sibling", async () => {
    const fresh = async (ref: string, runId: number) => {
      const j = await job({ runId, ref });
      // The same absolute path on every machine: the library hashes it into the entry's version.
      return { ...j, dir: join(tmpdir(), 'scoped-ckpt') };
    };
    const onMain = await fresh('refs/heads/main', 61);
    await writeTree(onMain.dir, 'main');
    expect((await withCoreLog(() => cache.saveCache([onMain.dir], 'scoped-61'))).result).toBeGreaterThan(0);
    const onA = await fresh('refs/heads/feature-a', 62);
    await writeTree(onA.dir, 'feature-a');
    expect((await withCoreLog(() => cache.saveCache([onA.dir], 'scoped-62'))).result).toBeGreaterThan(0);
    expect(services.cache.entries().map((e) => [e.key, e.scope])).toEqual(
      expect.arrayContaining([
        ['scoped-61', 'refs/heads/main'],
        ['scoped-62', 'refs/heads/feature-a'],
      ]),
    );

    const lookFrom = async (ref: string) => {
      const j = await fresh(ref, 70);
      await rm(j.dir, { recursive: true, force: true });
      const hit = (await withCoreLog(() => cache.restoreCache([j.dir], 'scoped-', ['scoped-']))).result;
      await rm(j.dir, { recursive: true, force: true });
      return hit;
    };
    // feature-a sees its own newer entry first; feature-b only main's; main never feature-a's.
    expect(await lookFrom('refs/heads/feature-a')).toBe('scoped-62');
    expect(await lookFrom('refs/heads/feature-b')).toBe('scoped-61');
    expect(await lookFrom('refs/heads/main')).toBe('scoped-61');
    // The same key may exist once per scope, but never twice in one.
    const again = await fresh('refs/heads/feature-b', 63);
    await writeTree(again.dir, 'feature-b');
    expect((await withCoreLog(() => cache.saveCache([again.dir], 'scoped-61'))).result).toBeGreaterThan(0);
    const dup = await withCoreLog(() => cache.saveCache([again.dir], 'scoped-61'));
    expect(dup.result).toBe(-1);
  });

  it('the cache REST API lists by key prefix and ref, and deletes only with `actions: write`', async () => {
    const { dir } = await job({ runId: 80 });
    await writeTree(dir, 'rest');
    for (const k of ['rest-k-80-1-1', 'rest-k-80-1-2', 'rest-kx-80-1-1'])
      expect((await withCoreLog(() => cache.saveCache([dir], k))).result).toBeGreaterThan(0);
    const api = (method: string, path: string) =>
      fetch(`${services.apiUrl}/repos/${services.repository.full}${path}`, {
        method,
        headers: { authorization: `Bearer ${services.githubToken}` },
      });
    const listed = (await (await api('GET', '/actions/caches?key=rest-k-')).json()) as {
      actions_caches: Array<{ id: number; key: string; ref: string; created_at: string }>;
    };
    expect(listed.actions_caches.map((c) => c.key)).toEqual(['rest-k-80-1-2', 'rest-k-80-1-1']);
    expect(listed.actions_caches[0]?.ref).toBe('refs/heads/main');
    // Whole seconds, as GitHub's timestamps.
    expect(listed.actions_caches[0]?.created_at).toMatch(/:\d\d\.000Z$/);
    const id = listed.actions_caches[1]?.id ?? 0;
    services.cache.setRestPermission('read');
    try {
      expect((await api('DELETE', `/actions/caches/${id}`)).status).toBe(403);
    } finally {
      services.cache.setRestPermission('write');
    }
    expect((await api('DELETE', `/actions/caches/${id}`)).status).toBe(204);
    expect(services.cache.entries().some((e) => e.id === id)).toBe(false);
    services.cache.throttleRest(1, 7);
    const throttled = await api('GET', '/actions/caches?key=rest-k-');
    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');
  });
});
