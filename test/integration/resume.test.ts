// Interruption and recovery: real signals, SIGKILL at random moments, lock contention, damaged files.
import { appendFile, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type Project,
  pidAlive,
  readLines,
  runCli,
  startCli,
  status,
  useProjects,
  waitFor,
} from '../support/cli.js';

const project = useProjects();

async function runDir(p: Project): Promise<string> {
  const id = (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim();
  return join(p.dir, '.checkpoints', id);
}

describe('signals', () => {
  it('SIGINT: stops, ends every unit process group, exits 75 within 5 s, and the next run resumes', async () => {
    const p = await project(`version: 1
concurrency: 3
steps:
  - id: work
    run: |
      echo "start $CHECKPOINT_BATCH_INDEX" >> effects.log
      sleep 60 & echo $! >> pids
      echo $$ >> pids
      wait
    batch: { range: { from: 0, to: 6 }, parallel: 3 }
`);
    const run = startCli(['run'], { cwd: p.dir });
    const pids = await waitFor(
      async () => {
        const l = await readLines(join(p.dir, 'pids'));
        return l.length >= 6 ? l.map(Number) : undefined;
      },
      30_000,
      'three units to start',
    );
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const r = await run.result;
    const took = Date.now() - t0;
    expect(r.code).toBe(75);
    expect(took).toBeLessThan(5000);
    for (const pid of pids) expect(pidAlive(pid)).toBe(false);
    const s = await status(p);
    expect(s.steps[0]?.interrupted.length).toBeGreaterThan(0);
    expect(s.steps[0]?.state).toBe('interrupted');
  });

  it('a second SIGINT skips the grace for units that ignore SIGTERM', async () => {
    const p = await project(`version: 1
steps:
  - id: stubborn
    run: |
      trap '' TERM
      echo $$ > pid
      while true; do sleep 0.1; done
`);
    const run = startCli(['run'], { cwd: p.dir });
    const pid = Number(
      await waitFor(async () => (await readLines(join(p.dir, 'pid')))[0], 30_000, 'unit start'),
    );
    run.child.kill('SIGINT');
    await run.waitForOutput(/stopping \(received SIGINT\)/);
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(r.code).toBe(75);
    expect(pidAlive(pid)).toBe(false);
  });

  it('a unit that finishes with exit 0 after the stop is recorded done, and the next run does not repeat it', async () => {
    const p = await project(`version: 1
steps:
  - id: last-line
    run: |
      trap '' TERM
      echo "$CHECKPOINT_BATCH_INDEX" >> started
      while [ ! -f go ]; do sleep 0.05; done
      echo "end $CHECKPOINT_BATCH_INDEX" >> effects.log
    batch: { range: { from: 0, to: 3 }, parallel: 2 }
`);
    const run = startCli(['run'], { cwd: p.dir });
    await waitFor(
      async () => ((await readLines(join(p.dir, 'started'))).length >= 2 ? true : undefined),
      30_000,
      'two units to start',
    );
    run.child.kill('SIGINT');
    await run.waitForOutput(/stopping \(received SIGINT\)/);
    // The units ignore SIGTERM and finish their work within the grace, with exit 0; the third never starts.
    await writeFile(join(p.dir, 'go'), '');
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(75);
    const ended = await readLines(p.effects);
    expect(ended.sort()).toEqual(['end 0', 'end 1']);
    const s = await status(p);
    expect(s.steps[0]?.done).toEqual([[0, 2]]);
    const again = await runCli(['run'], { cwd: p.dir });
    expect(again.code, again.stdout + again.stderr).toBe(0);
    expect((await readLines(p.effects)).sort()).toEqual(['end 0', 'end 1', 'end 2']);
  });

  it('SIGTERM behaves like SIGINT', async () => {
    const p = await project(`version: 1
steps:
  - id: s
    run: echo $$ > pid; sleep 60
`);
    const run = startCli(['run'], { cwd: p.dir });
    const pid = Number(
      await waitFor(async () => (await readLines(join(p.dir, 'pid')))[0], 30_000, 'unit start'),
    );
    run.child.kill('SIGTERM');
    expect((await run.result).code).toBe(75);
    expect(pidAlive(pid)).toBe(false);
  });
});

describe('SIGKILL at random moments', () => {
  it('never re-runs a unit recorded done, ends its orphans, and finishes every unit', async () => {
    // Each unit records its own start and end outside the checkpoint.
    const p = await project(`version: 1
concurrency: 4
steps:
  - id: prep
    run: echo "prep" >> effects.log
  - id: batch
    run: |
      echo "start $CHECKPOINT_BATCH_INDEX $$" >> effects.log
      sleep 0.0$((RANDOM % 9))
      echo "end $CHECKPOINT_BATCH_INDEX" >> effects.log
    batch: { range: { from: 0, to: 80 }, size: 1, parallel: 3 }
  - id: other
    needs: []
    run: |
      echo "start o$CHECKPOINT_BATCH_INDEX $$" >> effects.log
      sleep 0.0$((RANDOM % 5))
      echo "end o$CHECKPOINT_BATCH_INDEX" >> effects.log
    batch: { range: { from: 0, to: 40 }, size: 2, parallel: 2 }
  - id: final
    needs: [batch, other]
    run: echo final >> effects.log
`);
    let kills = 0;
    const random = mulberry32(42);
    for (let i = 0; i < 25; i++) {
      // What was recorded done before this attempt must never start again.
      let doneBefore: Set<string> = new Set();
      try {
        const s = await status(p);
        doneBefore = doneUnits(s);
        if (s.complete) break;
      } catch {
        // No run yet.
      }
      const before = (await readLines(p.effects)).length;
      const run = startCli(['run'], { cwd: p.dir });
      // Kill after a random number of new effect lines (a random moment in the unit stream).
      const target = before + 1 + Math.floor(random() * 25);
      const ended = await Promise.race([
        run.result.then(() => true),
        waitFor(
          async () => ((await readLines(p.effects)).length >= target ? true : undefined),
          30_000,
          'progress',
        ).then(() => false),
      ]);
      if (!ended) {
        run.child.kill('SIGKILL');
        kills += 1;
      }
      await run.result;
      const started = (await readLines(p.effects)).slice(before).filter((l) => l.startsWith('start '));
      for (const l of started) {
        const key = unitKey(l.split(' ')[1] as string);
        expect(doneBefore.has(key), `unit ${key} was recorded done and ran again`).toBe(false);
      }
    }
    const final = await runCli(['run'], { cwd: p.dir });
    expect(final.code).toBe(0);
    const s = await status(p);
    expect(s.complete).toBe(true);
    expect(kills).toBeGreaterThan(3);
    // Every unit ran to its end at least once.
    const lines = await readLines(p.effects);
    for (let i = 0; i < 80; i++) expect(lines).toContain(`end ${i}`);
    for (let i = 0; i < 20; i++) expect(lines).toContain(`end o${i}`);
    // A unit killed after its side effect but before its record is durable runs again: that is allowed.
    expect(lines.filter((l) => l === 'final').length).toBeGreaterThanOrEqual(1);
    // Units left running by a SIGKILLed engine were ended by the next run.
    for (const l of lines.filter((x) => x.startsWith('start '))) {
      expect(pidAlive(Number(l.split(' ')[2]))).toBe(false);
    }
  }, 240_000);
});

function unitKey(idx: string): string {
  return idx.startsWith('o') ? `other:${Number(idx.slice(1)) * 2}` : `batch:${idx}`;
}

function doneUnits(s: Awaited<ReturnType<typeof status>>): Set<string> {
  const out = new Set<string>();
  for (const st of s.steps) {
    if (st.id !== 'batch' && st.id !== 'other') continue;
    for (const [a, b] of st.done) {
      for (let x = a; x < b; x++) {
        if (st.id === 'batch') out.add(`batch:${x}`);
        else if (x % 2 === 0 && x + 1 < b) out.add(`other:${x}`);
      }
    }
  }
  return out;
}

function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the lease', () => {
  it('a second live run on the same checkpoint exits 75 naming the holder', async () => {
    const p = await project(`version: 1
steps:
  - id: s
    run: echo $$ > pid; sleep 60
`);
    const first = startCli(['run'], { cwd: p.dir });
    await waitFor(async () => (await readLines(join(p.dir, 'pid')))[0], 30_000, 'first run');
    const second = await runCli(['run'], { cwd: p.dir });
    expect(second.code).toBe(75);
    expect(second.stderr).toMatch(new RegExp(`locked by pid ${first.child.pid} on host`));
    first.child.kill('SIGINT');
    expect((await first.result).code).toBe(75);
  });

  it("a SIGKILLed holder's lock is taken over", async () => {
    const p = await project(`version: 1
steps:
  - id: s
    run: |
      if [ ! -f once ]; then touch once; echo $$ > pid; sleep 60; fi
      echo ran >> effects.log
`);
    const first = startCli(['run'], { cwd: p.dir });
    await waitFor(async () => (await readLines(join(p.dir, 'pid')))[0], 30_000, 'first run');
    first.child.kill('SIGKILL');
    await first.result;
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['ran']);
  });
});

