// Matrices that change size (DESIGN §7), through the real CLI: 4 shards run partway (their units past a
// point fail, so each stops with a known part of its work done), `report --merge` writes one checkpoint,
// 8 shards start from copies of it and again get partway, a second merge, then 3 shards finish. Judged by
// the units' effects: every position of the range and every item was done exactly once across all rounds.
import { cp, mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidAlive, readLines, runCli, startCli, type status, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

const ITEMS = Array.from({ length: 24 }, (_, i) => `item${i}`);
const FROM = 7;
const TO = 107;

// FAIL_EVERY=n: a unit holding a multiple of n (nums) or the n-th item fails (no retries, so the step stops there): a shard gets
// partway, deterministically, and what it did is all in the effects file.
const PLAN = `version: 1
name: grow
concurrency: 3
steps:
  - id: setup
    run: echo "setup $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL" >> "$EFFECTS"
  - id: once
    shards: first
    run: echo "once $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL" >> "$EFFECTS"
  - id: nums
    needs: [setup, once]
    run: |
      if [ -n "$FAIL_EVERY" ] && [ $(( (CHECKPOINT_BATCH_END - 1) / FAIL_EVERY )) -gt $(( (CHECKPOINT_BATCH_START - 1) / FAIL_EVERY )) ]; then exit 1; fi
      sleep 0.0$((RANDOM % 9))
      echo "end $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END" >> "$EFFECTS"
    batch: { range: { from: ${FROM}, to: ${TO} }, size: 3, parallel: 2 }
  - id: names
    needs: [once]
    run: |
      if [ -n "$FAIL_EVERY" ] && [ $(( (CHECKPOINT_BATCH_START + 1) % FAIL_EVERY )) -eq 0 ]; then exit 1; fi
      echo "item $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_ITEM" >> "$EFFECTS"
    batch: { items: [${ITEMS.join(', ')}], parallel: 2 }
  - id: final
    needs: [nums, names]
    run: echo "final $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL" >> "$EFFECTS"
`;

async function round(dir: string, prefix: string, n: number, env: NodeJS.ProcessEnv, seed?: string) {
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const d = join(dir, `${prefix}${i}`);
      // A matrix job restores the merged checkpoint into its own directory.
      if (seed) await cp(join(dir, seed), d, { recursive: true });
      return runCli(['run', '--shard', `${i}/${n}`, '--dir', d], { cwd: dir, env });
    }),
  );
}

