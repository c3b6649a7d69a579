// Campaign `torn-files`: real checkpoints, damaged the ways a crash or a bad disk damages them (a journal cut
// at every byte of its last records, flipped bytes, a deleted snapshot, temp files of an interrupted atomic
// rename). Every damaged copy must either load with at most the damaged record lost — and then resume to
// completion without running again a unit it still records done — or stop with a clear error naming the
// file and the way out. Never a silently different state, never a stack trace.
//
// The base checkpoint has three attempts: two that ended with a failed unit (snapshot written) and one
// SIGKILLed while a unit hung, so the journal runs past the snapshot and its last records include a done.
// Spawning the CLI for each of the ~900 damaged copies would take many minutes (two CLI runs of ~0.7 s
// each), so every truncation offset and flip position is loaded in-process with the real reader
// (Checkpoint.read, the code `status` and `run` use) and judged there; a sample of each kind, 18 copies,
// goes through `status --json` and `run` (or the way out its error names) for real.
import { cp, mkdtemp, readdir, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classify } from '../../src/errors.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import {
  type CliResult,
  pidAlive,
  runCli,
  type StatusJson,
  startCli,
  tempProject,
  waitFor,
} from '../support/cli.js';
import { recordFigures } from './figures.js';
import {
  allUnits,
  doneUnitsOf,
  doneUnitsOfStatus,
  effectUnits,
  type Geometry,
  hasStackTrace,
  liveJournalEvents,
  readRunId,
  unclear,
  unitsIn,
  waitWhileRunning,
} from './support/harness.js';

// A name of its own: the default is the folder's name, and the variants are copies in other folders.
const PLAN = `version: 1
name: torn
concurrency: 2
steps:
  - id: prep
    run: echo "prep 0" >> effects.log
  - id: work
    needs: [prep]
    run: |
      echo "work $CHECKPOINT_BATCH_INDEX" >> effects.log
      if [ -e "fail-$CHECKPOINT_BATCH_INDEX" ]; then exit 3; fi
      if [ -e "block-$CHECKPOINT_BATCH_INDEX" ]; then exec sleep 300; fi
    batch: { range: { from: 0, to: 24 }, size: 2, parallel: 2 }
  - id: names
    needs: [prep]
    run: echo "names $CHECKPOINT_BATCH_INDEX" >> effects.log
    batch: { items: [a, b, c, d, e, f], size: 1 }
  - id: report
    needs: [work, names]
    run: echo "report 0" >> effects.log
`;
const GEOMETRY: Record<string, Geometry> = {
  prep: { from: 0, to: 1, size: 1 },
  work: { from: 0, to: 24, size: 2 },
  names: { from: 0, to: 6, size: 1 },
  report: { from: 0, to: 1, size: 1 },
};
const ALL = allUnits(GEOMETRY);
const WORK_UNITS = 12;
/** Fails with unit 3 in attempts 1 and 2 (if it runs), so that it is surely left for attempt 3. */
const LAST = WORK_UNITS - 1;

type Outcome = 'loaded' | 'error' | 'silent' | 'unclear';

const tally = {
  tried: 0,
  cli: 0,
  loaded: 0,
  error: 0,
  silent: 0,
  unclear: 0,
  stacks: 0,
  resumed: 0,
  wayOut: 0,
};
const findings: string[] = [];

/** The base checkpoint's project, never changed after beforeAll; variants are copies. */
let base: string;
/** The `work` unit that hung in attempt 3 (the one it started last). */
let hung: number;
let runId: string;
let scratch: string;
let snapshotText: string;
let journalText: string;
/** What the scratch copy's checkpoint.json holds now (most variants keep it: no need to write it again). */
let lastSnapshot: string | Buffer | undefined;
/** Byte offset where each journal line starts. */
let lineStarts: number[];
/** Units the undamaged checkpoint records done (status --json). */
let original: Set<string>;

function lineRanges(text: string): number[] {
  const starts = [0];
  const buf = Buffer.from(text);
  for (let i = 0; i < buf.length; i++) if (buf[i] === 10 && i + 1 < buf.length) starts.push(i + 1);
  return starts;
}

/** Done units named by journal lines (whole, parsed independently of the reader under test). */
function doneInLines(lines: string[]): Set<string> {
  const out = new Set<string>();
  for (const l of lines) {
    let ev: { type?: string; step?: string; index?: number };
    try {
      ev = JSON.parse(l) as typeof ev;
    } catch {
      continue;
    }
    if (ev.type === 'done' && ev.step !== undefined) out.add(`${ev.step}:${ev.index}`);
  }
  return out;
}

