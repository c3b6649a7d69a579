// The zod schema of `checkpoint.yml` as users write it (kebab-case keys, durations as text), and the
// formatter that turns zod issues into the one-line, user-facing problems a PlanError carries.
//
// Conventions for messages set here: a message that starts with "expected" describes the value wanted and
// the formatter appends `, got <value>`; text after FIX is printed after the value, as the fix. Any other
// message is printed as it is.
//
// `.meta()` here only feeds checkpoint.schema.json (src/plan/json-schema.ts, `npm run schema`): descriptions,
// defaults and examples for editors, and the JSON Schema of values that a transform checks. It changes no
// validation.

import { z } from 'zod';
import { parseDuration } from './duration.js';
import type { ItemsSource, MaxFailures, RetryCondition } from './types.js';

export const STEP_ID_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
const ENV_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Separates the "expected ..." part of a message from a fix shown after the offending value. */
const FIX = '\u0000';

function expecting(expected: string, fix?: string): string {
  return fix === undefined ? expected : `${expected}${FIX}${fix}`;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

// ---------------------------------------------------------------------------------------------------------
// Building blocks

class Rejected {
  readonly message: string;
  constructor(message: string) {
    this.message = message;
  }
}

/**
 * A scalar checked and converted by a plain function, for values with more than one accepted form
 * (durations, `max-failures`, env values). `convert` returns the converted value or a Rejected message.
 * A missing key passes through as undefined; `.optional()` on the result keeps the types honest.
 * `accepts` says in JSON Schema what `convert` accepts, for checkpoint.schema.json (a transform has none).
 */
function leaf<T>(convert: (v: unknown) => T | Rejected, accepts: Record<string, unknown>) {
  const schema = z.unknown().transform((v, ctx): T | undefined => {
    if (v === undefined) return undefined;
    const out = convert(v);
    if (out instanceof Rejected) {
      ctx.addIssue({ code: 'custom', message: out.message, input: v });
      return z.NEVER;
    }
    return out;
  });
  return schema.meta(accepts);
}

/**
 * zod's int() also refuses integers beyond ±2^53 (they cannot be counted exactly), with the same message as a
 * fraction or a string; such a value would read "expected an integer, got 9007199254740992", so it says so.
 */
function intError(expected: string) {
  return (iss: { code?: string; origin?: string }) =>
    (iss.code === 'too_big' || iss.code === 'too_small') && iss.origin === 'int'
      ? expecting(expected, `integers beyond ±${Number.MAX_SAFE_INTEGER} cannot be counted exactly`)
      : expected;
}

const positiveInt = (expected = 'expected a positive integer') =>
  z.int({ error: intError(expected) }).min(1, { error: expected });

/** A string with at least one non-blank character. */
const text = (expected: string) => z.string({ error: expected }).regex(/\S/, { error: expected });

const bool = z.boolean({ error: 'expected true or false' });

const DECIMAL = String.raw`\d+(?:\.\d+)?`;
const DURATION_PARTS = ['d', 'h', 'm', 's', 'ms'].map((unit) => String.raw`(?:${DECIMAL}\s*${unit} *)?`);

/**
 * The text parseDuration accepts, as a JSON Schema pattern: a bare number (seconds), or parts from the largest
 * unit down, each unit at most once, spaces allowed between parts; surrounding white space is trimmed.
 * `positive` also wants a digit other than 0.
 */
function durationPattern(positive: boolean): string {
  const nonZero = positive ? String.raw`(?=[\s\S]*[1-9])` : '';
  return String.raw`^${nonZero}\s*(?:${DECIMAL}|(?=\d)${DURATION_PARTS.join('')})\s*$`;
}

function duration(kind: 'positive' | 'non-negative') {
  const expected =
    kind === 'positive'
      ? 'expected a duration like 90s, 10m, 1h30m or 2d'
      : 'expected a duration like 0s, 500ms, 2s or 1m';
  const accepts = {
    anyOf: [
      { type: 'string', pattern: durationPattern(kind === 'positive') },
      kind === 'positive' ? { type: 'number', exclusiveMinimum: 0 } : { type: 'number', minimum: 0 },
    ],
  };
  return leaf((v) => {
    if (typeof v !== 'string' && typeof v !== 'number') return new Rejected(expected);
    let ms: number;
    try {
      ms = parseDuration(v);
    } catch {
      return new Rejected(expected);
    }
    if (kind === 'positive' && ms <= 0)
      return new Rejected('expected a duration above zero, like 90s or 10m');
    return ms;
  }, accepts).optional();
}

/** A single string or a list of them (`needs: build` is read as `needs: [build]`). */
function stringOrList(expectedList: string, expectedElement: string) {
  return z
    .union([text(expectedList), z.array(text(expectedElement), { error: expectedList })], {
      error: expectedList,
    })
    .transform((v) => (typeof v === 'string' ? [v] : v))
    .optional();
}

const envMap = z
  .unknown()
  .transform((v, ctx): Record<string, string> | undefined => {
    if (v === undefined) return undefined;
    if (!isPlainObject(v)) {
      ctx.addIssue({
        code: 'custom',
        message: expecting('expected a mapping of variable names to values', 'e.g. env: { REGION: eu }'),
        input: v,
      });
      return z.NEVER;
    }
    const out: Record<string, string> = {};
    let ok = true;
    for (const [key, value] of Object.entries(v)) {
      if (!ENV_NAME_PATTERN.test(key)) {
        ok = false;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'not a valid variable name; use letters, digits and _, not starting with a digit',
          input: key,
        });
      }
      if (typeof value === 'string') out[key] = value;
      else if ((typeof value === 'number' && Number.isFinite(value)) || typeof value === 'boolean') {
        out[key] = String(value);
      } else {
        ok = false;
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message:
            value === null
              ? expecting('expected a string, number or boolean', `write ${key}: "" for an empty value`)
              : 'expected a string, number or boolean',
          input: value,
        });
      }
    }
    return ok ? out : z.NEVER;
  })
  .meta({
    type: 'object',
    propertyNames: { pattern: ENV_NAME_PATTERN.source },
    additionalProperties: { type: ['string', 'number', 'boolean'] },
  })
  .optional();

