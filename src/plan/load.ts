// checkpoint.yml → Plan: YAML parsing, schema validation, checks across steps (ids, needs, cycles) and
// normalisation (defaults applied, paths resolved). Everything that can go wrong here is a PlanError.

import { readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LineCounter, parseDocument, visit, type YAMLError } from 'yaml';
import { PlanError } from './errors.js';
import {
  didYouMean,
  fallbackMessage,
  formatIssues,
  formatPath,
  planSchema,
  type RawBatch,
  type RawPlan,
  type RawRetry,
  STEP_ID_PATTERN,
} from './schema.js';
import type { AdaptiveSize, BatchSpec, Plan, RetryPolicy, Shell, Step } from './types.js';

export interface LoadOptions {
  /** Concurrency when the plan sets none; default: `os.availableParallelism()`. */
  defaultConcurrency?: number;
  /**
   * Overrides the plan's `concurrency` (the CLI's `--concurrency`). Given here rather than patched in
   * afterwards because batch steps without `parallel` inherit the plan's concurrency.
   */
  concurrency?: number;
  /** The folder that anchors relative paths; default: the plan file's folder. */
  dir?: string;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = {
  attempts: 1,
  delayMs: 1_000,
  backoff: 2,
  maxDelayMs: 60_000,
};

/** The file as shown in messages: relative to the working directory, or as given when that is shorter. */
export function displayFile(file: string): string {
  const rel = path.relative(process.cwd(), path.resolve(file));
  if (rel === '') return file;
  return rel.length <= file.length ? rel : file;
}

/** argv prefix for a `shell:` value; the command text is appended as the last argument. */
export function shellArgv(spec: string): string[] {
  if (spec === 'bash') return ['bash', '-eo', 'pipefail', '-c'];
  if (spec === 'sh') return ['sh', '-ec'];
  return spec.trim().split(/\s+/);
}

/** Reads and parses a plan file. A missing or unreadable file is a PlanError too. */
export async function loadPlan(file: string, opts: LoadOptions = {}): Promise<Plan> {
  const shown = displayFile(file);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') throw new PlanError(`${shown}: file not found; create it or pass -f PATH`);
    if (code === 'EISDIR') throw new PlanError(`${shown}: is a directory; pass the plan file with -f PATH`);
    throw new PlanError(`${shown}: cannot read the file (${code ?? String(err)})`);
  }
  // A plan piped in (`-f <(generate-plan)`) lives in /dev/fd: its folder means nothing, so the working
  // directory anchors relative paths and the checkpoint instead.
  const regular = await stat(file).then(
    (st) => st.isFile(),
    () => true,
  );
  return parsePlan(text, file, regular ? opts : { ...opts, dir: process.cwd() });
}

/**
 * Parses plan text. `file` is where it came from (relative to the working directory or absolute): it names
 * the plan in messages and anchors relative paths. Pure and synchronous apart from reading `process.cwd()`.
 */
export function parsePlan(text: string, file: string, opts: LoadOptions = {}): Plan {
  const shown = displayFile(file);
  const raw = parseYaml(text, shown);

  if (raw === null || raw === undefined) {
    throw new PlanError(`${shown}: the file is empty; add "version: 1" and a list of steps`);
  }

  const result = planSchema.safeParse(raw, { error: fallbackMessage });
  const problems = result.success ? [] : formatIssues(result.error.issues, raw, shown);
  problems.push(...checkSteps(raw, shown));
  if (!result.success || problems.length > 0) throw new PlanError(problems);

  try {
    return normalise(result.data, path.resolve(file), opts);
  } catch (err) {
    // Validation above should leave nothing for normalisation to trip over; if it does, still keep the
    // promise that plan problems surface as a PlanError naming the file.
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0];
    throw new PlanError(`${shown}: internal error while reading the plan (${reason}); please report this`);
  }
}

// ---------------------------------------------------------------------------------------------------------

const MAX_YAML_ERRORS = 20;

