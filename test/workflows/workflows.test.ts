// The repository's workflows, the example workflows (examples/*/workflow.yml) and action.yml, checked with
// GitHub's own parser (@actions/workflow-parser): schema errors, expression contexts, the jobs and steps we rely
// on, and that every `with:` given to the action (`uses: ./` here, `uses: org/checkpoint-action@v1` in the
// examples) is an input action.yml declares. A broken workflow must fail the same check.
import { existsSync, readdirSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { register } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { TemplateParseResult, WorkflowTemplate } from '@actions/workflow-parser';
import type { ActionTemplate } from '@actions/workflow-parser/actions/index';
import { afterAll, describe, expect, it } from 'vitest';
import { runCommand } from '../../src/cli/run.js';
import { parseDuration } from '../../src/plan/duration.js';
import { loadPlan } from '../../src/plan/load.js';
import { repoRoot } from '../support/cli.js';

// @actions/workflow-parser imports its JSON schemas without `with { type: 'json' }`, which bundlers accept and
// Node refuses ("needs an import attribute"). This hook hands those files to Node as ES modules, in this test
// process only, before the parser is first imported.
const JSON_SCHEMA_AS_MODULE = `
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
export async function load(url, context, next) {
  if (url.startsWith('file:') && url.endsWith('.json') && url.includes('/@actions/workflow-parser/')) {
    const json = readFileSync(fileURLToPath(url), 'utf8');
    return { format: 'module', source: 'export default ' + json + ';', shortCircuit: true };
  }
  return next(url, context);
}`;
register(`data:text/javascript,${encodeURIComponent(JSON_SCHEMA_AS_MODULE)}`);
const {
  convertWorkflowTemplate,
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
  NoOperationTraceWriter,
  parseWorkflow,
} = await import('@actions/workflow-parser');
const { convertActionTemplate, parseAction } = await import('@actions/workflow-parser/actions/index');

type Token = NonNullable<TemplateParseResult['value']>;
type Plain = string | number | boolean | null | Plain[] | { [key: string]: Plain };

const ACTION_YML = join(repoRoot, 'action.yml');
const hasAction = existsSync(ACTION_YML);

/** The repository's own workflows, which use the action as `uses: ./`. */
const REPO_WORKFLOWS = ['.github/workflows/ci.yml', '.github/workflows/example.yml'];
/** Every examples/<x>/workflow.yml: what users copy, with `uses: org/checkpoint-action@v1`. */
const EXAMPLE_WORKFLOWS = readdirSync(join(repoRoot, 'examples'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(repoRoot, 'examples', d.name, 'workflow.yml')))
  .map((d) => `examples/${d.name}/workflow.yml`)
  .sort();
const ALL_WORKFLOWS = [...REPO_WORKFLOWS, ...EXAMPLE_WORKFLOWS];

/** DESIGN §6: the action's inputs and outputs. */
const DESIGN_INPUTS = [
  'file',
  'run',
  'store',
  'key',
  'time-budget',
  'save-every',
  'on-incomplete',
  'concurrency',
  'shard',
  'paths',
  'signing-key',
  'reset',
  'max-continuations',
  'command',
  'github-token',
];
const DESIGN_DEFAULTS: Record<string, string> = {
  file: 'checkpoint.yml',
  store: 'cache',
  'save-every': '5m',
  'on-incomplete': 'fail',
  'max-continuations': '10',
  command: 'run',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a GitHub Actions expression, not a JS template
  'github-token': '${{ github.token }}',
};
const DESIGN_OUTPUTS = [
  'complete',
  'resumed',
  'run-id',
  'steps-done',
  'steps-remaining',
  'units-done',
  'units-remaining',
  'outputs',
  'checkpoint-key',
];

/** The token tree as plain data; expressions as the `${{ … }}` text a reader wrote. */
function plain(t: Token): Plain {
  if (isMapping(t)) {
    const out: { [key: string]: Plain } = {};
    for (const pair of t) out[pair.key.toString()] = plain(pair.value);
    return out;
  }
  if (isSequence(t)) return [...t].map(plain);
  if (isBasicExpression(t)) return `\${{ ${t.expression} }}`;
  if (isString(t) || isNumber(t) || isBoolean(t)) return t.value;
  return null;
}

interface Parsed {
  errors: string[];
  template: WorkflowTemplate;
  raw: { [key: string]: Plain };
}

async function parseWorkflowText(name: string, content: string): Promise<Parsed> {
  const result = parseWorkflow({ name, content }, new NoOperationTraceWriter());
  const template = await convertWorkflowTemplate(result.context, result.value as Token);
  const errors = [
    ...result.context.errors.getErrors().map((e) => e.message),
    ...(template.errors ?? []).map((e) => e.Message),
  ];
  const raw = result.value ? plain(result.value) : {};
  return { errors: [...new Set(errors)], template, raw: raw as { [key: string]: Plain } };
}

async function parseWorkflowFile(rel: string): Promise<Parsed> {
  return parseWorkflowText(rel, await readFile(join(repoRoot, rel), 'utf8'));
}

function parseActionFile(content: string): { errors: string[]; action: ActionTemplate | undefined } {
  const result = parseAction({ name: 'action.yml', content }, new NoOperationTraceWriter());
  const errors = result.context.errors.getErrors().map((e) => e.message);
  const action = result.value ? convertActionTemplate(result.context, result.value) : undefined;
  return { errors, action };
}

interface RawStep {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  if?: string;
  with?: { [key: string]: Plain };
  env?: { [key: string]: Plain };
}

function jobSteps(p: Parsed, job: string): RawStep[] {
  const jobs = p.raw.jobs as { [key: string]: { steps?: RawStep[] } };
  return jobs[job]?.steps ?? [];
}

/** This action: `./` in this repository, `org/checkpoint-action@<ref>` as users (and the examples) write it. */
function isSelf(uses: string | undefined): boolean {
  return uses === './' || /^org\/checkpoint-action@[\w.-]+$/.test(uses ?? '');
}

function selfSteps(p: Parsed): RawStep[] {
  const jobs = p.raw.jobs as { [key: string]: { steps?: RawStep[] } };
  return Object.values(jobs).flatMap((j) => (j.steps ?? []).filter((s) => isSelf(s.uses)));
}

interface RawJob {
  'timeout-minutes'?: Plain;
  permissions?: Plain;
  steps?: RawStep[];
}

function rawJobs(p: Parsed): { [key: string]: RawJob } {
  return p.raw.jobs as { [key: string]: RawJob };
}

/** action.yml converted; throws with the parser's messages when it does not parse, so later checks say why. */
async function loadAction(): Promise<ActionTemplate> {
  const { errors, action } = parseActionFile(await readFile(ACTION_YML, 'utf8'));
  if (errors.length > 0 || !action) throw new Error(`action.yml does not parse:\n${errors.join('\n')}`);
  return action;
}

describe('.github/workflows/ci.yml', () => {
  it('parses without errors and has the jobs and steps CI relies on', async () => {
    const p = await parseWorkflowFile('.github/workflows/ci.yml');
    expect(p.errors).toEqual([]);
    expect(Object.keys(p.template.events).sort()).toEqual(['pull_request', 'push']);
    expect(p.template.jobs.map((j) => j.id.value)).toEqual(['check', 'action']);
    expect(p.raw.permissions).toEqual({ contents: 'read' });

    const check = jobSteps(p, 'check');
    expect(check.map((s) => s.uses).filter(Boolean)).toEqual([
      'actions/checkout@v5',
      'actions/setup-node@v5',
    ]);
    // The workflow schema reads `with:` values as strings.
    expect(check.find((s) => s.uses === 'actions/setup-node@v5')?.with?.['node-version']).toBe('24');
    expect(check.map((s) => s.run).filter(Boolean)).toEqual([
      'npm ci',
      'npm run lint',
      'npm run typecheck',
      'npm test',
      'npm run check-dist',
    ]);

    const jobs = p.raw.jobs as { [key: string]: { needs?: Plain; permissions?: Plain } };
    expect(jobs.action?.needs).toBe('check');
    // Nothing in CI dispatches: no job may ask for more than the workflow's read-only token.
    for (const job of Object.values(jobs)) expect(job.permissions).toBeUndefined();
    const self = selfSteps(p);
    expect(self.length).toBeGreaterThan(0);
    for (const s of self) expect(s.with?.file).toBe('examples/action/checkpoint.yml');
  });
});

describe('.github/workflows/example.yml', () => {
  it('parses without errors and shows the action with dispatch continuation', async () => {
    const p = await parseWorkflowFile('.github/workflows/example.yml');
    expect(p.errors).toEqual([]);
    expect(Object.keys(p.template.events).sort()).toEqual(['push', 'workflow_dispatch']);
    expect(p.raw.permissions).toEqual({ actions: 'write', contents: 'read' });
    const job = (p.raw.jobs as { [key: string]: { 'timeout-minutes'?: Plain } }).backfill;
    expect(job?.['timeout-minutes']).toBe(30);

    const [self] = selfSteps(p);
    expect(self?.id).toBe('backfill');
    expect(self?.with).toMatchObject({
      file: 'examples/action/checkpoint.yml',
      'time-budget': '25m',
      'on-incomplete': 'dispatch',
    });
    // Dispatched runs have new run ids: only an explicit key lets them resume the same checkpoint.
    expect(self?.with?.key).toBeTruthy();
    // A later step reads the action's outputs.
    const later = jobSteps(p, 'backfill').slice(jobSteps(p, 'backfill').indexOf(self as RawStep) + 1);
    expect(later.some((s) => s.if?.includes('steps.backfill.outputs.complete'))).toBe(true);
  });
});

describe('examples/action/checkpoint.yml', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('is a valid plan that runs to completion with the real engine', async () => {
    const source = await readFile(join(repoRoot, 'examples/action/checkpoint.yml'), 'utf8');
    const dir = await mkdtemp(join(tmpdir(), 'ckpt-example-'));
    dirs.push(dir);
    const file = join(dir, 'checkpoint.yml');
    await writeFile(file, source);
    const plan = await loadPlan(file);
    expect(plan.steps.map((s) => s.id)).toEqual(['setup', 'backfill', 'report']);
    const sink = new PassThrough();
    sink.resume();
    const code = await runCommand({ file }, { out: sink, err: sink, env: { ...process.env, CI: 'true' } });
    expect(code).toBe(0);
    const runId = (await readFile(join(dir, '.checkpoints', 'latest'), 'utf8')).trim();
    const outputs = JSON.parse(await readFile(join(dir, '.checkpoints', runId, 'outputs.json'), 'utf8'));
    // The sum of 0 … 99999, from 20 chunks' state files.
    expect(outputs.report).toEqual({ total: '4999950000' });
  });
});

