// Unit-level intervention through the real CLI (DESIGN §5): `mark-done STEP --unit N.. | --item NAME..` and
// `reset STEP --unit .. | --item ..` change only those units (reset also makes the step's dependents
// pending), record who and when, show in `status`; every refusal exits 2 and leaves the checkpoint's bytes
// as they were.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { resetCommand } from '../../src/session/manage.js';
import { type Project, readLines, runCli, status, useProjects } from '../support/cli.js';

const project = useProjects();

interface ManualJson {
  start: number;
  end: number;
  by: string | null;
  at: string;
  items: { count: number; first: string[] } | null;
}
interface UnitsJson {
  steps: Array<{ id: string; state: string; done: Array<[number, number]>; manual: ManualJson[] }>;
}

const rangePlan = `version: 1
name: units
concurrency: 1
steps:
  - id: prep
    run: echo prep >> effects.log
  - id: fill
    run: |
      echo "fill $CHECKPOINT_BATCH_INDEX" >> effects.log
      [ "$CHECKPOINT_BATCH_INDEX" != 2 ] || [ -f ok ]
    batch: { range: { from: 0, to: 60 }, size: 10, max-failures: 6 }
  - id: report
    run: echo report >> effects.log
`;

const env = { GITHUB_ACTOR: '', USER: 'ci-user' };

async function json(p: Project): Promise<UnitsJson> {
  return (await status(p)) as unknown as UnitsJson;
}

async function runDir(p: Project): Promise<string> {
  return join(p.dir, '.checkpoints', (await status(p)).runId);
}

/** The checkpoint's files as bytes: what a refused command must leave exactly as it was. */
async function checkpointBytes(dir: string): Promise<string[]> {
  const read = (f: string) =>
    readFile(join(dir, f)).then(
      (b) => b.toString('base64'),
      () => '',
    );
  return [await read('checkpoint.json'), await read('journal.ndjson')];
}

