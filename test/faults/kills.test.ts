// Campaign `kills`: `checkpoint run` SIGKILLed at random moments, then resumed, again and again until the run
// completes, over many independent projects. The moments are spread over the whole life of a run: start-up
// (loading, lease takeover from the killed run, ending its orphans), units starting and exiting (journal
// appends, group commits), and the last units and the end-of-attempt snapshot. Units record their own side
// effects outside the checkpoint, so what really ran is known independently of what the checkpoint says.
//
// The judgement, per kill: the units the checkpoint records done right after the kill (before the resume)
// are never started again; the units redone after one kill are at most those in flight (the plan's
// concurrency); at the end every unit has run to its end, the checkpoint loads, and no unit process of any
// attempt is alive (a SIGKILLed run leaves its units running; the next run must end them).
//
// Snapshot compaction: the journal is only cut past 4 MiB (COMPACT_BYTES; test/journal/rotation.test.ts
// kills writers mid-rotation with a smaller one), far beyond what a campaign of this length writes, so the snapshot writes hit are the ones every attempt makes when it ends
// (the near-the-end kills) and when a run is created (the start-up kills on a new project).
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { type Project, runCli, type StatusJson, startCli, tempProject } from '../support/cli.js';
import { recordFigures } from './figures.js';
import { allUnits, doneUnitsOf, doneUnitsOfStatus, type Geometry } from './support/harness.js';
import { CLI_ENV, killAllIn, orphansIn, prng, sleep } from './support/procs.js';

const SEED = Number(process.env.KILLS_SEED ?? 20261123);
/** Kills to reach; projects are started until the campaign has them (at most MAX_PROJECTS). */
const TARGET_KILLS = Number(process.env.KILLS_TARGET ?? 300);
const MAX_PROJECTS = 60;
/** Kills per project before it is left to finish; a project may complete sooner. */
const KILLS_PER_PROJECT = 9;
/** Projects worked on at once: each CLI start is ~0.5 CPU-s, more would only queue on 2 cores. */
const WIDTH = Number(process.env.KILLS_WIDTH ?? 6);
const CONCURRENCY = 3;
/** Every n-th kill is also judged through `checkpoint status --json` (the rest in-process, same reader). */
const STATUS_EVERY = 8;
/**
 * Units in flight: a slot is freed only once its unit's end is written (engine/scheduler.ts, #runUnit), and
 * no unit is started ahead of a slot, so a kill redoes at most the units holding the CONCURRENCY slots.
 */
const IN_FLIGHT = CONCURRENCY;

// Every unit: `start <step> <index> <pid> <round>` on entry, `end <step> <index>` on exit. A few `work` units
// hang the first time they run (while rounds are being killed), so there are long-lived unit processes for
// the next run to find and end. The `end` line is written with SIGTERM ignored: it is all or nothing.
const UNIT = `i=\${CHECKPOINT_BATCH_INDEX:-0}
echo "start $CHECKPOINT_STEP $i $$ \${KILL_ROUND:-0}" >> effects.log
if [ "$CHECKPOINT_STEP" = work ] && [ $((i % 10)) = 7 ] && [ -n "$KILL_ROUND" ] && [ ! -e "linger-$i" ]; then
  : > "linger-$i"; sleep 30
fi
sleep 0.0$((RANDOM % 4))$((RANDOM % 10))
trap '' TERM
echo "end $CHECKPOINT_STEP $i \${KILL_ROUND:-0}" >> effects.log`;

const indent = (s: string) =>
  s
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n');

const PLAN = `version: 1
name: kills
concurrency: ${CONCURRENCY}
steps:
  - id: prep
    run: |
${indent(UNIT)}
  - id: work
    needs: [prep]
    run: |
${indent(UNIT)}
    batch: { range: { from: 0, to: 60 }, size: 1, parallel: 3 }
  - id: names
    needs: [prep]
    run: |
${indent(UNIT)}
    batch: { items: [a, b, c, d, e, f, g, h, i, j], size: 1, parallel: 2 }
  - id: final
    needs: [work, names]
    run: |
${indent(UNIT)}
`;
const GEOMETRY: Record<string, Geometry> = {
  prep: { from: 0, to: 1, size: 1 },
  work: { from: 0, to: 60, size: 1 },
  names: { from: 0, to: 10, size: 1 },
  final: { from: 0, to: 1, size: 1 },
};
const ALL = allUnits(GEOMETRY);

interface Line {
  kind: 'start' | 'end';
  unit: string;
  pid?: number;
  round?: number;
}

