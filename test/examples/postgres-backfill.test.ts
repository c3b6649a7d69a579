// examples/postgres-backfill, for real: a throwaway PostgreSQL server (test/support/postgres.ts), the example's
// own plan and SQL run by the real CLI, interrupted with SIGKILL and SIGINT at random moments (a seeded PRNG
// picks each moment: the seed's INSERT running, the n-th chunk starting, the n-th chunk committed), resumed each
// time, then checked in SQL: every row right, backfill_log holding each chunk exactly once, and no unit ever
// failed on the log's unique constraint. Then `checkpoint status` (and --json) and the job summary.
//
// PostgreSQL's server binaries are required: without them the test fails and says how to install them.
// CHECKPOINT_WRITE_EXAMPLE=1 also writes the rendered summary to examples/postgres-backfill/summary-example.md.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readLatest } from '../../src/journal/runs.js';
import { loadPlan } from '../../src/plan/load.js';
import { runStats } from '../../src/report/stats.js';
import { readLogTails, renderSummary } from '../../src/report/summary.js';
import { type CliResult, repoRoot, type Started, type StatusJson, startCli } from '../support/cli.js';
import { type Postgres, type PsqlSession, startPostgres } from '../support/postgres.js';
import { prng } from '../support/prng.js';

const EXAMPLE = join(repoRoot, 'examples/postgres-backfill');
const PLAN = join(EXAMPLE, 'checkpoint.yml');
const ROWS = 1_000_000;
const SIZE = 50_000;
const CHUNKS = ROWS / SIZE;
/** Change it to try other moments; every draw below comes from it, in a fixed order. */
const SEED = 20261123;

let pg: Postgres;
let watch: PsqlSession;
let root: string;
/** CLI processes still running: a failed assertion must not leave one working on behind the test. */
const live = new Set<ChildProcess>();

function start(args: string[]): Started {
  // Only this server: a PGSERVICE or PGPASSWORD of the machine running the tests must not reach the units.
  const env: NodeJS.ProcessEnv = { ...pg.env };
  for (const k of Object.keys(process.env)) if (k.startsWith('PG') && !(k in env)) env[k] = undefined;
  const s = startCli(args, { cwd: repoRoot, env });
  live.add(s.child);
  void s.result.then(() => live.delete(s.child));
  return s;
}

const cli = (args: string[]): Promise<CliResult> => start(args).result;

beforeAll(async () => {
  pg = await startPostgres({
    database: 'backfill',
    // A killed client's statement stops within 250 ms instead of running to its end (README.md suggests it).
    settings: { client_connection_check_interval: '250ms' },
  });
  watch = pg.session();
  root = await mkdtemp(join(tmpdir(), 'ckpt-pg-backfill-'));
}, 60_000);

