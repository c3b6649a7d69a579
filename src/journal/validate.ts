// Checks on what is read back from a checkpoint, before any of it is applied to the model (DESIGN §4: a
// checkpoint is evidence, never orders). Three layers:
//  - `checkEvent`: one journal line against the event schema (types, whole safe integers, known type);
//  - `checkEventInState`: the event against the model it is about to change (a unit's range inside its
//    step's space and on its grid, a space that is not inverted);
//  - `checkStepRecord`: a step's record (from the snapshot or rebuilt) on its own, and `checkAgainstPlan`
//    (plan-check.ts): its space against the one the plan defines.
// A check returns the problem as text, or undefined; the caller turns it into a CheckpointDamageError naming
// the file and line. The checks are written out by hand rather than with zod: a journal holds up to 8 MiB of
// lines, read at every start, and these cost a few property reads per line.

import { showValue } from './damage.js';
import type { Stamped } from './events.js';
import type { CheckpointState, StepRecord } from './state.js';

type Check = (v: unknown) => boolean;

const isInt: Check = (v) => Number.isSafeInteger(v);
const isNat: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0;
const isPos: Check = (v) => Number.isSafeInteger(v) && (v as number) > 0;
const isNum: Check = (v) => typeof v === 'number' && Number.isFinite(v);
const isNonNegNum: Check = (v) => isNum(v) && (v as number) >= 0;
const isStr: Check = (v) => typeof v === 'string';
const isBool: Check = (v) => typeof v === 'boolean';
const isTrue: Check = (v) => v === true;
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const nullable =
  (c: Check): Check =>
  (v) =>
    v === null || c(v);
const isStrRecord: Check = (v) => isObj(v) && Object.values(v).every((x) => typeof x === 'string');
const isFingerprint: Check = (v) => {
  if (!isObj(v) || typeof v.hash !== 'string' || !isObj(v.parts)) return false;
  const p = v.parts;
  return (
    ['run', 'shell', 'env', 'workingDirectory', 'batch'].every((k) => typeof p[k] === 'string') &&
    isStrRecord(p.inputs)
  );
};
const isItems: Check = (v) =>
  isObj(v) &&
  isNat(v.count) &&
  typeof v.sha256 === 'string' &&
  typeof v.source === 'string' &&
  (v.refresh === undefined || v.refresh === true);
/** Index ranges [s, e), each non-empty, in order and apart (as IntervalSet.toJSON writes them). */
const isIndexRanges: Check = (v) => {
  if (!Array.isArray(v)) return false;
  let last = Number.NEGATIVE_INFINITY;
  for (const r of v) {
    if (!Array.isArray(r) || r.length !== 2 || !isNat(r[0]) || !isNat(r[1])) return false;
    if (!((r[0] as number) < (r[1] as number)) || (r[0] as number) <= last) return false;
    last = r[1] as number;
  }
  return true;
};
/** Cut points of a split after a merge: from `from` to `to`, never decreasing. */
const isCuts = (v: unknown, from: number, to: number): boolean =>
  Array.isArray(v) &&
  v.length >= 2 &&
  v.every(isInt) &&
  v[0] === from &&
  v[v.length - 1] === to &&
  v.every((c, i) => i === 0 || (v[i - 1] as number) <= (c as number));
const isSharding: Check = (v) =>
  isObj(v) &&
  isInt(v.from) &&
  isInt(v.to) &&
  (v.from as number) <= (v.to as number) &&
  (v.mode === 'split' || v.mode === 'every' || v.mode === 'first') &&
  (v.merge === undefined || isStr(v.merge)) &&
  (v.cuts === undefined || isCuts(v.cuts, v.from as number, v.to as number));
/** `[[start, end], ...]`: whole safe integers, each range not empty, in order and disjoint. */
const isUnitRanges: Check = (v) => {
  if (!Array.isArray(v) || v.length === 0) return false;
  let prev = Number.NEGATIVE_INFINITY;
  for (const r of v) {
    if (!Array.isArray(r) || r.length !== 2 || !isInt(r[0]) || !isInt(r[1])) return false;
    const [s, e] = r as [number, number];
    if (!(s < e) || s < prev) return false;
    prev = e;
  }
  return true;
};
const isSpans: Check = (v) =>
  Array.isArray(v) &&
  v.every((x) => Array.isArray(x) && x.length === 2 && isInt(x[0]) && isInt(x[1]) && x[0] < x[1]);
