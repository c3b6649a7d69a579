// Writes checkpoint.schema.json (the plan's JSON Schema, for editors) from the zod schema in src/plan/schema.ts.
// Run by `npm run schema` and at the end of `npm run build`; test/plan/json-schema.test.ts fails when the
// committed file differs from what this writes.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

if (!process.features.typescript) {
  console.error(
    `scripts/gen-schema.mjs: Node ${process.version} cannot load the TypeScript sources in src/; run \`npm run schema\`, which uses the repo's Node 24 (the node devDependency), or Node 22.18 or later`,
  );
  process.exit(1);
}

// Source files import each other as `./x.js`; this resolves them to their `.ts` twins.
await import('../test/support/register.mjs');
const { SCHEMA_FILE, planJsonSchemaText } = await import('../src/plan/json-schema.ts');

const file = fileURLToPath(new URL(`../${SCHEMA_FILE}`, import.meta.url));
writeFileSync(file, planJsonSchemaText());
// In the repo's own format (short lists on one line), so that `npm run lint` passes; the test compares content.
const biome = fileURLToPath(new URL('../node_modules/@biomejs/biome/bin/biome', import.meta.url));
execFileSync(process.execPath, [biome, 'format', '--write', file], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
console.log(`wrote ${SCHEMA_FILE}`);
