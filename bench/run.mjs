#!/usr/bin/env node
// Benchmark of the built `checkpoint` CLI (dist/cli/), measured in one run on this machine, against the
// targets of issue 11. Every unit of every tool is a fresh `bash -eo pipefail -c CMD` (the engine starts each
// unit so, in its own process group; xargs and GNU parallel exec the same command line per unit).
//
//   1. Throughput: 5,000 no-op units (`true`), 2 at a time, for
//      a. `checkpoint run` with its checkpoint directory on disk,
//      b. `xargs -P2` running `bash -eo pipefail -c true` (the floor: nothing recorded),
//      c. GNU parallel `-j2 --joblog` (installed with apt-get when missing),
//      d. `checkpoint run` with its checkpoint directory on tmpfs (/dev/shm), where fsync costs ~nothing;
//         the CLI has no "journal off" switch, so (a - d) / d is the cost of durable journaling.
//      Targets: a ≥ 0.8 × b, a > 1 × c, (a - d) / d < 10 %.
//   2. 240 units of `sleep 0.05`, 4 at a time: `checkpoint run` vs `xargs -P4` on the same commands (≥ 0.95 ×).
//   3. Memory: peak RSS of the checkpoint process during a short attempt (stopped by --time-budget) over a
//      10,000,000-unit range (size 1, units `true`) and over a 2,000,000-item `items: { command: "seq
//      2000000" }` list: each < 150 MB. The figure is VmHWM from /proc/self/status, read by an `--import`ed
//      hook in the CLI's own process on its 'exit' event (so just before it exits); /proc/<pid>/status is
//      also polled every 100 ms as a cross-check (latest.json). Then `checkpoint status` on each: < 0.5 s.
//   4. The checkpoint folder of a finished run whose units all print a line: < 100 files and < 5 MB.
//      a. real: a run of 20,000 printing units (fewer when 1a says it would take over ~120 s here; the row
//         says how many), run to the end by the engine;
//      b. synthetic: a 1,000,000-unit plan whose checkpoint is made done (below), then finished by a real
//         `checkpoint run` (which has nothing left to run and completes the run).
//      The engine keeps no per-unit files: logs only of failed, timed-out or interrupted units, at most
//      LOGS_PER_STEP per step (src/engine/recorder.ts); successful units' output goes to the live log only.
//   5. Resume planning on checkpoints holding 1,000,000 done units (one contiguous interval, and 1,000,000
//      one-unit intervals): `checkpoint status` and `checkpoint run --dry-run`: < 1 s.
//
// Big checkpoints are made from a real one: a tiny real run of the same plan (stopped by --time-budget)
// creates the run with the engine's own step fingerprint; the bench then reads its checkpoint.json with the
// engine's own snapshot module (src/journal/snapshot.ts, loaded through the test resolver), replaces the done
// intervals, and writes it back with the same module. Every generated checkpoint is read back through
// `checkpoint status --json`. The CLI bundle (dist/cli/, all its chunks) is copied once at start, so a
// concurrent rebuild of dist/ cannot change or break it mid-run.
//
// Writes bench/results/latest.json, latest.md and throughput.svg, and the docs' chart docs/images/bench.svg
// (bench/chart.mjs). Usage: `npm run bench:engine` (~10-15 min on a busy 2-core machine). Knobs: BENCH_FULL=1:
// three rounds of the 5,000-unit runs whatever the time they take; BENCH_UNITS=N: N units instead of 5,000
// in section 1; BENCH_FOLDER_UNITS=N: N printing units in 4a (no scaling down); BENCH_CLI=path/index.js:
// bench that build (its folder) instead of dist/cli.

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const RESULTS = path.join(HERE, 'results');
// BENCH_CLI=path/to/index.js: another build of the CLI (say, of another commit), to compare without touching dist/.
const DIST_CLI = process.env.BENCH_CLI
  ? path.resolve(process.env.BENCH_CLI)
  : path.join(REPO, 'dist', 'cli', 'index.js');

const UNITS = Number(process.env.BENCH_UNITS) || 5000;
const PARALLEL = 2;
const REPEATS = 3;
/** Time allowed for section 1 before it stops adding rounds (the whole bench aims at ≤ 15 min). */
const THROUGHPUT_BUDGET_MS = 240_000;
const FULL = process.env.BENCH_FULL === '1';
const SLEEP_UNITS = 240;
const SLEEP_PARALLEL = 4;
const MEM_RANGE = 10_000_000;
const MEM_ITEMS = 2_000_000;
/** The short attempts of section 3: stopped by their own time budget, or by SIGINT after MEM_GUARD_MS. */
const MEM_BUDGET = '5s';
const MEM_GUARD_MS = 120_000;
const FOLDER_UNITS_MAX = 20_000;
const FOLDER_UNITS_FIXED = Number(process.env.BENCH_FOLDER_UNITS) || undefined;
/** Section 4a is scaled down (not below 5,000 units) when 1a's rate says it would take longer than this. */
const FOLDER_RUN_AIM_MS = 120_000;
const FOLDER_SYNTH = 1_000_000;
const RESUME_DONE = 1_000_000;
const RESUME_RANGE = 2_000_000;
const TMPFS_MAGIC = 0x01021994;

const TARGETS = {
  vsXargs: 0.8,
  vsParallel: 1,
  journalOverheadPct: 10,
  sleepVsXargs: 0.95,
  memoryMB: 150,
  statusSeconds: 0.5,
  folderFiles: 100,
  folderMB: 5,
  resumeSeconds: 1,
};

const problems = [];
const notes = [];

// ---------------------------------------------------------------------------------------------------- helpers

function log(msg) {
  process.stderr.write(`[bench] ${msg}\n`);
}

