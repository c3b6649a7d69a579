// Chunks sized by time (`batch.size: { target, min, max }`) through the real CLI. Each unit sleeps 1 ms per
// item, so a chunk of about target / 1 ms items (less the process's start-up) takes the target. Timings on a loaded machine vary, so the
// tests check directions and bounds (sizes start at min, grow, stay within [min, max], are whole multiples of
// min) and exactness only where it is promised: every item done exactly once.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Project, readLines, runCli, startCli, status, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

const MIN = 10;
const MAX = 1000;
/** Long enough that a process's start-up on a loaded machine (up to a few hundred ms) leaves room to grow. */
const TARGET_MS = 300;

function plan(to: number, extra = ''): string {
  return `version: 1
concurrency: 2
steps:
  - id: backfill
    run: |
      n=$((CHECKPOINT_BATCH_END - CHECKPOINT_BATCH_START))
      sleep "$((n / 1000)).$(printf %03d $((n % 1000)))"
      echo "$CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END $CHECKPOINT_BATCH_INDEX" >> effects.log
    batch:
      range: { from: 0, to: ${to} }
      size: { target: ${TARGET_MS}ms, min: ${MIN}, max: ${MAX} }
${extra}`;
}

interface UnitEvent {
  type: string;
  start: number;
  end: number;
  index: number;
  attempt?: number;
}

/** The journal's unit events of the run (the journal keeps the whole history until it grows past 8 MiB). */
async function journal(p: Project): Promise<UnitEvent[]> {
  const root = join(p.dir, '.checkpoints');
  const id = (await readFile(join(root, 'latest'), 'utf8')).trim();
  const text = await readFile(join(root, id, 'journal.ndjson'), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as UnitEvent)
    .filter((e) => e.type === 'start' || e.type === 'done');
}

/** Ranges sorted by start tile [from, to) exactly: no gap, no overlap. */
function expectTiles(ranges: Array<[number, number]>, from: number, to: number): void {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  let at = from;
  for (const [s, e] of sorted) {
    expect(s, `range [${s}, ${e}) after ${at}`).toBe(at);
    expect(e).toBeGreaterThan(s);
    at = e;
  }
  expect(at).toBe(to);
}

async function effects(p: Project): Promise<Array<[number, number]>> {
  return (await readLines(p.effects)).map((l) => {
    const [s, e] = l.split(' ').map(Number);
    return [s as number, e as number];
  });
}

interface ChunksJson {
  targetMs: number | null;
  min: number;
  max: number | null;
  lastSize: number | null;
  lastMs: number | null;
  ratePerSecond: number | null;
  nextSize: number | null;
  measured: number;
}

async function chunksOf(p: Project): Promise<ChunksJson | null> {
  const s = await status(p);
  const step = (s.steps as unknown as Array<{ id: string; chunks: ChunksJson | null }>).find(
    (x) => x.id === 'backfill',
  );
  return step?.chunks ?? null;
}

