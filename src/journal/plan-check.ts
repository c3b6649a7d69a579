// Where the plan meets the checkpoint: a step's record must describe the space the plan defines. The plan is
// the authority; the checkpoint only says which parts of that space are done. A record whose fingerprint
// matches the plan's but whose space differs was not written by this program (the fingerprint covers the
// space and the chunk size), so it is damage. A changed fingerprint is not damage: the step is initialised
// again or redefined from the plan (`on-change`), and its work is cut to the new space (state.ts).
import type { Fingerprint } from '../plan/fingerprint.js';
import { fingerprintStep } from '../plan/fingerprint.js';
import { displayFile } from '../plan/load.js';
import type { Plan, Step } from '../plan/types.js';
import { Checkpoint, recordOrigin } from './checkpoint.js';
import { CheckpointDamageError } from './damage.js';
import type { StepRecord } from './state.js';

/** The whole space of `step` as the plan defines it; for items, the length of the frozen list. */
function planSpace(step: Step, rec: StepRecord): { from: number; to: number; size: number } | string {
  const b = step.batch;
  if (!b) return { from: 0, to: 1, size: 1 };
  if (b.space.kind === 'range') return { from: b.space.from, to: b.space.to, size: b.size };
  if (!rec.items) return 'it is an items step, but its record has no frozen item list';
  return { from: 0, to: rec.items.count, size: b.size };
}

/**
 * Throws CheckpointDamageError when the record of `step` does not describe the plan's space although its
 * fingerprint says nothing changed. `fp` is the step's fingerprint now (prepare computes it anyway).
 */
export function checkAgainstPlan(plan: Plan, step: Step, rec: StepRecord, fp: Fingerprint): void {
  if (rec.fingerprint.hash !== fp.hash) return;
  const origin = recordOrigin(rec);
  const fail = (detail: string): never => {
    throw new CheckpointDamageError(
      origin?.file ?? 'checkpoint',
      origin?.line,
      `step "${step.id}": ${detail}`,
    );
  };
  const space = planSpace(step, rec);
  if (typeof space === 'string') {
    fail(space);
    return;
  }
  const whole = rec.sharding ?? { from: rec.from, to: rec.to };
  // Chunks sized by time: `size` is `min`, outside the fingerprint; prepare records a changed one.
  const sizeOk = step.batch?.adaptive !== undefined || rec.size === space.size;
  if (whole.from !== space.from || whole.to !== space.to || !sizeOk) {
    fail(
      `its record says the space [${whole.from}, ${whole.to}) in chunks of ${rec.size}, but ` +
        `${displayFile(plan.file)} defines [${space.from}, ${space.to}) in chunks of ${space.size} ` +
        'and the step is unchanged (same fingerprint)',
    );
  }
  if (!rec.sharding && (rec.from !== whole.from || rec.to !== whole.to)) fail('inconsistent space');
}

/**
 * Reads run `runId` under `root` and checks every record against `plan`: the journal line by line and the
 * snapshot (Checkpoint.read), each step's space against the plan, and the frozen item lists against their
 * records. Throws CheckpointDamageError (or another CheckpointCorruptError) naming the file; returns the
 * checkpoint read. For callers that must vet a checkpoint before anything runs (a restored bundle).
 */
export async function validateCheckpoint(root: string, runId: string, plan: Plan): Promise<Checkpoint> {
  const ckpt = await Checkpoint.read(root, runId);
  for (const step of plan.steps) {
    const rec = ckpt.state.steps.get(step.id);
    if (!rec) continue;
    checkAgainstPlan(plan, step, rec, await fingerprintStep(plan, step));
    if (step.batch?.space.kind === 'items' && rec.items && rec.to > rec.from)
      await ckpt.readItemList(step.id);
  }
  return ckpt;
}
