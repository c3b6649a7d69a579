// `checkpoint run --shard I/N` and `checkpoint report`, through the real CLI: three local "jobs" run at once,
// each with its own checkpoint directory, some SIGKILLed mid-run and resumed. Judged by what the units did
// (lines in a shared effects file), then by the report over the three directories.
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidAlive, readLines, runCli, startCli, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

const ITEMS = Array.from({ length: 20 }, (_, i) => `item${i}`);
const FROM = 7;
const TO = 107;

const PLAN = `version: 1
name: sharded
concurrency: 3
steps:
  - id: setup
    run: echo "setup $CHECKPOINT_SHARD_INDEX" >> "$EFFECTS"
  - id: once
    shards: first
    run: echo "once $CHECKPOINT_SHARD_INDEX" >> "$EFFECTS"
  - id: nums
    needs: [setup, once]
    run: |
      echo "start $CHECKPOINT_SHARD_INDEX $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END $$" >> "$EFFECTS"
      sleep 0.$((RANDOM % 3))$((RANDOM % 9))
      echo "end $CHECKPOINT_SHARD_INDEX $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END" >> "$EFFECTS"
    batch: { range: { from: ${FROM}, to: ${TO} }, size: 3, parallel: 3 }
  - id: names
    needs: [once]
    run: |
      sleep 0.0$((RANDOM % 9))
      echo "item $CHECKPOINT_SHARD_INDEX $CHECKPOINT_ITEM" >> "$EFFECTS"
    batch: { items: [${ITEMS.join(', ')}], parallel: 2 }
  - id: final
    needs: [nums, names]
    run: echo "final $CHECKPOINT_SHARD_INDEX" >> "$EFFECTS"
`;

/** The part of [from, to) that shard i of n owns. */
function part(i: number, n: number, from: number, to: number): [number, number] {
  const len = to - from;
  return [from + Math.floor((i * len) / n), from + Math.floor(((i + 1) * len) / n)];
}

interface Job {
  shard: number;
  kills: number;
  attempts: number;
}

/**
 * One matrix job: `checkpoint run --shard i/3` in its own directory, SIGKILLed `kills` times once it has
 * finished a few more units, then run to the end.
 */
async function job(
  dir: string,
  shard: number,
  kills: number,
  env: NodeJS.ProcessEnv,
  effects: string,
): Promise<Job> {
  const args = ['run', '--shard', `${shard}/3`, '--dir', join(dir, `shard${shard}`)];
  let killed = 0;
  let attempts = 0;
  for (;;) {
    attempts += 1;
    const ends = async () => (await readLines(effects)).filter((l) => l.startsWith(`end ${shard} `)).length;
    const before = await ends();
    const run = startCli(args, { cwd: dir, env });
    if (killed < kills) {
      const stop = await Promise.race([
        waitFor(
          async () => (await ends()) >= before + 3,
          60_000,
          `shard ${shard} to finish 3 more units`,
        ).then(() => true),
        run.result.then(() => false),
      ]);
      if (stop) {
        run.child.kill('SIGKILL');
        killed += 1;
        const r = await run.result;
        expect(r.signal).toBe('SIGKILL');
        continue;
      }
    }
    const r = await run.result;
    expect(r.code, `shard ${shard}: ${r.stdout}${r.stderr}`).toBe(0);
    return { shard, kills: killed, attempts };
  }
}

