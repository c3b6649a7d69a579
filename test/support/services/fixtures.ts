// Directory trees with known bytes, and byte-exact snapshots of them, for round-trip assertions.
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';

/**
 * Writes a small tree under `dir`: text, binary bytes derived from `seed` (so different seeds give
 * different content without randomness), a nested directory and an empty file.
 */
export async function writeTree(dir: string, seed: string): Promise<void> {
  await mkdir(join(dir, 'nested/deeper'), { recursive: true });
  await writeFile(join(dir, 'journal.jsonl'), `{"seed":${JSON.stringify(seed)}}\n`);
  const bytes = Buffer.alloc(64 * 1024);
  let block = createHash('sha256').update(seed).digest();
  for (let off = 0; off < bytes.length; off += block.length) {
    block.copy(bytes, off);
    block = createHash('sha256').update(block).digest();
  }
  await writeFile(join(dir, 'nested/blob.bin'), bytes);
  await writeFile(join(dir, 'nested/deeper/empty'), '');
}

/** Relative path -> bytes (base64, so toEqual diffs stay readable) for every file under `dir`. */
export async function snapshotTree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const abs = join(entry.parentPath, entry.name);
    out[relative(dir, abs)] = (await readFile(abs)).toString('base64');
  }
  return out;
}
