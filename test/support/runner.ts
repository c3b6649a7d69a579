// Runs the built action (dist/main/index.js, then dist/post/index.js) the way the GitHub runner does: the
// Node 24 binary, INPUT_* variables (every declared input, with action.yml's default when not given), fresh
// GITHUB_OUTPUT / GITHUB_STATE / GITHUB_STEP_SUMMARY files, main's saved state handed to post as STATE_*,
// and the runner's cancel sequence: SIGINT, 7.5 s, SIGTERM, 2.5 s, SIGKILL.
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from './cli.js';

const actionYml = parse(readFileSync(join(repoRoot, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { default?: string }>;
};

/** `name<<DELIM\nvalue\nDELIM` blocks (and plain `name=value` lines) of a runner file command. */
export function parseFileCommand(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name = '', delim] = heredoc;
      const value: string[] = [];
      for (i += 1; i < lines.length && lines[i] !== delim; i++) value.push(lines[i] ?? '');
      out[name] = value.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

export interface StepResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  state: Record<string, string>;
  summary: string;
  /** Lines of `::warning` / `::error` workflow commands, decoded. */
  warnings: string[];
  errors: string[];
}

export interface JobOptions {
  workspace: string;
  /** RUNNER_TEMP; a real runner empties it between jobs. */
  temp: string;
  inputs: Record<string, string>;
  /** The runner's environment (services.envFor(...)), plus anything else. */
  env: Record<string, string>;
  workflow?: string;
  job?: string;
}

function commands(out: string, name: string): string[] {
  return out
    .split('\n')
    .filter((l) => l.startsWith(`::${name}`))
    .map((l) =>
      l
        .slice(l.indexOf('::', 2) + 2)
        .replace(/%0A/g, '\n')
        .replace(/%0D/g, '\r')
        .replace(/%25/g, '%'),
    );
}

export interface RunningStep {
  child: ChildProcess;
  result: Promise<StepResult>;
  output(): string;
  waitForOutput(re: RegExp): Promise<void>;
  /** The runner's cancel: SIGINT, then SIGTERM after 7.5 s, SIGKILL after 2.5 s more. Resolves with the result. */
  cancel(): Promise<StepResult>;
}

const NODE = join(repoRoot, 'node_modules', 'node', 'bin', 'node');

function inputEnv(inputs: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, spec] of Object.entries(actionYml.inputs)) {
    const given = inputs[name];
    let value = given ?? String(spec.default ?? '');
    // action.yml's default is an expression the runner evaluates; here it is simply empty.
    if (value === ['$', '{{ github.token }}'].join('')) value = '';
    // The runner upper-cases the name and turns spaces (not dashes) into underscores.
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  }
  for (const name of Object.keys(inputs))
    if (!(name in actionYml.inputs))
      throw new Error(`test gives input "${name}", which action.yml does not declare`);
  return env;
}

export class Job {
  readonly o: JobOptions;
  #state: Record<string, string> = {};
  #n = 0;

  constructor(o: JobOptions) {
    this.o = o;
  }

  async #files() {
    const dir = join(this.o.temp, '_runner_file_commands');
    await mkdir(dir, { recursive: true });
    this.#n += 1;
    const f = (name: string) => join(dir, `${name}_${this.#n}`);
    const files = { output: f('set_output'), state: f('save_state'), summary: f('step_summary') };
    for (const p of Object.values(files)) await writeFile(p, '');
    return files;
  }

  /** Starts `main` or `post` of the built action. */
  async start(entry: 'main' | 'post'): Promise<RunningStep> {
    await mkdir(this.o.workspace, { recursive: true });
    await mkdir(this.o.temp, { recursive: true });
    const files = await this.#files();
    const stateEnv: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.#state)) stateEnv[`STATE_${k}`] = v;
    const child = spawn(NODE, [join(repoRoot, 'dist', entry, 'index.js')], {
      cwd: this.o.workspace,
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/tmp',
        CI: 'true',
        GITHUB_ACTIONS: 'true',
        GITHUB_WORKSPACE: this.o.workspace,
        RUNNER_TEMP: this.o.temp,
        GITHUB_WORKFLOW: this.o.workflow ?? 'ci',
        GITHUB_JOB: this.o.job ?? 'build',
        GITHUB_OUTPUT: files.output,
        GITHUB_STATE: files.state,
        GITHUB_STEP_SUMMARY: files.summary,
        ...this.o.env,
        ...inputEnv(this.o.inputs),
        ...stateEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const waiters: Array<{ re: RegExp; resolve: () => void }> = [];
    const check = () => {
      for (const w of [...waiters])
        if (w.re.test(stdout + stderr)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
    };
    child.stdout?.on('data', (c: Buffer) => {
      stdout += c.toString();
      check();
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr += c.toString();
      check();
    });
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (code, signal) => resolve([code, signal])),
    );
    const result = exited.then(async ([code, signal]) => {
      const state = parseFileCommand(await readFile(files.state, 'utf8'));
      if (entry === 'main') this.#state = state;
      return {
        code,
        signal,
        stdout,
        stderr,
        outputs: parseFileCommand(await readFile(files.output, 'utf8')),
        state,
        summary: await readFile(files.summary, 'utf8'),
        warnings: commands(stdout, 'warning'),
        errors: commands(stdout, 'error'),
      };
    });
    return {
      child,
      result,
      output: () => stdout + stderr,
      waitForOutput: (re) =>
        new Promise<void>((resolve, reject) => {
          if (re.test(stdout + stderr)) return resolve();
          waiters.push({ re, resolve });
          void exited.then(() => {
            if (!re.test(stdout + stderr))
              reject(new Error(`exited before output matched ${re}:\n${stdout}${stderr}`));
          });
        }),
      cancel: async () => {
        const gone = () => child.exitCode !== null || child.signalCode !== null;
        const within = (ms: number) =>
          Promise.race([
            exited.then(() => true),
            new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref()),
          ]);
        child.kill('SIGINT');
        if (!(await within(7500)) && !gone()) {
          child.kill('SIGTERM');
          if (!(await within(2500)) && !gone()) child.kill('SIGKILL');
        }
        return result;
      },
    };
  }

  /** main to its end, then post, as a job whose step is not cancelled. */
  async run(): Promise<{ main: StepResult; post: StepResult }> {
    const main = await (await this.start('main')).result;
    const post = await (await this.start('post')).result;
    return { main, post };
  }
}
