// The job summary, rendered from checkpoint directories made by the real engine (`checkpoint run` in-process)
// or, where hundreds of failures are needed, by the real Checkpoint API.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/run.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readLatest } from '../../src/journal/runs.js';
import { loadPlan } from '../../src/plan/load.js';
import { runStats } from '../../src/report/stats.js';
import {
  escapeCell,
  fencedBlock,
  inlineCode,
  readLogTails,
  renderSummary,
  SUMMARY_LIMIT_BYTES,
  tailLines,
} from '../../src/report/summary.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ckpt-summary-'));
  dirs.push(d);
  return d;
}

/** Runs `checkpoint run` on the plan in `dir` with the real engine; returns its exit code. */
async function run(dir: string, env: Record<string, string> = {}, only?: string[]): Promise<number> {
  const sink = new PassThrough();
  sink.resume();
  return runCommand(
    { file: join(dir, 'checkpoint.yml'), ...(only ? { only } : {}) },
    { out: sink, err: sink, env: { ...process.env, CI: 'true', NO_COLOR: '1', ...env } },
  );
}

async function load(dir: string) {
  const plan = await loadPlan(join(dir, 'checkpoint.yml'));
  const root = join(dir, '.checkpoints');
  const id = await readLatest(root);
  if (!id) throw new Error('no run recorded');
  const ckpt = await Checkpoint.read(root, id);
  const stats = runStats(ckpt, plan);
  const logs = await readLogTails(ckpt, stats);
  return { ckpt, stats, logs };
}

const FAILING_PLAN = `version: 1
name: nightly-import
shell: bash
steps:
  - id: setup
    run: echo ready
  - id: import
    name: Import rows | <b>bold</b>
    run: |
      if [ "$CHECKPOINT_BATCH_START" = 20 ] && [ "$FIX" != 1 ]; then
        for i in $(seq 1 30); do echo "line $i"; done
        echo '\`\`\`'
        echo 'a | b <script>alert(1)</script>'
        printf '\\033[31mred\\033[0m\\n'
        exit 3
      fi
      echo "ok $CHECKPOINT_BATCH_START"
    retry: { attempts: 2, delay: 0s }
    batch: { range: { from: 0, to: 50 }, size: 10, parallel: 2, max-failures: 5 }
  - id: report
    needs: [import]
    run: echo done
`;

function section(md: string, heading: string): string {
  const start = md.indexOf(`### ${heading}`);
  if (start < 0) return '';
  const next = md.indexOf('\n### ', start + 4);
  return md.slice(start, next < 0 ? undefined : next);
}