/** The example's folder, e.g. `examples/quickstart` for `examples/quickstart/workflow.yml`. */
function exampleDir(rel: string): string {
  return rel.slice(0, rel.lastIndexOf('/'));
}

/** Runs a copy of an example folder with the real engine (CLI, in-process); returns the exit code and outputs. */
async function runExample(
  dir: string,
  env: Record<string, string> = {},
  edit: (plan: string) => string = (plan) => plan,
): Promise<{ code: number; outputs: { [step: string]: { [key: string]: string } } }> {
  const work = await mkdtemp(join(tmpdir(), 'ckpt-example-'));
  try {
    await cp(join(repoRoot, dir), work, {
      recursive: true,
      filter: (src) => !/[/\\](\.checkpoints|data|out)$/.test(src),
    });
    const sink = new PassThrough();
    sink.resume();
    const file = join(work, 'checkpoint.yml');
    await writeFile(file, edit(await readFile(file, 'utf8')));
    const code = await runCommand(
      { file },
      { out: sink, err: sink, env: { ...process.env, CI: 'true', ...env } },
    );
    const runId = (await readFile(join(work, '.checkpoints', 'latest'), 'utf8')).trim();
    const outputs = JSON.parse(await readFile(join(work, '.checkpoints', runId, 'outputs.json'), 'utf8'));
    return { code, outputs };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

describe('examples/*/workflow.yml (what users copy, with uses: org/checkpoint-action@v1)', () => {
  it('include the three user stories', () => {
    expect(EXAMPLE_WORKFLOWS).toEqual(
      expect.arrayContaining([
        'examples/migration-across-runs/workflow.yml',
        'examples/quickstart/workflow.yml',
        'examples/rerun-failed/workflow.yml',
      ]),
    );
  });

  it.each(
    EXAMPLE_WORKFLOWS,
  )('%s parses, uses the action, and its time-budget ends before timeout-minutes', async (rel) => {
    const p = await parseWorkflowFile(rel);
    expect(p.errors).toEqual([]);
    expect(selfSteps(p).length).toBeGreaterThan(0);
    for (const [id, job] of Object.entries(rawJobs(p))) {
      for (const step of (job.steps ?? []).filter((s) => isSelf(s.uses))) {
        const budget = step.with?.['time-budget'];
        if (budget === undefined) continue;
        const limit = job['timeout-minutes'];
        expect(
          typeof limit,
          `${rel}: jobs.${id} sets a time-budget, so it needs a numeric timeout-minutes`,
        ).toBe('number');
        expect(parseDuration(String(budget)), `${rel}: jobs.${id}: time-budget ${budget}`).toBeLessThan(
          Number(limit) * 60_000,
        );
      }
    }
  });

  it.each(EXAMPLE_WORKFLOWS)('%s: its folder has a README.md and a valid checkpoint.yml', async (rel) => {
    const dir = exampleDir(rel);
    expect(existsSync(join(repoRoot, dir, 'README.md')), `${dir}/README.md`).toBe(true);
    const plan = join(repoRoot, dir, 'checkpoint.yml');
    if (existsSync(plan)) await expect(loadPlan(plan)).resolves.toBeTruthy();
  });

  it('rerun-failed: default per-run key, on-incomplete fail, done steps’ files carried in paths', async () => {
    const p = await parseWorkflowFile('examples/rerun-failed/workflow.yml');
    expect(p.raw.permissions).toEqual({ contents: 'read' });
    const [self, ...more] = selfSteps(p);
    expect(more).toEqual([]);
    // No key: attempts of one workflow run resume each other ("Re-run failed jobs"); new runs start fresh.
    expect(self?.with?.key).toBeUndefined();
    expect(self?.with?.['on-incomplete'] ?? 'fail').toBe('fail');
    expect(self?.with?.['time-budget']).toBeTruthy();
    // The plan sits at the repository root: the action's default file.
    expect(self?.with?.file ?? 'checkpoint.yml').toBe('checkpoint.yml');
    expect(String(self?.with?.paths).split('\n')).toContain('dist/');

    const plan = await loadPlan(join(repoRoot, 'examples/rerun-failed/checkpoint.yml'));
    expect(plan.steps.map((s) => s.id)).toEqual(['install', 'build', 'test', 'package']);
    const byId = new Map(plan.steps.map((s) => [s.id, s]));
    expect(byId.get('install')?.always).toBe(true);
    // A step with work left waits for an `always` step only if it needs it directly (docs/plan.md#always).
    for (const id of ['test', 'package']) expect(byId.get(id)?.needs, id).toContain('install');
    expect(byId.get('test')?.batch).toBeTruthy();
  });

  it('migration-across-runs: explicit key, dispatch with actions: write, max-continuations, signing-key', async () => {
    const p = await parseWorkflowFile('examples/migration-across-runs/workflow.yml');
    expect(Object.keys(p.template.events)).toContain('workflow_dispatch');
    expect(p.raw.permissions).toMatchObject({ actions: 'write' });
    expect(p.raw.concurrency).toMatchObject({ 'cancel-in-progress': false });
    const [self, ...more] = selfSteps(p);
    expect(more).toEqual([]);
    expect(self?.with).toMatchObject({
      'on-incomplete': 'dispatch',
      'max-continuations': expect.any(String),
    });
    expect(self?.with?.key).toBeTruthy();
    expect(self?.with?.['time-budget']).toBeTruthy();
    expect(self?.with?.['signing-key']).toMatch(/secrets\./);
  });

  it('migration-across-runs: the plan runs to completion with the real engine (range cut to 10 chunks)', async () => {
    const shorter = (plan: string) => {
      expect(plan).toContain('to: 40000000');
      return plan.replace('to: 40000000', 'to: 1000000');
    };
    const { code, outputs } = await runExample(
      'examples/migration-across-runs',
      { CHUNK_SECONDS: '0' },
      shorter,
    );
    expect(code).toBe(0);
    expect(outputs).toEqual({});
  });

  it('quickstart: the workflow runs the quickstart plan and carries its data/ and out/', async () => {
    const p = await parseWorkflowFile('examples/quickstart/workflow.yml');
    const [self] = selfSteps(p);
    expect(self?.with?.file).toBe('examples/quickstart/checkpoint.yml');
    expect(String(self?.with?.paths).trim().split('\n')).toEqual([
      'examples/quickstart/data/',
      'examples/quickstart/out/',
    ]);
    const { code, outputs } = await runExample('examples/quickstart');
    expect(code).toBe(0);
    // 2000 numbers (i*i + 7) % 1009 summed in 20 chunks.
    expect(outputs.report).toEqual({ total: '1000711' });
  });
});

describe('the parser check is real', () => {
  it('reports errors for a broken workflow', async () => {
    const p = await parseWorkflowText(
      'broken.yml',
      `on: push
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: soon
    steps:
      - uses: actions/checkout@v5
        run: echo both
      - run: echo \${{ secretz.TOKEN }}
    stepz: []
`,
    );
    expect(p.errors.length).toBeGreaterThanOrEqual(3);
    const all = p.errors.join('\n');
    expect(all).toMatch(/stepz/);
    expect(all).toMatch(/secretz/);
  });

  it('reports errors for a broken action.yml', () => {
    const { errors } = parseActionFile(`name: x
description: y
runs:
  using: node99
  main: index.js
inputs:
  a:
    descriptoin: typo
`);
    expect(errors.length).toBeGreaterThan(0);
  });
});

/** action.yml is written separately; until it exists these are reported as skipped, not passed. */
const itWithAction = it.skipIf(!hasAction);

describe(`action.yml${hasAction ? '' : ' (skipped: action.yml does not exist yet)'}`, () => {
  itWithAction('parses without errors as a node24 action with main, post and post-if: always()', async () => {
    const { errors, action } = parseActionFile(await readFile(ACTION_YML, 'utf8'));
    expect(errors).toEqual([]);
    expect(action?.runs).toMatchObject({
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js',
    });
    // `always()` and `${{ always() }}` are the same condition.
    const postIf = action?.runs.using === 'node24' ? action.runs.postIf : undefined;
    expect(postIf?.replace(/^\$\{\{\s*|\s*\}\}$/g, '')).toBe('always()');
  });

  itWithAction(
    'declares every input and output of DESIGN §6, each input described, with the documented defaults',
    async () => {
      const action = await loadAction();
      const inputs = action.inputs ?? [];
      expect(inputs.map((i) => i.id)).toEqual(expect.arrayContaining(DESIGN_INPUTS));
      for (const input of inputs) expect(input.description?.trim(), `input ${input.id}`).toBeTruthy();
      expect((action.outputs ?? []).map((o) => o.id)).toEqual(expect.arrayContaining(DESIGN_OUTPUTS));
      for (const [id, value] of Object.entries(DESIGN_DEFAULTS)) {
        const token = inputs.find((i) => i.id === id)?.default;
        const text = token && isBasicExpression(token) ? `\${{ ${token.expression} }}` : token?.toString();
        expect(text, `default of input ${id}`).toBe(value);
      }
    },
  );

  itWithAction(
    'every with: key given to the action in the workflows and examples is a declared input',
    async () => {
      const declared = ((await loadAction()).inputs ?? []).map((i) => i.id);
      for (const rel of ALL_WORKFLOWS) {
        const p = await parseWorkflowFile(rel);
        for (const step of selfSteps(p))
          for (const key of Object.keys(step.with ?? {}))
            expect(declared, `${rel}: with.${key}`).toContain(key);
      }
    },
  );
});

describe('with: keys against DESIGN §6 (holds with or without action.yml)', () => {
  it('every with: key given to the action (workflows and examples) is an input DESIGN §6 names', async () => {
    for (const rel of ALL_WORKFLOWS) {
      const p = await parseWorkflowFile(rel);
      for (const step of selfSteps(p))
        for (const key of Object.keys(step.with ?? {}))
          expect(DESIGN_INPUTS, `${rel}: with.${key}`).toContain(key);
    }
  });
});
