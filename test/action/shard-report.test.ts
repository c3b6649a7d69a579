// The action's `command: report` for a sharded matrix, in process (dist cannot be rebuilt here): three
// matrix jobs' checkpoints, made by the real CLI with --shard and saved by CheckpointSync to the local cache
// service under each shard's key, then gathered by a report job in a fresh workspace. Judged by the outputs
// and the job summary the runner would get.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INPUT_DEFAULTS, InputError, readInputs } from '../../src/action/inputs.js';
import { baseKey, shardKeys } from '../../src/action/keys.js';
import { run as mainRun } from '../../src/action/main-run.js';
import { MemoryStateProvider } from '../../src/action/state.js';
import { CheckpointSync } from '../../src/action/sync.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { CacheStore } from '../../src/stores/cache.js';
import { runCli } from '../support/cli.js';
import { parseFileCommand } from '../support/runner.js';
import { captureCore, type Services, setEnv, startServices } from '../support/services/index.js';

const PLAN = `version: 1
name: sharded
steps:
  - id: setup
    run: echo "setup $CHECKPOINT_SHARD_INDEX" >> "$EFFECTS"
  - id: once
    shards: first
    run: echo "once" >> "$EFFECTS"
  - id: nums
    run: echo "nums $CHECKPOINT_SHARD_INDEX $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END" >> "$EFFECTS"
    batch: { range: { from: 0, to: 30 }, size: 4, parallel: 2 }
`;

const WORKFLOW = `name: ci
on: push
jobs:
  backfill:
    runs-on: ubuntu-latest
    strategy: { matrix: { shard: [0, 1, 2] } }
    steps:
      - uses: org/checkpoint-action@v1
        with: { shard: "\${{ strategy.job-index }}/\${{ strategy.job-total }}" }
  report:
    needs: backfill
    if: always()
    runs-on: ubuntu-latest
    steps:
      - uses: org/checkpoint-action@v1
        with: { command: report, shard: "*/3" }
`;

let services: Services;
let base: string;
let nextRun = 500;

beforeAll(async () => {
  services = await startServices();
  base = await mkdtemp(join(tmpdir(), 'shard-report-'));
});

afterAll(async () => {
  await services?.stop();
  await rm(base, { recursive: true, force: true });
});

/** Runs `fn` in `dir` as the runner would (the cache hashes the bundle path relative to the working directory). */
async function inDir<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(cwd);
  }
}

async function workspace(name: string, plan = PLAN): Promise<string> {
  const ws = await mkdtemp(join(base, `${name}-`));
  await writeFile(join(ws, 'checkpoint.yml'), plan);
  await mkdir(join(ws, '.github', 'workflows'), { recursive: true });
  await writeFile(join(ws, '.github', 'workflows', 'ci.yml'), WORKFLOW);
  return ws;
}

/**
 * One matrix job: the plan run as shard `shard` (the CLI, as the action's main runs it, in the run folder named
 * after the key), then saved by CheckpointSync under that key.
 */
async function matrixJob(o: { runId: number; key: string; shard: string; effects: string }): Promise<void> {
  const ws = await workspace('matrix');
  const root = join(ws, '.checkpoints');
  const r = await runCli(['run', '--shard', o.shard, '--run', o.key, '--dir', root], {
    cwd: ws,
    env: { EFFECTS: o.effects },
  });
  expect(r.code, r.stdout + r.stderr).toBe(0);
  const restore = setEnv(services.envFor({ runId: o.runId, runAttempt: 1 }));
  const log = captureCore();
  try {
    const sync = new CheckpointSync({
      store: new CacheStore(),
      key: o.key,
      root,
      runId: o.key,
      planName: 'sharded',
      workspace: ws,
      temp: join(ws, '.temp'),
      paths: [],
      ghRunId: o.runId,
      attempt: 1,
      state: new MemoryStateProvider(),
      log: { info: () => {}, warning: (m) => log.lines.push(`warning: ${m}`) },
    });
    const progress = (await Checkpoint.read(root, o.key)).state.seq;
    expect(await inDir(ws, () => sync.save(progress, 'test'))).toBe(true);
  } finally {
    log.restore();
    restore();
  }
  expect(log.warnings()).toEqual([]);
}