describe('renderSummary on a real run', () => {
  it('a failed attempt: headline, table rows, the failed range with its log tail, the timeline', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'checkpoint.yml'), FAILING_PLAN);
    expect(await run(dir)).toBe(1);
    const { ckpt, stats, logs } = await load(dir);
    const md = renderSummary({
      state: ckpt.state,
      stats,
      logs,
      exitCode: 1,
      reason: '1 unit(s) failed in import',
      warnings: ['cache save failed: 503 | <service unavailable>'],
      now: ckpt.state.updatedAt,
    });

    expect(md.startsWith('## ❌ nightly-import: failed\n')).toBe(true);
    expect(md).toContain('1 unit failed in import; 5 of 7 units done (71%).');
    expect(md).toContain(`Run ${inlineCode(ckpt.runId)} · attempt 1 (fresh start)`);
    // The warning is in an alert block, escaped.
    expect(md).toContain('> [!WARNING]\n> - cache save failed: 503 &#124; &lt;service unavailable&gt;');

    const table = section(md, 'Steps').split('\n');
    expect(table).toContain('| Step | State | Done | Failed | Remaining | Time | ETA |');
    const importRow = table.find((l) => l.includes('(import)'));
    expect(importRow).toMatch(
      /^\| Import rows &#124; &lt;b&gt;bold&lt;\/b&gt; \(import\) \| ❌ failed \| 4 \/ 5 \| 1 \| 1 \| \S+ \| \S+ \|$/,
    );
    expect(table.find((l) => l.startsWith('| setup '))).toMatch(
      /^\| setup \| ✅ done \| 1 \/ 1 \| 0 \| 0 \| .* \| — \|$/,
    );
    expect(table.find((l) => l.startsWith('| report '))).toMatch(
      /^\| report \| ⏸️ pending \| 0 \/ 1 \| 0 \| 1 \|/,
    );
    // Every row has the header's 7 cells: no unescaped pipe split one.
    for (const row of table.filter((l) => l.startsWith('|'))) expect(row.split('|').length - 2).toBe(7);

    const failed = section(md, 'Failed units');
    expect(failed).toContain(
      '<details open><summary>❌ import · units 20–29 (chunk #2) · exit code 3 · 2 tries</summary>',
    );
    expect(failed).toContain('Log (last 20 lines):');
    // The log holds ``` so the fence is four backticks, and the block is closed by the same fence.
    const fenceOpen = failed.indexOf('````text\n');
    expect(fenceOpen).toBeGreaterThan(0);
    const block = failed.slice(fenceOpen + '````text\n'.length, failed.indexOf('\n````\n', fenceOpen));
    const lines = block.split('\n');
    expect(lines).toHaveLength(20);
    expect(lines[0]).toBe('line 14');
    expect(lines.slice(-3)).toEqual(['```', 'a | b <script>alert(1)</script>', 'red']);
    expect(block).not.toContain('\u001b');
    const short = renderSummary({ state: ckpt.state, stats, logs, logLines: 2 });
    expect(short).toContain('Log (last 2 lines):\n\n```text\na | b <script>alert(1)</script>\nred\n```\n');
    expect(failed).toContain('</details>');

    const timeline = section(md, 'Timeline');
    expect(timeline).toContain('```mermaid\ngantt\n');
    expect(timeline).toContain('    dateFormat x\n');
    const a1 = ckpt.state.attempts[0];
    expect(timeline).toMatch(
      new RegExp(
        `    Attempt 1 - exit 1, 1 unit\\(s\\) failed in import - 5 units done :crit, a1, ${a1?.startedAt}, \\d+\\n`,
      ),
    );
    expect(Buffer.byteLength(md)).toBeLessThan(SUMMARY_LIMIT_BYTES);
  });

  it('the resumed attempt that completes the run', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'checkpoint.yml'), FAILING_PLAN);
    expect(await run(dir)).toBe(1);
    expect(await run(dir, { FIX: '1' })).toBe(0);
    const { ckpt, stats, logs } = await load(dir);
    const md = renderSummary({ state: ckpt.state, stats, logs, exitCode: 0, resumed: true });
    expect(md.startsWith('## ✅ nightly-import: complete\n\nAll 7 units of 3 steps are done.')).toBe(true);
    expect(md).toContain('attempt 2 (resumed)');
    expect(md).not.toContain('### Failed units');
    expect(md).not.toContain('[!WARNING]');
    const timeline = section(md, 'Timeline');
    expect(timeline).toContain('title 2 attempts');
    expect(timeline).toMatch(/Attempt 1 - exit 1, .* :crit, a1, /);
    expect(timeline).toMatch(/Attempt 2 \(resumed\) - complete - 2 units done :done, a2, /);
  });

  it('an incomplete run says what is left', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1
name: chunks
steps:
  - id: first
    run: "true"
  - id: fill
    run: "true"
    batch: { range: { from: 0, to: 30 }, size: 10 }
`,
    );
    // `--only first` finishes what it selected (exit 0) and leaves `fill` pending.
    expect(await run(dir, {}, ['first'])).toBe(0);
    const { ckpt, stats } = await load(dir);
    const md = renderSummary({ state: ckpt.state, stats, exitCode: 0 });
    expect(md.startsWith('## ⏸️ chunks: incomplete\n')).toBe(true);
    expect(md).toContain('1 of 4 units done (25%); 3 left in fill. The next attempt resumes from here.');
    expect(md).toContain('| fill | ⏸️ pending | 0 / 3 | 0 | 3 | 0ms | ? |');
    const stopped = renderSummary({
      state: ckpt.state,
      stats,
      exitCode: 75,
      reason: 'stopped early: time budget reached',
    });
    expect(stopped).toContain('Ended: stopped early: time budget reached.');
  });
});

/** A checkpoint with `n` failed units (every other unit of one step), each with a `lines`-line log. */
async function manyFailures(n: number, lines: number) {
  const root = join(await tempDir(), '.checkpoints');
  const ckpt = Checkpoint.blank(root, 'big-run', 'big');
  await ckpt.openForWrite();
  const fp = {
    hash: 'h',
    parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
  };
  ckpt.recordLater({ type: 'attempt', attempt: 1, plan: 'big', pid: 1, host: 'h', resumed: false });
  ckpt.recordLater({
    type: 'step-init',
    step: 'load',
    fingerprint: fp,
    from: 0,
    to: 2 * n,
    size: 1,
    reason: 'new',
  });
  await mkdir(join(ckpt.dir, 'logs', 'load'), { recursive: true });
  const text = Array.from({ length: lines }, (_, i) => `${'x'.repeat(150)} line ${i}`).join('\n');
  for (let i = 0; i < 2 * n; i++) {
    const u = { step: 'load', start: i, end: i + 1, index: i };
    ckpt.recordLater({ type: 'start', ...u, try: 1, attempt: 1 });
    if (i % 2 === 1) {
      ckpt.recordLater({ type: 'done', ...u, ms: 5 });
      continue;
    }
    ckpt.recordLater({
      type: 'fail',
      ...u,
      try: 1,
      ms: 5,
      exit: 1,
      signal: null,
      final: true,
      reason: 'exit code 1',
    });
    await writeFile(ckpt.logPath('load', i), text);
  }
  ckpt.recordLater({ type: 'attempt-end', attempt: 1, exit: 1, reason: `${n} unit(s) failed in load` });
  await ckpt.flush();
  await ckpt.close();
  const read = await Checkpoint.read(root, 'big-run');
  return { ckpt: read, stats: runStats(read, undefined) };
}

describe('renderSummary size limits', () => {
  it('leaves out failed ranges past the size budget, with a note, and keeps the table and timeline', async () => {
    const { ckpt, stats } = await manyFailures(400, 20);
    const logs = await readLogTails(ckpt, stats, { maxLogs: 400 });
    expect(logs.size).toBe(400);
    const md = renderSummary({ state: ckpt.state, stats, logs, maxBytes: 50_000, maxFailedRanges: 1000 });
    expect(Buffer.byteLength(md)).toBeLessThanOrEqual(50_000);
    const shown = md.match(/<details/g)?.length ?? 0;
    expect(shown).toBeGreaterThan(5);
    expect(shown).toBeLessThan(400);
    expect(md).toContain(
      `> ${400 - shown} more failed ranges not shown to keep the summary under its size limit; \`checkpoint status --json\` lists them all.`,
    );
    expect(md).toContain('| load | ❌ failed | 400 / 800 | 400 | 400 |');
    expect(md).toContain('```mermaid');
    // Even a run with huge logs and every failure in the summary stays under GitHub's 1 MiB.
    const full = renderSummary({ state: ckpt.state, stats, logs, maxFailedRanges: 10_000 });
    expect(Buffer.byteLength(full)).toBeLessThan(SUMMARY_LIMIT_BYTES);
    expect(full).toMatch(/more failed ranges not shown to keep the summary under its size limit/);
  });

  it('caps the number of failed ranges shown even when they would fit', async () => {
    const { ckpt, stats } = await manyFailures(30, 2);
    const logs = await readLogTails(ckpt, stats);
    const md = renderSummary({ state: ckpt.state, stats, logs, maxFailedRanges: 10 });
    expect(md.match(/<details/g)).toHaveLength(10);
    expect(md).toContain('> 20 more failed ranges not shown to keep the summary short;');
    expect(md).toContain('<summary>❌ load · unit 0 · exit code 1 · 1 try</summary>');
  });
});

