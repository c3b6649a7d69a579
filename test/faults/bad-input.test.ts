// Campaign `bad-input` (docs/reliability.md): generated garbage at every door the program opens to the
// outside — plan files, the action's inputs and checkpoint archives from a store — must be refused with the
// error meant for it (PlanError, InputError, BundleRejected) and a message naming the file, input or entry,
// never another exception, never a stack trace, and nothing may be written where it does not belong.
//
// Cases come from fast-check with fixed seeds (reproducible: a failure prints the case). The bulk of the
// plans is parsed in-process with parsePlan; a sample goes through the real CLI against an existing
// checkpoint that must stay byte-for-byte as it was.
import { createHash } from 'node:crypto';
import { cp, lstat, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import * as tar from 'tar-stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { INPUT_DEFAULTS, InputError, readInputs } from '../../src/action/inputs.js';
import { runItemsCommand } from '../../src/engine/items-command.js';
import { PlanError } from '../../src/plan/errors.js';
import { expandItems, type ItemsCommandRunner } from '../../src/plan/items.js';

const runItems: ItemsCommandRunner = (command, cwd, env) => runItemsCommand(command, { cwd, env });

import { parsePlan } from '../../src/plan/load.js';
import { STEP_ID_PATTERN } from '../../src/plan/schema.js';
import {
  ARCHIVE,
  BundleRejected,
  checkBundle,
  entryProblem,
  MANIFEST,
  packBundle,
  unpackBundle,
} from '../../src/stores/bundle.js';
import { runCli } from '../support/cli.js';
import { recordFigures } from './figures.js';

const SEED = 20_261_123;
const FILE = 'plans/checkpoint.yml';

const figures = { cases: 0, clear: 0, wrong: 0, changed: 0 };
/** The first few failures, for the assertion message (every one is counted). */
const failures: string[] = [];

function fail(what: string, detail: string): void {
  figures.wrong += 1;
  if (failures.length < 8) failures.push(`${what}: ${detail}`);
}

const STACK = /^\s+at\s.+(:\d+:\d+\)?|<anonymous>\)?)$/m;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T;

// ------------------------------------------------------------------------------------------------ plans

const idArb = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,7}$/);
const textArb = fc.string({ minLength: 1, maxLength: 16 }).filter((s) => /\S/.test(s));
const durationArb = fc.constantFrom<string | number>('90s', '10m', '1h30m', '2d', '500ms', 30);
const batchArb = fc.oneof(
  fc
    .tuple(fc.integer({ min: -1000, max: 1000 }), fc.nat(1000), fc.integer({ min: 1, max: 50 }))
    .map(([from, len, size]) => ({ range: { from, to: from + len }, size })),
  fc.array(fc.stringMatching(/^[a-z0-9.]{1,6}$/), { maxLength: 4 }).map((items) => ({ items, parallel: 2 })),
  fc.constantFrom({ items: { file: 'ids.txt' } }, { items: { glob: 'data/*.csv' } }),
);

// Built without `chain`: a chained arbitrary is constructed anew for every sample, which made generation
// ten times slower than parsing.
const stepArb = fc.record(
  {
    id: idArb,
    run: textArb,
    timeout: durationArb,
    retry: fc.record({ attempts: fc.integer({ min: 1, max: 4 }), delay: fc.constantFrom('1s', '0s') }),
    needs: fc.array(fc.nat(), { maxLength: 2 }),
    batch: batchArb,
    'on-change': fc.constantFrom('rerun', 'keep'),
  },
  { requiredKeys: ['id', 'run', 'needs'] },
);

const validPlanArb: fc.Arbitrary<Obj> = fc
  .record({
    top: fc.record(
      {
        name: textArb,
        shell: fc.constantFrom('bash', 'sh'),
        concurrency: fc.integer({ min: 1, max: 16 }),
        env: fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,5}$/), fc.string({ maxLength: 8 }), {
          maxKeys: 2,
        }),
        defaults: fc.record(
          { timeout: durationArb, retry: fc.integer({ min: 1, max: 3 }) },
          { requiredKeys: [] },
        ),
      },
      { requiredKeys: [] },
    ),
    steps: fc.array(stepArb, { minLength: 1, maxLength: 5 }),
  })
  .map(({ top, steps }) => {
    // Unique ids, and needs that only point backwards, so the plan is valid before it is mutated.
    const ids = steps.map((st, i) => `${st.id}-${i}`);
    return {
      version: 1,
      ...top,
      steps: steps.map((st, i) => ({
        ...st,
        id: ids[i],
        needs: i === 0 ? [] : [...new Set(st.needs.map((n) => ids[n % i]))],
      })),
    };
  });

type Mutation = (plan: Obj) => void;

function stepsOf(plan: Obj): Obj[] {
  if (!Array.isArray(plan.steps) || plan.steps.length === 0 || !plan.steps.every(isObj))
    plan.steps = [{ id: 'restored', run: 'true' }];
  return plan.steps as Obj[];
}

