// The job summary, rendered from checkpoint directories made by the real engine (`checkpoint run` in-process)
// or, where hundreds of failures are needed, by the real Checkpoint API.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runCommand } from '../../src/cli/run.js';
import { Checkpoint } from '../../src/journal/checkpoint.js';
import { readLatest } from '../../src/journal/runs.js';
import { formatDuration } from '../../src/plan/duration.js';
import { loadPlan } from '../../src/plan/load.js';
import { loadFrozenItems } from '../../src/report/items.js';
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
import { markDoneCommand } from '../../src/session/manage.js';

const dirs: string[] = [];
afterEach(async () => {
  vi.useRealTimers();
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
  // As the action does: the frozen item lists, so that units of item lists are named.
  const stats = runStats(ckpt, plan, false, await loadFrozenItems(ckpt));
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
    expect(table).toContain('| Step | State | Done | Failed | Remaining (incl. failed) | Time | ETA |');
    const importRow = table.find((l) => l.includes('(import)'));
    // A failed step has no ETA: its failed unit runs again only on a next attempt.
    expect(importRow).toMatch(
      /^\| Import rows &#124; &lt;b&gt;bold&lt;\/b&gt; \(import\) \| ❌ failed \| 4 \/ 5 \| 1 \| 1 \| \S+ \| — \|$/,
    );
    expect(table.find((l) => l.startsWith('| setup '))).toMatch(
      /^\| setup \| ✅ done \| 1 \/ 1 \| 0 \| 0 \| .* \| — \|$/,
    );
    // `report` needs the failed step: it cannot start before someone fixes it, so no ETA either.
    expect(table).toContain('| report | ⏸️ pending | 0 / 1 | 0 | 1 | 0ms | — |');
    expect(table).toContain(
      '_ETA: time to finish at the pace so far; — when no pace can tell: the step failed (its failed units ' +
        'run again on the next attempt), waits for approval, or needs a step that did either._',
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
    expect(timeline).toContain(
      `    Attempt 1 failed, 5 units :crit, a1, ${a1?.startedAt}, ${Math.max(a1?.endedAt ?? 0, (a1?.startedAt ?? 0) + 1000)}\n`,
    );
    expect(timeline).toContain(
      `- Attempt 1 (fresh start, ${formatDuration((a1?.endedAt ?? 0) - (a1?.startedAt ?? 0))}): exit 1: 1 unit(s) failed in import; 5 units done.`,
    );
    // The headline of a later attempt stopped by its budget: the failed unit is in what is left, and said
    // to be; no ETA, since the failed unit needs a retry and `report` waits on it.
    const stopped = renderSummary({
      state: ckpt.state,
      stats,
      exitCode: 75,
      reason: 'stopped early: time budget reached',
    });
    expect(stopped).toContain(
      '5 of 7 units done (71%); 2 left (1 of them failed) in import (1), report (1). The next attempt resumes from here.',
    );
    expect(stopped).not.toContain('· ETA');
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
    expect(timeline).toMatch(/\n {4}Attempt 1 failed, 5 units :crit, a1, \d+, \d+\n/);
    expect(timeline).toMatch(/\n {4}Attempt 2 done, 2 units :done, a2, \d+, \d+\n/);
    expect(timeline).toMatch(/\n- Attempt 2 \(resumed, \d+ms\): exit 0: complete; 2 units done\.\n/);
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
      `    Attempt 1 cut off, 0 units :crit, a1, ${a1?.startedAt}, ${Math.max(a2?.startedAt ?? 0, (a1?.startedAt ?? 0) + 1000)}`,
      `    Attempt 2 stopped, 0 units :a2, ${a2?.startedAt}, ${Math.max(a2?.endedAt ?? 0, (a2?.startedAt ?? 0) + 1000)}`,
      `    Attempt 3 no end yet, 0 units :active, a3, ${a3?.startedAt}, ${now}`,
    ]);
    const took = formatDuration((a2?.endedAt ?? 0) - (a2?.startedAt ?? 0));
    expect(md).toContain(
      '- Attempt 1 (fresh start): no end recorded (killed, cancelled or crashed) before attempt 2 started; 0 units done.\n' +
        `- Attempt 2 (resumed, ${took}): exit 75: stopped early: time budget reached; 0 units done.\n` +
        '- Attempt 3 (resumed): no end recorded yet (still running, or stopped without recording it); 0 units done.\n',
    );
    expect(gantt).toContain('title 3 attempts');
    expect(md).toContain('attempt 3 (resumed)');
  });
});

/** Journal times are `Date.now()`: a clock set by the test puts the events exactly where it wants them. */
function setClock(ms: number): void {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(ms);
}