describe('renderSummary timeline', () => {
  it('shows how each attempt ended, including one killed without a record', async () => {
    const root = join(await tempDir(), '.checkpoints');
    const ckpt = Checkpoint.blank(root, 'r1', 'p');
    await ckpt.openForWrite();
    await ckpt.record({ type: 'attempt', attempt: 1, plan: 'p', pid: 1, host: 'h', resumed: false });
    // Attempt 1 died (no attempt-end); attempt 2 stopped at its budget; attempt 3 is still going.
    await ckpt.record({ type: 'attempt', attempt: 2, plan: 'p', pid: 2, host: 'h', resumed: true });
    await ckpt.record({
      type: 'attempt-end',
      attempt: 2,
      exit: 75,
      reason: 'stopped early: time budget reached',
    });
    await ckpt.record({ type: 'attempt', attempt: 3, plan: 'p', pid: 3, host: 'h', resumed: true });
    await ckpt.close();
    const read = await Checkpoint.read(root, 'r1');
    const [a1, a2, a3] = read.state.attempts;
    const now = (a3?.startedAt ?? 0) + 5000;
    const md = renderSummary({ state: read.state, stats: runStats(read, undefined), now });
    const gantt = md.slice(md.indexOf('```mermaid'));
    const rows = gantt.split('\n').filter((l) => l.startsWith('    Attempt'));
    expect(rows).toEqual([
      `    Attempt 1 - no end recorded (killed or cancelled) - 0 units done :crit, a1, ${a1?.startedAt}, ${Math.max(a2?.startedAt ?? 0, (a1?.startedAt ?? 0) + 1000)}`,
      `    Attempt 2 (resumed) - exit 75, stopped early - time budget reached - 0 units done :a2, ${a2?.startedAt}, ${Math.max(a2?.endedAt ?? 0, (a2?.startedAt ?? 0) + 1000)}`,
      `    Attempt 3 (resumed) - running or no end recorded - 0 units done :active, a3, ${a3?.startedAt}, ${now}`,
    ]);
    expect(gantt).toContain('title 3 attempts');
    expect(md).toContain('attempt 3 (resumed)');
  });
});

