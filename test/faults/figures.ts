// Campaign figures: each campaign records its numbers here; `npm run test:faults` prints one line per
// campaign (scripts/fault-figures.mjs) and docs/reliability.md quotes them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../support/cli.js';

export const FIGURES_DIR = join(repoRoot, 'test', 'faults', 'results');

export interface Figure {
  /** What was counted, e.g. "units recorded done and run again". */
  name: string;
  value: number;
  /** The bound the value must respect, as text ("= 0", "<= 2"), shown beside it. */
  must?: string;
}

/** Writes `<campaign>.json`; the line printed is `campaign: name value (must), …`. */
export function recordFigures(campaign: string, figures: Figure[], note?: string): void {
  mkdirSync(FIGURES_DIR, { recursive: true });
  writeFileSync(
    join(FIGURES_DIR, `${campaign}.json`),
    `${JSON.stringify({ campaign, at: new Date().toISOString(), figures, ...(note ? { note } : {}) }, null, 2)}\n`,
  );
}