function median(values) {
  if (values.length === 0) return undefined;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function fsType(p) {
  try {
    return fs.statfsSync(p).type === TMPFS_MAGIC ? 'tmpfs' : 'disk';
  } catch {
    return 'unknown';
  }
}

function tail(text, lines = 12) {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Runs a command once with stdout to /dev/null (or captured) and returns its wall time. Stdin is /dev/null
 * unless `input` is given; stderr is captured for error reports.
 */
// Every command runs under a small bash wrapper whose `times` builtin reports the CPU time (user + sys) of
// everything it waited for, grandchildren included: less sensitive than wall time to other load on the machine.
const CPU_WRAPPER = 'f=$1; shift; "$@"; rc=$?; times > "$f"; exit $rc';
let timesCounter = 0;

function parseTimes(file) {
  try {
    const children = fs.readFileSync(file, 'utf8').trim().split('\n')[1] ?? '';
    const secs = [...children.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
    return secs.length === 2 ? (secs[0] + secs[1]) * 1000 : undefined;
  } catch {
    return undefined;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

function timed(cmd, args, { cwd = REPO, captureStdout = false, env = process.env } = {}) {
  timesCounter += 1;
  const timesFile = path.join(WORK, `times-${timesCounter}`);
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('bash', ['-c', CPU_WRAPPER, 'bash', timesFile, cmd, ...args], {
      cwd,
      env,
      stdio: ['ignore', captureStdout ? 'pipe' : 'ignore', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout?.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('error', (e) => {
      resolve({
        ms: performance.now() - t0,
        code: null,
        signal: null,
        stdout: out,
        stderr: `${err}${e.message}`,
      });
    });
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      resolve({ ms, cpuMs: parseTimes(timesFile), code, signal, stdout: out, stderr: err });
    });
  });
}

function describeRun(cmd, args, r) {
  const shownCmd = [cmd, ...args].map((a) => (/[\s|'"]/.test(a) ? `'${a}'` : a)).join(' ');
  return `\`${shownCmd}\` exited ${r.code ?? r.signal}${r.stderr.trim() ? `; stderr:\n${tail(r.stderr)}` : ''}`;
}

function sh(script) {
  return spawnSync('bash', ['-c', script], { encoding: 'utf8' });
}

function fmtSec(ms) {
  if (ms === undefined) return 'n/a';
  return ms < 10_000 ? `${(ms / 1000).toFixed(3)} s` : `${(ms / 1000).toFixed(1)} s`;
}

function fmtRate(r) {
  return r === undefined ? 'n/a' : `${Math.round(r).toLocaleString('en-US')} units/s`;
}

function fmtBytes(b) {
  return b < 1e6 ? `${(b / 1e3).toFixed(1)} kB` : `${(b / 1e6).toFixed(1)} MB`;
}

function verdict(ok) {
  return ok === undefined ? 'n/a' : ok ? 'PASS' : 'MISS';
}

// ------------------------------------------------------------------------------------ engine modules
// The engine's own snapshot code (Node 24 strips the types; the resolver maps `./x.js` imports to `x.ts`).

if (!process.features.typescript) {
  console.error(
    `bench: Node ${process.version} does not run TypeScript (src/journal/snapshot.ts); use Node 24: \`npm run bench:engine\` runs the one in node_modules/.bin`,
  );
  process.exit(1);
}
register('../test/support/ts-resolve.mjs', import.meta.url);
const { parseSnapshot, serializeSnapshot } = await import('../src/journal/snapshot.ts');
const { IntervalSet } = await import('../src/journal/intervals.ts');
const { LOGS_PER_STEP } = await import('../src/engine/recorder.ts');

// ------------------------------------------------------------------------------------------------ set-up

if (!fs.existsSync(DIST_CLI)) {
  console.error(`bench: ${path.relative(REPO, DIST_CLI)} is missing; run \`npm run build\` first`);
  process.exit(1);
}
const WORK = fs.mkdtempSync(path.join(os.tmpdir(), 'checkpoint-bench-'));
let diskRoot = WORK;
if (fsType(WORK) === 'tmpfs') {
  // The "journal on disk" row needs a real disk; fall back to a folder inside the repository.
  diskRoot = path.join(RESULTS, `disk-${process.pid}.tmp`);
  fs.mkdirSync(diskRoot, { recursive: true });
  notes.push(`${os.tmpdir()} is tmpfs; the on-disk checkpoint dirs were put under bench/results instead`);
}
const shmBase = fs.existsSync('/dev/shm') && fsType('/dev/shm') === 'tmpfs' ? '/dev/shm' : undefined;
const SHM = shmBase ? fs.mkdtempSync(path.join(shmBase, 'checkpoint-bench-')) : undefined;

// One consistent copy of the CLI bundle for the whole run (dist/ may be rebuilt by someone else meanwhile).
// The bundle is split into chunks (NNN.index.js) loaded on demand: the whole folder is copied.
const CLI_DIR = path.join(WORK, 'cli');
fs.mkdirSync(CLI_DIR);
const hash = createHash('sha256');
for (const f of fs.readdirSync(path.dirname(DIST_CLI)).sort()) {
  const from = path.join(path.dirname(DIST_CLI), f);
  if (!fs.statSync(from).isFile()) continue;
  fs.copyFileSync(from, path.join(CLI_DIR, f));
  if (f.endsWith('.js')) hash.update(f).update(fs.readFileSync(from));
}
const CLI = path.join(CLI_DIR, path.basename(DIST_CLI));
const cliSha = hash.digest('hex').slice(0, 16);
const NODE = process.execPath;

// The memory hook (section 3): the CLI's own process writes its /proc/self/status on 'exit'.
const HWM_DIR = path.join(WORK, 'hwm');
fs.mkdirSync(HWM_DIR);
const HWM_HOOK = path.join(WORK, 'hwm-hook.mjs');
fs.writeFileSync(
  HWM_HOOK,
  [
    "import { readFileSync, writeFileSync } from 'node:fs';",
    `process.on('exit', () => { try { writeFileSync(${JSON.stringify(HWM_DIR)} + '/' + process.pid, readFileSync('/proc/self/status', 'utf8')); } catch {} });`,
    '',
  ].join('\n'),
);

function cleanup() {
  for (const d of [WORK, SHM, diskRoot]) if (d) fs.rmSync(d, { recursive: true, force: true });
}
process.on('exit', cleanup);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    cleanup();
    process.exit(130);
  });
}

const gitCommit = sh(`git -C ${JSON.stringify(REPO)} rev-parse --short HEAD`).stdout.trim() || 'unknown';
const gitDirty = sh(`git -C ${JSON.stringify(REPO)} status --porcelain -- src`).stdout.trim() !== '';
const machine = {
  cpus: os.cpus().length,
  cpuModel: os.cpus()[0]?.model ?? 'unknown',
  memGiB: Math.round(os.totalmem() / 2 ** 30),
  kernel: `${os.type()} ${os.release()}`,
  node: process.version,
  bash: sh('bash --version | head -1').stdout.trim(),
  diskDir: `${diskRoot} (${fsType(diskRoot)})`,
  tmpfsDir: SHM ? `${SHM} (${fsType(SHM)})` : 'none',
};
const uptimeAtStart = sh('uptime').stdout.trim();
log(`node ${process.version}, ${machine.cpus} CPUs, CLI ${path.relative(REPO, DIST_CLI)} sha256:${cliSha}`);
log(`uptime: ${uptimeAtStart}`);

// --------------------------------------------------------------------------------------- GNU parallel

function gnuParallelVersion() {
  const r = spawnSync('parallel', ['--version'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const first = (r.stdout ?? '').split('\n')[0];
  return r.status === 0 && first.startsWith('GNU parallel') ? first : undefined;
}

function ensureGnuParallel() {
  let v = gnuParallelVersion();
  if (v) return { version: v };
  if (process.getuid?.() !== 0)
    return { error: 'GNU parallel is not installed and the bench is not root (apt-get needs root)' };
  log('GNU parallel missing: apt-get install -y parallel');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const install = () => spawnSync('apt-get', ['install', '-y', 'parallel'], { encoding: 'utf8', env });
  let r = install();
  if (r.status !== 0) {
    log('install failed: apt-get update, then retry');
    spawnSync('apt-get', ['update'], { encoding: 'utf8', env });
    r = install();
  }
  v = gnuParallelVersion();
  if (v) return { version: v, installed: true };
  return { error: `apt-get install -y parallel failed: ${tail(`${r.stdout ?? ''}${r.stderr ?? ''}`, 4)}` };
}

// ------------------------------------------------------------------------------------ plans and checks

function writePlan(name, { run, range, items, parallel = PARALLEL }) {
  const file = path.join(WORK, name, 'checkpoint.yml');
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(
    file,
    [
      'version: 1',
      `name: bench-${name}`,
      'shell: bash',
      `concurrency: ${parallel}`,
      'steps:',
      '  - id: work',
      `    run: ${JSON.stringify(run)}`,
      '    batch:',
      range !== undefined
        ? `      range: { from: 0, to: ${range} }`
        : `      items: { command: ${JSON.stringify(items)} }`,
      '      size: 1',
      `      parallel: ${parallel}`,
      '',
    ].join('\n'),
  );
  return file;
}

async function cliJson(args) {
  const r = await timed(NODE, [CLI, ...args], { captureStdout: true });
  try {
    return { r, doc: JSON.parse(r.stdout) };
  } catch {
    return { r, doc: undefined };
  }
}

const shownArgs = (args) => args.map((a) => (a === CLI ? 'dist/cli/index.js' : a));

/** Runs `checkpoint run` to the end and checks with `status --json` that every unit is done. */
async function runToEnd(plan, dir, units, { env = process.env, captureStdout = false } = {}) {
  const args = [CLI, 'run', '-f', plan, '--dir', dir];
  const r = await timed(NODE, args, { env, captureStdout });
  const sample = { ms: r.ms, cpuMs: r.cpuMs, code: r.code };
  if (r.code !== 0) {
    sample.error = describeRun('node', shownArgs(args), r);
    return { sample, r };
  }
  const { doc } = await cliJson(['status', '-f', plan, '--dir', dir, '--json']);
  const done = doc?.units?.done;
  if (done !== units || doc?.complete !== true) {
    sample.error = `checkpoint run exited 0 but \`status --json\` reports ${done} of ${units} units done (complete: ${doc?.complete})`;
  }
  return { sample, r };
}

function latestRunDir(dir) {
  return path.join(dir, fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim());
}

/** Every file under `dir` (recursively, links not followed) and their bytes, with the folders that hold them. */
function countFolder(dir) {
  let files = 0;
  let bytes = 0;
  const byFolder = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else {
        files += 1;
        const size = fs.lstatSync(p).size;
        bytes += size;
        // The run's folder is named after its id: shown as <run> so that the rows read the same every time.
        const rel = (path.relative(dir, d) || '.').replace(/^[^/]+-\d{8}-\d{6}(?=\/|$)/, '<run>');
        byFolder[rel] ??= { files: 0, bytes: 0 };
        byFolder[rel].files += 1;
        byFolder[rel].bytes += size;
      }
    }
  };
  walk(dir);
  return { files, bytes, byFolder };
}

// ------------------------------------------------------------------------------------ 1. throughput

const NOOP_PLAN = writePlan('noop', { run: 'true', range: UNITS });

let dirCounter = 0;
async function measureCheckpoint(base, plan = NOOP_PLAN, units = UNITS) {
  dirCounter += 1;
  const dir = path.join(base, `ck-${dirCounter}`);
  const { sample } = await runToEnd(plan, dir, units);
  if (!sample.error) sample.journalBytes = fs.statSync(path.join(latestRunDir(dir), 'journal.ndjson')).size;
  fs.rmSync(dir, { recursive: true, force: true });
  return sample;
}

async function measureXargs(units = UNITS, parallel = PARALLEL, command = 'true') {
  const script = `seq 0 ${units - 1} | xargs -P${parallel} -I{} bash -eo pipefail -c ${JSON.stringify(command)}`;
  const r = await timed('bash', ['-c', script]);
  return {
    ms: r.ms,
    cpuMs: r.cpuMs,
    code: r.code,
    ...(r.code === 0 ? {} : { error: describeRun('bash', ['-c', script], r) }),
  };
}

let joblogCounter = 0;
async function measureParallel() {
  joblogCounter += 1;
  const joblog = path.join(WORK, `joblog-${joblogCounter}`);
  const script = `seq 0 ${UNITS - 1} | parallel -j${PARALLEL} --joblog ${joblog} bash -eo pipefail -c true`;
  const r = await timed('bash', ['-c', script]);
  const sample = { ms: r.ms, cpuMs: r.cpuMs, code: r.code };
  if (r.code !== 0) sample.error = describeRun('bash', ['-c', script], r);
  else {
    const rows = fs.readFileSync(joblog, 'utf8').trim().split('\n').slice(1);
    const ok = rows.filter((l) => l.split('\t')[6] === '0').length;
    if (ok !== UNITS) sample.error = `GNU parallel joblog lists ${ok} successful jobs of ${UNITS}`;
  }
  return sample;
}

function summarize(row, units) {
  const good = row.samples.filter((s) => !s.error);
  for (const s of row.samples) if (s.error) problems.push(`${row.label}: ${s.error}`);
  row.n = good.length;
  row.medianMs = median(good.map((s) => s.ms));
  row.unitsPerSec = row.medianMs === undefined ? undefined : units / (row.medianMs / 1000);
  row.cpuMs = median(good.map((s) => s.cpuMs).filter((c) => c !== undefined));
  const jb = good.map((s) => s.journalBytes).filter((b) => b !== undefined);
  if (jb.length) row.journalBytes = median(jb);
}

/** Runs each runner once per round, in order, so that drift in machine load hits every row alike. */
async function rounds(rows, runners, { budgetMs, label }) {
  const t0 = performance.now();
  let n = 0;
  let lastRoundMs = 0;
  while (n < REPEATS) {
    if (n > 0 && budgetMs !== undefined && !FULL && performance.now() - t0 + lastRoundMs > budgetMs) break;
    const r0 = performance.now();
    for (const [key, fn] of runners) {
      const row = rows[key];
      if (row.skipped) continue;
      log(`${label} round ${n + 1}: ${row.label}`);
      const loadBefore = os.loadavg()[0];
      const s = await fn();
      s.load1Before = Number(loadBefore.toFixed(2));
      row.samples.push(s);
      log(`  ${fmtSec(s.ms)}${s.error ? ` FAILED: ${s.error}` : ''}`);
    }
    lastRoundMs = performance.now() - r0;
    n += 1;
  }
  return { rounds: n, lastRoundMs };
}

const throughputRows = {
  ckDisk: { label: 'checkpoint run, journal on disk', samples: [] },
  xargs: { label: `xargs -P${PARALLEL} bash -eo pipefail -c true (floor)`, samples: [] },
  parallel: { label: `GNU parallel -j${PARALLEL} --joblog bash -eo pipefail -c true`, samples: [] },
  ckTmpfs: { label: 'checkpoint run, journal on tmpfs (fsync ~free)', samples: [] },
};

const gnu = ensureGnuParallel();
if (gnu.error) {
  throughputRows.parallel.skipped = gnu.error;
  problems.push(`GNU parallel row skipped: ${gnu.error}`);
}
if (!SHM) {
  throughputRows.ckTmpfs.skipped = '/dev/shm is not a tmpfs here';
  problems.push('journal-on-tmpfs row skipped: /dev/shm is not a tmpfs');
}

const loadAtStart = os.loadavg();
const t1 = performance.now();
const r1 = await rounds(
  throughputRows,
  [
    // The two checkpoint runs back to back, so that drift in machine load hits both sides of (a - d) / d alike.
    ['ckDisk', () => measureCheckpoint(diskRoot)],
    ['ckTmpfs', () => measureCheckpoint(SHM)],
    ['xargs', () => measureXargs()],
    ['parallel', measureParallel],
  ],
  { budgetMs: THROUGHPUT_BUDGET_MS, label: `throughput (${UNITS} units)` },
);
if (r1.rounds < REPEATS) {
  notes.push(
    `the ${UNITS.toLocaleString('en-US')}-unit runs of section 1 ran ${r1.rounds === 1 ? 'once each' : `${r1.rounds} times each`} ` +
      `(a round took ${fmtSec(r1.lastRoundMs)}; ${REPEATS} rounds would not fit the section's ${THROUGHPUT_BUDGET_MS / 60_000} min budget; BENCH_FULL=1 forces ${REPEATS})`,
  );
}
for (const row of Object.values(throughputRows)) summarize(row, UNITS);

const ratio = (a, b) => (a === undefined || b === undefined ? undefined : a / b);
const vsParallel = ratio(throughputRows.ckDisk.unitsPerSec, throughputRows.parallel.unitsPerSec);
const vsXargs = ratio(throughputRows.ckDisk.unitsPerSec, throughputRows.xargs.unitsPerSec);
const overheadPct =
  throughputRows.ckDisk.medianMs === undefined || throughputRows.ckTmpfs.medianMs === undefined
    ? undefined
    : ((throughputRows.ckDisk.medianMs - throughputRows.ckTmpfs.medianMs) / throughputRows.ckTmpfs.medianMs) *
      100;
const section1Ms = performance.now() - t1;

// ------------------------------------------------------------------------------- 2. sleeping units

const SLEEP_PLAN = writePlan('sleep', { run: 'sleep 0.05', range: SLEEP_UNITS, parallel: SLEEP_PARALLEL });
const sleepRows = {
  ck: { label: 'checkpoint run, journal on disk', samples: [] },
  xargs: { label: `xargs -P${SLEEP_PARALLEL} bash -eo pipefail -c 'sleep 0.05'`, samples: [] },
};
const t2 = performance.now();
await rounds(
  sleepRows,
  [
    ['ck', () => measureCheckpoint(diskRoot, SLEEP_PLAN, SLEEP_UNITS)],
    ['xargs', () => measureXargs(SLEEP_UNITS, SLEEP_PARALLEL, 'sleep 0.05')],
  ],
  { label: `sleep 0.05 (${SLEEP_UNITS} units)` },
);
for (const row of Object.values(sleepRows)) summarize(row, SLEEP_UNITS);
const sleepVsXargs = ratio(sleepRows.ck.unitsPerSec, sleepRows.xargs.unitsPerSec);
const section2Ms = performance.now() - t2;

// ---------------------------------------------------------------------------------------- 3. memory

const statusKB = (text, key) => {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text ?? '');
  return m ? Number(m[1]) : undefined;
};

/**
 * A short attempt of `plan` (its own --time-budget stops it; SIGINT after MEM_GUARD_MS if it does not):
 * the CLI runs as the direct child, with the exit hook that saves its /proc/self/status; its status file
 * is also polled every 100 ms.
 */
function measurePeak(plan, dir) {
  const args = [
    '--import',
    pathToFileURL(HWM_HOOK).href,
    CLI,
    'run',
    '-f',
    plan,
    '--dir',
    dir,
    '--time-budget',
    MEM_BUDGET,
  ];
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(NODE, args, { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out = (out + d).slice(-20_000);
    });
    child.stderr.on('data', (d) => {
      err = (err + d).slice(-20_000);
    });
    let polledHwm = 0;
    let polledRss = 0;
    const poll = setInterval(() => {
      try {
        const s = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
        polledHwm = Math.max(polledHwm, statusKB(s, 'VmHWM') ?? 0);
        polledRss = Math.max(polledRss, statusKB(s, 'VmRSS') ?? 0);
      } catch {}
    }, 100);
    let guarded = false;
    const guard = setTimeout(() => {
      guarded = true;
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGKILL'), 20_000).unref();
    }, MEM_GUARD_MS);
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0;
      clearInterval(poll);
      clearTimeout(guard);
      let hook;
      try {
        hook = fs.readFileSync(path.join(HWM_DIR, String(child.pid)), 'utf8');
      } catch {}
      resolve({
        ms,
        code,
        signal,
        guarded,
        hwmKB: statusKB(hook, 'VmHWM'),
        rssAtExitKB: statusKB(hook, 'VmRSS'),
        polledHwmKB: polledHwm || undefined,
        polledRssMaxKB: polledRss || undefined,
        stdoutTail: tail(out, 4),
        stderrTail: tail(err, 4),
        args: ['node', ...shownArgs(args).slice(2)],
      });
    });
  });
}