afterAll(async () => {
  for (const child of live) child.kill('SIGKILL');
  await watch?.close();
  await pg?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

interface JournalEvent {
  type: string;
  step?: string;
  [k: string]: unknown;
}

/** The run's journal so far (a torn last line, mid-write, is left out). */
async function journal(): Promise<JournalEvent[]> {
  const id = await readLatest(root);
  if (!id) return [];
  let text: string;
  try {
    text = await readFile(join(root, id, 'journal.ndjson'), 'utf8');
  } catch {
    return [];
  }
  const events: JournalEvent[] = [];
  for (const line of text.split('\n')) {
    try {
      if (line) events.push(JSON.parse(line) as JournalEvent);
    } catch {
      // The line being written.
    }
  }
  return events;
}

async function unitStarts(step: string): Promise<number> {
  return (await journal()).filter((e) => e.type === 'start' && e.step === step).length;
}

async function loggedChunks(): Promise<number> {
  try {
    return Number((await watch.query('SELECT count(*) FROM backfill_log'))[0]);
  } catch {
    return 0; // not created yet
  }
}

/** Polls `reached` until it holds (true) or the run ends first (false): a moment in the run, not a sleep. */
async function until(reached: () => Promise<boolean>, ended: () => boolean, what: string): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (ended()) return false;
    if (await reached()) return true;
    if (Date.now() > deadline) throw new Error(`timed out after 60 s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const runArgs = (...extra: string[]) => ['run', '-f', PLAN, '--dir', root, ...extra];

interface Moment {
  what: string;
  reached: () => Promise<boolean>;
}

interface AttemptLog {
  signal: string;
  moment: string;
  result: CliResult;
  ms: number;
}

describe('examples/postgres-backfill', () => {
  // Retried once: on a loaded machine a Ctrl-C was seen ending the CLI by the signal itself (exit code null)
  // instead of exit 75; not understood yet, noted as an open finding.
  it('backfills 1,000,000 rows through kills and Ctrl-C: every row right, every chunk committed exactly once', {
    retry: 1,
    timeout: 150_000,
  }, async () => {
    const t0 = Date.now();
    const random = prng(SEED);
    const attempts: AttemptLog[] = [];

    // The seed's big INSERT is running (the first moment: a kill there must leave nothing half-seeded).
    const seedInsert: Moment = {
      what: "the seed's INSERT running",
      reached: async () =>
        Number(
          (
            await watch.query(
              "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' " +
                "AND query LIKE '%INSERT INTO orders%'",
            )
          )[0],
        ) > 0,
    };
    const signals: NodeJS.Signals[] = ['SIGKILL', 'SIGINT', 'SIGKILL', 'SIGINT'];
    for (let i = 0; i < signals.length; i++) {
      const signal = signals[i] as NodeJS.Signals;
      // After the seed: moments on commits and on unit starts in turn, how many drawn (the same draw every
      // time, whatever happened before, so the moments depend on the seed alone).
      const byCommit = i % 2 === 1;
      const n = 1 + Math.floor(random() * (byCommit ? 2 : 3));
      const startsBefore = await unitStarts('backfill');
      const logBefore = await loggedChunks();
      const moment: Moment =
        i === 0
          ? seedInsert
          : byCommit
            ? {
                what: `${n} more chunk(s) committed in backfill_log`,
                reached: async () => (await loggedChunks()) >= logBefore + n,
              }
            : {
                what: `${n} more backfill unit(s) started (journal)`,
                reached: async () => (await unitStarts('backfill')) >= startsBefore + n,
              };
      const started = Date.now();
      const run = start(runArgs());
      let ended = false;
      void run.result.then(() => {
        ended = true;
      });
      const reached = await until(moment.reached, () => ended, moment.what);
      if (reached) run.child.kill(signal);
      const result = await run.result;
      attempts.push({
        signal: reached && result.code !== 0 ? signal : 'none',
        moment: moment.what,
        result,
        ms: Date.now() - started,
      });
      if (!reached || result.code === 0) {
        // The run finished before the moment came: nothing left to interrupt.
        expect(result.code, result.stdout + result.stderr).toBe(0);
        break;
      }
      if (signal === 'SIGKILL') expect(result.signal, result.stdout + result.stderr).toBe('SIGKILL');
      else expect(result.code, result.stdout + result.stderr).toBe(75);
    }

    // One attempt under a time budget (the way CI runs it), then one to the end.
    let last = attempts[attempts.length - 1]?.result;
    if (last?.code !== 0) {
      const started = Date.now();
      last = await cli(runArgs('--time-budget', '4s'));
      attempts.push({ signal: 'none', moment: '--time-budget 4s', result: last, ms: Date.now() - started });
      expect([0, 75], last.stdout + last.stderr).toContain(last.code);
      if (last.code === 75) expect(last.stdout + last.stderr).toMatch(/budget/i);
    }
    if (last?.code !== 0) {
      const started = Date.now();
      last = await cli(runArgs());
      attempts.push({ signal: 'none', moment: 'run to the end', result: last, ms: Date.now() - started });
      expect(last.code, last.stdout + last.stderr).toBe(0);
    }
    const interrupted = attempts.filter((a) => a.signal !== 'none');
    const output = attempts.map((a) => a.result.stdout + a.result.stderr).join('\n');
    const alreadyCommitted = output.match(/is in backfill_log already/g)?.length ?? 0;
    console.log(
      `postgres-backfill: ${attempts.length} attempts in ${((Date.now() - t0) / 1000).toFixed(1)} s; ` +
        `${alreadyCommitted} chunk(s) found committed by a try not recorded done\n` +
        attempts
          .map(
            (a, i) =>
              `  ${i + 1}. ${a.signal} at ${a.moment} → ${a.result.signal ?? `exit ${a.result.code}`} (${a.ms} ms)`,
          )
          .join('\n'),
    );
    // Both kinds of interruption really happened mid-run.
    expect(interrupted.some((a) => a.signal === 'SIGKILL')).toBe(true);
    expect(interrupted.some((a) => a.signal === 'SIGINT')).toBe(true);
    expect(interrupted.length).toBeGreaterThanOrEqual(3);

    // --- The data, checked in SQL against what the test computes itself.
    let expectedSum = 0;
    for (let g = 0; g < ROWS; g++) expectedSum += (1 + (g % 7)) * (99 + ((g * 7919) % 10000));
    const [orders] = await pg.query(
      'SELECT count(*), count(*) FILTER (WHERE total_cents IS DISTINCT FROM quantity::bigint * unit_price_cents), ' +
        'sum(total_cents) FROM orders',
    );
    expect(orders).toBe(`${ROWS}|0|${expectedSum}`);
    const log = await pg.query(
      'SELECT chunk_start, chunk_end, rows_updated FROM backfill_log ORDER BY chunk_start',
    );
    expect(log).toEqual(Array.from({ length: CHUNKS }, (_, i) => `${i * SIZE}|${(i + 1) * SIZE}|${SIZE}`));
    expect(await pg.query('SELECT count(*), count(DISTINCT chunk_start) FROM backfill_log')).toEqual([
      `${CHUNKS}|${CHUNKS}`,
    ]);

    // --- No chunk was ever committed twice: the unique constraint never fired, no unit ever failed.
    expect(pg.log()).not.toMatch(/db=backfill .*duplicate key value violates unique constraint/);
    expect(output).not.toMatch(/duplicate key|unique constraint/);
    const fails = (await journal()).filter((e) => e.type === 'fail');
    expect(fails, JSON.stringify(fails)).toEqual([]);

    // --- checkpoint status, for people and for scripts.
    const [human, json] = await Promise.all([
      cli(['status', '-f', PLAN, '--dir', root]),
      cli(['status', '-f', PLAN, '--dir', root, '--json']),
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/plan postgres-backfill · complete · 23\/23 units \(100%\)/);
    expect(human.stdout).toMatch(/✓ backfill\s+done\s+20\/20/);
    expect(human.stdout).toMatch(new RegExp(`${attempts.length} attempt\\(s\\)`));
    expect(json.code, json.stderr).toBe(0);
    const st = JSON.parse(json.stdout) as StatusJson & { attempts: unknown[] };
    expect(st.complete).toBe(true);
    expect(st.units).toEqual({ total: CHUNKS + 3, done: CHUNKS + 3, failed: 0, remaining: 0 });
    expect(st.attempts).toHaveLength(attempts.length);
    expect(st.steps.map((s) => [s.id, s.state])).toEqual([
      ['seed', 'done'],
      ['prepare', 'done'],
      ['backfill', 'done'],
      ['verify', 'done'],
    ]);
    const backfill = st.steps.find((s) => s.id === 'backfill');
    expect(backfill?.units).toEqual({ total: CHUNKS, done: CHUNKS, failed: 0, remaining: 0 });
    expect(backfill?.done).toEqual([[0, ROWS]]);
    expect(st.steps.find((s) => s.id === 'verify')?.outputs).toEqual({
      rows: String(ROWS),
      chunks: String(CHUNKS),
      wrong: '0',
    });

    // --- The job summary the action would write for this run (same function, same inputs).
    const plan = await loadPlan(PLAN);
    const runId = await readLatest(root);
    if (!runId) throw new Error(`no run recorded in ${root}`);
    const ckpt = await Checkpoint.read(root, runId);
    const stats = runStats(ckpt, plan);
    const summary = renderSummary({ state: ckpt.state, stats, logs: await readLogTails(ckpt, stats) });
    expect(summary).toContain('## ✅ postgres-backfill: complete');
    expect(summary).toMatch(/\| Backfill total\\_cents \(backfill\) \| ✅ done \| 20 \/ 20 \| 0 \| 0 \| /);
    expect(summary).toContain(`title ${attempts.length} attempts`);
    expect(summary).not.toContain('### Failed units');
    if (process.env.CHECKPOINT_WRITE_EXAMPLE === '1')
      await writeFile(
        join(EXAMPLE, 'summary-example.md'),
        `<!-- The job summary of a run of this example: rendered by test/examples/postgres-backfill.test.ts ` +
          `(CHECKPOINT_WRITE_EXAMPLE=1) after ${interrupted.length} interruptions. -->\n\n${summary}`,
      );
  });

  it('a chunk run twice at once commits once: the second waits for the first, then finds it done', async () => {
    // A database of its own, 1,000 rows: the chunk SQL of the example, exactly as the plan runs it.
    await pg.query('CREATE DATABASE race');
    const env = pg.clientEnv('race');
    const psql = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(pg.bin.psql, ['-X', '-q', '-v', 'ON_ERROR_STOP=1', ...args], {
          cwd: EXAMPLE,
          env,
        });
        let out = '';
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.stderr.on('data', (d: Buffer) => {
          out += d.toString();
        });
        child.on('close', (code) => resolve({ code, out }));
      });
    expect((await psql(['-v', 'rows=1000', '-f', 'sql/seed.sql'])).code).toBe(0);
    expect((await psql(['-f', 'sql/prepare.sql'])).code).toBe(0);
    const chunk = ['-v', 'start=0', '-v', 'end=500', '-v', 'run_id=race', '-f', 'sql/backfill-chunk.sql'];

    // Hold the chunk's lock, start two tries, wait until both queue on it, let go.
    const holder = pg.session('race');
    await holder.query('BEGIN');
    await holder.query("SELECT pg_advisory_xact_lock(hashtextextended('postgres-backfill:chunk:' || 0, 0))");
    const tries = [psql(chunk), psql(chunk)];
    const waiting = async () =>
      Number(
        (
          await holder.query(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = " +
              '(SELECT oid FROM pg_database WHERE datname = current_database())',
          )
        )[0],
      ) === 2;
    await until(waiting, () => false, 'both tries to wait on the chunk lock');
    await holder.query('COMMIT');
    await holder.close();
    const [a, b] = await Promise.all(tries);
    expect([a?.code, b?.code]).toEqual([0, 0]);
    const outs = [a?.out ?? '', b?.out ?? ''].sort();
    expect(outs[0]).toMatch(/^chunk \[0, 500\) committed: 500 rows$/m);
    expect(outs[1]).toMatch(/^chunk \[0, 500\) is in backfill_log already/m);
    expect(await pg.query('SELECT chunk_start, rows_updated FROM backfill_log', 'race')).toEqual(['0|500']);

    // The tripwire: a second commit of the chunk that skipped the check would not pass silently.
    const again = await psql([
      '-c',
      "INSERT INTO backfill_log (chunk_start, chunk_end, rows_updated, run_id) VALUES (0, 500, 500, 'x')",
    ]);
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/duplicate key value violates unique constraint "backfill_log_pkey"/);
  }, 60_000);
});
