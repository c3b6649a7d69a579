import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runItemsCommand } from '../../src/engine/items-command.js';
import { ItemsError } from '../../src/plan/errors.js';
import { expandItems, type ItemsCommandRunner } from '../../src/plan/items.js';

const runItems: ItemsCommandRunner = (command, cwd, env) => runItemsCommand(command, { cwd, env });

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'plan-items-'));
  await writeFile(path.join(dir, 'ids.txt'), 'a\r\nb\n\n  \nc d\r\n');
  await mkdir(path.join(dir, 'data', 'sub'), { recursive: true });
  for (const f of ['b.csv', 'a.csv', 'B.csv', 'notes.txt', 'sub/c.csv']) {
    await writeFile(path.join(dir, 'data', f), f);
  }
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('expandItems', () => {
  it('returns a list as it is', async () => {
    expect(await expandItems({ kind: 'list', items: ['x', '2', 'y'] }, dir, {}, runItems)).toEqual([
      'x',
      '2',
      'y',
    ]);
    expect(await expandItems({ kind: 'list', items: [] }, dir, {}, runItems)).toEqual([]);
  });

  it('reads a file relative to the plan directory, one item per non-empty line', async () => {
    expect(await expandItems({ kind: 'file', file: 'ids.txt' }, dir, {}, runItems)).toEqual([
      'a',
      'b',
      'c d',
    ]);
  });

  it('names a missing file and the directory it was looked for in', async () => {
    const err = await expandItems({ kind: 'file', file: 'missing.txt' }, dir, {}, runItems).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ItemsError);
    expect((err as ItemsError).name).toBe('ItemsError');
    expect((err as ItemsError).message).toBe(`items file "missing.txt" not found (relative to ${dir})`);
  });

  it('lists glob matches relative to the plan directory, sorted', async () => {
    expect(await expandItems({ kind: 'glob', glob: 'data/*.csv' }, dir, {}, runItems)).toEqual([
      'data/B.csv',
      'data/a.csv',
      'data/b.csv',
    ]);
    expect(await expandItems({ kind: 'glob', glob: 'data/**/*.csv' }, dir, {}, runItems)).toEqual([
      'data/B.csv',
      'data/a.csv',
      'data/b.csv',
      'data/sub/c.csv',
    ]);
    expect(await expandItems({ kind: 'glob', glob: 'nothing/*' }, dir, {}, runItems)).toEqual([]);
  });

  it('runs a command in the plan directory with the given env, one item per stdout line', async () => {
    const items = await expandItems(
      {
        kind: 'command',
        command:
          'printf "%s\\n" "$PREFIX-1" ""; printf "%s-2\\r\\n" "$PREFIX"; ls data | head -1; echo noise >&2',
      },
      dir,
      { PATH: process.env.PATH, PREFIX: 'shard' },
      runItems,
    );
    expect(items).toEqual(['shard-1', 'shard-2', 'B.csv']);
  });

  it('reports a failing command with its exit code and the tail of stderr', async () => {
    const err = await expandItems(
      { kind: 'command', command: 'echo 1; for i in 1 2 3 4 5 6 7; do echo "line $i" >&2; done; exit 3' },
      dir,
      { PATH: process.env.PATH },
      runItems,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ItemsError);
    expect((err as Error).message).toBe(
      'items command "echo 1; for i in 1 2 3 4 5 6 7; do echo "line $i" >&2; done; exit 3" exited with code 3: line 3\nline 4\nline 5\nline 6\nline 7',
    );
  });

  it('fails on the first failing command of a pipeline', async () => {
    const err = await expandItems(
      { kind: 'command', command: 'false | cat' },
      dir,
      {
        PATH: process.env.PATH,
      },
      runItems,
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('items command "false | cat" exited with code 1');
  });
});
