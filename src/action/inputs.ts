// The action's inputs, read once into a typed object. Nothing below this module calls `core.getInput`;
// a bad value fails the action here, naming the input, the value and the fix, before anything runs.

import { isAbsolute, relative, resolve } from 'node:path';
import { z } from 'zod';
import { CheckpointError, EXIT_USAGE } from '../errors.js';
import { MAX_TIMER_MS } from '../exec/process.js';
import { isValidRunId } from '../journal/runs.js';
import { parseDuration } from '../plan/duration.js';

export const COMMANDS = ['run', 'status', 'rollback', 'report'] as const;
export const STORES = ['cache', 'artifact', 'none'] as const;
export const ON_INCOMPLETE = ['fail', 'success', 'dispatch'] as const;

export interface Inputs {
  /** Absolute path of the plan file (unused when `run` is given). */
  file: string;
  /** A one-step plan written inline, instead of `file`. */
  run?: string;
  store: (typeof STORES)[number];
  /** The explicit `key`; undefined means the per-run default. */
  key?: string;
  timeBudgetMs?: number;
  saveEveryMs: number;
  onIncomplete: (typeof ON_INCOMPLETE)[number];
  concurrency?: number;
  /** `command: run`: this job's shard, `I/N`. */
  shard?: string;
  /** `command: report`: how many shards to gather (`shard: N`, or `*` then `/N`). */
  shards?: number;
  /** Extra files or folders carried in the checkpoint, absolute, all inside the workspace. */
  paths: string[];
  signingKey?: string;
  reset: string[];
  /** Step ids with `approval: true` to approve before the engine runs (checked against the plan in main). */
  approve: string[];
  maxContinuations: number;
  /** `store: artifact`: days GitHub keeps each saved artifact (1 to 90); undefined: the repository's setting. */
  retentionDays?: number;
  command: (typeof COMMANDS)[number];
  githubToken: string;
}

export class InputError extends CheckpointError {
  override name = 'InputError';
  readonly exitCode = EXIT_USAGE;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new InputError(`input \`${name}\`: expected one of ${allowed.join(', ')}, got "${value}"`);
}

function duration(name: string, value: string, example: string): number {
  try {
    const ms = parseDuration(value);
    if (ms <= 0) throw new Error(`must be more than zero, got "${value}"`);
    return ms;
  } catch (err) {
    throw new InputError(
      `input \`${name}\`: ${(err as Error).message} (for example \`${name}: ${example}\`)`,
    );
  }
}

function integer(name: string, value: string, min: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min)
    throw new InputError(`input \`${name}\`: expected a whole number of at least ${min}, got "${value}"`);
  return n;
}

/** Words split on commas, spaces and newlines (YAML block scalars and `a, b` both work). */
function words(value: string): string[] {
  return value
    .split(/[\s,]+/)
    .map((w) => w.trim())
    .filter((w) => w !== '');
}

/** The `reset` input, parsed: whole steps, and per step the units named as `STEP:UNIT` or `STEP:ITEM`. */
export interface ResetEntries {
  steps: string[];
  /** Step id → what followed the colon, in order: a unit index or range, or an item name. */
  units: Map<string, string[]>;
}

/**
 * `reset: import` (the step and its dependents), `import:3`, `import:3-5` / `import:3..5` (chunk indices,
 * both ends included) and `import:data/a.csv` (the unit holding that item). A step id never holds a colon,
 * so the first one splits: an item may hold more (`s3://b/k`). Whether `3` is an index or an item name is
 * told against the plan and the frozen list when it is applied (an item list: an item of that name first,
 * else an index; a range step: an index only).
 */
export function parseResetEntries(entries: readonly string[]): ResetEntries {
  const out: ResetEntries = { steps: [], units: new Map() };
  for (const entry of entries) {
    const colon = entry.indexOf(':');
    if (colon < 0) {
      if (!out.steps.includes(entry)) out.steps.push(entry);
      continue;
    }
    const step = entry.slice(0, colon);
    const unit = entry.slice(colon + 1);
    if (step === '' || unit === '')
      throw new InputError(
        `input \`reset\`: "${entry}" names ${step === '' ? 'no step' : 'no unit'}; write STEP (the step and its dependents), STEP:UNIT (\`import:3\`, \`import:3-5\`) or STEP:ITEM (\`import:data/a.csv\`)`,
      );
    const list = out.units.get(step) ?? [];
    if (!list.includes(unit)) list.push(unit);
    out.units.set(step, list);
  }
  return out;
}

export interface InputContext {
  workspace: string;
}

/** Every input the action declares, with the default action.yml gives it. */
export const INPUT_DEFAULTS = {
  file: 'checkpoint.yml',
  run: '',
  store: 'cache',
  key: '',
  'time-budget': '',
  'save-every': '5m',
  'on-incomplete': 'fail',
  concurrency: '',
  shard: '',
  paths: '',
  'signing-key': '',
  reset: '',
  approve: '',
  'max-continuations': '10',
  'retention-days': '',
  command: 'run',
  'github-token': '',
} as const;
type InputName = keyof typeof INPUT_DEFAULTS;

/** A zod field over one input's text; a thrown InputError becomes that field's issue. */
function field<T>(parse: (value: string) => T) {
  return z.string().transform((value, ctx): T => {
    try {
      return parse(value);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message });
      return z.NEVER;
    }
  });
}

const optional = <T>(parse: (value: string) => T) => field((v) => (v === '' ? undefined : parse(v)));

const SHARD_EXAMPLE = '`$' + '{{ strategy.job-index }}/$' + '{{ strategy.job-total }}`';