async function timeStatus(plan, dir, total) {
  const { r, doc } = await cliJson(['status', '-f', plan, '--dir', dir, '--json']);
  if (r.code !== 0 || doc?.units?.total !== total) {
    throw new Error(
      `\`checkpoint status --json\` did not show ${total} units (exit ${r.code}, units ${JSON.stringify(doc?.units)}); stderr: ${tail(r.stderr, 4)}`,
    );
  }
  const samples = [];
  const cpu = [];
  for (let i = 0; i < REPEATS; i++) {
    const s = await timed(NODE, [CLI, 'status', '-f', plan, '--dir', dir]);
    if (s.code !== 0)
      throw new Error(describeRun('node', ['dist/cli/index.js', 'status', '-f', plan, '--dir', dir], s));
    samples.push(s.ms);
    if (s.cpuMs !== undefined) cpu.push(s.cpuMs);
  }
  return { samplesMs: samples, medianMs: median(samples), cpuMs: median(cpu), unitsDone: doc.units.done };
}

const memory = {};
const t3 = performance.now();
for (const [key, shape, plan, total] of [
  [
    'range',
    `${MEM_RANGE.toLocaleString('en-US')}-unit range (size 1, units \`true\`)`,
    writePlan('mem-range', { run: 'true', range: MEM_RANGE }),
    MEM_RANGE,
  ],
  [
    'items',
    `${MEM_ITEMS.toLocaleString('en-US')}-item list, items: { command: "seq ${MEM_ITEMS}" }`,
    writePlan('mem-items', { run: 'true', items: `seq ${MEM_ITEMS}` }),
    MEM_ITEMS,
  ],
]) {
  const dir = path.join(diskRoot, `mem-${key}`);
  log(`memory: a --time-budget ${MEM_BUDGET} attempt over a ${shape}`);
  const m = await measurePeak(plan, dir);
  memory[key] = { shape, ...m };
  log(
    `  exit ${m.code ?? m.signal} after ${fmtSec(m.ms)}; VmHWM at exit ${m.hwmKB ?? '?'} kB (polled: VmHWM ${m.polledHwmKB ?? '?'} kB, VmRSS max ${m.polledRssMaxKB ?? '?'} kB)`,
  );
  if (m.code !== 75) {
    problems.push(
      `memory (${key}): the attempt was expected to stop at its time budget with exit 75, got ${m.code ?? m.signal}${m.guarded ? ` (SIGINT by the bench after ${MEM_GUARD_MS / 1000} s)` : ''}; stderr:\n${m.stderrTail}`,
    );
  }
  if (m.hwmKB === undefined)
    problems.push(`memory (${key}): the exit hook wrote no /proc/self/status (exit ${m.code ?? m.signal})`);
  try {
    memory[key].status = await timeStatus(plan, dir, total);
    log(
      `  status: ${memory[key].status.samplesMs.map(fmtSec).join(', ')} (${memory[key].status.unitsDone} units done)`,
    );
  } catch (err) {
    problems.push(`status after the ${key} attempt: ${err.message}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
}
const section3Ms = performance.now() - t3;

// ------------------------------------------------------------------ synthetic checkpoints (4b and 5)

/** A tiny real run of `plan` stopped by its time budget: the run, with the engine's own step fingerprint. */
async function seedRun(plan, dir) {
  const args = [CLI, 'run', '-f', plan, '--dir', dir, '--time-budget', '1s'];
  const r = await timed(NODE, args);
  if (r.code !== 75) {
    throw new Error(
      `the seed run was expected to stop at its time budget with exit 75: ${describeRun('node', shownArgs(args), r)}`,
    );
  }
  const runId = fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim();
  const runDir = path.join(dir, runId);
  const text = fs.readFileSync(path.join(runDir, 'checkpoint.json'), 'utf8');
  const journal = fs.readFileSync(path.join(runDir, 'journal.ndjson'), 'utf8').trim();
  const lastSeq = journal ? Math.max(...journal.split('\n').map((l) => JSON.parse(l).seq ?? 0)) : 0;
  if (!parseSnapshot(text, 'seed checkpoint.json').steps.has('work')) {
    throw new Error(`the seed snapshot ${runDir}/checkpoint.json has no record of step "work"`);
  }
  return { runId, runDir, text, lastSeq, seedMs: r.ms };
}

/** A copy of the seed's run whose step "work" has `done` (flat intervals) done and nothing else pending. */
function writeBigCheckpoint(seed, root, done, unitsDone) {
  const runDir = path.join(root, seed.runId);
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.cpSync(seed.runDir, runDir, { recursive: true });
  fs.rmSync(path.join(runDir, 'lock'), { force: true });
  fs.writeFileSync(path.join(root, 'latest'), `${seed.runId}\n`, { mode: 0o600 });
  const state = parseSnapshot(seed.text, 'seed checkpoint.json');
  const step = state.steps.get('work');
  step.done = IntervalSet.fromFlat(done);
  step.unitsDone = unitsDone;
  step.interrupted = new IntervalSet();
  step.running.clear();
  step.failed.clear();
  state.seq = Math.max(state.seq, seed.lastSeq);
  const text = serializeSnapshot(state);
  fs.writeFileSync(path.join(runDir, 'checkpoint.json'), text, { mode: 0o600 });
  // Every journal event is already in the snapshot (seq <= snapshot seq), so an empty journal is equivalent.
  fs.writeFileSync(path.join(runDir, 'journal.ndjson'), '', { mode: 0o600 });
  return { root, runId: seed.runId, snapshotBytes: Buffer.byteLength(text), intervals: done.length / 2 };
}

// ----------------------------------------------------------------------------- 4. checkpoint folder

const PRINT = 'echo "unit $CHECKPOINT_BATCH_INDEX printed a line"';
const folder = {};
const t4 = performance.now();
try {
  // 4a: a real run, to the end.
  let n = FOLDER_UNITS_FIXED ?? FOLDER_UNITS_MAX;
  const rate = throughputRows.ckDisk.unitsPerSec;
  if (!FOLDER_UNITS_FIXED && rate !== undefined && (n / rate) * 1000 > FOLDER_RUN_AIM_MS) {
    n = Math.max(5000, Math.floor((rate * FOLDER_RUN_AIM_MS) / 1000 / 1000) * 1000);
    notes.push(
      `4a ran ${n.toLocaleString('en-US')} printing units, not ${FOLDER_UNITS_MAX.toLocaleString('en-US')}: at 1a's ${fmtRate(rate)} the full run would take over ${FOLDER_RUN_AIM_MS / 1000} s here`,
    );
  }
  const plan = writePlan('folder-real', { run: PRINT, range: n });
  const dir = path.join(diskRoot, 'folder-real');
  log(`checkpoint folder: a real run of ${n} printing units`);
  // 4c: the folder is polled while the run goes on: the journal rotates within an attempt (COMPACT_BYTES).
  let peak = { bytes: 0, files: 0 };
  const poll = setInterval(() => {
    try {
      const now = countFolder(dir);
      if (now.bytes > peak.bytes) peak = { bytes: now.bytes, files: now.files };
    } catch {
      // not created yet, or a file replaced between readdir and lstat
    }
  }, 100);
  const { sample, r } = await runToEnd(plan, dir, n, { captureStdout: true }).finally(() =>
    clearInterval(poll),
  );
  folder.peak = peak;
  if (sample.error) throw new Error(`4a: ${sample.error}`);
  const printed = (r.stdout.match(/printed a line/g) ?? []).length;
  if (printed < n) throw new Error(`4a: the run's output holds ${printed} of the ${n} units' lines`);
  folder.real = { units: n, ms: sample.ms, cpuMs: sample.cpuMs, linesPrinted: printed, ...countFolder(dir) };
  log(`  ${fmtSec(sample.ms)}; ${folder.real.files} files, ${fmtBytes(folder.real.bytes)}`);
  fs.rmSync(dir, { recursive: true, force: true });
} catch (err) {
  problems.push(`checkpoint folder (real run): ${err.message}`);
  log(`checkpoint folder (real run) FAILED: ${err.message}`);
}
try {
  // 4b: synthetic 1M done, then finished by a real `checkpoint run`.
  const plan = writePlan('folder-synth', { run: PRINT, range: FOLDER_SYNTH });
  log(
    `checkpoint folder: a synthetic ${FOLDER_SYNTH} done units (seed run, 1 s budget), finished by checkpoint run`,
  );
  const seed = await seedRun(plan, path.join(WORK, 'folder-seed'));
  const ck = writeBigCheckpoint(seed, path.join(diskRoot, 'folder-synth'), [0, FOLDER_SYNTH], FOLDER_SYNTH);
  const { sample } = await runToEnd(plan, ck.root, FOLDER_SYNTH);
  if (sample.error) throw new Error(`4b: finishing the synthetic checkpoint: ${sample.error}`);
  folder.synthetic = { units: FOLDER_SYNTH, finishMs: sample.ms, ...countFolder(ck.root) };
  log(`  ${folder.synthetic.files} files, ${fmtBytes(folder.synthetic.bytes)}`);
  fs.rmSync(ck.root, { recursive: true, force: true });
} catch (err) {
  problems.push(`checkpoint folder (synthetic 1M): ${err.message}`);
  log(`checkpoint folder (synthetic) FAILED: ${err.message}`);
}
const section4Ms = performance.now() - t4;

