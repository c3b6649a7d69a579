// The action's log groups: GitHub's groups cannot nest or interleave, so only a step that runs alone gets
// one; and the CLI's advice lines never reach the action's log.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { actionLog, StepGroups } from '../../src/action/log-groups.js';

function recorder() {
  const log: string[] = [];
  const groups = new StepGroups({
    startGroup: (n) => log.push(`::group::${n}`),
    endGroup: () => log.push('::endgroup::'),
  });
  return { log, groups, line: (l: string) => log.push(l) };
}

describe('step groups', () => {
  it('a step running alone is one group, opened and closed around its lines', () => {
    const { log, groups, line } = recorder();
    groups.onState('prepare', 'running');
    line('[prepare] ok');
    groups.onState('prepare', 'done');
    groups.onState('build', 'running');
    line('[build] built');
    groups.onState('build', 'done');
    expect(log).toEqual([
      '::group::step prepare',
      '[prepare] ok',
      '::endgroup::',
      '::group::step build',
      '[build] built',
      '::endgroup::',
    ]);
  });

  it('steps that overlap share no group: the group closes when a second step starts, none opens until all are done', () => {
    const { log, groups, line } = recorder();
    groups.onState('lint', 'running');
    line('[lint] checking');
    groups.onState('build', 'running');
    line('[build] built');
    line('[lint] clean');
    groups.onState('lint', 'done');
    // build runs on alone, but its group would start mid-way through its lines: it stays ungrouped.
    line('[build] linked');
    groups.onState('build', 'done');
    groups.onState('test', 'running');
    line('[test] passed');
    groups.onState('test', 'done');
    groups.close();
    expect(log).toEqual([
      '::group::step lint',
      '[lint] checking',
      '::endgroup::',
      '[build] built',
      '[lint] clean',
      '[build] linked',
      '::group::step test',
      '[test] passed',
      '::endgroup::',
    ]);
    // Never a step's line inside another step's group.
    let open: string | undefined;
    for (const l of log) {
      if (l.startsWith('::group::step ')) open = l.slice('::group::step '.length);
      else if (l === '::endgroup::') open = undefined;
      else if (open !== undefined) expect(l.startsWith(`[${open}]`)).toBe(true);
    }
  });

  it('repeated running states and approval waits change nothing', () => {
    const { log, groups } = recorder();
    groups.onState('a', 'waiting');
    groups.onState('a', 'running');
    groups.onState('a', 'running');
    groups.onState('a', 'failed');
    expect(log).toEqual(['::group::step a', '::endgroup::']);
  });
});

describe('action log', () => {
  it('drops the CLI advice lines and passes everything else whole', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => {
      text += c.toString();
    });
    const log = actionLog(out);
    log.write(
      '[a] one\nincomplete: time budget: 3 of 9 units done\nresume with: checkpoint run -f ci/plan.yml\n',
    );
    log.write('2026-12-03T10:05:32.067Z resume with: checkpoint run -f /ws/checkpoint.yml\n');
    log.write('approve with: checkpoint approve deploy, then run again: checkpoint run\n[a] tw');
    log.write('o\n');
    await new Promise<void>((r) => log.end(r));
    expect(text).toBe('[a] one\nincomplete: time budget: 3 of 9 units done\n[a] two\n');
  });
});
