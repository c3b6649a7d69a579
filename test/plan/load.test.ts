import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlanError } from '../../src/plan/errors.js';
import { DEFAULT_RETRY, displayFile, loadPlan, parsePlan } from '../../src/plan/load.js';
import type { Plan } from '../../src/plan/types.js';

const FILE = 'checkpoint.yml';

/** The PlanError message parsePlan throws for `text`. */
function problems(text: string, file = FILE): string[] {
  try {
    parsePlan(text, file);
  } catch (err) {
    expect(err).toBeInstanceOf(PlanError);
    const e = err as PlanError;
    expect(e.name).toBe('PlanError');
    expect(e.message).toBe(e.problems.join('\n'));
    return [...e.problems];
  }
  throw new Error('expected parsePlan to throw');
}

function plan(text: string, opts?: Parameters<typeof parsePlan>[2]): Plan {
  return parsePlan(text, FILE, { defaultConcurrency: 3, ...opts });
}

/** A minimal valid plan with extra step lines. */
function oneStep(extra: string): string {
  return `version: 1\nsteps:\n  - id: a\n    run: echo a\n${extra}`;
}

const DESIGN_EXAMPLE = `
version: 1
name: nightly-backfill
shell: bash
concurrency: 2
env: { REGION: eu, PORT: 5432, DEBUG: false }
defaults:
  timeout: 30m
  retry: { attempts: 3, delay: 2s, backoff: 2, max-delay: 1m }
steps:
  - id: setup
    run: ./scripts/setup.sh
    always: true
  - id: schema
    name: Create schema
    run: ./migrate.sh schema
    rollback: ./migrate.sh drop-schema
    inputs: ["sql/schema/**", "migrate.sh"]
  - id: backfill
    needs: [schema]
    run: ./backfill.sh "$CHECKPOINT_BATCH_START" "$CHECKPOINT_BATCH_END"
    working-directory: db/
    timeout: 10m
    env: { REGION: us, BATCH: "yes" }
    batch:
      range: { from: 0, to: 40000000 }
      size: 100000
      parallel: 4
      order: any
      max-failures: 0
    on-change: rerun
  - id: report
    needs: [backfill]
    run: |
      ./report.sh > "$CHECKPOINT_STATE_DIR/report.txt"
      echo done
`;