describe('matrices that change size', () => {
  it('4 shards partway, merged, 8 shards from the merge partway, merged, 3 shards finish: every unit ran exactly once', async () => {
    const p = await project(PLAN);
    const dirs = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

    // Round 1: 4 shards; units holding a multiple of 11 fail (one or more in every shard's part).
    const r1 = await round(p.dir, 'a', 4, { EFFECTS: p.effects, FAIL_EVERY: '11' });
    for (const r of r1) expect(r.code, r.stdout + r.stderr).toBe(1);
    // Refused, exit 2 and nothing written: a shard missing, a shard given twice.
    const missing = await runCli(['report', 'a0', 'a1', 'a2', '--merge', 'bad'], { cwd: p.dir });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(
      /cannot be merged, nothing was written:[\s\S]*no checkpoint for shard 3\/4/,
    );
    const twice = await runCli(['report', 'a0', 'a0', 'a2', 'a3', '--merge', 'bad'], { cwd: p.dir });
    expect(twice.code).toBe(2);
    expect(twice.stderr).toMatch(/shard 0\/4 was given twice/);
    expect(await readdir(p.dir)).not.toContain('bad');

    const rep1 = await runCli(['report', ...dirs('a', 4), '--merge', 'm1'], { cwd: p.dir });
    expect(rep1.code, rep1.stdout + rep1.stderr).toBe(1); // failed units: the report's own code
    expect(rep1.stderr).toMatch(/merged 4 shards into run grow-merged-\S+ in m1/);
    expect(rep1.stderr).toMatch(/failed unit\(s\) count as not done/);
    const m1 = JSON.parse((await runCli(['status', '--dir', 'm1', '--json'], { cwd: p.dir })).stdout);
    expect(m1.shard).toBeNull();
    const before = await readLines(p.effects);
    expect(before.filter((l) => l.startsWith('end ')).length).toBeGreaterThan(0);

    // Round 2: 8 shards from copies of the merge; units holding a multiple of 7 fail now.
    const r2 = await round(p.dir, 'b', 8, { EFFECTS: p.effects, FAIL_EVERY: '7' }, 'm1');
    for (const r of r2) {
      expect(r.code, r.stdout + r.stderr).not.toBe(2);
      expect(r.stdout).toMatch(
        /from merge grow-merged-\S+ of 4 shards: nums part \[\d+, \d+\) with \d+ left/,
      );
    }
    // The merged run is untouched; each shard runs in a run of its own.
    const b0 = (await readdir(join(p.dir, 'b0'))).filter((n) => n.startsWith('grow-'));
    expect(b0).toHaveLength(2);
    const rep2 = await runCli(['report', ...dirs('b', 8), '--json'], { cwd: p.dir });
    const j2 = JSON.parse(rep2.stdout);
    expect(j2).toMatchObject({ total: 8, consistent: true, errors: [] });
    expect(j2.merge).toMatchObject({ total: 4 });
    // A shard run is bound to its shard: resuming it as another is refused (exit 2), naming the merge.
    const other = await runCli(['run', '--shard', '3/8', '--dir', 'b2'], {
      cwd: p.dir,
      env: { EFFECTS: p.effects },
    });
    expect(other.code).toBe(2);
    expect(other.stderr).toMatch(/is shard 2\/8; pass --shard 2\/8 to resume it.*--run grow-merged-/);

    const rep2m = await runCli(['report', ...dirs('b', 8), '--merge', 'm2'], { cwd: p.dir });
    expect(rep2m.stderr, rep2m.stdout + rep2m.stderr).toMatch(/merged 8 shards into run/);

    // Round 3: 3 shards from the second merge, nothing fails.
    const r3 = await round(p.dir, 'c', 3, { EFFECTS: p.effects }, 'm2');
    for (const r of r3) expect(r.code, r.stdout + r.stderr).toBe(0);
    const rep3 = await runCli(['report', ...dirs('c', 3), '--json'], { cwd: p.dir });
    expect(rep3.code, rep3.stdout + rep3.stderr).toBe(0);
    const j3 = JSON.parse(rep3.stdout);
    expect(j3).toMatchObject({ total: 3, complete: true, consistent: true, errors: [] });
    expect(j3.merge).toMatchObject({ total: 8 });
    const text = await runCli(['report', ...dirs('c', 3)], { cwd: p.dir });
    expect(text.stdout).toMatch(/^plan grow · 3 shards · complete/);
    expect(text.stdout).toMatch(/started from merge grow-merged-\S+ of 8 shards/);

    // Every position of nums and every item was done exactly once, across the three matrices.
    const lines = await readLines(p.effects);
    const count = new Map<number, number>();
    for (const l of lines.filter((x) => x.startsWith('end '))) {
      const [, , s, e] = l.split(' ').map(Number) as [number, number, number, number];
      for (let x = s; x < e; x++) count.set(x, (count.get(x) ?? 0) + 1);
    }
    expect([...count.keys()].sort((a, b) => a - b)).toEqual(
      Array.from({ length: TO - FROM }, (_, i) => FROM + i),
    );
    for (const [x, c] of count) expect(c, `position ${x} done ${c} times`).toBe(1);
    const items = lines.filter((l) => l.startsWith('item ')).map((l) => l.split(' ')[2]);
    expect([...items].sort()).toEqual([...ITEMS].sort());
    // All three rounds did some of the work.
    const rounds = new Set(lines.filter((l) => l.startsWith('end ')).map((l) => l.split(' ')[1]));
    expect(rounds).toEqual(new Set(['4', '8', '3']));
    // Plain steps: setup ran on the first 4 (done on every shard, so the merge holds it done); `shards:
    // first` once in all; the last step on each shard that finished its part (a plain step is done in a
    // merge only when every shard did it, so the last matrix runs it on each of its shards).
    expect(lines.filter((l) => l.startsWith('setup')).sort()).toEqual([
      'setup 0/4',
      'setup 1/4',
      'setup 2/4',
      'setup 3/4',
    ]);
    expect(lines.filter((l) => l.startsWith('once'))).toEqual(['once 0/4']);
    const finals = lines.filter((l) => l.startsWith('final'));
    expect(finals.filter((l) => l.endsWith('/3')).sort()).toEqual(['final 0/3', 'final 1/3', 'final 2/3']);
    expect(finals.filter((l) => !l.endsWith('/3') && !l.endsWith('/8'))).toEqual([]);
  });
});

// One step of 30 units, one at a time. HANG=n: unit n records its pid and waits to be killed (its work never
// ends), so the shard's checkpoint holds it recorded running. Every unit writes whether it was told it
// resumes (CHECKPOINT_RESUMED) and, once its work is done, an end line.
const KILL_PLAN = `version: 1
name: killed
steps:
  - id: work
    run: |
      echo "start $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START $CHECKPOINT_RESUMED" >> "$EFFECTS"
      if [ "$CHECKPOINT_BATCH_START" = "$HANG" ]; then echo $$ > "$PIDS/$CHECKPOINT_BATCH_START"; exec sleep 600; fi
      echo "end $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START" >> "$EFFECTS"
    batch: { range: { from: 0, to: 30 }, size: 1, parallel: 1 }
`;

