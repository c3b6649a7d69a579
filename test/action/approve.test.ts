// The action's `approve` input, in process (dist cannot be rebuilt here): main as the runner starts it
// (INPUT_* variables, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files), `store: none` so the checkpoint stays in the
// workspace between jobs. Judged by the job's result, its outputs, its summary and what the units did.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run as mainRun } from '../../src/action/main-run.js';
import { MemoryStateProvider } from '../../src/action/state.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { approvalOf } from '../../src/journal/state.js';
import { readLines } from '../support/cli.js';
import { parseFileCommand } from '../support/runner.js';
import { captureCore, setEnv } from '../support/services/index.js';

const PLAN = `version: 1
name: gate
concurrency: 2
steps:
  - id: a
    run: echo a >> "$EFFECTS"
  - id: b
    needs: [a]
    approval: true
    run: echo b >> "$EFFECTS"
  - id: c
    needs: [b]
    run: echo c >> "$EFFECTS"
  - id: d
    needs: []
    run: echo d >> "$EFFECTS"
`;

let base: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'approve-action-'));
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function workspace(): Promise<string> {
  const ws = await mkdtemp(join(base, 'ws-'));
  await writeFile(join(ws, 'checkpoint.yml'), PLAN);
  return ws;
}

interface JobResult {
  exitCode: number;
  outputs: Record<string, string>;
  summary: string;
  errors: string[];
  stdout: string;
}

/** One job: main in process, in `ws`, with these inputs (the rest at their defaults). */
async function job(ws: string, inputs: Record<string, string>, actor = 'octocat'): Promise<JobResult> {
  const files = { out: join(ws, '.out'), summary: join(ws, '.summary'), state: join(ws, '.state') };
  for (const f of Object.values(files)) await writeFile(f, '');
  const vars: Record<string, string | undefined> = {
    GITHUB_WORKSPACE: ws,
    GITHUB_WORKFLOW: 'ci',
    GITHUB_JOB: 'release',
    GITHUB_RUN_ID: '77',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: actor,
    GITHUB_OUTPUT: files.out,
    GITHUB_STATE: files.state,
    GITHUB_STEP_SUMMARY: files.summary,
    RUNNER_TEMP: join(ws, '.temp'),
    EFFECTS: join(ws, 'effects.log'),
    INPUT_STORE: 'none',
  };
  for (const [k, v] of Object.entries(inputs)) vars[`INPUT_${k.toUpperCase()}`] = v;
  const restore = setEnv(vars);
  const exitBefore = process.exitCode;
  process.exitCode = 0;
  const cwd = process.cwd();
  const log = captureCore();
  let exitCode: number;
  try {
    process.chdir(ws);
    await mainRun(new MemoryStateProvider());
  } finally {
    process.chdir(cwd);
    log.restore();
    restore();
    exitCode = Number(process.exitCode ?? 0);
    process.exitCode = exitBefore;
  }
  return {
    exitCode,
    outputs: parseFileCommand(await readFile(files.out, 'utf8')),
    summary: await readFile(files.summary, 'utf8'),
    errors: log.errors(),
    stdout: log.lines.join('\n'),
  };
}

const sorted = async (ws: string) => [...(await readLines(join(ws, 'effects.log')))].sort();

describe('action input `approve`', () => {
  it('a run stops before the step; the next run with `approve: b` records GITHUB_ACTOR and finishes', async () => {
    const ws = await workspace();
    const first = await job(ws, { key: 'rel' });
    expect(first.exitCode, first.stdout).toBe(1);
    expect(first.errors.join('\n')).toMatch(
      /incomplete: 2 units remain; waiting for approval: b; run the workflow again with the input `approve: b`/,
    );
    expect(first.outputs).toMatchObject({ complete: 'false', 'steps-done': '2', 'units-remaining': '2' });
    expect(first.summary).toMatch(/\| b \| ✋ waiting for approval \| 0 \/ 1 \|/);
    expect(first.summary).toMatch(
      /✋ \*\*b\*\* is waiting for approval: .*`approve: b`.*`checkpoint approve b`/,
    );
    expect(first.summary).toMatch(/Ended: waiting for approval: b\./);
    expect(await sorted(ws)).toEqual(['a', 'd']);

    const second = await job(ws, { key: 'rel', approve: 'b' });
    expect(second.exitCode, second.stdout).toBe(0);
    expect(second.errors).toEqual([]);
    expect(second.stdout).toMatch(/^approved b \(by octocat\)$/m);
    expect(second.outputs).toMatchObject({ complete: 'true', 'units-remaining': '0' });
    expect(await sorted(ws)).toEqual(['a', 'b', 'c', 'd']);
    const ckpt = await Checkpoint.read(join(ws, '.checkpoints'), 'rel');
    expect(approvalOf(ckpt.state, 'b')).toMatchObject({ by: 'octocat' });
  }, 60_000);

  it('an unknown step or one without approval: true fails the step before anything runs', async () => {
    const ws = await workspace();
    const unknown = await job(ws, { key: 'rel', approve: 'b, nope' });
    expect(unknown.exitCode).toBe(1);
    expect(unknown.errors.join('\n')).toMatch(
      /input `approve`: no step "nope" in .*checkpoint.yml; steps that wait for approval: b/,
    );
    const plain = await job(ws, { key: 'rel', approve: 'a' });
    expect(plain.exitCode).toBe(1);
    expect(plain.errors.join('\n')).toMatch(/input `approve`: step "a" does not wait for approval/);
    expect(await readLines(join(ws, 'effects.log'))).toEqual([]);
  }, 60_000);

  it('approving up front works on a first run; `on-incomplete: dispatch` dispatches nothing while a step waits', async () => {
    const ws = await workspace();
    const upFront = await job(ws, { key: 'first', approve: 'b' }, 'alice');
    expect(upFront.exitCode, upFront.stdout).toBe(0);
    expect(upFront.outputs.complete).toBe('true');
    expect(await sorted(ws)).toEqual(['a', 'b', 'c', 'd']);

    const other = await workspace();
    const waiting = await job(other, { key: 'disp', 'on-incomplete': 'dispatch' });
    expect(waiting.exitCode).toBe(1);
    const errors = waiting.errors.join('\n');
    expect(errors).toMatch(/waiting for approval: b; run the workflow again with the input `approve: b`/);
    expect(errors).toMatch(/it continues this checkpoint \(key disp\)/);
    expect(errors).not.toMatch(/continuation|could not be dispatched/);
    expect(waiting.stdout).not.toMatch(/dispatched continuation/);
    // No continuation was counted either.
    await expect(readFile(join(other, '.checkpoints', 'disp', 'action.json'), 'utf8')).rejects.toThrow();

    const passes = await job(other, { key: 'disp', 'on-incomplete': 'success' });
    expect(passes.exitCode).toBe(0);
    expect(passes.outputs.complete).toBe('false');
    expect(passes.stdout).toMatch(/waiting for approval: b; .*the job passes \(on-incomplete: success\)/);
  }, 60_000);
});