/** Values wrong for every key they are put in (each key's list), chosen by index. */
const HUGE = [1e20, -1e20, Number.MAX_SAFE_INTEGER + 2, 2 ** 64, -(2 ** 53) - 2, 1e308];
const WRONG_TOP: Record<string, unknown[]> = {
  version: [2, '1', null, 0, 'one', [1], -1, 1.5, ...HUGE],
  concurrency: [0, -1, 1.5, '4', true, null, [], ...HUGE.filter((n) => n < 0 || !Number.isSafeInteger(n))],
  name: ['', 5, [], {}, null, '   '],
  shell: ['', '   ', 3, [], null, {}],
  env: ['x', [1], 5, { A: null }, { A: [1] }, { '1A': 'x' }, { 'A=B': 'x' }, { A: { b: 1 } }],
  defaults: ['x', [], { timeout: 'x' }, { retry: 0 }, { 'on-change': 'x' }, { retry: { attempts: -1 } }],
  steps: [[], 'x', {}, null, 5, [5], [[]], [null]],
};
const WRONG_STEP: Record<string, unknown[]> = {
  id: ['', 'A', '-a', 'a b', 5, null, [], 'é', '_x', 'a.b', 'a/b', '..', 'x'.repeat(300).toUpperCase()],
  run: ['', ' ', null, 5, [], {}, ['a', 'b'], true],
  env: ['x', [1], { A: null }, { 'a-b': 1 }],
  'working-directory': ['', 5, null, []],
  timeout: [
    '0s',
    0,
    'x',
    '1h30',
    -5,
    true,
    {},
    '-1m',
    'soon',
    '1e400d',
    '9'.repeat(400),
    'NaN',
    ...HUGE.filter((n) => n < 0),
  ],
  retry: [0, -1, 'x', 1.5, { attempts: 0 }, { delay: 'x' }, { backoff: 0.5 }, { attempts: 1e20 }, []],
  needs: [5, {}, [5], [null], true, [[]]],
  always: ['yes', 1, null, 'true'],
  inputs: [5, [''], [1], {}],
  'on-change': ['x', true, 'Rerun'],
  shards: ['none', 1],
  batch: [
    'x',
    {},
    { range: { from: 0, to: 1 }, items: [] },
    { range: { from: 5, to: 1 } },
    { range: { from: 'a', to: 1 } },
    { range: { from: 0 } },
    { range: [0, 1] },
    { range: { from: 0.5, to: 1 } },
    { range: { from: 0, to: 1e300 } },
    { range: { from: -(2 ** 60), to: 0 } },
    { range: { from: 0, to: Number.MAX_SAFE_INTEGER + 2 } },
    { range: { from: 10, to: -10 } },
    { items: 'x' },
    { items: {} },
    { items: { file: 'a', glob: 'b' } },
    { items: ['a\nb'] },
    { items: [''] },
    { items: [true] },
    { range: { from: 0, to: 1 }, size: 0 },
    { range: { from: 0, to: 1 }, size: -3 },
    { range: { from: 0, to: 1 }, size: 2 ** 60 },
    { range: { from: 0, to: 1 }, size: '10k' },
    { range: { from: 0, to: 1 }, parallel: 0 },
    { range: { from: 0, to: 1 }, order: 'random' },
    { range: { from: 0, to: 1 }, 'max-failures': '101%' },
    { range: { from: 0, to: 1 }, 'max-failures': -1 },
    { range: { from: 0, to: 1 }, 'max-failures': 1e300 },
  ],
};

const wrongTypeArb = fc.oneof(
  fc.tuple(fc.constantFrom(...Object.keys(WRONG_TOP)), fc.nat()).map(
    ([key, n]): Mutation =>
      (plan) => {
        plan[key] = structuredClone(pick(WRONG_TOP[key] as unknown[], n));
      },
  ),
  fc.tuple(fc.constantFrom(...Object.keys(WRONG_STEP)), fc.nat(), fc.nat()).map(
    ([key, n, i]): Mutation =>
      (plan) => {
        pick(stepsOf(plan), i)[key] = structuredClone(pick(WRONG_STEP[key] as unknown[], n));
      },
  ),
);

