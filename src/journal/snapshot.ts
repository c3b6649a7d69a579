// checkpoint.json: the whole model as human-readable JSON with a checksum over its content. Interval lists
// are printed one per line so a million fragments stay greppable without a line per number.

import { createHash } from 'node:crypto';
import { z } from 'zod';
import { CheckpointError, EXIT_FAILED } from '../errors.js';
import { IntervalSet } from './intervals.js';
import {
  type CheckpointState,
  FORMAT_VERSION,
  type StepRecord,
  type ThrottleRecord,
  unitCount,
} from './state.js';
import { checkStepRecord } from './validate.js';

export class SnapshotError extends CheckpointError {
  override name = 'SnapshotError';
  readonly exitCode = EXIT_FAILED;
}

/** Written by a newer program: refused, never rebuilt from the journal (which that program wrote too). */
export class SnapshotVersionError extends SnapshotError {
  override name = 'SnapshotVersionError';
}

// Flat [s0, e0, s1, e1, ...]: a million fragments parse as one array, not a million; IntervalSet.fromFlat
// validates them (zod per element would double the load time).
const intervals = z.custom<number[]>((v) => Array.isArray(v), 'expected a flat array of interval bounds');
const fingerprint = z.object({
  hash: z.string(),
  parts: z.object({
    run: z.string(),
    shell: z.string(),
    env: z.string(),
    workingDirectory: z.string(),
    batch: z.string(),
    inputs: z.record(z.string(), z.string()),
  }),
});
const stepSchema = z.object({
  fingerprint,
  from: z.number().int(),
  to: z.number().int(),
  size: z.number().int().positive(),
  items: z
    .object({
      count: z.number().int().nonnegative(),
      sha256: z.string(),
      source: z.string(),
      refresh: z.literal(true).optional(),
    })
    .optional(),
  /** `refresh: true`: items that left the source before they were done. */
  gone: intervals.optional(),
  sharding: z
    .object({
      from: z.number().int(),
      to: z.number().int(),
      mode: z.enum(['split', 'every', 'first']),
      merge: z.string().optional(),
      cuts: z.array(z.number().int()).min(2).optional(),
    })
    .optional(),
  adaptive: z.boolean().optional(),
  pace: z
    .object({
      items: z.number().nonnegative(),
      ms: z.number().nonnegative(),
      lastSize: z.number().int().nonnegative(),
      lastMs: z.number().nonnegative(),
      chunks: z.number().int().nonnegative(),
    })
    .optional(),
  unitsTotal: z.number().int().nonnegative(),
  unitsDone: z.number().int().nonnegative(),
  done: intervals,
  interrupted: intervals,
  failed: z.array(
    z.object({
      start: z.number().int(),
      end: z.number().int(),
      index: z.number().int(),
      exit: z.number().int().nullable(),
      signal: z.string().nullable(),
      tries: z.number().int(),
      reason: z.string(),
      attempt: z.number().int(),
      t: z.number(),
    }),
  ),
  running: z.array(
    z.object({
      start: z.number().int(),
      end: z.number().int(),
      index: z.number().int(),
      attempt: z.number().int(),
      try: z.number().int(),
      t: z.number(),
      pid: z.number().int().optional(),
      startTime: z.number().optional(),
      host: z.string().optional(),
      marker: z.string().optional(),
    }),
  ),
  outputs: z.record(z.string(), z.string()),
  durations: z.array(z.number()),
  timeMs: z.number(),
  completedAt: z.number().optional(),
  lastDoneAt: z.number().optional(),
  reason: z.string(),
  throttle: z
    .object({
      held: z.boolean(),
      reason: z.string().optional(),
      since: z.number().optional(),
      count: z.number().int(),
      heldMs: z.number(),
    })
    .optional(),
  manual: z
    .array(
      z.object({ start: z.number().int(), end: z.number().int(), by: z.string().optional(), at: z.number() }),
    )
    .optional(),
});
const snapshotSchema = z.object({
  format: z.number().int(),
  runId: z.string(),
  planName: z.string(),
  createdAt: z.number(),
  updatedAt: z.number(),
  seq: z.number().int().nonnegative(),
  attempts: z.array(
    z.object({
      attempt: z.number().int(),
      pid: z.number().int(),
      host: z.string(),
      resumed: z.boolean(),
      startedAt: z.number(),
      endedAt: z.number().optional(),
      exit: z.number().int().optional(),
      reason: z.string().optional(),
      unitsDone: z.number().int(),
    }),
  ),
  steps: z.record(z.string(), stepSchema),
  approvals: z.record(z.string(), z.object({ by: z.string(), at: z.number() })).optional(),
  merge: z
    .object({
      run: z.string(),
      total: z.number().int().positive(),
      runs: z.array(z.string()),
      at: z.number(),
    })
    .optional(),
  shard: z
    .object({ index: z.number().int().nonnegative(), total: z.number().int().positive() })
    .refine((s) => s.index < s.total, 'expected index < total')
    .optional(),
  checksum: z.string(),
});

