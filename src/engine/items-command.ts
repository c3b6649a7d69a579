// An `items: { command }` source, run by the one spawner (src/exec): in its own process group, with the
// marker, the step's timeout, ended by a signal during set-up (stopAll), its output read line by line (a
// list of millions of items is never one string). Its failure names the command, how it ended and the end
// of what it printed.
import { ManagedProcess } from '../exec/process.js';
import { formatDuration } from '../plan/duration.js';
import { ItemsError } from '../plan/errors.js';
import { shortCommand } from '../plan/items.js';

/** An item line longer than this is refused (an item travels in an environment variable). */
const MAX_ITEM_CHARS = 64 * 1024;

export interface ItemsCommandOptions {
  cwd: string;
  env: NodeJS.ProcessEnv;
  timeoutMs?: number | undefined;
}

/** The command's non-empty stdout lines (`bash -eo pipefail -c`). */
export async function runItemsCommand(command: string, opts: ItemsCommandOptions): Promise<string[]> {
  const lines: string[] = [];
  let tooLong: number | undefined;
  const proc = new ManagedProcess({
    argv: ['bash', '-eo', 'pipefail', '-c', command],
    cwd: opts.cwd,
    env: opts.env,
    maxLine: MAX_ITEM_CHARS,
    tailBytes: 2048,
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs, timeoutGraceMs: 3000 } : {}),
    onLine: (line, stream, cut) => {
      if (stream !== 'stdout') return;
      if (cut) tooLong ??= lines.length + 1;
      const l = line.endsWith('\r') ? line.slice(0, -1) : line;
      if (l.trim() !== '') lines.push(l);
    },
  });
  const exit = await proc.exited;
  const what = `items command "${shortCommand(command)}"`;
  if (exit.spawnError) throw new ItemsError(`${what} could not start: ${exit.spawnError}`);
  if (exit.endedBy === 'stop') throw new ItemsError(`${what} was stopped`);
  if (exit.code !== 0 || exit.endedBy === 'timeout') {
    const how =
      exit.endedBy === 'timeout'
        ? `timed out after ${formatDuration(opts.timeoutMs ?? 0)} (the step's timeout)`
        : exit.signal
          ? `was killed by ${exit.signal}`
          : `exited with code ${exit.code}`;
    const said = lastLines(proc.tail());
    throw new ItemsError(`${what} ${how}${said ? `: ${said}` : ''}`);
  }
  if (tooLong !== undefined)
    throw new ItemsError(
      `${what} printed a line longer than ${MAX_ITEM_CHARS} characters (item ${tooLong}); items must be short text, one per line`,
    );
  return lines;
}

function lastLines(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-5).join('\n');
  return lines.length > 500 ? `…${lines.slice(-500)}` : lines;
}