const unknownKeyArb = fc
  .tuple(
    fc.constantFrom('top', 'step', 'batch', 'retry'),
    fc.oneof(
      fc.string({ minLength: 1, maxLength: 10 }),
      fc.constantFrom('comand', 'depends_on', 'Version', '__proto__', 'constructor', 'toString'),
    ),
    fc.nat(),
  )
  .map(([where, rawKey, i]): Mutation => {
    const allowed: Record<string, string[]> = {
      top: ['version', 'name', 'shell', 'concurrency', 'env', 'defaults', 'steps'],
      step: Object.keys(WRONG_STEP).concat(['name', 'rollback']),
      batch: ['range', 'items', 'size', 'parallel', 'order', 'max-failures'],
      retry: ['attempts', 'delay', 'backoff', 'max-delay'],
    };
    // `<<` is YAML's merge key, not a key.
    const key = (allowed[where] ?? []).includes(rawKey) || rawKey === '<<' ? `${rawKey}-x` : rawKey;
    const set = (o: Obj) =>
      Object.defineProperty(o, key, { value: 1, enumerable: true, writable: true, configurable: true });
    return (plan) => {
      if (where === 'top') return void set(plan);
      const step = pick(stepsOf(plan), i);
      if (where === 'step') return void set(step);
      const inner: Obj = where === 'batch' ? { range: { from: 0, to: 1 } } : {};
      set(inner);
      step[where] = inner;
    };
  });

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
      if (steps.length < 2) steps.push({ run: 'true' });
      steps.forEach((s, k) => {
        s.id = `s${k}`;
        s.needs = k === 0 ? [`s${steps.length - 1}`] : [`s${k - 1}`];
      });
    },
);

const duplicateIdArb = fc.tuple(fc.nat(), fc.nat()).map(
  ([a, b]): Mutation =>
    (plan) => {
      const steps = stepsOf(plan);
      if (steps.length < 2) steps.push({ run: 'true' });
      const i = a % steps.length;
      const j = (i + 1 + (b % (steps.length - 1))) % steps.length;
      const from = steps[i] as Obj;
      if (typeof from.id !== 'string' || !STEP_ID_PATTERN.test(from.id)) from.id = 'dup';
      (steps[j] as Obj).id = from.id;
    },
);

const missingArb = fc.tuple(fc.constantFrom('version', 'steps', 'id', 'run'), fc.nat()).map(
  ([key, i]): Mutation =>
    (plan) => {
      if (key === 'version' || key === 'steps') delete plan[key];
      else delete pick(stepsOf(plan), i)[key];
    },
);

const unknownNeedsArb = fc.tuple(fc.nat(), fc.string({ minLength: 1, maxLength: 8 })).map(
  ([i, name]): Mutation =>
    (plan) => {
      const steps = stepsOf(plan);
      const ids = new Set(steps.map((s) => s.id));
      pick(steps, i).needs = [ids.has(name) ? `${name}-missing` : name];
    },
);

const mutationArb = fc.oneof(
  { arbitrary: wrongTypeArb, weight: 5 },
  { arbitrary: unknownKeyArb, weight: 2 },
  { arbitrary: cycleArb, weight: 1 },
  { arbitrary: duplicateIdArb, weight: 1 },
  { arbitrary: missingArb, weight: 1 },
  { arbitrary: unknownNeedsArb, weight: 1 },
);

/** Text that breaks a YAML mapping it is appended to, or a whole document that is not a plan. */
const BROKEN_YAML = [
  '\n  bad: [unclosed',
  '\n\t- tab: indented',
  '\n- a list after a mapping',
  '\n---\nsecond: document',
  '\n"unterminated',
  '\nkey: {a: 1',
  '\nx: &anchor 1\ny: *missing',
  '\nversion: 1',
  '\n@reserved',
];
const NOT_PLANS = [
  '',
  '   \n\n',
  '~',
  '[]',
  '42',
  '"just a string"',
  '{"version": 1, "steps": "x"}',
  `a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\nversion: 1\nsteps: []`,
  'version: 1\nsteps:\n  - id: !!binary aGVsbG8=\n    run: !!set {a, b}\n',
  'version: 1\nsteps:\n  - {id: a, run: x, timeout: !!timestamp 2001-12-14}\n',
  '\uFEFF\uFEFFversion: 1',
  'version: 1\r\nsteps:\r\n  - id: A\r\n    run: x\r\n',
];

const invalidTextArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(validPlanArb, fc.array(mutationArb, { minLength: 1, maxLength: 3 }))
      .map(([plan, ms]) => {
        const p = structuredClone(plan);
        for (const m of ms) m(p);
        return YAML.stringify(p);
      }),
  },
  {
    weight: 2,
    arbitrary: fc
      .tuple(validPlanArb, fc.constantFrom(...BROKEN_YAML))
      .map(([plan, tail]) => YAML.stringify(plan) + tail),
  },
  { weight: 1, arbitrary: fc.constantFrom(...NOT_PLANS) },
  // Binary: random bytes read as the CLI reads a file (UTF-8, invalid sequences replaced).
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 300 }).map((b) => new TextDecoder().decode(b)) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  // A valid plan with bytes flipped here and there.
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        validPlanArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
      )
      .map(([plan, flips]) => {
        const bytes = Buffer.from(YAML.stringify(plan));
        for (const [at, v] of flips) bytes[at % bytes.length] = v;
        return new TextDecoder().decode(bytes);
      }),
  },
);