describe('a shard SIGKILLed before the merge', () => {
  it('its done units never run again, its running unit runs once in the new matrix, and every new shard is told it resumes', async () => {
    const p = await project(KILL_PLAN);
    const pids = join(p.dir, 'pids');
    await mkdir(pids);
    const env = { EFFECTS: p.effects, PIDS: pids };
    // Old shard 0 does all of its part [0, 15).
    const a0 = await runCli(['run', '--shard', '0/2', '--dir', 'a0'], { cwd: p.dir, env });
    expect(a0.code, a0.stdout + a0.stderr).toBe(0);
    // Old shard 1: units 15 and 16 done and recorded, 17 running when its engine is SIGKILLed.
    const a1 = startCli(['run', '--shard', '1/2', '--dir', 'a1'], {
      cwd: p.dir,
      env: { ...env, HANG: '17' },
    });
    const pidFile = join(pids, '17');
    const unit = await waitFor(
      async () => Number((await readFile(pidFile, 'utf8').catch(() => '')).trim()) || undefined,
      30_000,
      'unit 17 to start',
    );
    const recorded = await waitFor(
      async () => {
        const st = await runCli(['status', '--dir', 'a1', '--json'], { cwd: p.dir }).then((r) =>
          r.code === 0 ? (JSON.parse(r.stdout) as Awaited<ReturnType<typeof status>>) : undefined,
        );
        const work = st?.steps.find((s) => s.id === 'work');
        return work && work.units.done === 2 ? work : undefined;
      },
      30_000,
      'units 15 and 16 recorded done',
    );
    expect(recorded.done).toEqual([[15, 17]]);
    a1.child.kill('SIGKILL');
    expect((await a1.result).signal).toBe('SIGKILL');
    // The killed engine's watcher ends its unit: no shard of the old matrix runs when the merge is made.
    await waitFor(() => !pidAlive(unit), 30_000, 'the killed engine’s unit to be ended by its watcher');

    const merge = await runCli(['report', 'a0', 'a1', '--merge', 'm'], { cwd: p.dir });
    expect(merge.stderr, merge.stdout + merge.stderr).toMatch(/merged 2 shards into run killed-merged-/);
    expect(merge.stderr).toMatch(
      /step work: 1 unit\(s\) were still recorded running .* they count as not done/,
    );
    const m = JSON.parse((await runCli(['status', '--dir', 'm', '--json'], { cwd: p.dir })).stdout);
    expect(m.steps[0].done).toEqual([[0, 17]]);

    // 3 shards from copies of the merge: what remains (17..29) is cut 4/4/5; parts 1 and 2 hold no done work.
    const r = await Promise.all(
      [0, 1, 2].map(async (i) => {
        await cp(join(p.dir, 'm'), join(p.dir, `c${i}`), { recursive: true });
        return runCli(['run', '--shard', `${i}/3`, '--dir', `c${i}`], { cwd: p.dir, env });
      }),
    );
    for (const x of r) expect(x.code, x.stdout + x.stderr).toBe(0);
    expect(r[0]?.stdout).toMatch(/from merge killed-merged-\S+ of 2 shards: work part \[0, 21\) with 4 left/);
    expect(r[1]?.stdout).toMatch(/work part \[21, 25\) with 4 left/);
    const rep = await runCli(['report', 'c0', 'c1', 'c2', '--json'], { cwd: p.dir });
    expect(rep.code, rep.stdout + rep.stderr).toBe(0);
    expect(JSON.parse(rep.stdout)).toMatchObject({ total: 3, complete: true, consistent: true, errors: [] });

    const lines = await readLines(p.effects);
    const starts = (total: string) =>
      lines.filter((l) => l.startsWith(`start ${total} `)).map((l) => l.split(' ').slice(2));
    const ends = lines.filter((l) => l.startsWith('end ')).map((l) => Number(l.split(' ')[2]));
    // Nothing lost, nothing done twice: every unit's work ended exactly once across both matrices.
    expect([...ends].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    // Recorded done before the kill: never started again. The killed unit: started once more, in the new matrix.
    const newStarts = starts('3').map(([n]) => Number(n));
    expect([...newStarts].sort((a, b) => a - b)).toEqual(Array.from({ length: 13 }, (_, i) => 17 + i));
    const oldStarts = starts('2').map(([n]) => Number(n));
    expect([...oldStarts].sort((a, b) => a - b)).toEqual(Array.from({ length: 18 }, (_, i) => i));
    // The old matrix started fresh; every unit of the new one continues the campaign's work, also on the
    // shards whose part holds none of it.
    expect(new Set(starts('2').map(([, resumed]) => resumed))).toEqual(new Set(['false']));
    expect(new Set(starts('3').map(([, resumed]) => resumed))).toEqual(new Set(['true']));
  }, 120_000);
});
