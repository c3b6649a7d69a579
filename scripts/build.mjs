// Bundles each entry point with @vercel/ncc into dist/<entry>/index.js. dist/ is committed; CI rebuilds and
// compares (scripts/check-dist.mjs).
import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, rmSync, writeFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const entries = [
  ['cli', 'src/cli/index.ts'],
  ['main', 'src/action/main.ts'],
  ['post', 'src/action/post.ts'],
];

for (const [name, entry] of entries) {
  const out = `dist/${name}`;
  rmSync(out, { recursive: true, force: true });
  execFileSync(
    'npx',
    ['ncc', 'build', entry, '-o', out, '--target', 'es2022', '--quiet', '--no-source-map-register'],
    {
      stdio: 'inherit',
    },
  );
  const file = `${out}/index.js`;
  let code = readFileSync(file, 'utf8');
  code = code.replaceAll('__CHECKPOINT_VERSION__', pkg.version);
  writeFileSync(file, code);
  if (name === 'cli') chmodSync(file, 0o755);
}

// The plan's JSON Schema for editors (checkpoint.schema.json), made from src/plan/schema.ts.
execFileSync(process.execPath, ['scripts/gen-schema.mjs'], { stdio: 'inherit' });