/** Parses `text`; returns undefined for a clear PlanError, else what went wrong. Valid plans are skipped. */
function judgePlan(text: string): 'valid' | 'clear' | string {
  let thrown: unknown;
  try {
    parsePlan(text, FILE, { defaultConcurrency: 2 });
    return 'valid';
  } catch (err) {
    thrown = err;
  }
  if (!(thrown instanceof PlanError)) return `threw ${String(thrown)}`;
  const lines = thrown.message.split('\n');
  const bad = lines.find((l) => !l.startsWith(`${FILE}:`));
  if (bad !== undefined) return `a line does not name the file: ${JSON.stringify(bad)}`;
  if (STACK.test(thrown.message)) return 'a stack trace in the message';
  if (/\[object Object\]|internal error|Invalid input|Unrecognized key/.test(thrown.message))
    return `an unclear message: ${thrown.message}`;
  return 'clear';
}

// ------------------------------------------------------------------------------------------------ inputs

const WS = '/home/runner/work/repo/repo';
/** Per input, values that must be refused (a NUL in any input is added separately). */
const BAD_INPUTS: Record<string, fc.Arbitrary<string>> = {
  store: fc.oneof(
    fc.constantFrom('Cache', 'artifacts', 'local', 's3', 'cache,artifact', '0'),
    fc
      .string({ minLength: 1, maxLength: 12 })
      .filter((s) => !['cache', 'artifact', 'none'].includes(s.trim()) && s.trim() !== ''),
  ),
  key: fc.oneof(
    fc.constantFrom(
      '-x',
      '.x',
      '_x',
      'a b',
      'a/b',
      '..',
      'a..b',
      'latest',
      'é',
      'x'.repeat(201),
      'a:b',
      'a\tb',
    ),
    fc
      .string({ minLength: 1, maxLength: 20 })
      .filter((s) => /[^A-Za-z0-9._-]/.test(s.trim()) && s.trim() !== ''),
  ),
  'time-budget': fc.constantFrom(
    '0',
    '0s',
    '-5m',
    'soon',
    '1h30',
    '30m1h',
    '10M',
    '1e400d',
    '9'.repeat(400),
    '5 minutes',
    'ms',
  ),
  'save-every': fc.constantFrom('0', '0s', '-1s', 'often', '1..5s', 'm', '1h 1h'),
  'on-incomplete': fc
    .string({ minLength: 1, maxLength: 10 })
    .filter((s) => !['fail', 'success', 'dispatch'].includes(s.trim()) && s.trim() !== ''),
  concurrency: fc.oneof(
    fc.constantFrom('0', '-1', '1.5', 'x', '4 cores', '1e3', '99999999999999999999', '0x10'),
    fc.integer({ max: 0 }).map(String),
  ),
  shard: fc.oneof(
    fc.constantFrom('1', '1/', '/4', 'a/b', '-1/2', '1/4/2', '2/2', '5/4', '0/0', '1 / 4'),
    fc
      .tuple(fc.nat(50), fc.nat(50))
      .filter(([i, n]) => i >= n)
      .map(([i, n]) => `${i}/${n}`),
  ),
  paths: fc.constantFrom('../outside', '/etc/passwd', '.', './', 'a\n../../b', '/home/runner/work/repo'),
  'max-continuations': fc.constantFrom('-1', '1.5', 'ten', '1e2', '99999999999999999999'),
  command: fc
    .string({ minLength: 1, maxLength: 10 })
    .filter((s) => !['run', 'status', 'rollback', 'report'].includes(s.trim()) && s.trim() !== ''),
};

const badInputsArb = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .uniqueArray(fc.constantFrom(...Object.keys(BAD_INPUTS)), { minLength: 1, maxLength: 3 })
      .chain((names) =>
        fc.tuple(fc.constant(names), fc.tuple(...names.map((n) => BAD_INPUTS[n] as fc.Arbitrary<string>))),
      ),
  },
  // A NUL byte in any input, at any place.
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.constantFrom(...Object.keys(INPUT_DEFAULTS)),
        fc.string({ maxLength: 6 }),
        fc.string({ maxLength: 6 }),
      )
      .map(([name, a, b]): [string[], string[]] => [[name], [`${a}\0${b}`]]),
  },
  // `file` and `run` together.
  {
    weight: 1,
    arbitrary: fc
      .tuple(
        fc.stringMatching(/^[a-z]{1,8}\.yml$/),
        fc.string({ minLength: 1, maxLength: 20 }).filter((s) => /\S/.test(s) && !s.includes('\0')),
      )
      .map(([file, run]): [string[], string[]] => [
        ['file', 'run'],
        [file, run],
      ]),
  },
);