// ---------------------------------------------------------------------------------------------------------
// retry

const RETRY_ON_EXPECTED = 'expected an exit code from 1 to 255, timeout, signal or any';
const RETRY_ON_FIX = 'e.g. on: [1, timeout]';
const RETRY_ON_WORDS = ['timeout', 'signal', 'any'] as const;
const RETRY_ON_ITEM = {
  anyOf: [
    { type: 'integer', minimum: 1, maximum: 255 },
    { type: 'string', enum: [...RETRY_ON_WORDS] },
  ],
};

function retryCondition(v: unknown): RetryCondition | Rejected {
  if (typeof v === 'number') {
    if (v === 0) return new Rejected(expecting(RETRY_ON_EXPECTED, 'exit code 0 is success, not a failure'));
    if (Number.isInteger(v) && v >= 1 && v <= 255) return v;
    return new Rejected(expecting(RETRY_ON_EXPECTED, 'exit codes are whole numbers from 1 to 255'));
  }
  if (typeof v === 'string') {
    const word = RETRY_ON_WORDS.find((w) => w === v);
    if (word) return word;
    // `on: ["3"]`: YAML read a quoted number as text.
    if (/^\s*\d+\s*$/.test(v))
      return new Rejected(expecting(RETRY_ON_EXPECTED, `write ${v.trim()} without quotes`));
    const close = didYouMean(v, RETRY_ON_WORDS, {
      timeouts: 'timeout',
      signals: 'signal',
      all: 'any',
      killed: 'signal',
    });
    if (close) return new Rejected(expecting(RETRY_ON_EXPECTED, `did you mean ${close}?`));
  }
  return new Rejected(expecting(RETRY_ON_EXPECTED, RETRY_ON_FIX));
}

/** `on: [1, timeout]`; a single value is read as a list of one (`on: timeout`). */
const retryOnSchema = z
  .unknown()
  .transform((v, ctx): RetryCondition[] | undefined => {
    if (v === undefined) return undefined;
    const list = Array.isArray(v) ? v : [v];
    if (list.length === 0) {
      ctx.addIssue({
        code: 'custom',
        message: expecting('expected at least one failure to retry', 'to never retry, write attempts: 1'),
        input: v,
      });
      return z.NEVER;
    }
    const out: RetryCondition[] = [];
    let ok = true;
    for (const [i, item] of list.entries()) {
      const c = retryCondition(item);
      if (c instanceof Rejected) {
        ok = false;
        ctx.addIssue({
          code: 'custom',
          ...(Array.isArray(v) ? { path: [i] } : {}),
          message: c.message,
          input: item,
        });
      } else if (!out.includes(c)) out.push(c);
    }
    return ok ? out : z.NEVER;
  })
  .meta({ anyOf: [RETRY_ON_ITEM, { type: 'array', items: RETRY_ON_ITEM, minItems: 1 }] })
  .optional();

const retryObjectSchema = z.strictObject(
  {
    attempts: positiveInt('expected a positive number of tries (1 = no retry)')
      .optional()
      .meta({
        description: 'Total tries of a unit in one attempt (1 = no retry).',
        default: 1,
        examples: [3],
      }),
    delay: duration('non-negative').meta({
      description:
        'Base delay before the first retry; each delay is jittered (between half of it and all of it).',
      default: '1s',
      examples: ['2s', '500ms'],
    }),
    backoff: z
      .number({ error: 'expected a number >= 1 (the factor between delays)' })
      .min(1, { error: 'expected a number >= 1 (the factor between delays)' })
      .optional()
      .meta({ description: 'Factor between consecutive delays.', default: 2, examples: [3] }),
    'max-delay': duration('non-negative').meta({
      description: 'Cap on the delay, before jitter.',
      default: '1m',
      examples: ['30s'],
    }),
    on: retryOnSchema.meta({
      description:
        'What a retry may fix: exit codes (1-255), timeout (the unit ran past its timeout), signal (ended by a signal the engine did not send) or any. Default: every failure except exit codes 126 and 127 (not executable, not found), which fail at once with a hint.',
      examples: [[1, 'timeout'], ['any']],
    }),
  },
  { error: 'expected a mapping' },
);