function parseYaml(text: string, shown: string): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ''), {
    prettyErrors: false,
    lineCounter,
    merge: true,
    uniqueKeys: true,
  });
  if (doc.errors.length > 0) {
    const lines = doc.errors.slice(0, MAX_YAML_ERRORS).map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `${shown}:${line}:${col}: invalid YAML: ${yamlReason(e)}`;
    });
    if (doc.errors.length > MAX_YAML_ERRORS) {
      lines.push(`${shown}: ${doc.errors.length - MAX_YAML_ERRORS} more YAML errors not shown`);
    }
    throw new PlanError(lines);
  }
  // yaml reports an alias without its anchor only when converting, and without a position; find them first.
  const unresolved: string[] = [];
  visit(doc, {
    Alias(_, node) {
      if (node.resolve(doc) !== undefined) return;
      const { line, col } = lineCounter.linePos(node.range?.[0] ?? 0);
      unresolved.push(
        `${shown}:${line}:${col}: invalid YAML: alias *${node.source} has no anchor &${node.source} before it`,
      );
    },
  });
  if (unresolved.length > 0) throw new PlanError(unresolved);
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // In practice: too many aliases (yaml's guard against "billion laughs" documents).
    const reason = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
    throw new PlanError(`${shown}: invalid YAML: ${reason.charAt(0).toLowerCase()}${reason.slice(1)}`);
  }
}

function yamlReason(e: YAMLError): string {
  if (e.code === 'MULTIPLE_DOCS') return 'expected a single document; remove the "---" separator';
  if (e.code === 'DUPLICATE_KEY') return 'a key appears twice in the same mapping; keep one';
  if (e.code === 'TAB_AS_INDENT') return 'tabs are not allowed as indentation; use spaces';
  // yaml's messages are one sentence; keep only the first line in case a future version adds context.
  const first = e.message.split('\n')[0] ?? e.message;
  return first.charAt(0).toLowerCase() + first.slice(1);
}

// ---------------------------------------------------------------------------------------------------------
// Checks across steps. They read the raw YAML leniently, so they also run (and report) when the schema
// found problems elsewhere: a user fixing a plan sees every problem at once.

type PathPart = string | number;

