// checkpoint.schema.json: that the committed file is what src/plan/schema.ts generates, that it is a valid
// draft-07 schema, and that it agrees with the loader: every example plan passes, bad plans fail, and the
// patterns that stand in for the loader's own checks (durations, max-failures) accept exactly what it accepts.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv, type ErrorObject } from 'ajv';
import fc from 'fast-check';
import { globSync } from 'tinyglobby';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { planJsonSchema, planJsonSchemaText, SCHEMA_FILE } from '../../src/plan/json-schema.js';
import { parsePlan } from '../../src/plan/load.js';
import { planSchema } from '../../src/plan/schema.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const schemaPath = path.join(root, SCHEMA_FILE);

// Strict: unknown keywords and other schema mistakes throw here. Allowed: a type list like [string, number],
// and `oneOf: [{required: [range]}, {required: [items]}]` next to the properties it names.
const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true, strictRequired: false });
const validate = ajv.compile(JSON.parse(readFileSync(schemaPath, 'utf8')));

/** The schema's complaints about `plan`, one line each (`/steps/0/id: must match pattern ...`). */
function schemaErrors(plan: unknown): string[] {
  if (validate(plan)) return [];
  return (validate.errors ?? []).map(
    (e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`,
  );
}

/** Whether the loader accepts `plan` (parsed YAML), with its problems when it does not. */
function loaderErrors(plan: unknown): string[] {
  try {
    parsePlan(YAML.stringify(plan), 'checkpoint.yml');
    return [];
  } catch (err) {
    return (err as Error).message.split('\n');
  }
}

describe('checkpoint.schema.json', () => {
  it('is what src/plan/schema.ts generates', () => {
    const committed = readFileSync(schemaPath, 'utf8');
    // The file is formatted by biome (short lists on one line); compare the content, key order included.
    const normalised = `${JSON.stringify(JSON.parse(committed), null, 2)}\n`;
    expect(
      normalised,
      `${SCHEMA_FILE} differs from what src/plan/schema.ts generates; run \`npm run schema\` and commit ${SCHEMA_FILE}`,
    ).toBe(planJsonSchemaText());
  });

  it('is a valid draft-07 schema that describes what users write', () => {
    const schema = planJsonSchema();
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(ajv.validateSchema(schema), ajv.errorsText()).toBe(true);
    // Durations are text in the plan, not the milliseconds the loader turns them into.
    expect(validate({ version: 1, defaults: { timeout: '1h30m' }, steps: [{ id: 'a', run: 'x' }] })).toBe(
      true,
    );
  });
});