const RETRY_EXPECTED =
  'expected a number of tries like 3, or a mapping {attempts, delay, backoff, max-delay, on}';
const retrySchema = z
  .union([positiveInt(RETRY_EXPECTED), retryObjectSchema], { error: RETRY_EXPECTED })
  .transform((v) => (typeof v === 'number' ? { attempts: v } : v))
  .optional();

export type RawRetry = NonNullable<z.output<typeof retrySchema>>;

const onChangeSchema = z.enum(['rerun', 'keep'], { error: 'expected rerun or keep' }).optional();
const ON_CHANGE_DESCRIPTION =
  'What a changed fingerprint does to completed work: rerun (all of it runs again, and so does the work of the steps depending on it) or keep (done units stay done).';
const RETRY_DESCRIPTION =
  'How often a failing unit is tried, and on which failures: a number of tries, or {attempts, delay, backoff, max-delay, on}.';
const RETRY_EXAMPLES = [3, { attempts: 3, delay: '2s', backoff: 2, 'max-delay': '1m', on: [1, 'timeout'] }];
const TIMEOUT_EXAMPLES = ['30m', '90s', '1h30m'];

// ---------------------------------------------------------------------------------------------------------
// batch

const rangeSchema = z
  .strictObject(
    {
      from: z
        .int({ error: intError('expected an integer') })
        .meta({ description: 'The first number (negative numbers allowed).', examples: [0] }),
      to: z.int({ error: intError('expected an integer') }).meta({
        description: 'The end of the range, not included; at least from (to = from is an empty step).',
        examples: [40000000],
      }),
    },
    { error: expecting('expected a mapping {from, to}', 'e.g. range: { from: 0, to: 1000 }') },
  )
  .superRefine((r, ctx) => {
    if (r.to < r.from) {
      ctx.addIssue({
        code: 'custom',
        path: ['to'],
        message: expecting(`expected an integer >= from (${r.from})`, 'the range is [from, to), half-open'),
        input: r.to,
      });
    }
  });

const ITEM_EXPECTED = 'expected a single-line string or a number';
const ITEM_ACCEPTS = {
  anyOf: [{ type: 'string', minLength: 1, pattern: String.raw`^[^\r\n]*$` }, { type: 'number' }],
};
const itemSchema = leaf((v) => {
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  // Items travel one per line in CHECKPOINT_ITEMS_FILE, so a line break would split one item into two.
  if (typeof v === 'string' && v !== '' && !/[\r\n]/.test(v)) return v;
  return new Rejected(ITEM_EXPECTED);
}, ITEM_ACCEPTS);

const itemsObjectShape = z.strictObject(
  {
    file: text('expected a file path relative to the plan file')
      .optional()
      .meta({
        description:
          "The file's lines are the items (blank lines skipped); relative to the plan file's directory.",
        examples: ['ids.txt'],
      }),
    glob: text('expected a glob pattern like "data/*.csv"')
      .optional()
      .meta({
        description:
          "The matching files are the items, as paths relative to the plan file's directory, sorted.",
        examples: ['data/*.csv'],
      }),
    command: text('expected a shell command printing one item per line')
      .optional()
      .meta({
        description:
          "The command's stdout lines are the items (blank lines skipped); runs with bash -eo pipefail -c in the plan file's directory.",
        examples: ["psql -Atc 'select id from shards'"],
      }),
    list: z
      .array(itemSchema, { error: 'expected a list of items (single-line strings or numbers)' })
      .optional()
      .meta({
        description:
          'The items as written (single-line strings or numbers): the mapping form of `items: [a, b]`, which can take `refresh: true`.',
        examples: [['a', 'b', 'c']],
      }),
    refresh: bool.optional().meta({
      description:
        'true: every attempt expands the source again. Items not yet in the frozen list are appended (the indices of the others never change) and run once; done items never run again; items that left the source before they ran are shown as gone and not run; a source that gives nothing is allowed. With `list`, the list in the plan is the source.',
    }),
  },
  { error: 'expected a mapping' },
);

const itemsObjectSchema = itemsObjectShape
  .superRefine((o, ctx) => {
    const given = (['file', 'glob', 'command', 'list'] as const).filter((k) => o[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          given.length === 0
            ? expecting(
                'expected exactly one of file, glob, command or list',
                'e.g. items: { file: ids.txt } or items: { glob: "data/*.csv", refresh: true }',
              )
            : `use only one of file, glob, command or list, not ${given.join(' and ')}`,
      });
    }
  })
  .transform((o): ItemsSource => {
    // `refresh: false` is the default: left out, so the source (and its fingerprint) is as without it.
    const refresh = o.refresh === true ? { refresh: true as const } : {};
    if (o.list !== undefined) return { kind: 'list', items: o.list.map((i) => i ?? ''), ...refresh };
    if (o.file !== undefined) return { kind: 'file', file: o.file, ...refresh };
    if (o.glob !== undefined) return { kind: 'glob', glob: o.glob, ...refresh };
    return { kind: 'command', command: o.command ?? '', ...refresh };
  })
  .meta({
    oneOf: [
      { required: ['list'] },
      { required: ['file'] },
      { required: ['glob'] },
      { required: ['command'] },
    ],
  });