// ---------------------------------------------------------------------------------- 5. resume planning

const RESUME_DIR = path.join(WORK, 'resume');
const BIG_PLAN = writePlan('resume', { run: 'sleep 5', range: RESUME_RANGE });
const resumeRows = [];
const resume = { variants: {} };

async function measureResume(variantName, ck) {
  const common = ['-f', BIG_PLAN, '--dir', ck.root];
  // Untimed check that the engine reads the generated checkpoint as intended.
  const { r: sr, doc } = await cliJson(['status', ...common, '--json']);
  if (sr.code !== 0 || doc?.units?.done !== RESUME_DONE || doc?.runId !== ck.runId) {
    throw new Error(
      `\`checkpoint status --json\` on the ${variantName} checkpoint did not show ${RESUME_DONE} done units of run ${ck.runId} ` +
        `(exit ${sr.code}, units ${JSON.stringify(doc?.units)}, run ${doc?.runId}); stderr: ${tail(sr.stderr, 4)}`,
    );
  }
  const dry = await timed(NODE, [CLI, 'run', ...common, '--dry-run'], { captureStdout: true });
  const want = `[${RESUME_DONE}/${RESUME_RANGE} units]`;
  if (
    dry.code !== 0 ||
    !dry.stdout.includes(ck.runId) ||
    !/^\s*resume\s+work/m.test(dry.stdout) ||
    !dry.stdout.includes(want)
  ) {
    throw new Error(
      `\`checkpoint run --dry-run\` on the ${variantName} checkpoint did not plan to resume run ${ck.runId} with ${want}: ` +
        `exit ${dry.code}; stdout:\n${tail(dry.stdout, 6)}\nstderr:\n${tail(dry.stderr, 6)}`,
    );
  }
  const out = { dryRunOutput: dry.stdout.trim() };
  for (const [cmdName, args] of [
    ['status', ['status', ...common]],
    ['run --dry-run', ['run', ...common, '--dry-run']],
  ]) {
    const samples = [];
    const cpu = [];
    for (let i = 0; i < REPEATS; i++) {
      const r = await timed(NODE, [CLI, ...args]);
      if (r.code !== 0) throw new Error(describeRun('node', ['dist/cli/index.js', ...args], r));
      samples.push(r.ms);
      if (r.cpuMs !== undefined) cpu.push(r.cpuMs);
    }
    out[cmdName] = { samplesMs: samples, medianMs: median(samples), cpuSamplesMs: cpu, cpuMs: median(cpu) };
    log(`  ${variantName} ${cmdName}: ${samples.map(fmtSec).join(', ')}`);
  }
  return out;
}

