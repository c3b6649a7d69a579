// What `checkpoint explain` and `run --dry-run` print: for every step, whether it will run and why.

import type { ChunkInfo } from '../engine/chunking.js';
import type { Preparation } from '../engine/prepare.js';
import { describeSource } from '../engine/prepare.js';
import { describeRetry } from '../engine/retry.js';
import { formatDuration } from '../plan/duration.js';
import type { Plan } from '../plan/types.js';

export function printExplain(
  out: NodeJS.WritableStream,
  plan: Plan,
  prep: Preparation,
  runLabel: string,
): void {
  out.write(`plan ${plan.name} (${plan.steps.length} steps), run ${runLabel}\n`);
  const selected = new Set(prep.selected.map((s) => s.id));
  const width = Math.max(...plan.steps.map((s) => s.id.length));
  for (const step of plan.steps) {
    const i = prep.info.get(step.id);
    if (!i) continue;
    const verb = !selected.has(step.id)
      ? 'skip'
      : i.action === 'skip'
        ? 'skip'
        : i.action === 'partial'
          ? 'resume'
          : 'run';
    const why = !selected.has(step.id) ? 'not selected by --only' : i.why;
    const units = step.batch ? ` [${i.unitsDone}/${i.unitsTotal} units]` : '';
    const needs = step.needs.length ? ` after ${step.needs.join(', ')}` : '';
    out.write(`  ${verb.padEnd(6)} ${step.id.padEnd(width)}${units}${needs}${why ? `: ${why}` : ''}\n`);
    if (i.itemsDrift) out.write(`         ${' '.repeat(width)}note: ${i.itemsDrift}\n`);
    if (i.refresh) out.write(`         ${' '.repeat(width)}note: ${i.refresh}\n`);
    if (i.chunks) out.write(`         ${' '.repeat(width)}note: ${explainChunks(i.chunks)}\n`);
    // A list that refreshes may be empty for now (its items come later).
    if (step.batch?.space.kind === 'items' && !step.batch.space.source.refresh && i.unitsTotal === 0)
      out.write(
        `         ${' '.repeat(width)}warning: the items source (${describeSource(step.batch.space.source)}) gives no items: the step has nothing to do\n`,
      );
    const retry = describeRetry(step.retry);
    if (retry && verb !== 'skip') out.write(`         ${' '.repeat(width)}note: ${retry}\n`);
  }
}

/** How the step's chunks will be sized, e.g. `chunks sized by time: target 200ms (min 10, max 1000); next chunk 190 from the rate of 12 done chunks (950/s)`. */
function explainChunks(ch: ChunkInfo): string {
  const bounds = `min ${ch.min}${ch.max !== null ? `, max ${ch.max}` : ''}`;
  const target = ch.targetMs !== null ? formatDuration(ch.targetMs) : '?';
  const next =
    ch.measured > 0
      ? `next chunk ${ch.nextSize} from the rate of ${ch.measured} done chunk(s) (${ch.ratePerSecond}/s)`
      : `first chunk ${ch.min}, then sized from the measured rate`;
  return `chunks sized by time: target ${target} (${bounds}); ${next}; a time budget cuts chunks to fit`;
}