const ITEMS_EXPECTED =
  'expected a list of items, or one of {file: PATH}, {glob: PATTERN}, {command: COMMAND}';
const itemsSchema = z.union(
  [
    z
      .array(itemSchema, { error: ITEMS_EXPECTED })
      .transform((items): ItemsSource => ({ kind: 'list', items: items.map((i) => i ?? '') })),
    itemsObjectSchema,
  ],
  { error: ITEMS_EXPECTED },
);

const MAX_FAILURES_EXPECTED = 'expected a number of failed units (0 or more) or a percentage like "10%"';
// A count as a number or text ("3"), or a percentage from 0% to 100%.
const MAX_FAILURES_ACCEPTS = {
  anyOf: [
    { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    { type: 'string', pattern: String.raw`^\s*(?:0*(?:100(?:\.0+)?|\d{1,2}(?:\.\d+)?)\s*%|\d+)\s*$` },
  ],
};
const maxFailuresSchema = leaf((v): MaxFailures | Rejected => {
  if (typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0
      ? { kind: 'count', count: v }
      : new Rejected(MAX_FAILURES_EXPECTED);
  }
  if (typeof v === 'string') {
    const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(v);
    if (percent) {
      const n = Number(percent[1]);
      return n <= 100
        ? { kind: 'percent', percent: n }
        : new Rejected('expected a percentage from 0% to 100%');
    }
    if (/^\s*\d+\s*$/.test(v)) return { kind: 'count', count: Number(v) };
  }
  return new Rejected(MAX_FAILURES_EXPECTED);
}, MAX_FAILURES_ACCEPTS).optional();

const throttleSchema = z
  .strictObject(
    {
      command: text('expected a shell command (a non-empty string)').meta({
        description:
          "Run with the plan's shell in the step's working directory before units start: exit 0 lets units start, any other exit holds them back.",
        examples: ['./db-load-ok.sh'],
      }),
      every: duration('positive').meta({
        description: 'How long a passing check holds: the command runs at most this often while it passes.',
        default: '10s',
        examples: ['10s'],
      }),
      backoff: duration('positive').meta({
        description: 'After a failing check, how long no unit starts before the command runs again.',
        default: '30s',
        examples: ['30s'],
      }),
    },
    {
      error: expecting(
        'expected a mapping {command, every, backoff}',
        'e.g. throttle: { command: ./db-load-ok.sh, every: 10s, backoff: 30s }',
      ),
    },
  )
  .optional();

// `size: 100` or `size: { target: 30s, min: 100, max: 100000 }`: chunks sized by time (docs/plan.md#batchsize).
const SIZE_EXPECTED = 'expected a positive integer';
const SIZE_BY_TIME_HINT = 'to size chunks by time, write size: { target: 30s, min: 100, max: 100000 }';

const sizeByTimeShape = z.strictObject(
  {
    target: duration('positive').meta({
      description: 'How long each chunk should take: the next chunks grow or shrink towards it.',
      examples: ['30s', '2m'],
    }),
    min: positiveInt('expected a positive integer (the smallest chunk)')
      .optional()
      .meta({
        description:
          'The smallest chunk, in numbers or items; chunks are whole multiples of it, and the first chunk of a step is this size.',
        default: 1,
        examples: [100],
      }),
    max: positiveInt('expected a positive integer (the largest chunk)')
      .optional()
      .meta({
        description: 'The largest chunk, in numbers or items. Default: no limit.',
        examples: [100000],
      }),
  },
  {
    error: expecting(
      'expected a mapping {target, min, max}',
      'e.g. size: { target: 30s, min: 100, max: 100000 }',
    ),
  },
);

const sizeByTimeSchema = sizeByTimeShape
  .superRefine((o, ctx) => {
    if (o.target === undefined) {
      ctx.addIssue({ code: 'custom', path: ['target'], message: 'required' });
    }
    if (o.min !== undefined && o.max !== undefined && o.max < o.min) {
      ctx.addIssue({
        code: 'custom',
        path: ['max'],
        message: expecting(
          `expected an integer >= min (${o.min})`,
          'max is the largest chunk, min the smallest',
        ),
        input: o.max,
      });
    }
  })
  .meta({ required: ['target'] });

const sizeSchema = z.union([positiveInt(SIZE_EXPECTED), sizeByTimeSchema], {
  // A duration where a count belongs (`size: 30s`) most likely means a chunk time.
  error: (iss) => {
    if (typeof iss.input === 'string') {
      try {
        parseDuration(iss.input);
        return expecting(SIZE_EXPECTED, SIZE_BY_TIME_HINT);
      } catch {
        // not a duration either
      }
    }
    return SIZE_EXPECTED;
  },
});

const batchSchema = z
  .strictObject(
    {
      range: rangeSchema.optional().meta({
        description: 'Numbers from `from` up to `to`, half-open: [from, to), so `to` itself is not included.',
        examples: [{ from: 0, to: 40000000 }],
      }),
      items: itemsSchema.optional().meta({
        description:
          'A list of items (single-line strings or numbers), or one of {file: PATH}, {glob: PATTERN}, {command: COMMAND}, {list: [...]}; expanded once and frozen into the checkpoint, or with `refresh: true` expanded again at every attempt (new items appended).',
        examples: [
          ['a', 'b', 'c'],
          { file: 'ids.txt' },
          { glob: 'data/*.csv' },
          { glob: 'inbox/*.json', refresh: true },
        ],
      }),
      size: sizeSchema.optional().meta({
        description:
          'Numbers or items per unit; or {target, min, max}: chunks sized so that each takes about `target`.',
        default: 1,
        examples: [100000, { target: '30s', min: 100, max: 100000 }],
      }),
      parallel: positiveInt('expected a positive integer (most units of this step at once)')
        .optional()
        .meta({
          description:
            "Most units of this step running at once (the plan's concurrency still applies). Default: the plan's concurrency.",
          examples: [4],
        }),
      order: z.enum(['any', 'sequential'], { error: 'expected any or sequential' }).optional().meta({
        description:
          'any: units start in any order; sequential: one at a time, each only when every lower unit is done.',
        default: 'any',
      }),
      'max-failures': maxFailuresSchema.meta({
        description:
          'Units that may fail past their retries in one attempt before the step starts no more: a count, or a percentage of its units ("10%").',
        default: 0,
        examples: [3, '10%'],
      }),
      throttle: throttleSchema.meta({
        description:
          'A brake: a command checked before units start (at most every `every`); while it exits non-zero no new unit of this step starts, for `backoff` at a time.',
        examples: [{ command: './db-load-ok.sh', every: '10s', backoff: '30s' }],
      }),
    },
    { error: expecting('expected a mapping', 'e.g. batch: { range: { from: 0, to: 1000 }, size: 100 }') },
  )
  .superRefine((b, ctx) => {
    if (b.range === undefined && b.items === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: expecting(
          'expected exactly one of range or items',
          'add range: { from: 0, to: N } or items: [a, b, c]',
        ),
      });
    } else if (b.range !== undefined && b.items !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'use either range or items, not both' });
    }
  })
  .meta({ oneOf: [{ required: ['range'] }, { required: ['items'] }] });