describe('parsePlan: valid plans', () => {
  it('normalises the design example', () => {
    const p = plan(DESIGN_EXAMPLE);
    const cwd = process.cwd();
    expect(p.version).toBe(1);
    expect(p.name).toBe('nightly-backfill');
    expect(p.file).toBe(path.join(cwd, FILE));
    expect(p.dir).toBe(cwd);
    expect(p.shell).toEqual({ spec: 'bash', argv: ['bash', '-eo', 'pipefail', '-c'] });
    expect(p.concurrency).toBe(2);
    expect(p.env).toEqual({ REGION: 'eu', PORT: '5432', DEBUG: 'false' });
    expect(p.steps.map((s) => s.id)).toEqual(['setup', 'schema', 'backfill', 'report']);

    const [setup, schema, backfill, report] = p.steps;
    expect(setup).toEqual({
      id: 'setup',
      name: 'setup',
      run: './scripts/setup.sh',
      env: { REGION: 'eu', PORT: '5432', DEBUG: 'false' },
      workingDirectory: cwd,
      workingDirectoryRel: '.',
      timeoutMs: 30 * 60_000,
      retry: { attempts: 3, delayMs: 2_000, backoff: 2, maxDelayMs: 60_000 },
      needs: [],
      always: true,
      approval: false,
      rollback: undefined,
      secretOutputs: [],
      inputs: [],
      onChange: 'rerun',
      batch: undefined,
      index: 0,
      shards: 'all',
    });
    expect(schema?.name).toBe('Create schema');
    expect(schema?.needs).toEqual(['setup']);
    expect(schema?.rollback).toBe('./migrate.sh drop-schema');
    expect(schema?.inputs).toEqual(['sql/schema/**', 'migrate.sh']);
    expect(backfill?.needs).toEqual(['schema']);
    expect(backfill?.env).toEqual({ REGION: 'us', PORT: '5432', DEBUG: 'false', BATCH: 'yes' });
    expect(backfill?.workingDirectory).toBe(path.join(cwd, 'db'));
    expect(backfill?.workingDirectoryRel).toBe('db/');
    expect(backfill?.timeoutMs).toBe(10 * 60_000);
    expect(backfill?.batch).toEqual({
      space: { kind: 'range', from: 0, to: 40_000_000 },
      size: 100_000,
      parallel: 4,
      order: 'any',
      maxFailures: { kind: 'count', count: 0 },
    });
    expect(report?.run).toBe('./report.sh > "$CHECKPOINT_STATE_DIR/report.txt"\necho done\n');
    expect(report?.index).toBe(3);
  });

  it('applies built-in defaults', () => {
    const p = plan(oneStep(''));
    expect(p.name).toBe(path.basename(process.cwd()));
    expect(p.concurrency).toBe(3);
    expect(p.shell.argv).toEqual(['bash', '-eo', 'pipefail', '-c']);
    expect(p.env).toEqual({});
    const s = p.steps[0];
    expect(s?.timeoutMs).toBeUndefined();
    expect(s?.retry).toEqual(DEFAULT_RETRY);
    expect(s?.retry).toEqual({ attempts: 1, delayMs: 1_000, backoff: 2, maxDelayMs: 60_000 });
    expect(s?.onChange).toBe('rerun');
    expect(s?.always).toBe(false);
  });

  it('uses the CPU count when neither the plan nor the caller sets concurrency', () => {
    expect(parsePlan(oneStep(''), FILE).concurrency).toBe(os.availableParallelism());
  });

  it('lets the caller override concurrency, which batch steps inherit', () => {
    const p = plan(
      `version: 1\nconcurrency: 2\nsteps:\n  - id: a\n    run: x\n    batch: { items: [a, b] }\n`,
      {
        concurrency: 7,
      },
    );
    expect(p.concurrency).toBe(7);
    expect(p.steps[0]?.batch?.parallel).toBe(7);
  });

  it('names the plan after its directory', () => {
    const p = parsePlan(oneStep(''), '/srv/jobs/nightly/checkpoint.yml');
    expect(p.name).toBe('nightly');
    expect(p.dir).toBe('/srv/jobs/nightly');
    expect(p.steps[0]?.workingDirectory).toBe('/srv/jobs/nightly');
  });

  it.each([
    ['bash', ['bash', '-eo', 'pipefail', '-c']],
    ['sh', ['sh', '-ec']],
    ['python3 -c', ['python3', '-c']],
    ['  node   -e ', ['node', '-e']],
  ])('shell %j → %j', (spec, argv) => {
    const p = plan(`version: 1\nshell: ${JSON.stringify(spec)}\nsteps:\n  - id: a\n    run: x\n`);
    expect(p.shell).toEqual({ spec, argv });
  });

  it('defaults needs to the step before, and [] means none', () => {
    const p = plan(`
version: 1
steps:
  - { id: a, run: x }
  - { id: b, run: x }
  - { id: c, run: x, needs: [] }
  - { id: d, run: x }
  - { id: e, run: x, needs: [a, c, a] }
  - { id: f, run: x, needs: b }
`);
    expect(Object.fromEntries(p.steps.map((s) => [s.id, s.needs]))).toEqual({
      a: [],
      b: ['a'],
      c: [],
      d: ['c'],
      e: ['a', 'c'],
      f: ['b'],
    });
  });

  it('merges retry field by field: step over defaults over built-in', () => {
    const p = plan(`
version: 1
defaults:
  retry: { delay: 5s, max-delay: 2m }
  on-change: keep
  timeout: 90
steps:
  - { id: a, run: x, retry: 4 }
  - { id: b, run: x, retry: { backoff: 1.5 }, on-change: rerun, timeout: 1h30m }
  - { id: c, run: x }
`);
    const [a, b, c] = p.steps;
    expect(a?.retry).toEqual({ attempts: 4, delayMs: 5_000, backoff: 2, maxDelayMs: 120_000 });
    expect(b?.retry).toEqual({ attempts: 1, delayMs: 5_000, backoff: 1.5, maxDelayMs: 120_000 });
    expect(c?.retry).toEqual({ attempts: 1, delayMs: 5_000, backoff: 2, maxDelayMs: 120_000 });
    expect([a?.onChange, b?.onChange, c?.onChange]).toEqual(['keep', 'rerun', 'keep']);
    expect([a?.timeoutMs, b?.timeoutMs, c?.timeoutMs]).toEqual([90_000, 5_400_000, 90_000]);
  });

  it('reads every form of batch items and max-failures', () => {
    const p = plan(`
version: 1
concurrency: 5
steps:
  - { id: l, run: x, batch: { items: [a, 2, b-c], max-failures: 3 } }
  - { id: f, run: x, batch: { items: { file: ids.txt }, size: 10, max-failures: "25%" } }
  - { id: g, run: x, batch: { items: { glob: "data/*.csv" }, order: sequential, parallel: 2 } }
  - { id: c, run: x, batch: { items: { command: "seq 1 10" }, max-failures: 12.5% } }
  - { id: r, run: x, batch: { range: { from: -5, to: -5 } } }
`);
    const batches = p.steps.map((s) => s.batch);
    expect(batches[0]).toEqual({
      space: { kind: 'items', source: { kind: 'list', items: ['a', '2', 'b-c'] } },
      size: 1,
      parallel: 5,
      order: 'any',
      maxFailures: { kind: 'count', count: 3 },
    });
    expect(batches[1]?.space).toEqual({ kind: 'items', source: { kind: 'file', file: 'ids.txt' } });
    expect(batches[1]?.maxFailures).toEqual({ kind: 'percent', percent: 25 });
    expect(batches[2]?.space).toEqual({ kind: 'items', source: { kind: 'glob', glob: 'data/*.csv' } });
    expect(batches[2]?.order).toBe('sequential');
    expect(batches[2]?.parallel).toBe(2);
    expect(batches[3]?.space).toEqual({ kind: 'items', source: { kind: 'command', command: 'seq 1 10' } });
    expect(batches[3]?.maxFailures).toEqual({ kind: 'percent', percent: 12.5 });
    expect(batches[4]?.space).toEqual({ kind: 'range', from: -5, to: -5 });
  });

  it('accepts YAML anchors and merge keys', () => {
    const q = plan(`
version: 1
steps:
  - &base { id: a, run: x, retry: 3, timeout: 5m }
  - { <<: *base, id: b }
`);
    expect(q.steps[1]).toMatchObject({ id: 'b', run: 'x', timeoutMs: 300_000, needs: ['a'] });
    expect(q.steps[1]?.retry.attempts).toBe(3);
  });

  it('accepts shards: first (DESIGN §7) and a byte order mark', () => {
    const p = plan(`\uFEFF${oneStep('    shards: first\n')}`);
    expect(p.steps[0]?.shards).toBe('first');
  });
});