/** `shard`: `I/N` (0 <= I < N) for a run; for `command: report`, `N` or `*\/N` (1 to 256). */
function parseShardInput(v: string, command: string): string {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const total = /^(?:\*\/)?(\d+)$/.exec(v)?.[1];
  if (command === 'report') {
    if (total === undefined || Number(total) < 1 || Number(total) > 256)
      throw new InputError(
        `input \`shard\`: with \`command: report\`, give the number of shards to gather, \`N\` or \`*/N\` from 1 to 256 (for example \`shard: 4\`), got "${v}"`,
      );
    return v;
  }
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2]))
    throw new InputError(
      `input \`shard\`: expected I/N with I from 0 to N-1, such as "0/4" (${SHARD_EXAMPLE}), got "${v}"${total !== undefined ? '; `N` and `*/N` are for `command: report`' : ''}`,
    );
  return v;
}

function schema(ctx: InputContext, command: string) {
  return z.object({
    file: field((v) => resolve(ctx.workspace, v || 'checkpoint.yml')),
    run: optional((v) => v),
    store: field((v) => oneOf('store', v || 'cache', STORES)),
    key: optional((v) => {
      if (v.length > 200 || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(v) || !isValidRunId(v))
        throw new InputError(
          `input \`key\`: "${v}" is not usable as a key; use up to 200 letters, digits, ".", "_" and "-", starting with a letter or digit (for example \`key: backfill-2026\`)`,
        );
      return v;
    }),
    'time-budget': optional((v) => duration('time-budget', v, '25m')),
    // A longer period would overflow Node's timers, which then fire at once: a save every millisecond. About
    // 24.8 days is "never" for any job.
    'save-every': field((v) => Math.min(duration('save-every', v || '5m', '5m'), MAX_TIMER_MS)),
    'on-incomplete': field((v) => oneOf('on-incomplete', v || 'fail', ON_INCOMPLETE)),
    concurrency: optional((v) => integer('concurrency', v, 1)),
    // `I/N` for a run; `N` or `*/N` (the number of shards to gather) for `command: report`.
    shard: optional((v) => parseShardInput(v, command)),
    paths: field((v) =>
      words(v).map((p) => {
        const abs = resolve(ctx.workspace, p);
        const rel = relative(ctx.workspace, abs);
        if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
          throw new InputError(
            `input \`paths\`: "${p}" is not inside the workspace (${ctx.workspace}); list files or folders under it`,
          );
        return abs;
      }),
    ),
    'signing-key': optional((v) => v),
    reset: field((v) => {
      const entries = words(v);
      parseResetEntries(entries);
      return entries;
    }),
    approve: field(words),
    'max-continuations': field((v) => integer('max-continuations', v || '10', 0)),
    'retention-days': optional((v) => {
      const n = integer('retention-days', v, 1);
      if (n > 90)
        throw new InputError(
          `input \`retention-days\`: GitHub keeps artifacts at most 90 days (less when the repository says so), got "${v}"`,
        );
      return n;
    }),
    command: field((v) => oneOf('command', v || 'run', COMMANDS)),
    'github-token': field((v) => v),
  });
}

/** Reads every input through `get` (core.getInput in the action; a map in tests). */
export function readInputs(get: (name: string) => string, ctx: InputContext): Inputs {
  const raw = {} as Record<InputName, string>;
  // `run` keeps its line breaks (a multi-line script); everything else is trimmed.
  for (const name of Object.keys(INPUT_DEFAULTS) as InputName[])
    raw[name] = name === 'run' ? get(name) : get(name).trim();
  if (raw.run.trim() === '') raw.run = '';
  // No input can carry a NUL byte further: paths, the plan file and process environments all refuse one,
  // with an error that would name neither the input nor the fix.
  const nul = (Object.keys(raw) as InputName[]).filter((n) => raw[n].includes('\0'));
  if (nul.length > 0)
    throw new InputError(nul.map((n) => `input \`${n}\`: contains a NUL byte (\\0); remove it`).join('\n'));
  const parsed = schema(ctx, raw.command || 'run').safeParse(raw);
  if (!parsed.success) throw new InputError(parsed.error.issues.map((i) => i.message).join('\n'));
  const v = parsed.data;
  if (v.run !== undefined && raw.file !== '' && raw.file !== 'checkpoint.yml')
    throw new InputError(`inputs \`file\` ("${raw.file}") and \`run\` were both given; use one of them`);
  const inputs: Inputs = {
    file: v.file,
    store: v.store,
    saveEveryMs: v['save-every'],
    onIncomplete: v['on-incomplete'],
    paths: v.paths,
    reset: v.reset,
    approve: v.approve,
    maxContinuations: v['max-continuations'],
    command: v.command,
    githubToken: v['github-token'],
  };
  if (v.run !== undefined) inputs.run = v.run;
  if (v.key !== undefined) inputs.key = v.key;
  if (v['time-budget'] !== undefined) inputs.timeBudgetMs = v['time-budget'];
  if (v.concurrency !== undefined) inputs.concurrency = v.concurrency;
  if (v.shard !== undefined) {
    // Checked against the command above: `N` / `*/N` only reach here for `command: report`.
    if (v.command === 'report') inputs.shards = Number(v.shard.replace('*/', ''));
    else inputs.shard = v.shard;
  }
  if (v['signing-key'] !== undefined) inputs.signingKey = v['signing-key'];
  if (v['retention-days'] !== undefined) inputs.retentionDays = v['retention-days'];
  return inputs;
}