function journalLines(text: string): string[] {
  return text.split('\n').filter(Boolean);
}

const statusDone = (s: StatusJson) => doneUnitsOfStatus(s, GEOMETRY);
const ckptDone = (ck: Checkpoint) => doneUnitsOf(ck, GEOMETRY);

/**
 * The rule: the damaged copy records done exactly what the original does, minus at most the units whose
 * done record was in the damaged part (`lost`).
 */
function judgeLoaded(done: Set<string>, lost: Set<string>): Outcome {
  for (const u of done) if (!original.has(u)) return 'silent';
  for (const u of original) if (!done.has(u) && !lost.has(u)) return 'silent';
  return 'loaded';
}

function count(what: string, outcome: Outcome, detail = ''): Outcome {
  tally.tried += 1;
  tally[outcome] += 1;
  if (outcome === 'silent' || outcome === 'unclear') findings.push(`${what}: ${outcome} ${detail}`.trim());
  return outcome;
}

/** Loads a run dir holding `snapshot` (undefined: absent) and `journal` with the real reader; judges it. */
async function loadInProcess(
  what: string,
  snapshot: string | Buffer | undefined,
  journal: string | Buffer | undefined,
  lost: Set<string>,
): Promise<Outcome> {
  // The reader looks at these two files only; the rest of the scratch copy stays as it was.
  const dir = join(scratch, runId);
  if (snapshot === undefined) await rm(join(dir, 'checkpoint.json'), { force: true });
  else if (snapshot !== lastSnapshot) await writeFile(join(dir, 'checkpoint.json'), snapshot);
  lastSnapshot = snapshot;
  if (journal === undefined) await rm(join(dir, 'journal.ndjson'), { force: true });
  else await writeFile(join(dir, 'journal.ndjson'), journal);
  let ck: Checkpoint;
  try {
    ck = await Checkpoint.read(scratch, runId);
  } catch (err) {
    const { message } = classify(err);
    const why = unclear(message, /checkpoint\.json|journal\.ndjson/);
    return count(what, why ? 'unclear' : 'error', why ? `${why}: ${message}` : '');
  }
  const done = ckptDone(ck);
  return count(what, judgeLoaded(done, lost), `done ${[...done].sort().join(' ')}`);
}

async function copyBase(): Promise<{ dir: string; runDir: string; effects: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-torn-'));
  await cp(base, dir, { recursive: true });
  return { dir, runDir: join(dir, '.checkpoints', runId), effects: join(dir, 'effects.log') };
}

function cliOutcomeOfError(r: CliResult): Outcome {
  const why = unclear(r.stderr, /checkpoint\.json|journal\.ndjson/);
  return why ? 'unclear' : 'error';
}

/**
 * A damaged copy through the CLI: `status --json`, then `run`. Loaded: the run completes, runs no unit the
 * copy records done, runs none the original records done except `lost`, and every unit left its effect.
 * Refused: both commands give the same clear error, and the way out it names works.
 */