export type RawBatch = z.output<typeof batchSchema>;

// ---------------------------------------------------------------------------------------------------------
// steps and the plan

function idSuggestion(input: unknown): string | undefined {
  if (typeof input !== 'string') return undefined;
  const fixed = input
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .replace(/-+$/, '');
  return STEP_ID_PATTERN.test(fixed) ? `try ${JSON.stringify(fixed)}` : undefined;
}

function runExpected(iss: { input?: unknown }): string {
  return Array.isArray(iss.input)
    ? expecting('expected a shell command (a string)', 'for several commands use "run: |" and one per line')
    : 'expected a shell command (a non-empty string)';
}

const ID_EXPECTED = 'expected an id of lowercase letters, digits, - and _, starting with a letter or digit';

const stepSchema = z.strictObject(
  {
    id: z
      .string({ error: ID_EXPECTED })
      .regex(STEP_ID_PATTERN, {
        error: (iss) => expecting(ID_EXPECTED, idSuggestion(iss.input)),
      })
      .meta({
        description:
          'Unique id: lowercase letters, digits, - and _, starting with a letter or digit. Names the step in needs, on the command line and in the checkpoint.',
        examples: ['build', 'backfill'],
      }),
    name: text('expected a display name (a non-empty string)')
      .optional()
      .meta({ description: 'Display name. Default: the id.', examples: ['Create schema'] }),
    run: z
      .string({ error: runExpected })
      .regex(/\S/, { error: runExpected })
      .meta({
        description: "The command, given to the plan's shell as one string; several lines allowed (run: |).",
        examples: ['./migrate.sh schema'],
      }),
    env: envMap.meta({
      description: "Variables for this step's commands, merged over the plan's env.",
      examples: [{ BATCH_MODE: '1' }],
    }),
    'working-directory': text('expected a directory path relative to the plan file')
      .optional()
      .meta({
        description:
          "The directory the step's commands start in, relative to the plan file's directory. Default: the plan file's directory.",
        examples: ['db/'],
      }),
    timeout: duration('positive').meta({
      description:
        'The longest one unit (one try) may run; then SIGTERM, SIGKILL 10 s later, and the try fails. Default: defaults.timeout, else none.',
      examples: ['10m', ...TIMEOUT_EXAMPLES],
    }),
    retry: retrySchema.meta({
      description: `${RETRY_DESCRIPTION} Laid over defaults.retry field by field. Default: 1 try (no retry).`,
      examples: RETRY_EXAMPLES,
    }),
    needs: stringOrList('expected a list of step ids like [build, test]', 'expected a step id').meta({
      description:
        'Steps that must be complete before this one starts: a step id or a list of them. Default: the step listed before it; [] = none.',
      examples: [['schema'], []],
    }),
    always: bool.optional().meta({
      description:
        'true: run on every attempt, even when an earlier attempt completed it (machine set-up the checkpoint cannot carry).',
      default: false,
    }),
    approval: bool.optional().meta({
      description:
        'true: a manual intervention point. Once the steps it needs are done the run stops before this step (exit 75, "waiting for approval") until someone runs `checkpoint approve STEP` (or passes the action input `approve: STEP`); independent steps keep going. `checkpoint reset STEP` clears the approval.',
      default: false,
    }),
    'secret-outputs': stringOrList(
      'expected a list of output names like [token, password]',
      'expected an output name',
    ).meta({
      description:
        "Names of this step's outputs whose values are secret: the action masks them in the job's log (::add-mask::) and in the job summary.",
      examples: [['db-password']],
    }),
    rollback: text('expected a shell command (a non-empty string)')
      .optional()
      .meta({
        description:
          'A compensating command, run by `checkpoint rollback` for steps with done work, newest first.',
        examples: ['./migrate.sh drop-schema'],
      }),
    inputs: stringOrList(
      'expected a list of file globs like ["src/**", "Makefile"]',
      'expected a file glob',
    ).meta({
      description:
        "File globs, relative to the plan file's directory, whose content is hashed into the step's fingerprint.",
      default: [],
      examples: [['sql/schema/**', 'migrate.sh']],
    }),
    'on-change': onChangeSchema.meta({
      description: `${ON_CHANGE_DESCRIPTION} Default: defaults.on-change, else rerun.`,
    }),
    batch: batchSchema.optional().meta({
      description:
        'Makes this a batch step: the command runs once per unit, a chunk of a number range or of a list of items. Exactly one of range or items.',
      examples: [{ range: { from: 0, to: 40000000 }, size: 100000, parallel: 4 }],
    }),
    shards: z.enum(['all', 'first'], { error: 'expected all or first' }).optional().meta({
      description:
        'For the coming --shard I/N: all runs the step on every shard, first on the first shard only. No effect yet.',
      default: 'all',
    }),
  },
  { error: expecting('expected a step mapping', 'e.g. - { id: build, run: make }') },
);