function judgeInputs(names: string[], values: string[]): 'valid' | 'clear' | string {
  const given: Record<string, string> = { ...INPUT_DEFAULTS, 'github-token': 'ghs_x' };
  names.forEach((n, i) => {
    given[n] = values[i] ?? '';
  });
  try {
    readInputs((n) => given[n] ?? '', { workspace: WS });
    return 'valid';
  } catch (err) {
    if (!(err instanceof InputError)) return `threw ${String(err)}`;
    const lines = err.message.split('\n');
    if (lines.some((l) => !/^inputs? `/.test(l))) return `a line names no input: ${err.message}`;
    const missing = names.filter((n) => !err.message.includes(`\`${n}\``));
    if (missing.length > 0) return `does not name ${missing.join(', ')}: ${err.message}`;
    if (STACK.test(err.message)) return 'a stack trace in the message';
    return 'clear';
  }
}

// ------------------------------------------------------------------------------------------------ archives

interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  body?: Buffer;
  linkname?: string;
  pax?: Record<string, string>;
}

function tarBytes(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  pack.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<Buffer>((res, rej) => {
    pack.on('end', () => res(Buffer.concat(chunks)));
    pack.on('error', rej);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header: Partial<tar.Header> & { name: string } = { name: e.name, type, mode: 0o600 };
    if (e.linkname !== undefined) header.linkname = e.linkname;
    if (e.pax) header.pax = e.pax;
    if (type === 'file' || type === 'contiguous-file') pack.entry(header, e.body ?? Buffer.from('x'));
    else pack.entry({ ...header, size: 0 });
  }
  pack.finalize();
  return done;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

interface Template {
  manifest: Obj;
  archive: Buffer;
  entries: TarEntry[];
}

/** Entry names an attacker would try, from harmless-looking to escaping; `%` is replaced by a unique tag. */
const NAMES = [
  'run/../../escaped-%',
  'run/../../../escaped-%',
  'run/../../../../escaped-%',
  '../escaped-%',
  '@ABS',
  'paths/../../escaped-%',
  'run/./x',
  'run//x',
  './run/checkpoint.json',
  'run',
  'paths',
  'other/x',
  'run\\..\\..\\escaped-%',
  'C:/escaped-%',
  'run/state/a/link',
  'run/state/a/link/escaped-%',
  'run/\0/x',
  'run/',
  '',
  `run/${'a/'.repeat(80)}x`,
  `paths/${'long'.repeat(40)}`,
  'run/checkpoint.json',
  'run/journal.ndjson',
  'run/state/x/y',
  'paths/out/f',
];
const TYPES: Array<tar.Header['type']> = [
  'file',
  'file',
  'file',
  'directory',
  'symlink',
  'link',
  'fifo',
  'character-device',
  'block-device',
  'contiguous-file',
];

// ------------------------------------------------------------------------------------------------ set-up

let base: string;
let project: string;
let template: Template;

async function treeSnapshot(dir: string): Promise<string> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const abs = join(e.parentPath, e.name);
    const st = await lstat(abs);
    const body = e.isFile() ? sha(await readFile(abs)) : '';
    out.push(`${relative(dir, abs)} ${st.mode.toString(8)} ${st.size} ${st.mtimeMs} ${body}`);
  }
  return out.sort().join('\n');
}

const PLAN = `version: 1
name: bad-input
steps:
  - id: prep
    run: echo ok > "$CHECKPOINT_STATE_DIR/out"
  - id: each
    run: "true"
    batch: { range: { from: 0, to: 6 }, size: 2 }
`;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'faults-bad-input-'));
  project = join(base, 'project');
  await mkdir(project);
  await writeFile(join(project, 'checkpoint.yml'), PLAN);
  const r = await runCli(['run', '--run', 'r1'], { cwd: project });
  expect(r.code, r.stderr).toBe(0);
  const bundle = join(base, 'template');
  await packBundle(bundle, {
    root: join(project, '.checkpoints'),
    runId: 'r1',
    planName: 'bad-input',
    seq: 1,
    key: 'k',
  });
  const archive = await readFile(join(bundle, ARCHIVE));
  const manifest = JSON.parse(await readFile(join(bundle, MANIFEST), 'utf8')) as Obj;
  const entries: TarEntry[] = [];
  const extract = tar.extract();
  const reading = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      entries.push({ name: entry.header.name, body: Buffer.concat(chunks) });
    }
  })();
  extract.end((await import('node:zlib')).gunzipSync(archive));
  await reading;
  template = { manifest, archive, entries };
});

afterAll(async () => {
  await rm(base, { recursive: true, force: true });
  // A run filtered to other tests (`-t`) skips this campaign: keep the figures of the last real run.
  if (figures.cases === 0) return;
  recordFigures(
    'bad-input',
    [
      { name: 'cases generated', value: figures.cases },
      { name: 'clear errors', value: figures.clear },
      { name: 'stack traces / wrong exception types', value: figures.wrong, must: '= 0' },
      { name: 'checkpoints changed', value: figures.changed, must: '= 0' },
    ],
    `plans (parsePlan + 30 through the CLI), action inputs, checkpoint archives; fast-check seed ${SEED}`,
  );
});

