// Forked shells (src/engine/forked-shell.ts): when a launcher may run a unit in a subshell of itself instead
// of exec'ing a new bash, and proof that a unit cannot tell the difference: the same probes run both ways
// (CHECKPOINT_LAUNCHER=exec is the fresh `bash -c`) must print the same thing and end the same way.
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shellStart, whichBash } from '../../src/engine/forked-shell.js';
import { LauncherPool } from '../../src/engine/launcher.js';
import type { UnitBackend } from '../../src/engine/process.js';
import { UnitEnv } from '../../src/engine/unit-env.js';

const base: NodeJS.ProcessEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !k.startsWith('CHECKPOINT_') && !k.startsWith('__')),
);
const bash = ['bash', '-eo', 'pipefail', '-c'];

describe('when a unit gets a forked shell', () => {
  it('the default bash shell does, with its options for `set`', () => {
    const s = shellStart([...bash, 'echo hi'], { ...base, X: '1' }, base, undefined);
    expect(s).toMatchObject({ kind: 'fork', setArgs: '+m -e -o pipefail', command: 'echo hi' });
    if (s.kind !== 'fork') return;
    expect(s.set).toContain('X=1');
  });

  it('the resolved absolute path of the launcher bash does too; options in any of bash spellings', () => {
    const abs = whichBash(base.PATH);
    expect(abs).toBeDefined();
    expect(shellStart([abs ?? 'bash', '-c', 'true'], base, base, undefined)).toMatchObject({ setArgs: '+m' });
    expect(
      shellStart(['bash', '--noprofile', '--norc', '-euo', 'pipefail', '-c', 'true'], base, base, undefined),
    ).toMatchObject({ kind: 'fork', setArgs: '+m -e -u -o pipefail' });
  });

  it.each([
    [['sh', '-ec', 'true'], 'not `bash'],
    [['bash', '-O', 'extglob', '-c', 'true'], 'not `bash'],
    [['bash', '-o', 'posix', '-c', 'true'], 'not `bash'],
    [['bash', '-c'], 'not `bash'],
    [['bash', '-i', '-c', 'true'], 'not `bash'],
    [['bash', '-x', '-c', 'true'], 'not `bash'],
    [['bash', '-o', 'xtrace', '-c', 'true'], 'not `bash'],
    [['bash', '-c', 'echo $$'], 'uses $$'],
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a JS template
    [['bash', '-c', 'echo ${$}'], 'uses $$'],
    [['bash', '-c', 'kill $PPID'], 'uses $$'],
    [['bash', '-c', 'case $- in *e*) ;; esac'], 'uses $$'],
  ])('%j gets a fresh shell (%s)', (argv, why) => {
    const s = shellStart(argv, base, base, undefined);
    expect(s.kind).toBe('exec');
    if (s.kind === 'exec') expect(s.why).toContain(why);
  });

  it.each([
    'BASH_ENV',
    'SHELLOPTS',
    'POSIXLY_CORRECT',
    'IFS',
    'BASH_FUNC_f%%',
    'BAD-NAME',
    '__mine',
    'UID',
  ])('an environment with %s gets a fresh shell: bash reads it when it starts', (name) => {
    const s = shellStart([...bash, 'true'], { ...base, [name]: 'x' }, base, undefined);
    expect(s).toMatchObject({ kind: 'exec' });
    if (s.kind === 'exec') expect(s.why).toContain(name);
  });

  it('only the names themselves count: $APPID or a default value keep a forked shell', () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a JS template
    for (const command of ['echo "$APPID"', 'echo "${x:-y}"', 'echo "a-b"'])
      expect(shellStart([...bash, command], base, base, undefined)).toMatchObject({ kind: 'fork' });
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a JS template
    expect(shellStart([...bash, 'echo ${PPID}'], base, base, undefined)).toMatchObject({ kind: 'exec' });
  });

  it('CHECKPOINT_LAUNCHER=exec turns it off', () => {
    expect(shellStart([...bash, 'true'], base, base, 'exec')).toMatchObject({ kind: 'exec' });
  });

  it("a step PATH that finds another bash gets a fresh shell; one that finds the launcher's does not", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-fork-path-'));
    try {
      await writeFile(join(dir, 'bash'), '#!/bin/sh\nexec /bin/sh "$@"\n');
      await chmod(join(dir, 'bash'), 0o755);
      const other = shellStart([...bash, 'true'], { ...base, PATH: `${dir}:${base.PATH}` }, base, undefined);
      expect(other).toMatchObject({ kind: 'exec' });
      const same = shellStart([...bash, 'true'], { ...base, PATH: `${base.PATH}:${dir}` }, base, undefined);
      expect(same).toMatchObject({ kind: 'fork' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts SHLVL up the way bash does, and keeps OLDPWD only when it names a directory', () => {
    const level = (v: string | undefined) => {
      const env = { ...base, SHLVL: v };
      if (v === undefined) delete env.SHLVL;
      const s = shellStart([...bash, 'true'], env, base, undefined);
      return s.kind === 'fork' ? s.set.find((x) => x.startsWith('SHLVL=')) : s.why;
    };
    expect([level('3'), level(undefined), level('x'), level('-4'), level('999')]).toEqual([
      'SHLVL=4',
      'SHLVL=1',
      'SHLVL=1',
      'SHLVL=0',
      'SHLVL=1',
    ]);
    const old = (v: string) => shellStart([...bash, 'true'], { ...base, OLDPWD: v }, base, undefined);
    expect(old('/')).toMatchObject({ set: expect.arrayContaining(['OLDPWD=/']) });
    expect(old('/no/such/dir')).toMatchObject({ set: expect.arrayContaining(['OLDPWD']) });
  });
});

describe('a forked shell is indistinguishable from `bash -c` for the unit', () => {
  let dir: string;
  let forked: LauncherPool;
  let fresh: LauncherPool;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ckpt-fork-'));
    await mkdir(join(dir, 'work'));
    await symlink(join(dir, 'work'), join(dir, 'link'));
    await mkdir(join(dir, 'a'));
    await mkdir(join(dir, 'b'));
    forked = new LauncherPool(base, join(dir, 'a'));
    fresh = new LauncherPool(base, join(dir, 'b'), 'exec');
  });

  afterAll(async () => {
    forked.close();
    fresh.close();
    await rm(dir, { recursive: true, force: true });
  });

  const fixed: NodeJS.ProcessEnv = { ...base, PLANVAR: 'a b', STEPVAR: "it's\n\\ $HOME", OLDPWD: '/' };
  delete fixed.LANG;

  async function runIn(
    pool: LauncherPool,
    command: string,
    argv = bash,
    cwd = join(dir, 'work'),
  ): Promise<{ exit: Awaited<UnitBackend['exited']>; stdout: string; stderr: string }> {
    const b = await pool.start(
      { argv: [...argv, command], cwd, env: new UnitEnv(fixed, { CHECKPOINT_TRY: '1' }) },
      0,
    );
    const out = { stdout: '', stderr: '' };
    b.setOutput((chunk, stream) => {
      out[stream] += chunk.toString('utf8');
    });
    return { exit: await b.exited, ...out };
  }

  async function both(command: string, argv = bash, cwd?: string) {
    return { forked: await runIn(forked, command, argv, cwd), fresh: await runIn(fresh, command, argv, cwd) };
  }

  it.each([
    [['bash', '-euo', 'pipefail', '-c'], 'echo "$UNSET_HERE"; echo not reached'],
    [['bash', '-f', '-c'], 'echo /*'],
    [['bash', '-C', '-c'], 'rm -f f.txt; echo a > f.txt; echo b > f.txt; echo "status $?"'],
    [['bash', '--noprofile', '--norc', '-c'], 'set -o | grep -E "^(errexit|pipefail|noglob)"'],
  ])('the options of %j apply to the command, and only to it', async (argv, command) => {
    const r = await both(command, argv);
    expect(r.forked).toEqual(r.fresh);
  });

  it('a working directory reached through a symlink: the same PWD and OLDPWD', async () => {
    const r = await both('echo "$PWD $OLDPWD"; pwd -L; pwd -P', bash, join(dir, 'link'));
    expect(r.forked).toEqual(r.fresh);
    expect(r.forked.stdout.split('\n')[0]).toBe(`${join(dir, 'work')} /`);
  });

  it('the forked one really is a subshell of the launcher, the fresh one a new bash', async () => {
    const r = await both('x=$BASHPID; tr "\\0" " " < /proc/$x/cmdline');
    expect(r.forked.stdout).toMatch(/^bash -c __req=/);
    expect(r.fresh.stdout).toMatch(/^bash -eo pipefail -c x=/);
  });

  it('the same variables, functions, options, traps, limits and environment', async () => {
    // Left out: variables that differ between any two processes or moments, PPID (the launcher's parent:
    // documented), and two that only say what ran before (PIPESTATUS, and BASH_ARGC, bash's debugger's).
    const probe = [
      "declare -p | grep -v -E '^declare -[-a-zA-Z]+ (BASHPID|RANDOM|SRANDOM|SECONDS|EPOCHREALTIME|EPOCHSECONDS|_|BASH_COMMAND|PPID|PIPESTATUS|BASH_ARGC)(=|$)'",
      'declare -f',
      'set -o',
      'shopt',
      'trap -p',
      'alias',
      'jobs',
      'umask',
      'ulimit -a',
      'pwd',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a JS template
      'echo "$0 $# $LINENO ${FUNCNAME[*]-none} ${BASH_LINENO[*]-none} $BASH_SUBSHELL"',
      "env | sort | grep -v '^_='",
      'f() { caller; }; f',
    ].join('\n');
    const r = await both(probe);
    expect(r.forked.exit).toEqual({ code: 0, signal: null });
    expect(r.forked.stderr).toBe('');
    expect(r.forked.stdout).toBe(r.fresh.stdout);
    expect(r.forked.stdout).toContain('declare -x STEPVAR=');
    expect(r.forked.stdout).toContain('CHECKPOINT_TRY=1');
    expect(r.forked.stdout).toContain('pipefail       \ton');
    // Nothing of the launcher leaks in.
    expect(r.forked.stdout).not.toMatch(/__req|__gone|execfail\s+on|SIGUSR/);
  });

  it.each([
    'false; echo not reached',
    'set +e; false; exit',
    'exit 7',
    'true; return 4; echo after',
    'false | true; echo not reached',
    'trap "echo bye" EXIT; echo hi; exit 3',
    'sleep 0.01 & wait $!; echo "waited $?"',
    'trap "echo usr2" USR2; kill -USR2 $BASHPID; echo after',
    'me=$BASHPID; trap "echo term; exit 5" TERM; sleep 5 & p=$!; (kill -TERM $me) & wait $p; echo after',
    'me=$BASHPID; (kill -TERM $me) & sleep 5; echo not reached',
    'read -r x; echo "read $?"',
    'echo "line $LINENO"\n\nno-such-command-here',
    'echo a\n\nif',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell code, not a JS template
    'f() { echo "${FUNCNAME[*]} ${BASH_LINENO[*]}"; exit 4; }; f',
    'echo out; echo err >&2; exec bash -c "exit 6"',
  ])('%j ends the same way with the same output', async (command) => {
    const r = await both(command);
    // bash names a syntax error's source: `-c` for its command string, `eval` for what it evaluates.
    expect({ ...r.forked, stderr: r.forked.stderr.replace('bash: eval: ', 'bash: -c: ') }).toEqual(r.fresh);
  });
});
