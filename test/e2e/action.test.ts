// The built action (dist/main, dist/post) run the way the runner runs it, against local cache and
// artifact services that the real @actions/cache and @actions/artifact talk to. Attempts are judged by
// what the units did (lines in an effects file outside the workspace), not by the action's own report.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as cache from '@actions/cache';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { packBundle } from '../../src/stores/bundle.js';
import { waitFor, watcherOf } from '../support/cli.js';
import { Job } from '../support/runner.js';
import { type Services, setEnv, startServices, withCoreLog } from '../support/services/index.js';

const UNITS = 24;
const PLAN = `version: 1
name: e2e
steps:
  - id: prepare
    run: echo "prepare" >> "$EFFECTS"
  - id: chunks
    run: |
      echo "start $CHECKPOINT_BATCH_START" >> "$EFFECTS"
      sleep 0.2
      # A unit stopped between its last write and its exit did its work but cannot report it, so it runs
      # again; ignoring SIGTERM for the last line makes "end" mean "recorded done" and the count exact.
      trap '' TERM
      echo "end $CHECKPOINT_BATCH_START" >> "$EFFECTS"
    batch:
      range: { from: 0, to: ${UNITS} }
      size: 1
      parallel: 2
`;

let services: Services;
let base: string;
let nextRun = 100;

beforeAll(async () => {
  services = await startServices();
  base = await mkdtemp(join(tmpdir(), 'action-e2e-'));
});

afterAll(async () => {
  await services?.stop();
  await rm(base, { recursive: true, force: true });
});

interface Scenario {
  effects: string;
  job(o: {
    attempt?: number;
    runId?: number;
    inputs?: Record<string, string>;
    plan?: string;
    env?: Record<string, string>;
  }): Promise<Job>;
}

async function scenario(name: string): Promise<Scenario> {
  const dir = await mkdtemp(join(base, `${name}-`));
  const effects = join(dir, 'effects.log');
  await writeFile(effects, '');
  let n = 0;
  return {
    effects,
    async job({
      attempt = 1,
      runId = 1,
      inputs = {},
      plan = PLAN,
      env = {},
    }: {
      attempt?: number;
      runId?: number;
      inputs?: Record<string, string>;
      plan?: string;
      env?: Record<string, string>;
    }) {
      n += 1;
      // Every attempt gets a new, empty workspace and temp folder, as on a fresh runner machine.
      const workspace = join(dir, `ws${n}`);
      const temp = join(dir, `temp${n}`);
      const job = new Job({
        workspace,
        temp,
        inputs,
        env: {
          ...services.envFor({ runId, runAttempt: attempt }),
          // The OIDC request pair a job with `id-token: write` gets; units must not see it either.
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'oidc-request-token',
          ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/oidc',
          RUNNER_TEMP: temp,
          EFFECTS: effects,
          ...env,
        },
      });
      await mkdir(workspace, { recursive: true });
      await writeFile(join(workspace, 'checkpoint.yml'), plan);
      return job;
    },
  };
}

function runIdOf(job: Job): string {
  return job.o.env.GITHUB_RUN_ID ?? '';
}

