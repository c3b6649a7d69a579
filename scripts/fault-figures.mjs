// Prints one line per fault campaign from test/faults/results/*.json (written by the campaigns).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, '..', 'test', 'faults', 'results');
let files = [];
try {
  files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
} catch {
  // No campaign ran.
}
for (const f of files) {
  const r = JSON.parse(readFileSync(join(dir, f), 'utf8'));
  const parts = r.figures.map((x) => `${x.name} ${x.value}${x.must ? ` (must be ${x.must})` : ''}`);
  console.log(`campaign ${r.campaign}: ${parts.join(', ')}${r.note ? ` — ${r.note}` : ''}`);
}
