// Fails when the committed dist/ differs from a fresh build of src/.
import { execFileSync } from 'node:child_process';

execFileSync('node', ['scripts/build.mjs'], { stdio: 'inherit' });
const diff = execFileSync('git', ['status', '--porcelain', '--', 'dist'], { encoding: 'utf8' });
if (diff.trim() !== '') {
  console.error(`dist/ is not a fresh build of src/; run \`npm run build\` and commit dist/:\n${diff}`);
  process.exit(1);
}
console.log('dist/ equals a fresh build');
