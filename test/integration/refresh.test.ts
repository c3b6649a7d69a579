// `refresh: true` through the real CLI: real files added and removed between runs, a real items command, real
// units whose side effects are counted, and forged journal lines read back by a real run.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { itemsHash } from '../../src/journal/checkpoint.js';
import { encodeLine } from '../../src/journal/journal-file.js';
import { type Project, readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

async function touch(p: Project, ...names: string[]): Promise<void> {
  await mkdir(join(p.dir, 'data'), { recursive: true });
  for (const n of names) await writeFile(join(p.dir, 'data', n), `${n}\n`);
}

interface RefreshJson {
  complete: boolean;
  steps: Array<{
    id: string;
    state: string;
    units: { total: number; done: number };
    items: { count: number } | null;
    gone: { count: number; ranges: Array<[number, number]>; first: string[] } | null;
    itemsChanged: string | null;
    warnings: string[];
  }>;
}

async function json(p: Project): Promise<RefreshJson> {
  return (await status(p)) as unknown as RefreshJson;
}

/** Each unit appends what it ran (only when it succeeds) to the project's effects file. */
const PLAN = `version: 1
concurrency: 2
steps:
  - id: import
    run: '[ "$CHECKPOINT_ITEM" != data/c.csv ] && echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { glob: "data/*.csv", refresh: true }
      size: 1
      max-failures: 5
  - id: chunks
    needs: []
    run: 'echo "$CHECKPOINT_BATCH_START-$CHECKPOINT_BATCH_END $(tr "\\n" " " < "$CHECKPOINT_ITEMS_FILE")" >> "$CHUNKS"'
    batch:
      items: { glob: "data/*.csv", refresh: true }
      size: 10
`;

describe('refresh: true', () => {
  it('a glob over three attempts: new files run once each, done ones never again, a removed pending one is gone', async () => {
    const p = await project(PLAN);
    const env = { EFFECTS: p.effects, CHUNKS: join(p.dir, 'chunks.log') };
    const chunks = () => readLines(env.CHUNKS);

    // Attempt 1: a, b, c; c fails, so it is pending.
    await touch(p, 'a.csv', 'b.csv', 'c.csv');
    const first = await runCli(['run'], { cwd: p.dir, env });
    expect(first.code).toBe(1);
    expect((await readLines(p.effects)).sort()).toEqual(['data/a.csv', 'data/b.csv']);
    expect(await chunks()).toEqual(['0-3 data/a.csv data/b.csv data/c.csv ']);

    // Attempt 2: d and e added, c removed before it ever ran: d and e run, c is gone, a and b stay done.
    await touch(p, 'd.csv', 'e.csv');
    await rm(join(p.dir, 'data', 'c.csv'));
    const explain = await runCli(['explain'], { cwd: p.dir, env });
    expect(explain.stdout).toContain(
      'note: refresh: 2 new item(s) appended (data/d.csv, data/e.csv); 1 gone (data/c.csv): left the source before they ran, not run',
    );
    expect(explain.stdout).not.toContain('the frozen list is used until');
    const second = await runCli(['run'], { cwd: p.dir, env });
    expect(second.code).toBe(0);
    expect(second.stdout).toContain(
      'import: refresh: 2 new item(s) appended (data/d.csv, data/e.csv); 1 gone (data/c.csv): left the source before they ran, not run',
    );
    expect(second.stdout).toContain('chunks: refresh: 2 new item(s) appended (data/d.csv, data/e.csv)');
    expect((await readLines(p.effects)).sort()).toEqual([
      'data/a.csv',
      'data/b.csv',
      'data/d.csv',
      'data/e.csv',
    ]);
    // The chunk [0, 3) was done before the list grew: the rest of its cell runs, [3, 5), not [0, 5).
    expect(await chunks()).toEqual(['0-3 data/a.csv data/b.csv data/c.csv ', '3-5 data/d.csv data/e.csv ']);

    const after = await json(p);
    expect(after.complete).toBe(true);
    const imp = after.steps.find((s) => s.id === 'import');
    expect(imp?.state).toBe('done');
    expect(imp?.items?.count).toBe(5);
    expect(imp?.gone).toEqual({ count: 1, ranges: [[2, 3]], first: ['data/c.csv'] });
    expect(imp?.units).toMatchObject({ total: 5, done: 5 });
    expect(imp?.itemsChanged).toBeNull();
    expect(after.steps.find((s) => s.id === 'chunks')?.gone).toBeNull();
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toContain('gone: 1 item(s) (data/c.csv) left the source before they ran; not run');

    // Attempt 3: f added, a (done) removed: only f runs; a is not gone, being done.
    await touch(p, 'f.csv');
    await rm(join(p.dir, 'data', 'a.csv'));
    const third = await runCli(['run'], { cwd: p.dir, env });
    expect(third.code).toBe(0);
    expect(third.stdout).toContain(
      'import: refresh: 1 new item(s) appended (data/f.csv); 1 gone (data/c.csv)',
    );
    expect((await readLines(p.effects)).sort()).toEqual([
      'data/a.csv',
      'data/b.csv',
      'data/d.csv',
      'data/e.csv',
      'data/f.csv',
    ]);
    expect((await chunks()).at(-1)).toBe('5-6 data/f.csv ');
    const last = await json(p);
    expect(last.steps.find((s) => s.id === 'import')?.gone?.first).toEqual(['data/c.csv']);
    expect(last.steps.find((s) => s.id === 'chunks')?.gone).toBeNull();

    // Nothing new: the run is complete and does nothing.
    const again = await runCli(['run'], { cwd: p.dir, env });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/is complete: nothing to do/);
    expect(await readLines(p.effects)).toHaveLength(5);
  });

  it('a command source appends the ids it prints later, each run once', async () => {
    const p = await project(`version: 1
steps:
  - id: ids
    run: 'echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { command: 'cat ids.txt', refresh: true }
`);
    const env = { EFFECTS: p.effects };
    await writeFile(join(p.dir, 'ids.txt'), '10\n20\n');
    expect((await runCli(['run'], { cwd: p.dir, env })).code).toBe(0);
    await writeFile(join(p.dir, 'ids.txt'), '30\n20\n10\n40\n30\n');
    const r = await runCli(['run'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('ids: refresh: 2 new item(s) appended (30, 40)');
    expect((await readLines(p.effects)).sort()).toEqual(['10', '20', '30', '40']);
    expect(
      JSON.parse(await readFile(join(p.dir, '.checkpoints', await latest(p), 'items', 'ids.json'), 'utf8')),
    ).toEqual(['10', '20', '30', '40']);
  });

  it('an inline list that refreshes appends the items added to the plan, keeping the work done', async () => {
    const plan = (items: string) => `version: 1
steps:
  - id: each
    run: 'echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { list: [${items}], refresh: true }
`;
    const p = await project(plan('a, b'));
    const env = { EFFECTS: p.effects };
    expect((await runCli(['run'], { cwd: p.dir, env })).code).toBe(0);
    await writeFile(p.plan, plan('a, b, c'));
    const r = await runCli(['run'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/fingerprint changed/);
    expect((await readLines(p.effects)).sort()).toEqual(['a', 'b', 'c']);
  });

  it('an empty source is fine with refresh (its items come later), and a warning without', async () => {
    const p = await project(`version: 1
steps:
  - id: later
    run: 'echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { glob: "data/*.csv", refresh: true }
  - id: empty
    needs: []
    run: 'true'
    batch:
      items: { glob: "nothing/*.csv" }
`);
    const env = { EFFECTS: p.effects };
    const explain = await runCli(['explain'], { cwd: p.dir, env });
    expect(explain.stdout).toContain('warning: the items source (glob nothing/*.csv) gives no items');
    expect(explain.stdout).not.toContain('glob data/*.csv) gives no items');
    const r = await runCli(['run'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('warning: empty: the items source (glob nothing/*.csv) gave no items');
    expect(r.stdout).not.toContain('warning: later:');
    const s = await json(p);
    expect(s.steps.find((x) => x.id === 'later')?.warnings).toEqual([]);
    expect(s.steps.find((x) => x.id === 'empty')?.warnings).toHaveLength(1);

    await touch(p, 'x.csv');
    const next = await runCli(['run'], { cwd: p.dir, env });
    expect(next.code).toBe(0);
    expect(next.stdout).toContain('later: refresh: 1 new item(s) appended (data/x.csv)');
    expect(await readLines(p.effects)).toEqual(['data/x.csv']);
  });

  it('a sharded run refuses a refreshing step that its shards split, naming shards: first', async () => {
    const p = await project(`version: 1
steps:
  - id: import
    run: 'true'
    batch:
      items: { glob: "data/*.csv", refresh: true }
`);
    const r = await runCli(['run', '--shard', '0/2'], { cwd: p.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'checkpoint.yml: steps[0].batch.items.refresh: a list that refreshes cannot be split among shards (--shard 0/2); add "shards: first"',
    );
  });

  it('an attempt cut off between writing the longer list and recording it: the next one appends again', async () => {
    const p = await project(`version: 1
steps:
  - id: import
    run: 'echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { glob: "data/*.csv", refresh: true }
`);
    const env = { EFFECTS: p.effects };
    await touch(p, 'a.csv', 'b.csv');
    expect((await runCli(['run'], { cwd: p.dir, env })).code).toBe(0);
    await touch(p, 'c.csv');
    // What a refresh writes before its items-refresh line (docs/format.md): the list with c appended.
    const file = join(p.dir, '.checkpoints', await latest(p), 'items', 'import.json');
    await writeFile(file, `${JSON.stringify(['data/a.csv', 'data/b.csv', 'data/c.csv'])}\n`);
    const s = await json(p);
    expect(s.steps[0]?.items?.count).toBe(2);
    const r = await runCli(['run'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('import: refresh: 1 new item(s) appended (data/c.csv)');
    expect((await readLines(p.effects)).sort()).toEqual(['data/a.csv', 'data/b.csv', 'data/c.csv']);
  });

  describe('a forged items-refresh line is damage, and nothing runs', () => {
    async function ranOnce(): Promise<{ p: Project; env: Record<string, string>; run: string }> {
      const p = await project(`version: 1
steps:
  - id: import
    run: 'echo "$CHECKPOINT_ITEM" >> "$EFFECTS"'
    batch:
      items: { glob: "data/*.csv", refresh: true }
`);
      const env = { EFFECTS: p.effects };
      await touch(p, 'a.csv', 'b.csv', 'c.csv');
      expect((await runCli(['run'], { cwd: p.dir, env })).code).toBe(0);
      await touch(p, 'd.csv');
      return { p, env, run: await latest(p) };
    }

    async function forge(p: Project, run: string, fields: Record<string, unknown>): Promise<void> {
      const path = join(p.dir, '.checkpoints', run, 'journal.ndjson');
      const text = await readFile(path, 'utf8');
      const seq = Math.max(
        ...text
          .split('\n')
          .filter(Boolean)
          .map((l) => (JSON.parse(l) as { seq: number }).seq),
      );
      await writeFile(
        path,
        text +
          encodeLine({
            type: 'items-refresh',
            step: 'import',
            gone: [],
            refresh: true,
            ...fields,
            seq: seq + 1,
            t: Date.now(),
          }),
      );
    }

    it('a list that shrinks', async () => {
      const { p, env, run } = await ranOnce();
      await forge(p, run, { count: 1, sha256: itemsHash(['data/a.csv']) });
      const r = await runCli(['run'], { cwd: p.dir, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /journal\.ndjson:\d+: items-refresh event of step "import": the frozen list shrinks from 3 to 1 items \(a refresh only appends\)\. This record is damage/,
      );
      expect(await readLines(p.effects)).toHaveLength(3);
    });

    it('a list that changes without growing', async () => {
      const { p, env, run } = await ranOnce();
      await forge(p, run, { count: 3, sha256: itemsHash(['x', 'y', 'z']) });
      const r = await runCli(['run'], { cwd: p.dir, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the frozen list of 3 items changes without growing.*This record is damage/);
      expect(await readLines(p.effects)).toHaveLength(3);
    });

    it('a longer list whose checksum is not the file on disk', async () => {
      const { p, env, run } = await ranOnce();
      await forge(p, run, {
        count: 4,
        sha256: itemsHash(['data/a.csv', 'data/b.csv', 'data/c.csv', 'data/evil']),
      });
      const r = await runCli(['run'], { cwd: p.dir, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /items\/import\.json: the frozen item list of step "import" does not match its checksum/,
      );
      expect(await readLines(p.effects)).toHaveLength(3);
    });

    it('a done item called gone', async () => {
      const { p, env, run } = await ranOnce();
      await forge(p, run, {
        count: 3,
        sha256: itemsHash(['data/a.csv', 'data/b.csv', 'data/c.csv']),
        gone: [[0, 1]],
      });
      const r = await runCli(['run'], { cwd: p.dir, env });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/gone items \[0, 1\) include done ones\. This record is damage/);
      expect(await readLines(p.effects)).toHaveLength(3);
    });
  });
});

async function latest(p: Project): Promise<string> {
  return (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim();
}
