// `on-incomplete: dispatch`: start the same workflow again on the same ref, counting continuations in the
// checkpoint (`<run>/action.json`) so a plan that never finishes stops after `max-continuations`.
import { join } from 'node:path';
import { readFileIfExists, writeFileAtomic } from '../journal/fsutil.js';

const FILE = 'action.json';

interface ActionFile {
  continuations: number;
}

export async function readContinuations(runDir: string): Promise<number> {
  const text = await readFileIfExists(join(runDir, FILE));
  if (text === undefined) return 0;
  try {
    const n = (JSON.parse(text) as Partial<ActionFile>).continuations;
    return typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : 0;
  } catch {
    return 0;
  }
}

export async function writeContinuations(runDir: string, n: number): Promise<void> {
  const doc: ActionFile = { continuations: n };
  await writeFileAtomic(join(runDir, FILE), `${JSON.stringify(doc, null, 2)}\n`);
}

/** The workflow file name from GITHUB_WORKFLOW_REF (`owner/repo/.github/workflows/ci.yml@refs/heads/main`). */
export function workflowFile(workflowRef: string): string | undefined {
  const m = /\/\.github\/workflows\/([^@/]+)@/.exec(workflowRef);
  return m?.[1];
}

export interface DispatchOptions {
  apiUrl: string;
  repository: string;
  workflowRef: string;
  ref: string;
  token: string;
}

/** POST /repos/{owner}/{repo}/actions/workflows/{file}/dispatches on the same ref. */
export async function dispatchWorkflow(o: DispatchOptions): Promise<void> {
  const file = workflowFile(o.workflowRef);
  if (!file) throw new Error(`cannot tell the workflow file from GITHUB_WORKFLOW_REF "${o.workflowRef}"`);
  if (!o.token) throw new Error('`github-token` is empty; dispatch needs a token with `actions: write`');
  const url = `${o.apiUrl.replace(/\/$/, '')}/repos/${o.repository}/actions/workflows/${encodeURIComponent(file)}/dispatches`;
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${o.token}`,
      accept: 'application/vnd.github+json',
      'content-type': 'application/json',
      'x-github-api-version': '2022-11-28',
    },
    body: JSON.stringify({ ref: o.ref }),
  });
  if (res.status !== 204 && !res.ok) {
    const body = await res.text().catch(() => '');
    throw new Error(
      `POST ${url}: HTTP ${res.status} ${body.slice(0, 200)}${res.status === 403 ? ' (the job needs `permissions: actions: write`)' : ''}`,
    );
  }
}
