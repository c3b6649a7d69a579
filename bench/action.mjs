#!/usr/bin/env node
// Benchmark of the built action (dist/main, dist/post), measured in one run on this machine:
//
//   1. Cold start as ratios: `node dist/main/index.js` to the first unit started (the unit writes the clock)
//      with `store: cache` (a restore miss on the local cache service) against a bare @actions/cache restore
//      miss on the same service, and with `store: none` against a bare `node -e 0`.
//   2. Bundle sizes of dist/main, dist/post and dist/cli (entry file and lazily loaded chunks).
//   3. Save and restore of a checkpoint holding 10,000 done units through the local cache service and the
//      real @actions/cache (the action's own CheckpointSync: pack, upload, download, check, unpack).
//
// Writes bench/results/action.json and action.md. Usage: `npm run bench:action`.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { register } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const RESULTS = path.join(HERE, 'results');
const NODE = path.join(REPO, 'node_modules', 'node', 'bin', 'node');
const ROUNDS = 7;

register('../test/support/ts-resolve.mjs', import.meta.url);
const { startServices, setEnv } = await import('../test/support/services/index.ts');
const { CheckpointSync } = await import('../src/action/sync.ts');
const { MemoryStateProvider } = await import('../src/action/state.ts');
const { CacheStore } = await import('../src/stores/cache.ts');
const { Checkpoint } = await import('../src/journal/checkpoint.ts');