const isShard: Check = (v) =>
  isObj(v) && isNat(v.index) && isPos(v.total) && (v.index as number) < (v.total as number);

/** Field → check; a `?` after the name marks an optional field. */
type Spec = Record<string, Check>;

const UNIT: Spec = { step: isStr, start: isInt, end: isInt, index: isNat };
const SPACE: Spec = {
  step: isStr,
  fingerprint: isFingerprint,
  from: isInt,
  to: isInt,
  size: isPos,
  'sharding?': isSharding,
  'adaptive?': isTrue,
  reason: isStr,
};

const SPECS: Record<string, Spec> = {
  'step-init': { ...SPACE, 'items?': isItems },
  'step-redefine': SPACE,
  attempt: {
    attempt: isNat,
    plan: isStr,
    pid: isInt,
    host: isStr,
    resumed: isBool,
    'shard?': isShard,
  },
  'attempt-end': { attempt: isNat, exit: isInt, reason: isStr },
  start: { ...UNIT, try: isNat, attempt: isNat },
  spawned: { ...UNIT, pid: isInt, 'startTime?': isNat, host: isStr, 'marker?': isStr },
  done: { ...UNIT, ms: isNonNegNum, 'outputs?': isStrRecord },
  fail: {
    ...UNIT,
    try: isNat,
    ms: isNonNegNum,
    exit: nullable(isInt),
    signal: nullable(isStr),
    final: isBool,
    reason: isStr,
  },
  yield: { ...UNIT, ms: isNonNegNum },
  interrupt: { ...UNIT, ms: isNonNegNum, reason: isStr },
  'step-complete': { step: isStr },
  reset: {
    step: isStr,
    failedOnly: isBool,
    reason: isStr,
    'forget?': isBool,
    'ranges?': isUnitRanges,
    'by?': isStr,
  },
  throttle: { step: isStr, held: isBool, 'reason?': isStr },
  'mark-done': { step: isStr, 'ranges?': isUnitRanges, 'by?': isStr },
  approve: { step: isStr, by: isStr },
  'items-refresh': { step: isStr, count: isNat, sha256: isStr, gone: isIndexRanges, refresh: isBool },
  merge: { run: isStr, total: isPos, runs: (v) => Array.isArray(v) && v.every(isStr), 'at?': isNum },
  'merge-done': { step: isStr, done: isSpans, 'outputs?': isStrRecord },
};

function checkSpec(value: Record<string, unknown>, spec: Spec): string | undefined {
  for (const [key, check] of Object.entries(spec)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    const v = value[name];
    if (v === undefined && optional) continue;
    if (!check(v)) return `field \`${name}\` is ${showValue(v)}`;
  }
  return undefined;
}

/** A journal line's event against the schema; the problem, or undefined when it is a valid event. */
export function checkEvent(value: Record<string, unknown>): string | undefined {
  const spec = typeof value.type === 'string' ? SPECS[value.type] : undefined;
  if (spec === undefined) return `unknown event type ${showValue(value.type)}`;
  if (!isPos(value.seq)) return `field \`seq\` is ${showValue(value.seq)}`;
  if (!isNum(value.t)) return `field \`t\` is ${showValue(value.t)}`;
  const problem = checkSpec(value, spec);
  return problem === undefined ? undefined : `${value.type} event: ${problem}`;
}

/**
 * A unit [start, end) with `index` against its step's space: inside [from, to), not empty, and on the
 * step's grid (its index is the grid cell it starts in; a fixed-size unit never runs past that cell). This
 * is what the scheduler hands out (`cut`, `#unitAt`, `#chunkAt`), so anything else was not written by it.
 */
