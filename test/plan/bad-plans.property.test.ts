// Property: whatever is wrong with a plan, parsePlan throws a PlanError whose every line starts with the
// file name, with no stack frames and no "[object Object]". Invalid plans are made by mutating valid ones
// (so the mistakes sit next to realistic content) or by writing garbage.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { PlanError } from '../../src/plan/errors.js';
import { parsePlan } from '../../src/plan/load.js';
import { STEP_ID_PATTERN } from '../../src/plan/schema.js';

const FILE = 'plans/checkpoint.yml';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

// ---------------------------------------------------------------------------------------------------------
// Valid plans

const idArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,7}$/);
const textArb = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /\S/.test(s));
const durationArb = fc.constantFrom<string | number>('90s', '10m', '1h30m', '2d', '500ms', '1d2h', 30, '45');
const envArb = fc.dictionary(
  fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,5}$/),
  fc.oneof(fc.string({ maxLength: 10 }), fc.integer(), fc.boolean()),
  { maxKeys: 3 },
);
const retryArb = fc.oneof(
  fc.integer({ min: 1, max: 5 }),
  fc.record(
    {
      attempts: fc.integer({ min: 1, max: 5 }),
      delay: fc.constantFrom('0s', '1s', '500ms', 2),
      backoff: fc.constantFrom(1, 1.5, 2),
      'max-delay': fc.constantFrom('1m', '30s'),
    },
    { requiredKeys: [] },
  ),
);
const batchArb = fc
  .record(
    {
      space: fc.oneof(
        fc
          .tuple(fc.integer({ min: -1000, max: 1000 }), fc.nat(1000))
          .map(([from, len]) => ({ range: { from, to: from + len } })),
        fc.record({
          items: fc.oneof(
            fc.array(fc.oneof(fc.stringMatching(/^[a-z0-9.]{1,6}$/), fc.integer()), { maxLength: 4 }),
            fc.constantFrom({ file: 'ids.txt' }, { glob: 'data/*.csv' }, { command: 'seq 1 10' }),
          ),
        }),
      ),
      rest: fc.record(
        {
          size: fc.integer({ min: 1, max: 1000 }),
          parallel: fc.integer({ min: 1, max: 8 }),
          order: fc.constantFrom('any', 'sequential'),
          'max-failures': fc.constantFrom(0, 3, '10%', '0%', '100%'),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: ['space', 'rest'] },
  )
  .map(({ space, rest }) => ({ ...space, ...rest }));

const stepExtrasArb = fc.record(
  {
    name: textArb,
    env: envArb,
    'working-directory': fc.constantFrom('.', 'db/', 'sub/dir'),
    timeout: durationArb,
    retry: retryArb,
    always: fc.boolean(),
    rollback: textArb,
    inputs: fc.constantFrom(['src/**'], ['a.sql', 'b/*.sql'], []),
    'on-change': fc.constantFrom('rerun', 'keep'),
    batch: batchArb,
    shards: fc.constantFrom('all', 'first'),
  },
  { requiredKeys: [] },
);

const validPlanArb: fc.Arbitrary<Obj> = fc
  .uniqueArray(idArb, { minLength: 1, maxLength: 5 })
  .chain((ids) =>
    fc.record(
      {
        top: fc.record(
          {
            name: textArb,
            shell: fc.constantFrom('bash', 'sh', 'python3 -c'),
            concurrency: fc.integer({ min: 1, max: 16 }),
            env: envArb,
            defaults: fc.record(
              { timeout: durationArb, retry: retryArb, 'on-change': fc.constantFrom('rerun', 'keep') },
              { requiredKeys: [] },
            ),
          },
          { requiredKeys: [] },
        ),
        steps: fc.tuple(
          ...ids.map((id, i) =>
            fc
              .record({
                run: textArb,
                extras: stepExtrasArb,
                // Needs only point backwards, so the valid plan has no cycle.
                needs: fc.option(fc.subarray(ids.slice(0, i)), { nil: undefined }),
              })
              .map(({ run, extras, needs }) => ({ id, run, ...extras, ...(needs ? { needs } : {}) })),
          ),
        ),
      },
      { requiredKeys: ['top', 'steps'] },
    ),
  )
  .map(({ top, steps }) => ({ version: 1, ...top, steps }));

// ---------------------------------------------------------------------------------------------------------
// Mutations. Each one leaves the plan invalid whatever state it finds it in, so the last one applied
// guarantees an invalid plan.

type Mutation = (plan: Obj) => void;

/** The steps as a non-empty list of mappings, restoring that shape if an earlier mutation broke it. */
function stepsOf(plan: Obj): Obj[] {
  if (!Array.isArray(plan.steps) || plan.steps.length === 0 || !plan.steps.every(isObj)) {
    plan.steps = [{ id: 'restored', run: 'true' }];
  }
  return plan.steps as Obj[];
}

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T;

const WRONG_TOP: Record<string, unknown[]> = {
  version: [2, '1', null, 0, 'one', [1]],
  concurrency: [0, -1, 1.5, '4', true, null],
  name: ['', 5, [], {}, null],
  shell: ['', '   ', 3, [], null],
  env: ['x', [1], 5, { A: null }, { A: [1] }, { '1A': 'x' }, { 'A=B': 'x' }, null],
  defaults: [
    'x',
    [],
    { timeout: 'x' },
    { retry: 0 },
    { 'on-change': 'x' },
    { retry: { attempts: -1 } },
    null,
  ],
  steps: [[], 'x', {}, null, 5, [5], [[]]],
};

const WRONG_STEP: Record<string, unknown[]> = {
  id: ['', 'A', '-a', 'a b', 5, null, [], 'é', '_x', 'a.b'],
  run: ['', ' ', null, 5, [], {}, ['a', 'b'], true],
  name: ['', 5, null, {}],
  env: ['x', [1], { A: null }, { 'a-b': 1 }],
  'working-directory': ['', 5, null, []],
  timeout: ['0s', 0, 'x', '1h30', -5, true, {}, '-1m', null, 'soon'],
  retry: [0, -1, 'x', 1.5, { attempts: 0 }, { delay: 'x' }, { backoff: 0.5 }, { attempts: 'x' }, [], null],
  needs: [5, {}, [5], [null], true, [[]]],
  always: ['yes', 1, null, 'true'],
  rollback: ['', 5, null],
  inputs: [5, [''], [1], {}, null],
  'on-change': ['x', true, null, 'Rerun'],
  shards: ['none', 1, null],
  batch: [
    'x',
    {},
    null,
    { range: { from: 0, to: 1 }, items: [] },
    { range: { from: 5, to: 1 } },
    { range: { from: 'a', to: 1 } },
    { range: { from: 0 } },
    { range: [0, 1] },
    { items: 'x' },
    { items: {} },
    { items: { file: 'a', glob: 'b' } },
    { items: [{}] },
    { items: ['a\nb'] },
    { items: [''] },
    { items: [true] },
    { items: { file: '' } },
    { range: { from: 0, to: 1 }, size: 0 },
    { range: { from: 0, to: 1 }, size: '10k' },
    { range: { from: 0, to: 1 }, parallel: 0 },
    { range: { from: 0, to: 1 }, order: 'random' },
    { range: { from: 0, to: 1 }, 'max-failures': '101%' },
    { range: { from: 0, to: 1 }, 'max-failures': -1 },
    { range: { from: 0, to: 1 }, 'max-failures': 'x' },
    { range: { from: 0.5, to: 1 } },
    { range: { from: 0, to: 1e300 } },
  ],
};

const ALLOWED = {
  top: ['version', 'name', 'shell', 'concurrency', 'env', 'defaults', 'steps'],
  defaults: ['timeout', 'retry', 'on-change'],
  step: Object.keys(WRONG_STEP),
  retry: ['attempts', 'delay', 'backoff', 'max-delay'],
  batch: ['range', 'items', 'size', 'parallel', 'order', 'max-failures'],
  range: ['from', 'to'],
  items: ['file', 'glob', 'command'],
};
const unknownKeyArb = fc
  .oneof(
    fc.string({ minLength: 1, maxLength: 12 }),
    fc.constantFrom(
      'comand',
      'depends_on',
      'working_directory',
      'Version',
      'step',
      '__proto__',
      'constructor',
      'toString',
    ),
  )
  // `<<` is YAML's merge key, not a key.
  .filter((k) => k !== '<<');

const wrongTypeArb = fc.oneof(
  fc.tuple(fc.constantFrom(...Object.keys(WRONG_TOP)), fc.nat()).map(
    ([key, n]): Mutation =>
      (plan) => {
        plan[key] = clone(pick(WRONG_TOP[key] as unknown[], n));
      },
  ),
  fc.tuple(fc.constantFrom(...Object.keys(WRONG_STEP)), fc.nat(), fc.nat()).map(
    ([key, n, i]): Mutation =>
      (plan) => {
        const steps = stepsOf(plan);
        pick(steps, i)[key] = clone(pick(WRONG_STEP[key] as unknown[], n));
      },
  ),
);

const unknownKeyMutationArb = fc
  .tuple(
    fc.constantFrom('top', 'defaults', 'step', 'retry', 'batch', 'range', 'items'),
    unknownKeyArb,
    fc.nat(),
  )
  .map(([where, rawKey, i]): Mutation => {
    return (plan) => {
      const key = (ALLOWED[where as keyof typeof ALLOWED] as string[]).includes(rawKey)
        ? `${rawKey}-x`
        : rawKey;
      const set = (o: Obj) =>
        Object.defineProperty(o, key, { value: 1, enumerable: true, writable: true, configurable: true });
      if (where === 'top') return void set(plan);
      if (where === 'defaults') {
        plan.defaults = isObj(plan.defaults) ? plan.defaults : {};
        return void set(plan.defaults as Obj);
      }
      const step = pick(stepsOf(plan), i);
      if (where === 'step') return void set(step);
      if (where === 'retry') {
        step.retry = isObj(step.retry) ? step.retry : {};
        return void set(step.retry as Obj);
      }
      if (where === 'batch') {
        step.batch = { range: { from: 0, to: 1 } };
        return void set(step.batch as Obj);
      }
      if (where === 'range') {
        const range = { from: 0, to: 10 };
        set(range);
        step.batch = { range };
        return;
      }
      const items = { file: 'ids.txt' };
      set(items);
      step.batch = { items };
    };
  });

const badIdArb = fc
  .tuple(
    fc.oneof(
      fc.string({ maxLength: 10 }).filter((s) => !STEP_ID_PATTERN.test(s)),
      fc.integer(),
      fc.constant(null),
    ),
    fc.nat(),
  )
  .map(
    ([id, i]): Mutation =>
      (plan) => {
        pick(stepsOf(plan), i).id = id;
      },
  );

const badDurationArb = fc
  .tuple(
    fc.oneof(
      fc.string({ maxLength: 10 }).filter((s) => !/^\s*\d+(\.\d+)?\s*$/.test(s) && !/^[\d.\sdhms]+$/.test(s)),
      fc.constantFrom('10x', '1h30', '30m1h', '-5s', '', ' ', '1.5.5s', 'ms', '1h 1h', '10M'),
      fc.integer({ max: -1 }),
    ),
    fc.constantFrom('timeout', 'defaults.timeout', 'retry.delay', 'defaults.retry.max-delay'),
    fc.nat(),
  )
  .map(
    ([value, where, i]): Mutation =>
      (plan) => {
        if (where === 'timeout') pick(stepsOf(plan), i).timeout = value;
        else if (where === 'defaults.timeout') plan.defaults = { timeout: value };
        else if (where === 'retry.delay') pick(stepsOf(plan), i).retry = { delay: value };
        else plan.defaults = { retry: { 'max-delay': value } };
      },
  );

const duplicateIdArb = fc.tuple(fc.nat(), fc.nat()).map(
  ([a, b]): Mutation =>
    (plan) => {
      const steps = stepsOf(plan);
      if (steps.length < 2) steps.push({ run: 'true' });
      const i = a % steps.length;
      let j = b % steps.length;
      if (j === i) j = (i + 1) % steps.length;
      const from = steps[i] as Obj;
      if (from.id === undefined) from.id = 'dup';
      (steps[j] as Obj).id = from.id;
    },
);

const cycleArb = fc.tuple(fc.boolean(), fc.nat()).map(
  ([self, i]): Mutation =>
    (plan) => {
      const steps = stepsOf(plan);
      if (self) {
        const s = pick(steps, i);
        if (typeof s.id !== 'string') s.id = 'selfish';
        s.needs = [s.id];
        return;
      }
      steps.forEach((s, k) => {
        s.id = `s${k}`;
      });
      if (steps.length < 2) steps.push({ id: `s${steps.length}`, run: 'true' });
      // s0 needs the last step; every later step needs the one before it (explicitly or by default).
      steps.forEach((s, k) => {
        s.needs = k === 0 ? [`s${steps.length - 1}`] : [`s${k - 1}`];
      });
    },
);

const missingArb = fc.tuple(fc.constantFrom('version', 'steps', 'id', 'run'), fc.nat()).map(
  ([key, i]): Mutation =>
    (plan) => {
      if (key === 'version' || key === 'steps') delete plan[key];
      else delete pick(stepsOf(plan), i)[key];
    },
);

const unknownNeedsArb = fc.nat().map(
  (i): Mutation =>
    (plan) => {
      pick(stepsOf(plan), i).needs = ['zz-not-a-step'];
    },
);

const mutationArb = fc.oneof(
  { arbitrary: wrongTypeArb, weight: 4 },
  { arbitrary: unknownKeyMutationArb, weight: 2 },
  { arbitrary: badIdArb, weight: 1 },
  { arbitrary: badDurationArb, weight: 1 },
  { arbitrary: duplicateIdArb, weight: 1 },
  { arbitrary: cycleArb, weight: 1 },
  { arbitrary: missingArb, weight: 1 },
  { arbitrary: unknownNeedsArb, weight: 1 },
);

/** Text that breaks any YAML mapping it is appended to. */
const GARBAGE = [
  '\n  bad: [unclosed',
  '\n\t- tab: indented',
  '\nsteps: []',
  '\n- a list after a mapping',
  '\n---\nsecond: document',
  '\n"unterminated',
  '\nkey: {a: 1',
  '\n  - : : :',
  '\n@reserved',
  '\nx: &anchor 1\ny: *missing',
];

const invalidTextArb = fc.oneof(
  // A valid plan, mutated.
  fc.tuple(validPlanArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 })).map(([plan, mutations]) => {
    const p = clone(plan);
    for (const m of mutations) m(p);
    return YAML.stringify(p);
  }),
  // A valid plan (maybe mutated too), with broken YAML appended.
  fc
    .tuple(validPlanArb, fc.array(mutationArb, { maxLength: 2 }), fc.constantFrom(...GARBAGE))
    .map(([plan, mutations, garbage]) => {
      const p = clone(plan);
      for (const m of mutations) m(p);
      return YAML.stringify(p) + garbage;
    }),
  // Anything at all.
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ maxLength: 200 }),
);

