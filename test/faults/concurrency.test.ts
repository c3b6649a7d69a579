// Campaign `concurrency`: several `checkpoint run` on one checkpoint at once. Two and five runs started
// together on a fresh folder and on a checkpoint whose holder was SIGKILLed (all of them contending for the
// dead holder's lease): exactly one runs, the others exit 75 naming the holder's pid and host, no unit runs
// twice. Then leases written as other processes would write them (src/journal/lock.ts; docs/format.md
// `lock`): a live lease of another host, or of a live process on this one, is refused with the holder
// named; a lease whose heartbeat is older than its TTL is taken over, whoever wrote it.
//
// Units wait for a `release` file, so the winner is still holding the lease when the others look at it,
// whatever the load: the test releases them once every other run has exited.
import { randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { processStartTime } from '../../src/journal/lock.js';
import {
  type CliResult,
  type Project,
  readLines,
  runCli,
  type Started,
  type StatusJson,
  startCli,
  tempProject,
  waitFor,
} from '../support/cli.js';
import { recordFigures } from './figures.js';
import { waitWhileRunning } from './support/harness.js';
import { CLI_ENV, killAllIn, orphansIn } from './support/procs.js';

const UNITS = 6;
const PLAN = `version: 1
name: conc
concurrency: 2
steps:
  - id: work
    batch: { range: { from: 0, to: ${UNITS} }, size: 1, parallel: 2 }
    run: |
      echo "start $CHECKPOINT_BATCH_INDEX $$" >> effects.log
      while [ ! -e release ]; do sleep 0.02; done
      echo "end $CHECKPOINT_BATCH_INDEX" >> effects.log
`;

/**
 * Found by this campaign and fixed: on a fresh folder a contender that looked after another one created the
 * run folder, but before it wrote `latest`, started a second run (`<id>-2`) beside it. Creating a run is now
 * serialised by a lease on the root (`.checkpoints/.creating`).
 */
const tally = {
  races: 0,
  doubleRuns: 0,
  doubleRunsFresh: 0,
  refusals: 0,
  refusalsNamed: 0,
  takeovers: 0,
  takeoversTried: 0,
};
const findings: string[] = [];
const projects: Project[] = [];
let ran = false;

async function project(): Promise<Project> {
  const p = await tempProject(PLAN, 'ckpt-conc-');
  projects.push(p);
  return p;
}

const start = (p: Project) => startCli(['run'], { cwd: p.dir, env: CLI_ENV });

/** The holder a refusal names, as `pid host`, or undefined when it names none. */
function namedHolder(r: CliResult): string | undefined {
  const m = /locked by pid (\d+) on host (\S+)/.exec(r.stderr);
  return m ? `${m[1]} ${m[2]}` : undefined;
}

/** Units that started more than once (an `interrupted` unit of a killed holder legitimately restarts once). */
async function startsPerUnit(p: Project): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  for (const l of await readLines(p.effects)) {
    const [kind, index] = l.split(' ');
    if (kind === 'start' && index !== undefined) counts.set(index, (counts.get(index) ?? 0) + 1);
  }
  return counts;
}

/** Pids named by the lock files of every run folder. */
async function leaseHolders(p: Project): Promise<Set<number>> {
  const out = new Set<number>();
  const root = join(p.dir, '.checkpoints');
  for (const d of await readdir(root).catch(() => [] as string[])) {
    const text = await readFile(join(root, d, 'lock'), 'utf8').catch(() => '');
    try {
      out.add((JSON.parse(text) as { pid: number }).pid);
    } catch {
      // No lock there, or one being replaced.
    }
  }
  return out;
}