/** Two attempts over `spanMs`: the first stopped by its budget half-way, the second completes the run. */
async function attemptsOver(spanMs: number) {
  const root = join(await tempDir(), '.checkpoints');
  const t0 = Date.UTC(2026, 2, 14, 17, 28, 3);
  setClock(t0);
  const ckpt = Checkpoint.blank(root, 'span', 'p');
  await ckpt.openForWrite();
  await ckpt.record({ type: 'attempt', attempt: 1, plan: 'p', pid: 1, host: 'h', resumed: false });
  setClock(t0 + spanMs / 2);
  await ckpt.record({
    type: 'attempt-end',
    attempt: 1,
    exit: 75,
    reason: 'stopped early: time budget reached',
  });
  await ckpt.record({ type: 'attempt', attempt: 2, plan: 'p', pid: 2, host: 'h', resumed: true });
  setClock(t0 + spanMs);
  await ckpt.record({ type: 'attempt-end', attempt: 2, exit: 0, reason: 'complete' });
  await ckpt.close();
  vi.useRealTimers();
  const read = await Checkpoint.read(root, 'span');
  return { t0, state: read.state, stats: runStats(read, undefined) };
}

/**
 * The labels Mermaid draws: d3 puts a tick at every multiple of the interval in the span and formats it with
 * `axisFormat` (UTC here; the reader's zone on GitHub, which shifts all labels alike).
 */
function tickLabels(axisFormat: string, tickInterval: string, from: number, to: number): string[] {
  const m = /^(\d+)(second|minute|hour|day)$/.exec(tickInterval);
  if (!m) throw new Error(`unexpected tick interval ${tickInterval}`);
  const unit = { second: 1000, minute: 60_000, hour: 3_600_000, day: 86_400_000 }[m[2] as 'second'];
  const step = Number(m[1]) * unit;
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const two = (n: number) => String(n).padStart(2, '0');
  const out: string[] = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const d = new Date(t);
    out.push(
      axisFormat.replace(/%([HMSbd])/g, (_, c: string) =>
        c === 'H'
          ? two(d.getUTCHours())
          : c === 'M'
            ? two(d.getUTCMinutes())
            : c === 'S'
              ? two(d.getUTCSeconds())
              : c === 'b'
                ? (months[d.getUTCMonth()] as string)
                : two(d.getUTCDate()),
      ),
    );
  }
  return out;
}

describe('renderSummary timeline axis', () => {
  const cases: Array<[string, number, string, string]> = [
    ['20 s', 20_000, '%H:%M:%S', '5second'],
    ['40 min', 40 * 60_000, '%H:%M', '5minute'],
    ['3 h', 3 * 3_600_000, '%H:%M', '30minute'],
    ['30 h', 30 * 3_600_000, '%b %d %H:%M', '6hour'],
    ['3 days', 3 * 86_400_000, '%b %d', '1day'],
  ];
  for (const [name, span, format, interval] of cases) {
    it(`a run over ${name}: ticks every ${interval}, each labelled apart, short bar texts`, async () => {
      const { t0, state, stats } = await attemptsOver(span);
      const md = renderSummary({ state, stats, now: t0 + span });
      const gantt = section(md, 'Timeline');
      expect(gantt).toContain(
        `    axisFormat ${format}\n    tickInterval ${interval}\n    todayMarker off\n`,
      );
      const labels = tickLabels(format, interval, t0, t0 + span);
      // Enough ticks to read the time off, few enough to sit side by side, and no two alike.
      expect(labels.length).toBeGreaterThanOrEqual(2);
      expect(labels.length).toBeLessThanOrEqual(8);
      expect(new Set(labels).size).toBe(labels.length);
      const half = t0 + span / 2;
      expect(gantt).toContain(
        '    section Attempts\n' +
          `    Attempt 1 stopped, 0 units :a1, ${t0}, ${half}\n` +
          `    Attempt 2 done, 0 units :done, a2, ${half}, ${t0 + span}\n` +
          '```\n\n' +
          `- Attempt 1 (fresh start, ${formatDuration(span / 2)}): exit 75: stopped early: time budget reached; 0 units done.\n` +
          `- Attempt 2 (resumed, ${formatDuration(span / 2)}): exit 0: complete; 0 units done.\n`,
      );
    });
  }

  it('the old axis labelled every tick of a 20 s run alike', () => {
    // What the issue saw: `%H:%M` over 20 s with Mermaid's own ticks (every 2 s): `17:28 17:28 …`.
    const t0 = Date.UTC(2026, 2, 14, 17, 28, 3);
    expect(new Set(tickLabels('%H:%M', '2second', t0, t0 + 20_000))).toEqual(new Set(['17:28']));
  });
});

