// npm scripts must run on Node 24, the action's runtime (the `node` devDependency puts it first on PATH).
const major = Number(process.versions.node.split('.')[0]);
if (major !== 24) {
  console.error(
    `expected Node 24 inside npm scripts, got ${process.version}; run \`npm ci\` so the node@24 devDependency is installed`,
  );
  process.exit(1);
}
console.log(`npm scripts run on Node ${process.version}`);
