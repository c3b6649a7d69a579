// `batch.throttle` through the real CLI: a check command that holds units back while it exits non-zero.
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readLines, runCli, startCli, status, useProjects, waitFor } from '../support/cli.js';

const project = useProjects();

// The check logs each call, passes once `open` exists, and says why it fails otherwise. With `hang`, it
// hangs (a check that never answers).
const CHECK = `#!/bin/sh
echo check >> checks.log
if [ -f hang ]; then sleep 30; fi
if [ -f open ]; then exit 0; fi
echo "db load 97%"
exit 1
`;

function plan(every: string, backoff: string): string {
  return `version: 1
concurrency: 2
steps:
  - id: backfill
    run: echo "unit $CHECKPOINT_BATCH_START" >> effects.log
    batch:
      range: { from: 0, to: 6 }
      parallel: 2
      throttle: { command: ./check.sh, every: ${every}, backoff: ${backoff} }
`;
}

interface ThrottleJson {
  held: boolean;
  reason: string | null;
  times: number;
  heldSeconds: number;
}

function throttleOf(s: Awaited<ReturnType<typeof status>>): ThrottleJson | null {
  const step = (s.steps as unknown as Array<{ id: string; throttle: ThrottleJson | null }>).find(
    (x) => x.id === 'backfill',
  );
  return step?.throttle ?? null;
}

describe('batch.throttle', () => {
  it('holds units back while the check fails, says why, and starts them once it passes', async () => {
    const p = await project(plan('1h', '0.2s'));
    await writeFile(join(p.dir, 'check.sh'), CHECK);
    await chmod(join(p.dir, 'check.sh'), 0o755);
    const run = startCli(['run'], { cwd: p.dir });
    // Held: the check ran, failed, and ran again after the backoff; no unit started.
    await waitFor(
      async () => ((await readLines(join(p.dir, 'checks.log'))).length >= 2 ? true : undefined),
      30_000,
      'the check to fail twice',
    );
    expect(await readLines(p.effects)).toEqual([]);
    await run.waitForOutput(/backfill: throttled: \.\/check\.sh: exit code 1 \(db load 97%\)/);
    const held = throttleOf(await status(p));
    expect(held?.held).toBe(true);
    expect(held?.reason).toBe('throttled: ./check.sh: exit code 1 (db load 97%)');

    const checksBefore = (await readLines(join(p.dir, 'checks.log'))).length;
    await writeFile(join(p.dir, 'open'), '');
    const r = await run.result;
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/backfill: throttle check passes: starting units again/);
    expect((await readLines(p.effects)).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `unit ${i}`).sort());
    // A passing check holds for `every` (1h): one more check at most (one may have been under way when
    // `open` appeared), not one per unit.
    const checksAfter = (await readLines(join(p.dir, 'checks.log'))).length - checksBefore;
    expect(checksAfter).toBeGreaterThanOrEqual(1);
    expect(checksAfter).toBeLessThanOrEqual(2);

    const after = throttleOf(await status(p));
    expect(after?.held).toBe(false);
    expect(after?.times).toBe(1);
    expect(after?.heldSeconds).toBeGreaterThan(0);
    const text = await runCli(['status'], { cwd: p.dir });
    expect(text.stdout).toMatch(/throttle: held back 1 time\(s\), .* in all; last: throttled: \.\/check\.sh/);
  });

  it('a run stopped while its check hangs exits 75 in time, and the held time is closed', async () => {
    const p = await project(plan('1h', '0.2s'));
    await writeFile(join(p.dir, 'check.sh'), CHECK);
    await chmod(join(p.dir, 'check.sh'), 0o755);
    const run = startCli(['run'], { cwd: p.dir });
    await run.waitForOutput(/backfill: throttled/);
    await writeFile(join(p.dir, 'hang'), '');
    const checks = (await readLines(join(p.dir, 'checks.log'))).length;
    await waitFor(
      async () => ((await readLines(join(p.dir, 'checks.log'))).length > checks ? true : undefined),
      30_000,
      'a check to hang',
    );
    const t0 = Date.now();
    run.child.kill('SIGINT');
    const r = await run.result;
    expect(r.code).toBe(75);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await readLines(p.effects)).toEqual([]);
    const s = throttleOf(await status(p));
    expect(s?.held).toBe(false);
    expect(s?.times).toBe(1);
  });

  it('a bad throttle is a plan error naming the key (exit 2)', async () => {
    const p = await project(`version: 1
steps:
  - id: backfill
    run: "true"
    batch: { range: { from: 0, to: 2 }, throttle: { command: ./check.sh, every: soon } }
`);
    const r = await runCli(['run'], { cwd: p.dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/steps\[0\]\.batch\.throttle\.every: expected a duration/);
  });
});