describe('batch.size: { target, min, max }', () => {
  it('starts at min and grows chunks towards the target, within [min, max]', async () => {
    const p = await project(plan(3000, '      parallel: 1\n'));
    const explained = await runCli(['explain'], { cwd: p.dir });
    expect(explained.stdout).toMatch(
      /note: chunks sized by time: target 300ms \(min 10, max 1000\); first chunk 10/,
    );

    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code, r.stdout + r.stderr).toBe(0);

    const starts = (await journal(p)).filter((e) => e.type === 'start');
    const sizes = starts.map((u) => u.end - u.start);
    expect(sizes[0]).toBe(MIN);
    for (const u of starts) {
      const n = u.end - u.start;
      expect(n).toBeGreaterThanOrEqual(MIN);
      expect(n).toBeLessThanOrEqual(MAX);
      expect(n % MIN).toBe(0);
      // The index is the chunk's first cell of the min grid, so logs/<step>/<index>.log stay apart.
      expect(u.index).toBe(u.start / MIN);
    }
    // Fast chunks grow: by now a chunk takes about the target, about 300 items (less the process's own
    // start-up time, which a loaded machine makes longer).
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(4 * MIN);
    expect(sizes.length).toBeLessThan(3000 / MIN / 2);
    expectTiles(await effects(p), 0, 3000);
    expect(new Set(starts.map((u) => u.index)).size).toBe(starts.length);

    const chunks = await chunksOf(p);
    expect(chunks).toMatchObject({ targetMs: TARGET_MS, min: MIN, max: MAX });
    expect(chunks?.measured).toBe(starts.length);
    expect(chunks?.lastSize).toBe(sizes[sizes.length - 1]);
    expect(chunks?.ratePerSecond).toBeGreaterThan(0);
    expect(chunks?.nextSize).toBeGreaterThanOrEqual(MIN);
    expect(chunks?.nextSize).toBeLessThanOrEqual(MAX);

    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(
      /chunks sized by time: last \d+ in [\dms]+ \([\d.]+\/s\), next \d+, target 300ms, min 10, max 1000/,
    );
    // Units are counted in cells of min, so progress reads the same as for a fixed size of 10.
    expect((await status(p)).steps[0]?.units).toMatchObject({ total: 300, done: 300, remaining: 0 });
  }, 120_000);

  it('an interrupted run resumes and does every item exactly once; resumed chunks start from the measured rate', async () => {
    const p = await project(plan(4000, '      parallel: 2\n'));
    const first = startCli(['run'], { cwd: p.dir });
    // Stopped once chunks have grown, so that the rate measured so far means something.
    await waitFor(
      async () => {
        const done = await readLines(p.effects);
        const grown = done.some((l) => {
          const [s, e] = l.split(' ').map(Number);
          return (e as number) - (s as number) >= 4 * MIN;
        });
        return done.length >= 4 && grown ? true : undefined;
      },
      30_000,
      'chunks to grow',
    );
    first.child.kill('SIGINT');
    const r1 = await first.result;
    expect(r1.code, r1.stdout + r1.stderr).toBe(75);
    const before = (await status(p)).steps[0];
    expect(before?.done.length).toBeGreaterThan(0);
    const seed = await chunksOf(p);
    expect(seed?.measured).toBeGreaterThanOrEqual(4);
    // Where the next attempt starts: interrupted work first, else the first pending gap.
    const gap: [number, number] = before?.interrupted[0] ?? [
      before?.done[0]?.[0] === 0 ? (before.done[0]?.[1] ?? 0) : 0,
      before?.done[0]?.[0] === 0 ? (before.done[1]?.[0] ?? 4000) : (before?.done[0]?.[0] ?? 4000),
    ];
    const explained = await runCli(['explain'], { cwd: p.dir });
    expect(explained.stdout).toMatch(
      /resume +backfill .*\n.*next chunk \d+ from the rate of \d+ done chunk\(s\)/,
    );

    const r2 = await runCli(['run'], { cwd: p.dir });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);

    const events = await journal(p);
    const done = events.filter((e) => e.type === 'done').map((e): [number, number] => [e.start, e.end]);
    expectTiles(done, 0, 4000);
    expectTiles(await effects(p), 0, 4000);
    // The second attempt sized its first chunk from the rate the first one measured (kept in the checkpoint):
    // the size status showed as next, cut to the gap it starts in; not min as a step with no history.
    const resumed = events.find((e) => e.type === 'start' && e.attempt === 2 && e.start === gap[0]);
    expect((resumed?.end ?? 0) - gap[0]).toBe(Math.min(seed?.nextSize ?? 0, gap[1] - gap[0]));
    expect(seed?.nextSize).toBeGreaterThan(MIN);
    const s = await status(p);
    expect(s.complete).toBe(true);
    expect(s.steps[0]?.done).toEqual([[0, 4000]]);
  }, 120_000);

  it('with a time budget, chunks are cut to the time left and the run stops before the deadline; order: sequential', async () => {
    const p = await project(plan(6000, '      order: sequential\n'));
    const t0 = Date.now();
    const r1 = await runCli(['run', '--time-budget', '1500ms'], { cwd: p.dir });
    const took = Date.now() - t0;
    expect(r1.code, r1.stdout + r1.stderr).toBe(75);
    // Stopped by the prediction (nothing left that fits) or, at worst, at the deadline itself.
    expect(r1.stdout + r1.stderr).toMatch(
      /not starting more units: a chunk of \d+ would take about|time budget reached/,
    );
    // Node's start-up and the checkpoint's flush come on top of the budget; no 10 s kill grace was needed.
    expect(took).toBeLessThan(1500 + 5000);
    const starts = (await journal(p)).filter((e) => e.type === 'start');
    for (const u of starts) {
      expect(u.end - u.start).toBeGreaterThanOrEqual(MIN);
      expect(u.end - u.start).toBeLessThanOrEqual(MAX);
    }
    // Sequential: each chunk starts where the one before ended.
    for (let i = 1; i < starts.length; i++) expect(starts[i]?.start).toBe(starts[i - 1]?.end);

    const r2 = await runCli(['run'], { cwd: p.dir });
    expect(r2.code, r2.stdout + r2.stderr).toBe(0);
    const done = (await journal(p))
      .filter((e) => e.type === 'done')
      .map((e): [number, number] => [e.start, e.end]);
    expectTiles(done, 0, 6000);
    expectTiles(await effects(p), 0, 6000);
  }, 120_000);

  it('a bad size is a plan error naming the key and the fix, and leaves the checkpoint untouched (exit 2)', async () => {
    const p = await project(`version: 1
steps:
  - id: backfill
    run: "true"
    batch: { range: { from: 0, to: 10 }, size: { target: 1s, min: 100, max: 10 } }
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /checkpoint\.yml: steps\[0\]\.batch\.size\.max: expected an integer >= min \(100\), got 10; max is the largest chunk/,
    );
    expect(existsSync(join(p.dir, '.checkpoints'))).toBe(false);
  });
});