describe('campaign: bad-input', () => {
  beforeEach(() => {
    failures.length = 0;
  });

  it('invalid plans: parsePlan always throws a PlanError whose every line names the file', () => {
    const texts = fc.sample(invalidTextArb, { numRuns: 7_500, seed: SEED });
    let valid = 0;
    for (const text of texts) {
      const verdict = judgePlan(text);
      if (verdict === 'valid') {
        // A flipped byte or a lucky mutation can leave a valid plan: not a case of bad input.
        valid += 1;
        continue;
      }
      figures.cases += 1;
      if (verdict === 'clear') figures.clear += 1;
      else fail('plan', `${verdict}\n--- input ---\n${text.slice(0, 500)}`);
    }
    expect(failures).toEqual([]);
    expect(valid).toBeLessThan(texts.length / 10);
  });

  it('a sample through the real CLI: exit 2, a `checkpoint:` message naming the file, no stack, the checkpoint unchanged', async () => {
    const texts = fc
      .sample(invalidTextArb, { numRuns: 60, seed: SEED + 1 })
      .filter((t) => judgePlan(t) !== 'valid')
      .slice(0, 24);
    const raw = [
      fc
        .sample(fc.uint8Array({ minLength: 1, maxLength: 400 }), { numRuns: 3, seed: SEED + 2 })
        .map((b) => Buffer.from(b)),
      [
        Buffer.from([0xff, 0xfe, 0x00, 0x76]),
        Buffer.alloc(64, 0),
        Buffer.from(`version: 1\nsteps: ${'['.repeat(5000)}`),
      ],
    ].flat();
    const cases: Array<Buffer | string> = [...texts, ...raw];
    expect(cases.length).toBe(30);
    // Three workers, each on its own copy of the project and its existing checkpoint.
    const workers = await Promise.all(
      [0, 1, 2].map(async (w) => {
        const dir = join(base, `cli${w}`);
        await cp(project, dir, { recursive: true, preserveTimestamps: true });
        return { dir, before: await treeSnapshot(join(dir, '.checkpoints')) };
      }),
    );
    let next = 0;
    await Promise.all(
      workers.map(async (w) => {
        for (let i = next++; i < cases.length; i = next++) {
          const text = cases[i] as Buffer | string;
          await writeFile(join(w.dir, 'checkpoint.yml'), text);
          const r = await runCli(['run'], { cwd: w.dir });
          figures.cases += 1;
          const lines = r.stderr.trimEnd().split('\n');
          const problems: string[] = [];
          if (r.code !== 2) problems.push(`exit ${r.code}`);
          if (!lines[0]?.startsWith('checkpoint: checkpoint.yml'))
            problems.push(`first line ${JSON.stringify(lines[0])}`);
          if (lines.slice(1).some((l) => !l.startsWith('checkpoint.yml')))
            problems.push('a line not naming the file');
          if (STACK.test(r.stderr) || /internal error/.test(r.stderr))
            problems.push('stack or internal error');
          if (problems.length === 0) figures.clear += 1;
          else fail('cli', `${problems.join('; ')}\n${r.stderr.slice(0, 400)}`);
          const after = await treeSnapshot(join(w.dir, '.checkpoints'));
          if (after !== w.before) {
            figures.changed += 1;
            fail('cli', `the checkpoint changed for ${JSON.stringify(String(text).slice(0, 200))}`);
          }
        }
      }),
    );
    expect(failures).toEqual([]);
    // Bounded by its work (30 CLI runs), not by a wait: 48 s beside the other campaigns under
    // \`stress-ng --cpu 2\`, 120 s at a load average of 20 on two cores.
  }, 300_000);

  it('invalid action inputs: always an InputError naming every bad input', () => {
    const cases = fc.sample(badInputsArb, { numRuns: 2_000, seed: SEED + 3 });
    for (const [names, values] of cases) {
      const verdict = judgeInputs(names, values);
      figures.cases += 1;
      if (verdict === 'clear') figures.clear += 1;
      else
        fail(
          'inputs',
          `${verdict} for ${JSON.stringify(Object.fromEntries(names.map((n, i) => [n, values[i]])))}`,
        );
    }
    expect(failures).toEqual([]);
  });

  it('regressions: shard bounds, NUL bytes in inputs, save-every past the timer range, NUL bytes in items', async () => {
    // readInputs accepted `shard: 5/4` and `0/0`, and a NUL byte that later failed as a TypeError naming nothing.
    expect(judgeInputs(['shard'], ['5/4'])).toBe('clear');
    expect(judgeInputs(['shard'], ['0/0'])).toBe('clear');
    expect(judgeInputs(['paths'], ['out\0'])).toBe('clear');
    // `save-every: 30d` overflowed setInterval, which then fired every millisecond: a save per change.
    const get = (n: string) =>
      ({ ...INPUT_DEFAULTS, 'save-every': '30d' })[n as keyof typeof INPUT_DEFAULTS] ?? '';
    expect(readInputs(get, { workspace: WS }).saveEveryMs).toBeLessThanOrEqual(2 ** 31 - 1);
    // An items command printing a NUL byte: the launcher cut the item short, a direct spawn died with
    // "internal error"; now the expansion refuses it, and the CLI exits 2 naming the step.
    await expect(
      expandItems({ kind: 'command', command: "printf 'a\\nb\\0c\\n'" }, base, process.env, runItems),
    ).rejects.toThrow(/items command .* gave an item with a NUL byte \(item 2/);
    const dir = join(base, 'nul-items');
    await mkdir(dir);
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1\nname: nul\nsteps:\n  - id: b\n    run: "true"\n    batch: { items: { command: "printf 'x\\\\0y\\\\n'" }, size: 1 }\n`,
    );
    const r = await runCli(['run'], { cwd: dir, env: { CHECKPOINT_LAUNCHER: '0' } });
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^checkpoint: checkpoint\.yml: steps\[0\]\.batch\.items: items command .* NUL byte/,
    );
    // Nesting deep enough to exhaust the parser's stack (slow, so once here rather than in the bulk).
    expect(judgePlan(`version: 1\nsteps: ${'['.repeat(5000)}${']'.repeat(5000)}`)).toBe('clear');
    // An unsafe integer said "expected an integer, got 9007199254740992".
    expect(
      judgePlan('version: 1\nsteps:\n  - {id: a, run: x, batch: {range: {from: 0, to: 9007199254740993}}}\n'),
    ).toBe('clear');
    try {
      parsePlan('version: 1\nconcurrency: 9007199254740993\nsteps: [{id: a, run: x}]\n', FILE);
    } catch (err) {
      expect((err as Error).message).toMatch(/cannot be counted exactly/);
    }
    figures.cases += 9;
    figures.clear += 9;
  });

  it('malformed checkpoint archives: always BundleRejected, nothing written outside the stage folder', async () => {
    let n = 0;
    const sandbox = join(base, 'sandbox');
    const archiveCase = async (label: string, archive: Buffer, manifest?: Obj | Buffer) => {
      n += 1;
      const bundle = join(sandbox, 'bundle');
      const stage = join(sandbox, 'stage');
      await rm(sandbox, { recursive: true, force: true });
      await mkdir(bundle, { recursive: true });
      await writeFile(join(bundle, ARCHIVE), archive);
      const m = manifest ?? { ...template.manifest, sha256: sha(archive) };
      await writeFile(join(bundle, MANIFEST), Buffer.isBuffer(m) ? m : JSON.stringify(m));
      figures.cases += 1;
      let verdict = 'accepted';
      try {
        await unpackBundle(bundle, stage, { planName: 'bad-input' });
      } catch (err) {
        if (!(err instanceof BundleRejected)) verdict = `threw ${String(err)}`;
        else if (STACK.test(err.message) || !err.message) verdict = 'an unclear message';
        else verdict = 'clear';
      }
      // Only the bundle and the stage folder may exist in the sandbox, whatever the archive said.
      const stray = (await readdir(sandbox)).filter((f) => f !== 'bundle' && f !== 'stage');
      if (stray.length > 0) verdict = `wrote outside the stage: ${stray.join(', ')}`;
      const inBundle = (await readdir(bundle)).sort();
      if (inBundle.join() !== [ARCHIVE, MANIFEST].sort().join())
        verdict = `wrote into the bundle: ${inBundle.join(', ')}`;
      if (verdict === 'clear') figures.clear += 1;
      else fail('archive', `${label} #${n}: ${verdict}`);
    };

    // Random bytes, and gzip'ed random bytes (not a tar).
    for (const b of fc.sample(fc.uint8Array({ maxLength: 2048 }), { numRuns: 80, seed: SEED + 4 }))
      await archiveCase('random bytes', Buffer.from(b));
    for (const b of fc.sample(fc.uint8Array({ maxLength: 4096 }), { numRuns: 80, seed: SEED + 5 }))
      await archiveCase('gzip of random bytes', gzipSync(Buffer.from(b)));
    // The real archive cut short anywhere (the manifest's digest matches the cut archive).
    for (const cut of fc.sample(fc.nat(template.archive.length - 1), { numRuns: 80, seed: SEED + 6 }))
      await archiveCase('truncated gzip', template.archive.subarray(0, cut));
    // Tar archives with odd entries, with or without the real checkpoint beside them.
    const entryArb = fc
      .record({
        name: fc.constantFrom(...NAMES),
        type: fc.constantFrom(...TYPES),
        linkname: fc.constantFrom('/etc/passwd', '../../escaped', '/', 'run/checkpoint.json', '..'),
        pax: fc.option(
          fc.constantFrom<Record<string, string>>(
            { path: '../../../../escaped-pax' },
            { path: '@ABS' },
            { linkpath: '/etc' },
          ),
          { nil: undefined },
        ),
      })
      .map(({ pax, ...e }): TarEntry => ({ ...e, ...(pax ? { pax } : {}) }));
    const oddArb = fc.tuple(fc.array(entryArb, { minLength: 1, maxLength: 4 }), fc.boolean());
    let k = 0;
    for (const [odd, withReal] of fc.sample(oddArb, { numRuns: 300, seed: SEED + 7 })) {
      const tag = `${k++}`;
      // Absolute names point into the sandbox, where a write would be seen.
      const place = (name: string) =>
        name === '@ABS' ? join(sandbox, `abs-${tag}`) : name.replace('%', tag);
      const entries = odd.map((e) => ({
        ...e,
        name: place(e.name),
        ...(e.pax?.path ? { pax: { path: place(e.pax.path) } } : {}),
      }));
      // Plain, well-named files beside the real checkpoint would make a valid bundle (a duplicate snapshot
      // is even rebuilt from the journal, by design): every case carries at least one odd entry.
      const odd1 = (e: TarEntry) => e.type !== 'file' || entryProblem(e.name) !== undefined || !!e.pax?.path;
      if (!entries.some(odd1)) entries.push({ name: `run/../../../escaped-${tag}`, type: 'file' });
      const all = withReal ? [...template.entries, ...entries] : entries;
      let bytes: Buffer;
      try {
        bytes = await tarBytes(all);
      } catch {
        // tar-stream refuses to write some headers (a name it cannot encode); nothing to test then.
        continue;
      }
      await archiveCase('odd entries', gzipSync(bytes));
    }
    // Manifests with wrong types, missing fields, or not a manifest at all (the archive itself is fine).
    const WRONG: Record<string, unknown[]> = {
      format: ['checkpoint', 1, null, ['checkpoint-bundle']],
      version: ['1', 1.5, 2, 99, null, -1],
      key: [1, null, {}, ['k']],
      plan: [1, null, 'another-plan', ''],
      runId: ['', '..', 'latest', '../r1', '/r1', 'r1/x', 5, null, 'a'.repeat(300)],
      seq: [-1, 1.5, '1', null, 1e300],
      createdAt: [5, null, {}],
      files: [-1, '3', 0.5, null],
      sha256: ['', 'abc', 'x'.repeat(64), 'A'.repeat(64), 5, null],
      hmac: ['', 'nothex', 5, 'f'.repeat(63)],
    };
    const manifestArb = fc.oneof(
      fc
        .tuple(fc.constantFrom(...Object.keys(WRONG)), fc.nat())
        .map(([key, i]) => ({ ...template.manifest, [key]: pick(WRONG[key] as unknown[], i) })),
      fc.constantFrom(...Object.keys(WRONG).filter((k) => k !== 'hmac')).map((key) => {
        const m = { ...template.manifest };
        delete m[key];
        return m;
      }),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
    );
    for (const m of fc.sample(manifestArb, { numRuns: 200, seed: SEED + 8 })) {
      if (
        !Buffer.isBuffer(m) &&
        m.sha256 === template.manifest.sha256 &&
        m.hmac === undefined &&
        'plan' in m
      ) {
        // The wrong value may leave the manifest valid only if it changed nothing that matters.
        const fields = Object.keys(WRONG).filter((k) => k !== 'hmac');
        if (fields.every((f) => m[f] === template.manifest[f])) continue;
      }
      await archiveCase('manifest', template.archive, m);
    }
    // checkBundle alone on a manifest that is not JSON, and a bundle without its archive.
    for (const text of ['', '{', 'null', '[]', '"x"']) {
      figures.cases += 1;
      const dir = join(sandbox, 'only-manifest');
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, MANIFEST), text);
      await expect(checkBundle(dir, { planName: 'bad-input' })).rejects.toBeInstanceOf(BundleRejected);
      figures.clear += 1;
    }
    // Regression: an archive without checkpoint.json and journal.ndjson was accepted as a blank checkpoint.
    await archiveCase(
      'no checkpoint',
      gzipSync(await tarBytes([{ name: 'run/state/prep/out', body: Buffer.from('x') }])),
    );
    await archiveCase('empty archive', gzipSync(await tarBytes([])));
    expect(failures).toEqual([]);
    expect(n).toBeGreaterThan(600);
    // The sandbox's parent holds nothing the archives tried to reach.
    expect((await readdir(base)).filter((f) => f.startsWith('escaped') || f.startsWith('abs'))).toEqual([]);
  }, 120_000);
});
