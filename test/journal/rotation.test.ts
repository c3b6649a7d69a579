// The journal rotates during an attempt (src/journal/checkpoint.ts #rotate): it stays small however many
// units are recorded, what is recorded while it rotates is neither lost nor reordered, and a SIGKILL at
// any moment leaves a checkpoint that reads without damage and holds every unit whose end was durable.
import { spawn } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readJournal } from '../../src/journal/journal-file.js';
import { serializeSnapshot } from '../../src/journal/snapshot.js';
import type { Fingerprint } from '../../src/plan/fingerprint.js';
import { makeTempDir, removeDir } from './support.js';

const fp: Fingerprint = {
  hash: 'f',
  parts: { run: 'f', shell: '', env: '', workingDirectory: '', batch: '', inputs: {} },
};
const COMPACT = 4096;
const register = fileURLToPath(new URL('../support/register.mjs', import.meta.url));
const child = fileURLToPath(new URL('./fixtures/rotating-writer.ts', import.meta.url));

let root: string;
beforeEach(async () => {
  root = await makeTempDir('rotation');
});
afterEach(async () => {
  await removeDir(root);
});

describe('journal rotation during an attempt', () => {
  it('keeps the journal under its threshold and the state whole, with records interleaved', async () => {
    const ckpt = Checkpoint.blank(root, 'r1', 'p');
    await ckpt.openForWrite({ compactBytes: COMPACT });
    const journal = join(root, 'r1', 'journal.ndjson');
    ckpt.recordLater({ type: 'attempt', attempt: 1, plan: 'p', pid: 1, host: 'h', resumed: false });
    ckpt.recordLater({
      type: 'step-init',
      step: 'w',
      fingerprint: fp,
      from: 0,
      to: 600,
      size: 1,
      reason: 'new',
    });
    let largest = 0;
    const written: number[] = [];
    // Four lanes: each unit's start and spawned are recorded later, its done awaited, as the scheduler does.
    const next = { i: 0 };
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = next.i++; i < 600; i = next.i++) {
          const u = { step: 'w', start: i, end: i + 1, index: i };
          ckpt.recordLater({ type: 'start', ...u, try: 1, attempt: 1 });
          ckpt.recordLater({ type: 'spawned', ...u, pid: 7, host: 'h', marker: `m.${i}` });
          await ckpt.record({ type: 'done', ...u, ms: 1 }, () => written.push(i));
          largest = Math.max(largest, (await stat(journal)).size);
        }
      }),
    );
    await ckpt.flush();
    expect(written.sort((a, b) => a - b)).toEqual(Array.from({ length: 600 }, (_, i) => i));
    // A rotation starts past the threshold; lines recorded meanwhile (at most a few per lane) come on top.
    expect(largest).toBeLessThan(2 * COMPACT);
    const expected = serializeSnapshot(ckpt.state);
    await ckpt.close();
    const back = await Checkpoint.read(root, 'r1');
    expect(serializeSnapshot(back.state)).toBe(expected);
    expect(back.state.steps.get('w')?.done.toJSON()).toEqual([[0, 600]]);
    expect(back.state.steps.get('w')?.running.size).toBe(0);
    // The journal was cut: it no longer starts at the run's first event.
    expect((await readJournal(journal)).events[0]?.seq).not.toBe(1);
  });

  it('a SIGKILL at any moment: the checkpoint reads without damage and keeps every durable end', async () => {
    for (let round = 0; round < 12; round += 1) {
      const dir = join(root, `k${round}`);
      const durable = new Set<number>();
      const proc = spawn(
        process.execPath,
        ['--no-warnings', '--import', register, child, dir, '3000', String(COMPACT)],
        {
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stderr = '';
      proc.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const killAfter = 40 + round * 97;
      const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      for await (const line of createInterface({ input: proc.stdout })) {
        const m = /^durable (\d+)$/.exec(line);
        if (m) durable.add(Number(m[1]));
        if (durable.size >= killAfter) proc.kill('SIGKILL');
      }
      await exited;
      expect(stderr).toBe('');
      const back = await Checkpoint.read(dir, 'r1');
      const done = back.state.steps.get('w')?.done;
      for (const i of durable) expect(done?.has(i), `unit ${i} was durable`).toBe(true);
      // Units recorded running by the killed writer are what the next attempt's orphan pass sees.
      expect(back.state.steps.get('w')?.running.size).toBeLessThanOrEqual(2);
      expect(durable.size, 'killed before the end').toBeLessThan(3000);
      // The next attempt resumes from it and finishes, through rotations of its own.
      const again = spawn(
        process.execPath,
        ['--no-warnings', '--import', register, child, dir, '3000', String(COMPACT)],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      let out = '';
      again.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      await new Promise<void>((resolve) => again.once('close', () => resolve()));
      expect(out.endsWith('end\n')).toBe(true);
      const final = await Checkpoint.read(dir, 'r1');
      expect(final.state.steps.get('w')?.done.toJSON()).toEqual([[0, 3000]]);
      expect((await readJournal(join(dir, 'r1', 'journal.ndjson'))).events[0]?.seq).not.toBe(1);
    }
  }, 120_000);
});