interface ReportResult {
  outputs: Record<string, string>;
  summary: string;
  exitCode: number;
  errors: string[];
  warnings: string[];
  stdout: string;
  workspace: string;
}

/** A job in a fresh workspace: main as the runner starts it (inputs, env and files), in process. */
async function reportJob(
  runId: number,
  inputs: Record<string, string>,
  env: Record<string, string> = {},
  plan = PLAN,
): Promise<ReportResult> {
  const ws = await workspace('report', plan);
  const files = { out: join(ws, '.out'), summary: join(ws, '.summary'), state: join(ws, '.state') };
  for (const f of Object.values(files)) await writeFile(f, '');
  const vars: Record<string, string | undefined> = {
    ...services.envFor({ runId, runAttempt: 1 }),
    GITHUB_WORKSPACE: ws,
    GITHUB_WORKFLOW: 'ci',
    GITHUB_JOB: 'report',
    GITHUB_WORKFLOW_REF: `${services.repository.full}/.github/workflows/ci.yml@refs/heads/main`,
    GITHUB_OUTPUT: files.out,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
    RUNNER_TEMP: join(ws, '.temp'),
    ...env,
  };
  for (const [k, v] of Object.entries(inputs)) vars[`INPUT_${k.toUpperCase()}`] = v;
  const restore = setEnv(vars);
  const exitBefore = process.exitCode;
  process.exitCode = 0;
  const log = captureCore();
  let exitCode: number;
  try {
    await inDir(ws, () => mainRun(new MemoryStateProvider()));
  } finally {
    log.restore();
    restore();
    exitCode = Number(process.exitCode ?? 0);
    process.exitCode = exitBefore;
  }
  return {
    outputs: parseFileCommand(await readFile(files.out, 'utf8')),
    summary: await readFile(files.summary, 'utf8'),
    exitCode,
    errors: log.errors(),
    warnings: log.warnings(),
    stdout: log.lines.join('\n'),
    workspace: ws,
  };
}