const t5 = performance.now();
try {
  log('resume planning: seed run (stops at its 1 s time budget, exit 75)');
  const seed = await seedRun(BIG_PLAN, path.join(RESUME_DIR, 'seed'));
  resume.seedRunMs = seed.seedMs;
  const variants = [
    ['contiguous', `[0,${RESUME_DONE}]`, () => [0, RESUME_DONE]],
    [
      'fragmented',
      `every other unit of ${RESUME_RANGE.toLocaleString('en-US')}: ${RESUME_DONE.toLocaleString('en-US')} intervals`,
      // The snapshot stores intervals flat: [s0, e0, s1, e1, ...].
      () => Array.from({ length: 2 * RESUME_DONE }, (_, i) => i),
    ],
  ];
  for (const [name, shape, make] of variants) {
    log(`resume planning: ${name} checkpoint (${shape})`);
    const ck = writeBigCheckpoint(seed, path.join(RESUME_DIR, name), make(), RESUME_DONE);
    const m = await measureResume(name, ck);
    resume.variants[name] = { shape, snapshotBytes: ck.snapshotBytes, intervals: ck.intervals, ...m };
    for (const cmd of ['status', 'run --dry-run']) {
      resumeRows.push({
        label: `\`checkpoint ${cmd}\`, 1M done units, ${name} (${shape}; checkpoint.json ${fmtBytes(ck.snapshotBytes)})`,
        medianMs: m[cmd].medianMs,
        cpuMs: m[cmd].cpuMs,
        n: REPEATS,
      });
    }
    fs.rmSync(ck.root, { recursive: true, force: true });
  }
} catch (err) {
  problems.push(`resume planning: ${err.message}`);
  log(`resume planning FAILED: ${err.message}`);
}
const section5Ms = performance.now() - t5;