describe('unit-level intervention', () => {
  it('mark-done --unit: the next run runs only the other units; status tells them from work that ran', async () => {
    const p = await project(rangePlan);
    // Unit 2 fails until `ok` exists: the run stops with it failed.
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    await writeFile(p.effects, '');
    const marked = await runCli(['mark-done', 'fill', '--unit', '2,4..5', '--by', 'alice'], {
      cwd: p.dir,
      env,
    });
    expect(marked.stderr).toBe('');
    expect(marked.code).toBe(0);
    // Units 4 and 5 had run already: only unit 2 is marked; they were work that ran.
    expect(marked.stdout).toMatch(
      /marked fill units 2, 4-5 \[20, 30\), \[40, 60\) done \(by hand, by alice\)/,
    );
    const s = await json(p);
    const fill = s.steps.find((x) => x.id === 'fill');
    expect(fill?.state).toBe('done');
    expect(fill?.manual).toEqual([{ start: 20, end: 30, by: 'alice', at: expect.any(String), items: null }]);
    expect(Date.parse(fill?.manual[0]?.at ?? '')).toBeGreaterThan(0);
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(/marked done by hand by alice at \d{4}-\d\d-\d\dT[\d:.]+Z: \[20, 30\)/);
    // Nothing of fill runs again (all its units are done); its dependent does.
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['report']);
    // `--by` absent: $GITHUB_ACTOR, else $USER.
    const again = await runCli(['reset', 'fill', '--unit', '0'], { cwd: p.dir, env });
    expect(again.stdout).toMatch(/reset fill unit 0 \[0, 10\): pending again \(by ci-user\)/);
    const byActor = await runCli(['mark-done', 'fill', '--unit', '0'], {
      cwd: p.dir,
      env: { GITHUB_ACTOR: 'octocat', USER: 'ci-user' },
    });
    expect(byActor.stdout).toMatch(
      /marked fill unit 0 \[0, 10\) done \(by hand, by octocat\); fill is complete/,
    );
    const after = (await json(p)).steps.find((x) => x.id === 'fill');
    expect(after?.manual.map((m) => [m.start, m.end, m.by])).toEqual([
      [20, 30, 'alice'],
      [0, 10, 'octocat'],
    ]);
  });

  it('reset --unit re-runs only that unit and makes a dependent step pending', async () => {
    const p = await project(rangePlan);
    await writeFile(join(p.dir, 'ok'), '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    await writeFile(p.effects, '');
    const dir = await runDir(p);
    const r = await runCli(['reset', 'fill', '--unit', '3'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /reset fill unit 3 \[30, 40\): pending again \(by ci-user\); the rest of its work stays/,
    );
    expect(r.stdout).toMatch(/reset report \(depends on a reset step\): all its work is pending again/);
    const s = await json(p);
    expect(s.steps.map((x) => x.state)).toEqual(['done', 'partial', 'pending']);
    expect(s.steps[1]?.done).toEqual([
      [0, 30],
      [40, 60],
    ]);
    // The step's marker goes with its completeness; prep's stays.
    await expect(readFile(join(dir, 'steps', 'fill.complete'), 'utf8')).rejects.toThrow();
    await expect(readFile(join(dir, 'steps', 'prep.complete'), 'utf8')).resolves.toMatch(/STEP=prep/);
    // The journal says who and when.
    const journal = (await readLines(join(dir, 'journal.ndjson'))).map((l) => JSON.parse(l));
    expect(journal).toContainEqual(
      expect.objectContaining({
        type: 'reset',
        step: 'fill',
        ranges: [[30, 40]],
        by: 'ci-user',
        t: expect.any(Number),
      }),
    );
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['fill 3', 'report']);
    // A range with `-` resets several units at once.
    const several = await runCli(['reset', 'fill', '--unit', '1-2'], { cwd: p.dir, env });
    expect(several.stdout).toMatch(/reset fill units 1-2 \[10, 30\): pending again/);
    await writeFile(p.effects, '');
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['fill 1', 'fill 2', 'report']);
  });

  it('--item on a glob step: the units holding the items, by name in the output and status', async () => {
    const p = await project(`version: 1
name: items
concurrency: 1
steps:
  - id: import
    run: 'echo "import $CHECKPOINT_ITEM" >> effects.log; [ "$CHECKPOINT_ITEM" != data/c.csv ] || [ -f ok ]'
    batch: { items: { glob: "data/*.csv" }, size: 1, max-failures: 5 }
  - id: pairs
    needs: []
    run: 'echo "pairs $(tr "\\n" " " < "$CHECKPOINT_ITEMS_FILE")" >> effects.log'
    batch: { items: [a, b, c, d, e], size: 2 }
  - id: summary
    needs: [import]
    run: echo summary >> effects.log
`);
    await mkdir(join(p.dir, 'data'));
    for (const n of ['a', 'b', 'c', 'd']) await writeFile(join(p.dir, 'data', `${n}.csv`), `${n}\n`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    await writeFile(p.effects, '');
    // The failed item is accepted by name.
    const m = await runCli(['mark-done', 'import', '--item', 'data/c.csv', '--by', 'bob'], {
      cwd: p.dir,
      env,
    });
    expect(m.code).toBe(0);
    expect(m.stdout).toMatch(
      /marked import unit 2 \[2, 3\) \(data\/c\.csv\) done \(by hand, by bob\); import is complete/,
    );
    const s = await json(p);
    expect(s.steps.find((x) => x.id === 'import')?.manual).toEqual([
      { start: 2, end: 3, by: 'bob', at: expect.any(String), items: { count: 1, first: ['data/c.csv'] } },
    ]);
    expect((await runCli(['status'], { cwd: p.dir })).stdout).toMatch(
      /marked done by hand by bob at \S+: \[2, 3\) data\/c\.csv/,
    );
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['summary']);
    // Reset by item: only its unit runs again, then the dependent.
    await writeFile(p.effects, '');
    const r = await runCli(['reset', 'import', '--item', 'data/a.csv', 'data/d.csv'], { cwd: p.dir, env });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(
      /reset import units 0, 3 \[0, 1\), \[3, 4\) \(data\/a\.csv, data\/d\.csv\): pending again/,
    );
    expect(r.stdout).toMatch(/reset summary \(depends on a reset step\)/);
    // An item in a unit of several: the whole unit (d is with c in unit 1 of pairs).
    const pr = await runCli(['reset', 'pairs', '--item', 'd'], { cwd: p.dir, env });
    expect(pr.stdout).toMatch(/reset pairs unit 1 \[2, 4\) \(c, d\): pending again/);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual([
      'import data/a.csv',
      'import data/d.csv',
      'pairs c d ',
      'summary',
    ]);
  });

  it('each refusal exits 2, names the step, the value and the fix, and leaves the checkpoint as it was', async () => {
    const p = await project(`${rangePlan}  - id: names
    needs: []
    run: "true"
    batch: { items: [x, y, z] }
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const dir = await runDir(p);
    const before = await checkpointBytes(dir);
    const cases: Array<[string[], RegExp]> = [
      [
        ['mark-done', 'prep', '--unit', '0'],
        /mark-done --unit: step "prep" is not a batch step, so it has no units; mark the whole step done with `checkpoint mark-done prep`/,
      ],
      [
        ['reset', 'prep', '--unit', '0'],
        /reset --unit: step "prep" is not a batch step.*`checkpoint reset prep`/,
      ],
      [
        ['mark-done', 'fill', '--unit', '6'],
        /mark-done --unit: step "fill" has units 0 to 5 \(6 chunk\(s\) of 10 over \[0, 60\)\), so "6" is outside it; give an index from 0 to 5/,
      ],
      [
        ['reset', 'fill', '--unit', '2-9'],
        /reset --unit: step "fill" has units 0 to 5 .*, so "2-9" is outside it/,
      ],
      [
        ['mark-done', 'fill', '--unit', 'two'],
        /mark-done --unit: "two" is not a unit index of step "fill"; give `--unit 3`, `--unit 3,5` or `--unit 3-7`/,
      ],
      [['mark-done', 'fill', '--unit', '5-3'], /"5-3" is not a unit index/],
      [
        ['mark-done', 'names', '--item', 'w'],
        /mark-done --item: no item "w" in the item list of step "names" \(3 items, list of 3: x, y, z\); give a name as the list holds it.*`checkpoint reset names` to expand the list again/,
      ],
      [
        ['reset', 'fill', '--item', 'a'],
        /reset --item: step "fill" is a range step \(\[0, 60\) in chunks of 10\), not an item list; name its units by chunk index instead, e\.g\. `checkpoint reset fill --unit 0`/,
      ],
      [
        ['mark-done', 'fill', 'names', '--unit', '1'],
        /mark-done --unit: name exactly one step .*got fill, names/,
      ],
      [['reset', '--unit', '1'], /reset --unit: name exactly one step .*got none/],
      [['reset', 'fill', '--all', '--unit', '1'], /reset --unit: not with --all/],
      [['reset', 'fill', '--failed', '--unit', '1'], /reset --unit: not with --failed/],
      [['mark-done', 'fill', '--unit', '1', '--item', 'x'], /--unit and --item: give one of them/],
      [
        ['mark-done', 'nope', '--unit', '1'],
        /mark-done: no step "nope" in checkpoint.yml; steps: prep, fill, report, names/,
      ],
      [['mark-done', 'fill', '--unit', '1', '--by', ' '], /--by: expected a name/],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { cwd: p.dir, env });
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      expect(r.stderr).toMatch(re);
      expect(await checkpointBytes(dir)).toEqual(before);
    }
    // A step whose definition changed since its record was made: the next run starts it afresh.
    await writeFile(p.plan, (await readFile(p.plan, 'utf8')).replace('echo "fill', 'echo "fill2'));
    const stale = await runCli(['mark-done', 'fill', '--unit', '2'], { cwd: p.dir, env });
    expect(stale.code).toBe(2);
    expect(stale.stderr).toMatch(
      /mark-done --unit: the record of step "fill" is out of date \(fingerprint changed: run\).*run it first \(`checkpoint run`\), or mark done the whole step \(`checkpoint mark-done fill`\)/,
    );
    expect(await checkpointBytes(dir)).toEqual(before);
  });

  it("the action's reset: STEP:X is an item name of an item list first, else a chunk index; a range step's only an index", async () => {
    const p = await project(`version: 1
name: either
concurrency: 1
steps:
  - id: ids
    run: 'echo "ids $CHECKPOINT_ITEM" >> effects.log'
    batch: { items: [7, 3, 5, 9] }
  - id: fill
    needs: []
    run: 'echo "fill $CHECKPOINT_BATCH_INDEX" >> effects.log'
    batch: { range: { from: 0, to: 30 }, size: 10 }
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    await writeFile(p.effects, '');
    let out = '';
    const sink = new PassThrough();
    sink.on('data', (d: Buffer) => {
      out += d.toString();
    });
    const io = { out: sink, err: new PassThrough(), env: { GITHUB_ACTOR: 'octocat' } };
    const opts = { file: p.plan, dir: join(p.dir, '.checkpoints') };
    // `3` is an item of `ids` (its unit 1); `0` is not, so it is unit 0; `fill:1` is unit 1.
    expect(await resetCommand(['ids'], { ...opts, either: ['3', '0'] }, io)).toBe(0);
    expect(await resetCommand(['fill'], { ...opts, either: ['1'] }, io)).toBe(0);
    expect(out).toMatch(/reset ids units 0-1 \[0, 2\) \(7, 3\): pending again \(by octocat\)/);
    expect(out).toMatch(/reset fill unit 1 \[10, 20\): pending again \(by octocat\)/);
    const dir = await runDir(p);
    const before = await checkpointBytes(dir);
    await expect(resetCommand(['fill'], { ...opts, either: ['data/a.csv'] }, io)).rejects.toThrow(
      /input `reset`: "fill:data\/a\.csv": step "fill" is a range step, so what follows the colon is a chunk index: `fill:3`, `fill:3-5`/,
    );
    await expect(resetCommand(['ids'], { ...opts, either: ['8'] }, io)).rejects.toThrow(
      /input `reset`: step "ids" has units 0 to 3 .*, so "ids:8" is outside it/,
    );
    await expect(resetCommand(['ids'], { ...opts, either: ['x'] }, io)).rejects.toThrow(
      /input `reset`: no item "ids:x" in the item list of step "ids"/,
    );
    expect(await checkpointBytes(dir)).toEqual(before);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['ids 7', 'ids 3', 'fill 1']);
  });
});
