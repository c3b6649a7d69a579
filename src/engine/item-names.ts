// Items of item lists as people read them: a unit's items named (the first few, then a count), a frozen
// list against its source now (added and removed, by name), the warning for a source that gave nothing.
// Pure formatters, plus the check of a source against its frozen list; the engine's log lines, status,
// the summary and reports all use them (report/items.ts adds the loader of frozen lists).
import { itemsHash } from '../journal/checkpoint.js';
import type { ItemsInfo } from '../journal/events.js';
import type { ItemList } from '../journal/item-list.js';
import { expandItems, type ItemsCommandRunner } from '../plan/items.js';
import type { Plan, Step } from '../plan/types.js';
import { scrubEnv } from './env.js';

/** Items named in one line (log lines, status, the summary) before the rest are counted. */
export const ITEMS_IN_LINE = 3;
/** Items named in `status --json` per unit, and per side of a changed item list. */
export const ITEMS_LISTED = 10;

/** The items of a unit: how many there are and the first few (`first` never holds more than asked). */
export interface UnitItems {
  count: number;
  first: string[];
}

/** An item as shown in a list: quoted when it could be misread (empty, padded, or holding `, `). */
function showItem(item: string): string {
  return item === '' || item !== item.trim() || item.includes(', ') || item.startsWith('"')
    ? JSON.stringify(item)
    : item;
}

/**
 * `a.csv, b.csv, c.csv and 7 more`; `total` is the count when `names` holds only the first few. At most
 * `max` names are shown.
 */
export function nameItems(names: readonly string[], total = names.length, max = ITEMS_IN_LINE): string {
  const shown = names.slice(0, Math.min(max, total)).map(showItem);
  const more = total - shown.length;
  if (shown.length === 0) return more > 0 ? `${more} items` : 'no items';
  return more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
}

/** The items of [start, end) of a frozen list, the first `max` of them; undefined without a list. */
export function unitItems(
  items: ItemList | undefined,
  start: number,
  end: number,
  max = ITEMS_LISTED,
): UnitItems | undefined {
  if (items === undefined) return undefined;
  const from = Math.max(0, start);
  const to = Math.min(items.length, end);
  const count = Math.max(0, to - from);
  return { count, first: items.slice(from, from + Math.min(count, max)) };
}

/**
 * A unit as log lines show it: `import [39, 40) data/b.csv`, `import [0, 10) a.csv, b.csv, c.csv and 7
 * more`; `backfill [400, 500)` for a range; the step id for a plain step.
 */
export function describeUnitItems(
  step: { id: string; batch?: unknown },
  unit: { start: number; end: number },
  items: ItemList | undefined,
): string {
  if (!step.batch) return step.id;
  const where = `${step.id} [${unit.start}, ${unit.end})`;
  const u = unitItems(items, unit.start, unit.end, ITEMS_IN_LINE);
  return u && u.count > 0 ? `${where} ${nameItems(u.first, u.count)}` : where;
}

/** A UnitItems in one line: `data/b.csv`, `a.csv, b.csv, c.csv and 7 more`. */
export function describeItems(u: UnitItems, max = ITEMS_IN_LINE): string {
  return nameItems(u.first, u.count, max);
}

// ---------------------------------------------------------------------------------------------------------
// A frozen list against its source now

export interface ItemsChange {
  /** In the source now, not in the frozen list (in the source's order), the first ten. */
  added: string[];
  addedCount: number;
  /** In the frozen list, gone from the source now (in the list's order), the first ten. */
  removed: string[];
  removedCount: number;
  /** Same items, another order (only when nothing was added or removed): the indices would shift. */
  reordered: boolean;
}

/** What changed between a frozen list and the source's items now; undefined when nothing did. */
export function itemsChange(
  frozen: readonly string[],
  now: readonly string[],
  max = ITEMS_LISTED,
): ItemsChange | undefined {
  const before = new Set(frozen);
  const after = new Set(now);
  const added = now.filter((i) => !before.has(i));
  const removed = frozen.filter((i) => !after.has(i));
  const reordered =
    added.length === 0 &&
    removed.length === 0 &&
    (frozen.length !== now.length || frozen.some((item, i) => now[i] !== item));
  if (added.length === 0 && removed.length === 0 && !reordered) return undefined;
  return {
    added: added.slice(0, max),
    addedCount: added.length,
    removed: removed.slice(0, max),
    removedCount: removed.length,
    reordered,
  };
}

/**
 * `items source changed since it was frozen: 2 added (d.csv, e.csv), 1 removed (a.csv); the frozen list is
 * used until \`checkpoint reset import\``.
 */
export function describeItemsChange(step: string, change: ItemsChange, max = ITEMS_LISTED): string {
  const parts: string[] = [];
  if (change.addedCount > 0)
    parts.push(`${change.addedCount} added (${nameItems(change.added, change.addedCount, max)})`);
  if (change.removedCount > 0)
    parts.push(`${change.removedCount} removed (${nameItems(change.removed, change.removedCount, max)})`);
  if (parts.length === 0) parts.push('the same items in another order');
  return `items source changed since it was frozen: ${parts.join(', ')}; the frozen list is used until \`checkpoint reset ${step}\``;
}

/** An item source that gave nothing: the step completes with no unit run, which is rarely what was meant. */
export function emptyItemsWarning(step: string, source: string): string {
  return `${step}: the items source (${source}) gave no items, so the step has nothing to do; check the source, or \`checkpoint reset ${step}\` to expand it again`;
}

/**
 * Whether a step's item source still gives the frozen list, for `explain` and `status`: a note naming the
 * items added and removed, `items source cannot be read now: ...`, or undefined when nothing changed.
 * `frozen` undefined (the list file could not be read): the change is told by counts only.
 */
export async function itemsDriftNote(
  plan: Pick<Plan, 'dir'>,
  step: Step,
  frozen: ItemList | undefined,
  info: ItemsInfo,
  env: NodeJS.ProcessEnv,
  runCommand: ItemsCommandRunner,
): Promise<string | undefined> {
  if (step.batch?.space.kind !== 'items' || step.batch.space.source.kind === 'list') return undefined;
  let now: string[];
  try {
    now = await expandItems(step.batch.space.source, plan.dir, scrubEnv({ ...env, ...step.env }), runCommand);
  } catch (err) {
    return `items source cannot be read now: ${err instanceof Error ? err.message : String(err)}`;
  }
  if (itemsHash(now) === info.sha256) return undefined;
  if (frozen === undefined)
    return `items source changed since it was frozen (${info.count} → ${now.length} items); the frozen list is used until \`checkpoint reset ${step.id}\``;
  // Built whole only now that it differs: what was added and removed is told by name.
  const change = itemsChange(frozen.slice(), now);
  return change ? describeItemsChange(step.id, change) : undefined;
}
