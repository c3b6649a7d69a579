import { afterEach, describe, expect, it, vi } from 'vitest';
import { maskSecrets, redact, secretValues } from '../../src/action/secrets.js';
import { emptyState } from '../../src/journal/state.js';
import type { Plan, Step } from '../../src/plan/types.js';

function step(id: string, secretOutputs: string[] = []): Step {
  return {
    id,
    name: id,
    run: 'true',
    env: {},
    workingDirectory: '/',
    workingDirectoryRel: '.',
    timeoutMs: undefined,
    retry: { attempts: 1, delayMs: 0, backoff: 1, maxDelayMs: 0 },
    needs: [],
    always: false,
    rollback: undefined,
    secretOutputs,
    inputs: [],
    onChange: 'rerun',
    batch: undefined,
    index: 0,
  } as Step;
}

const plan = {
  version: 1,
  name: 'p',
  file: '/p/checkpoint.yml',
  dir: '/p',
  shell: { spec: 'bash', argv: ['bash', '-c'] },
  concurrency: 1,
  env: {},
  steps: [step('login', ['token', 'cert']), step('other')],
} as Plan;

function stateWith(outputs: Record<string, Record<string, string>>) {
  const state = emptyState('run-1', 'p');
  for (const [id, out] of Object.entries(outputs)) {
    state.steps.set(id, { outputs: out } as never);
  }
  return state;
}

describe('secret outputs', () => {
  afterEach(() => vi.restoreAllMocks());

  it('takes only the outputs the plan marks secret, of one step when asked', () => {
    const state = stateWith({
      login: { token: 's3cr3t-token', user: 'alice', cert: 'line-one\nline-two' },
      other: { token: 'not-marked' },
    });
    expect(secretValues(plan, state)).toEqual(['s3cr3t-token', 'line-one\nline-two']);
    expect(secretValues(plan, state, 'other')).toEqual([]);
  });

  it('announces each value once to the runner, and each line of a multi-line value', () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk).trimEnd());
      return true;
    });
    maskSecrets(['s3cr3t-token-a', 'line-one-a\nline-two-a\nab']);
    maskSecrets(['s3cr3t-token-a']);
    expect(lines).toEqual([
      '::add-mask::s3cr3t-token-a',
      '::add-mask::line-one-a%0Aline-two-a%0Aab',
      '::add-mask::line-one-a',
      '::add-mask::line-two-a',
    ]);
  });

  it('redacts values (and their lines) from text the runner does not mask, such as the job summary', () => {
    const text = 'token s3cr3t-token here; cert:\nline-one\nline-two\nthen line-two alone\n';
    expect(redact(text, ['s3cr3t-token', 'line-one\nline-two'])).toBe(
      'token *** here; cert:\n***\nthen *** alone\n',
    );
  });
});