export type RawStep = z.output<typeof stepSchema>;

const defaultsSchema = z.strictObject(
  {
    timeout: duration('positive').meta({
      description:
        'The timeout of every step without its own: the longest one unit (one try) may run. Default: none.',
      examples: TIMEOUT_EXAMPLES,
    }),
    retry: retrySchema.meta({
      description: `${RETRY_DESCRIPTION} A step's own retry is laid over it field by field. Default: 1 try (no retry).`,
      examples: RETRY_EXAMPLES,
    }),
    'on-change': onChangeSchema.meta({ description: ON_CHANGE_DESCRIPTION, default: 'rerun' }),
  },
  { error: expecting('expected a mapping', 'e.g. defaults: { timeout: 30m, retry: 3 }') },
);

export const planSchema = z.strictObject(
  {
    version: z
      .literal(1, { error: 'expected 1 (the only plan format version)' })
      .meta({ description: 'The plan format version: the number 1.' }),
    name: text('expected a plan name (a non-empty string)')
      .optional()
      .meta({
        description:
          "The plan's name: runs are named after it and a checkpoint only resumes a run of the same name. Default: the name of the plan file's directory.",
        examples: ['nightly-backfill'],
      }),
    shell: text('expected bash, sh or a command prefix like "python3 -c"')
      .optional()
      .meta({
        description:
          'How run and rollback commands are executed: bash (bash -eo pipefail -c), sh (sh -ec), or a command prefix ending with the flag that takes a command string.',
        default: 'bash',
        examples: ['bash', 'sh', 'python3 -c'],
      }),
    concurrency: positiveInt('expected a positive integer (most units running at once)')
      .optional()
      .meta({
        description:
          'The most units running at once across the plan (checkpoint run --concurrency overrides it). Default: the CPU count.',
        examples: [2, 4],
      }),
    env: envMap.meta({
      description:
        'Variables added to every command: names of letters, digits and _ (not starting with a digit); values are strings, numbers or booleans.',
      examples: [{ REGION: 'eu' }],
    }),
    defaults: defaultsSchema.optional().meta({
      description: "Defaults for every step: timeout, retry and on-change. A step's own value wins.",
      examples: [{ timeout: '30m', retry: { attempts: 3, delay: '2s', backoff: 2, 'max-delay': '1m' } }],
    }),
    steps: z
      .array(
        stepSchema.meta({
          description:
            'A step: a shell command (run) and its dependencies; with batch, run once per chunk of a number range or item list.',
        }),
        {
          error: expecting(
            'expected a list of steps',
            'write each step as "- id: NAME" followed by "run: COMMAND"',
          ),
        },
      )
      .min(1, { error: expecting('expected at least one step', 'add "- id: NAME" with "run: COMMAND"') })
      .meta({
        description:
          'The steps: shell commands with dependencies, and batch steps. A step without needs depends on the step listed before it.',
      }),
  },
  { error: 'expected a mapping with version: 1 and steps' },
);

