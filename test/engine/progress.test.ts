import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../src/journal/checkpoint.js';
import { IntervalSet } from '../../src/journal/intervals.js';
import { applyEvent, emptyState } from '../../src/journal/state.js';
import { parsePlan } from '../../src/plan/load.js';
import { Progress } from '../../src/report/progress.js';

const plan = parsePlan(
  'version: 1\nsteps:\n  - id: fill\n    run: x\n    batch: { range: { from: 0, to: 100 }, size: 10 }\n',
  '/tmp/p/checkpoint.yml',
);
const fp = {
  hash: 'h',
  parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
};

function setup(tty: boolean) {
  const state = emptyState('r1', 'p');
  applyEvent(state, {
    type: 'step-init',
    step: 'fill',
    fingerprint: fp,
    from: 0,
    to: 100,
    size: 10,
    reason: 'new',
    seq: 1,
    t: 0,
  });
  const ckpt = { state } as unknown as Checkpoint;
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  let now = 1_000_000;
  const progress = new Progress(plan, ckpt, ['fill'], {
    tty,
    color: false,
    out,
    now: () => now,
    intervalMs: 5000,
  });
  return { state, progress, text: () => text, tick: (ms: number) => (now += ms) };
}

describe('Progress', () => {
  it('on a terminal draws a block per step with bar, counts, rate and ETA, and prints output above it', () => {
    const { state, progress, text, tick } = setup(true);
    progress.start();
    progress.event({ type: 'step-state', step: 'fill', state: 'running' });
    const rec = state.steps.get('fill');
    if (!rec) throw new Error('no record');
    rec.done = new IntervalSet().add(0, 40);
    rec.unitsDone = 4;
    tick(2000);
    progress.output('fill#4', 'hello', 'stdout');
    progress.stop();
    const t = text();
    expect(t).toContain('[fill#4] hello\n');
    expect(t).toMatch(/› fill ████████░{12} 4\/10 units \(40%\)\s+2\.0\/s\s+ETA 3s/);
    expect(t).toContain('\x1b[1F\x1b[J');
  });

  it('in CI prints at most one progress line per step per interval, plus step results', () => {
    const { state, progress, text, tick } = setup(false);
    progress.event({ type: 'step-state', step: 'fill', state: 'running' });
    const rec = state.steps.get('fill');
    if (!rec) throw new Error('no record');
    rec.unitsDone = 2;
    tick(1000);
    progress.start();
    progress.stop();
    progress.event({ type: 'step-state', step: 'fill', state: 'done' });
    expect(text()).toMatch(/^\d{4}-\d\d-\d\dT.*Z ✓ fill done/m);
    expect(text()).not.toContain('\x1b[');
  });
});
