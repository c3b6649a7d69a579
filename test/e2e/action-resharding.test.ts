// A matrix that grows between two workflow runs (DESIGN §7), through the built action run the way the runner
// runs it, against the local cache service: 2 shard jobs get partway (units past a point fail until a file
// exists), the report job (`command: report`) merges them and saves `<key>-merged`, then a later workflow
// run with 3 shard jobs starts from the merge and finishes, and a final report passes. Judged by what the
// units did (an effects file outside the workspaces): every unit's work was done exactly once.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Job } from '../support/runner.js';
import { type Services, startServices } from '../support/services/index.js';

const UNITS = 30;
// BLOCK: a file; while it is missing, the units from LIMIT on fail (no retries: the step stops there). "end"
// is written past the point where a SIGTERM could stop the unit, so it means the unit's work was done.
const PLAN = `version: 1
name: grow-e2e
steps:
  - id: once
    shards: first
    run: echo "once $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL $CHECKPOINT_RESUMED" >> "$EFFECTS"
  - id: nums
    needs: []
    run: |
      echo "start $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START $CHECKPOINT_RESUMED" >> "$EFFECTS"
      if [ ! -e "$BLOCK" ] && [ $(( CHECKPOINT_BATCH_START % 15 )) -ge 6 ]; then exit 1; fi
      trap '' TERM
      echo "end $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START" >> "$EFFECTS"
    batch: { range: { from: 0, to: ${UNITS} }, size: 1, parallel: 2 }
`;

let services: Services;
let base: string;

beforeAll(async () => {
  services = await startServices();
  base = await mkdtemp(join(tmpdir(), 'action-resharding-'));
});

afterAll(async () => {
  await services?.stop();
  await rm(base, { recursive: true, force: true });
});

describe('a matrix that grows between two workflow runs (built dist, as the runner runs it)', () => {
  it('2 shards partway, `command: report` saves `<key>-merged`, 3 shards of a later run start from it and finish: every unit ran once', async () => {
    const dir = await mkdtemp(join(base, 'grow-'));
    const effects = join(dir, 'effects.log');
    const block = join(dir, 'unblocked');
    await writeFile(effects, '');
    const key = 'backfill';
    let n = 0;
    // Every job runs on a fresh runner machine: a new workspace and temp folder, the plan checked out.
    const job = async (runId: number, name: string, inputs: Record<string, string>) => {
      n += 1;
      const workspace = join(dir, `ws${n}`);
      const temp = join(dir, `temp${n}`);
      await mkdir(workspace, { recursive: true });
      await writeFile(join(workspace, 'checkpoint.yml'), PLAN);
      return new Job({
        workspace,
        temp,
        job: name,
        inputs: { key, ...inputs },
        env: {
          ...services.envFor({ runId, runAttempt: 1 }),
          RUNNER_TEMP: temp,
          RUNNER_ENVIRONMENT: 'github-hosted',
          EFFECTS: effects,
          BLOCK: block,
        },
      });
    };
    const read = async () => (await readFile(effects, 'utf8')).split('\n').filter(Boolean);

    // Workflow run 1: a matrix of 2; each shard fails partway (the job fails: on-incomplete is `fail`).
    const first = 8100;
    const matrix1 = await Promise.all(
      [0, 1].map(async (i) => (await job(first, 'backfill', { shard: `${i}/2` })).run()),
    );
    for (const [i, { main, post }] of matrix1.entries()) {
      expect(main.code, main.stdout).not.toBe(0);
      expect(main.outputs).toMatchObject({ complete: 'false', 'checkpoint-key': `${key}-shard${i}of2` });
      expect(main.stdout).toMatch(
        new RegExp(`saved checkpoint as checkpoint-v1-${key}-shard${i}of2-${first}-1-`),
      );
      expect(post.code, post.stdout).toBe(0);
    }
    const report1 = await (await job(first, 'report', { command: 'report', shard: '*/2' })).run();
    expect(report1.main.outputs).toMatchObject({ complete: 'false' });
    expect(report1.main.stdout).toMatch(
      new RegExp(`merged 2 shards \\(\\d+/${UNITS + 1} units done\\) and saved them under key ${key}-merged`),
    );
    expect(report1.main.stdout).toMatch(
      new RegExp(`saved checkpoint as checkpoint-v1-${key}-merged-${first}-1-`),
    );
    expect(
      services.cache
        .entries()
        .filter((e) => e.finalizedAt && e.key.startsWith(`checkpoint-v1-${key}-merged-`)),
    ).toHaveLength(1);
    const afterFirst = await read();
    const doneFirst = afterFirst.filter((l) => l.startsWith('end ')).map((l) => Number(l.split(' ')[2]));
    expect(doneFirst.length).toBeGreaterThan(0);
    expect(doneFirst.length).toBeLessThan(UNITS);

    // Workflow run 2 (a new run id, the same key): a matrix of 3, nothing fails now.
    await writeFile(block, '');
    const second = 8200;
    const matrix2 = await Promise.all(
      [0, 1, 2].map(async (i) => (await job(second, 'backfill', { shard: `${i}/3` })).run()),
    );
    for (const [i, { main, post }] of matrix2.entries()) {
      expect(main.code, main.stdout).toBe(0);
      expect(main.stdout).toMatch(
        new RegExp(
          `shard ${i}/3 starts from the campaign's merged checkpoint ${key}-merged \\(2 shards merged\\)`,
        ),
      );
      expect(main.stdout).toMatch(
        /from merge backfill-merged of 2 shards: nums part \[\d+, \d+\) with \d+ left/,
      );
      expect(main.outputs).toMatchObject({
        complete: 'true',
        resumed: 'true',
        'units-remaining': '0',
        'checkpoint-key': `${key}-shard${i}of3`,
      });
      expect(post.code, post.stdout).toBe(0);
    }
    const report2 = await (await job(second, 'report', { command: 'report', shard: '*/3' })).run();
    expect(report2.main.code, report2.main.stdout).toBe(0);
    expect(report2.main.errors).toEqual([]);
    expect(report2.main.outputs).toMatchObject({ complete: 'true', 'units-remaining': '0' });
    expect(report2.main.summary).toMatch(/Started from merge `backfill-merged` of 2 shards/);

    const lines = await read();
    const ends = lines.filter((l) => l.startsWith('end ')).map((l) => l.split(' '));
    // Every unit's work done exactly once across both matrices, and both did some of it.
    const count = new Map<number, number>();
    for (const [, , s] of ends) count.set(Number(s), (count.get(Number(s)) ?? 0) + 1);
    expect([...count.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: UNITS }, (_, i) => i));
    for (const [u, c] of count) expect(c, `unit ${u} done ${c} times`).toBe(1);
    expect(new Set(ends.map(([, total]) => total))).toEqual(new Set(['2', '3']));
    // Nothing done in the first run started again in the second, and every unit of the second was told it
    // continues earlier work.
    const startsSecond = lines
      .slice(afterFirst.length)
      .filter((l) => l.startsWith('start '))
      .map((l) => l.split(' '));
    for (const [, , s] of startsSecond) expect(doneFirst).not.toContain(Number(s));
    expect(new Set(startsSecond.map(([, , , resumed]) => resumed))).toEqual(new Set(['true']));
    // `shards: first` ran once in all: on the first matrix's shard 0, fresh.
    expect(lines.filter((l) => l.startsWith('once '))).toEqual(['once 0/2 false']);
  }, 300_000);
});
