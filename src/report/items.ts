// The frozen item lists a report names units from, read from a checkpoint; the formatters themselves live
// with the engine (engine/item-names.ts), which names units in its log lines, and are re-exported here.
import type { Checkpoint } from '../journal/checkpoint.js';
import type { ItemList } from '../journal/item-list.js';

export * from '../engine/item-names.js';

/** Frozen item lists by step id, as `loadFrozenItems` reads them. */
export type FrozenItems = ReadonlyMap<string, ItemList>;

/**
 * The frozen item lists of the steps whose units are named (failed, interrupted or running units), read
 * from the checkpoint. A list that cannot be read is left out: its units are shown by index, and the
 * damage is reported by whoever runs the step.
 */
export async function loadFrozenItems(
  ckpt: Pick<Checkpoint, 'state' | 'readItemList'>,
  which: 'named' | 'all' = 'named',
): Promise<Map<string, ItemList>> {
  const out = new Map<string, ItemList>();
  for (const [id, rec] of ckpt.state.steps) {
    if (!rec.items || rec.items.count === 0) continue;
    const named =
      rec.failed.size > 0 ||
      rec.interrupted.count > 0 ||
      rec.running.size > 0 ||
      (rec.gone?.isEmpty ?? true) === false;
    if (which === 'named' && !named) continue;
    try {
      out.set(id, await ckpt.readItemList(id));
    } catch {
      // Shown by index instead.
    }
  }
  return out;
}
