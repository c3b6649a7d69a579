// Expansion of a batch step's `items` source into the list of items. The engine does this once per step
// and freezes the result into the checkpoint (DESIGN §2), so this runs rarely and may be slow.

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { ItemsError } from './errors.js';
import type { ItemsSource } from './types.js';

export { ItemsError } from './errors.js';

/** Runs an `items: { command }` source (the engine's, through the one spawner): its stdout lines. */
export type ItemsCommandRunner = (command: string, cwd: string, env: NodeJS.ProcessEnv) => Promise<string[]>;

function splitLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '');
}

/**
 * The items of a source, in a stable order: a list as written (numbers stringified); a file's non-empty
 * lines; a glob's matching files relative to `planDir`, sorted; a command's non-empty stdout lines (run
 * with `bash -eo pipefail -c` in `planDir` with `env`). Throws ItemsError for a missing file or a failing
 * command.
 */
export async function expandItems(
  source: ItemsSource,
  planDir: string,
  env: NodeJS.ProcessEnv,
  runCommand: ItemsCommandRunner,
): Promise<string[]> {
  switch (source.kind) {
    case 'list':
      return source.items.map(String);
    case 'file':
      return textItems(
        splitLines(await readItemsFile(source.file, planDir)),
        `items file ${JSON.stringify(source.file)}`,
      );
    case 'glob': {
      const files = await glob(source.glob, { cwd: planDir, onlyFiles: true });
      // Code-point order, not locale order: the list must be identical on every machine.
      return textItems(
        files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
        `items glob ${JSON.stringify(source.glob)}`,
      );
    }
    case 'command':
      return textItems(
        await runCommand(source.command, planDir, env),
        `items command "${shortCommand(source.command)}"`,
      );
  }
}

/**
 * Items reach a unit as an environment variable (CHECKPOINT_ITEM) and as one line of CHECKPOINT_ITEMS_FILE,
 * so they must be text without NUL bytes (which no environment can hold: the launcher would cut the item
 * short, a direct spawn would fail) and without line breaks (a file name from a glob may have one).
 */
function textItems(items: string[], what: string): string[] {
  for (const [i, item] of items.entries()) {
    const bad = item.includes('\0') ? 'a NUL byte' : /[\r\n]/.test(item) ? 'a line break' : undefined;
    if (bad)
      throw new ItemsError(
        `${what} gave an item with ${bad} (item ${i + 1}: ${JSON.stringify(item.length > 40 ? `${item.slice(0, 39)}…` : item)}); items must be text, one per line`,
      );
  }
  return items;
}

async function readItemsFile(file: string, planDir: string): Promise<string> {
  try {
    return await readFile(path.resolve(planDir, file), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') {
      throw new ItemsError(`items file ${JSON.stringify(file)} not found (relative to ${planDir})`);
    }
    throw new ItemsError(`items file ${JSON.stringify(file)} cannot be read (${code ?? String(err)})`, {
      cause: err,
    });
  }
}

/** A command as one short line, for messages. */
export function shortCommand(command: string): string {
  const oneLine = command.trim().replace(/\s*\n\s*/g, '; ');
  return oneLine.length > 80 ? `${oneLine.slice(0, 79)}…` : oneLine;
}