describe('command: report over a sharded matrix', () => {
  it('the matrix jobs themselves through main (`shard: I/N`), then the report job', async () => {
    const runId = nextRun++;
    const effects = join(base, `effects-${runId}`);
    for (const i of [0, 1]) {
      const r = await reportJob(runId, { shard: `${i}/2` }, { GITHUB_JOB: 'backfill', EFFECTS: effects });
      expect(r.exitCode, r.stdout).toBe(0);
      expect(r.outputs).toMatchObject({
        complete: 'true',
        'run-id': `ci-backfill-shard${i}of2-${runId}`,
        'checkpoint-key': `ci-backfill-shard${i}of2-${runId}`,
      });
      expect(r.stdout).toMatch(
        new RegExp(`starting run ci-backfill-shard${i}of2-${runId} of plan sharded as shard ${i}/2`),
      );
      expect(r.stdout).toMatch(
        new RegExp(`saved checkpoint as checkpoint-v1-ci-backfill-shard${i}of2-${runId}-${runId}-1-`),
      );
      expect(r.summary).toMatch(new RegExp(`Run \`ci-backfill-shard${i}of2-${runId}\` · shard ${i}/2`));
    }
    const lines = (await readFile(effects, 'utf8')).split('\n');
    expect(lines.filter((l) => l === 'once')).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith('nums 0 ')).map((l) => l.slice(7))).toEqual(
      expect.arrayContaining(['0 4', '4 8', '8 12', '12 15']),
    );
    const report = await reportJob(runId, { command: 'report', shard: '*/2' });
    expect(report.exitCode, report.stdout).toBe(0);
    // setup ×2, once ×1, nums: [0,15) and [15,30) in chunks of 4 → 4 + 4.
    expect(report.outputs).toMatchObject({ complete: 'true', 'units-done': '11', 'units-remaining': '0' });
  }, 180_000);

  it('restores every shard by its default key (the matrix job found from `needs:`): incomplete while a shard is missing, then complete', async () => {
    const runId = nextRun++;
    const effects = join(base, `effects-${runId}`);
    const keys = [0, 1, 2].map((i) => baseKey({ workflow: 'ci', job: 'backfill', shard: `${i}/3`, runId }));
    expect(keys[1]).toBe(`ci-backfill-shard1of3-${runId}`);
    await matrixJob({ runId, key: keys[0] as string, shard: '0/3', effects });
    await matrixJob({ runId, key: keys[2] as string, shard: '2/3', effects });

    const partial = await reportJob(runId, { command: 'report', shard: '*/3' });
    expect(partial.exitCode, partial.stdout).toBe(0);
    expect(partial.errors).toEqual([]);
    expect(partial.outputs).toMatchObject({
      complete: 'false',
      'checkpoint-key': keys.join(','),
      'steps-remaining': '2',
    });
    expect(partial.summary).toMatch(/^## ⏸️ sharded: incomplete across 3 shards/);
    expect(partial.summary).toMatch(/no checkpoint for shard 1\/3: its work counts as remaining/);
    expect(partial.summary).toMatch(/\| 1\/3 \| — \| ❔ missing \|/);

    await matrixJob({ runId, key: keys[1] as string, shard: '1/3', effects });
    const full = await reportJob(runId, { command: 'report', shard: '3' });
    expect(full.exitCode, full.stdout).toBe(0);
    expect(full.errors).toEqual([]);
    // setup ×3, once ×1, nums: parts [0,10) [10,20) [20,30) in chunks of 4 → 3 + 3 + 3.
    expect(full.outputs).toMatchObject({
      complete: 'true',
      resumed: 'true',
      'steps-done': '3',
      'steps-remaining': '0',
      'units-done': '13',
      'units-remaining': '0',
      'checkpoint-key': keys.join(','),
      'run-id': keys.join(','),
    });
    expect(full.summary).toMatch(/^## ✅ sharded: complete across 3 shards/);
    expect(full.summary).toMatch(/no range was done twice/);
    expect(full.stdout).toMatch(/restored checkpoint-v1-ci-backfill-shard2of3-/);
    // What the units did agrees: each number once, on its own shard.
    const nums = (await readFile(effects, 'utf8')).split('\n').filter((l) => l.startsWith('nums '));
    const shardOf = new Map<number, Set<number>>();
    for (const l of nums) {
      const [, sh, start, end] = l.split(' ').map(Number) as [number, number, number, number];
      for (let x = start; x < end; x++) shardOf.set(x, (shardOf.get(x) ?? new Set()).add(sh));
    }
    expect([...shardOf.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i));
    for (const [x, shards] of shardOf)
      expect(shards.size, `number ${x} ran on shards ${[...shards]}`).toBe(1);
  }, 180_000);

  it('with an explicit key the shards are `<key>-shardIofN`', async () => {
    const runId = nextRun++;
    const effects = join(base, `effects-${runId}`);
    for (const i of [0, 1, 2]) {
      const key = baseKey({ key: 'bf', workflow: 'ci', job: 'backfill', shard: `${i}/3`, runId });
      expect(key).toBe(`bf-shard${i}of3`);
      await matrixJob({ runId, key, shard: `${i}/3`, effects });
    }
    // No workflow file needed: the key says where the shards are.
    const r = await reportJob(
      runId,
      { command: 'report', shard: '*/3', key: 'bf' },
      { GITHUB_WORKFLOW_REF: '' },
    );
    expect(r.exitCode, r.stdout).toBe(0);
    expect(r.outputs).toMatchObject({
      complete: 'true',
      'checkpoint-key': 'bf-shard0of3,bf-shard1of3,bf-shard2of3',
    });
  }, 180_000);

  it('shards that do not add up fail the step, naming the problem; complete=false', async () => {
    const runId = nextRun++;
    const effects = join(base, `effects-${runId}`);
    const keys = [0, 1, 2].map((i) => baseKey({ workflow: 'ci', job: 'backfill', shard: `${i}/3`, runId }));
    await matrixJob({ runId, key: keys[0] as string, shard: '0/3', effects });
    // Shard 1's job ran with another N.
    await matrixJob({ runId, key: keys[1] as string, shard: '1/2', effects });
    const r = await reportJob(runId, { command: 'report', shard: '*/3' });
    expect(r.exitCode).toBe(1);
    expect(r.outputs.complete).toBe('false');
    expect(r.errors.join('\n')).toMatch(
      /the shard counts differ: .* is shard 1\/2; every shard must be run with the same N/,
    );
    expect(r.summary).toMatch(/^## ❌ sharded: inconsistent across 3 shards[\s\S]*> \[!CAUTION\]/);
  }, 180_000);

  it('input errors name the input, the value and the fix', async () => {
    const runId = nextRun++;
    const noNeeds = await reportJob(runId, { command: 'report', shard: '*/3' }, { GITHUB_JOB: 'backfill' });
    expect(noNeeds.exitCode).toBe(1);
    expect(noNeeds.errors[0]).toMatch(
      /input `key`: `command: report` without `key` looks for the checkpoints of the matrix job this job `needs`, but job "backfill" has no `needs:`; set the same `key` in the matrix job and in this job/,
    );
    const iOfN = await reportJob(runId, { command: 'report', shard: '1/3' });
    expect(iOfN.errors[0]).toMatch(
      /input `shard`: with `command: report`, give the number of shards to gather, `N` or `\*\/N` .*got "1\/3"/,
    );
    const nForRun = await reportJob(runId, { shard: '*/3' });
    expect(nForRun.errors[0]).toMatch(
      /input `shard`: expected I\/N .*got "\*\/3"; `N` and `\*\/N` are for `command: report`/,
    );
  }, 60_000);
});

// Units holding a multiple of FAIL_EVERY fail (no retries): a shard gets partway, deterministically.
const GROW = `version: 1
name: grow
steps:
  - id: once
    shards: first
    run: echo "once" >> "$EFFECTS"
  - id: nums
    run: |
      if [ -n "$FAIL_EVERY" ] && [ $(( (CHECKPOINT_BATCH_END - 1) / FAIL_EVERY )) -gt $(( (CHECKPOINT_BATCH_START - 1) / FAIL_EVERY )) ]; then exit 1; fi
      echo "nums $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END" >> "$EFFECTS"
    batch: { range: { from: 1, to: 41 }, size: 2, parallel: 2 }
`;

describe('a matrix that grows between two runs', () => {
  it('2 shards partway, `command: report` saves `<key>-merged`, 3 shards of a later run start from it and finish: each number once', async () => {
    const first = nextRun++;
    const key = `grow-${first}`;
    const effects = join(base, `effects-${first}`);
    for (const i of [0, 1]) {
      const r = await reportJob(
        first,
        { shard: `${i}/2`, key },
        { GITHUB_JOB: 'backfill', EFFECTS: effects, FAIL_EVERY: '7' },
        GROW,
      );
      expect(r.stdout).toMatch(new RegExp(`saved checkpoint as checkpoint-v1-${key}-shard${i}of2-`));
    }
    const merge = await reportJob(first, { command: 'report', shard: '*/2', key }, {}, GROW);
    expect(merge.outputs).toMatchObject({ complete: 'false' });
    expect(merge.stdout).toMatch(
      new RegExp(`merged 2 shards \\(\\d+/21 units done\\) and saved them under key ${key}-merged`),
    );
    expect(merge.stdout).toMatch(new RegExp(`saved checkpoint as checkpoint-v1-${key}-merged-`));

    // A later workflow run with 3 jobs: no shard key of theirs has an entry, so each starts from the merge.
    const second = nextRun++;
    for (const i of [0, 1, 2]) {
      const r = await reportJob(
        second,
        { shard: `${i}/3`, key },
        { GITHUB_JOB: 'backfill', EFFECTS: effects },
        GROW,
      );
      expect(r.exitCode, r.stdout).toBe(0);
      expect(r.stdout).toMatch(
        new RegExp(
          `shard ${i}/3 starts from the campaign's merged checkpoint ${key}-merged \\(2 shards merged\\)`,
        ),
      );
      expect(r.outputs).toMatchObject({ complete: 'true', resumed: 'true' });
    }
    const report = await reportJob(second, { command: 'report', shard: '*/3', key }, {}, GROW);
    expect(report.exitCode, report.stdout).toBe(0);
    expect(report.errors).toEqual([]);
    expect(report.outputs).toMatchObject({ complete: 'true', 'units-remaining': '0' });
    expect(report.summary).toMatch(/Started from merge `grow-\d+-merged` of 2 shards/);

    const lines = (await readFile(effects, 'utf8')).split('\n');
    expect(lines.filter((l) => l === 'once')).toHaveLength(1);
    const count = new Map<number, number>();
    const totals = new Set<string>();
    for (const l of lines.filter((x) => x.startsWith('nums '))) {
      const [, total, s, e] = l.split(' ') as [string, string, string, string];
      totals.add(total);
      for (let x = Number(s); x < Number(e); x++) count.set(x, (count.get(x) ?? 0) + 1);
    }
    expect(totals).toEqual(new Set(['2', '3']));
    expect([...count.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const [x, c] of count) expect(c, `number ${x} done ${c} times`).toBe(1);
  }, 180_000);
});

const GATED = `version: 1
name: gated
steps:
  - id: once
    shards: first
    run: echo "once $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL" >> "$EFFECTS"
  - id: nums
    needs: []
    run: |
      if [ -n "$FAIL_EVERY" ] && [ $(( (CHECKPOINT_BATCH_END - 1) / FAIL_EVERY )) -gt $(( (CHECKPOINT_BATCH_START - 1) / FAIL_EVERY )) ]; then exit 1; fi
      echo "nums $CHECKPOINT_SHARD_TOTAL $CHECKPOINT_BATCH_START $CHECKPOINT_BATCH_END" >> "$EFFECTS"
    batch: { range: { from: 1, to: 41 }, size: 2, parallel: 2 }
  - id: gate
    needs: [nums]
    approval: true
    run: echo "gate $CHECKPOINT_SHARD_INDEX/$CHECKPOINT_SHARD_TOTAL" >> "$EFFECTS"
`;

describe('approve and reset on a shard that starts from the merge', () => {
  it('apply to the run seeded from the merge: nothing merged runs again but what is reset', async () => {
    const first = nextRun++;
    const key = `gated-${first}`;
    const effects = join(base, `effects-${first}`);
    for (const i of [0, 1]) {
      const r = await reportJob(
        first,
        { shard: `${i}/2`, key },
        { GITHUB_JOB: 'backfill', EFFECTS: effects, FAIL_EVERY: '7' },
        GATED,
      );
      expect(r.exitCode, r.stdout).not.toBe(0);
    }
    const merge = await reportJob(first, { command: 'report', shard: '*/2', key }, {}, GATED);
    expect(merge.stdout).toMatch(new RegExp(`saved checkpoint as checkpoint-v1-${key}-merged-`));

    const second = nextRun++;
    for (const i of [0, 1, 2]) {
      const r = await reportJob(
        second,
        { shard: `${i}/3`, key, approve: 'gate', ...(i === 0 ? { reset: 'once' } : {}) },
        { GITHUB_JOB: 'backfill', EFFECTS: effects, GITHUB_ACTOR: 'octocat' },
        GATED,
      );
      expect(r.exitCode, r.stdout).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`shard ${i}/3 starts from the campaign's merged checkpoint`));
      expect(r.stdout).toMatch(
        /from merge gated-\d+-merged of 2 shards: nums part \[\d+, \d+\) with \d+ left/,
      );
      expect(r.outputs).toMatchObject({ complete: 'true', resumed: 'true' });
      const ck = await Checkpoint.read(join(r.workspace, '.checkpoints'), `${key}-shard${i}of3`);
      expect(ck.state.merge?.run).toBe(`${key}-merged`);
      expect(ck.state.approvals?.get('gate')?.by).toBe('octocat');
    }
    const report = await reportJob(second, { command: 'report', shard: '*/3', key }, {}, GATED);
    expect(report.exitCode, report.stdout).toBe(0);
    expect(report.outputs).toMatchObject({ complete: 'true', 'units-remaining': '0' });

    const lines = (await readFile(effects, 'utf8')).split('\n');
    // `once` ran on the first matrix's shard 0 and again where it was reset: the new matrix's shard 0.
    expect(lines.filter((l) => l.startsWith('once '))).toEqual(['once 0/2', 'once 0/3']);
    expect(lines.filter((l) => l.startsWith('gate ')).sort()).toEqual(['gate 0/3', 'gate 1/3', 'gate 2/3']);
    const count = new Map<number, number>();
    for (const l of lines.filter((x) => x.startsWith('nums '))) {
      const [, , s, e] = l.split(' ') as [string, string, string, string];
      for (let x = Number(s); x < Number(e); x++) count.set(x, (count.get(x) ?? 0) + 1);
    }
    expect([...count.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    for (const [x, c] of count) expect(c, `number ${x} done ${c} times`).toBe(1);
  }, 180_000);
});

describe('the shard input and the shard keys', () => {
  const read = (given: Record<string, string>) => {
    const all: Record<string, string> = { ...INPUT_DEFAULTS, 'github-token': 'ghs_x', ...given };
    return readInputs((n) => all[n] ?? '', { workspace: '/w' });
  };

  it('`I/N` for a run, `N` or `*/N` for command: report', () => {
    expect(read({ shard: '1/4' })).toMatchObject({ shard: '1/4' });
    expect(read({ shard: '1/4' }).shards).toBeUndefined();
    expect(read({ command: 'report', shard: '*/4' })).toMatchObject({ shards: 4 });
    expect(read({ command: 'report', shard: '4' })).toMatchObject({ shards: 4 });
    expect(read({ command: 'report', shard: '4' }).shard).toBeUndefined();
    expect(read({ command: 'report' }).shards).toBeUndefined();
    for (const [given, message] of [
      [{ shard: '4' }, /input `shard`: expected I\/N .*got "4"; `N` and `\*\/N` are for `command: report`/],
      [{ command: 'report', shard: '0' }, /input `shard`: with `command: report`, .*got "0"/],
      [{ command: 'report', shard: '257' }, /from 1 to 256/],
      [
        { command: 'report', shard: '2/4' },
        /give the number of shards to gather, `N` or `\*\/N`.*got "2\/4"/,
      ],
    ] as const) {
      expect(() => read(given), JSON.stringify(given)).toThrow(InputError);
      expect(() => read(given), JSON.stringify(given)).toThrow(message);
    }
    // Reported together with the other bad inputs.
    expect(() => read({ store: 'x', shard: '4' })).toThrow(/`store`[\s\S]*`shard`/);
  });

  it('every shard has its own key, with or without an explicit key', () => {
    const o = { workflow: 'CI / nightly', job: 'backfill', runId: 7 };
    expect(shardKeys(o, 3)).toEqual([
      'CI_nightly-backfill-shard0of3-7',
      'CI_nightly-backfill-shard1of3-7',
      'CI_nightly-backfill-shard2of3-7',
    ]);
    expect(shardKeys({ ...o, key: 'bf' }, 2)).toEqual(['bf-shard0of2', 'bf-shard1of2']);
    expect(baseKey({ ...o, key: 'bf', shard: '1/2' })).toBe('bf-shard1of2');
    expect(baseKey({ ...o, key: 'bf' })).toBe('bf');
  });
});