function lines(text: string, kind: 'start' | 'end'): number[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${kind} `))
    .map((l) => Number(l.slice(kind.length + 1)));
}

async function effectsText(s: Scenario): Promise<string> {
  return readFile(s.effects, 'utf8');
}

/** Attempt 1 is cancelled mid-way; attempt 2 starts on a new machine and finishes only what was left. */
async function cancelAndResume(store: 'cache' | 'artifact') {
  const s = await scenario(store);
  const runId = nextRun++;
  const inputs = { store, 'github-token': services.githubToken };
  const job1 = await s.job({ runId, attempt: 1, inputs });
  const main1 = await job1.start('main');
  await waitFor(async () => lines(await effectsText(s), 'end').length >= 6, 60_000);
  const cancelled = await main1.cancel();
  // Stopped by SIGINT within the runner's 7.5 s, not killed.
  expect(cancelled.signal).toBeNull();
  expect(cancelled.code).not.toBe(0);
  const post1 = await (await job1.start('post')).result;
  expect(post1.code, post1.stdout).toBe(0);
  expect(post1.stdout).toMatch(
    new RegExp(`saved checkpoint as checkpoint-v1-ci-build-${runId}-${runId}-1-\\d+`),
  );
  const afterFirst = await effectsText(s);
  const endedFirst = lines(afterFirst, 'end');
  expect(endedFirst.length).toBeLessThan(UNITS);

  const job2 = await s.job({ runId, attempt: 2, inputs });
  const { main, post } = await job2.run();
  expect(main.code, main.stdout).toBe(0);
  expect(main.outputs).toMatchObject({ complete: 'true', resumed: 'true', 'units-remaining': '0' });
  expect(main.stdout).toMatch(/restored checkpoint-v1-/);
  expect(post.code).toBe(0);

  const all = await effectsText(s);
  const ended = lines(all, 'end');
  // Every unit finished exactly once across both attempts; nothing finished in attempt 1 started again.
  expect([...ended].sort((a, b) => a - b)).toEqual(Array.from({ length: UNITS }, (_, i) => i));
  const startedSecond = lines(all.slice(afterFirst.length), 'start');
  for (const i of endedFirst) expect(startedSecond).not.toContain(i);
  expect(all.split('\n').filter((l) => l === 'prepare')).toHaveLength(1);
  expect(main.summary).toMatch(/e2e: complete/);
  return { s, main };
}

/** Two units that run for 5 minutes unless ended, each recording its pid. */
const LONG_UNITS = `version: 1
name: killed
steps:
  - id: long
    run: |
      echo "pid $$" >> "$EFFECTS"
      sleep 300
    batch: { range: { from: 0, to: 2 }, size: 1, parallel: 2 }
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('the action, end to end', () => {
  it('store: cache — a cancelled attempt continues on the next attempt and repeats no finished unit', async () => {
    await cancelAndResume('cache');
    expect(services.cache.entries().length).toBeGreaterThanOrEqual(2);
  });

  it('store: artifact — the same through workflow artifacts found with the REST API', async () => {
    await cancelAndResume('artifact');
  });

  it.each([
    'cache',
    'artifact',
  ] as const)('store: %s — an explicit key resumes across runs, and a completed checkpoint makes the next run a no-op', async (store) => {
    const s = await scenario(`key-${store}`);
    const common = { store, 'github-token': services.githubToken };
    const inputs = { ...common, key: `migrate-${nextRun}`, 'time-budget': '1s', 'on-incomplete': 'success' };
    const r1 = await (await s.job({ runId: nextRun++, inputs })).run();
    expect(r1.main.code, r1.main.stdout).toBe(0);
    expect(r1.main.outputs.complete).toBe('false');
    const ended1 = lines(await effectsText(s), 'end').length;
    expect(ended1).toBeLessThan(UNITS);

    const r2 = await (await s.job({ runId: nextRun++, inputs: { ...common, key: inputs.key } })).run();
    expect(r2.main.code, r2.main.stdout).toBe(0);
    expect(r2.main.outputs).toMatchObject({
      complete: 'true',
      resumed: 'true',
      'checkpoint-key': inputs.key,
    });
    const before3 = await effectsText(s);

    const r3 = await (await s.job({ runId: nextRun++, inputs: { ...common, key: inputs.key } })).run();
    expect(r3.main.code).toBe(0);
    expect(r3.main.outputs).toMatchObject({ complete: 'true', 'units-done': String(UNITS + 1) });
    expect(await effectsText(s)).toBe(before3);
    expect([...lines(before3, 'end')].sort((a, b) => a - b)).toEqual(
      Array.from({ length: UNITS }, (_, i) => i),
    );
  });

  it('reset: STEP:UNIT and STEP:ITEM run only those units again (and the dependents), by GITHUB_ACTOR', async () => {
    const s = await scenario('reset-units');
    const plan = `version: 1
name: units
steps:
  - id: chunks
    run: echo "chunk $CHECKPOINT_BATCH_INDEX" >> "$EFFECTS"
    batch: { range: { from: 0, to: 6 }, size: 1 }
  - id: files
    needs: []
    run: echo "file $CHECKPOINT_ITEM" >> "$EFFECTS"
    batch: { items: [a.csv, b.csv, c.csv] }
  - id: report
    needs: [chunks]
    run: echo report >> "$EFFECTS"
`;
    const common = { store: 'cache', 'github-token': services.githubToken, key: `units-${nextRun}` };
    const r1 = await (await s.job({ runId: nextRun++, inputs: common, plan })).run();
    expect(r1.main.code, r1.main.stdout).toBe(0);
    const before = await effectsText(s);
    const r2 = await (
      await s.job({
        runId: nextRun++,
        inputs: { ...common, reset: 'chunks:3-4, files:b.csv' },
        plan,
        env: { GITHUB_ACTOR: 'octocat' },
      })
    ).run();
    expect(r2.main.code, r2.main.stdout).toBe(0);
    expect(r2.main.stdout).toMatch(/reset chunks units 3-4 \[3, 5\): pending again \(by octocat\)/);
    expect(r2.main.stdout).toMatch(/reset report \(depends on a reset step\)/);
    expect(r2.main.outputs).toMatchObject({ complete: 'true', resumed: 'true' });
    const again = (await effectsText(s)).slice(before.length).split('\n').filter(Boolean).sort();
    expect(again).toEqual(['chunk 3', 'chunk 4', 'file b.csv', 'report']);
    // A unit outside the step fails the job before anything runs, naming the entry.
    const mark = await effectsText(s);
    const r3 = await (
      await s.job({ runId: nextRun++, inputs: { ...common, reset: 'chunks:9' }, plan })
    ).run();
    expect(r3.main.code).not.toBe(0);
    expect(r3.main.errors.join('\n')).toMatch(
      /input `reset`: step "chunks" has units 0 to 5 .*"chunks:9" is outside it/,
    );
    expect(await effectsText(s)).toBe(mark);
  });

  it('a cache outage during save is a warning: the job passes, and post saves once the service is back', async () => {
    const s = await scenario('outage');
    const job = await s.job({ runId: nextRun++ });
    services.cache.setFault('outage', 'save');
    let main: Awaited<ReturnType<Awaited<ReturnType<Job['start']>>['cancel']>>;
    try {
      // @actions/cache retries a 5xx five times with backoff (~25 s) before giving up.
      main = await (await job.start('main')).result;
    } finally {
      services.cache.setFault('none');
    }
    expect(main.code, main.stdout).toBe(0);
    expect(main.outputs.complete).toBe('true');
    expect(main.errors).toEqual([]);
    expect(main.warnings.join('\n')).toMatch(/cache save of checkpoint-v1-.* failed/);
    expect(main.summary).toMatch(/cache save of checkpoint-v1-/);
    const ck = await Checkpoint.read(join(job.o.workspace, '.checkpoints'), main.outputs['run-id'] ?? '');
    expect(ck.state.steps.get('chunks')?.unitsDone).toBe(UNITS);
    const entries = services.cache.entries().length;
    const post = await (await job.start('post')).result;
    expect(post.code).toBe(0);
    expect(post.stdout).toMatch(/saved checkpoint as checkpoint-v1-/);
    expect(services.cache.entries().length).toBe(entries + 1);
  }, 180_000);

  it('with signing-key, a forged newer entry is refused with a warning and the signed entry before it is used', async () => {
    const s = await scenario('forged');
    const runId = nextRun++;
    const inputs = { 'signing-key': 'correct horse battery staple' };
    const r1 = await (await s.job({ runId, attempt: 1, inputs })).run();
    expect(r1.main.code, r1.main.stdout).toBe(0);
    const key = r1.main.outputs['checkpoint-key'] ?? '';

    // Someone who can write cache entries but lacks the key saves a newer entry that claims all is done.
    const ws = (await s.job({ runId, attempt: 9, inputs })).o.workspace;
    const bundle = join(ws, '.checkpoint-action', 'bundle');
    await packBundle(bundle, {
      root: r1.main.state.root ?? '',
      runId: key,
      planName: 'e2e',
      seq: 10_000,
      key,
      signingKey: 'wrong key',
    });
    const restore = setEnv({ ...services.envFor({ runId, runAttempt: 9 }), GITHUB_WORKSPACE: ws });
    const cwd = process.cwd();
    process.chdir(ws);
    try {
      await withCoreLog(() =>
        cache.saveCache(['.checkpoint-action/bundle'], `checkpoint-v1-${key}-${runId}-9-1`),
      );
    } finally {
      process.chdir(cwd);
      restore();
    }

    const before = lines(await effectsText(s), 'end').length;
    const r2 = await (await s.job({ runId, attempt: 2, inputs })).run();
    expect(r2.main.code, r2.main.stdout).toBe(0);
    expect(r2.main.warnings.join('\n')).toMatch(
      /was refused: its signature does not match `signing-key`.*trying the entry before it/,
    );
    // The entry before the forgery is attempt 1's own, signed and complete: nothing runs again.
    expect(r2.main.outputs).toMatchObject({ resumed: 'true', complete: 'true' });
    expect(lines(await effectsText(s), 'end').length).toBe(before);
  });

  it('main killed outright: post ends the unit process groups it left running, then saves', async () => {
    // The engine's watcher is stopped first (as if it died with main): then nothing but post can end them
    // (with the watcher, see the next test).
    const s = await scenario('killed');
    const job = await s.job({ runId: nextRun++, plan: LONG_UNITS });
    const main = await job.start('main');
    const watcher = await waitFor(() => watcherOf(main.child.pid ?? -1), 30_000);
    process.kill(watcher, 'SIGSTOP');
    await waitFor(
      async () => (await effectsText(s)).split('\n').filter((l) => l.startsWith('pid ')).length === 2,
      30_000,
    );
    const pids = (await effectsText(s))
      .split('\n')
      .filter((l) => l.startsWith('pid '))
      .map((l) => Number(l.slice(4)));
    // Killed once both starts are journaled: post finds the units by their recorded process groups.
    const journal = join(job.o.workspace, '.checkpoints', `ci-build-${runIdOf(job)}`, 'journal.ndjson');
    await waitFor(
      async () => ((await readFile(journal, 'utf8').catch(() => '')).match(/"spawned"/g) ?? []).length === 2,
      30_000,
    );
    main.child.kill('SIGKILL');
    await main.result;
    expect(pids.every(alive)).toBe(true);
    const post = await (await job.start('post')).result;
    process.kill(watcher, 'SIGKILL');
    expect(post.code, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/ended 2 unit process group\(s\) left running by main/);
    expect(post.stdout).toMatch(/saved checkpoint as checkpoint-v1-/);
    await waitFor(async () => !pids.some(alive), 10_000);
  });

  it('secret-outputs: masked in the log before a later unit prints them, and kept out of the summary', async () => {
    const s = await scenario('secrets');
    const plan = `version: 1
name: secrets
steps:
  - id: login
    run: |
      echo "token=tok-4f9a2c71e" >> "$CHECKPOINT_OUTPUT"
      echo "user=alice" >> "$CHECKPOINT_OUTPUT"
    secret-outputs: [token]
  - id: use
    run: |
      echo "using $(grep -o 'tok-[a-z0-9]*' "$CHECKPOINT_OUTPUTS")"
      exit 1
`;
    const { main } = await (await s.job({ runId: nextRun++, plan })).run();
    const out = main.stdout;
    const mask = out.indexOf('::add-mask::tok-4f9a2c71e');
    expect(mask, out).toBeGreaterThanOrEqual(0);
    // The runner masks from the moment it is told: before the line that prints the value.
    expect(out.indexOf('using tok-4f9a2c71e')).toBeGreaterThan(mask);
    expect(out).not.toMatch(/::add-mask::alice/);
    expect(main.outputs.outputs).toContain('tok-4f9a2c71e');
    // The summary and the failure annotation carry the failed unit's log tail, without the value.
    expect(main.summary).toMatch(/using \*\*\*/);
    expect(main.summary).not.toContain('tok-4f9a2c71e');
    expect(main.errors.join('\n')).not.toContain('tok-4f9a2c71e');
  });

  it('main killed outright: its watcher ends the units at once, and post saves', async () => {
    const s = await scenario('killed-launchers');
    const job = await s.job({ runId: nextRun++, plan: LONG_UNITS });
    const main = await job.start('main');
    const pidLines = async () => (await effectsText(s)).split('\n').filter((l) => l.startsWith('pid '));
    await waitFor(async () => (await pidLines()).length === 2, 30_000);
    const pids = (await pidLines()).map((l) => Number(l.slice(4)));
    main.child.kill('SIGKILL');
    await main.result;
    // No post needed for that: the watcher sees its engine gone and ends the units and what they started.
    await waitFor(async () => !pids.some(alive), 10_000);
    const post = await (await job.start('post')).result;
    expect(post.code, post.stdout).toBe(0);
    expect(post.stdout).toMatch(/saved checkpoint as checkpoint-v1-/);
  });

  it('on-incomplete: fail ends the job failed with a message; dispatch starts the workflow again, up to max-continuations', async () => {
    const s = await scenario('incomplete');
    const failed = await (await s.job({ runId: nextRun++, inputs: { 'time-budget': '1s' } })).run();
    expect(failed.main.code).toBe(1);
    expect(failed.main.errors.join('\n')).toMatch(
      /incomplete: \d+ units remain; the checkpoint is saved as checkpoint-v1-\S+ in the cache store: re-run the job/,
    );
    expect(failed.main.outputs.complete).toBe('false');

    // A stand-in for the REST API that records workflow_dispatch calls.
    const all: Array<{ url: string; body: string; auth: string }> = [];
    // The API also gets the cache REST calls (listing entries to prune): only dispatches count here.
    const dispatches = () => all.filter((c) => c.url.endsWith('/dispatches'));
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
      });
      req.on('end', () => {
        all.push({ url: req.url ?? '', body, auth: req.headers.authorization ?? '' });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    try {
      const inputs = {
        key: `dispatch-${nextRun}`,
        'time-budget': '1s',
        'on-incomplete': 'dispatch',
        'max-continuations': '1',
        'github-token': 'ghs_dispatch',
      };
      const env = {
        GITHUB_API_URL: `http://127.0.0.1:${port}`,
        GITHUB_WORKFLOW_REF: 'octo-org/octo-repo/.github/workflows/backfill.yml@refs/heads/main',
        GITHUB_REF: 'refs/heads/main',
      };
      const first = await s.job({ runId: nextRun++, inputs });
      Object.assign(first.o.env, env);
      const r1 = await first.run();
      expect(r1.main.code, r1.main.stdout).toBe(0);
      expect(dispatches()).toHaveLength(1);
      expect(dispatches()[0]?.url).toBe(
        '/repos/octo-org/octo-repo/actions/workflows/backfill.yml/dispatches',
      );
      expect(JSON.parse(dispatches()[0]?.body ?? '{}')).toEqual({ ref: 'refs/heads/main' });
      expect(dispatches()[0]?.auth).toBe('Bearer ghs_dispatch');

      // The dispatched run finds the checkpoint through the key, sees one continuation used, and stops there.
      const second = await s.job({ runId: nextRun++, inputs });
      Object.assign(second.o.env, env);
      const r2 = await second.run();
      expect(r2.main.outputs.resumed).toBe('true');
      if (r2.main.outputs.complete !== 'true') {
        expect(r2.main.code).toBe(1);
        expect(r2.main.errors.join('\n')).toMatch(/after 1 continuations \(max-continuations\)/);
        expect(dispatches()).toHaveLength(1);
      }
    } finally {
      server.close();
    }
  });

  it("the runner's runtime tokens never reach a unit", async () => {
    const s = await scenario('env');
    const plan = `version: 1
name: env
steps:
  - id: show
    run: env >> "$EFFECTS"
`;
    const { main } = await (await s.job({ runId: nextRun++, plan })).run();
    expect(main.code, main.stdout).toBe(0);
    const seen = await effectsText(s);
    expect(seen).toMatch(/^CHECKPOINT_STEP=show$/m);
    for (const name of [
      'ACTIONS_RUNTIME_TOKEN',
      'ACTIONS_RESULTS_URL',
      'ACTIONS_CACHE_URL',
      'ACTIONS_RUNTIME_URL',
      'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
      'ACTIONS_ID_TOKEN_REQUEST_URL',
    ])
      expect(seen).not.toMatch(new RegExp(`^${name}=`, 'm'));
    expect(seen).not.toContain(services.envFor().ACTIONS_RUNTIME_TOKEN);
  });

  it('bad input fails the step before anything runs, naming the input, the value and the fix', async () => {
    const s = await scenario('bad-input');
    const job = await s.job({ runId: nextRun++, inputs: { store: 's3' } });
    const { main, post } = await job.run();
    expect(main.code).toBe(1);
    expect(main.errors.join('\n')).toMatch(/input `store`: expected one of cache, artifact, none, got "s3"/);
    expect(await effectsText(s)).toBe('');
    expect(post.code).toBe(0);
  });
});
