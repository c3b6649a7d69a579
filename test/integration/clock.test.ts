// Budgets are measured on the monotonic clock (DESIGN §3, Clocks): the wall clock moved an hour either way
// mid-run (libfaketime, with the monotonic clock left alone as NTP leaves it) changes no budget decision.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLines, startCli, status, useProjects, waitFor } from '../support/cli.js';

const LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const project = useProjects();

const PLAN = `version: 1
steps:
  - id: w
    run: |
      echo "start $CHECKPOINT_BATCH_INDEX" >> effects.log
      sleep 0.5
    batch: { range: { from: 0, to: 60 }, order: sequential }
`;

describe.skipIf(!existsSync(LIB))('a wall clock that jumps mid-run', () => {
  for (const jump of ['+1h', '-1h']) {
    it(`${jump}: the 8 s budget still lasts about 8 s and ends by its prediction, not a kill`, async () => {
      const p = await project(PLAN);
      const stamp = join(p.dir, 'faketime');
      writeFileSync(stamp, '+0');
      const env = {
        LD_PRELOAD: LIB,
        FAKETIME_TIMESTAMP_FILE: stamp,
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      };
      const t0 = performance.now();
      const run = startCli(['run', '--time-budget', '8s'], { cwd: p.dir, env });
      await waitFor(async () => (await readLines(p.effects)).length >= 3 || undefined, 30_000, 'three units');
      writeFileSync(stamp, jump);
      const r = await run.result;
      const took = performance.now() - t0;
      expect(r.code, run.output()).toBe(75);
      // Neither cut short (+1h made the old engine stop at once) nor run into the deadline (-1h).
      expect(took).toBeGreaterThan(7000);
      expect(r.stdout, r.stdout).toMatch(/not starting more units: p90 \S+ would end after the time budget/);
      expect(r.stdout).not.toMatch(/time budget reached/);
      expect(r.stdout).not.toMatch(/ETA \d+h/);
      const s = await status(p);
      expect(s.steps[0]?.interrupted).toEqual([]);
    }, 60_000);
  }
});
