// Campaign `signals`: how `checkpoint run` ends when the CI runner cancels it. The runner's cancel sequence
// is SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that; people press Ctrl-C once or twice;
// other supervisors send SIGTERM. Each is sent to a run whose units make stopping hard: units that ignore
// SIGTERM (only the SIGKILL escalation, 3 s after the stop, ends them), units with children of their own
// (background sleeps, a subshell pipeline, a grandchild that exec's), and units in the middle of writing a
// big file. The rule: the CLI exits 75 within 5 s of the first SIGINT/SIGTERM (so the runner's SIGTERM is
// never needed), a second SIGINT ends it sooner, no process of any unit is left alive, and the checkpoint
// loads and resumes to completion without running again what it recorded done.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type CliResult,
  type Project,
  readLines,
  runCli,
  type StatusJson,
  startCli,
  tempProject,
} from '../support/cli.js';
import { recordFigures } from './figures.js';
import { waitWhileRunning } from './support/harness.js';
import { CLI_ENV, killAllIn, orphansIn, pool } from './support/procs.js';

type Kind = 'ignores-term' | 'children' | 'mid-write';
type Sequence = 'SIGINT' | 'SIGTERM' | 'SIGINT twice' | 'cancel';

const KINDS: Kind[] = ['ignores-term', 'children', 'mid-write'];
const SEQUENCES: Sequence[] = ['SIGINT', 'SIGTERM', 'SIGINT twice', 'cancel'];
const WINDOW_MS = 5000;
/** After the second SIGINT, units are killed at once: the CLI should be gone well before the 3 s grace. */
const SECOND_SIGINT_MS = 2000;
const UNITS = 6;
const PARALLEL = 3;

// Each kind hangs until the test releases it (`release` exists), so the resume can complete; every process
// writes its pid to `pids` so its fate can be checked, and the unit says `ready` once all of them exist.
const HANG: Record<Kind, string> = {
  'ignores-term': `trap '' TERM
sleep 60 &
echo $! >> pids
echo "ready $i" >> effects.log
wait $!`,
  children: `sleep 60 &
echo $! >> pids
(sleep 60 | cat) &
echo $! >> pids
(sh -c 'echo $$ >> pids; exec sleep 60') &
sleep 0.05
echo "ready $i" >> effects.log
wait`,
  'mid-write': `echo "ready $i" >> effects.log
while :; do
  head -c 262144 /dev/zero >> "big-$i"
  if [ "$(stat -c %s "big-$i")" -gt 4194304 ]; then : > "big-$i"; fi
done`,
};

const planFor = (kind: Kind) => `version: 1
name: signals
concurrency: ${PARALLEL}
steps:
  - id: prep
    run: |
      echo "start prep 0 $$" >> effects.log
      echo "end prep 0" >> effects.log
  - id: hold
    needs: [prep]
    batch: { range: { from: 0, to: ${UNITS} }, size: 1, parallel: ${PARALLEL} }
    run: |
      i=$CHECKPOINT_BATCH_INDEX
      echo "start hold $i $$" >> effects.log
      echo $$ >> pids
      if [ -e release ]; then echo "end hold $i" >> effects.log; exit 0; fi
${HANG[kind]
  .split('\n')
  .map((l) => `      ${l}`)
  .join('\n')}
`;

const tally = { scenarios: 0, inWindow: 0, killedAfterStop: 0, orphans: 0, inconsistent: 0, fasterSecond: 0 };
// A signal arriving after the stop, while the CLI released its lease, once killed it by the signal (exit
// 130/143) after it had printed "exit 75"; src/cli/run.ts now keeps its handlers until the lease is released.
// The figure stays, and counts as a failure.
const findings: string[] = [];
const timings: string[] = [];
let ran = false;

