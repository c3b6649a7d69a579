// Error annotations for failed units, from checkpoints made by the real engine and the real Checkpoint API.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/run.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readLatest } from '../../src/journal/runs.js';
import { loadPlan } from '../../src/plan/load.js';
import { annotationsFor } from '../../src/report/annotations.js';
import { runStats } from '../../src/report/stats.js';
import { readLogTails, renderSummary } from '../../src/report/summary.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ckpt-annotations-'));
  dirs.push(d);
  return d;
}

/** Writes the plan, runs it once with the real engine, and loads what it left. */
async function runPlan(yaml: string) {
  const dir = await tempDir();
  const file = join(dir, 'checkpoint.yml');
  await writeFile(file, yaml);
  const sink = new PassThrough();
  sink.resume();
  const code = await runCommand({ file }, { out: sink, err: sink, env: { ...process.env, CI: 'true' } });
  const plan = await loadPlan(file);
  const root = join(dir, '.checkpoints');
  const ckpt = await Checkpoint.read(root, (await readLatest(root)) ?? '');
  const stats = runStats(ckpt, plan);
  return { code, ckpt, stats, logs: await readLogTails(ckpt, stats) };
}

const fp = {
  hash: 'h',
  parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
};

/** A checkpoint whose step `load` (range, size 10) has the given units failed with the given reasons. */
async function withFailures(failures: Array<{ index: number; exit: number }>, units = 100) {
  const root = join(await tempDir(), '.checkpoints');
  const ckpt = Checkpoint.blank(root, 'r1', 'p');
  await ckpt.openForWrite();
  ckpt.recordLater({ type: 'attempt', attempt: 1, plan: 'p', pid: 1, host: 'h', resumed: false });
  ckpt.recordLater({
    type: 'step-init',
    step: 'load',
    fingerprint: fp,
    from: 0,
    to: units * 10,
    size: 10,
    reason: 'new',
  });
  for (const f of failures) {
    const u = { step: 'load', start: f.index * 10, end: f.index * 10 + 10, index: f.index };
    ckpt.recordLater({ type: 'start', ...u, try: 1, attempt: 1 });
    ckpt.recordLater({
      type: 'fail',
      ...u,
      try: 1,
      ms: 1,
      exit: f.exit,
      signal: null,
      final: true,
      reason: `exit code ${f.exit}`,
    });
  }
  await ckpt.close();
  const read = await Checkpoint.read(root, 'r1');
  return { ckpt: read, stats: runStats(read, undefined) };
}

describe('annotationsFor', () => {
  it('a failed batch unit: title with step and range, message with exit code, tries and log tail', async () => {
    const { code, stats, logs } = await runPlan(`version: 1
shell: bash
steps:
  - id: import
    run: |
      if [ "$CHECKPOINT_BATCH_START" = 40000 ]; then
        for i in $(seq 1 50); do echo "row $i"; done
        echo "ERROR: duplicate key" >&2
        exit 3
      fi
    retry: { attempts: 2, delay: 0s }
    batch: { range: { from: 0, to: 60000 }, size: 10000, parallel: 3, max-failures: 3 }
`);
    expect(code).toBe(1);
    const notes = annotationsFor(stats, logs);
    expect(notes).toHaveLength(1);
    const [a] = notes;
    expect(a?.title).toBe('step import, units 40000–49999 failed');
    expect(a?.properties).toEqual({ title: 'step import, units 40000–49999 failed' });
    const lines = a?.message.split('\n') ?? [];
    expect(lines[0]).toBe('exit code 3 after 2 tries. Last output:');
    expect(lines.slice(1)).toHaveLength(20);
    expect(lines.at(-1)).toBe('ERROR: duplicate key');
    expect(lines[1]).toBe('row 32');
    expect(annotationsFor(stats, logs, { logLines: 3 })[0]?.message).toBe(
      'exit code 3 after 2 tries. Last output:\nrow 49\nrow 50\nERROR: duplicate key',
    );
  });

  it('a failed plain step: the title names only the step; no output is said so', async () => {
    const { stats, logs } = await runPlan(`version: 1
steps:
  - id: build
    run: exit 4
`);
    const notes = annotationsFor(stats, logs, { file: 'checkpoint.yml' });
    expect(notes).toEqual([
      {
        title: 'step build failed',
        message: 'exit code 4 after 1 try. No output was recorded.',
        properties: { title: 'step build failed', file: 'checkpoint.yml' },
      },
    ]);
  });

  it('adjacent failures with the same reason are one range', async () => {
    const { stats } = await withFailures([
      { index: 0, exit: 1 },
      { index: 1, exit: 1 },
      { index: 2, exit: 1 },
      { index: 3, exit: 2 },
      { index: 5, exit: 2 },
    ]);
    expect(annotationsFor(stats).map((a) => [a.title, a.message])).toEqual([
      [
        'step load, units 0–29 failed',
        'exit code 1 after 1 try (3 chunks from #0; log of chunk #0). No output was recorded.',
      ],
      ['step load, units 30–39 failed', 'exit code 2 after 1 try. No output was recorded.'],
      ['step load, units 50–59 failed', 'exit code 2 after 1 try. No output was recorded.'],
    ]);
  });

  it('emits at most 10: nine ranges and one saying how many more', async () => {
    // Every other unit fails, so no two merge: 25 ranges.
    const { ckpt, stats } = await withFailures(
      Array.from({ length: 25 }, (_, i) => ({ index: 2 * i, exit: 1 })),
    );
    const notes = annotationsFor(stats);
    expect(notes).toHaveLength(10);
    expect(notes.slice(0, 9).map((a) => a.title)).toEqual(
      Array.from({ length: 9 }, (_, i) => `step load, units ${20 * i}–${20 * i + 9} failed`),
    );
    expect(notes[9]?.title).toBe('16 more failed ranges not annotated');
    expect(notes[9]?.message).toMatch(/^16 more units failed in load\. /);
    expect(annotationsFor(stats, undefined, { max: 25 })).toHaveLength(25);
    // The summary renders the same ranges.
    const md = renderSummary({ state: ckpt.state, stats });
    expect(md).toContain('<summary>❌ load · units 480–489 (chunk #48) · exit code 1 · 1 try</summary>');
  });

  it('bounds the message, keeping the end of the log', async () => {
    const { code, stats, logs } = await runPlan(`version: 1
steps:
  - id: noisy
    run: |
      for i in $(seq 1 40); do printf 'line %s %0300d\\n' "$i" 0; done
      echo last
      exit 9
`);
    expect(code).toBe(1);
    const [a] = annotationsFor(stats, logs, { maxMessageChars: 1000 });
    expect(a?.message.length).toBeLessThanOrEqual(1000);
    expect(a?.message.startsWith('exit code 9 after 1 try. Last output:\n…\n')).toBe(true);
    expect(a?.message.endsWith('\nlast')).toBe(true);
  });
});