describe('damaged files', () => {
  const plan = `version: 1
steps:
  - id: a
    run: echo a >> effects.log
  - id: b
    run: |
      echo b >> effects.log
      [ -f ok ]
`;

  it('a torn last journal line is ignored', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const dir = await runDir(p);
    await appendFile(join(dir, 'journal.ndjson'), '{"type":"done","step":"b","start":0,"end":1,"ind');
    await writeFile(join(p.dir, 'ok'), '');
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/torn last line/);
    expect(await readLines(p.effects)).toEqual(['a', 'b', 'b']);
  });

  it('a corrupt snapshot is detected and rebuilt from the journal', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const dir = await runDir(p);
    const snap = join(dir, 'checkpoint.json');
    const text = await readFile(snap, 'utf8');
    await writeFile(snap, text.replace('"unitsDone": 1', '"unitsDone": 7'));
    await writeFile(join(p.dir, 'ok'), '');
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.stdout).toMatch(/checksum mismatch.*rebuilt from/);
    expect(r.code).toBe(0);
    expect(await readLines(p.effects)).toEqual(['a', 'b', 'b']);
  });

  it('a corrupt snapshot without the full journal stops with a clear error and the way out', async () => {
    const p = await project(plan);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(1);
    const dir = await runDir(p);
    await writeFile(join(dir, 'checkpoint.json'), '{"format": 1, "garbage": tru');
    await truncate(join(dir, 'journal.ndjson'), 0);
    const before = await readFile(join(dir, 'checkpoint.json'), 'utf8');
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/checkpoint\.json: not valid JSON/);
    expect(r.stderr).toMatch(/checkpoint reset --all|--new/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(join(dir, 'checkpoint.json'), 'utf8')).toBe(before);
  });
});

describe('plan errors', () => {
  it('exit 2 with the path and the fix, and the checkpoint is not touched', async () => {
    const p = await project(`version: 1
steps:
  - id: a
    run: echo a >> effects.log
`);
    expect((await runCli(['run'], { cwd: p.dir })).code).toBe(0);
    const dir = await runDir(p);
    const before = await readFile(join(dir, 'checkpoint.json'), 'utf8');
    await writeFile(
      p.plan,
      `version: 1\nsteps:\n  - id: a\n    run: echo a\n    batch: { range: { from: 0, to: 10 }, size: "10k" }\n`,
    );
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /checkpoint\.yml: steps\[0\]\.batch\.size: expected a positive integer, got "10k"/,
    );
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(await readFile(join(dir, 'checkpoint.json'), 'utf8')).toBe(before);
  });
});