// ------------------------------------------------------------------------------------------------- report

const ratioText = (r) => (r === undefined ? 'n/a' : `${r.toFixed(2)}x`);
const mb = (kB) => (kB === undefined ? undefined : (kB * 1024) / 1e6);
const rowsOut = [];
const measured = (row, units, parallel, what) => ({
  what: `${row.label}: ${units.toLocaleString('en-US')} ${what}, ${parallel} at a time`,
  value: row.skipped
    ? `skipped: ${row.skipped}`
    : row.medianMs === undefined
      ? 'failed (see problems)'
      : `${fmtSec(row.medianMs)} · ${fmtRate(row.unitsPerSec)}`,
  target: '',
  result: '',
  n: row.n ?? 0,
  cpu: row.cpuMs,
  perUnit: units,
});
for (const [key, id] of [
  ['ckDisk', '1a'],
  ['xargs', '1b'],
  ['parallel', '1c'],
  ['ckTmpfs', '1d'],
]) {
  rowsOut.push({ id, ...measured(throughputRows[key], UNITS, PARALLEL, 'no-op units') });
}
rowsOut.push(
  {
    id: '1e',
    what: 'checkpoint (1a) throughput vs xargs (1b)',
    value: ratioText(vsXargs),
    target: `>= ${TARGETS.vsXargs}x`,
    result: verdict(vsXargs === undefined ? undefined : vsXargs >= TARGETS.vsXargs),
    n: '',
  },
  {
    id: '1f',
    what: 'checkpoint (1a) throughput vs GNU parallel (1c)',
    value: ratioText(vsParallel),
    target: `> ${TARGETS.vsParallel}x`,
    result: verdict(vsParallel === undefined ? undefined : vsParallel > TARGETS.vsParallel),
    n: '',
  },
  {
    id: '1g',
    what: 'journal overhead, (1a − 1d) / 1d (disk fsync vs tmpfs)',
    value: overheadPct === undefined ? 'n/a' : `${overheadPct >= 0 ? '+' : ''}${overheadPct.toFixed(1)} %`,
    target: `< ${TARGETS.journalOverheadPct} %`,
    result: verdict(overheadPct === undefined ? undefined : overheadPct < TARGETS.journalOverheadPct),
    n: '',
  },
);
rowsOut.push(
  { id: '2a', ...measured(sleepRows.ck, SLEEP_UNITS, SLEEP_PARALLEL, 'units of `sleep 0.05`') },
  { id: '2b', ...measured(sleepRows.xargs, SLEEP_UNITS, SLEEP_PARALLEL, 'units of `sleep 0.05`') },
  {
    id: '2c',
    what: 'checkpoint (2a) throughput vs xargs (2b), sleeping units',
    value: ratioText(sleepVsXargs),
    target: `>= ${TARGETS.sleepVsXargs}x`,
    result: verdict(sleepVsXargs === undefined ? undefined : sleepVsXargs >= TARGETS.sleepVsXargs),
    n: '',
  },
);
[
  ['range', '3a', '3b'],
  ['items', '3c', '3d'],
].forEach(([key, idMem, idStatus]) => {
  const m = memory[key];
  const peak = mb(m?.hwmKB);
  rowsOut.push({
    id: idMem,
    what: `peak RSS (VmHWM at exit) of \`checkpoint run --time-budget ${MEM_BUDGET}\` over a ${m?.shape ?? key}`,
    value:
      peak === undefined
        ? 'failed (see problems)'
        : `${peak.toFixed(1)} MB (VmHWM ${m.hwmKB.toLocaleString('en-US')} kB; attempt ${fmtSec(m.ms)}, exit ${m.code ?? m.signal}${m.status ? `, ${m.status.unitsDone.toLocaleString('en-US')} units done` : ''})`,
    target: `< ${TARGETS.memoryMB} MB`,
    result: verdict(peak === undefined ? undefined : peak < TARGETS.memoryMB),
    n: m ? 1 : 0,
  });
  const s = m?.status;
  rowsOut.push({
    id: idStatus,
    what: `\`checkpoint status\` after the attempt of ${idMem}`,
    value: s ? fmtSec(s.medianMs) : 'failed (see problems)',
    target: `< ${TARGETS.statusSeconds} s`,
    result: verdict(s ? s.medianMs < TARGETS.statusSeconds * 1000 : undefined),
    n: s ? s.samplesMs.length : 0,
    cpu: s?.cpuMs,
  });
});
const folderRow = (id, f, what) => {
  const ok = f ? f.files < TARGETS.folderFiles && f.bytes < TARGETS.folderMB * 1e6 : undefined;
  return {
    id,
    what,
    value: f
      ? `${f.files} files, ${fmtBytes(f.bytes)} (${Object.entries(f.byFolder)
          .map(([d, v]) => `${d}: ${v.files}`)
          .join(', ')})`
      : 'failed (see problems)',
    target: `< ${TARGETS.folderFiles} files and < ${TARGETS.folderMB} MB`,
    result: verdict(ok),
    n: f ? 1 : 0,
  };
};
rowsOut.push(
  folderRow(
    '4a',
    folder.real,
    `REAL: checkpoint folder after a finished run of ${(folder.real?.units ?? FOLDER_UNITS_MAX).toLocaleString('en-US')} units that each print a line${folder.real ? ` (run took ${fmtSec(folder.real.ms)})` : ''}`,
  ),
  folderRow(
    '4b',
    folder.synthetic,
    `SYNTHETIC: checkpoint folder of a ${FOLDER_SYNTH.toLocaleString('en-US')}-unit printing plan made done from a 1 s seed run, then finished by \`checkpoint run\``,
  ),
);
// 4c: the largest the folder got during 4a's run (polled), beside what 1a's bytes per unit and the engine's
// compaction threshold (read from its source, so that this row follows it) say it may reach.
const compactBytes = (() => {
  const m = /const COMPACT_BYTES = ([\d\s*_]+);/.exec(
    fs.readFileSync(path.join(REPO, 'src', 'journal', 'checkpoint.ts'), 'utf8'),
  );
  return m ? m[1].split('*').reduce((a, b) => a * Number(b.trim().replaceAll('_', '')), 1) : undefined;
})();
const journalPerUnit =
  throughputRows.ckDisk.journalBytes === undefined ? undefined : throughputRows.ckDisk.journalBytes / UNITS;