describe('plans checked against the schema', () => {
  const examples = globSync('examples/**/checkpoint.yml', {
    cwd: root,
    ignore: ['**/node_modules/**'],
  }).sort();

  it('finds the example plans', () => {
    expect(examples).toContain('examples/quickstart/checkpoint.yml');
  });

  it.each(examples)('%s passes, and names the schema on its first line', (file) => {
    const text = readFileSync(path.join(root, file), 'utf8');
    // Read as the loader reads it (`<<` merge keys), which also takes the comment line.
    expect(() => parsePlan(text, file)).not.toThrow();
    expect(schemaErrors(YAML.parse(text, { merge: true })), `${file} does not pass ${SCHEMA_FILE}`).toEqual(
      [],
    );
    const relative = path
      .relative(path.join(root, path.dirname(file)), schemaPath)
      .split(path.sep)
      .join('/');
    expect(
      text.split('\n')[0],
      `${file}: the first line should point editors at the schema; make it "# yaml-language-server: $schema=${relative}"`,
    ).toBe(`# yaml-language-server: $schema=${relative}`);
  });

  it('passes the plans in docs/plan.md', () => {
    const docs = readFileSync(path.join(root, 'docs/plan.md'), 'utf8');
    // Whole plans: the blocks that start with `version: 1` and have steps (not the one-key examples).
    const plans = [...docs.matchAll(/```yaml\n((?:#.*\n)?version: 1\n[\s\S]*?)```/g)]
      .map((m) => m[1] ?? '')
      .filter((text) => text.includes('\nsteps:'));
    expect(plans.length).toBeGreaterThan(0);
    for (const text of plans) {
      const plan = YAML.parse(text, { merge: true });
      expect(loaderErrors(plan)).toEqual([]);
      expect(schemaErrors(plan)).toEqual([]);
    }
  });

  const base = () => ({ version: 1, steps: [{ id: 'build', run: 'make' }] as Record<string, unknown>[] });
  const withStep = (extra: Record<string, unknown>) => {
    const plan = base();
    plan.steps[0] = { ...plan.steps[0], ...extra };
    return plan;
  };
  const bad: [string, unknown, string][] = [
    ['an unknown top-level key', { ...base(), concurency: 2 }, '/: must NOT have additional properties'],
    ['an unknown step key', withStep({ depends_on: ['x'] }), '/steps/0: must NOT have additional properties'],
    [
      'a step id with capitals and a space',
      withStep({ id: 'Build Step' }),
      '/steps/0/id: must match pattern',
    ],
    ['a step id starting with -', withStep({ id: '-build' }), '/steps/0/id: must match pattern'],
    [
      'a step without run',
      { version: 1, steps: [{ id: 'a' }] },
      "/steps/0: must have required property 'run'",
    ],
    [
      'a plan without version',
      { steps: [{ id: 'a', run: 'x' }] },
      "/: must have required property 'version'",
    ],
    ['version as a string', { ...base(), version: '1' }, '/version: must be number'],
    ['no steps', { version: 1, steps: [] }, '/steps: must NOT have fewer than 1 items'],
    ['run as a list', withStep({ run: ['a', 'b'] }), '/steps/0/run: must be string'],
    [
      'a timeout in words',
      withStep({ timeout: '10 minutes' }),
      '/steps/0/timeout: must match a schema in anyOf',
    ],
    ['a zero timeout', withStep({ timeout: '0s' }), '/steps/0/timeout: must match a schema in anyOf'],
    ['units out of order', withStep({ timeout: '30m1h' }), '/steps/0/timeout: must match a schema in anyOf'],
    ['no tries', withStep({ retry: { attempts: 0 } }), '/steps/0/retry/attempts: must be >= 1'],
    ['a backoff below 1', withStep({ retry: { backoff: 0.5 } }), '/steps/0/retry/backoff: must be >= 1'],
    ['an env value of null', withStep({ env: { B: null } }), '/steps/0/env/B: must be string,number,boolean'],
    [
      'an env name with a space',
      withStep({ env: { 'MY VAR': 1 } }),
      '/steps/0/env: property name must be valid',
    ],
    [
      'on-change other than rerun or keep',
      withStep({ 'on-change': 'redo' }),
      '/steps/0/on-change: must be equal',
    ],
    [
      'a batch size as text',
      withStep({ batch: { range: { from: 0, to: 9 }, size: '10k' } }),
      '/size: must be integer',
    ],
    [
      'a batch with range and items',
      withStep({ batch: { range: { from: 0, to: 9 }, items: ['a'] } }),
      'oneOf',
    ],
    ['a batch with neither range nor items', withStep({ batch: { size: 2 } }), 'oneOf'],
    ['items from a file and a glob', withStep({ batch: { items: { file: 'a', glob: 'b' } } }), 'oneOf'],
    [
      'an item with a line break',
      withStep({ batch: { items: ['a\nb'] } }),
      '/batch/items/0: must match pattern',
    ],
    [
      'max-failures above 100%',
      withStep({ batch: { items: ['a'], 'max-failures': '200%' } }),
      '/max-failures',
    ],
    [
      'a range bound that is not an integer',
      withStep({ batch: { range: { from: 0, to: 1.5 } } }),
      '/to: must be integer',
    ],
  ];

  it.each(bad)('fails %s, as the loader does', (_what, plan, expected) => {
    const errors = schemaErrors(plan);
    expect(
      errors.some((e) => e.includes(expected)),
      `expected an error containing "${expected}", got:\n${errors.join('\n')}`,
    ).toBe(true);
    expect(loaderErrors(plan)).not.toEqual([]);
  });
});

