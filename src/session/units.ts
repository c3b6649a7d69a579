// Unit-level intervention (DESIGN §5): `mark-done STEP --unit N.. | --item NAME..`, `reset STEP --unit ..`
// and the action's `reset: STEP:UNIT` / `STEP:ITEM`. Turns what the user named into whole units of the
// step's space as its record (or, before the step first ran, the plan) defines it, or a usage error that
// names the step, the value and the fix. Nothing here writes: the caller records what comes back.

import { prepare } from '../engine/prepare.js';
import type { Checkpoint } from '../journal/checkpoint.js';
import type { StepInitEvent } from '../journal/events.js';
import { IntervalSet } from '../journal/intervals.js';
import type { Plan, Step } from '../plan/types.js';
import { nameItems } from '../report/items.js';
import { UsageError } from './context.js';

/** What the user named: chunk indices, item names, or (the action's `STEP:X`) either, items first. */
export interface UnitSelection {
  units?: readonly string[];
  items?: readonly string[];
  /** `STEP:X` entries of the action's `reset` input: an item name of an item list, else a unit index. */
  either?: readonly string[];
}

export interface UnitTarget {
  step: Step;
  /** The step's units in the space: its record's (this shard's part), or the one `step-init` would make. */
  space: { from: number; to: number; size: number };
  /** The named units as ranges of the space: whole units, in order, disjoint. */
  ranges: Array<[number, number]>;
  /** The unit indices, `3, 5-7`. */
  indices: string;
  /** The step has no record yet: the event that creates it and its item list, to record first. */
  init?: { event: StepInitEvent; items?: string[] };
  /** The step's item list, when it is one (for naming the units' items). */
  items?: readonly string[];
}

const UNIT_RE = /^(\d+)(?:(?:-|\.\.)(\d+))?$/;
const UNIT_EXAMPLE = '`--unit 3`, `--unit 3,5` or `--unit 3-7` (also `3..7`; both ends included)';

/** `3`, `3,5`, `3-7`, `3..7` (inclusive) as index pairs; undefined when the text is not that. */
export function parseUnitText(text: string): Array<[number, number]> | undefined {
  const out: Array<[number, number]> = [];
  for (const part of text.split(',')) {
    const m = UNIT_RE.exec(part.trim());
    if (!m) return undefined;
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (!Number.isSafeInteger(a) || !Number.isSafeInteger(b) || b < a) return undefined;
    out.push([a, b]);
  }
  return out.length > 0 ? out : undefined;
}

/**
 * The checks that need only the plan (before the lease is taken): one step, a batch step, and for
 * `--unit`, index syntax; `--item` only on an item list.
 */
export function checkUnitSelection(
  plan: Plan,
  cmd: 'mark-done' | 'reset',
  steps: readonly string[],
  sel: UnitSelection,
  where: string,
): void {
  if (steps.length !== 1) {
    throw new UsageError(
      `${where}: name exactly one step (the units are that step's), got ${steps.length === 0 ? 'none' : steps.join(', ')}; e.g. \`checkpoint ${cmd} ${plan.steps.find((s) => s.batch)?.id ?? 'STEP'} --unit 3\``,
    );
  }
  const id = steps[0] as string;
  const step = plan.steps.find((s) => s.id === id);
  if (!step) return; // checkSteps names it
  if (!step.batch) {
    throw new UsageError(
      `${where}: step "${id}" is not a batch step, so it has no units; ${cmd === 'reset' ? 'reset' : 'mark'} the whole step${cmd === 'reset' ? '' : ' done'} with ${where.startsWith('input') ? `\`reset: ${id}\`` : `\`checkpoint ${cmd} ${id}\``}`,
    );
  }
  if (sel.items && step.batch.space.kind === 'range') {
    throw new UsageError(
      `${where}: step "${id}" is a range step ([${step.batch.space.from}, ${step.batch.space.to}) in chunks of ${step.batch.size}), not an item list; name its units by chunk index instead, e.g. \`checkpoint ${cmd} ${id} --unit 0\``,
    );
  }
  for (const u of sel.units ?? []) {
    if (!parseUnitText(u))
      throw new UsageError(`${where}: "${u}" is not a unit index of step "${id}"; give ${UNIT_EXAMPLE}`);
  }
  if (step.batch.space.kind === 'range') {
    for (const x of sel.either ?? []) {
      if (!parseUnitText(x))
        throw new UsageError(
          `${where}: "${id}:${x}": step "${id}" is a range step, so what follows the colon is a chunk index: \`${id}:3\`, \`${id}:3-5\``,
        );
    }
  }
}

/**
 * Resolves the selection against the checkpoint (read, not yet open for writing): errors leave it as it
 * was. A step without a record is prepared from the plan (its item list expanded) so its units exist.
 */