export function checkUnit(
  rec: Pick<StepRecord, 'from' | 'to' | 'size' | 'adaptive'>,
  start: number,
  end: number,
  index: number,
): string | undefined {
  if (!(start < end)) return `unit [${start}, ${end}) is empty or inverted`;
  if (start < rec.from || end > rec.to)
    return `unit [${start}, ${end}) lies outside its step's space [${rec.from}, ${rec.to})`;
  const cell = Math.floor((start - rec.from) / rec.size);
  if (index !== cell)
    return `unit [${start}, ${end}) has index ${index}, not ${cell} (chunks of ${rec.size})`;
  if (!rec.adaptive && end > rec.from + (cell + 1) * rec.size)
    return `unit [${start}, ${end}) is larger than the step's chunks of ${rec.size}`;
  return undefined;
}

/**
 * Ranges of a step's space marked done or reset by hand: whole units of the step, inside its space. The
 * command cuts them on the grid (`--unit N` is cell N, `--item` the cells holding the items), and so
 * must they lie.
 */
export function checkUnitRanges(
  rec: Pick<StepRecord, 'from' | 'to' | 'size'>,
  ranges: ReadonlyArray<readonly [number, number]>,
): string | undefined {
  for (const [s, e] of ranges) {
    if (s < rec.from || e > rec.to)
      return `range [${s}, ${e}) lies outside its step's space [${rec.from}, ${rec.to})`;
    if ((s - rec.from) % rec.size !== 0 || (e !== rec.to && (e - rec.from) % rec.size !== 0))
      return `range [${s}, ${e}) is not made of whole units (chunks of ${rec.size} from ${rec.from})`;
  }
  return undefined;
}

/** A step's space: whole safe integers, not inverted, this shard's part inside the whole. */
export function checkSpace(
  s: Pick<StepRecord, 'from' | 'to' | 'size' | 'sharding' | 'items'>,
): string | undefined {
  if (!isInt(s.from) || !isInt(s.to) || !isPos(s.size))
    return `its space [${showValue(s.from)}, ${showValue(s.to)}) in chunks of ${showValue(s.size)} is not made of whole numbers`;
  if (!(s.from <= s.to)) return `its space [${s.from}, ${s.to}) is inverted`;
  if (s.sharding && (s.from < s.sharding.from || s.to > s.sharding.to))
    return `its shard's part [${s.from}, ${s.to}) lies outside the whole space [${s.sharding.from}, ${s.sharding.to})`;
  if (s.items) {
    const whole = s.sharding ?? s;
    if (whole.from !== 0 || whole.to !== s.items.count)
      return `its space [${whole.from}, ${whole.to}) does not match its ${s.items.count} frozen items`;
  }
  return undefined;
}

/**
 * An event against the model it is about to change. Events about a step that has no record are ignored by
 * applyEvent (a removed step's history), so they need no range. An `interrupt` may lie outside the space:
 * it ends a unit left running before the step was redefined, and applyEvent clips it to the space.
 */
export function checkEventInState(state: CheckpointState, ev: Stamped): string | undefined {
  switch (ev.type) {
    case 'step-init':
    case 'step-redefine': {
      const problem = checkSpace(ev);
      return problem && `${ev.type} of step "${ev.step}": ${problem}`;
    }
    case 'start':
    case 'spawned':
    case 'done':
    case 'fail':
    case 'yield': {
      const rec = state.steps.get(ev.step);
      if (!rec) return undefined;
      const problem = checkUnit(rec, ev.start, ev.end, ev.index);
      return problem && `${ev.type} event of step "${ev.step}": ${problem}`;
    }
    case 'mark-done':
    case 'reset': {
      if (ev.type === 'reset' && ev.ranges && (ev.failedOnly || ev.forget))
        return `reset event of step "${ev.step}": \`ranges\` with \`${ev.failedOnly ? 'failedOnly' : 'forget'}\``;
      const rec = state.steps.get(ev.step);
      if (!rec || !ev.ranges) return undefined;
      const problem = checkUnitRanges(rec, ev.ranges);
      return problem && `${ev.type} event of step "${ev.step}": ${problem}`;
    }
    case 'interrupt':
      return ev.start < ev.end ? undefined : `interrupt event: unit [${ev.start}, ${ev.end}) is empty`;
    case 'items-refresh': {
      const rec = state.steps.get(ev.step);
      if (!rec) return undefined;
      const problem = checkRefresh(rec, ev);
      return problem && `items-refresh event of step "${ev.step}": ${problem}`;
    }
    case 'merge-done': {
      const rec = state.steps.get(ev.step);
      if (!rec) return undefined;
      const out = ev.done.find(([s, e]) => s < rec.from || e > rec.to);
      return (
        out &&
        `merge-done event of step "${ev.step}": [${out[0]}, ${out[1]}) lies outside its space [${rec.from}, ${rec.to})`
      );
    }
    default:
      return undefined;
  }
}