async function scenario(kind: Kind, seq: Sequence, projects: Project[]): Promise<void> {
  const p = await tempProject(planFor(kind), 'ckpt-signals-');
  projects.push(p);
  const what = `${kind} / ${seq}`;
  const run = startCli(['run'], { cwd: p.dir, env: CLI_ENV });
  let exited = false;
  void run.result.then(() => {
    exited = true;
  });
  // The units then wait for the signal: a run that ended before they were ready can never get there.
  await waitWhileRunning(
    run,
    async () =>
      (await readLines(p.effects)).filter((l) => l.startsWith('ready')).length >= PARALLEL || undefined,
    60_000,
    `${what}: ${PARALLEL} units ready`,
  );
  const t0 = Date.now();
  const send = (sig: NodeJS.Signals) => {
    if (!exited) run.child.kill(sig);
  };
  const timers: NodeJS.Timeout[] = [];
  if (seq === 'SIGTERM') send('SIGTERM');
  else send('SIGINT');
  let secondAt: number | undefined;
  if (seq === 'SIGINT twice') {
    // Someone pressing Ctrl-C again after a moment: the first stop is under way by then.
    timers.push(
      setTimeout(() => {
        secondAt = Date.now();
        send('SIGINT');
      }, 300),
    );
  }
  if (seq === 'cancel') {
    timers.push(setTimeout(() => send('SIGTERM'), 7500));
    timers.push(setTimeout(() => send('SIGKILL'), 10_000));
  }
  // Whatever happens, nothing is left running past 15 s: the assertions below say what went wrong.
  timers.push(setTimeout(() => send('SIGKILL'), 15_000));
  const res: CliResult = await run.result;
  const ms = Date.now() - t0;
  for (const t of timers) clearTimeout(t);
  tally.scenarios += 1;
  timings.push(`${what} ${ms}ms`);
  if (res.code === 75 && ms <= WINDOW_MS) tally.inWindow += 1;
  else if (res.signal !== null && /exit 75\)/.test(res.stdout) && ms <= WINDOW_MS) {
    // Known bug: the stop was complete ("exit 75" printed), but the handlers were already removed.
    tally.killedAfterStop += 1;
    findings.push(`${what}: killed by ${res.signal} after printing "exit 75" (${ms} ms)`);
  } else findings.push(`${what}: exit ${res.code ?? res.signal} after ${ms} ms\n${res.stderr.trim()}`);
  if (seq === 'SIGINT twice') {
    const after = secondAt === undefined ? 0 : Date.now() - secondAt;
    // Units that end on SIGTERM are gone before the second SIGINT: only SIGTERM-proof ones show the speed-up.
    if (ms <= SECOND_SIGINT_MS + 300) tally.fasterSecond += 1;
    else findings.push(`${what}: ${ms} ms to exit (${after} ms after the second SIGINT)`);
  }

  const pids = (await readLines(join(p.dir, 'pids'))).map(Number);
  const orphans = await orphansIn(p.dir, 1000);
  tally.orphans += orphans.length;
  if (orphans.length > 0) {
    const named = orphans.filter((o) => pids.includes(o.pid)).length;
    findings.push(
      `${what}: ${orphans.length} processes left alive (${named} of them wrote their pid): ` +
        orphans.map((o) => `${o.pid} ${o.cmdline.replace(/\s+/g, ' ')}`).join('; '),
    );
    killAllIn(p.dir);
  }

  // The checkpoint loads; the resume completes and runs `prep` (recorded done) no more.
  const st = await runCli(['status', '--json'], { cwd: p.dir, env: CLI_ENV });
  let consistent = st.code === 0;
  if (!consistent) findings.push(`${what}: status after the stop failed (${st.code}): ${st.stderr.trim()}`);
  await writeFile(join(p.dir, 'release'), '');
  const resume = await runCli(['run'], { cwd: p.dir, env: CLI_ENV });
  const st2 = await runCli(['status', '--json'], { cwd: p.dir, env: CLI_ENV });
  const lines = await readLines(p.effects);
  const prepRuns = lines.filter((l) => l.startsWith('start prep')).length;
  const ended = new Set(lines.filter((l) => l.startsWith('end hold')).map((l) => l.split(' ')[2]));
  const complete = st2.code === 0 && (JSON.parse(st2.stdout) as StatusJson).complete;
  if (resume.code !== 0 || !complete || prepRuns !== 1 || ended.size !== UNITS) {
    consistent = false;
    findings.push(
      `${what}: resume exit ${resume.code}, complete ${complete}, prep ran ${prepRuns}×, ${ended.size}/${UNITS} ` +
        `units ended\n${resume.stderr.trim()}`,
    );
  }
  if (!consistent) tally.inconsistent += 1;
  killAllIn(p.dir);
}

describe('signals', () => {
  const projects: Project[] = [];
  afterAll(async () => {
    for (const p of projects) killAllIn(p.dir);
    await Promise.all(projects.map((p) => p.cleanup()));
    if (!ran) return;
    recordFigures(
      'signals',
      [
        { name: 'scenarios', value: tally.scenarios },
        { name: 'exits 75 within 5 s', value: tally.inWindow, must: `= ${tally.scenarios}` },
        {
          name: 'killed by a second signal after the stop',
          value: tally.killedAfterStop,
          must: '= 0',
        },
        { name: 'orphans left', value: tally.orphans, must: '= 0' },
        { name: 'inconsistent checkpoints', value: tally.inconsistent, must: '= 0' },
      ],
      `${KINDS.length} kinds of unit (${KINDS.join(', ')}) × ${SEQUENCES.length} sequences (${SEQUENCES.join(', ')}); ` +
        `second SIGINT ended the run within ${SECOND_SIGINT_MS / 1000} s in ${tally.fasterSecond} of ${KINDS.length}; ` +
        `times from the first signal to exit: ${timings.join(', ')}` +
        (findings.length > 0 ? `. Findings: ${findings.slice(0, 6).join(' | ')}` : ''),
    );
  });

  it('a cancelled run exits 75 in time, leaves no process behind, and resumes', async () => {
    ran = true;
    const all = KINDS.flatMap((k) => SEQUENCES.map((s) => [k, s] as const));
    // Three at once: on two cores more would skew the timings that are being judged.
    await pool(all, 3, ([k, s]) => scenario(k, s, projects));
    console.log(`signals: ${JSON.stringify(tally)}\n${timings.join('\n')}\n${findings.join('\n')}`);
    expect(tally.inWindow, findings.join('\n')).toBe(tally.scenarios);
    expect(tally.killedAfterStop, findings.join('\n')).toBe(0);
    expect(tally.fasterSecond, findings.join('\n')).toBe(KINDS.length);
    expect(tally.orphans, findings.join('\n')).toBe(0);
    expect(tally.inconsistent, findings.join('\n')).toBe(0);
  });
});