/** One step of five units, two done in 1 s each; `failOne` makes the third a final failure. */
async function partialRun(failOne: boolean) {
  const root = join(await tempDir(), '.checkpoints');
  const ckpt = Checkpoint.blank(root, 'eta-run', 'eta');
  await ckpt.openForWrite();
  const fp = {
    hash: 'h',
    parts: { run: 'r', shell: 's', env: 'e', workingDirectory: 'w', batch: 'b', inputs: {} },
  };
  ckpt.recordLater({ type: 'attempt', attempt: 1, plan: 'eta', pid: 1, host: 'h', resumed: false });
  ckpt.recordLater({
    type: 'step-init',
    step: 'load',
    fingerprint: fp,
    from: 0,
    to: 5,
    size: 1,
    reason: 'new',
  });
  for (let i = 0; i < (failOne ? 3 : 2); i++) {
    const u = { step: 'load', start: i, end: i + 1, index: i };
    ckpt.recordLater({ type: 'start', ...u, try: 1, attempt: 1 });
    if (i < 2) ckpt.recordLater({ type: 'done', ...u, ms: 1000 });
    else
      ckpt.recordLater({
        type: 'fail',
        ...u,
        try: 1,
        ms: 1000,
        exit: 1,
        signal: null,
        final: true,
        reason: 'exit code 1',
      });
  }
  ckpt.recordLater({
    type: 'attempt-end',
    attempt: 1,
    exit: 75,
    reason: 'stopped early: time budget reached',
  });
  await ckpt.flush();
  await ckpt.close();
  const read = await Checkpoint.read(root, 'eta-run');
  return { state: read.state, stats: runStats(read, undefined) };
}

