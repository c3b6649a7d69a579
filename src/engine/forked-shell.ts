// Starting `bash` costs about a millisecond of CPU per unit (exec, dynamic linking, importing the
// environment), most of what a no-op unit costs. A launcher is itself a bash that has paid that once: for a
// plain `bash [-e] [-o pipefail] ... -c COMMAND` it can fork a subshell, make it look like a freshly started
// `bash -c` (the unit's environment, options, $0, no launcher variables, functions or traps) and `eval` the
// command there, instead of exec'ing a new bash. That is a "forked shell" start; anything this module cannot
// vouch for gets a fresh shell as before ("exec" start). docs/plan.md lists what differs for a unit.
import { statSync } from 'node:fs';
import { basename } from 'node:path';
import { resolveProgram } from './process.js';

/** How the launcher starts a step's units. */
export type ShellStart =
  | {
      kind: 'fork';
      /** `$0` of the unit's shell: what a fresh bash would have (its argv[0]). */
      argv0: string;
      /** Words for `set` in the subshell, e.g. `+m -e -o pipefail` (never empty). */
      setArgs: string;
      /** The command string (what `bash -c` would run). */
      command: string;
      /** Variables to export in the subshell (NAME=value, or NAME alone: exported without a value). */
      set: string[];
      /** Variables of the launcher's own environment the unit does not have. */
      unset: string[];
    }
  | { kind: 'exec'; why: string };

/**
 * `set -o` names a forked shell applies itself; any other option means a fresh shell. Not xtrace and verbose:
 * they would also print the subshell's own last steps, which a fresh shell does not have.
 */
const SET_O = new Set(['errexit', 'pipefail', 'nounset', 'noglob', 'noclobber', 'allexport']);
/** Single-letter options `set` takes like bash's command line does (the same, minus -x and -v). */
const SET_LETTERS = new Set(['e', 'u', 'f', 'C', 'a']);

// Variables bash treats specially when it starts (reads them to set options, runs files, imports functions,
// or sets them itself and ignores the environment): a unit whose environment has one gets a fresh shell.
const STARTUP = new Set([
  'BASH_ENV',
  'ENV',
  'SHELLOPTS',
  'BASHOPTS',
  'POSIXLY_CORRECT',
  'POSIX_PEDANTIC',
  'IFS',
  'PS4',
  'UID',
  'EUID',
  'PPID',
  'BASHPID',
  'BASH_ARGV0',
  'BASH_SUBSHELL',
  'BASH_EXECUTION_STRING',
  'BASH_XTRACEFD',
  'BASH_COMPAT',
  'BASH_LOADABLES_PATH',
  'RANDOM',
  'SRANDOM',
  'SECONDS',
  'LINENO',
  'HISTCMD',
  'EPOCHSECONDS',
  'EPOCHREALTIME',
  'GROUPS',
  'FUNCNAME',
  'DIRSTACK',
  'OPTIND',
  'OPTERR',
  'OPTARG',
]);