/**
 * A refresh only appends (the indices of frozen items never change), to the whole list of an unsharded step
 * (or of a `shards: first` step on the shard that runs it), and never calls a done item gone. That the
 * list on disk is the one the event describes is checked where it is read (Checkpoint.readItems).
 */
function checkRefresh(
  rec: StepRecord,
  ev: { count: number; sha256: string; gone: Array<[number, number]> },
): string | undefined {
  if (!rec.items) return 'its step has no frozen item list';
  if (ev.count < rec.items.count)
    return `the frozen list shrinks from ${rec.items.count} to ${ev.count} items (a refresh only appends)`;
  if (ev.count === rec.items.count && ev.sha256 !== rec.items.sha256)
    return `the frozen list of ${ev.count} items changes without growing (a refresh only appends)`;
  if (
    rec.sharding &&
    (rec.sharding.mode === 'split' || rec.from !== rec.sharding.from || rec.to !== rec.sharding.to)
  )
    return `it refreshes a shard's part [${rec.from}, ${rec.to}) (only unsharded steps and shards: first refresh)`;
  for (const [s, e] of ev.gone) {
    if (e > ev.count) return `gone items [${s}, ${e}) reach past its ${ev.count} items`;
    if (rec.done.overlaps(s, e)) return `gone items [${s}, ${e}) include done ones`;
  }
  return undefined;
}

/** A step's record as a whole (read from the snapshot): its space, its ranges and its counts. */
export function checkStepRecord(id: string, rec: StepRecord): string | undefined {
  const where = `step "${id}"`;
  const space = checkSpace(rec);
  if (space) return `${where}: ${space}`;
  for (const [name, set] of [
    ['done', rec.done],
    ['interrupted', rec.interrupted],
    ['gone', rec.gone],
  ] as const) {
    if (!set) continue;
    const min = set.min;
    const max = set.max;
    if (min !== undefined && max !== undefined && (min < rec.from || max > rec.to))
      return `${where}: ${name} ranges [${min}, ${max}) reach outside its space [${rec.from}, ${rec.to})`;
  }
  for (const [s, e] of rec.gone?.intervals() ?? [])
    if (rec.done.overlaps(s, e)) return `${where}: gone items [${s}, ${e}) include done ones`;
  for (const f of rec.failed.values()) {
    const problem = checkUnit(rec, f.start, f.end, f.index);
    if (problem) return `${where}: failed ${problem}`;
  }
  for (const m of rec.manual ?? []) {
    if (!isInt(m.start) || !isInt(m.end) || !(m.start < m.end) || m.start < rec.from || m.end > rec.to)
      return `${where}: range [${m.start}, ${m.end}) marked done by hand is not inside its space [${rec.from}, ${rec.to})`;
    if (!rec.done.covers(m.start, m.end))
      return `${where}: range [${m.start}, ${m.end}) is marked done by hand but is not done`;
  }
  for (const r of rec.running.values())
    if (!(r.start < r.end)) return `${where}: running unit [${r.start}, ${r.end}) is empty`;
  const total = Math.ceil((rec.to - rec.from) / rec.size);
  if (rec.unitsDone > total) return `${where}: ${rec.unitsDone} units done of ${total}`;
  return undefined;
}
