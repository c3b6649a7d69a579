// Expansion of a batch step's `items` source into the list of items. The engine does this once per step
// and freezes the result into the checkpoint (DESIGN §2), so this runs rarely and may be slow.

import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { glob } from 'tinyglobby';
import { ItemsError } from './errors.js';
import type { ItemsSource } from './types.js';

export { ItemsError } from './errors.js';

const STDERR_TAIL_LINES = 5;
const STDERR_TAIL_CHARS = 500;

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
        splitLines(await runItemsCommand(source.command, planDir, env)),
        `items command "${shorten(source.command)}"`,
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

function shorten(command: string): string {
  const oneLine = command.trim().replace(/\s*\n\s*/g, '; ');
  return oneLine.length > 80 ? `${oneLine.slice(0, 79)}…` : oneLine;
}

function tail(text: string): string {
  const lines = text.trimEnd().split('\n').slice(-STDERR_TAIL_LINES).join('\n');
  return lines.length > STDERR_TAIL_CHARS ? `…${lines.slice(-STDERR_TAIL_CHARS)}` : lines;
}

function runItemsCommand(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-eo', 'pipefail', '-c', command], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      // Only the tail is ever shown; keep memory bounded for chatty commands.
      stderr = (stderr + chunk.toString('utf8')).slice(-8 * STDERR_TAIL_CHARS);
    });
    child.on('error', (err) => {
      reject(
        new ItemsError(`items command "${shorten(command)}" could not start: ${err.message}`, { cause: err }),
      );
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolve(Buffer.concat(stdout).toString('utf8'));
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const errTail = tail(stderr);
      reject(new ItemsError(`items command "${shorten(command)}" ${how}${errTail ? `: ${errTail}` : ''}`));
    });
  });
}