folder.journal = { bytesPerUnit: journalPerUnit ?? null, compactBytes: compactBytes ?? null };
const peakOk = folder.peak !== undefined && folder.peak.bytes < TARGETS.folderMB * 1e6;
rowsOut.push({
  id: '4c',
  what: `MEASURED: the largest the checkpoint folder got during 4a's run (polled every 100 ms). The journal is folded into checkpoint.json and started afresh whenever it passes COMPACT_BYTES (src/journal/checkpoint.ts), during an attempt as at its end`,
  value:
    folder.peak === undefined
      ? 'n/a'
      : `${fmtBytes(folder.peak.bytes)} (${folder.peak.files} files)${
          journalPerUnit === undefined || compactBytes === undefined
            ? ''
            : `; ${journalPerUnit.toFixed(0)} B of journal a unit, so a rotation every ~${Math.floor(compactBytes / journalPerUnit).toLocaleString('en-US')} units (COMPACT_BYTES ${fmtBytes(compactBytes)})`
        }`,
  target: `< ${TARGETS.folderMB} MB whatever the run`,
  result:
    folder.peak === undefined
      ? 'n/a'
      : peakOk && (compactBytes ?? Infinity) < TARGETS.folderMB * 1e6
        ? 'PASS'
        : 'MISS',
  n: 1,
});
resumeRows.forEach((r, i) => {
  rowsOut.push({
    id: `5${String.fromCharCode(97 + i)}`,
    what: r.label,
    value: fmtSec(r.medianMs),
    target: `< ${TARGETS.resumeSeconds} s`,
    result: verdict(r.medianMs < TARGETS.resumeSeconds * 1000),
    n: r.n,
    cpu: r.cpuMs,
  });
});
if (resumeRows.length === 0) {
  rowsOut.push({
    id: '5',
    what: 'resume planning on 1M done units',
    value: 'failed (see problems)',
    target: `< ${TARGETS.resumeSeconds} s`,
    result: 'n/a',
    n: 0,
  });
}

const esc = (s) => String(s).replaceAll('|', '\\|');
const cpuCell = (r) =>
  r.cpu === undefined
    ? ''
    : `${fmtSec(r.cpu)}${r.perUnit ? ` (${(r.cpu / r.perUnit).toFixed(2)} ms/unit)` : ''}`;
const table = [
  '| # | measurement | median wall time / value | CPU user+sys (median) | n | target | result |',
  '|---|---|---|---|---|---|---|',
  ...rowsOut.map(
    (r) =>
      `| ${r.id} | ${esc(r.what)} | ${esc(r.value)} | ${cpuCell(r)} | ${r.n} | ${esc(r.target)} | ${r.result} |`,
  ),
].join('\n');