interface StepView {
  index: number;
  id: string | undefined;
  /** undefined: `needs` not given, so the step before it. */
  needs: { id: string; path: PathPart[] }[] | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function viewSteps(raw: unknown): StepView[] {
  if (!isObject(raw) || !Array.isArray(raw.steps)) return [];
  return raw.steps.map((s: unknown, index): StepView => {
    if (!isObject(s)) return { index, id: undefined, needs: [] };
    const id = typeof s.id === 'string' ? s.id : undefined;
    const n = s.needs;
    let needs: StepView['needs'];
    if (n === undefined) needs = undefined;
    else if (typeof n === 'string') needs = [{ id: n, path: ['steps', index, 'needs'] }];
    else if (Array.isArray(n)) {
      needs = n.flatMap((ref: unknown, j) =>
        typeof ref === 'string' ? [{ id: ref, path: ['steps', index, 'needs', j] }] : [],
      );
    } else needs = [];
    return { index, id, needs };
  });
}

function checkSteps(raw: unknown, shown: string): string[] {
  const steps = viewSteps(raw);
  const problems: string[] = [];
  const at = (p: PathPart[], text: string) => problems.push(`${shown}: ${formatPath(p)}: ${text}`);

  const firstIndex = new Map<string, number>();
  let duplicates = false;
  for (const s of steps) {
    if (s.id === undefined) continue;
    const first = firstIndex.get(s.id);
    if (first === undefined) firstIndex.set(s.id, s.index);
    else {
      duplicates = true;
      at(
        ['steps', s.index, 'id'],
        `duplicate id ${JSON.stringify(s.id)}, also used by steps[${first}]; ids must be unique`,
      );
    }
  }

  const ids = [...firstIndex.keys()];
  for (const s of steps) {
    for (const ref of s.needs ?? []) {
      const who = s.id === undefined ? 'this step' : `step ${JSON.stringify(s.id)}`;
      if (ref.id === s.id) {
        at(ref.path, `${who} needs itself; remove ${JSON.stringify(ref.id)}`);
      } else if (!firstIndex.has(ref.id)) {
        const suggestion = didYouMean(
          ref.id,
          ids.filter((id) => id !== s.id),
        );
        at(
          ref.path,
          `${who} needs unknown step ${JSON.stringify(ref.id)}` +
            (suggestion ? ` (did you mean ${JSON.stringify(suggestion)}?)` : ''),
        );
      }
    }
  }

  // With duplicate ids the graph is ambiguous; the user fixes those first.
  if (!duplicates) {
    const byId = new Map<string, StepView>();
    for (const s of steps) if (s.id !== undefined) byId.set(s.id, s);
    for (const cycle of findCycles(steps)) {
      problems.push(`${shown}: steps: needs form a cycle: ${describeCycle(cycle, byId)}`);
    }
  }
  return problems;
}

const stepName = (id: string) => (STEP_ID_PATTERN.test(id) ? id : JSON.stringify(id));

function orList(names: string[]): string {
  return names.length <= 1 ? (names[0] ?? '') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

/**
 * `build -> test -> build; test needs build by default (the step before it); to break the cycle, give test
 * needs: [] (or the steps it really needs), or remove test from the needs of build`. The needs a step has by
 * default are named as such: the user wrote only the others, and may not see why the cycle is there.
 */
function describeCycle(cycle: string[], byId: Map<string, StepView>): string {
  const implicit: Array<[string, string]> = [];
  const explicit: Array<[string, string]> = [];
  for (let i = 0; i + 1 < cycle.length; i++) {
    const need = cycle[i] as string;
    const dependent = cycle[i + 1] as string;
    (byId.get(dependent)?.needs === undefined ? implicit : explicit).push([dependent, need]);
  }
  let text = cycle.map(stepName).join(' -> ');
  const fixes: string[] = [];
  if (implicit.length > 0) {
    const said = implicit.map(([d, n]) => `${stepName(d)} needs ${stepName(n)}`);
    const and = said.length === 1 ? said[0] : `${said.slice(0, -1).join(', ')} and ${said.at(-1)}`;
    text += `; ${and} by default (the step before it)`;
    fixes.push(`give ${orList(implicit.map(([d]) => stepName(d)))} needs: [] (or the steps it really needs)`);
  }
  for (const [d, n] of explicit) fixes.push(`remove ${stepName(n)} from the needs of ${stepName(d)}`);
  return `${text}; to break the cycle, ${fixes.join(', or ')}`;
}

/**
 * Cycles among the steps' needs (one per strongly connected component), each written in run order
 * (`a -> b` means b needs a), starting and ending at the component's earliest step.
 */
function findCycles(steps: StepView[]): string[][] {
  const byId = new Map<string, StepView>();
  for (const s of steps) if (s.id !== undefined) byId.set(s.id, s);

  // needsOf: the ids a step waits for, after the same defaults the loader applies.
  const needsOf = (s: StepView): string[] => {
    if (s.needs === undefined) {
      const prev = steps[s.index - 1]?.id;
      return prev === undefined || prev === s.id ? [] : [prev];
    }
    return s.needs.map((r) => r.id).filter((id) => id !== s.id && byId.has(id));
  };
  // Edges in run order: prerequisite → dependent.
  const next = new Map<string, string[]>();
  for (const id of byId.keys()) next.set(id, []);
  for (const s of byId.values()) {
    for (const need of needsOf(s)) next.get(need)?.push(s.id as string);
  }

  // Tarjan's strongly connected components, iterative so that a long plan cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const components: string[][] = [];
  let counter = 0;
  for (const root of byId.keys()) {
    if (index.has(root)) continue;
    const work: { id: string; edge: number }[] = [{ id: root, edge: 0 }];
    index.set(root, counter);
    low.set(root, counter++);
    stack.push(root);
    onStack.add(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { id: string; edge: number };
      const edges = next.get(frame.id) ?? [];
      if (frame.edge < edges.length) {
        const to = edges[frame.edge++] as string;
        if (!index.has(to)) {
          index.set(to, counter);
          low.set(to, counter++);
          stack.push(to);
          onStack.add(to);
          work.push({ id: to, edge: 0 });
        } else if (onStack.has(to)) {
          low.set(frame.id, Math.min(low.get(frame.id) as number, index.get(to) as number));
        }
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent) low.set(parent.id, Math.min(low.get(parent.id) as number, low.get(frame.id) as number));
      if (low.get(frame.id) === index.get(frame.id)) {
        const component: string[] = [];
        let member: string | undefined;
        do {
          member = stack.pop() as string;
          onStack.delete(member);
          component.push(member);
        } while (member !== frame.id);
        if (component.length > 1) components.push(component);
      }
    }
  }

  const order = (id: string) => byId.get(id)?.index ?? 0;
  return components
    .map((component) => {
      const members = new Set(component);
      const start = component.reduce((a, b) => (order(a) <= order(b) ? a : b));
      // Shortest way round from the start back to itself, staying inside the component.
      const from = new Map<string, string>();
      const queue = [start];
      for (let i = 0; i < queue.length; i++) {
        const cur = queue[i] as string;
        for (const to of next.get(cur) ?? []) {
          if (!members.has(to)) continue;
          if (to === start) {
            const cycle = [start];
            for (let at: string | undefined = cur; at !== undefined && at !== start; at = from.get(at)) {
              cycle.push(at);
            }
            return [start, ...cycle.slice(1).reverse(), start];
          }
          if (!from.has(to)) {
            from.set(to, cur);
            queue.push(to);
          }
        }
      }
      return [...component, start];
    })
    .sort((a, b) => order(a[0] as string) - order(b[0] as string));
}

// ---------------------------------------------------------------------------------------------------------
// Normalisation

function resolveRetry(...layers: (RawRetry | undefined)[]): RetryPolicy {
  const policy = { ...DEFAULT_RETRY };
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (layer.attempts !== undefined) policy.attempts = layer.attempts;
    if ('delay' in layer && layer.delay !== undefined) policy.delayMs = layer.delay;
    if ('backoff' in layer && layer.backoff !== undefined) policy.backoff = layer.backoff;
    if ('max-delay' in layer && layer['max-delay'] !== undefined) policy.maxDelayMs = layer['max-delay'];
    // A step's `on` replaces the default's whole list: `on: [timeout]` on a step means only timeouts.
    if ('on' in layer && layer.on !== undefined) policy.on = layer.on;
  }
  return policy;
}

function normaliseBatch(b: RawBatch, concurrency: number): BatchSpec {
  const space: BatchSpec['space'] =
    b.range !== undefined
      ? { kind: 'range', from: b.range.from, to: b.range.to }
      : { kind: 'items', source: b.items ?? { kind: 'list', items: [] } };
  const adaptive: AdaptiveSize | undefined =
    typeof b.size === 'object'
      ? {
          targetMs: b.size.target ?? 0,
          min: b.size.min ?? 1,
          max: b.size.max ?? Number.MAX_SAFE_INTEGER,
        }
      : undefined;
  return {
    space,
    // With chunks sized by time, the grid (unit indexes, log names) is `min`.
    size: typeof b.size === 'number' ? b.size : (adaptive?.min ?? 1),
    ...(adaptive ? { adaptive } : {}),
    parallel: b.parallel ?? concurrency,
    order: b.order ?? 'any',
    maxFailures: b['max-failures'] ?? { kind: 'count', count: 0 },
    ...(b.throttle
      ? {
          throttle: {
            command: b.throttle.command,
            everyMs: b.throttle.every ?? 10_000,
            backoffMs: b.throttle.backoff ?? 30_000,
          },
        }
      : {}),
  };
}

function normalise(data: RawPlan, file: string, opts: LoadOptions): Plan {
  const dir = opts.dir ?? path.dirname(file);
  const concurrency =
    opts.concurrency ?? data.concurrency ?? opts.defaultConcurrency ?? os.availableParallelism();
  const shellSpec = data.shell ?? 'bash';
  const shell: Shell = { spec: shellSpec, argv: shellArgv(shellSpec) };
  const env = data.env ?? {};
  const defaults = data.defaults ?? {};

  const steps = data.steps.map((s, index, all): Step => {
    const workingDirectoryRel = s['working-directory'] ?? '.';
    const previous = all[index - 1];
    return {
      id: s.id,
      name: s.name ?? s.id,
      run: s.run,
      env: { ...env, ...(s.env ?? {}) },
      workingDirectory: path.resolve(dir, workingDirectoryRel),
      workingDirectoryRel,
      timeoutMs: s.timeout ?? defaults.timeout,
      retry: resolveRetry(defaults.retry, s.retry),
      needs: s.needs !== undefined ? [...new Set(s.needs)] : previous ? [previous.id] : [],
      always: s.always ?? false,
      approval: s.approval ?? false,
      rollback: s.rollback,
      secretOutputs: s['secret-outputs'] ?? [],
      inputs: s.inputs ?? [],
      onChange: s['on-change'] ?? defaults['on-change'] ?? 'rerun',
      batch: s.batch ? normaliseBatch(s.batch, concurrency) : undefined,
      index,
      shards: s.shards ?? 'all',
    };
  });

  return {
    version: 1,
    name: data.name ?? path.basename(dir),
    file,
    dir,
    shell,
    concurrency,
    env,
    steps,
  };
}