async function throughCli(what: string, damage: (runDir: string) => Promise<void>, lost: Set<string>) {
  const copy = await copyBase();
  try {
    await damage(copy.runDir);
    tally.cli += 1;
    const st = await runCli(['status', '--json'], { cwd: copy.dir });
    if (hasStackTrace(st.stderr)) tally.stacks += 1;
    if (st.code !== 0) {
      const outcome = cliOutcomeOfError(st);
      count(`${what} (cli status)`, outcome, st.stderr.trim());
      const run = await runCli(['run'], { cwd: copy.dir });
      if (hasStackTrace(run.stderr)) tally.stacks += 1;
      expect(run.code, `${what}: run on a refused checkpoint\n${run.stderr}`).toBe(1);
      expect(unclear(run.stderr, /checkpoint\.json|journal\.ndjson/), run.stderr).toBeUndefined();
      // The way out the message names must work: reset --all starts the run over, --new starts another.
      const reset = /checkpoint reset --all/.test(st.stderr);
      if (reset) {
        const r = await runCli(['reset', '--all'], { cwd: copy.dir });
        expect(r.code, `${what}: reset --all\n${r.stderr}`).toBe(0);
      }
      if (reset) {
        // Started over in place, the damaged files kept beside for a post-mortem.
        const kept = (await readdir(copy.runDir)).filter((f) => f.includes('.damaged-'));
        expect(kept.length, `${what}: damaged files kept`).toBeGreaterThan(0);
      }
      const again = await runCli(reset ? ['run'] : ['run', '--new'], { cwd: copy.dir });
      expect(again.code, `${what}: way out\n${again.stdout}${again.stderr}`).toBe(0);
      tally.wayOut += 1;
      return;
    }
    const done = statusDone(JSON.parse(st.stdout) as StatusJson);
    const outcome = count(`${what} (cli)`, judgeLoaded(done, lost), `done ${[...done].sort().join(' ')}`);
    expect(outcome, what).toBe('loaded');
    const before = (await effectUnits(copy.effects)).length;
    const run = await runCli(['run'], { cwd: copy.dir });
    if (hasStackTrace(run.stderr)) tally.stacks += 1;
    expect(run.code, `${what}: resume\n${run.stdout}${run.stderr}`).toBe(0);
    const again = await effectUnits(copy.effects, before);
    for (const u of again) {
      expect(done.has(u), `${what}: ${u} was recorded done in the damaged copy and ran again`).toBe(false);
      if (original.has(u))
        expect(lost.has(u), `${what}: ${u} was recorded done and not damaged, and ran again`).toBe(true);
    }
    const everything = new Set(await effectUnits(copy.effects));
    for (const u of ALL) expect(everything.has(u), `${what}: ${u} never ran`).toBe(true);
    expect(await readRunId(copy.dir), `${what}: resumed the same run`).toBe(runId);
    const final = await Checkpoint.read(join(copy.dir, '.checkpoints'), runId);
    expect([...ckptDone(final)].sort()).toEqual([...ALL].sort());
    tally.resumed += 1;
  } finally {
    await rm(copy.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` over `items`, `n` at a time (the CLI samples are mostly waiting on child processes). */
async function inParallel<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** The flipped file as bytes (flips may make invalid UTF-8, which must reach the reader unchanged). */
function flipBytes(text: string, at: number, mask = 0x20): Buffer {
  const b = Buffer.from(text);
  b[at] = (b[at] as number) ^ mask;
  return b;
}

async function statusOf(dir: string): Promise<StatusJson> {
  const st = await runCli(['status', '--json'], { cwd: dir });
  expect(st.code, st.stderr).toBe(0);
  return JSON.parse(st.stdout) as StatusJson;
}

/**
 * The `work` unit the next attempt starts last: failed units are retried first, then the pending ones in
 * order, so the highest pending unit that did not fail, or else the last unit (failed, retried after 3).
 */
function lastToStart(s: StatusJson): number {
  const work = s.steps.find((st) => st.id === 'work');
  if (!work) throw new Error('status --json lists no step `work`');
  const g = GEOMETRY.work as Geometry;
  const done = unitsIn('work', g, work.done);
  const failed = new Set(work.failed.map((f) => `work:${(f.start - g.from) / g.size}`));
  const pending = Array.from({ length: WORK_UNITS }, (_, i) => i).filter(
    (i) => !done.has(`work:${i}`) && !failed.has(`work:${i}`),
  );
  return pending.at(-1) ?? LAST;
}

/**
 * The longest the set-up waits for attempt 3 to reach its end state: seconds alone, longer beside the other
 * campaigns on two cores. The hook's own timeout leaves room for it and the runs around it.
 */
const SETTLE_MS = 180_000;

beforeAll(async () => {
  const p = await tempProject(PLAN, 'ckpt-torn-base-');
  base = p.dir;
  scratch = await mkdtemp(join(tmpdir(), 'ckpt-torn-scratch-'));
  // Attempts 1 and 2: work unit 3 fails (a failed unit is retried first, so it surely runs in both); each
  // attempt ends with a snapshot. The last unit fails too, if it runs: max-failures stops only the starts
  // after unit 3's failure is recorded, and until then the other slot may run any number of units (beside
  // the other campaigns, unit 3's fail record once took 125 ms to be synced while units 7, 9, 10 and 11 ran). So
  // attempt 3 surely has at least two units to run, whatever the timing.
  await writeFile(join(base, 'fail-3'), '');
  await writeFile(join(base, `fail-${LAST}`), '');
  expect((await runCli(['run'], { cwd: base })).code).toBe(1);
  expect((await runCli(['run'], { cwd: base })).code).toBe(1);
  await rm(join(base, 'fail-3'));
  await rm(join(base, `fail-${LAST}`));
  hung = lastToStart(await statusOf(base));
  // Attempt 3: the unit it starts last hangs (a unit queued behind a hung one would never start: the
  // launcher starts a queued unit only once the one ahead exits). Once every other unit of `work` is
  // recorded done the engine is idle, and the journal ends with the records of the units that finished
  // last: SIGKILL then (no snapshot for this attempt).
  await writeFile(join(base, `block-${hung}`), '');
  runId = await readRunId(base);
  const journal = join(base, '.checkpoints', runId, 'journal.ndjson');
  const run = startCli(['run'], { cwd: base });
  type Event = { type: string; step: string; index: number; pid?: number };
  const pid = await waitWhileRunning(
    run,
    async () => {
      const events = await liveJournalEvents<Event>(journal);
      const lastAttempt = events.map((e) => e.type).lastIndexOf('attempt');
      const done = new Set(events.filter((e) => e.type === 'done' && e.step === 'work').map((e) => e.index));
      const spawned = events
        .slice(lastAttempt)
        .find((e) => e.type === 'spawned' && e.step === 'work' && e.index === hung);
      const others = Array.from({ length: WORK_UNITS }, (_, i) => i).filter((i) => i !== hung);
      return spawned && others.every((i) => done.has(i)) ? spawned.pid : undefined;
    },
    SETTLE_MS,
    `every unit but the hung one (work ${hung}) to be done`,
  );
  run.child.kill('SIGKILL');
  await run.result;
  // The launcher's watcher may have ended the hung unit already (the engine is gone): then it is ESRCH.
  if (pid !== undefined) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
  await waitFor(
    () => (pid === undefined || !pidAlive(pid) ? true : undefined),
    10_000,
    'the hung unit to end',
  );
  await rm(join(base, `block-${hung}`));
  await cp(join(base, '.checkpoints', runId), join(scratch, runId), { recursive: true });
  snapshotText = await readFile(join(base, '.checkpoints', runId, 'checkpoint.json'), 'utf8');
  journalText = await readFile(journal, 'utf8');
  lineStarts = lineRanges(journalText);
  original = statusDone(await statusOf(base));
  // The oracle and the reader agree on the undamaged checkpoint, which lacks only the hung unit and `report`.
  expect([...doneInLines(journalLines(journalText))].sort()).toEqual([...original].sort());
  expect([...ALL].filter((u) => !original.has(u)).sort()).toEqual(['report:0', `work:${hung}`]);
  // A done record among the last three, so the sweep tears one.
  expect(doneInLines(journalLines(journalText).slice(-3)).size).toBeGreaterThan(0);
  // Two runs, the wait and the status: never cut short by the hook's own timeout while the wait still runs.
}, SETTLE_MS + 120_000);

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
  await rm(base, { recursive: true, force: true });
  recordFigures(
    'torn-files',
    [
      { name: 'variants tried', value: tally.tried },
      { name: 'loaded correctly', value: tally.loaded },
      { name: 'stopped with a clear error', value: tally.error },
      { name: 'silently wrong', value: tally.silent, must: '= 0' },
      { name: 'unclear errors', value: tally.unclear, must: '= 0' },
      { name: 'stack traces', value: tally.stacks, must: '= 0' },
    ],
    `${tally.cli} variants through the CLI (status --json, then run: ${tally.resumed} resumed to completion, ` +
      `${tally.wayOut} refused and then recovered by the way out they name), the rest loaded in-process`,
  );
});

describe('torn-files', () => {
  it('a journal cut at every byte offset inside its last 3 records', async () => {
    const seen = findings.length;
    const size = Buffer.byteLength(journalText);
    const firstCut = lineStarts[lineStarts.length - 3] as number;
    const bytes = Buffer.from(journalText);
    for (const withSnapshot of [true, false]) {
      for (let cut = firstCut; cut < size; cut++) {
        const kept = bytes.subarray(0, cut).toString('utf8');
        // Lines not wholly before the cut are lost: the torn one and the ones after it.
        const whole = journalLines(journalText).filter((_, i) => (lineStarts[i + 1] ?? size) <= cut);
        const lost = new Set(
          [...doneInLines(journalLines(journalText))].filter((u) => !doneInLines(whole).has(u)),
        );
        await loadInProcess(
          `cut at ${cut}/${size}${withSnapshot ? '' : ' without checkpoint.json'}`,
          withSnapshot ? snapshotText : undefined,
          kept,
          lost,
        );
      }
    }
    // Through the CLI: the first two records cut in the middle; the last one at its start (a clean cut),
    // in the middle, and just before its newline.
    const samples: Array<{ cut: number; lost: Set<string> }> = [];
    for (let k = lineStarts.length - 3; k < lineStarts.length; k++) {
      const s = lineStarts[k] as number;
      const e = (lineStarts[k + 1] ?? size) - 1;
      for (const cut of k === lineStarts.length - 1 ? [s, (s + e) >> 1, e] : [(s + e) >> 1]) {
        const whole = journalLines(journalText).slice(0, k);
        const all = doneInLines(journalLines(journalText));
        samples.push({ cut, lost: new Set([...all].filter((u) => !doneInLines(whole).has(u))) });
      }
    }
    await inParallel(samples, 3, ({ cut, lost }) =>
      throughCli(
        `cut at ${cut}/${size}`,
        (dir) => writeFile(join(dir, 'journal.ndjson'), bytes.subarray(0, cut)),
        lost,
      ),
    );
    expect(findings.slice(seen)).toEqual([]);
  }, 180_000);

  it('flipped bytes in checkpoint.json and in journal lines', async () => {
    const seen = findings.length;
    const lines = journalLines(journalText);
    const size = Buffer.byteLength(journalText);
    const lastLine = lines.length - 1;
    // Every journal line: one byte inside it and its newline. Only damage to the last line may be taken
    // for a torn write (its record lost); damage before it must stop the command.
    for (let k = 0; k < lines.length; k++) {
      const s = lineStarts[k] as number;
      const e = (lineStarts[k + 1] ?? size) - 1;
      for (const at of [s + ((k * 37) % (e - s)), e]) {
        const lost = k === lastLine ? doneInLines([lines[k] as string]) : new Set<string>();
        await loadInProcess(
          `journal byte ${at} (line ${k + 1} of ${lines.length}) flipped`,
          snapshotText,
          flipBytes(journalText, at),
          lost,
        );
      }
    }
    // checkpoint.json at 64 spread positions and its last byte: rebuilt from the journal, which still holds
    // the whole history, so nothing may be lost.
    const snapSize = Buffer.byteLength(snapshotText);
    const positions = [
      ...Array.from({ length: 64 }, (_, i) => Math.floor((i * snapSize) / 64)),
      snapSize - 1,
    ];
    for (const at of positions)
      await loadInProcess(
        `checkpoint.json byte ${at} flipped`,
        flipBytes(snapshotText, at),
        journalText,
        new Set(),
      );
    const samples: Array<{ what: string; damage: (dir: string) => Promise<void>; lost: Set<string> }> = [];
    for (const at of [snapshotText.indexOf('"done"') + 12, snapshotText.indexOf('sha256:') + 20])
      samples.push({
        what: `checkpoint.json byte ${at} flipped`,
        damage: (dir) => writeFile(join(dir, 'checkpoint.json'), flipBytes(snapshotText, at)),
        lost: new Set(),
      });
    for (const k of [1, lines.findIndex((l) => l.includes('"type":"done"')) + 3, lastLine]) {
      const at = (lineStarts[k] as number) + 20;
      samples.push({
        what: `journal line ${k + 1} flipped`,
        damage: (dir) => writeFile(join(dir, 'journal.ndjson'), flipBytes(journalText, at)),
        lost: k === lastLine ? doneInLines([lines[k] as string]) : new Set(),
      });
    }
    // The newline between the last two lines: they run together into one bad last line, which once passed
    // for a torn write and silently dropped the intact record inside it.
    samples.push({
      what: 'newline before the last journal line flipped',
      damage: (dir) =>
        writeFile(join(dir, 'journal.ndjson'), flipBytes(journalText, (lineStarts[lastLine] as number) - 1)),
      lost: new Set(),
    });
    await inParallel(samples, 3, (v) => throughCli(v.what, v.damage, v.lost));
    expect(findings.slice(seen)).toEqual([]);
  }, 180_000);

  it('checkpoint.json deleted: rebuilt from a whole journal, refused when the journal was cut', async () => {
    const seen = findings.length;
    const lastStart = lineStarts[lineStarts.length - 1] as number;
    const lastDone = doneInLines([journalLines(journalText).at(-1) as string]);
    await inParallel(
      [
        {
          what: 'checkpoint.json deleted',
          damage: (dir: string) => unlink(join(dir, 'checkpoint.json')),
          lost: new Set<string>(),
        },
        {
          what: 'checkpoint.json deleted, journal torn',
          damage: async (dir: string) => {
            await unlink(join(dir, 'checkpoint.json'));
            await writeFile(
              join(dir, 'journal.ndjson'),
              Buffer.from(journalText).subarray(0, lastStart + 30),
            );
          },
          lost: lastDone,
        },
        {
          // A journal cut by compaction (what `compact` leaves) and then its snapshot lost.
          what: 'journal compacted, checkpoint.json deleted',
          damage: async (dir: string) => {
            await compactCopy(dir);
            await unlink(join(dir, 'checkpoint.json'));
          },
          lost: new Set<string>(),
        },
        {
          what: 'journal compacted, checkpoint.json flipped',
          damage: async (dir: string) => {
            await compactCopy(dir);
            const text = await readFile(join(dir, 'checkpoint.json'), 'utf8');
            await writeFile(join(dir, 'checkpoint.json'), flipBytes(text, 200));
          },
          lost: new Set<string>(),
        },
        {
          // Compacted, then an attempt appended events from seq S+1: the journal no longer starts at seq 1.
          what: 'journal compacted then appended to, checkpoint.json deleted',
          damage: async (dir: string) => {
            await compactCopy(dir);
            const r = await runCli(['run'], { cwd: join(dir, '..', '..') });
            expect(r.code, r.stderr).toBe(0);
            await unlink(join(dir, 'checkpoint.json'));
          },
          lost: new Set<string>(),
        },
      ],
      3,
      (v) => throughCli(v.what, v.damage, v.lost),
    );
    // In-process too: the same cases without the CLI's resume.
    await loadInProcess('checkpoint.json deleted', undefined, journalText, new Set());
    expect(findings.slice(seen)).toEqual([]);
  }, 180_000);

  it('temp files of an interrupted atomic rename are ignored', async () => {
    const seen = findings.length;
    const tmpName = (f: string) => `${f}.tmp-${process.pid + 1}-a1b2c3d4e5f6`;
    await inParallel(
      [
        {
          what: 'half-written checkpoint.json.tmp-*',
          damage: (dir: string) =>
            writeFile(join(dir, tmpName('checkpoint.json')), snapshotText.slice(0, snapshotText.length >> 1)),
        },
        {
          what: 'complete checkpoint.json.tmp-* not yet renamed, and a stray latest.tmp-*',
          damage: async (dir: string) => {
            await writeFile(join(dir, tmpName('checkpoint.json')), snapshotText.replace('"seq"', '"seq" '));
            await writeFile(join(dir, '..', tmpName('latest')), 'torn-');
          },
        },
      ],
      2,
      (v) => throughCli(v.what, v.damage, new Set()),
    );
    expect(findings.slice(seen)).toEqual([]);
  }, 120_000);
});

describe("a newer program's checkpoint", () => {
  it('is refused with "upgrade", never rebuilt from its journal nor started over by reset --all', async () => {
    const copy = await copyBase();
    try {
      // A valid checksum: this is not damage, so the journal (that program's too) must not stand in for it.
      const newer = snapshotText.replace('"format": 1,', '"format": 2,');
      expect(newer).not.toBe(snapshotText);
      await writeFile(join(copy.runDir, 'checkpoint.json'), newer);
      for (const args of [['status', '--json'], ['run'], ['reset', '--all']]) {
        const r = await runCli(args, { cwd: copy.dir });
        expect(r.code, `${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(1);
        expect(r.stderr).toMatch(
          /checkpoint\.json: checkpoint format 2 is newer .*upgrade checkpoint-action/,
        );
        expect(hasStackTrace(r.stderr)).toBe(false);
      }
      expect(await readFile(join(copy.runDir, 'checkpoint.json'), 'utf8')).toBe(newer);
      expect((await readdir(copy.runDir)).filter((f) => f.includes('.damaged-'))).toEqual([]);
    } finally {
      await rm(copy.dir, { recursive: true, force: true });
    }
  }, 60_000);
});

/** Compacts a copy with the real code path (the journal is cut only past 8 MiB, so force it). */
async function compactCopy(runDir: string): Promise<void> {
  const root = join(runDir, '..');
  const ck = await Checkpoint.read(root, runId);
  await ck.openForWrite();
  await ck.compact(true);
  await ck.close();
}