const totalMs = performance.now() - t1;
const loadAtEnd = os.loadavg();
const uptimeAtEnd = sh('uptime').stdout.trim();
const busiest = Math.max(loadAtStart[0], loadAtEnd[0], loadAtEnd[1]);
const loadText = `load average (1 min) ${loadAtStart[0].toFixed(2)} at start, ${loadAtEnd[0].toFixed(2)} at end (5 min: ${loadAtEnd[1].toFixed(2)}, 15 min: ${loadAtEnd[2].toFixed(2)}) on ${machine.cpus} CPUs`;
if (busiest > machine.cpus * 0.75) {
  notes.push(
    `the machine was busy (${loadText}; \`uptime\` at start: "${uptimeAtStart}", at end: "${uptimeAtEnd}"): other processes competed for the CPUs, so wall times, the ratios and especially the small differences (journal overhead) are noisy; the CPU column is less affected`,
  );
}
const header = [
  `checkpoint bench — ${new Date().toISOString()} — commit ${gitCommit}${gitDirty ? ' (src/ has uncommitted changes)' : ''}, CLI bundle sha256:${cliSha}`,
  `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.kernel}, Node ${machine.node}, ${machine.bash}`,
  `${loadText}`,
  `uptime at start: ${uptimeAtStart}`,
  `uptime at end: ${uptimeAtEnd}`,
  `on-disk dirs: ${machine.diskDir}; tmpfs dirs: ${machine.tmpfsDir}; GNU parallel: ${gnu.version ?? 'none'}${gnu.installed ? ' (installed by this run)' : ''}`,
].join('\n');
const footer = [
  ...notes.map((n) => `note: ${n}`),
  'note: every unit of every row is a fresh `bash -eo pipefail -c CMD`: the engine spawns one per unit in its own process group (src/exec/process.ts); xargs and GNU parallel exec the same command line.',
  'note: CPU = user+sys of the command and every process it waited for (bash `times`), so it counts the units too; it is much less affected by other load than wall time.',
  'note: wall times include Node start-up of the CLI (~0.1 s); stdout to /dev/null (not a TTY).',
  'note: "journal off" is approximated by putting the checkpoint dir on tmpfs, where fsync is nearly free; the CLI has no switch to turn the journal off.',
  `note: memory (3a, 3c) is the checkpoint process's own peak RSS, VmHWM of /proc/self/status read by a hook (\`node --import\`) on its 'exit' event, just before it exits; MB = 10^6 bytes. The attempts are short (stopped by \`--time-budget ${MEM_BUDGET}\`): they measure what the engine holds for a huge space, not the cost of running every unit. /proc/<pid>/status polled every 100 ms agrees: range VmHWM ${memory.range?.polledHwmKB ?? '?'} kB (VmRSS max ${memory.range?.polledRssMaxKB ?? '?'} kB), items VmHWM ${memory.items?.polledHwmKB ?? '?'} kB (VmRSS max ${memory.items?.polledRssMaxKB ?? '?'} kB).`,
  `note: 4a is a real run to the end; 4b is synthetic: its 1,000,000 done units were written into the checkpoint with the engine's snapshot module (only the seed run's units ran), then a real \`checkpoint run\` found nothing left and completed the run. Neither keeps per-unit files: the engine keeps a log only for a failed, timed-out or interrupted unit, at most ${LOGS_PER_STEP} per step (LOGS_PER_STEP, src/engine/recorder.ts); a successful unit's output goes only to the live log, so the folder does not grow with the number of units.`,
  ...problems.map((p) => `PROBLEM: ${p}`),
  `bench time: ${fmtSec(totalMs)} (1 throughput ${fmtSec(section1Ms)}, 2 sleeping units ${fmtSec(section2Ms)}, 3 memory ${fmtSec(section3Ms)}, 4 folder ${fmtSec(section4Ms)}, 5 resume planning ${fmtSec(section5Ms)})`,
].join('\n');

console.log(`${header}\n\n${table}\n\n${footer}`);

const rowJson = (rows, units) =>
  Object.fromEntries(
    Object.entries(rows).map(([k, r]) => [
      k,
      {
        label: r.label,
        units,
        skipped: r.skipped ?? null,
        n: r.n,
        medianMs: r.medianMs ?? null,
        cpuMs: r.cpuMs ?? null,
        unitsPerSec: r.unitsPerSec ?? null,
        journalBytes: r.journalBytes ?? null,
        samples: r.samples,
      },
    ]),
  );

fs.mkdirSync(RESULTS, { recursive: true });
fs.writeFileSync(
  path.join(RESULTS, 'latest.md'),
  `# checkpoint bench\n\n${header.replaceAll('\n', '  \n')}\n\n${table}\n\n${footer.replaceAll('\n', '  \n')}\n`,
);
fs.writeFileSync(
  path.join(RESULTS, 'latest.json'),
  `${JSON.stringify(
    {
      date: new Date().toISOString(),
      commit: gitCommit,
      srcDirty: gitDirty,
      cliSha256: cliSha,
      machine,
      uptime: { start: uptimeAtStart, end: uptimeAtEnd },
      gnuParallel: gnu.version ?? null,
      units: UNITS,
      parallel: PARALLEL,
      rounds: r1.rounds,
      targets: TARGETS,
      throughput: rowJson(throughputRows, UNITS),
      sleep: { units: SLEEP_UNITS, parallel: SLEEP_PARALLEL, rows: rowJson(sleepRows, SLEEP_UNITS) },
      ratios: {
        checkpointVsXargs: vsXargs ?? null,
        checkpointVsParallel: vsParallel ?? null,
        journalOverheadPct: overheadPct ?? null,
        sleepVsXargs: sleepVsXargs ?? null,
      },
      memory: Object.fromEntries(
        Object.entries(memory).map(([k, m]) => [k, { ...m, peakMB: mb(m.hwmKB) ?? null }]),
      ),
      folder: { logsPerStep: LOGS_PER_STEP, ...folder },
      resume,
      rows: rowsOut,
      notes,
      problems,
      loadAverage: { start: loadAtStart, end: loadAtEnd },
      benchMs: totalMs,
    },
    null,
    2,
  )}\n`,
);

// Hand-written SVG bar chart of units/s.
const bars = [
  ['checkpoint run', throughputRows.ckDisk.unitsPerSec, '#3b6fd4'],
  [`xargs -P${PARALLEL}`, throughputRows.xargs.unitsPerSec, '#7a7a7a'],
  [`GNU parallel -j${PARALLEL}`, throughputRows.parallel.unitsPerSec, '#d48a3b'],
].filter(([, v]) => v !== undefined);
const W = 640;
const left = 170;
const barH = 36;
const gap = 18;
const top = 50;
const H = top + bars.length * (barH + gap) + 30;
const maxV = Math.max(1, ...bars.map(([, v]) => v));
const scale = (W - left - 110) / maxV;
const xmlEsc = (s) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
const svg = [
  `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="14">`,
  `<title>${xmlEsc(`checkpoint vs xargs vs GNU parallel: units/s, ${UNITS} no-op units, ${PARALLEL} at a time`)}</title>`,
  `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
  `<text x="${W / 2}" y="28" text-anchor="middle" font-size="16" font-weight="bold">${xmlEsc(`${UNITS.toLocaleString('en-US')} no-op units, ${PARALLEL} at a time: units/s (higher is better)`)}</text>`,
  ...bars.flatMap(([label, v, color], i) => {
    const y = top + i * (barH + gap);
    const w = Math.max(1, v * scale);
    return [
      `<text x="${left - 10}" y="${y + barH / 2 + 5}" text-anchor="end">${xmlEsc(label)}</text>`,
      `<rect x="${left}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${color}"/>`,
      `<text x="${(left + w + 8).toFixed(1)}" y="${y + barH / 2 + 5}">${Math.round(v).toLocaleString('en-US')}</text>`,
    ];
  }),
  `<text x="${W / 2}" y="${H - 10}" text-anchor="middle" font-size="11" fill="#555">${xmlEsc(`${machine.cpus} CPUs, Node ${machine.node}, ${new Date().toISOString().slice(0, 10)}, commit ${gitCommit}`)}</text>`,
  '</svg>',
  '',
].join('\n');
fs.writeFileSync(path.join(RESULTS, 'throughput.svg'), svg);
log(`wrote ${path.relative(REPO, RESULTS)}/latest.json, latest.md, throughput.svg`);
// The chart in the docs (README's Performance section, docs/getting-started.md), from the same results.
const { writeBenchChart } = await import('./chart.mjs');
const chart = writeBenchChart(JSON.parse(fs.readFileSync(path.join(RESULTS, 'latest.json'), 'utf8')));
log(`wrote ${path.relative(REPO, chart)}`);

const failedMeasurement = problems.some((p) => !p.startsWith('GNU parallel row skipped'));
process.exitCode = failedMeasurement ? 1 : 0;