export type RawPlan = z.output<typeof planSchema>;

// ---------------------------------------------------------------------------------------------------------
// Issue formatting

/** Allowed keys of each mapping, by path pattern (indices written `[]`). */
const ALLOWED_KEYS: Record<string, readonly string[]> = {
  '': Object.keys(planSchema.shape),
  defaults: Object.keys(defaultsSchema.shape),
  'defaults.retry': Object.keys(retryObjectSchema.shape),
  'steps[]': Object.keys(stepSchema.shape),
  'steps[].retry': Object.keys(retryObjectSchema.shape),
  'steps[].batch': Object.keys(batchSchema.shape),
  'steps[].batch.size': Object.keys(sizeByTimeShape.shape),
  'steps[].batch.range': Object.keys(rangeSchema.shape),
  'steps[].batch.items': Object.keys(itemsObjectShape.shape),
};

/** nick-fields/retry says `retry_on`, GitLab `exit_codes`, Buildkite `exit_status`. */
const RETRY_ALIASES: Record<string, string> = {
  tries: 'attempts',
  max: 'attempts',
  count: 'attempts',
  factor: 'backoff',
  'retry-on': 'on',
  'exit-codes': 'on',
  'exit-status': 'on',
  when: 'on',
};

/** Names people reach for from other tools, mapped to ours; used only for "did you mean". */
const KEY_ALIASES: Record<string, Record<string, string>> = {
  '': {
    jobs: 'steps',
    tasks: 'steps',
    parallelism: 'concurrency',
    'max-parallel': 'concurrency',
    environment: 'env',
    title: 'name',
  },
  defaults: { retries: 'retry', 'timeout-minutes': 'timeout' },
  'steps[]': {
    command: 'run',
    cmd: 'run',
    script: 'run',
    'depends-on': 'needs',
    depends: 'needs',
    requires: 'needs',
    after: 'needs',
    cwd: 'working-directory',
    dir: 'working-directory',
    workdir: 'working-directory',
    environment: 'env',
    retries: 'retry',
    'timeout-minutes': 'timeout',
    undo: 'rollback',
    compensate: 'rollback',
    title: 'name',
    label: 'name',
    approve: 'approval',
    manual: 'approval',
    'requires-approval': 'approval',
    'manual-approval': 'approval',
  },
  'steps[].batch': {
    'chunk-size': 'size',
    chunk: 'size',
    'batch-size': 'size',
    concurrency: 'parallel',
    'max-parallel': 'parallel',
    list: 'items',
    failures: 'max-failures',
  },
  'steps[].batch.range': { start: 'from', begin: 'from', end: 'to', until: 'to', stop: 'to' },
  'steps[].batch.size': {
    time: 'target',
    'chunk-time': 'target',
    duration: 'target',
    minimum: 'min',
    'min-size': 'min',
    maximum: 'max',
    'max-size': 'max',
  },
  'steps[].batch.items': { path: 'file', pattern: 'glob', cmd: 'command', run: 'command' },
  'defaults.retry': RETRY_ALIASES,
  'steps[].retry': RETRY_ALIASES,
};

/** What to do about a missing required key, by path pattern. */
const REQUIRED_HINTS: Record<string, string> = {
  version: 'add "version: 1" at the top of the file',
  steps: 'add "steps:" with a list of steps, each with an id and run',
  'steps[].id': 'add an id like "build" (lowercase letters, digits, - and _)',
  'steps[].run': 'add a shell command to run',
  'steps[].batch.range.from': 'add from: N (the first number)',
  'steps[].batch.range.to': 'add to: N (the end, not included)',
  'steps[].batch.size.target': 'add target: DURATION, how long each chunk should take (e.g. target: 30s)',
};

type Path = readonly PropertyKey[];

function pathPattern(path: Path): string {
  return path
    .map((p) => (typeof p === 'number' ? '[]' : `.${String(p)}`))
    .join('')
    .replace(/^\./, '');
}

/** `steps[2].batch.size`, `env["MY VAR"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else {
      const key = String(p);
      if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** The value as JSON, at most 60 characters. Never throws (YAML aliases can build cyclic values). */
export function showValue(value: unknown): string {
  let s: string;
  if (value === undefined) s = 'nothing';
  else if (typeof value === 'number' && !Number.isFinite(value)) s = String(value);
  else {
    try {
      s = JSON.stringify(value) ?? String(value);
    } catch {
      s = Array.isArray(value) ? '[...]' : typeof value === 'object' ? '{...}' : String(value);
    }
  }
  if (s.length <= 60) return s;
  // By code point, so that an emoji is never cut in half.
  const chars = [...s];
  return chars.length > 60 ? `${chars.slice(0, 59).join('')}…` : s;
}

function lookup(root: unknown, path: Path): { present: boolean; value: unknown } {
  let cur: unknown = root;
  for (const p of path) {
    if (Array.isArray(cur) && typeof p === 'number' && p < cur.length) cur = cur[p];
    else if (isPlainObject(cur) && typeof p === 'string' && Object.hasOwn(cur, p)) cur = cur[p];
    else return { present: false, value: undefined };
  }
  return { present: true, value: cur };
}

