// Bundles made from real checkpoints (written by the real CLI), unpacked, tampered with and refused.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import * as tar from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { encodeLine } from '../../src/journal/journal-file.js';
import { loadPlan } from '../../src/plan/load.js';
import {
  ARCHIVE,
  BundleRejected,
  entryProblem,
  installPaths,
  installRun,
  MANIFEST,
  packBundle,
  unpackBundle,
} from '../../src/stores/bundle.js';
import { runCli, useProjects } from '../support/cli.js';

const PLAN = `version: 1
name: bundled
steps:
  - id: a
    run: echo a >> "$CHECKPOINT_STATE_DIR/seen"; echo "x=1" >> "$CHECKPOINT_OUTPUT"
  - id: b
    run: "true"
    batch: { range: { from: 0, to: 20 }, size: 5, parallel: 2 }
`;

const project = useProjects();

async function finishedRun(): Promise<{ dir: string; root: string; runId: string; seq: number }> {
  const p = await project(PLAN);
  const r = await runCli(['run', '--run', 'r1'], { cwd: p.dir });
  expect(r.code, r.stderr).toBe(0);
  const root = join(p.dir, '.checkpoints');
  const ck = await Checkpoint.read(root, 'r1');
  return { dir: p.dir, root, runId: 'r1', seq: ck.state.seq };
}

async function writeArchive(
  path: string,
  entries: Array<{ name: string; type?: 'file' | 'symlink'; body?: string; linkname?: string }>,
) {
  const pack = tar.pack();
  const done = pipeline(pack, createGzip(), createWriteStream(path));
  for (const e of entries) {
    if (e.type === 'symlink')
      pack.entry({ name: e.name, type: 'symlink', linkname: e.linkname ?? '/etc/passwd' });
    else pack.entry({ name: e.name }, e.body ?? 'x');
  }
  pack.finalize();
  await done;
}

/** Rewrites the archive and fixes the manifest's digest, as an attacker with write access to the store could. */
async function replaceArchive(bundle: string, entries: Parameters<typeof writeArchive>[1]) {
  await writeArchive(join(bundle, ARCHIVE), entries);
  const m = JSON.parse(await readFile(join(bundle, MANIFEST), 'utf8'));
  m.sha256 = createHash('sha256')
    .update(await readFile(join(bundle, ARCHIVE)))
    .digest('hex');
  await writeFile(join(bundle, MANIFEST), JSON.stringify(m));
}

