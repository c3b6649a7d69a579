import { describe, expect, it } from 'vitest';
import { INPUT_DEFAULTS, InputError, parseResetEntries, readInputs } from '../../src/action/inputs.js';
import { baseKey, entryName, entryPrefix } from '../../src/action/keys.js';

const ws = '/home/runner/work/repo/repo';

function read(given: Record<string, string>) {
  // What the runner gives: every declared input, with action.yml's default when the workflow set none.
  const all: Record<string, string> = { ...INPUT_DEFAULTS, 'github-token': 'ghs_x', ...given };
  return readInputs((n) => all[n] ?? '', { workspace: ws });
}

describe('action inputs', () => {
  it('defaults', () => {
    const i = read({});
    expect(i).toMatchObject({
      file: `${ws}/checkpoint.yml`,
      store: 'cache',
      saveEveryMs: 300_000,
      onIncomplete: 'fail',
      maxContinuations: 10,
      command: 'run',
      paths: [],
      reset: [],
      githubToken: 'ghs_x',
    });
    expect(i.key).toBeUndefined();
    expect(i.timeBudgetMs).toBeUndefined();
    expect(i.run).toBeUndefined();
  });

  it('parses every value', () => {
    const i = read({
      file: 'ci/plan.yml',
      store: 'artifact',
      key: 'backfill-2026',
      'time-budget': '1h30m',
      'save-every': '90s',
      'on-incomplete': 'dispatch',
      concurrency: '4',
      shard: '1/4',
      paths: 'out\nreports/summary.txt',
      'signing-key': 'k',
      reset: 'a, b\nc',
      'max-continuations': '3',
      command: 'status',
    });
    expect(i).toMatchObject({
      file: `${ws}/ci/plan.yml`,
      store: 'artifact',
      key: 'backfill-2026',
      timeBudgetMs: 5_400_000,
      saveEveryMs: 90_000,
      onIncomplete: 'dispatch',
      concurrency: 4,
      shard: '1/4',
      paths: [`${ws}/out`, `${ws}/reports/summary.txt`],
      signingKey: 'k',
      reset: ['a', 'b', 'c'],
      maxContinuations: 3,
      command: 'status',
    });
  });

  it.each([
    [{ store: 's3' }, /input `store`: expected one of cache, artifact, none, got "s3"/],
    [{ 'time-budget': '10 minutes' }, /input `time-budget`: expected a duration like 90s.*time-budget: 25m/],
    [{ 'save-every': '0s' }, /input `save-every`: must be more than zero/],
    [{ concurrency: '0' }, /input `concurrency`: expected a whole number of at least 1, got "0"/],
    [{ 'on-incomplete': 'retry' }, /input `on-incomplete`: expected one of fail, success, dispatch/],
    [{ command: 'deploy' }, /input `command`: expected one of run, status, rollback, report/],
    [{ key: 'has spaces' }, /input `key`: "has spaces" is not usable as a key/],
    [{ key: '../escape' }, /input `key`/],
    [{ shard: '2' }, /input `shard`: expected I\/N/],
    [{ paths: '../outside' }, /input `paths`: "..\/outside" is not inside the workspace/],
    [{ 'max-continuations': '-1' }, /input `max-continuations`/],
    [{ run: 'echo hi', file: 'other.yml' }, /inputs `file` \("other.yml"\) and `run` were both given/],
  ])('refuses %j with a message naming the input, value and fix', (given, message) => {
    expect(() => read(given)).toThrow(InputError);
    expect(() => read(given)).toThrow(message);
  });

  it('reset: STEP, STEP:UNIT and STEP:ITEM entries (the first colon splits; an item may hold more)', () => {
    const i = read({
      reset: 'report\nimport:3, import:3-5 import:data/a.csv\nfill:2..4 s3:s3://b/k import:3',
    });
    expect(i.reset).toEqual([
      'report',
      'import:3',
      'import:3-5',
      'import:data/a.csv',
      'fill:2..4',
      's3:s3://b/k',
      'import:3',
    ]);
    const e = parseResetEntries(i.reset);
    expect(e.steps).toEqual(['report']);
    // One entry per step, in order, each value once: whether `3` is an index or an item is told later,
    // against the plan and the frozen list.
    expect([...e.units]).toEqual([
      ['import', ['3', '3-5', 'data/a.csv']],
      ['fill', ['2..4']],
      ['s3', ['s3://b/k']],
    ]);
    expect(parseResetEntries([])).toEqual({ steps: [], units: new Map() });
  });

  it.each([
    [
      'import:',
      /input `reset`: "import:" names no unit; write STEP .*STEP:UNIT \(`import:3`, `import:3-5`\) or STEP:ITEM/,
    ],
    [':3', /input `reset`: ":3" names no step/],
  ])('reset: refuses %j', (reset, message) => {
    expect(() => read({ reset })).toThrow(InputError);
    expect(() => read({ reset })).toThrow(message);
  });

  it('reports every bad input at once', () => {
    expect(() => read({ store: 'x', concurrency: 'y' })).toThrow(/`store`[\s\S]*`concurrency`/);
  });

  it('keeps an inline script as written', () => {
    expect(read({ run: 'set -e\n  echo "a b"\n' }).run).toBe('set -e\n  echo "a b"\n');
  });
});

describe('keys', () => {
  it('defaults to workflow, job, shard and run id, made safe for keys and folder names', () => {
    expect(baseKey({ workflow: 'CI / nightly', job: 'build', runId: 123 })).toBe('CI_nightly-build-123');
    expect(baseKey({ workflow: 'ci', job: 'b', shard: '1/4', runId: 9 })).toBe('ci-b-shard1of4-9');
    expect(baseKey({ key: 'mine', workflow: 'ci', job: 'b', runId: 9 })).toBe('mine');
  });

  it('names entries checkpoint-v1-<key>-<run_id>-<attempt>-<seq> under the restore prefix', () => {
    expect(entryName('k', 5, 2, 7)).toBe('checkpoint-v1-k-5-2-7');
    expect(entryName('k', 5, 2, 7).startsWith(entryPrefix('k'))).toBe(true);
  });
});