describe('parsePlan: error messages', () => {
  it('says what was expected, and what it got', () => {
    expect(
      problems(
        `version: 1\nsteps:\n  - { id: a, run: x }\n  - { id: b, run: x }\n  - { id: c, run: x, batch: { range: { from: 0, to: 9 }, size: 10k } }\n`,
      ),
    ).toEqual(['checkpoint.yml: steps[2].batch.size: expected a positive integer, got "10k"']);
  });

  it('names unknown keys, lists the allowed ones and suggests the closest', () => {
    expect(problems(oneStep('    comand: make\n'))).toEqual([
      'checkpoint.yml: steps[0].comand: unknown key; allowed keys: id, name, run, env, working-directory, timeout, retry, needs, always, approval, secret-outputs, rollback, inputs, on-change, batch, shards (did you mean "run"?)',
    ]);
    expect(problems(oneStep('    working_directory: db\n'))[0]).toMatch(
      /^checkpoint\.yml: steps\[0\]\.working_directory: unknown key; allowed keys: .* \(did you mean "working-directory"\?\)$/,
    );
    expect(problems(oneStep('    depends_on: [x]\n'))[0]).toMatch(/\(did you mean "needs"\?\)$/);
    expect(problems(oneStep('    retry: { atempts: 3 }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.atempts: unknown key; allowed keys: attempts, delay, backoff, max-delay, on (did you mean "attempts"?)',
    ]);
    expect(problems(`verison: 1\n${oneStep('').replace('version: 1\n', '')}`)).toEqual([
      'checkpoint.yml: version: required; add "version: 1" at the top of the file',
      'checkpoint.yml: verison: unknown key; allowed keys: version, name, shell, concurrency, env, defaults, steps (did you mean "version"?)',
    ]);
    expect(problems(oneStep('    zzz: 1\n'))[0]).toMatch(
      /steps\[0\]\.zzz: unknown key; allowed keys: [a-z, -]+$/,
    );
  });

  it('says what a missing required key needs', () => {
    expect(problems(`version: 1\nsteps:\n  - id: a\n    run: x\n  - id: b\n`)).toEqual([
      'checkpoint.yml: steps[1].run: required; add a shell command to run',
    ]);
    expect(problems(`version: 1\nsteps:\n  - run: x\n`)).toEqual([
      'checkpoint.yml: steps[0].id: required; add an id like "build" (lowercase letters, digits, - and _)',
    ]);
    expect(problems(`version: 1\n`)).toEqual([
      'checkpoint.yml: steps: required; add "steps:" with a list of steps, each with an id and run',
    ]);
  });

  it('reports paths into defaults, env and lists', () => {
    expect(
      problems(`
version: 1
env: { REGION: null, "MY-VAR": x, "a b": 1 }
defaults: { retry: { attempts: 0 }, timeout: soon }
steps:
  - { id: a, run: x, needs: [b, 3], inputs: [ok, ""] }
  - { id: b, run: x, needs: [], batch: { items: [a, [b]] } }
`),
    ).toEqual([
      'checkpoint.yml: env.REGION: expected a string, number or boolean, got null; write REGION: "" for an empty value',
      'checkpoint.yml: env.MY-VAR: not a valid variable name; use letters, digits and _, not starting with a digit',
      'checkpoint.yml: env["a b"]: not a valid variable name; use letters, digits and _, not starting with a digit',
      'checkpoint.yml: defaults.timeout: expected a duration like 90s, 10m, 1h30m or 2d, got "soon"',
      'checkpoint.yml: defaults.retry.attempts: expected a positive number of tries (1 = no retry), got 0',
      'checkpoint.yml: steps[0].needs[1]: expected a step id, got 3',
      'checkpoint.yml: steps[0].inputs[1]: expected a file glob, got ""',
      'checkpoint.yml: steps[1].batch.items[1]: expected a single-line string or a number, got ["b"]',
    ]);
  });

  it('reports every problem, one per line', () => {
    const lines = problems(`
version: 2
concurrency: many
steps:
  - { id: Build, run: make, timeout: 0 }
  - { id: test, run: "", retry: "3", always: yes, on-change: maybe }
  - { id: pack, run: x, batch: { size: 0 } }
`);
    expect(lines).toEqual([
      'checkpoint.yml: version: expected 1 (the only plan format version), got 2',
      'checkpoint.yml: concurrency: expected a positive integer (most units running at once), got "many"',
      'checkpoint.yml: steps[0].id: expected an id of lowercase letters, digits, - and _, starting with a letter or digit, got "Build"; try "build"',
      'checkpoint.yml: steps[0].timeout: expected a duration above zero, like 90s or 10m, got 0',
      'checkpoint.yml: steps[1].run: expected a shell command (a non-empty string), got ""',
      'checkpoint.yml: steps[1].retry: expected a number of tries like 3, or a mapping {attempts, delay, backoff, max-delay, on}, got "3"',
      'checkpoint.yml: steps[1].always: expected true or false, got "yes"',
      'checkpoint.yml: steps[1].on-change: expected rerun or keep, got "maybe"',
      'checkpoint.yml: steps[2].batch.size: expected a positive integer, got 0',
      'checkpoint.yml: steps[2].batch: expected exactly one of range or items, got {"size":0}; add range: { from: 0, to: N } or items: [a, b, c]',
    ]);
  });

  it('checks batch shapes', () => {
    const batch = (b: string) => problems(oneStep(`    batch: ${b}\n`))[0];
    expect(batch('{ range: { from: 0, to: 10 }, items: [a] }')).toBe(
      'checkpoint.yml: steps[0].batch: use either range or items, not both',
    );
    expect(batch('{ range: { from: 10, to: 5 } }')).toBe(
      'checkpoint.yml: steps[0].batch.range.to: expected an integer >= from (10), got 5; the range is [from, to), half-open',
    );
    expect(batch('{ range: { from: 0 } }')).toBe(
      'checkpoint.yml: steps[0].batch.range.to: required; add to: N (the end, not included)',
    );
    expect(batch('{ range: { from: 0.5, to: 3 } }')).toBe(
      'checkpoint.yml: steps[0].batch.range.from: expected an integer, got 0.5',
    );
    expect(batch('{ items: { file: a, command: b } }')).toBe(
      'checkpoint.yml: steps[0].batch.items: use only one of file, glob, command or list, not file and command',
    );
    expect(batch('{ items: { fiel: a } }')).toBe(
      'checkpoint.yml: steps[0].batch.items.fiel: unknown key; allowed keys: file, glob, command, list, refresh (did you mean "file"?)',
    );
    expect(batch('{ items: ids.txt }')).toBe(
      'checkpoint.yml: steps[0].batch.items: expected a list of items, or one of {file: PATH}, {glob: PATTERN}, {command: COMMAND}, got "ids.txt"',
    );
    expect(batch('{ items: [a], max-failures: 101% }')).toBe(
      'checkpoint.yml: steps[0].batch.max-failures: expected a percentage from 0% to 100%, got "101%"',
    );
    expect(batch('{ items: [a], max-failures: -1 }')).toBe(
      'checkpoint.yml: steps[0].batch.max-failures: expected a number of failed units (0 or more) or a percentage like "10%", got -1',
    );
    expect(batch('{ items: [a], order: random }')).toBe(
      'checkpoint.yml: steps[0].batch.order: expected any or sequential, got "random"',
    );
  });

  it('checks retry mappings', () => {
    expect(problems(oneStep('    retry: { attempts: 2, delay: 1y, backoff: 0.5 }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.delay: expected a duration like 0s, 500ms, 2s or 1m, got "1y"',
      'checkpoint.yml: steps[0].retry.backoff: expected a number >= 1 (the factor between delays), got 0.5',
    ]);
    expect(problems(oneStep('    retry: 0\n'))).toEqual([
      'checkpoint.yml: steps[0].retry: expected a number of tries like 3, or a mapping {attempts, delay, backoff, max-delay, on}, got 0',
    ]);
  });

  it('reads retry.on: a list or one value; a step replaces the default list', () => {
    const p = plan(`
version: 1
defaults:
  retry: { attempts: 3, on: [1, timeout] }
steps:
  - { id: a, run: x }
  - { id: b, run: x, retry: { on: signal } }
  - { id: c, run: x, retry: { on: [any, 3, 3] } }
  - { id: d, run: x, retry: 2 }
`);
    const [a, b, c, d] = p.steps;
    expect(a?.retry.on).toEqual([1, 'timeout']);
    expect(b?.retry).toEqual({ attempts: 3, delayMs: 1_000, backoff: 2, maxDelayMs: 60_000, on: ['signal'] });
    expect(c?.retry.on).toEqual(['any', 3]);
    expect(d?.retry).toMatchObject({ attempts: 2, on: [1, 'timeout'] });
    expect(plan(oneStep('    retry: 3\n')).steps[0]?.retry.on).toBeUndefined();
  });

  it('checks retry.on with the path of each bad entry and the fix', () => {
    expect(problems(oneStep('    retry: { attempts: 2, on: [0, 256, 1.5, "3", timeouts, oom] }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.on[0]: expected an exit code from 1 to 255, timeout, signal or any, got 0; exit code 0 is success, not a failure',
      'checkpoint.yml: steps[0].retry.on[1]: expected an exit code from 1 to 255, timeout, signal or any, got 256; exit codes are whole numbers from 1 to 255',
      'checkpoint.yml: steps[0].retry.on[2]: expected an exit code from 1 to 255, timeout, signal or any, got 1.5; exit codes are whole numbers from 1 to 255',
      'checkpoint.yml: steps[0].retry.on[3]: expected an exit code from 1 to 255, timeout, signal or any, got "3"; write 3 without quotes',
      'checkpoint.yml: steps[0].retry.on[4]: expected an exit code from 1 to 255, timeout, signal or any, got "timeouts"; did you mean timeout?',
      'checkpoint.yml: steps[0].retry.on[5]: expected an exit code from 1 to 255, timeout, signal or any, got "oom"; e.g. on: [1, timeout]',
    ]);
    expect(problems(oneStep('    retry: { on: [] }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.on: expected at least one failure to retry, got []; to never retry, write attempts: 1',
    ]);
    expect(problems(oneStep('    retry: { on: { code: 1 } }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.on: expected an exit code from 1 to 255, timeout, signal or any, got {"code":1}; e.g. on: [1, timeout]',
    ]);
    expect(problems(oneStep('    retry: { attempts: 2, retry_on: [1] }\n'))).toEqual([
      'checkpoint.yml: steps[0].retry.retry_on: unknown key; allowed keys: attempts, delay, backoff, max-delay, on (did you mean "on"?)',
    ]);
  });

  it('truncates long values to 60 characters', () => {
    const long = 'x'.repeat(100);
    const [line] = problems(oneStep(`    timeout: ${long}\n`));
    const got = line?.split(', got ')[1] ?? '';
    expect(got).toHaveLength(60);
    expect(got).toBe(`"${'x'.repeat(58)}…`);
  });

  it('rejects top-level values that are not a plan', () => {
    expect(problems('')).toEqual(['checkpoint.yml: the file is empty; add "version: 1" and a list of steps']);
    expect(problems('# nothing\n')).toEqual([
      'checkpoint.yml: the file is empty; add "version: 1" and a list of steps',
    ]);
    expect(problems('hello')).toEqual([
      'checkpoint.yml: expected a mapping with version: 1 and steps, got "hello"',
    ]);
    expect(problems('version: 1\nsteps: []\n')).toEqual([
      'checkpoint.yml: steps: expected at least one step, got []; add "- id: NAME" with "run: COMMAND"',
    ]);
    expect(problems('version: 1\nsteps: { a: { run: x } }\n')).toEqual([
      'checkpoint.yml: steps: expected a list of steps, got {"a":{"run":"x"}}; write each step as "- id: NAME" followed by "run: COMMAND"',
    ]);
  });

  it('reports YAML syntax errors with line and column', () => {
    expect(problems('version: 1\nsteps:\n  - id: a\n    run: [echo\n')).toEqual([
      'checkpoint.yml:5:1: invalid YAML: flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(problems('version: 1\nversion: 1\n')).toEqual([
      'checkpoint.yml:2:1: invalid YAML: a key appears twice in the same mapping; keep one',
    ]);
    expect(problems('version: 1\n---\nsteps: []\n')).toEqual([
      'checkpoint.yml:2:1: invalid YAML: expected a single document; remove the "---" separator',
    ]);
    expect(problems('version: 1\nsteps:\n\t- id: a\n')[0]).toMatch(/^checkpoint\.yml:3:1: invalid YAML: /);
  });

  it('locates aliases without an anchor', () => {
    expect(problems('version: 1\nname: *nope\nsteps: []\n')).toEqual([
      'checkpoint.yml:2:7: invalid YAML: alias *nope has no anchor &nope before it',
    ]);
  });

  it('refuses alias bombs', () => {
    const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 12; i++)
      lines.push(
        `a${i}: &a${i} [${Array(10)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    expect(problems(`${lines.join('\n')}\n`)[0]).toMatch(
      /^checkpoint\.yml: invalid YAML: excessive alias count/,
    );
  });

  it('survives self-referencing YAML aliases', () => {
    expect(problems('version: 1\nsteps: &a [*a]\n')).toEqual([
      'checkpoint.yml: steps[0]: expected a step mapping, got [...]; e.g. - { id: build, run: make }',
    ]);
  });
});

describe('parsePlan: checks across steps', () => {
  it('names both indexes of a duplicate id', () => {
    expect(
      problems(`version: 1\nsteps:\n  - { id: a, run: x }\n  - { id: b, run: x }\n  - { id: a, run: y }\n`),
    ).toEqual(['checkpoint.yml: steps[2].id: duplicate id "a", also used by steps[0]; ids must be unique']);
  });

  it('names the step and the unknown id it needs, with a suggestion when close', () => {
    expect(
      problems(
        `version: 1\nsteps:\n  - { id: schema, run: x }\n  - { id: backfill, run: x, needs: [shema, zzz] }\n`,
      ),
    ).toEqual([
      'checkpoint.yml: steps[1].needs[0]: step "backfill" needs unknown step "shema" (did you mean "schema"?)',
      'checkpoint.yml: steps[1].needs[1]: step "backfill" needs unknown step "zzz"',
    ]);
    expect(
      problems(`version: 1\nsteps:\n  - { id: build, run: x }\n  - { id: b, run: x, needs: biuld }\n`),
    ).toEqual([
      'checkpoint.yml: steps[1].needs: step "b" needs unknown step "biuld" (did you mean "build"?)',
    ]);
  });

  it('rejects a step needing itself', () => {
    expect(problems(`version: 1\nsteps:\n  - { id: a, run: x, needs: [a] }\n`)).toEqual([
      'checkpoint.yml: steps[0].needs[0]: step "a" needs itself; remove "a"',
    ]);
  });

  it('reports cycles in run order, including needs defaulted to the step before', () => {
    expect(
      problems(
        `version: 1\nsteps:\n  - { id: a, run: x, needs: [c] }\n  - { id: b, run: x }\n  - { id: c, run: x }\n`,
      ),
    ).toEqual([
      'checkpoint.yml: steps: needs form a cycle: a -> b -> c -> a; b needs a and c needs b by default (the step before it); to break the cycle, give b or c needs: [] (or the steps it really needs), or remove c from the needs of a',
    ]);
    // The issue's plan: only build's needs were written.
    expect(
      problems(`version: 1\nsteps:\n  - { id: build, run: x, needs: [test] }\n  - { id: test, run: x }\n`),
    ).toEqual([
      'checkpoint.yml: steps: needs form a cycle: build -> test -> build; test needs build by default (the step before it); to break the cycle, give test needs: [] (or the steps it really needs), or remove test from the needs of build',
    ]);
    expect(
      problems(`
version: 1
steps:
  - { id: a, run: x, needs: [b] }
  - { id: b, run: x, needs: [a] }
  - { id: c, run: x, needs: [] }
  - { id: d, run: x, needs: [e] }
  - { id: e, run: x, needs: [d] }
`),
    ).toEqual([
      'checkpoint.yml: steps: needs form a cycle: a -> b -> a; to break the cycle, remove a from the needs of b, or remove b from the needs of a',
      'checkpoint.yml: steps: needs form a cycle: d -> e -> d; to break the cycle, remove d from the needs of e, or remove e from the needs of d',
    ]);
  });

  it('reports problems across steps together with schema problems', () => {
    expect(
      problems(
        `version: 1\nsteps:\n  - { id: a, run: x, timeout: never }\n  - { id: a, run: x, needs: [c] }\n`,
      ),
    ).toEqual([
      'checkpoint.yml: steps[0].timeout: expected a duration like 90s, 10m, 1h30m or 2d, got "never"',
      'checkpoint.yml: steps[1].id: duplicate id "a", also used by steps[0]; ids must be unique',
      'checkpoint.yml: steps[1].needs[0]: step "a" needs unknown step "c"',
    ]);
  });
});

describe('file names in messages', () => {
  it('shows the file relative to the working directory, or as given when shorter', () => {
    expect(displayFile('checkpoint.yml')).toBe('checkpoint.yml');
    expect(displayFile(path.join(process.cwd(), 'ci', 'checkpoint.yml'))).toBe(
      path.join('ci', 'checkpoint.yml'),
    );
    expect(displayFile('/definitely/elsewhere/c.yml')).toBe('/definitely/elsewhere/c.yml');
    expect(problems('version: 3\n', path.join(process.cwd(), 'ci', 'plan.yml'))[0]).toMatch(
      /^ci\/plan\.yml: version: /,
    );
  });
});

describe('loadPlan', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'plan-load-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads and parses a file', async () => {
    const file = path.join(dir, 'checkpoint.yml');
    await writeFile(file, oneStep(''));
    const p = await loadPlan(file, { defaultConcurrency: 1 });
    expect(p.file).toBe(file);
    expect(p.dir).toBe(dir);
    expect(p.name).toBe(path.basename(dir));
    expect(p.concurrency).toBe(1);
  });

  it('says how to fix a missing file', async () => {
    await expect(loadPlan('checkpoint.yml.missing')).rejects.toThrow(
      new PlanError('checkpoint.yml.missing: file not found; create it or pass -f PATH'),
    );
    await expect(loadPlan(path.join(dir, 'nope.yml'))).rejects.toBeInstanceOf(PlanError);
  });

  it('rejects a directory', async () => {
    await expect(loadPlan(dir)).rejects.toThrow(/: is a directory; pass the plan file with -f PATH$/);
  });
});
