import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { diffFingerprints, type Fingerprint, fingerprintStep } from '../../src/plan/fingerprint.js';
import { parsePlan } from '../../src/plan/load.js';
import type { Plan } from '../../src/plan/types.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'plan-fp-'));
  await mkdir(path.join(dir, 'sql', 'schema'), { recursive: true });
  await writeFile(path.join(dir, 'sql', 'schema', 'a.sql'), 'create table a();\n');
  await writeFile(path.join(dir, 'sql', 'schema', 'b.sql'), 'create table b();\n');
  await writeFile(path.join(dir, 'migrate.sh'), '#!/bin/sh\n');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const BASE = {
  shell: 'bash',
  env: '{ REGION: eu }',
  run: './migrate.sh schema',
  wd: '.',
  inputs: '["sql/schema/**", "migrate.sh", "missing/*.sql"]',
  batch: '{ range: { from: 0, to: 100 }, size: 10, parallel: 2 }',
};

function planOf(over: Partial<typeof BASE> = {}): Plan {
  const v = { ...BASE, ...over };
  const text = `
version: 1
shell: ${v.shell}
env: ${v.env}
steps:
  - id: schema
    run: ${v.run}
    working-directory: ${v.wd}
    inputs: ${v.inputs}
    batch: ${v.batch}
`;
  return parsePlan(text, path.join(dir, 'checkpoint.yml'), { defaultConcurrency: 2 });
}

async function fp(over: Partial<typeof BASE> = {}): Promise<Fingerprint> {
  const plan = planOf(over);
  return fingerprintStep(plan, plan.steps[0] as Plan['steps'][number]);
}

describe('fingerprintStep', () => {
  it('refresh: the flag is not part of it, and a refreshing inline list counts as a list, not its items', async () => {
    const glob = await fp({ batch: '{ items: { glob: "data/*.csv" } }' });
    expect((await fp({ batch: '{ items: { glob: "data/*.csv", refresh: true } }' })).hash).toBe(glob.hash);
    expect((await fp({ batch: '{ items: { glob: "data/*.txt", refresh: true } }' })).hash).not.toBe(
      glob.hash,
    );
    // The mapping form of a list is the list, until it refreshes.
    expect((await fp({ batch: '{ items: { list: [a, b] } }' })).hash).toBe(
      (await fp({ batch: '{ items: [a, b] }' })).hash,
    );
    expect((await fp({ batch: '{ items: { list: [a, b], refresh: true } }' })).hash).toBe(
      (await fp({ batch: '{ items: { list: [a, b, c], refresh: true } }' })).hash,
    );
  });

  it('hashes each part to 16 hex characters and lists the matched input files', async () => {
    const f = await fp();
    expect(f.hash).toMatch(/^[0-9a-f]{16}$/);
    for (const part of ['run', 'shell', 'env', 'workingDirectory', 'batch'] as const) {
      expect(f.parts[part]).toMatch(/^[0-9a-f]{16}$/);
    }
    expect(Object.keys(f.parts.inputs)).toEqual(['migrate.sh', 'sql/schema/a.sql', 'sql/schema/b.sql']);
    for (const h of Object.values(f.parts.inputs)) expect(h).toMatch(/^[0-9a-f]{16}$/);
  });

  it('is stable while nothing changes', async () => {
    expect(await fp()).toEqual(await fp());
    expect(diffFingerprints(await fp(), await fp())).toEqual([]);
  });

  it.each([
    [{ run: './migrate.sh schema --force' }, ['run']],
    [{ env: '{ REGION: us }' }, ['env']],
    [{ shell: 'sh' }, ['shell']],
    [{ wd: 'db' }, ['working-directory']],
    [{ batch: '{ range: { from: 0, to: 200 }, size: 10 }' }, ['batch']],
    [{ batch: '{ range: { from: 0, to: 100 }, size: 20 }' }, ['batch']],
    [{ batch: '{ items: [a, b] }' }, ['batch']],
    [{ run: 'x', env: '{ A: 1 }' }, ['run', 'env']],
  ] as const)('names what changed: %j', async (change, reasons) => {
    const before = await fp();
    const after = await fp(change);
    expect(after.hash).not.toBe(before.hash);
    expect(diffFingerprints(before, after)).toEqual(reasons);
  });

  it('ignores scheduling-only batch settings and equivalent spellings', async () => {
    const before = await fp();
    expect(
      await fp({
        batch: '{ range: { from: 0, to: 100 }, size: 10, parallel: 9, order: sequential, max-failures: 5% }',
      }),
    ).toEqual(before);
    expect((await fp({ wd: 'db/' })).hash).toBe((await fp({ wd: './db' })).hash);
    expect((await fp({ env: '{ A: "1", B: "2" }' })).hash).toBe((await fp({ env: '{ B: 2, A: 1 }' })).hash);
  });

  it('names changed, added and removed input files', async () => {
    const before = await fp();
    await writeFile(path.join(dir, 'sql', 'schema', 'a.sql'), 'create table a(id int);\n');
    await writeFile(path.join(dir, 'sql', 'schema', 'new.sql'), 'create table n();\n');
    await unlink(path.join(dir, 'sql', 'schema', 'b.sql'));
    const after = await fp();
    expect(after.hash).not.toBe(before.hash);
    expect(diffFingerprints(before, after)).toEqual([
      'inputs sql/schema/a.sql',
      'inputs -sql/schema/b.sql',
      'inputs +sql/schema/new.sql',
    ]);
    expect(diffFingerprints(after, before)).toEqual([
      'inputs sql/schema/a.sql',
      'inputs +sql/schema/b.sql',
      'inputs -sql/schema/new.sql',
    ]);
  });

  it('hashes content, not timestamps', async () => {
    const before = await fp();
    await writeFile(path.join(dir, 'migrate.sh'), '#!/bin/sh\n');
    expect(await fp()).toEqual(before);
  });

  it('applies negated patterns and reads a bare directory as everything under it', async () => {
    const f = await fp({ inputs: '["sql", "!**/b.sql"]' });
    expect(Object.keys(f.parts.inputs)).toEqual(['sql/schema/a.sql']);
  });

  it('gives a step without inputs an empty input map', async () => {
    const f = await fp({ inputs: '[]' });
    expect(f.parts.inputs).toEqual({});
  });

  it('says "definition" when only the fingerprint format differs', () => {
    const parts = { run: 'a', shell: 'b', env: 'c', workingDirectory: 'd', batch: 'e', inputs: {} };
    expect(diffFingerprints({ hash: '1', parts }, { hash: '2', parts })).toEqual(['definition']);
  });
});
