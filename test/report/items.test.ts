// Items by name: the pure formatters, and the job summary, annotations and shard report of a real run over a
// real glob (the engine run in-process, as the summary tests do).
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/run.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readLatest } from '../../src/journal/runs.js';
import { loadPlan } from '../../src/plan/load.js';
import { annotationsFor } from '../../src/report/annotations.js';
import {
  describeItemsChange,
  describeUnitItems,
  itemsChange,
  loadFrozenItems,
  nameItems,
  unitItems,
} from '../../src/report/items.js';
import { gatherShards, renderReportText } from '../../src/report/shards.js';
import { runStats } from '../../src/report/stats.js';
import { failedRanges, rangeLabel, readLogTails, renderSummary } from '../../src/report/summary.js';

describe('nameItems', () => {
  it('names the first few, then counts the rest', () => {
    expect(nameItems(['a.csv'])).toBe('a.csv');
    expect(nameItems(['a.csv', 'b.csv', 'c.csv'])).toBe('a.csv, b.csv, c.csv');
    expect(nameItems(['a', 'b', 'c', 'd'])).toBe('a, b, c and 1 more');
    expect(nameItems(['a', 'b', 'c'], 10)).toBe('a, b, c and 7 more');
    expect(nameItems(['a', 'b'], 10, 1)).toBe('a and 9 more');
    expect(nameItems([], 0)).toBe('no items');
    expect(nameItems([], 5)).toBe('5 items');
  });

  it('quotes items that a list would make ambiguous', () => {
    expect(nameItems(['x, y', ' pad', '', 'plain'], 4, 4)).toBe('"x, y", " pad", "", plain');
  });
});

describe('unitItems and describeUnitItems', () => {
  const items = Array.from({ length: 10 }, (_, i) => `f${i}.csv`);
  it('slices the unit from the frozen list, at most `max` names', () => {
    expect(unitItems(items, 3, 4)).toEqual({ count: 1, first: ['f3.csv'] });
    expect(unitItems(items, 0, 10, 2)).toEqual({ count: 10, first: ['f0.csv', 'f1.csv'] });
    // A unit past the list's end (a damaged record) names what there is.
    expect(unitItems(items, 8, 20)).toEqual({ count: 2, first: ['f8.csv', 'f9.csv'] });
    expect(unitItems(undefined, 0, 1)).toBeUndefined();
  });

  it('shows a unit as log lines do', () => {
    const batch = { id: 'import', batch: {} };
    expect(describeUnitItems(batch, { start: 3, end: 4 }, items)).toBe('import [3, 4) f3.csv');
    expect(describeUnitItems(batch, { start: 0, end: 10 }, items)).toBe(
      'import [0, 10) f0.csv, f1.csv, f2.csv and 7 more',
    );
    expect(describeUnitItems(batch, { start: 400, end: 500 }, undefined)).toBe('import [400, 500)');
    expect(describeUnitItems({ id: 'build' }, { start: 0, end: 1 }, undefined)).toBe('build');
  });
});

describe('itemsChange', () => {
  it('lists the items added and removed, by name, the first ten and counts', () => {
    const frozen = ['a', 'b', 'c'];
    const now = ['b', 'c', ...Array.from({ length: 12 }, (_, i) => `n${i}`)];
    const change = itemsChange(frozen, now);
    expect(change).toEqual({
      added: now.slice(2, 12),
      addedCount: 12,
      removed: ['a'],
      removedCount: 1,
      reordered: false,
    });
    expect(describeItemsChange('load', change as NonNullable<typeof change>)).toBe(
      'items source changed since it was frozen: 12 added (n0, n1, n2, n3, n4, n5, n6, n7, n8, n9 and 2 more), 1 removed (a); the frozen list is used until `checkpoint reset load`',
    );
  });

  it('is undefined for the same list; another order is a change of its own', () => {
    expect(itemsChange(['a', 'b'], ['a', 'b'])).toBeUndefined();
    const change = itemsChange(['a', 'b'], ['b', 'a']);
    expect(change?.reordered).toBe(true);
    expect(describeItemsChange('s', change as NonNullable<typeof change>)).toMatch(
      /: the same items in another order;/,
    );
  });
});

// ---------------------------------------------------------------------------------------------------------

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function project(yaml: string, files: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-items-'));
  dirs.push(dir);
  await writeFile(join(dir, 'checkpoint.yml'), yaml);
  await mkdir(join(dir, 'data'));
  for (const f of files) await writeFile(join(dir, 'data', f), `${f}\n`);
  return dir;
}

async function run(dir: string): Promise<number> {
  const sink = new PassThrough();
  sink.resume();
  return runCommand(
    { file: join(dir, 'checkpoint.yml') },
    { out: sink, err: sink, env: { ...process.env, CI: 'true', NO_COLOR: '1' } },
  );
}

const PLAN = `version: 1
name: import
concurrency: 1
steps:
  - id: load
    run: '[ "$CHECKPOINT_ITEM" != data/b.csv ] && [ "$CHECKPOINT_ITEM" != data/c.csv ]'
    batch:
      items: { glob: "data/*.csv" }
      size: 1
      max-failures: 5
  - id: empty
    needs: []
    run: 'true'
    batch:
      items: { glob: "nothing/*.csv" }
`;

describe('the summary, annotations and the shard report name failed units by their items', () => {
  it('from a real run over a glob', async () => {
    const dir = await project(PLAN, ['a.csv', 'b.csv', 'c.csv', 'd.csv']);
    expect(await run(dir)).toBe(1);
    const plan = await loadPlan(join(dir, 'checkpoint.yml'));
    const root = join(dir, '.checkpoints');
    const ckpt = await Checkpoint.read(root, (await readLatest(root)) as string);
    const frozen = await loadFrozenItems(ckpt);
    expect(frozen.get('load')?.slice()).toEqual(['data/a.csv', 'data/b.csv', 'data/c.csv', 'data/d.csv']);
    const stats = runStats(ckpt, plan, false, frozen);
    const load = stats.steps.find((s) => s.id === 'load');
    if (!load) throw new Error('no step load');

    // Adjacent failed units with the same reason are one range, with the items of both.
    const ranges = failedRanges(load);
    expect(ranges.map((r) => [r.start, r.end, r.items])).toEqual([
      [1, 3, { count: 2, first: ['data/b.csv', 'data/c.csv'] }],
    ]);
    expect(rangeLabel(load, 1, 3, ranges[0]?.items)).toBe('items 1–2 (data/b.csv, data/c.csv)');

    const summary = renderSummary({ state: ckpt.state, stats, logs: await readLogTails(ckpt, stats) });
    expect(summary).toContain(
      '❌ load · items 1–2 (data/b.csv, data/c.csv) (2 chunks from #1) · exit code 1',
    );
    // The empty source is a warning of the summary.
    expect(summary).toContain(
      '> - empty: the items source (glob nothing/\\*.csv) gave no items, so the step has nothing to do',
    );

    const [annotation] = annotationsFor(stats);
    expect(annotation?.title).toBe('step load, items 1–2 (data/b.csv, data/c.csv) failed');

    const report = gatherShards({ sources: [{ source: root, ckpt, frozen }], plan });
    expect(renderReportText(report)).toMatch(/failed \[1, 3\) data\/b\.csv, data\/c\.csv: exit code 1/);

    // Without the lists (an old caller), units are shown by index as before.
    const bare = runStats(ckpt, plan);
    expect(failedRanges(bare.steps.find((s) => s.id === 'load') as typeof load)[0]?.items).toBeUndefined();
  });
});