describe('checkpoint bundles', () => {
  it('round-trips a real run: same state, files and outputs, without the lock or scratch files', async () => {
    const run = await finishedRun();
    await writeFile(join(run.root, run.runId, 'lock'), '{}');
    const bundle = join(run.dir, 'bundle');
    const m = await packBundle(bundle, {
      root: run.root,
      runId: run.runId,
      planName: 'bundled',
      seq: run.seq,
      key: 'k',
    });
    expect(m.files).toBeGreaterThan(3);
    const unpacked = await unpackBundle(bundle, join(run.dir, 'stage'), { planName: 'bundled' });
    expect(unpacked.checkpoint.state.seq).toBe(run.seq);
    const names = await readdir(unpacked.runDir);
    expect(names).toContain('checkpoint.json');
    expect(names).toContain('journal.ndjson');
    expect(names).not.toContain('lock');
    expect(names).not.toContain('tmp');
    expect(await readFile(join(unpacked.runDir, 'state', 'a', 'seen'), 'utf8')).toBe('a\n');

    // Installed into an empty workspace, the CLI sees the run as complete.
    const fresh = await project(PLAN);
    const root = join(fresh.dir, '.checkpoints');
    await installRun(unpacked, root);
    const status = await runCli(['status', '--json'], { cwd: fresh.dir });
    const doc = JSON.parse(status.stdout);
    expect(doc.runId).toBe('r1');
    expect(doc.complete).toBe(true);
    expect(doc.units.done).toBe(5);
    expect((await stat(join(root, 'r1'))).mode & 0o777).toBe(0o700);
  });

  it('carries extra paths and puts them back in the workspace', async () => {
    const run = await finishedRun();
    await mkdir(join(run.dir, 'out', 'deep'), { recursive: true });
    await writeFile(join(run.dir, 'out', 'deep', 'f.txt'), 'payload');
    const bundle = join(run.dir, 'bundle');
    await packBundle(bundle, {
      root: run.root,
      runId: run.runId,
      planName: 'bundled',
      seq: run.seq,
      key: 'k',
      paths: [join(run.dir, 'out')],
      workspace: run.dir,
    });
    const fresh = await project(PLAN);
    const unpacked = await unpackBundle(bundle, join(fresh.dir, 'stage'), { planName: 'bundled' });
    const placed = await installPaths(unpacked, fresh.dir);
    expect(placed).toEqual(['out/deep/f.txt']);
    expect(await readFile(join(fresh.dir, 'out', 'deep', 'f.txt'), 'utf8')).toBe('payload');
  });

  it('a checkpoint that does not fit the plan is refused on restore, however well it is checksummed', async () => {
    const run = await finishedRun();
    // A CRC-valid line that widens step b's space with its own fingerprint: the plan says [0, 20).
    const rec = (await Checkpoint.read(run.root, run.runId)).state.steps.get('b');
    const journal = join(run.root, run.runId, 'journal.ndjson');
    const forged = { type: 'step-init', step: 'b', fingerprint: rec?.fingerprint, from: 0, to: 40, size: 5 };
    await writeFile(
      journal,
      (await readFile(journal, 'utf8')) +
        encodeLine({ seq: run.seq + 1, t: Date.now(), ...forged, reason: 'forged' }),
    );
    const bundle = join(run.dir, 'bundle');
    await packBundle(bundle, {
      root: run.root,
      runId: run.runId,
      planName: 'bundled',
      seq: run.seq + 1,
      key: 'k',
    });
    const plan = await loadPlan(join(run.dir, 'checkpoint.yml'));
    const refused = await unpackBundle(bundle, join(run.dir, 's1'), { planName: 'bundled', plan }).catch(
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(BundleRejected);
    expect(String(refused)).toMatch(/does not fit the plan/);
    expect(String(refused)).toMatch(/journal\.ndjson:\d+/);
  });

  it('with a signing key: accepts its own signature, refuses a missing, wrong or tampered one', async () => {
    const run = await finishedRun();
    const bundle = join(run.dir, 'bundle');
    const opts = { root: run.root, runId: run.runId, planName: 'bundled', seq: run.seq, key: 'k' };
    await packBundle(bundle, { ...opts, signingKey: 's3cret' });
    await expect(
      unpackBundle(bundle, join(run.dir, 's1'), { planName: 'bundled', signingKey: 's3cret' }),
    ).resolves.toBeDefined();
    await expect(
      unpackBundle(bundle, join(run.dir, 's2'), { planName: 'bundled', signingKey: 'other' }),
    ).rejects.toThrow(/signature does not match/);
    // The archive changed and its digest updated: the signature (over the digest) no longer matches.
    await replaceArchive(bundle, [{ name: 'run/checkpoint.json', body: '{}' }]);
    await expect(
      unpackBundle(bundle, join(run.dir, 's3'), { planName: 'bundled', signingKey: 's3cret' }),
    ).rejects.toThrow(/signature does not match/);
    await packBundle(bundle, opts);
    await expect(
      unpackBundle(bundle, join(run.dir, 's4'), { planName: 'bundled', signingKey: 's3cret' }),
    ).rejects.toThrow(/not signed/);
  });

  it('refuses a bundle of another plan, a changed archive, and entries that would escape', async () => {
    const run = await finishedRun();
    const bundle = join(run.dir, 'bundle');
    await packBundle(bundle, {
      root: run.root,
      runId: run.runId,
      planName: 'bundled',
      seq: run.seq,
      key: 'k',
    });
    await expect(unpackBundle(bundle, join(run.dir, 's'), { planName: 'other' })).rejects.toThrow(
      /belongs to plan "bundled"/,
    );
    const archive = join(bundle, ARCHIVE);
    const bytes = await readFile(archive);
    const at = bytes.length - 20;
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(archive, bytes);
    await expect(unpackBundle(bundle, join(run.dir, 's'), { planName: 'bundled' })).rejects.toThrow(
      /does not match the sha256/,
    );

    for (const [entries, why] of [
      [[{ name: 'run/../../evil' }], /climbs out/],
      [[{ name: '/etc/evil' }], /absolute/],
      [[{ name: 'elsewhere/x' }], /not under run\/ or paths\//],
      [[{ name: 'run/link', type: 'symlink' as const }], /symlink, not a regular file/],
    ] as const) {
      await replaceArchive(bundle, [...entries]);
      const stage = join(run.dir, 'stage-escape');
      const err = await unpackBundle(bundle, stage, { planName: 'bundled' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BundleRejected);
      expect((err as Error).message).toMatch(why);
      // Nothing was written for a refused bundle.
      await expect(stat(stage)).rejects.toThrow();
    }
  });

  it('refuses a bundle whose checkpoint does not pass the engine reader', async () => {
    const run = await finishedRun();
    const bundle = join(run.dir, 'bundle');
    await packBundle(bundle, {
      root: run.root,
      runId: run.runId,
      planName: 'bundled',
      seq: run.seq,
      key: 'k',
    });
    await replaceArchive(bundle, [
      { name: 'run/checkpoint.json', body: '{"format":1,"garbage":true}' },
      { name: 'run/journal.ndjson', body: '' },
    ]);
    await expect(unpackBundle(bundle, join(run.dir, 's'), { planName: 'bundled' })).rejects.toThrow(
      /cannot be read/,
    );
  });

  it('entryProblem accepts plain relative names only', () => {
    expect(entryProblem('run/checkpoint.json')).toBeUndefined();
    expect(entryProblem('paths/a/b.txt')).toBeUndefined();
    expect(entryProblem('run/./x')).toMatch(/normalised/);
    expect(entryProblem('run//x')).toMatch(/normalised/);
    expect(entryProblem('run\\..\\x')).toMatch(/backslash/);
    expect(entryProblem('C:/x')).toMatch(/absolute/);
    expect(entryProblem('run')).toMatch(/folder/);
  });
});