describe('escaping helpers', () => {
  it('fences are longer than any backtick run in the content', () => {
    expect(fencedBlock('plain')).toBe('```\nplain\n```');
    expect(fencedBlock('a\n```\nb', 'text')).toBe('````text\na\n```\nb\n````');
    expect(fencedBlock('x ``````` y').startsWith('````````\n')).toBe(true);
    expect(inlineCode('a`b')).toBe('``a`b``');
    expect(inlineCode('`x')).toBe('`` `x ``');
  });

  it('table cells escape pipes, HTML and newlines', () => {
    expect(escapeCell('a|b')).toBe('a&#124;b');
    expect(escapeCell('<img src=x onerror="y">')).toBe('&lt;img src=x onerror=&quot;y&quot;&gt;');
    expect(escapeCell('one\ntwo')).toBe('one<br>two');
    expect(escapeCell('a_b*c`d')).toBe('a\\_b\\*c\\`d');
  });

  it('log tails keep the last lines as a terminal showed them', () => {
    const t = tailLines('a\nb\r\nprogress 10%\rprogress 100%\n\u001b[1;32mok\u001b[0m\u0007\n', 3);
    expect(t).toEqual({ lines: ['b', 'progress 100%', 'ok'], omitted: 1 });
    expect(tailLines('y'.repeat(1000)).lines[0]).toHaveLength(401);
  });

  it('readLogTails reads the log the engine wrote for the failed unit', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'checkpoint.yml'), FAILING_PLAN);
    await run(dir);
    const { ckpt, logs } = await load(dir);
    const raw = await readFile(ckpt.logPath('import', 2), 'utf8');
    expect(raw).toContain('line 30');
    expect([...logs.keys()]).toEqual(['import#2']);
  });
});