export type SnapshotJson = z.infer<typeof snapshotSchema>;

function stepToJson(rec: StepRecord): z.infer<typeof stepSchema> {
  const out: z.infer<typeof stepSchema> = {
    fingerprint: rec.fingerprint,
    from: rec.from,
    to: rec.to,
    size: rec.size,
    unitsTotal: Math.ceil((rec.to - rec.from) / rec.size),
    unitsDone: rec.unitsDone,
    done: rec.done.toFlat(),
    interrupted: rec.interrupted.toFlat(),
    failed: [...rec.failed.values()],
    running: [...rec.running.values()],
    outputs: rec.outputs,
    durations: rec.durations,
    timeMs: rec.timeMs,
    reason: rec.reason,
  };
  if (rec.items) out.items = rec.items;
  if (rec.gone && !rec.gone.isEmpty) out.gone = rec.gone.toFlat();
  if (rec.sharding) out.sharding = rec.sharding;
  if (rec.adaptive) out.adaptive = true;
  if (rec.pace) out.pace = { ...rec.pace };
  if (rec.completedAt !== undefined) out.completedAt = rec.completedAt;
  if (rec.lastDoneAt !== undefined) out.lastDoneAt = rec.lastDoneAt;
  if (rec.throttle) out.throttle = { ...rec.throttle };
  if (rec.manual && rec.manual.length > 0) out.manual = rec.manual.map((m) => ({ ...m }));
  return out;
}

/** Pretty JSON, except that arrays of scalars (and of scalar pairs) stay on one line. */
export function stringifyReadable(value: unknown, indent = ''): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return '[]';
    if (value.every((v) => typeof v !== 'object' || v === null)) return JSON.stringify(value);
    const inner = `${indent}  `;
    const flat = value.every((v) => Array.isArray(v) && v.every((x) => typeof x !== 'object'));
    if (flat) return `[\n${value.map((v) => inner + JSON.stringify(v)).join(',\n')}\n${indent}]`;
    return `[\n${value.map((v) => inner + stringifyReadable(v, inner)).join(',\n')}\n${indent}]`;
  }
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    if (entries.length === 0) return '{}';
    const inner = `${indent}  `;
    return `{\n${entries.map(([k, v]) => `${inner}${JSON.stringify(k)}: ${stringifyReadable(v, inner)}`).join(',\n')}\n${indent}}`;
  }
  return JSON.stringify(value);
}

function flatIntervals(v: number[], file: string, where: string): IntervalSet {
  try {
    return IntervalSet.fromFlat(v);
  } catch (err) {
    throw new SnapshotError(`${file}: ${where}: ${(err as Error).message}`);
  }
}

function checksumOf(body: string): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}

/** The checksum covers the document printed without its `checksum` key. */
export function serializeSnapshot(state: CheckpointState): string {
  const doc: Record<string, unknown> = {
    format: FORMAT_VERSION,
    runId: state.runId,
    planName: state.planName,
    createdAt: state.createdAt,
    updatedAt: state.updatedAt,
    seq: state.seq,
    attempts: state.attempts,
    ...(state.shard ? { shard: state.shard } : {}),
    ...(state.merge ? { merge: state.merge } : {}),
    ...(state.approvals?.size ? { approvals: Object.fromEntries(state.approvals) } : {}),
    steps: Object.fromEntries([...state.steps].map(([id, rec]) => [id, stepToJson(rec)])),
  };
  const body = stringifyReadable(doc);
  // `body` ends with "\n}": the checksum goes in as the last key, so a reader can cut it off and re-hash.
  return `${body.slice(0, -2)},\n  "checksum": "${checksumOf(body)}"\n}\n`;
}

