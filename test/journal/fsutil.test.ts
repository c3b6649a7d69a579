import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as zlib from 'node:zlib';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { crc32 } from '../../src/journal/crc32.js';
import {
  CheckpointLinkError,
  ensureDir,
  ensureDirUnder,
  openNoFollow,
  openNoFollowSync,
  readFileIfExists,
  readFileNoFollow,
  refuseLink,
  writeFileAtomic,
} from '../../src/journal/fsutil.js';
import { makeTempDir, removeDir } from './support.js';

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32('123456789')).toBe('cbf43926');
    expect(crc32('')).toBe('00000000');
    expect(crc32('The quick brown fox jumps over the lazy dog')).toBe('414fa339');
  });

  it('hashes UTF-8 bytes, like zlib where it has crc32', () => {
    expect(crc32('é')).toBe(crc32(Buffer.from([0xc3, 0xa9])));
    const native = (zlib as { crc32?: (data: string) => number }).crc32;
    if (native === undefined) return; // Node < 20.15: nothing to compare against
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), (text) => {
        expect(crc32(text)).toBe(native(text).toString(16).padStart(8, '0'));
      }),
    );
  });
});

describe('fsutil', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('fsutil');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('ensureDir creates 0700 folders and leaves existing ones alone', async () => {
    const existing = join(dir, 'existing');
    await mkdir(existing, { mode: 0o755 });
    const target = join(existing, 'a', 'b', 'c');
    const oldUmask = process.umask(0o022);
    try {
      await ensureDir(target);
      await ensureDir(target); // idempotent
    } finally {
      process.umask(oldUmask);
    }
    for (const path of [join(existing, 'a'), join(existing, 'a', 'b'), target]) {
      expect((await stat(path)).mode & 0o777).toBe(0o700);
    }
    expect((await stat(existing)).mode & 0o777).toBe(0o755);
  });

  it('writeFileAtomic replaces the file with mode 0600 and leaves no temp file', async () => {
    const path = join(dir, 'checkpoint.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, '{"new":true}\n');
    expect(await readFile(path, 'utf8')).toBe('{"new":true}\n');
    await writeFileAtomic(join(dir, 'fresh'), Buffer.from('bytes'));
    expect((await stat(join(dir, 'fresh'))).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).sort()).toEqual(['checkpoint.json', 'fresh']);
  });

  it('writeFileAtomic removes its temp file when the rename fails', async () => {
    const path = join(dir, 'target');
    await mkdir(path); // renaming a file over a directory fails
    await expect(writeFileAtomic(path, 'x')).rejects.toThrow(/EISDIR|ENOTDIR|EEXIST|EPERM/);
    expect(await readdir(dir)).toEqual(['target']);
  });

  it('readFileIfExists', async () => {
    expect(await readFileIfExists(join(dir, 'missing'))).toBeUndefined();
    await writeFile(join(dir, 'here'), 'héllo');
    expect(await readFileIfExists(join(dir, 'here'))).toBe('héllo');
  });
});

describe('no links inside a run folder', () => {
  it('ensureDirUnder creates real folders and refuses a link at any level', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-links-'));
    try {
      const outside = join(dir, 'outside');
      await mkdir(outside);
      const run = join(dir, 'run');
      await mkdir(run);
      expect(await ensureDirUnder(run, 'state/a')).toBe(join(run, 'state', 'a'));
      expect((await lstat(join(run, 'state', 'a'))).isDirectory()).toBe(true);
      await symlink(outside, join(run, 'logs'));
      await expect(ensureDirUnder(run, 'logs/a')).rejects.toBeInstanceOf(CheckpointLinkError);
      await symlink(outside, join(run, 'state', 'b'));
      await expect(ensureDirUnder(run, 'state/b')).rejects.toThrow(/state\/b is a symbolic link/);
      await expect(ensureDirUnder(run, '../x')).rejects.toBeInstanceOf(RangeError);
      expect(await readdir(outside)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('openNoFollow, openNoFollowSync and readFileNoFollow refuse a link at the name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-links-'));
    try {
      const target = join(dir, 'target');
      await writeFile(target, 'outside\n');
      const link = join(dir, 'outputs.json');
      await symlink(target, link);
      await expect(openNoFollow(link, 'w')).rejects.toBeInstanceOf(CheckpointLinkError);
      expect(() => openNoFollowSync(link, 'w')).toThrow(CheckpointLinkError);
      await expect(readFileNoFollow(link)).rejects.toBeInstanceOf(CheckpointLinkError);
      await expect(refuseLink(link)).rejects.toThrow(/outputs\.json is a symbolic link/);
      expect(await readFile(target, 'utf8')).toBe('outside\n');
      expect(await readFileNoFollow(join(dir, 'missing'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