// What a forked shell cannot reproduce: `$$` and `PPID` are the launcher's, `$-` lacks `c`. A command that
// names them itself gets a fresh shell. (Code it sources is not looked at: docs/plan.md says so.)
const NEEDS_OWN_PROCESS = /\$\$|\$\{[#!]?\$\}|\$\{?PPID\b|\$-|\$\{-\}/;

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Parses `bash OPTIONS -c` (the shell's argv without the command); undefined: not one a fork can mimic. */
function setArgsOf(prefix: readonly string[]): string | undefined {
  if (basename(prefix[0] ?? '') !== 'bash' || prefix[prefix.length - 1] !== '-c') return undefined;
  const words = ['+m'];
  for (let i = 1; i < prefix.length - 1; i++) {
    const arg = prefix[i] ?? '';
    if (arg === '--noprofile' || arg === '--norc') continue; // what a non-interactive `bash -c` does anyway
    if (!/^-[A-Za-z]+$/.test(arg)) return undefined;
    for (const letter of arg.slice(1)) {
      if (letter === 'o') {
        i += 1;
        const name = prefix[i];
        if (name === undefined || i >= prefix.length - 1 || !SET_O.has(name)) return undefined;
        words.push('-o', name);
      } else if (SET_LETTERS.has(letter)) words.push(`-${letter}`);
      else return undefined;
    }
  }
  return words.join(' ');
}

/** Variables bash sets itself in the launcher (and `_`, after every command): never taken from it as they are. */
export const BASH_SETS: readonly string[] = ['PWD', 'OLDPWD', 'SHLVL', '_'];

/**
 * What turns the launcher's environment `base` into `env`: NAME=value to export and names to unset, leaving
 * out the names in `skip`, which the caller handles itself.
 */
export function envDelta(
  env: Readonly<NodeJS.ProcessEnv>,
  base: Readonly<NodeJS.ProcessEnv>,
  skip: readonly string[],
): { set: string[]; unset: string[] } {
  const set: string[] = [];
  const unset: string[] = [];
  for (const [k, v] of Object.entries(env))
    if (v !== undefined && base[k] !== v && !skip.includes(k)) set.push(`${k}=${v}`);
  for (const k of Object.keys(base)) if (env[k] === undefined && !skip.includes(k)) unset.push(k);
  return { set, unset };
}

/** Where `bash` is found on `path` (undefined: nowhere). */
export function whichBash(path: string | undefined): string | undefined {
  const found = resolveProgram('bash', path);
  return found === 'bash' ? undefined : found;
}

function sameFile(a: string, b: string): boolean {
  if (a === b) return true;
  try {
    const x = statSync(a);
    const y = statSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** bash's rule for the SHLVL a new shell sets: one more than a numeric value it was given, else 1. */
function nextShellLevel(value: string | undefined): string {
  const n = /^\s*-?\d+\s*$/.test(value ?? '') ? Number.parseInt(value ?? '0', 10) : 0;
  if (n < 0) return '0';
  return n + 1 >= 1000 ? '1' : String(n + 1);
}

/**
 * How the launcher whose own environment is `launcherEnv` starts units of `argv` (the shell's argv and the
 * command) with the step's environment `env`. `mode`: CHECKPOINT_LAUNCHER (`exec` turns forked shells off).
 */
export function shellStart(
  argv: readonly string[],
  env: Readonly<NodeJS.ProcessEnv>,
  launcherEnv: Readonly<NodeJS.ProcessEnv>,
  mode: string | undefined,
): ShellStart {
  if (mode === 'exec') return { kind: 'exec', why: 'CHECKPOINT_LAUNCHER=exec' };
  const command = argv[argv.length - 1] ?? '';
  const setArgs = setArgsOf(argv.slice(0, -1));
  if (setArgs === undefined) return { kind: 'exec', why: 'the shell is not `bash [options] -c`' };
  if (NEEDS_OWN_PROCESS.test(command)) return { kind: 'exec', why: 'the command uses $$, PPID or $-' };
  const names = [...Object.keys(env), ...Object.keys(launcherEnv)];
  const odd = names.find(
    (k) => !IDENT.test(k) || k.startsWith('__') || k.startsWith('BASH_FUNC_') || STARTUP.has(k),
  );
  if (odd !== undefined)
    return { kind: 'exec', why: `the environment has ${odd}, which bash reads when it starts` };
  // The launcher runs the bash its PATH finds; the unit's must be that one.
  const own = whichBash(launcherEnv.PATH);
  const shell = argv[0] === 'bash' ? (env.PATH === launcherEnv.PATH ? own : whichBash(env.PATH)) : argv[0];
  if (own === undefined || shell === undefined || !sameFile(shell, own))
    return { kind: 'exec', why: `the shell ${argv[0]} is not the launcher's bash (${own})` };

  const { set, unset } = envDelta(env, launcherEnv, BASH_SETS);
  // A new bash sets PWD itself (the subshell's `cd` does), keeps an OLDPWD that names a directory and
  // otherwise exports OLDPWD without a value, and counts SHLVL up.
  const oldpwd = env.OLDPWD;
  if (oldpwd !== undefined && isDirectory(oldpwd)) set.push(`OLDPWD=${oldpwd}`);
  else {
    unset.push('OLDPWD');
    set.push('OLDPWD');
  }
  set.push(`SHLVL=${nextShellLevel(env.SHLVL)}`);
  return { kind: 'fork', argv0: argv[0] ?? 'bash', setArgs, command, set, unset };
}
