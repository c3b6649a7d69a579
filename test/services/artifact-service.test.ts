// The REAL @actions/artifact against the local artifact service + Azurite: upload, list, download by id in
// the same run, the REST `findBy` path for another run, and what the library does when the service fails.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DUPLICATE_ARTIFACT_MESSAGE } from '../support/services/artifact-service.js';
import { snapshotTree, writeTree } from '../support/services/fixtures.js';
import {
  type Services,
  setEnv,
  settleWithCoreLog,
  startServices,
  withCoreLog,
} from '../support/services/index.js';

type ArtifactLib = typeof import('@actions/artifact');

let services: Services;
let lib: ArtifactLib;
let restoreEnv: (() => void) | undefined;
const cleanups: string[] = [];

beforeAll(async () => {
  services = await startServices({ repository: 'octo-org/octo-repo' });
  // @actions/github reads GITHUB_API_URL once, at import: it has to be in the environment first.
  restoreEnv = setEnv(services.env);
  lib = await import('@actions/artifact');
});

afterAll(async () => {
  restoreEnv?.();
  await services?.stop();
});

afterEach(async () => {
  services.artifact.setFault('none');
  services.artifact.resetCounts();
  await Promise.all(cleanups.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

/** Switches process.env to the runner environment of another job. */
function inRun(runId: number, runAttempt = 1): void {
  restoreEnv?.();
  restoreEnv = setEnv(services.envFor({ runId, runAttempt }));
}

async function tempDir(prefix: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  cleanups.push(d);
  return d;
}

/** A checkpoint tree and the file list uploadArtifact wants (files only, absolute). */
async function checkpoint(seed: string): Promise<{ root: string; files: string[] }> {
  const root = await tempDir('artifact-src-');
  await writeTree(root, seed);
  const files = (await readdir(root, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
  return { root, files };
}

async function upload(name: string, seed = name): Promise<{ id: number; root: string; digest?: string }> {
  const { root, files } = await checkpoint(seed);
  const { result } = await withCoreLog(() =>
    new lib.DefaultArtifactClient().uploadArtifact(name, files, root),
  );
  if (result.id === undefined) throw new Error(`upload of ${name} returned no id`);
  return { id: result.id, root, digest: result.digest };
}

const findBy = (workflowRunId: number) => ({
  findBy: {
    token: services.githubToken,
    workflowRunId,
    repositoryOwner: services.repository.owner,
    repositoryName: services.repository.repo,
  },
});

describe('artifact service with the real @actions/artifact', () => {
  it('uploads, lists and downloads by id within the run, byte for byte', async () => {
    inRun(77);
    const client = new lib.DefaultArtifactClient();
    const up = await upload('checkpoint-77-1-1');
    const [record] = services.artifact.artifacts();
    expect(record).toMatchObject({ id: up.id, runId: 77, runAttempt: 1, mimeType: 'application/zip' });
    expect(record?.digest).toBe(`sha256:${up.digest}`);

    const { result: listed } = await withCoreLog(() => client.listArtifacts());
    expect(listed.artifacts).toEqual([
      {
        name: 'checkpoint-77-1-1',
        id: up.id,
        size: record?.size,
        createdAt: expect.any(Date),
        digest: record?.digest,
      },
    ]);
    const { result: got } = await withCoreLog(() => client.getArtifact('checkpoint-77-1-1'));
    expect(got.artifact.id).toBe(up.id);

    const dest = await tempDir('artifact-dest-');
    const { result: dl } = await withCoreLog(() =>
      client.downloadArtifact(up.id, { path: dest, expectedHash: `sha256:${up.digest}` }),
    );
    expect(dl).toEqual({ downloadPath: dest, digestMismatch: false });
    expect(await snapshotTree(dest)).toEqual(await snapshotTree(up.root));
    expect(services.artifact.counts()).toEqual({
      CreateArtifact: 1,
      FinalizeArtifact: 1,
      ListArtifacts: 3,
      GetSignedArtifactURL: 1,
    });
    expect(services.unhandled()).toEqual([]);
  });

  it('finds and downloads another run’s artifacts through the REST API (findBy), newest by creation time', async () => {
    inRun(78, 1);
    await upload('ckpt-78-1-1');
    await upload('ckpt-78-1-2');
    inRun(78, 2);
    const newest = await upload('ckpt-78-2-1');
    // Attempts share the run: attempt 2 sees attempt 1's artifacts.
    const sameRun = await withCoreLog(() => new lib.DefaultArtifactClient().listArtifacts());
    expect(sameRun.result.artifacts.map((a) => a.name).sort()).toEqual([
      'ckpt-78-1-1',
      'ckpt-78-1-2',
      'ckpt-78-2-1',
    ]);
    inRun(79);
    await upload('ckpt-79-1-1');

    inRun(80);
    const client = new lib.DefaultArtifactClient();
    const { result: listed } = await withCoreLog(() => client.listArtifacts(findBy(78)));
    expect(listed.artifacts.map((a) => a.name)).toEqual(['ckpt-78-1-1', 'ckpt-78-1-2', 'ckpt-78-2-1']);
    const pick = [...listed.artifacts].sort(
      (a, b) => (b.createdAt?.getTime() ?? 0) - (a.createdAt?.getTime() ?? 0) || b.id - a.id,
    )[0];
    expect(pick?.id).toBe(newest.id);

    const { result: got } = await withCoreLog(() => client.getArtifact('ckpt-78-1-2', findBy(78)));
    expect(got.artifact).toMatchObject({ name: 'ckpt-78-1-2', size: expect.any(Number) });

    const dest = await tempDir('artifact-dest-');
    await withCoreLog(() => client.downloadArtifact(newest.id, { path: dest, ...findBy(78) }));
    expect(await snapshotTree(dest)).toEqual(await snapshotTree(newest.root));

    // Without findBy the runtime token only reaches its own run.
    expect((await withCoreLog(() => client.listArtifacts())).result.artifacts).toEqual([]);
    const other = await settleWithCoreLog(() => client.downloadArtifact(newest.id, { path: dest }));
    expect(other.error?.name).toBe('ArtifactNotFoundError');
    expect(services.artifact.counts()).toMatchObject({ listWorkflowRunArtifacts: 2, downloadArtifact: 1 });
  });

  it('REST list: name filter, pagination fields and auth as GitHub serves them', async () => {
    inRun(81);
    for (const n of ['a', 'b', 'c']) await upload(`ckpt-81-${n}`);
    const get = (query: string, token = services.githubToken) =>
      fetch(`${services.apiUrl}/repos/octo-org/octo-repo/actions/runs/81/artifacts${query}`, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json' },
      });
    const page2 = (await (await get('?per_page=2&page=2')).json()) as {
      total_count: number;
      artifacts: Array<Record<string, unknown>>;
    };
    expect(page2.total_count).toBe(3);
    expect(page2.artifacts).toEqual([
      expect.objectContaining({
        name: 'ckpt-81-c',
        expired: false,
        size_in_bytes: expect.any(Number),
        created_at: expect.any(String),
        workflow_run: expect.objectContaining({ id: 81 }),
      }),
    ]);
    const named = (await (await get('?name=ckpt-81-b')).json()) as { total_count: number };
    expect(named.total_count).toBe(1);
    expect((await get('', 'wrong')).status).toBe(401);

    const bad = await settleWithCoreLog(() =>
      new lib.DefaultArtifactClient().listArtifacts({ findBy: { ...findBy(81).findBy, token: 'wrong' } }),
    );
    expect(bad.error?.message).toMatch(/Bad credentials/);
  });

  it('GITHUB_API_URL is frozen at import: changing it later does not redirect REST calls', async () => {
    inRun(82);
    await upload('ckpt-82');
    const restore = setEnv({ GITHUB_API_URL: 'http://127.0.0.1:9' });
    try {
      const { result } = await withCoreLog(() => new lib.DefaultArtifactClient().listArtifacts(findBy(82)));
      expect(result.artifacts.map((a) => a.name)).toEqual(['ckpt-82']);
    } finally {
      restore();
    }
  });

  it('names are unique per run (409), deletes free them', async () => {
    inRun(83);
    const client = new lib.DefaultArtifactClient();
    await upload('ckpt-83');
    const { files, root } = await checkpoint('again');
    const dup = await settleWithCoreLog(() => client.uploadArtifact('ckpt-83', files, root));
    expect(dup.error?.message).toContain(
      `Failed to CreateArtifact: Received non-retryable error: Failed request: (409) Conflict: ${DUPLICATE_ARTIFACT_MESSAGE}`,
    );
    // uploadArtifact's own "Artifact upload failed" warning never fires: its try/catch does not await.
    expect(dup.log.warnings()).toEqual([]);

    await withCoreLog(() => client.deleteArtifact('ckpt-83'));
    expect((await withCoreLog(() => client.listArtifacts())).result.artifacts).toEqual([]);
    await upload('ckpt-83', 'again');
  });

  it('fast faults: connection reset and write-denied reject at once, without retries', async () => {
    inRun(84);
    const client = new lib.DefaultArtifactClient();
    const up = await upload('ckpt-84');
    const { files, root } = await checkpoint('x');
    services.artifact.resetCounts();

    services.artifact.setFault('unreachable', ['CreateArtifact', 'downloadArtifact']);
    const reset = await settleWithCoreLog(() => client.uploadArtifact('ckpt-84-b', files, root));
    expect(reset.error?.message).toMatch(/^Failed to CreateArtifact: Unable to make request: ECONNRESET/);
    // REST download (findBy) has no retry plugin: one request, then the error.
    const dl = await settleWithCoreLog(() => client.downloadArtifact(up.id, { path: root, ...findBy(84) }));
    expect(dl.error?.message).toBe('other side closed');

    services.artifact.setFault('write-denied');
    const denied = await settleWithCoreLog(() => client.uploadArtifact('ckpt-84-c', files, root));
    expect(denied.error?.message).toMatch(
      /Received non-retryable error: Failed request: \(403\) Forbidden: artifact write denied/,
    );
    expect(services.artifact.counts()).toEqual({ CreateArtifact: 2, downloadArtifact: 1 });
  });

  it('slow faults: Twirp 500 and 429 retry 5 times (~25-35 s), REST 500 retries 5 times more (~55 s), then all reject', async () => {
    inRun(85);
    const client = new lib.DefaultArtifactClient();
    await upload('ckpt-85');
    const { files, root } = await checkpoint('y');
    services.artifact.resetCounts();
    services.artifact.setFault('outage', ['CreateArtifact', 'listWorkflowRunArtifacts']);
    services.artifact.setFault('throttle', ['ListArtifacts']);
    const started = Date.now();
    // Concurrent, so the backoff schedules overlap instead of adding up.
    const { result } = await withCoreLog(() =>
      Promise.allSettled([
        client.uploadArtifact('ckpt-85-b', files, root),
        client.listArtifacts(),
        client.listArtifacts(findBy(85)),
      ]),
    );
    const elapsed = Date.now() - started;
    const reasons = result.map((r) => (r.status === 'rejected' ? String(r.reason) : 'fulfilled'));
    expect(reasons[0]).toMatch(
      /Failed to CreateArtifact: Failed to make request after 5 attempts: Failed request: \(500\)/,
    );
    expect(reasons[1]).toMatch(
      /Failed to ListArtifacts: Failed to make request after 5 attempts: Failed request: \(429\)/,
    );
    expect(reasons[2]).toMatch(/Server Error|500/);
    // Octokit's retry plugin: 1 + 4 + 9 + 16 + 25 s between its 6 requests.
    expect(elapsed).toBeGreaterThanOrEqual(55_000);
    expect(services.artifact.counts()).toEqual({
      CreateArtifact: 5,
      ListArtifacts: 5,
      listWorkflowRunArtifacts: 6,
    });
  }, 150_000);
});
