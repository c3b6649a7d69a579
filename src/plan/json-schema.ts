// The plan's JSON Schema, checkpoint.schema.json at the repository root, made from the zod schema in
// schema.ts so that editors (the YAML language server behind VS Code's YAML extension) can check and complete
// checkpoint.yml. `npm run schema` writes it (scripts/gen-schema.mjs); test/plan/json-schema.test.ts fails when
// the committed file is stale.
//
// It describes what users write (zod's io: 'input'), in draft-07, which every editor understands. The loader
// stays the authority: some rules cannot be said in JSON Schema (needs naming steps that exist, unique ids,
// cycles, to >= from), and those are only reported by `checkpoint explain` and `checkpoint run`.

import { z } from 'zod';
import { planSchema } from './schema.js';

/** The file's name, at the repository root. */
export const SCHEMA_FILE = 'checkpoint.schema.json';

const TITLE = 'checkpoint.yml';
const DESCRIPTION =
  'A checkpoint-action plan: steps that `checkpoint run` (or the org/checkpoint-action GitHub Action) runs and resumes, re-running only what is incomplete. Reference: docs/plan.md.';

/** The JSON Schema of checkpoint.yml, as an object. */
export function planJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(planSchema, {
    target: 'draft-07',
    io: 'input',
    // zod leaves out `examples` and `default` of a schema with a transform when describing its input, since
    // they would describe the output; ours (set with .meta() in schema.ts) are written as users write them.
    override: ({ zodSchema, jsonSchema }) => {
      const meta = z.globalRegistry.get(zodSchema);
      if (meta?.examples !== undefined) jsonSchema.examples = meta.examples as unknown[];
      if (meta?.default !== undefined) jsonSchema.default = meta.default;
    },
  });
  const { $schema, ...rest } = generated;
  return { $schema, title: TITLE, description: DESCRIPTION, ...rest };
}

/** The file's text: the schema as JSON, two spaces of indentation, a final newline. */
export function planJsonSchemaText(): string {
  return `${JSON.stringify(planJsonSchema(), null, 2)}\n`;
}
