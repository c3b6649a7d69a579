// Items by name through the real CLI: a glob over real files, a unit that really fails, a budget that really
// interrupts, files added and removed after the list was frozen, and a glob that matches nothing.
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startCli, status, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

async function files(dir: string, names: string[]): Promise<void> {
  await mkdir(join(dir, 'data'), { recursive: true });
  for (const n of names) await writeFile(join(dir, 'data', n), `${n}\n`);
}

interface NamedJson {
  steps: Array<{
    id: string;
    failed: Array<{ start: number; end: number; items: { count: number; first: string[] } | null }>;
    interruptedUnits: Array<{ start: number; end: number; items: { count: number; first: string[] } | null }>;
    itemsChanged: string | null;
    warnings: string[];
  }>;
}

describe('items by name', () => {
  it('a failed unit is named by its items in the log, status and status --json', async () => {
    const p = await project(`version: 1
concurrency: 1
steps:
  - id: import
    run: '[ "$CHECKPOINT_ITEM" != data/b.csv ]'
    batch:
      items: { glob: "data/*.csv" }
      size: 1
      max-failures: 5
  - id: chunks
    needs: []
    run: 'grep -q c.csv "$CHECKPOINT_ITEMS_FILE" && exit 4 || true'
    batch:
      items: { glob: "data/*.csv" }
      size: 4
`);
    await files(p.dir, ['a.csv', 'b.csv', 'c.csv', 'd.csv', 'e.csv', 'f.csv']);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/✗ import \[1, 2\) data\/b\.csv: exit code 1 \(try 1 of 1\)/);
    expect(r.stdout).toMatch(
      /✗ chunks \[0, 4\) data\/a\.csv, data\/b\.csv, data\/c\.csv and 1 more: exit code 4 \(try 1 of 1\)/,
    );

    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(/failed \[1, 2\) data\/b\.csv: exit code 1 after 1 tries/);
    expect(text.stdout).toMatch(
      /failed \[0, 4\) data\/a\.csv, data\/b\.csv, data\/c\.csv and 1 more: exit code 4/,
    );

    const s = (await status(p)) as unknown as NamedJson;
    const imp = s.steps.find((x) => x.id === 'import');
    expect(imp?.failed.map((f) => [f.start, f.items])).toEqual([[1, { count: 1, first: ['data/b.csv'] }]]);
    const ch = s.steps.find((x) => x.id === 'chunks');
    expect(ch?.failed.map((f) => f.items)).toEqual([
      { count: 4, first: ['data/a.csv', 'data/b.csv', 'data/c.csv', 'data/d.csv'] },
    ]);
    expect(imp?.itemsChanged).toBeNull();
    expect(imp?.warnings).toEqual([]);
  });

  it('interrupted units are named; a changed source is told by name in explain and status', async () => {
    const p = await project(`version: 1
steps:
  - id: slow
    run: 'if [ "$CHECKPOINT_ITEM" = data/c.csv ]; then echo started > started; exec sleep 60; fi'
    batch:
      items: { glob: "data/*.csv" }
      size: 1
      parallel: 1
      order: sequential
`);
    await files(p.dir, ['a.csv', 'b.csv', 'c.csv', 'd.csv']);
    const run = startCli(['run'], { cwd: p.dir });
    await waitFor(() => existsSync(join(p.dir, 'started')) || undefined, 30_000, 'unit c to start');
    run.child.kill('SIGTERM');
    expect((await run.result).code).toBe(75);
    const s = (await status(p)) as unknown as NamedJson;
    const slow = s.steps.find((x) => x.id === 'slow');
    expect(slow?.interruptedUnits).toEqual([
      { start: 2, end: 3, items: { count: 1, first: ['data/c.csv'] } },
    ]);
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(/interrupted: \[2, 3\) data\/c\.csv/);

    // The source changes: 12 files added, a.csv removed.
    await rm(join(p.dir, 'data', 'a.csv'));
    await files(
      p.dir,
      Array.from({ length: 12 }, (_, i) => `n${String(i).padStart(2, '0')}.csv`),
    );
    const explain = await runCli(['explain'], { cwd: p.dir });
    const added =
      'data/n00.csv, data/n01.csv, data/n02.csv, data/n03.csv, data/n04.csv, data/n05.csv, data/n06.csv, data/n07.csv, data/n08.csv, data/n09.csv and 2 more';
    const note = `items source changed since it was frozen: 12 added (${added}), 1 removed (data/a.csv); the frozen list is used until \`checkpoint reset slow\``;
    expect(explain.stdout).toContain(`note: ${note}`);
    expect(explain.stdout).not.toMatch(/→/);
    const after = (await status(p)) as unknown as NamedJson;
    expect(after.steps[0]?.itemsChanged).toBe(note);
    expect((await runCli(['status'], { cwd: p.dir })).stdout).toContain(`note: ${note}`);
  });

  it('a unit that yields is named by its item', async () => {
    const p = await project(`version: 1
steps:
  - id: y
    run: 'if [ "$CHECKPOINT_ITEM" = beta ] && [ ! -f "$CHECKPOINT_STATE_DIR/once" ]; then touch "$CHECKPOINT_STATE_DIR/once"; exit 75; fi'
    batch:
      items: [alpha, beta]
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/⏸ y \[1, 2\) beta yielded; it runs again/);
  });

  it('an item source that gives nothing is a warning in the log, status and status --json', async () => {
    const p = await project(`version: 1
steps:
  - id: compress
    run: gzip "$CHECKPOINT_ITEM"
    batch:
      items: { glob: "logs/*.log" }
`);
    const explain = await runCli(['explain'], { cwd: p.dir });
    expect(explain.stdout).toMatch(
      /run +compress \[0\/0 units\]: new\n +warning: the items source \(glob logs\/\*\.log\) gives no items: the step has nothing to do\n/,
    );
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    const warning =
      'compress: the items source (glob logs/*.log) gave no items, so the step has nothing to do; check the source, or `checkpoint reset compress` to expand it again';
    expect(r.stdout).toContain(`warning: ${warning}`);
    expect(r.stdout.split(warning).length).toBe(2);
    const s = (await status(p)) as unknown as NamedJson;
    expect(s.steps[0]?.warnings).toEqual([warning]);
    expect((await runCli(['status'], { cwd: p.dir })).stdout).toContain(`warning: ${warning}`);
  });
});