export function parseSnapshot(text: string, file: string): CheckpointState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SnapshotError(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (raw === null || typeof raw !== 'object') throw new SnapshotError(`${file}: expected a JSON object`);
  const fmt = (raw as { format?: unknown }).format;
  if (typeof fmt === 'number' && fmt > FORMAT_VERSION) {
    throw new SnapshotVersionError(
      `${file}: checkpoint format ${fmt} is newer than this program reads (${FORMAT_VERSION}); upgrade checkpoint-action, or start a new run with \`checkpoint run --new\``,
    );
  }
  // The checksum is the last key, written after the body was hashed: cut it off and hash the text as read.
  const marker = text.lastIndexOf(',\n  "checksum": "');
  const checksum = (raw as Record<string, unknown>).checksum;
  if (marker < 0 || typeof checksum !== 'string' || checksumOf(`${text.slice(0, marker)}\n}`) !== checksum) {
    throw new SnapshotError(`${file}: checksum mismatch (the file was changed or damaged)`);
  }
  const parsed = snapshotSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new SnapshotError(
      `${file}: does not match the checkpoint schema at ${issue?.path.join('.') || '(root)'}: ${issue?.message ?? 'invalid'}`,
    );
  }
  const doc = parsed.data;
  const steps = new Map<string, StepRecord>();
  for (const [id, s] of Object.entries(doc.steps)) {
    const rec: StepRecord = {
      fingerprint: s.fingerprint,
      from: s.from,
      to: s.to,
      size: s.size,
      done: flatIntervals(s.done, file, `steps.${id}.done`),
      interrupted: flatIntervals(s.interrupted, file, `steps.${id}.interrupted`),
      failed: new Map(s.failed.map((f) => [f.start, f])),
      running: new Map(s.running.map((r) => [r.start, r])),
      outputs: s.outputs,
      durations: s.durations,
      timeMs: s.timeMs,
      unitsDone: s.unitsDone,
      reason: s.reason,
    };
    if (s.items) {
      const { refresh, ...items } = s.items;
      rec.items = refresh ? { ...items, refresh } : items;
    }
    if (s.gone !== undefined) rec.gone = flatIntervals(s.gone, file, `steps.${id}.gone`);
    if (s.sharding) rec.sharding = s.sharding;
    if (s.adaptive) rec.adaptive = true;
    if (s.pace) rec.pace = s.pace;
    if (s.completedAt !== undefined) rec.completedAt = s.completedAt;
    if (s.lastDoneAt !== undefined) rec.lastDoneAt = s.lastDoneAt;
    if (s.throttle) rec.throttle = throttleRecord(s.throttle);
    if (s.manual && s.manual.length > 0)
      rec.manual = s.manual.map((m) =>
        m.by === undefined
          ? { start: m.start, end: m.end, at: m.at }
          : { start: m.start, end: m.end, by: m.by, at: m.at },
      );
    // Evidence, not orders: the record must make sense on its own before anything reads it.
    const problem = checkStepRecord(id, rec);
    if (problem) throw new SnapshotError(`${file}: ${problem}`);
    if (s.unitsTotal !== unitCount(rec))
      throw new SnapshotError(
        `${file}: step "${id}": unitsTotal is ${s.unitsTotal}, but its space holds ${unitCount(rec)} units`,
      );
    steps.set(id, rec);
  }
  const state: CheckpointState = {
    format: doc.format,
    runId: doc.runId,
    planName: doc.planName,
    createdAt: doc.createdAt,
    updatedAt: doc.updatedAt,
    seq: doc.seq,
    attempts: doc.attempts,
    steps,
  };
  if (doc.shard) state.shard = doc.shard;
  if (doc.merge) state.merge = { ...doc.merge, runs: [...doc.merge.runs] };
  if (doc.approvals && Object.keys(doc.approvals).length > 0)
    state.approvals = new Map(Object.entries(doc.approvals).map(([id, a]) => [id, { by: a.by, at: a.at }]));
  return state;
}

/** Only the fields that are there: the record type has no `undefined` values (exactOptionalPropertyTypes). */
function throttleRecord(t: {
  held: boolean;
  reason?: string | undefined;
  since?: number | undefined;
  count: number;
  heldMs: number;
}): ThrottleRecord {
  const out: ThrottleRecord = { held: t.held, count: t.count, heldMs: t.heldMs };
  if (t.reason !== undefined) out.reason = t.reason;
  if (t.since !== undefined) out.since = t.since;
  return out;
}
