#!/usr/bin/env node
// Benchmark of the built `checkpoint` CLI (dist/cli/index.js), measured in one run on this machine.
//
//   1. Throughput: 5,000 no-op units (`true` through `bash -eo pipefail -c`), 2 at a time, for
//      a. `checkpoint run` with its checkpoint directory on disk,
//      b. `xargs -P2` (the floor: nothing recorded),
//      c. GNU parallel `-j2 --joblog` (installed with apt-get when missing),
//      d. `checkpoint run` with its checkpoint directory on tmpfs (/dev/shm), where fsync costs ~nothing;
//         the CLI has no "journal off" switch, so (a - d) / d is the cost of durable journaling,
//      e. `checkpoint run` with CHECKPOINT_LAUNCHER=exec: a new bash exec'd for every unit, as xargs and
//         GNU parallel do. By default (a) a launcher runs each unit in a forked subshell of itself made to
//         look like a fresh `bash -c` (src/engine/forked-shell.ts), which saves bash's start-up per unit;
//         (e) shows what the engine costs when it starts shells the same way the other two do.
//   2. Resume planning on checkpoints holding 1,000,000 done units (one contiguous interval, and 1,000,000
//      one-unit intervals): `checkpoint status` and `checkpoint run --dry-run`.
//
// Big checkpoints are made from a real one: a tiny real run of the same plan (stopped by --time-budget)
// creates the run with the engine's own step fingerprint; the bench then reads its checkpoint.json with the
// engine's own snapshot module (src/journal/snapshot.ts, loaded through the test resolver), replaces the done
// intervals, and writes it back with the same module. Every generated checkpoint is read back through
// `checkpoint status --json`. The CLI bundle is copied once at start, so a concurrent rebuild of dist/
// cannot change or break it mid-run.
//
// Writes bench/results/latest.json, latest.md and throughput.svg, and the docs' chart docs/images/bench.svg
// (bench/chart.mjs). Usage: `npm run bench` (BENCH_FULL=1: three rounds of the 5,000-unit runs whatever the
// time they take; BENCH_UNITS=N: a quicker smoke run with N units instead of 5,000; BENCH_CLI=path/index.js:
// bench that build instead of dist/cli).

import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

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
/** Time allowed for the 5,000-unit section before it stops adding rounds (the whole bench aims at ~3 min). */
const THROUGHPUT_BUDGET_MS = 120_000;
const FULL = process.env.BENCH_FULL === '1';
const RESUME_DONE = 1_000_000;
const RESUME_RANGE = 2_000_000;
const TMPFS_MAGIC = 0x01021994;