async function runId(p: Project): Promise<string> {
  return (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim();
}

/** A checkpoint whose holder was SIGKILLed with one unit started: its lease is left behind. */
async function killedHolder(): Promise<{ p: Project; id: string; pid: number }> {
  const p = await project();
  const holder = start(p);
  await waitWhileRunning(
    holder,
    async () => (await readLines(p.effects)).length > 0 || undefined,
    30_000,
    'a unit to start',
  );
  holder.child.kill('SIGKILL');
  await holder.result;
  // The SIGKILLed run's launchers see it gone and end its units (SIGTERM, SIGKILL 3 s later). Once they
  // are gone every `start` line the holder's units will ever write is written: counted only then, a unit
  // the holder started but had not recorded is not taken for a double start when the next run runs it.
  await waitFor(
    async () => (await orphansIn(p.dir)).length === 0 || undefined,
    15_000,
    'the holder’s units to end',
  );
  return { p, id: await runId(p), pid: holder.child.pid ?? 0 };
}

/** Starts `n` runs at once; once all but one have exited, releases the units and judges the race. */
async function race(what: string, p: Project, n: number, alreadyStarted?: Map<string, number>) {
  const fresh = alreadyStarted === undefined;
  tally.races += 1;
  const runs: Started[] = Array.from({ length: n }, () => start(p));
  const exited = new Set<number>();
  runs.forEach((r, i) => {
    void r.result.then(() => exited.add(i));
  });
  try {
    // Settled: every run has exited or holds a lease (one should; more are running side by side).
    await waitFor(
      async () => {
        const holding = await leaseHolders(p);
        return runs.every((r, i) => exited.has(i) || holding.has(r.child.pid ?? -1)) || undefined;
      },
      30_000,
      `${what}: runs to exit or hold a lease`,
    );
  } catch {
    findings.push(`${what}: runs neither exited nor held a lease within 30 s`);
  }
  if (n - exited.size > 1) findings.push(`${what}: ${n - exited.size} runs running together`);
  await writeFile(join(p.dir, 'release'), '');
  const results = await Promise.all(runs.map((r) => r.result));
  const winners = results.flatMap((r, i) => (r.code === 0 ? [i] : []));
  if (winners.length !== 1) findings.push(`${what}: ${winners.length} runs exited 0`);
  const holders = new Set(winners.map((i) => `${runs[i]?.child.pid} ${hostname()}`));
  results.forEach((r, i) => {
    if (r.code === 0) return;
    tally.refusals += 1;
    const named = namedHolder(r);
    if (r.code === 75 && named !== undefined && holders.has(named)) tally.refusalsNamed += 1;
    else
      findings.push(
        `${what}: run ${i} exit ${r.code}, holder named "${named}" (holders ${[...holders].join(', ')}): ${r.stderr.trim()}`,
      );
  });
  // Each unit starts once in the race, plus once more for a unit the killed holder had started.
  const starts = await startsPerUnit(p);
  let doubles = 0;
  for (const [unit, count] of starts) doubles += Math.max(0, count - 1 - (alreadyStarted?.get(unit) ?? 0));
  const dirs = (await readdir(join(p.dir, '.checkpoints'))).filter(
    (d) => d !== 'latest' && !d.startsWith('.'),
  );
  if (doubles > 0 || dirs.length !== 1)
    findings.push(`${what}: ${doubles} extra unit starts, ${dirs.length} run folders (${dirs.join(' ')})`);
  const extra = doubles + Math.max(0, dirs.length - 1);
  if (fresh) tally.doubleRunsFresh += extra;
  else tally.doubleRuns += extra;
  const st = await runCli(['status', '--json'], { cwd: p.dir, env: CLI_ENV });
  if (st.code !== 0 || !(JSON.parse(st.stdout) as StatusJson).complete)
    findings.push(`${what}: not complete after the race: ${st.stderr.trim()}`);
}

/** A lease as another process would write it (docs/format.md `lock`). */
async function writeLease(
  p: Project,
  id: string,
  holder: { pid: number; host: string; ageMs: number; ttlMs?: number; startTime?: number },
) {
  const lease = {
    pid: holder.pid,
    host: holder.host,
    runId: id,
    attempt: 3,
    ...(holder.startTime !== undefined ? { startTime: holder.startTime } : {}),
    heartbeat: Date.now() - holder.ageMs,
    ...(holder.ttlMs !== undefined ? { ttlMs: holder.ttlMs } : {}),
    nonce: randomBytes(12).toString('hex'),
  };
  await writeFile(join(p.dir, '.checkpoints', id, 'lock'), `${JSON.stringify(lease)}\n`, { mode: 0o600 });
}

describe('concurrency', () => {
  afterAll(async () => {
    for (const p of projects) killAllIn(p.dir);
    await Promise.all(projects.map((p) => p.cleanup()));
    if (!ran) return;
    recordFigures(
      'concurrency',
      [
        { name: 'races run', value: tally.races },
        { name: 'double runs', value: tally.doubleRuns + tally.doubleRunsFresh, must: '= 0' },
        { name: 'refusals that name the holder', value: tally.refusalsNamed, must: `= ${tally.refusals}` },
        { name: 'takeovers that worked', value: tally.takeovers, must: `= ${tally.takeoversTried}` },
      ],
      'races of 2 and 5 runs on a fresh folder and on a SIGKILLed holder’s checkpoint; leases of a live ' +
        'process on another host and on this one (refused), stale by the default 30 s TTL and by the ' +
        'holder’s own 2 s TTL (taken over); ' +
        `double runs on a fresh folder ${tally.doubleRunsFresh}, on an existing checkpoint ${tally.doubleRuns}. ` +
        (findings.length > 0 ? `. Findings: ${findings.slice(0, 6).join(' | ')}` : ''),
    );
  });

  it('exactly one of several simultaneous runs works; the others are refused naming it', async () => {
    ran = true;
    // Twice each: which contender wins (and how far the others got) changes from one race to the next.
    const sizes = [2, 5, 2, 5];
    for (const n of sizes) await race(`fresh folder, ${n} runs`, await project(), n);
    for (const n of sizes) {
      const { p } = await killedHolder();
      const before = await startsPerUnit(p);
      tally.takeoversTried += 1;
      await race(`SIGKILLed holder, ${n} runs`, p, n, before);
      // The race's winner took the dead holder's lease over (the race judged it exited 0 and completed).
      const orphans = await orphansIn(p.dir);
      if (orphans.length === 0 && findings.every((f) => !f.startsWith(`SIGKILLed holder, ${n}`)))
        tally.takeovers += 1;
      else findings.push(`SIGKILLed holder, ${n} runs: ${orphans.length} processes alive after the takeover`);
    }
    console.log(`concurrency: ${JSON.stringify(tally)}\n${findings.join('\n')}`);
    expect(tally.doubleRuns, findings.join('\n')).toBe(0);
    expect(tally.doubleRunsFresh, findings.join('\n')).toBe(0);
    expect(tally.refusalsNamed, findings.join('\n')).toBe(tally.refusals);
  });

  it('a live lease of another host or process is refused; a stale one is taken over', async () => {
    ran = true;
    const { p, id } = await killedHolder();
    const refuse = async (what: string, holder: Parameters<typeof writeLease>[2]) => {
      await writeLease(p, id, holder);
      const r = await runCli(['run'], { cwd: p.dir, env: CLI_ENV });
      tally.refusals += 1;
      if (r.code === 75 && namedHolder(r) === `${holder.pid} ${holder.host}`) tally.refusalsNamed += 1;
      else findings.push(`${what}: exit ${r.code}, named "${namedHolder(r)}": ${r.stderr.trim()}`);
    };
    const takeOver = async (what: string, holder: Parameters<typeof writeLease>[2]) => {
      await writeLease(p, id, holder);
      tally.takeoversTried += 1;
      // The lease is taken and units start: the run is working on the checkpoint.
      const before = (await readLines(p.effects)).length;
      const r = start(p);
      try {
        await waitWhileRunning(
          r,
          async () => (await readLines(p.effects)).length > before || undefined,
          30_000,
          `${what}: units`,
        );
        const lease = JSON.parse(await readFile(join(p.dir, '.checkpoints', id, 'lock'), 'utf8')) as {
          pid: number;
        };
        if (lease.pid === r.child.pid) tally.takeovers += 1;
        else findings.push(`${what}: the lock names pid ${lease.pid}, not the run (${r.child.pid})`);
      } catch (err) {
        findings.push(`${what}: ${String(err)}\n${r.output()}`);
      }
      r.child.kill('SIGKILL');
      await r.result;
    };
    await refuse('live lease on another host', { pid: 4242, host: 'ci-runner-elsewhere-7', ageMs: 1000 });
    // This test's own process is alive on this host; with its start time the pid cannot be mistaken.
    await refuse('live lease of a live process on this host', {
      pid: process.pid,
      host: hostname(),
      ageMs: 1000,
      ...(processStartTime(process.pid) !== undefined ? { startTime: processStartTime(process.pid) } : {}),
    });
    await refuse('live lease of another host with its own 60 s TTL', {
      pid: 4242,
      host: 'ci-runner-elsewhere-7',
      ageMs: 500,
      ttlMs: 60_000,
    });
    await takeOver('another host, heartbeat 31 s old (default TTL 30 s)', {
      pid: 4242,
      host: 'ci-runner-elsewhere-7',
      ageMs: 31_000,
    });
    await takeOver('another host, heartbeat 3 s old, its own TTL 2 s', {
      pid: 4243,
      host: 'ci-runner-elsewhere-8',
      ageMs: 3000,
      ttlMs: 2000,
    });
    // Finally the checkpoint completes, every unit ran to its end once the last resume released them.
    await writeFile(join(p.dir, 'release'), '');
    const last = await runCli(['run'], { cwd: p.dir, env: CLI_ENV });
    const ended = new Set(
      (await readLines(p.effects)).filter((l) => l.startsWith('end')).map((l) => l.split(' ')[1]),
    );
    if (last.code !== 0 || ended.size !== UNITS)
      findings.push(`final resume exit ${last.code}, ${ended.size} units ended`);
    console.log(`concurrency: ${JSON.stringify(tally)}\n${findings.join('\n')}`);
    expect(last.code, last.stderr).toBe(0);
    expect(tally.refusalsNamed, findings.join('\n')).toBe(tally.refusals);
    expect(tally.takeovers, findings.join('\n')).toBe(tally.takeoversTried);
  });
});
