// Where the action runs: Linux runners (GitHub-hosted ubuntu-* and self-hosted Linux) are supported and
// tested; macOS runs with the `ps` fallbacks for what Linux reads from /proc; Windows is not supported (units
// run in bash process groups, signalled as groups), so the action stops before it does anything.

/** Why the action cannot run on `platform`, or undefined when it can. */
export function platformProblem(platform: NodeJS.Platform = process.platform): string | undefined {
  if (platform !== 'win32') return undefined;
  return 'checkpoint-action does not run on Windows runners: it needs POSIX process groups and signals. Use a Linux runner (`runs-on: ubuntu-latest`, or a self-hosted Linux runner); macOS runners work too';
}

/** Exit code for a platform the action does not support (as for a usage error). */
export const EXIT_UNSUPPORTED = 2;

/** Stops the step at once on an unsupported platform, with an error annotation naming the runners to use. */
export function refuseUnsupportedPlatform(platform: NodeJS.Platform = process.platform): void {
  const problem = platformProblem(platform);
  if (problem === undefined) return;
  process.stdout.write(`::error::${problem}\n`);
  process.exit(EXIT_UNSUPPORTED);
}