const TARGETS = {
  vsParallel: 3,
  vsXargs: 0.5,
  journalOverheadPct: 10,
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

// ------------------------------------------------------------------------------------ snapshot serialiser
// The engine's own snapshot code (Node 24 strips the types; the resolver maps `./x.js` imports to `x.ts`).

register('../test/support/ts-resolve.mjs', import.meta.url);
const { parseSnapshot, serializeSnapshot } = await import('../src/journal/snapshot.ts');
const { IntervalSet } = await import('../src/journal/intervals.ts');

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
const CLI_DIR = path.join(WORK, 'cli');
fs.mkdirSync(CLI_DIR);
fs.copyFileSync(DIST_CLI, path.join(CLI_DIR, 'index.js'));
fs.copyFileSync(path.join(path.dirname(DIST_CLI), 'package.json'), path.join(CLI_DIR, 'package.json'));
const CLI = path.join(CLI_DIR, 'index.js');
const cliSha = createHash('sha256').update(fs.readFileSync(CLI)).digest('hex').slice(0, 16);
const NODE = process.execPath;

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
log(`node ${process.version}, ${machine.cpus} CPUs, CLI ${path.relative(REPO, DIST_CLI)} sha256:${cliSha}`);

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

// ------------------------------------------------------------------------------------ 1. throughput

const NOOP_PLAN = path.join(WORK, 'noop', 'checkpoint.yml');
fs.mkdirSync(path.dirname(NOOP_PLAN));
fs.writeFileSync(
  NOOP_PLAN,
  [
    'version: 1',
    'name: bench-noop',
    'shell: bash',
    `concurrency: ${PARALLEL}`,
    'steps:',
    '  - id: noop',
    '    run: "true"',
    '    batch:',
    `      range: { from: 0, to: ${UNITS} }`,
    '      size: 1',
    `      parallel: ${PARALLEL}`,
    '',
  ].join('\n'),
);

async function cliJson(args) {
  const r = await timed(NODE, [CLI, ...args], { captureStdout: true });
  try {
    return { r, doc: JSON.parse(r.stdout) };
  } catch {
    return { r, doc: undefined };
  }
}

let dirCounter = 0;
async function measureCheckpoint(base, env = process.env) {
  dirCounter += 1;
  const dir = path.join(base, `ck-${dirCounter}`);
  const args = [CLI, 'run', '-f', NOOP_PLAN, '--dir', dir];
  const r = await timed(NODE, args, { env });
  const sample = { ms: r.ms, cpuMs: r.cpuMs, code: r.code };
  if (r.code !== 0) {
    sample.error = describeRun(
      'node',
      args.map((a) => (a === CLI ? 'dist/cli/index.js' : a)),
      r,
    );
  } else {
    const { doc } = await cliJson(['status', '-f', NOOP_PLAN, '--dir', dir, '--json']);
    const done = doc?.units?.done;
    if (done !== UNITS || doc?.complete !== true) {
      sample.error = `checkpoint run exited 0 but \`status --json\` reports ${done} of ${UNITS} units done (complete: ${doc?.complete})`;
    }
    const runDir = path.join(dir, fs.readFileSync(path.join(dir, 'latest'), 'utf8').trim());
    sample.journalBytes = fs.statSync(path.join(runDir, 'journal.ndjson')).size;
  }
  fs.rmSync(dir, { recursive: true, force: true });
  return sample;
}

async function measureXargs() {
  const script = `seq 0 ${UNITS - 1} | xargs -P${PARALLEL} -I{} bash -eo pipefail -c true`;
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

const throughputRows = {
  ckDisk: { label: 'checkpoint run, journal on disk', samples: [] },
  ckTmpfs: { label: 'checkpoint run, journal on tmpfs (fsync ~free)', samples: [] },
  ckExec: { label: 'checkpoint run, CHECKPOINT_LAUNCHER=exec (a new bash per unit)', samples: [] },
  xargs: { label: `xargs -P${PARALLEL} (floor)`, samples: [] },
  parallel: { label: `GNU parallel -j${PARALLEL} --joblog`, samples: [] },
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

const runners = [
  // The two checkpoint runs back to back, so that drift in machine load hits both sides of (a - d) / d alike.
  ['ckDisk', () => measureCheckpoint(diskRoot)],
  ['ckTmpfs', () => measureCheckpoint(SHM)],
  ['ckExec', () => measureCheckpoint(diskRoot, { ...process.env, CHECKPOINT_LAUNCHER: 'exec' })],
  ['xargs', measureXargs],
  ['parallel', measureParallel],
];

const loadAtStart = os.loadavg();
const t1 = performance.now();
let rounds = 0;
let lastRoundMs = 0;
while (rounds < REPEATS) {
  const elapsed = performance.now() - t1;
  if (rounds > 0 && !FULL && elapsed + lastRoundMs > THROUGHPUT_BUDGET_MS) break;
  const r0 = performance.now();
  for (const [key, fn] of runners) {
    const row = throughputRows[key];
    if (row.skipped) continue;
    log(`round ${rounds + 1}: ${row.label} (${UNITS} units)`);
    const loadBefore = os.loadavg()[0];
    const s = await fn();
    s.load1Before = Number(loadBefore.toFixed(2));
    row.samples.push(s);
    log(`  ${fmtSec(s.ms)}${s.error ? ` FAILED: ${s.error}` : ''}`);
  }
  lastRoundMs = performance.now() - r0;
  rounds += 1;
}
// xargs is cheap: top it up to three samples even when the slow rows ran once.
while (throughputRows.xargs.samples.length < REPEATS) throughputRows.xargs.samples.push(await measureXargs());
if (rounds < REPEATS) {
  notes.push(
    `the 5,000-unit runs of checkpoint and GNU parallel ran ${rounds === 1 ? 'once each' : `${rounds} times each`} ` +
      `(a round took ${fmtSec(lastRoundMs)}; 3 rounds would not fit the ~3 min budget; BENCH_FULL=1 forces 3); ` +
      `xargs ran ${throughputRows.xargs.samples.length} times`,
  );
}

for (const row of Object.values(throughputRows)) {
  const good = row.samples.filter((s) => !s.error);
  for (const s of row.samples) if (s.error) problems.push(`${row.label}: ${s.error}`);
  row.n = good.length;
  row.medianMs = median(good.map((s) => s.ms));
  row.unitsPerSec = row.medianMs === undefined ? undefined : UNITS / (row.medianMs / 1000);
  row.cpuMs = median(good.map((s) => s.cpuMs).filter((c) => c !== undefined));
  const jb = good.map((s) => s.journalBytes).filter((b) => b !== undefined);
  if (jb.length) row.journalBytes = median(jb);
}

const ratio = (a, b) => (a === undefined || b === undefined ? undefined : a / b);
const vsParallel = ratio(throughputRows.ckDisk.unitsPerSec, throughputRows.parallel.unitsPerSec);
const vsXargs = ratio(throughputRows.ckDisk.unitsPerSec, throughputRows.xargs.unitsPerSec);
const execVsParallel = ratio(throughputRows.ckExec.unitsPerSec, throughputRows.parallel.unitsPerSec);
const execVsXargs = ratio(throughputRows.ckExec.unitsPerSec, throughputRows.xargs.unitsPerSec);
const overheadPct =
  throughputRows.ckDisk.medianMs === undefined || throughputRows.ckTmpfs.medianMs === undefined
    ? undefined
    : ((throughputRows.ckDisk.medianMs - throughputRows.ckTmpfs.medianMs) / throughputRows.ckTmpfs.medianMs) *
      100;

// ---------------------------------------------------------------------------------- 2. resume planning

const RESUME_DIR = path.join(WORK, 'resume');
const BIG_PLAN = path.join(RESUME_DIR, 'checkpoint.yml');
fs.mkdirSync(RESUME_DIR);
fs.writeFileSync(
  BIG_PLAN,
  [
    'version: 1',
    'name: bench-resume',
    'shell: bash',
    `concurrency: ${PARALLEL}`,
    'steps:',
    '  - id: work',
    '    run: sleep 5',
    '    batch:',
    `      range: { from: 0, to: ${RESUME_RANGE} }`,
    '      size: 1',
    `      parallel: ${PARALLEL}`,
    '',
  ].join('\n'),
);

const resumeRows = [];
const resume = { variants: {} };

async function seedRun() {
  const dir = path.join(RESUME_DIR, 'seed');
  const args = [CLI, 'run', '-f', BIG_PLAN, '--dir', dir, '--time-budget', '1s'];
  const r = await timed(NODE, args);
  if (r.code !== 75) {
    throw new Error(
      `the seed run was expected to stop at its time budget with exit 75: ${describeRun('node', ['dist/cli/index.js', ...args.slice(1)], r)}`,
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

function writeBigCheckpoint(seed, name, done) {
  const root = path.join(RESUME_DIR, name);
  const runDir = path.join(root, seed.runId);
  fs.mkdirSync(root, { recursive: true, mode: 0o700 });
  fs.cpSync(seed.runDir, runDir, { recursive: true });
  fs.rmSync(path.join(runDir, 'lock'), { force: true });
  fs.writeFileSync(path.join(root, 'latest'), `${seed.runId}\n`, { mode: 0o600 });
  const state = parseSnapshot(seed.text, 'seed checkpoint.json');
  const step = state.steps.get('work');
  step.done = IntervalSet.fromFlat(done);
  step.unitsDone = RESUME_DONE;
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

const t2 = performance.now();
try {
  log('resume planning: seed run (stops at its 1 s time budget, exit 75)');
  const seed = await seedRun();
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
    const ck = writeBigCheckpoint(seed, name, make());
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
const resumeSectionMs = performance.now() - t2;

// ------------------------------------------------------------------------------------------------- report

const ratioText = (r) => (r === undefined ? 'n/a' : `${r.toFixed(2)}x`);
const rowsOut = [];
for (const [key, tag] of [
  ['ckDisk', '1a'],
  ['xargs', '1b'],
  ['parallel', '1c'],
  ['ckTmpfs', '1d'],
  ['ckExec', '1h'],
]) {
  const row = throughputRows[key];
  rowsOut.push({
    id: tag,
    what: `${row.label}: ${UNITS.toLocaleString('en-US')} no-op units, ${PARALLEL} at a time`,
    value: row.skipped
      ? `skipped: ${row.skipped}`
      : row.medianMs === undefined
        ? 'failed (see problems)'
        : `${fmtSec(row.medianMs)} · ${fmtRate(row.unitsPerSec)}`,
    target: '',
    result: '',
    n: row.n ?? 0,
    cpu: row.cpuMs,
  });
}
rowsOut.push(
  {
    id: '1e',
    what: 'checkpoint (1a) throughput vs GNU parallel (1c)',
    value: ratioText(vsParallel),
    target: `>= ${TARGETS.vsParallel}x`,
    result: verdict(vsParallel === undefined ? undefined : vsParallel >= TARGETS.vsParallel),
    n: '',
  },
  {
    id: '1f',
    what: 'checkpoint (1a) throughput vs xargs (1b)',
    value: ratioText(vsXargs),
    target: `>= ${TARGETS.vsXargs}x`,
    result: verdict(vsXargs === undefined ? undefined : vsXargs >= TARGETS.vsXargs),
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
  {
    id: '1i',
    what: 'checkpoint with a new bash per unit (1h) vs GNU parallel (1c), for comparison',
    value: ratioText(execVsParallel),
    target: '',
    result: '',
    n: '',
  },
  {
    id: '1j',
    what: 'checkpoint with a new bash per unit (1h) vs xargs (1b), for comparison',
    value: ratioText(execVsXargs),
    target: '',
    result: '',
    n: '',
  },
);
resumeRows.forEach((r, i) => {
  rowsOut.push({
    id: `2${String.fromCharCode(97 + i)}`,
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
    id: '2',
    what: 'resume planning on 1M done units',
    value: 'failed (see problems)',
    target: `< ${TARGETS.resumeSeconds} s`,
    result: 'n/a',
    n: 0,
  });
}

const esc = (s) => String(s).replaceAll('|', '\\|');
const table = [
  '| # | measurement | median wall time / value | CPU user+sys (median) | n | target | result |',
  '|---|---|---|---|---|---|---|',
  ...rowsOut.map(
    (r) =>
      `| ${r.id} | ${esc(r.what)} | ${esc(r.value)} | ${r.cpu === undefined ? '' : `${fmtSec(r.cpu)}${r.id.startsWith('1') ? ` (${(r.cpu / UNITS).toFixed(2)} ms/unit)` : ''}`} | ${r.n} | ${esc(r.target)} | ${r.result} |`,
  ),
].join('\n');

const totalMs = performance.now() - t1;
const loadAtEnd = os.loadavg();
const busiest = Math.max(loadAtStart[0], loadAtEnd[0], loadAtEnd[1]);
const loadText = `load average (1 min) ${loadAtStart[0].toFixed(2)} at start, ${loadAtEnd[0].toFixed(2)} at end (5 min: ${loadAtEnd[1].toFixed(2)}) on ${machine.cpus} CPUs`;
if (busiest > machine.cpus * 0.75) {
  notes.push(
    `the machine was busy (${loadText}): other processes competed for the CPUs, so wall times and especially the small differences (journal overhead) are noisy`,
  );
}
const header = [
  `checkpoint bench — ${new Date().toISOString()} — commit ${gitCommit}${gitDirty ? ' (src/ has uncommitted changes)' : ''}, CLI bundle sha256:${cliSha}`,
  `machine: ${machine.cpus} × ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.kernel}, Node ${machine.node}, ${machine.bash}`,
  `${loadText}`,
  `on-disk dirs: ${machine.diskDir}; tmpfs dirs: ${machine.tmpfsDir}; GNU parallel: ${gnu.version ?? 'none'}${gnu.installed ? ' (installed by this run)' : ''}`,
].join('\n');
const footer = [
  ...notes.map((n) => `note: ${n}`),
  'note: CPU = user+sys of the command and every process it waited for (bash `times`), so it counts the units too; it is much less affected by other load than wall time.',
  'note: wall times include Node start-up of the CLI (~0.1 s); stdout to /dev/null (not a TTY).',
  'note: every row runs `true` through bash with `-eo pipefail`. xargs, GNU parallel and 1h exec a new `bash -eo pipefail -c true` per unit; 1a and 1d use forked shells (the default: a subshell of a launcher bash, made to look like a fresh `bash -c`, evaluates the command; see docs/plan.md).',
  'note: "journal off" is approximated by putting the checkpoint dir on tmpfs, where fsync is nearly free; the CLI has no switch to turn the journal off.',
  ...problems.map((p) => `PROBLEM: ${p}`),
  `bench time: ${fmtSec(totalMs)} (throughput ${fmtSec(t2 - t1)}, resume planning ${fmtSec(resumeSectionMs)})`,
].join('\n');

console.log(`${header}\n\n${table}\n\n${footer}`);

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
      gnuParallel: gnu.version ?? null,
      units: UNITS,
      parallel: PARALLEL,
      rounds,
      targets: TARGETS,
      throughput: Object.fromEntries(
        Object.entries(throughputRows).map(([k, r]) => [
          k,
          {
            label: r.label,
            skipped: r.skipped ?? null,
            n: r.n,
            medianMs: r.medianMs ?? null,
            unitsPerSec: r.unitsPerSec ?? null,
            journalBytes: r.journalBytes ?? null,
            samples: r.samples,
          },
        ]),
      ),
      ratios: {
        checkpointVsParallel: vsParallel ?? null,
        checkpointVsXargs: vsXargs ?? null,
        execVsParallel: execVsParallel ?? null,
        execVsXargs: execVsXargs ?? null,
        journalOverheadPct: overheadPct ?? null,
      },
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
  ['checkpoint, exec per unit', throughputRows.ckExec.unitsPerSec, '#8aa6e0'],
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
// Keep the generated files as `biome check` wants them (the repository lints everything under bench/).
const biome = path.join(REPO, 'node_modules', '.bin', 'biome');
if (fs.existsSync(biome)) {
  const files = ['latest.json', 'latest.md', 'throughput.svg'].map((f) => path.join(RESULTS, f));
  const f = spawnSync(biome, ['format', '--write', ...files], { encoding: 'utf8' });
  if (f.status !== 0) log(`biome format of bench/results failed: ${tail(`${f.stdout}${f.stderr}`, 4)}`);
}
log(`wrote ${path.relative(REPO, RESULTS)}/latest.json, latest.md, throughput.svg`);
// The chart in the docs (README's Performance section, docs/getting-started.md), from the same results.
const { writeBenchChart } = await import('./chart.mjs');
const chart = writeBenchChart(JSON.parse(fs.readFileSync(path.join(RESULTS, 'latest.json'), 'utf8')));
log(`wrote ${path.relative(REPO, chart)}`);

const failedMeasurement = problems.some((p) => !p.startsWith('GNU parallel row skipped'));
process.exitCode = failedMeasurement ? 1 : 0;
