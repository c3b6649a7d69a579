// Runs the `checkpoint` CLI from src/ as a real child process (Node 24 strips the types), in temp projects.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const register = join(repoRoot, 'test/support/register.mjs');
const entry = join(repoRoot, 'src/cli/index.ts');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Project {
  dir: string;
  plan: string;
  /** Where units write their side effects: outside the checkpoint, as a real job's would be. */
  effects: string;
  cleanup(): Promise<void>;
}

export async function tempProject(planYaml: string, prefix = 'ckpt-'): Promise<Project> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const plan = join(dir, 'checkpoint.yml');
  await writeFile(plan, planYaml);
  return {
    dir,
    plan,
    effects: join(dir, 'effects.log'),
    // Retried: a unit the engine has just SIGKILLed may still be going away (and its files with it).
    cleanup: () => rm(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }),
  };
}

export interface Started {
  child: ChildProcess;
  result: Promise<CliResult>;
  /** Resolves when the combined output matches. */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  output(): string;
}

export function startCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Started {
  const child = spawn(process.execPath, ['--no-warnings', '--import', register, entry, ...args], {
    cwd: opts.cwd,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
  const check = () => {
    for (const w of [...waiters]) {
      if (w.re.test(stdout + stderr)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    check();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    check();
  });
  const result = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => res({ code, signal, stdout, stderr }));
  });
  return {
    child,
    result,
    output: () => stdout + stderr,
    waitForOutput(re, timeoutMs = 30_000) {
      return new Promise<void>((res, rej) => {
        if (re.test(stdout + stderr)) return res();
        const t = setTimeout(
          () => rej(new Error(`timed out waiting for ${re} in output:\n${stdout}${stderr}`)),
          timeoutMs,
        );
        waiters.push({
          re,
          resolve: () => {
            clearTimeout(t);
            res();
          },
        });
        void result.then(() => {
          // The process ended: a last look, then give up.
          setImmediate(() => {
            if (re.test(stdout + stderr)) res();
            else rej(new Error(`process ended before ${re} appeared:\n${stdout}${stderr}`));
          });
        });
      });
    },
  };
}

export function runCli(args: string[], opts: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<CliResult> {
  return startCli(args, opts).result;
}

/** Polls a condition (a file's content, a process's existence): waits on the event, not on a fixed sleep. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 30_000,
  what = 'condition',
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function readLines(path: string): Promise<string[]> {
  try {
    return (await readFile(path, 'utf8')).split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** A zombie (exited, not yet reaped — containers' pid 1 may never reap) counts as gone. */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

export interface StatusJson {
  runId: string;
  complete: boolean;
  units: { total: number; done: number; failed: number; remaining: number };
  steps: Array<{
    id: string;
    state: string;
    units: { total: number; done: number; failed: number; remaining: number };
    done: Array<[number, number]>;
    failed: Array<{ start: number; end: number; reason: string; tries: number }>;
    interrupted: Array<[number, number]>;
    outputs: Record<string, string>;
  }>;
}

export async function status(p: Project, extra: string[] = []): Promise<StatusJson> {
  const r = await runCli(['status', '--json', ...extra], { cwd: p.dir });
  if (r.code !== 0) throw new Error(`status failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout) as StatusJson;
}

/**
 * Temp projects for one test file, removed after each test: `const project = useProjects()`, then
 * `await project(yaml)` inside a test.
 */
export function useProjects(): (yaml: string) => Promise<Project> {
  let projects: Project[] = [];
  afterEach(async () => {
    await Promise.all(projects.map((p) => p.cleanup()));
    projects = [];
  });
  return async (yaml: string) => {
    const p = await tempProject(yaml);
    projects.push(p);
    return p;
  };
}

/** The engine's watcher (src/exec/watcher.ts): the bash named checkpoint-watcher whose parent is `engine`. */
export function watcherOf(engine: number): number | undefined {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const cmd = readFileSync(`/proc/${e}/cmdline`, 'utf8');
      const stat = readFileSync(`/proc/${e}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (cmd.includes('checkpoint-watcher') && ppid === engine) return Number(e);
    } catch {
      // Gone meanwhile.
    }
  }
  return undefined;
}