describe('sharding', () => {
  it('three shards at once, two SIGKILLed and resumed: the union of the done work is the whole, no unit ran on two shards, and report says complete', async () => {
    const p = await project(PLAN);
    const env = { EFFECTS: p.effects };
    const jobs = await Promise.all([
      job(p.dir, 0, 2, env, p.effects),
      job(p.dir, 1, 1, env, p.effects),
      job(p.dir, 2, 0, env, p.effects),
    ]);
    expect(jobs.map((j) => j.kills)).toEqual([2, 1, 0]);
    const lines = await readLines(p.effects);

    // nums: every unit is a chunk of 3 inside its shard's part, done by that shard only.
    const ran = new Map<string, Set<number>>();
    const covered = new Map<number, number>();
    for (const l of lines.filter((x) => x.startsWith('end '))) {
      const [, sh, s, e] = l.split(' ').map(Number) as [number, number, number, number];
      const [ps, pe] = part(sh, 3, FROM, TO);
      expect(s >= ps && e <= pe, `unit [${s}, ${e}) ran on shard ${sh}, whose part is [${ps}, ${pe})`).toBe(
        true,
      );
      expect(
        (s - ps) % 3 === 0 && (e - s === 3 || e === pe),
        `unit [${s}, ${e}) is not a chunk of its part`,
      ).toBe(true);
      const key = `${s}-${e}`;
      ran.set(key, (ran.get(key) ?? new Set()).add(sh));
      for (let x = s; x < e; x++) covered.set(x, sh);
    }
    for (const [unit, shards] of ran)
      expect(shards.size, `unit ${unit} ran on shards ${[...shards]}`).toBe(1);
    // The union of the done work is exactly [FROM, TO).
    expect([...covered.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: TO - FROM }, (_, i) => FROM + i),
    );

    // names: each item by exactly one shard (the one owning its index), all of them.
    const items = new Map<string, Set<number>>();
    for (const l of lines.filter((x) => x.startsWith('item '))) {
      const [, sh, item] = l.split(' ') as [string, string, string];
      items.set(item, (items.get(item) ?? new Set()).add(Number(sh)));
    }
    expect([...items.keys()].sort()).toEqual([...ITEMS].sort());
    for (const [item, shards] of items) {
      expect(shards.size, `${item} ran on shards ${[...shards]}`).toBe(1);
      const [ps, pe] = part([...shards][0] as number, 3, 0, ITEMS.length);
      const index = ITEMS.indexOf(item);
      expect(index >= ps && index < pe).toBe(true);
    }

    // Plain steps ran on every shard; `shards: first` only on shard 0, and its dependents went on elsewhere.
    for (const sh of [0, 1, 2]) {
      expect(lines).toContain(`setup ${sh}`);
      expect(lines).toContain(`final ${sh}`);
    }
    const once = lines.filter((l) => l.startsWith('once'));
    expect(once.length).toBeGreaterThanOrEqual(1);
    expect(new Set(once)).toEqual(new Set(['once 0']));

    // Units left running by a SIGKILLed run were ended by the next one.
    for (const l of lines.filter((x) => x.startsWith('start ')))
      expect(pidAlive(Number(l.split(' ')[4]))).toBe(false);

    // Each shard has its own run, named after the shard; status shows the shard.
    for (const sh of [0, 1, 2]) {
      const runs = (await readdir(join(p.dir, `shard${sh}`))).filter((n) => n.startsWith('sharded-'));
      expect(runs).toEqual([expect.stringMatching(new RegExp(`^sharded-shard${sh}of3-\\d{8}-\\d{6}$`))]);
    }
    const st = await runCli(['status', '--dir', 'shard1'], { cwd: p.dir });
    expect(st.stdout).toMatch(/^run sharded-shard1of3-\S+ · plan sharded · shard 1\/3 · complete/);
    expect(st.stdout).toMatch(/once\s+done\s+0\/0/);
    expect(st.stdout).toMatch(/shards: first: runs on shard 0 only/);
    const sj = JSON.parse((await runCli(['status', '--dir', 'shard1', '--json'], { cwd: p.dir })).stdout);
    expect(sj.shard).toEqual({ index: 1, total: 3 });
    expect(sj.steps.find((s: { id: string }) => s.id === 'nums').sharding).toEqual({
      from: FROM,
      to: TO,
      mode: 'split',
    });

    // The report over the three directories adds up.
    const report = await runCli(['report', 'shard0', 'shard1', 'shard2'], { cwd: p.dir });
    expect(report.code, report.stdout + report.stderr).toBe(0);
    expect(report.stdout).toMatch(/^plan sharded · 3 shards · complete · \d+\/\d+ units \(100%\)/);
    const json = JSON.parse(
      (await runCli(['report', '--dir', 'shard0', '--dir', 'shard1', 'shard2', '--json'], { cwd: p.dir }))
        .stdout,
    );
    expect(json).toMatchObject({ plan: 'sharded', total: 3, complete: true, consistent: true, errors: [] });
    const nums = json.steps.find((s: { id: string }) => s.id === 'nums');
    expect(nums).toMatchObject({ mode: 'split', whole: [FROM, TO], complete: true, remaining: [] });
    expect(nums.shards.map((c: { part: number[] }) => c.part)).toEqual(
      [0, 1, 2].map((i) => part(i, 3, FROM, TO)),
    );
    // 3 setups + 1 once + 34 chunks of nums (11 + 11 + 12) + 20 items + 3 finals.
    expect(json.units).toEqual({ total: 61, done: 61, failed: 0, remaining: 0 });
    const md = await runCli(['report', 'shard0', 'shard1', 'shard2', '--markdown'], { cwd: p.dir });
    expect(md.stdout).toMatch(/^## ✅ sharded: complete across 3 shards/);

    // The same shard twice is not a set of shards: exit 1, naming it.
    const twice = await runCli(['report', 'shard0', 'shard0', 'shard2'], { cwd: p.dir });
    expect(twice.code).toBe(1);
    expect(twice.stdout).toMatch(/error: shard 0\/3 was given twice/);
    // A missing shard: incomplete, exit 75.
    const two = await runCli(['report', 'shard0', 'shard2', '--json'], { cwd: p.dir });
    expect(two.code).toBe(75);
    expect(JSON.parse(two.stdout)).toMatchObject({ complete: false, consistent: true });
  }, 300_000);

  it('a run is bound to its shard: resuming it as another shard or unsharded exits 2 and touches nothing', async () => {
    const p = await project(PLAN);
    const env = { EFFECTS: p.effects };
    await mkdir(join(p.dir, 'ck'));
    const run = startCli(['run', '--shard', '1/3', '--dir', 'ck'], { cwd: p.dir, env });
    await waitFor(
      async () => (await readLines(p.effects)).some((l) => l.startsWith('end 1 ')),
      60_000,
      'a unit',
    );
    run.child.kill('SIGKILL');
    await run.result;
    const id = (await readFile(join(p.dir, 'ck', 'latest'), 'utf8')).trim();
    expect(id).toMatch(/^sharded-shard1of3-\d{8}-\d{6}$/);
    const files = ['checkpoint.json', 'journal.ndjson'].map((f) => join(p.dir, 'ck', id, f));
    const snap = async () =>
      Promise.all(files.map(async (f) => [await readFile(f, 'utf8'), (await stat(f)).mtimeMs]));
    const before = await snap();
    const cases: Array<[string[], RegExp]> = [
      [
        ['run', '--dir', 'ck'],
        new RegExp(
          `run ${id} is shard 1/3, but no --shard was given; pass --shard 1/3 to resume it, or --new to start a fresh, unsharded run`,
        ),
      ],
      [
        ['run', '--dir', 'ck', '--shard', '2/3'],
        new RegExp(
          `--shard 2/3: run ${id} is shard 1/3; pass --shard 1/3 to resume it, or add --new to start a fresh run as shard 2/3`,
        ),
      ],
      [['run', '--dir', 'ck', '--shard', '1/4'], /run \S+ is shard 1\/3; pass --shard 1\/3 to resume it/],
      [
        ['run', '--dir', 'ck', '--shard', '3/3'],
        /--shard: expected I\/N with 0 <= I < N \(e\.g\. 0\/4\), got "3\/3"/,
      ],
    ];
    for (const [args, re] of cases) {
      const r = await runCli(args, { cwd: p.dir, env });
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(re);
    }
    expect(await snap()).toEqual(before);
    // The right shard resumes it; an unsharded run in the same folder is refused the other way round.
    const ok = await runCli(['run', '--dir', 'ck', '--shard', '1/3'], { cwd: p.dir, env });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`resuming run ${id} of plan sharded as shard 1/3`));
    const plain = startCli(['run', '--dir', 'plain'], { cwd: p.dir, env });
    await waitFor(
      async () => (await readLines(p.effects)).some((l) => l.startsWith('end  ')),
      60_000,
      'a unit',
    );
    plain.child.kill('SIGKILL');
    await plain.result;
    const refused = await runCli(['run', '--dir', 'plain', '--shard', '0/2'], { cwd: p.dir, env });
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--shard 0\/2: run sharded-\d{8}-\d{6} is not sharded \(it was started without --shard\); run without --shard to resume it, or add --new to start a fresh run as shard 0\/2/,
    );
    const fresh = await runCli(['run', '--dir', 'plain', '--shard', '0/2', '--new'], { cwd: p.dir, env });
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(fresh.stdout).toMatch(/starting run sharded-shard0of2-\d{8}-\d{6} of plan sharded as shard 0\/2/);
  }, 240_000);
});
