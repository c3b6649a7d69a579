// The runner protocol written out in src/action/runner-commands.ts, read back the way the runner reads it.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as runner from '../../src/action/runner-commands.js';
import { parseFileCommand } from '../support/runner.js';
import { captureCore, setEnv } from '../support/services/index.js';

let dir: string;
let restoreEnv: () => void;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'runner-cmd-'));
  await writeFile(join(dir, 'out'), '');
  await writeFile(join(dir, 'state'), '');
  restoreEnv = setEnv({
    GITHUB_OUTPUT: join(dir, 'out'),
    GITHUB_STATE: join(dir, 'state'),
    'INPUT_SAVE-EVERY': ' 90s ',
    STATE_root: '/x/.checkpoints',
  });
});

afterEach(async () => {
  restoreEnv();
  await rm(dir, { recursive: true, force: true });
});

describe('runner commands', () => {
  it('reads inputs by the runner names (upper case, dashes kept) without trimming, and state as STATE_*', () => {
    expect(runner.getInput('save-every')).toBe(' 90s ');
    expect(runner.getInput('absent')).toBe('');
    expect(runner.getState('root')).toBe('/x/.checkpoints');
  });

  it('writes outputs and state as delimited blocks, multi-line values intact', async () => {
    runner.setOutput('outputs', '{"a":{"b":"1\\n2"}}\nsecond line');
    runner.setOutput('complete', 'true');
    runner.saveState('run-id', 'ci-build-7');
    expect(parseFileCommand(await readFile(join(dir, 'out'), 'utf8'))).toEqual({
      outputs: '{"a":{"b":"1\\n2"}}\nsecond line',
      complete: 'true',
    });
    expect(parseFileCommand(await readFile(join(dir, 'state'), 'utf8'))).toEqual({ 'run-id': 'ci-build-7' });
  });

  it('escapes workflow commands so a message cannot start another command', () => {
    const log = captureCore();
    try {
      runner.error('line 1\nline 2 100%\n::warning::injected', {
        title: 'step a: units 1,2',
        file: 'ci/plan.yml',
      });
      runner.warning('careful');
      runner.startGroup('step a');
      runner.endGroup();
      runner.setSecret('s3cret');
    } finally {
      log.restore();
    }
    expect(log.lines).toEqual([
      '::error title=step a%3A units 1%2C2,file=ci/plan.yml::line 1%0Aline 2 100%25%0A::warning::injected',
      '::warning::careful',
      '::group::step a',
      '::endgroup::',
      '::add-mask::s3cret',
    ]);
    expect(log.errors()).toEqual(['line 1\nline 2 100%\n::warning::injected']);
  });

  it('setFailed sets exit code 1 and prints an error', () => {
    const before = process.exitCode;
    const log = captureCore();
    try {
      runner.setFailed('input `store`: bad');
    } finally {
      log.restore();
    }
    expect(process.exitCode).toBe(1);
    process.exitCode = before;
    expect(log.errors()).toEqual(['input `store`: bad']);
  });
});