function log(msg) {
  process.stderr.write(`[bench:action] ${msg}\n`);
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-action-'));
const services = await startServices();
const rows = [];

try {
  // ------------------------------------------------------------------------------------ 1. cold start
  // Ratios measured in the same run, rounds interleaved so that the machine's load hits every variant alike:
  //   - store cache: spawn of dist/main to its first unit started (the restore misses) against a bare
  //     @actions/cache restore miss (node, the library, one lookup against the same local service);
  //   - store none: spawn of dist/main to its first unit started against a bare `node -e 0` to its exit.
  const plan = [
    'version: 1',
    'name: cold',
    'steps:',
    '  - id: first',
    '    run: date +%s%N > "$STAMP"',
    '',
  ].join('\n');
  const bare = path.join(work, 'bare-restore.mjs');
  // The library resolved from the repository's node_modules, as any action that uses it would ship it.
  fs.writeFileSync(
    bare,
    [
      `import * as cache from ${JSON.stringify(path.join(REPO, 'node_modules', '@actions', 'cache', 'lib', 'cache.js'))};`,
      "import { writeFileSync } from 'node:fs';",
      "const hit = await cache.restoreCache(['.bundle'], 'checkpoint-v1-bare-miss-', ['checkpoint-v1-bare-miss-']);",
      "if (hit !== undefined) throw new Error('expected a miss');",
      'writeFileSync(process.env.STAMP, String(BigInt(Date.now()) * 1000000n));',
      '',
    ].join('\n'),
  );
  const variants = {
    none: { args: [path.join(REPO, 'dist', 'main', 'index.js')], store: 'none' },
    cache: { args: [path.join(REPO, 'dist', 'main', 'index.js')], store: 'cache' },
    'bare-cache': { args: [bare] },
    'node-e-0': { args: ['-e', '0'] },
  };
  const times = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
  for (let i = 0; i < ROUNDS; i++) {
    for (const [name, v] of Object.entries(variants)) {
      const ws = path.join(work, `cold-${name}-${i}`);
      const temp = path.join(work, `cold-${name}-${i}-temp`);
      fs.mkdirSync(ws, { recursive: true });
      fs.mkdirSync(temp, { recursive: true });
      fs.writeFileSync(path.join(ws, 'checkpoint.yml'), plan);
      const stamp = path.join(ws, 'stamp');
      const files = ['out', 'state', 'summary'].map((f) => path.join(temp, f));
      for (const f of files) fs.writeFileSync(f, '');
      const env = {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        CI: 'true',
        GITHUB_ACTIONS: 'true',
        GITHUB_WORKSPACE: ws,
        GITHUB_WORKFLOW: 'bench',
        GITHUB_JOB: 'cold',
        GITHUB_OUTPUT: files[0],
        GITHUB_STATE: files[1],
        GITHUB_STEP_SUMMARY: files[2],
        ...services.envFor({ runId: 5000 + i }),
        RUNNER_TEMP: temp,
        INPUT_STORE: v.store ?? '',
        INPUT_FILE: 'checkpoint.yml',
        'INPUT_SAVE-EVERY': '5m',
        'INPUT_ON-INCOMPLETE': 'fail',
        'INPUT_MAX-CONTINUATIONS': '10',
        INPUT_COMMAND: 'run',
        STAMP: stamp,
      };
      const epochNs0 = BigInt(Date.now()) * 1_000_000n;
      const t0 = performance.now();
      await new Promise((resolve, reject) => {
        const child = spawn(NODE, v.args, { cwd: ws, env, stdio: 'ignore' });
        child.on('error', reject);
        child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}`))));
      });
      const exited = performance.now() - t0;
      // `node -e 0` starts nothing: its figure is spawn to exit. The others: spawn to the stamp they write.
      if (name === 'node-e-0') times[name].push(exited);
      else times[name].push(Number(BigInt(fs.readFileSync(stamp, 'utf8').trim()) - epochNs0) / 1e6);
    }
  }
  const med = {};
  for (const [name, t] of Object.entries(times)) {
    med[name] = median(t);
    log(`cold start, ${name}: ${t.map((x) => x.toFixed(0)).join(', ')} ms`);
  }
  const cacheRatio = med.cache / med['bare-cache'];
  const noneRatio = med.none / med['node-e-0'];
  rows.push({
    id: '1a',
    what: `cold start of dist/main to the first unit started, store: cache, restore misses (${med.cache.toFixed(0)} ms), against a bare @actions/cache restore miss on the same local service (${med['bare-cache'].toFixed(0)} ms)`,
    value: `${cacheRatio.toFixed(2)}×`,
    n: ROUNDS,
    target: '≤ 1.25×',
    result: cacheRatio <= 1.25 ? 'PASS' : 'MISS',
    ms: med.cache,
  });
  rows.push({
    id: '1b',
    what: `cold start of dist/main to the first unit started, store: none (${med.none.toFixed(0)} ms), against \`node -e 0\` to its exit (${med['node-e-0'].toFixed(0)} ms)`,
    value: `${noneRatio.toFixed(2)}×`,
    n: ROUNDS,
    target: '< 1.5×',
    result: noneRatio < 1.5 ? 'PASS' : 'MISS',
    ms: med.none,
  });

  // ------------------------------------------------------------------------------------ 2. bundle sizes
  for (const entry of ['main', 'post', 'cli']) {
    const dir = path.join(REPO, 'dist', entry);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.js'));
    const entryBytes = fs.statSync(path.join(dir, 'index.js')).size;
    const total = files.reduce((a, f) => a + fs.statSync(path.join(dir, f)).size, 0);
    rows.push({
      id: `2${'abc'['main post cli'.split(' ').indexOf(entry)]}`,
      what: `dist/${entry}: index.js, and with its lazily loaded chunks (${files.length - 1})`,
      value: `${(entryBytes / 1e6).toFixed(2)} MB · ${(total / 1e6).toFixed(2)} MB`,
      n: 1,
      target: '',
      result: '',
    });
  }

  // ------------------------------------------------------------------------------------ 3. save/restore 10,000 units
  const ws = path.join(work, 'save');
  fs.mkdirSync(ws, { recursive: true });
  fs.writeFileSync(
    path.join(ws, 'checkpoint.yml'),
    [
      'version: 1',
      'name: big',
      'steps:',
      '  - id: units',
      '    run: "true"',
      '    batch:',
      '      range: { from: 0, to: 10000 }',
      '      size: 1',
      '      parallel: 2',
      '',
    ].join('\n'),
  );
  log('making a real checkpoint of 10,000 done units (checkpoint run) ...');
  const made = spawnSync(NODE, [path.join(REPO, 'dist', 'cli', 'index.js'), 'run', '--run', 'big-key'], {
    cwd: ws,
    encoding: 'utf8',
    env: { ...process.env, CI: 'true' },
  });
  if (made.status !== 0) throw new Error(`checkpoint run failed: ${made.stderr}`);
  const root = path.join(ws, '.checkpoints');
  const ck = await Checkpoint.read(root, 'big-key');
  const runDirBytes = dirBytes(path.join(root, 'big-key'));
  const saves = [];
  const restores = [];
  for (let i = 0; i < 3; i++) {
    const restoreEnv = setEnv({
      ...services.envFor({ runId: 9000, runAttempt: i + 1 }),
      GITHUB_WORKSPACE: ws,
    });
    const cwd = process.cwd();
    process.chdir(ws);
    const quiet = process.stdout.write;
    process.stdout.write = () => true;
    try {
      const mk = (workspace, rootDir) =>
        new CheckpointSync({
          store: new CacheStore(),
          key: 'big-key',
          root: rootDir,
          runId: 'big-key',
          planName: 'big',
          workspace,
          temp: path.join(work, 'temp'),
          paths: [],
          ghRunId: 9000,
          attempt: i + 1,
          state: new MemoryStateProvider(),
          log: { info: () => {}, warning: (m) => log(`warning: ${m}`) },
        });
      const t0 = performance.now();
      const ok = await mk(ws, root).save(ck.state.seq, 'bench');
      saves.push(performance.now() - t0);
      if (!ok) throw new Error('save failed');
      const fresh = path.join(work, `restore-${i}`);
      fs.mkdirSync(fresh, { recursive: true });
      process.chdir(fresh);
      process.env.GITHUB_WORKSPACE = fresh;
      const t1 = performance.now();
      const r = await mk(fresh, path.join(fresh, '.checkpoints')).restore();
      restores.push(performance.now() - t1);
      if (r.source !== 'store') throw new Error(`restore found nothing (${r.source})`);
      const back = await Checkpoint.read(path.join(fresh, '.checkpoints'), 'big-key');
      if (back.state.steps.get('units')?.unitsDone !== 10000)
        throw new Error('restored checkpoint lacks units');
    } finally {
      process.stdout.write = quiet;
      process.chdir(cwd);
      restoreEnv();
    }
  }
  log(
    `save: ${saves.map((t) => t.toFixed(0)).join(', ')} ms; restore: ${restores.map((t) => t.toFixed(0)).join(', ')} ms`,
  );
  rows.push({
    id: '3a',
    what: `save a checkpoint of 10,000 done units (run folder ${(runDirBytes / 1e6).toFixed(2)} MB) through the local cache service`,
    value: `${median(saves).toFixed(0)} ms`,
    n: saves.length,
    target: '',
    result: '',
  });
  rows.push({
    id: '3b',
    what: 'restore it into an empty workspace (download, check digest, unpack, read with the engine)',
    value: `${median(restores).toFixed(0)} ms`,
    n: restores.length,
    target: '',
    result: '',
  });
} finally {
  await services.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

function dirBytes(dir) {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    n += e.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return n;
}

const load = os.loadavg();
const md = [
  '# checkpoint action bench',
  '',
  `${new Date().toISOString()} · ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'} · Node ${spawnSync(NODE, ['--version'], { encoding: 'utf8' }).stdout.trim()} · load average ${load[0].toFixed(2)}`,
  '',
  '| # | measurement | median | n | target | result |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.id} | ${r.what} | ${r.value} | ${r.n} | ${r.target} | ${r.result} |`),
  '',
].join('\n');
fs.mkdirSync(RESULTS, { recursive: true });
fs.writeFileSync(path.join(RESULTS, 'action.md'), md);
fs.writeFileSync(
  path.join(RESULTS, 'action.json'),
  `${JSON.stringify({ at: new Date().toISOString(), load, rows }, null, 2)}\n`,
);
process.stdout.write(md);