async function effects(p: Project, upTo?: number): Promise<Line[]> {
  let text: string;
  try {
    text = await readFile(p.effects, 'utf8');
  } catch {
    return [];
  }
  // A line cut by the offset is not whole yet: drop it.
  if (upTo !== undefined) text = text.slice(0, text.lastIndexOf('\n', upTo - 1) + 1);
  const out: Line[] = [];
  for (const l of text.split('\n')) {
    const f = l.trim().split(/\s+/);
    if (f[0] === 'start' && f.length >= 5)
      out.push({ kind: 'start', unit: `${f[1]}:${f[2]}`, pid: Number(f[3]), round: Number(f[4]) });
    else if (f[0] === 'end' && f.length >= 4)
      out.push({ kind: 'end', unit: `${f[1]}:${f[2]}`, round: Number(f[3]) });
  }
  return out;
}

async function latestOf(p: Project): Promise<string> {
  return (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8').catch(() => '')).trim();
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** Polls (5 ms: the moments aimed at last milliseconds) until `cond` or `timeoutMs`; never fails. */
async function until(cond: () => Promise<boolean>, timeoutMs: number, ended: () => boolean): Promise<void> {
  const by = Date.now() + timeoutMs;
  while (Date.now() < by && !ended()) {
    if (await cond()) return;
    await sleep(5);
  }
}

const tally = {
  projects: 0,
  kills: 0,
  killsAtStartup: 0,
  killsWhileUnitsRan: 0,
  killsNearEnd: 0,
  doneThenRerun: 0,
  neverRun: 0,
  maxRedone: 0,
  maxRunningAtKill: 0,
  maxExitedUnrecorded: 0,
  loadFailures: 0,
  orphans: 0,
  orphansRecorded: 0,
  stuck: 0,
  statusChecks: 0,
  orphansEndedByResume: 0,
  takeovers: 0,
};
const findings: string[] = [];
const projects: Project[] = [];
let ran = false;

/** Kills one project's runs until it completes; returns the kills made. */
async function campaignProject(n: number, rand: () => number): Promise<void> {
  const p = await tempProject(PLAN, 'ckpt-kills-');
  projects.push(p);
  tally.projects += 1;
  /** Per killed round: the units the checkpoint recorded done right after the kill. */
  const doneAfter = new Map<number, Set<string>>();
  /** Per killed round: the effects written before the kill (units cannot be told apart from orphans later). */
  const linesAtKill = new Map<number, Line[]>();
  let kills = 0;
  let complete = false;
  for (let round = 1; !complete && round <= 40; round++) {
    const killing = kills < KILLS_PER_PROJECT;
    const env = { ...CLI_ENV, ...(killing ? { KILL_ROUND: String(round) } : {}) };
    const before = await sizeOf(p.effects);
    const run = startCli(['run'], { cwd: p.dir, env });
    let exited = false;
    void run.result.then(() => {
      exited = true;
    });
    let mode = 'none';
    if (killing) {
      const r = rand();
      if (r < 0.3) {
        // Start-up: loading, taking the dead run's lease over, ending its orphans, creating the run.
        mode = 'startup';
        await until(
          async () => false,
          Math.floor(rand() * 1100),
          () => exited,
        );
      } else if (r < 0.8) {
        // Units starting and ending: journal appends, group commits, the launcher's pipelined starts.
        mode = 'units';
        await until(
          async () => (await sizeOf(p.effects)) > before,
          5000,
          () => exited,
        );
        await sleep(Math.floor(rand() * 150));
      } else {
        // The last units, the end-of-attempt snapshot and step-complete markers.
        mode = 'end';
        const left = Math.floor(rand() * 4);
        await until(
          async () => {
            const ended = new Set((await effects(p)).filter((l) => l.kind === 'end').map((l) => l.unit));
            return ended.size >= ALL.size - left;
          },
          1500,
          () => exited,
        );
        await sleep(Math.floor(rand() * 40));
      }
      if (!exited) run.child.kill('SIGKILL');
    }
    const res = await run.result;
    const out = res.stdout + res.stderr;
    tally.orphansEndedByResume += (out.match(/left running by attempt/g) ?? []).length;
    if (res.signal === 'SIGKILL') {
      kills += 1;
      tally.kills += 1;
      linesAtKill.set(round, await effects(p, await sizeOf(p.effects)));
      if (mode === 'startup') tally.killsAtStartup += 1;
      else if (mode === 'units') tally.killsWhileUnitsRan += 1;
      else tally.killsNearEnd += 1;
      // What the checkpoint records done now, before anything resumes it.
      let runId: string | undefined;
      try {
        runId = (await readFile(join(p.dir, '.checkpoints', 'latest'), 'utf8')).trim();
      } catch {
        // Killed before the run was created: nothing recorded, nothing to judge.
      }
      if (runId !== undefined) {
        // The dead run's lease is still there: the next run has to take it over.
        if ((await sizeOf(join(p.dir, '.checkpoints', runId, 'lock'))) > 0) tally.takeovers += 1;
        try {
          const ck = await Checkpoint.read(join(p.dir, '.checkpoints'), runId);
          const done = doneUnitsOf(ck, GEOMETRY);
          doneAfter.set(round, done);
          if (tally.kills % STATUS_EVERY === 0) {
            tally.statusChecks += 1;
            const st = await runCli(['status', '--json'], { cwd: p.dir, env: CLI_ENV });
            if (st.code !== 0) {
              tally.loadFailures += 1;
              findings.push(`project ${n} round ${round}: status failed (${st.code}): ${st.stderr.trim()}`);
            } else {
              const viaStatus = doneUnitsOfStatus(JSON.parse(st.stdout) as StatusJson, GEOMETRY);
              if ([...viaStatus].sort().join() !== [...done].sort().join()) {
                tally.loadFailures += 1;
                findings.push(`project ${n} round ${round}: status --json and the reader disagree`);
              }
            }
          }
        } catch (err) {
          tally.loadFailures += 1;
          findings.push(`project ${n} round ${round} (${mode}): checkpoint does not load: ${String(err)}`);
        }
      }
    } else if (res.code === 0) {
      complete = true;
    } else if (res.code === 1 && /frozen item list of step "(\S+)" is missing/.test(res.stderr)) {
      // Once a bug (killed between the step-init line and the item list file; fixed, the list is written
      // first). Should it come back: take the way out the error names, as a person would, and go on.
      tally.stuck += 1;
      findings.push(`project ${n} round ${round}: resume refused: ${res.stderr.trim()}`);
      const step = /checkpoint reset (\S+)`/.exec(res.stderr)?.[1] ?? 'names';
      const reset = await runCli(['reset', step], { cwd: p.dir, env: CLI_ENV });
      if (reset.code !== 0) {
        tally.loadFailures += 1;
        findings.push(`project ${n}: the way out failed (${reset.code}): ${reset.stderr.trim()}`);
        break;
      }
    } else {
      tally.loadFailures += 1;
      findings.push(
        `project ${n} round ${round}: run exited ${res.code} ${res.signal ?? ''}: ${res.stderr.trim()}`,
      );
      if (!killing) break;
    }
  }

  const lines = await effects(p);
  // Units recorded done after kill k and started again by a later round.
  for (const [k, done] of doneAfter) {
    const rerun = new Set(
      lines.filter((l) => l.kind === 'start' && (l.round ?? 0) > k && done.has(l.unit)).map((l) => l.unit),
    );
    // Round 0 is the final, unkilled resume: it comes after every kill.
    for (const l of lines) if (l.kind === 'start' && l.round === 0 && done.has(l.unit)) rerun.add(l.unit);
    if (rerun.size > 0)
      findings.push(`project ${n}: recorded done after kill ${k}, run again: ${[...rerun].join(' ')}`);
    tally.doneThenRerun += rerun.size;
    // Redone after kill k: started by round k, not recorded done, started again later. Of those, the ones
    // whose process was still running at the kill, and the ones that had exited (their `end` written) but
    // whose end the engine had not yet journaled.
    const atKill = linesAtKill.get(k) ?? [];
    const startedK = new Set(atKill.filter((l) => l.kind === 'start' && l.round === k).map((l) => l.unit));
    const endedK = new Set(atKill.filter((l) => l.kind === 'end' && l.round === k).map((l) => l.unit));
    const later = new Set(
      lines.filter((l) => l.kind === 'start' && ((l.round ?? 0) > k || l.round === 0)).map((l) => l.unit),
    );
    const redone = [...startedK].filter((u) => !done.has(u) && later.has(u));
    const running = redone.filter((u) => !endedK.has(u));
    const exited = redone.filter((u) => endedK.has(u));
    tally.maxRedone = Math.max(tally.maxRedone, redone.length);
    tally.maxRunningAtKill = Math.max(tally.maxRunningAtKill, running.length);
    tally.maxExitedUnrecorded = Math.max(tally.maxExitedUnrecorded, exited.length);
    if (redone.length > CONCURRENCY)
      findings.push(
        `project ${n}: ${redone.length} units redone after kill ${k}: running ${running.join(' ') || '-'}; ` +
          `exited, end not journaled ${exited.join(' ') || '-'}`,
      );
  }
  const ended = new Set(lines.filter((l) => l.kind === 'end').map((l) => l.unit));
  const missing = [...ALL].filter((u) => !ended.has(u));
  tally.neverRun += missing.length;
  if (missing.length > 0) findings.push(`project ${n}: never ran to the end: ${missing.join(' ')}`);
  if (complete) {
    const st = await runCli(['status', '--json'], { cwd: p.dir, env: CLI_ENV });
    if (st.code !== 0 || !(JSON.parse(st.stdout) as StatusJson).complete) {
      tally.loadFailures += 1;
      findings.push(`project ${n}: final status (${st.code}) not complete: ${st.stderr.trim()}`);
    }
  }
  const orphans = await orphansIn(p.dir);
  tally.orphans += orphans.length;
  if (orphans.length > 0) {
    // A unit whose `spawned` record had not reached the journal is ended by its launcher (it sees the engine
    // gone); one the journal does name is ended by the next run. Either left alive is a failure.
    const journal = await readFile(
      join(p.dir, '.checkpoints', await latestOf(p), 'journal.ndjson'),
      'utf8',
    ).catch(() => '');
    const recorded = orphans.filter((o) => journal.includes(`"pid":${o.pgid},`));
    tally.orphansRecorded += recorded.length;
    findings.push(
      `project ${n}: alive after the resume (${recorded.length} of a group the journal recorded): ` +
        orphans
          .map((o) => `pid ${o.pid} ppid ${o.ppid} pgid ${o.pgid}: ${o.cmdline.replace(/\s+/g, ' ')}`)
          .join('; '),
    );
  }
  killAllIn(p.dir);
}

describe('kills', () => {
  afterAll(async () => {
    for (const p of projects) killAllIn(p.dir);
    await Promise.all(projects.map((p) => p.cleanup()));
    if (!ran) return;
    recordFigures(
      'kills',
      [
        { name: 'kills', value: tally.kills, must: `>= ${TARGET_KILLS}` },
        { name: 'units recorded done and run again', value: tally.doneThenRerun, must: '= 0' },
        { name: 'units never run', value: tally.neverRun, must: '= 0' },
        { name: 'most units redone after one kill', value: tally.maxRedone, must: `<= ${IN_FLIGHT}` },
        { name: 'checkpoints that failed to load', value: tally.loadFailures, must: '= 0' },
        { name: 'resumes refused until a manual reset', value: tally.stuck, must: '= 0' },
        { name: 'orphan unit processes alive after the resume', value: tally.orphans, must: '= 0' },
      ],
      `seed ${SEED}, ${tally.projects} projects of ${ALL.size} units (concurrency ${CONCURRENCY}); kills at start-up ` +
        `${tally.killsAtStartup}, while units ran ${tally.killsWhileUnitsRan}, near the end ${tally.killsNearEnd}; ` +
        `orphaned units ended by resumes ${tally.orphansEndedByResume}; kills that left a lease for the resume to take over ${tally.takeovers}; ` +
        `${tally.statusChecks} kills also judged through status --json` +
        `; most units running at one kill ${tally.maxRunningAtKill}, exited but not yet journaled ` +
        `${tally.maxExitedUnrecorded} (a slot holds its unit until its end is written: at most ${CONCURRENCY} ` +
        `in flight, running or exited)` +
        (findings.length > 0 ? `. First findings: ${findings.slice(0, 3).join(' | ')}` : ''),
    );
  });

  it('SIGKILLed runs resume without running a recorded unit again, losing one, or leaving orphans', async () => {
    ran = true;
    const rand = prng(SEED);
    let started = 0;
    const lane = async () => {
      while (tally.kills < TARGET_KILLS && started < MAX_PROJECTS) {
        const n = started++;
        await campaignProject(n, prng(Math.floor(rand() * 2 ** 32)));
      }
    };
    await Promise.all(Array.from({ length: WIDTH }, lane));
    console.log(`kills: ${JSON.stringify(tally)}\n${findings.join('\n')}`);
    expect(tally.kills).toBeGreaterThanOrEqual(TARGET_KILLS);
    expect(tally.doneThenRerun, findings.join('\n')).toBe(0);
    expect(tally.neverRun, findings.join('\n')).toBe(0);
    expect(tally.loadFailures, findings.join('\n')).toBe(0);
    // Units still running at a kill are bounded by the concurrency.
    expect(tally.maxRunningAtKill, findings.join('\n')).toBeLessThanOrEqual(CONCURRENCY);
    expect(tally.orphansRecorded, findings.join('\n')).toBe(0);
    expect(tally.maxRedone, findings.join('\n')).toBeLessThanOrEqual(IN_FLIGHT);
    expect(tally.orphans, findings.join('\n')).toBe(0);
    expect(tally.stuck, findings.join('\n')).toBe(0);
    // Bounded by its work (TARGET_KILLS kills over at most MAX_PROJECTS projects), not by a wait: 203 s
    // beside the other campaigns under \`stress-ng --cpu 2\`, past 300 s at a load average of 20 on two cores.
  }, 600_000);
});