function assertPlanError(text: string): void {
  let thrown: unknown;
  try {
    parsePlan(text, FILE, { defaultConcurrency: 2 });
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof PlanError)) {
    throw new Error(
      `expected a PlanError, got ${thrown === undefined ? 'a valid plan' : String(thrown)}:\n${text}`,
    );
  }
  const message = thrown.message;
  expect(message.startsWith(FILE)).toBe(true);
  for (const line of message.split('\n')) expect(line.startsWith(FILE)).toBe(true);
  expect(message).not.toMatch(/^\s*at\s.*(:\d+:\d+\)?|<anonymous>)$/m);
  expect(message).not.toContain('[object Object]');
  expect(message).not.toContain('internal error');
  // zod's own English must never leak through.
  expect(message).not.toMatch(/Invalid input|Unrecognized key|Too small|Too big/);
}

describe('plan validation (property)', () => {
  it('accepts the valid plans the mutations start from', () => {
    fc.assert(
      fc.property(validPlanArb, (plan) => {
        const parsed = parsePlan(YAML.stringify(plan), FILE, { defaultConcurrency: 2 });
        expect(parsed.steps.map((s) => s.id)).toEqual((plan.steps as Obj[]).map((s) => s.id));
      }),
      { numRuns: 300 },
    );
  });

  it('rejects every invalid plan with a clean PlanError', () => {
    fc.assert(fc.property(invalidTextArb, assertPlanError), { numRuns: 2500 });
  });
});
