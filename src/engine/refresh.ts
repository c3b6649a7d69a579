// `refresh: true` on an item source (DESIGN §2): each attempt expands the source again and this decides, with
// no files or processes of its own, what becomes of the frozen list. Pure, so that its promise (every item
// that was in the source at some attempt runs exactly once, unless it left before it ran) is tested alone
// (test/engine/refresh.test.ts, with the work queue that hands the units out).
//
// - The frozen list only grows: items of the source not yet in it are appended, in the source's order, once
//   each (a name the source gives twice is one item). The indices of frozen items never change, so every
//   recorded range (done, failed, interrupted, a unit's log) keeps its meaning, and nothing is re-chunked.
// - Items are told apart by name: a frozen item that is in the source now is present, whatever its place.
// - A frozen item that is not done and not in the source now is gone: no unit gets it. Gone is recomputed in
//   full at every refresh, so an item that comes back to the source before it ran is pending again.
// - A done item is never gone and never runs again, in the source or not.
import type { IntervalSet } from '../journal/intervals.js';
import type { ItemList } from '../journal/item-list.js';

export interface Refreshed {
  /** The frozen list after the refresh: the old one, then `added`. */
  list: string[];
  /** Items appended, in the source's order. */
  added: string[];
  /** Index ranges of the items that are gone (not done, not in the source now), in order. */
  gone: Array<[number, number]>;
  /** How many items are gone. */
  goneCount: number;
}

export function refreshItems(
  frozen: readonly string[],
  now: readonly string[],
  done: Pick<IntervalSet, 'gaps'>,
): Refreshed {
  const known = new Set(frozen);
  const added: string[] = [];
  for (const item of now) {
    if (known.has(item)) continue;
    known.add(item);
    added.push(item);
  }
  const present = new Set(now);
  const gone: Array<[number, number]> = [];
  let goneCount = 0;
  // Only the items not done can be gone: the gaps of `done` are few next to the items when much is done.
  for (const [s, e] of done.gaps(0, frozen.length)) {
    for (let i = s; i < e; i++) {
      if (present.has(frozen[i] as string)) continue;
      goneCount += 1;
      const last = gone[gone.length - 1];
      if (last && last[1] === i) last[1] = i + 1;
      else gone.push([i, i + 1]);
    }
  }
  return { list: added.length > 0 ? [...frozen, ...added] : [...frozen], added, gone, goneCount };
}

/** Whether two lists of ranges are the same. */
export function sameRanges(
  a: ReadonlyArray<readonly [number, number]>,
  b: ReadonlyArray<readonly [number, number]>,
): boolean {
  return a.length === b.length && a.every(([s, e], i) => b[i]?.[0] === s && b[i]?.[1] === e);
}

/** The items of `ranges` of `list`, the first `max` of them. */
export function itemsOfRanges(
  list: ItemList,
  ranges: Iterable<readonly [number, number]>,
  max: number,
): string[] {
  const out: string[] = [];
  for (const [s, e] of ranges) {
    out.push(...list.slice(s, Math.min(e, s + max - out.length)));
    if (out.length >= max) break;
  }
  return out;
}