describe('patterns that stand in for the loader checks', () => {
  /** The schema's and the zod schema's verdicts on a one-step plan that `put` adds a key to. */
  function verdicts(put: (step: Record<string, unknown>) => void) {
    const step: Record<string, unknown> = { id: 'a', run: 'x' };
    put(step);
    const plan = { version: 1, steps: [step] };
    return { schema: validate(plan), loader: planSchema.safeParse(plan).success };
  }

  // Numbers: none below 0.5 but 0, so no value rounds to 0 ms (that one case, like `0.0001s`, passes the
  // schema and not the loader).
  const NUMBERS = ['0', '1', '2', '10', '90', '007', '1.5', '0.5'];
  const UNITS = ['d', 'h', 'm', 's', 'ms'];
  const space = fc.constantFrom('', ' ', '  ', '\t', '\n');
  // Parts like `1h`, `90 s`, joined by spaces or not, in order of unit or not, with white space around.
  const durationParts = fc
    .tuple(
      space,
      fc.array(
        fc.tuple(
          fc.constantFrom(...NUMBERS),
          fc.constantFrom('', ' ', '\t'),
          fc.constantFrom(...UNITS),
          space,
        ),
        {
          minLength: 1,
          maxLength: 4,
        },
      ),
      fc.boolean(),
      space,
    )
    .map(([lead, parts, sorted, trail]) => {
      if (sorted) parts.sort((a, b) => UNITS.indexOf(a[2]) - UNITS.indexOf(b[2]));
      return lead + parts.map((p) => p.join('')).join('') + trail;
    });
  // Anything made of the same pieces, and a few others.
  const durationNoise = fc
    .array(fc.constantFrom(...NUMBERS, ...UNITS, ' ', '\t', '.', 'x', '-'), { maxLength: 8 })
    .map((parts) => parts.join(''));

  it('durations: the schema accepts what the loader accepts', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          durationParts,
          durationNoise,
          fc.integer({ min: -2, max: 100_000 }).map((n) => n / 1000),
        ),
        (value) => {
          const timeout = verdicts((s) => (s.timeout = value));
          expect(timeout.schema, `timeout: ${JSON.stringify(value)}`).toBe(timeout.loader);
          const delay = verdicts((s) => (s.retry = { delay: value }));
          expect(delay.schema, `retry.delay: ${JSON.stringify(value)}`).toBe(delay.loader);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('max-failures: the schema accepts what the loader accepts', () => {
    const text = fc
      .array(fc.constantFrom('0', '1', '5', '10', '100', '007', '.', ' ', '\t', '%', 'x', '-'), {
        maxLength: 6,
      })
      .map((parts) => parts.join(''));
    const number = fc.oneof(
      fc.integer({ min: -5, max: 1000 }),
      fc.double({ noNaN: true, noDefaultInfinity: true }),
    );
    fc.assert(
      fc.property(fc.oneof(text, number), (value) => {
        const v = verdicts((s) => (s.batch = { items: ['a'], 'max-failures': value }));
        expect(v.schema, `max-failures: ${JSON.stringify(value)}`).toBe(v.loader);
      }),
      { numRuns: 2000 },
    );
  });

  it('retry.on: the schema accepts what the loader accepts', () => {
    const entry = fc.oneof(
      fc.integer({ min: -2, max: 300 }),
      fc.double({ noNaN: true, noDefaultInfinity: true, min: -2, max: 300 }),
      fc.constantFrom('timeout', 'signal', 'any', 'Timeout', '3', '', 'oom', null, true),
    );
    fc.assert(
      fc.property(fc.oneof(entry, fc.array(entry, { maxLength: 4 })), (value) => {
        const v = verdicts((s) => (s.retry = { attempts: 2, on: value }));
        expect(v.schema, `retry.on: ${JSON.stringify(value)}`).toBe(v.loader);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('docs/plan.md', () => {
  /** Every key the schema names, from every level. */
  function keys(node: unknown, out = new Set<string>()): Set<string> {
    if (Array.isArray(node)) for (const n of node) keys(n, out);
    else if (typeof node === 'object' && node !== null) {
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties' && typeof v === 'object' && v !== null)
          for (const p of Object.keys(v)) out.add(p);
        if (k !== 'examples' && k !== 'default') keys(v, out);
      }
    }
    return out;
  }

  it('documents every key of the plan', () => {
    const docs = readFileSync(path.join(root, 'docs/plan.md'), 'utf8');
    const missing = [...keys(planJsonSchema())].filter((k) => !docs.includes(`\`${k}\``));
    expect(
      missing,
      'docs/plan.md does not mention these plan keys; add each to the key reference there (its table and a section with an example)',
    ).toEqual([]);
  });

  it('tells editors where the schema is', () => {
    const docs = readFileSync(path.join(root, 'docs/plan.md'), 'utf8');
    const line = `# yaml-language-server: $schema=https://raw.githubusercontent.com/org/checkpoint-action/v1/${SCHEMA_FILE}`;
    expect(docs.includes(line), `docs/plan.md should show the line "${line}" (section Editor support)`).toBe(
      true,
    );
  });
});
