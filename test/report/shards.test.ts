// gatherShards: several shards' checkpoints into one report, and its checks — the union of the done work is
// the whole, nothing was done on two shards, every shard did its own part of the same plan.
import { describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import type { CheckpointEvent } from '../../src/journal/events.js';
import { applyEvent } from '../../src/journal/state.js';
import { partOf, type ShardMode } from '../../src/plan/space.js';
import {
  gatherShards,
  renderReportMarkdown,
  renderReportText,
  reportExitCode,
  reportJson,
  type ShardSource,
} from '../../src/report/shards.js';

const FP = {
  hash: 'h',
  parts: { run: '', shell: '', env: '', workingDirectory: '', batch: '', inputs: {} },
};

interface StepSpec {
  whole: [number, number];
  mode: ShardMode;
  size?: number;
  done?: Array<[number, number]>;
  failed?: Array<[number, number]>;
  /** Record this part instead of the shard's own. */
  part?: [number, number];
  itemsSha?: string;
}

function shard(
  index: number | undefined,
  total: number,
  steps: Record<string, StepSpec>,
  planName = 'p',
): ShardSource {
  const sh = index === undefined ? undefined : { index, total };
  const id = sh ? `p-shard${index}of${total}-20260101-000000` : 'p-20260101-000000';
  const ckpt = Checkpoint.blank('/nowhere', id, planName, sh);
  let seq = 0;
  const ev = (e: CheckpointEvent) => applyEvent(ckpt.state, { ...e, seq: ++seq, t: 1000 + seq });
  ev({
    type: 'attempt',
    attempt: 1,
    plan: planName,
    pid: 1,
    host: 'h',
    resumed: false,
    ...(sh ? { shard: sh } : {}),
  });
  for (const [step, spec] of Object.entries(steps)) {
    const [from, to] = spec.part ?? (sh ? partOf(spec.whole[0], spec.whole[1], spec.mode, sh) : spec.whole);
    const size = spec.size ?? 1;
    ev({
      type: 'step-init',
      step,
      fingerprint: FP,
      from,
      to,
      size,
      ...(spec.itemsSha
        ? { items: { count: spec.whole[1], sha256: spec.itemsSha, source: 'list of n' } }
        : {}),
      ...(sh ? { sharding: { from: spec.whole[0], to: spec.whole[1], mode: spec.mode } } : {}),
      reason: 'new',
    });
    for (const [s, e] of spec.done ?? [])
      for (let x = s; x < e; x += size)
        ev({ type: 'done', step, start: x, end: Math.min(x + size, e), index: 0, ms: 100 });
    for (const [s, e] of spec.failed ?? [])
      ev({
        type: 'fail',
        step,
        start: s,
        end: e,
        index: Math.floor((s - from) / size),
        try: 3,
        ms: 50,
        exit: 3,
        signal: null,
        final: true,
        reason: 'exit code 3',
      });
  }
  return { source: `dir${index ?? ''}`, ckpt };
}

/** A plan of a plain step on every shard, a `shards: first` step, and a split range of 10 in units of 2. */
function complete3(): ShardSource[] {
  return [0, 1, 2].map((i) => {
    const [s, e] = partOf(0, 10, 'split', { index: i, total: 3 });
    return shard(i, 3, {
      setup: { whole: [0, 1], mode: 'every', done: [[0, 1]] },
      once: { whole: [0, 1], mode: 'first', done: i === 0 ? [[0, 1]] : [] },
      work: { whole: [0, 10], mode: 'split', size: 2, done: s < e ? [[s, e]] : [] },
    });
  });
}

describe('gatherShards', () => {
  it('complete: the union of the shards’ work is the whole of every step and nothing was done twice', () => {
    const r = gatherShards({ sources: complete3() });
    expect(r.errors).toEqual([]);
    expect(r).toMatchObject({ plan: 'p', total: 3, complete: true, consistent: true });
    // setup ×3, once ×1 (shard 0), work: parts [0,3) [3,6) [6,10) chunked by 2 → 2 + 2 + 2 units.
    expect(r.units).toEqual({ total: 10, done: 10, failed: 0, remaining: 0 });
    const work = r.steps.find((s) => s.id === 'work');
    expect(work?.shards.map((c) => c.part)).toEqual([
      [0, 3],
      [3, 6],
      [6, 10],
    ]);
    expect(work).toMatchObject({ mode: 'split', whole: [0, 10], complete: true, remaining: [] });
    expect(r.steps.find((s) => s.id === 'once')?.shards.map((c) => c.units.total)).toEqual([1, 0, 0]);
    expect(reportExitCode(r)).toBe(0);
    expect(renderReportText(r)).toMatch(/^plan p · 3 shards · complete · 10\/10 units \(100%\)/);
    const md = renderReportMarkdown(r);
    expect(md).toMatch(/^## ✅ p: complete across 3 shards/);
    expect(md).toMatch(/\| 1\/3 \| `p-shard1of3-20260101-000000` \| ✅ complete \| 3 \/ 3 \|/);
  });

  it('the JSON is the documented shape', () => {
    const doc = reportJson(gatherShards({ sources: complete3() })) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual([
      'format',
      'plan',
      'total',
      'complete',
      'consistent',
      'errors',
      'warnings',
      'units',
      'etaSeconds',
      'shards',
      'steps',
      'merge',
    ]);
    const shards = doc.shards as Array<Record<string, unknown>>;
    expect(shards[1]).toMatchObject({
      index: 1,
      shard: '1/3',
      present: true,
      source: 'dir1',
      complete: true,
    });
    const steps = doc.steps as Array<Record<string, unknown>>;
    expect(steps[2]).toMatchObject({
      id: 'work',
      mode: 'split',
      whole: [0, 10],
      state: 'done',
      complete: true,
    });
    expect((steps[2]?.shards as Array<Record<string, unknown>>)[2]).toMatchObject({
      index: 2,
      state: 'done',
      part: [6, 10],
      done: [[6, 10]],
      failed: [],
    });
  });

  it('a shard without a checkpoint: its part counts as remaining, the report is incomplete (exit 75)', () => {
    const [a, , c] = complete3();
    const r = gatherShards({ sources: [a, c] as ShardSource[] });
    expect(r.consistent).toBe(true);
    expect(r.complete).toBe(false);
    expect(r.warnings).toEqual(['no checkpoint for shard 1/3: its work counts as remaining']);
    const work = r.steps.find((s) => s.id === 'work');
    expect(work?.remaining).toEqual([[3, 6]]);
    expect(work?.shards[1]).toMatchObject({
      state: 'missing',
      part: [3, 6],
      units: { total: 2, remaining: 2 },
    });
    // setup (1) and its part of work (2); `once` is shard 0's.
    expect(r.shards[1]).toMatchObject({ present: false, units: { total: 3, done: 0, remaining: 3 } });
    expect(reportExitCode(r)).toBe(75);
    // N known from the action's `shard: 4`: a fourth shard nobody saved.
    const four = gatherShards({ sources: [], total: 2 });
    expect(four.complete).toBe(false);
  });

  it('a range done on two shards, or outside a shard’s part, is an error naming the step, range and shards', () => {
    const sources = [
      shard(0, 2, { work: { whole: [0, 10], mode: 'split', done: [[0, 5]] } }),
      // Shard 1 recorded the whole space as its part and did [3, 10).
      shard(1, 2, { work: { whole: [0, 10], mode: 'split', part: [0, 10], done: [[3, 10]] } }),
    ];
    const r = gatherShards({ sources });
    expect(r.consistent).toBe(false);
    expect(r.complete).toBe(false);
    expect(r.errors).toEqual(
      [
        'step work on shard 1/2: its part is [0, 10), but shard 1/2 of [0, 10) is [5, 10); run that shard again with --new',
        'step work on shard 1/2: work outside its part [0, 10) is recorded done: ',
        'step work: [3, 5) done on shard 1 and on shard 0 (done twice)',
      ].filter((e) => !e.endsWith(': ')),
    );
    expect(reportExitCode(r)).toBe(1);
    expect(renderReportText(r)).toMatch(
      /inconsistent[\s\S]*error: step work: \[3, 5\) done on shard 1 and on shard 0/,
    );
    expect(renderReportMarkdown(r)).toMatch(/> \[!CAUTION\][\s\S]*done twice/);
  });

  it('work recorded outside the shard’s part is an error', () => {
    const sources = [
      shard(0, 2, { work: { whole: [0, 10], mode: 'split', done: [[0, 5]] } }),
      shard(1, 2, { work: { whole: [0, 10], mode: 'split', done: [[5, 10]] } }),
    ];
    // Shard 0 also recorded [7, 8) done: outside [0, 5) and done on shard 1 too.
    applyEvent(sources[0]?.ckpt.state as never, {
      type: 'done',
      step: 'work',
      start: 7,
      end: 8,
      index: 7,
      ms: 1,
      seq: 99,
      t: 2000,
    });
    const r = gatherShards({ sources });
    expect(r.errors).toContain(
      'step work on shard 0/2: work outside its part [0, 5) is recorded done: [7, 8)',
    );
    expect(r.errors).toContain('step work: [7, 8) done on shard 1 and on shard 0 (done twice)');
  });

  it('refuses to add up checkpoints that are not one set of shards', () => {
    const [a, b] = complete3();
    const dup = gatherShards({ sources: [a, a] as ShardSource[] });
    expect(dup.errors[0]).toMatch(
      /^shard 0\/3 was given twice \(dir0, run p-shard0of3-20260101-000000, and dir0/,
    );
    const other = shard(2, 4, { work: { whole: [0, 10], mode: 'split' } });
    expect(gatherShards({ sources: [a, b, other] as ShardSource[] }).errors.join('\n')).toMatch(
      /the shard counts differ: dir0 is shard 0\/3, dir1 is shard 1\/3, dir2 is shard 2\/4; every shard must be run with the same N/,
    );
    const plain = shard(undefined, 1, { work: { whole: [0, 10], mode: 'split' } });
    expect(gatherShards({ sources: [a, plain] as ShardSource[] }).errors.join('\n')).toMatch(
      /dir \(run p-20260101-000000\) is not sharded \(run without --shard\)/,
    );
    const otherPlan = shard(1, 3, { work: { whole: [0, 10], mode: 'split' } }, 'q');
    expect(gatherShards({ sources: [a, otherPlan] as ShardSource[] }).errors[0]).toMatch(
      /the checkpoints belong to different plans \(dir0: "p", dir1: "q"\)/,
    );
    const items = [0, 1].map((i) =>
      shard(i, 2, { names: { whole: [0, 4], mode: 'split', itemsSha: i === 0 ? 'aaa' : 'bbb' } }),
    );
    expect(gatherShards({ sources: items }).errors[0]).toMatch(
      /step names: shards 0 and 1 froze different item lists/,
    );
    const space = [0, 1].map((i) => shard(i, 2, { work: { whole: [0, i === 0 ? 10 : 12], mode: 'split' } }));
    expect(gatherShards({ sources: space }).errors[0]).toMatch(
      /step work on shard 1\/2: recorded the space \[0, 12\) \(split, size 1\) but another shard recorded \[0, 10\)/,
    );
  });

  it('a `shards: first` step done on another shard is an error; different definitions are a warning', () => {
    const sources = [0, 1].map((i) =>
      shard(i, 2, { once: { whole: [0, 1], mode: 'first', done: [[0, 1]] } }),
    );
    const r = gatherShards({ sources });
    expect(r.errors).toContain(
      'step once on shard 1/2: work outside its part [0, 0) is recorded done: [0, 1)',
    );
    expect(r.errors).toContain('step once: [0, 1) done on shard 1 and on shard 0 (done twice)');
    const again = [0, 1].map((i) => shard(i, 2, { setup: { whole: [0, 1], mode: 'every', done: [[0, 1]] } }));
    const rec = again[1]?.ckpt.state.steps.get('setup');
    if (rec) rec.fingerprint = { ...rec.fingerprint, hash: 'other' };
    const w = gatherShards({ sources: again });
    expect(w.complete).toBe(true);
    expect(w.warnings).toEqual([
      'step setup: shards 0 and 1 ran different definitions of it (fingerprint h and other); run every shard from the same commit',
    ]);
  });

  it('an unsharded run is the one shard of 1', () => {
    const r = gatherShards({
      sources: [shard(undefined, 1, { work: { whole: [0, 4], mode: 'split', size: 2, done: [[0, 4]] } })],
    });
    expect(r).toMatchObject({ total: 1, complete: true, consistent: true });
  });

  it('failed units: per shard with their ranges; exit 1', () => {
    const sources = [
      shard(0, 2, { work: { whole: [0, 8], mode: 'split', size: 2, done: [[0, 2]], failed: [[2, 4]] } }),
      shard(1, 2, { work: { whole: [0, 8], mode: 'split', size: 2, done: [[4, 8]] } }),
    ];
    const r = gatherShards({ sources });
    expect(r.units).toEqual({ total: 4, done: 3, failed: 1, remaining: 1 });
    expect(r.steps[0]?.state).toBe('failed');
    expect(r.steps[0]?.remaining).toEqual([[2, 4]]);
    expect(reportExitCode(r)).toBe(1);
    expect(renderReportText(r)).toMatch(
      /0\/2\s+failed\s+1\/2 ✗1[\s\S]*failed \[2, 4\): exit code 3 after 1 try/,
    );
    const md = renderReportMarkdown(r);
    expect(md).toMatch(/^## ❌ p: failed across 2 shards/);
    expect(md).toMatch(
      /<summary>❌ work · shard 0\/2 · units 2–3 \(chunk #1\) · exit code 3 · 1 try<\/summary>/,
    );
  });
});