function normaliseKey(k: string): string {
  return k.toLowerCase().replace(/[-_\s]/g, '');
}

/** Edit distance where swapping two neighbouring letters (`fiel` → `file`) counts as one edit. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(at(i, j), at(i - 2, j - 2) + 1);
      }
    }
  }
  return at(a.length, b.length);
}

/**
 * The closest candidate to `input` (ignoring case, `-` and `_`), or undefined when none is close.
 * `aliases` maps other tools' names to candidates, e.g. `depends_on` → `needs`.
 */
export function didYouMean(
  input: string,
  candidates: readonly string[],
  aliases: Record<string, string> = {},
): string | undefined {
  const wanted = normaliseKey(input);
  if (wanted === '') return undefined;
  const limit = Math.min(2, Math.floor((wanted.length - 1) / 2));
  let best: { name: string; distance: number } | undefined;
  const consider = (key: string, name: string) => {
    if (name === input) return;
    const distance = editDistance(wanted, normaliseKey(key));
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { name, distance };
  };
  for (const c of candidates) consider(c, c);
  for (const [alias, target] of Object.entries(aliases)) consider(alias, target);
  return best?.name;
}

function describeExpected(iss: { code?: string; expected?: unknown; values?: unknown }): string {
  switch (iss.expected) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'string':
      return 'a string';
    case 'boolean':
      return 'true or false';
    case 'int':
      return 'an integer';
    case 'number':
      return 'a number';
    default:
      return 'a different value';
  }
}

/**
 * Per-parse fallback for issues whose schema sets no message of its own, so zod's default English
 * ("Invalid input: expected string, received number") never reaches a user.
 */
export function fallbackMessage(iss: z.core.$ZodRawIssue): string {
  switch (iss.code) {
    case 'invalid_type':
      return `expected ${describeExpected(iss)}`;
    case 'too_small':
      return `expected at least ${String(iss.minimum)}`;
    case 'too_big':
      return `expected at most ${String(iss.maximum)}`;
    case 'invalid_value':
      return `expected one of ${iss.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_format':
      return 'expected a value in a different format';
    default:
      return 'expected a different value';
  }
}

/**
 * One line per problem: `<file>: <path>: <expected>, got <value>[; <fix>]`, `<file>: <path>: unknown key;
 * allowed keys: ...`, or `<file>: <path>: required; <fix>`.
 */
export function formatIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, file: string): string[] {
  const out: string[] = [];
  const line = (path: Path, text: string) => {
    const where = formatPath(path);
    out.push(where === '' ? `${file}: ${text}` : `${file}: ${where}: ${text}`);
  };

  const valueProblem = (path: Path, message: string) => {
    const { present, value } = lookup(raw, path);
    const [expected = '', fix] = message.split(FIX);
    if (!present && path.length > 0) {
      const hint = REQUIRED_HINTS[pathPattern(path)];
      line(path, hint ? `required; ${hint}` : 'required');
    } else if (expected.startsWith('expected')) {
      line(path, `${expected}, got ${showValue(value)}${fix ? `; ${fix}` : ''}`);
    } else {
      line(path, fix ? `${expected}; ${fix}` : expected);
    }
  };

  const visit = (iss: z.core.$ZodIssue, base: Path) => {
    const path = [...base, ...iss.path];
    switch (iss.code) {
      case 'unrecognized_keys': {
        const pattern = pathPattern(path);
        const allowed = ALLOWED_KEYS[pattern] ?? [];
        for (const key of iss.keys) {
          const suggestion = didYouMean(key, allowed, KEY_ALIASES[pattern]);
          const list = allowed.length > 0 ? `; allowed keys: ${allowed.join(', ')}` : '';
          line([...path, key], `unknown key${list}${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`);
        }
        return;
      }
      case 'invalid_union': {
        // Report the branch whose type matched (a mapping for `retry: {attempts: x}`); when no branch
        // matched the type at all, the union's own message describes every accepted form.
        const matched = iss.errors.filter(
          (branch) => !branch.some((b) => b.path.length === 0 && b.code === 'invalid_type'),
        );
        const branch = matched[0];
        if (branch && branch.length > 0) visitAll(branch, path);
        else valueProblem(path, iss.message);
        return;
      }
      case 'invalid_key':
      case 'invalid_element':
        visitAll(iss.issues, path);
        return;
      default:
        valueProblem(path, iss.message);
    }
  };

  function visitAll(list: readonly z.core.$ZodIssue[], base: Path): void {
    // A refinement of an object that also has unknown keys ("exactly one of file, glob or command" next
    // to `fiel: x`) restates the same mistake; the unknown key line says it better.
    const withUnknownKeys = new Set(
      list.filter((i) => i.code === 'unrecognized_keys').map((i) => JSON.stringify(i.path)),
    );
    for (const iss of list) {
      if (iss.code === 'custom' && withUnknownKeys.has(JSON.stringify(iss.path))) continue;
      visit(iss, base);
    }
  }

  visitAll(issues, []);
  return out;
}