describe('renderSummary ETA', () => {
  it('an incomplete run on pace has an ETA, in the headline and on the step', async () => {
    const { state, stats } = await partialRun(false);
    const md = renderSummary({
      state,
      stats,
      exitCode: 75,
      reason: 'stopped early: time budget reached',
      now: 0,
    });
    expect(md).toContain(
      '2 of 5 units done (40%); 3 left in load · ETA 3s. The next attempt resumes from here.',
    );
    expect(md).toContain('| load | ⏳ partial | 2 / 5 | 0 | 3 | 2s | 3s |');
    expect(md).not.toContain('_ETA:');
  });

  it('a failed unit takes the ETA away: from the step and from the headline', async () => {
    const { state, stats } = await partialRun(true);
    // The stats still estimate the time of the units left; the summary does not present it as a finish.
    expect(stats.etaMs).toBe(3000);
    const md = renderSummary({
      state,
      stats,
      exitCode: 75,
      reason: 'stopped early: time budget reached',
      now: 0,
    });
    expect(md).toContain(
      '2 of 5 units done (40%); 3 left (1 of them failed) in load. The next attempt resumes from here.',
    );
    expect(md).not.toContain('· ETA');
    expect(md).toContain('| load | ❌ failed | 2 / 5 | 1 | 3 | 3s | — |');
  });

  it('a step waiting for approval, and the step that needs it, have no ETA', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1
name: gated
steps:
  - id: build
    run: "true"
  - id: deploy
    approval: true
    run: "true"
  - id: notify
    run: "true"
`,
    );
    const code = await run(dir);
    const { ckpt, stats } = await load(dir);
    const md = renderSummary({ state: ckpt.state, stats, exitCode: code, now: ckpt.state.updatedAt });
    expect(md).toContain('| deploy | ✋ waiting for approval | 0 / 1 | 0 | 1 | 0ms | — |');
    expect(md).toContain('| notify | ⏸️ pending | 0 / 1 | 0 | 1 | 0ms | — |');
    expect(md).toContain('1 of 3 units done (33%); 2 left in deploy (1), notify (1). The next attempt');
    expect(md).toContain('waits for approval, or needs a step that did either._');
  });
});

describe('renderSummary: marks by hand and gone items, as status shows them', () => {
  it('a range step and a plain step marked done by hand: who and when, per mark', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'checkpoint.yml'), FAILING_PLAN);
    expect(await run(dir)).toBe(1);
    const sink = new PassThrough();
    sink.resume();
    const io = { out: sink, err: sink, env: { ...process.env, GITHUB_ACTOR: '' } };
    const file = join(dir, 'checkpoint.yml');
    expect(await markDoneCommand(['import'], { file, unit: ['2'], by: 'alice <a|b>' }, io)).toBe(0);
    expect(await markDoneCommand(['report'], { file, by: 'bob' }, io)).toBe(0);
    const { ckpt, stats } = await load(dir);
    const at = (id: string) => new Date(ckpt.state.steps.get(id)?.manual?.[0]?.at ?? 0).toISOString();
    const md = renderSummary({ state: ckpt.state, stats, exitCode: 0, now: ckpt.state.updatedAt });
    expect(md).toContain(
      `\n\n✍️ **import**: marked done by hand by alice &lt;a&#124;b&gt; at ${at('import')}: units 20–29\n`,
    );
    expect(md).toContain(`\n\n✍️ **report**: marked done by hand by bob at ${at('report')}\n`);
    expect(md.startsWith('## ✅ nightly-import: complete\n')).toBe(true);
  });

  it('at most five marks a step, then a count', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1
name: marks
steps:
  - id: prep
    run: "true"
  - id: fill
    run: "true"
    batch: { range: { from: 0, to: 100 }, size: 10 }
`,
    );
    const sink = new PassThrough();
    sink.resume();
    const io = { out: sink, err: sink, env: { ...process.env, GITHUB_ACTOR: '' } };
    // A run that leaves `fill` pending: marks by hand need a run to record them in.
    expect(await run(dir, {}, ['prep'])).toBe(0);
    const t0 = Date.UTC(2026, 2, 14, 9, 0, 0);
    for (let i = 0; i < 7; i++) {
      setClock(t0 + i * 60_000);
      const file = join(dir, 'checkpoint.yml');
      expect(await markDoneCommand(['fill'], { file, unit: [String(i)], by: `user${i}` }, io)).toBe(0);
    }
    vi.useRealTimers();
    const { ckpt, stats } = await load(dir);
    const md = renderSummary({ state: ckpt.state, stats, now: t0 });
    const lines = md.split('\n').filter((l) => l.startsWith('✍️'));
    expect(lines).toEqual([
      '✍️ **fill**: marked done by hand by user0 at 2026-03-14T09:00:00.000Z: units 0–9',
      '✍️ **fill**: marked done by hand by user1 at 2026-03-14T09:01:00.000Z: units 10–19',
      '✍️ **fill**: marked done by hand by user2 at 2026-03-14T09:02:00.000Z: units 20–29',
      '✍️ **fill**: marked done by hand by user3 at 2026-03-14T09:03:00.000Z: units 30–39',
      '✍️ **fill**: marked done by hand by user4 at 2026-03-14T09:04:00.000Z: units 40–49',
      '✍️ **fill**: 2 more marks by hand (`checkpoint status --json` lists them all)',
    ]);
    // Under a tight budget the lines give way to a note; the summary stays within the budget.
    const maxBytes = Buffer.byteLength(md) + 300;
    const cut = renderSummary({ state: ckpt.state, stats, now: t0, maxBytes });
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(maxBytes);
    expect(cut).toMatch(
      /\n_\d more lines? on marks by hand and gone items not shown \(summary size limit\); `checkpoint status` shows them\._\n/,
    );
  });

  it('items by name: one marked done by hand, one that left its refresh source before it ran', async () => {
    const dir = await tempDir();
    await writeFile(
      join(dir, 'checkpoint.yml'),
      `version: 1
name: files
steps:
  - id: import
    run: '[ "$CHECKPOINT_ITEM" != data/c.csv ] && [ "$CHECKPOINT_ITEM" != data/d.csv ]'
    batch:
      items: { glob: "data/*.csv", refresh: true }
      size: 1
      max-failures: 5
`,
    );
    await mkdir(join(dir, 'data'));
    for (const n of ['a', 'b', 'c', 'd']) await writeFile(join(dir, 'data', `${n}.csv`), `${n}\n`);
    expect(await run(dir)).toBe(1);
    // c goes away before it ever ran; d is accepted by hand.
    await rm(join(dir, 'data', 'c.csv'));
    const sink = new PassThrough();
    sink.resume();
    const io = { out: sink, err: sink, env: { ...process.env, GITHUB_ACTOR: '' } };
    const file = join(dir, 'checkpoint.yml');
    expect(await markDoneCommand(['import'], { file, item: ['data/d.csv'], by: 'carol' }, io)).toBe(0);
    expect(await run(dir)).toBe(0);
    const { ckpt, stats } = await load(dir);
    const at = new Date(ckpt.state.steps.get('import')?.manual?.[0]?.at ?? 0).toISOString();
    const md = renderSummary({ state: ckpt.state, stats, exitCode: 0, now: ckpt.state.updatedAt });
    expect(md).toContain(`\n\n✍️ **import**: marked done by hand by carol at ${at}: item 3 (data/d.csv)\n`);
    expect(md).toContain(
      '\n\n🗑️ **import**: 1 item left the source before it ran and will not run: data/c.csv\n',
    );
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