export async function resolveUnits(
  plan: Plan,
  ckpt: Checkpoint,
  cmd: 'mark-done' | 'reset',
  id: string,
  sel: UnitSelection,
  where: string,
  env: NodeJS.ProcessEnv,
): Promise<UnitTarget> {
  const step = plan.steps.find((s) => s.id === id) as Step;
  const rec = ckpt.state.steps.get(id);
  // What a run would do with the step now: a record it would replace holds marks the next run drops.
  const prep = await prepare(plan, ckpt.state, { env, expand: rec === undefined });
  const init = prep.events.find((e): e is StepInitEvent => e.type === 'step-init' && e.step === id);
  if (rec && init) {
    throw new UsageError(
      `${where}: the record of step "${id}" is out of date (${init.reason}), so the next run starts the step afresh and would not keep unit marks; run it first (\`checkpoint run\`), or ${cmd === 'reset' ? 'reset' : 'mark done'} the whole step (\`checkpoint ${cmd} ${id}\`)`,
    );
  }
  const space = rec ?? (init as StepInitEvent);
  const isList = step.batch?.space.kind === 'items';
  const total = Math.max(0, Math.ceil((space.to - space.from) / space.size));
  const part = space.sharding?.mode === 'split' ? " (this shard's part)" : '';
  const spaceText = `${total} chunk(s) of ${space.size} over [${space.from}, ${space.to})${part}`;
  if (total === 0) {
    throw new UsageError(
      `${where}: step "${id}" has no units (${spaceText}${isList ? '; its item list is empty' : ''}); there is nothing to ${cmd}`,
    );
  }
  // The frozen list: the record's (checked against its checksum), or the one the step would be made with.
  const items = isList ? (rec ? await ckpt.readItems(id) : prep.items.get(id)) : undefined;
  const cells = new IntervalSet();
  const addIndices = (text: string, shownAs: string): void => {
    for (const [a, b] of parseUnitText(text) ?? []) {
      if (b >= total) {
        throw new UsageError(
          `${where}: step "${id}" has units 0 to ${total - 1} (${spaceText}), so ${shownAs} is outside it; give an index from 0 to ${total - 1} (\`checkpoint status\` shows the step's done and failed ranges)`,
        );
      }
      cells.add(a, b + 1);
    }
  };
  const positions = items ? itemPositions(items) : undefined;
  const addItem = (name: string, shownAs: string): boolean => {
    const at = positions?.get(name);
    if (!at) return false;
    const here = at.filter((i) => i >= space.from && i < space.to);
    if (here.length === 0) {
      throw new UsageError(
        `${where}: item ${shownAs} of step "${id}" is in another shard's part (item ${at[0]}; this shard's part is [${space.from}, ${space.to})); name it in that shard's run`,
      );
    }
    for (const i of here) {
      const cell = Math.floor((i - space.from) / space.size);
      cells.add(cell, cell + 1);
    }
    return true;
  };
  const unknownItem = (shownAs: string): never => {
    const list = items ?? [];
    throw new UsageError(
      `${where}: no item ${shownAs} in the item list of step "${id}" (${list.length} items${rec?.items ? `, ${rec.items.source}` : ''}: ${nameItems(list, list.length)}); give a name as the list holds it (\`checkpoint status --json\` names the items of failed units), or \`checkpoint reset ${id}\` to expand the list again`,
    );
  };
  for (const u of sel.units ?? []) addIndices(u, `"${u}"`);
  for (const name of sel.items ?? [])
    if (!addItem(name, JSON.stringify(name))) unknownItem(JSON.stringify(name));
  for (const x of sel.either ?? []) {
    const shownAs = `"${id}:${x}"`;
    if (addItem(x, shownAs)) continue;
    if (parseUnitText(x)) addIndices(x, shownAs);
    else unknownItem(shownAs);
  }
  const ranges: Array<[number, number]> = [];
  for (const [a, b] of cells.intervals()) {
    const s = space.from + a * space.size;
    const e = Math.min(space.to, space.from + b * space.size);
    const last = ranges[ranges.length - 1];
    if (last && last[1] === s) last[1] = e;
    else ranges.push([s, e]);
  }
  const target: UnitTarget = {
    step,
    space: { from: space.from, to: space.to, size: space.size },
    ranges,
    indices: cells.toString(),
  };
  if (items) target.items = items;
  if (!rec && init) {
    const list = prep.items.get(id);
    target.init = list ? { event: init, items: list } : { event: init };
  }
  return target;
}

function itemPositions(items: readonly string[]): Map<string, number[]> {
  const out = new Map<string, number[]>();
  items.forEach((item, i) => {
    const at = out.get(item);
    if (at) at.push(i);
    else out.set(item, [i]);
  });
  return out;
}

/** `unit 3` / `units 3, 5-7`, with the items of an item list: `unit 0 (data/a.csv)`. */
export function describeTarget(t: UnitTarget): string {
  const several = /[,-]/.test(t.indices);
  const shownRanges = t.ranges.slice(0, 3).map(([s, e]) => `[${s}, ${e})`);
  if (t.ranges.length > 3) shownRanges.push(`… ${t.ranges.length - 3} more`);
  const head = `${several ? 'units' : 'unit'} ${t.indices} ${shownRanges.join(', ')}`;
  if (!t.items) return head;
  const names: string[] = [];
  let count = 0;
  for (const [s, e] of t.ranges) {
    count += Math.min(e, t.items.length) - s;
    if (names.length < 3) names.push(...t.items.slice(s, Math.min(e, s + 3)));
  }
  return `${head} (${nameItems(names, count)})`;
}
