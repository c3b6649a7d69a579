// ACTIONS_RUNTIME_TOKEN as the runner hands it out: a JWT whose `scp` claim names the results backend ids
// (`Actions.Results:<workflowRunBackendId>:<workflowJobRunBackendId>`), which @actions/artifact decodes
// (without verifying) to address its requests. Ours is unsigned (`alg: none`) but well formed.
import { createHash } from 'node:crypto';

export interface BackendIds {
  workflowRunBackendId: string;
  workflowJobRunBackendId: string;
}

function b64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** A stable UUID-shaped id per input, so the same run gets the same backend id in every attempt. */
export function backendId(...parts: Array<string | number>): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A cache scope of the token's `ac` claim; Permission 1 = read, 2 = write, 3 = both. */
export interface CacheScope {
  Scope: string;
  Permission: number;
}

/**
 * The `ac` claim GitHub gives a job: its own ref read/write, then the default branch read-only (and for a
 * pull request the base branch, read-only). Entries are saved under the first writable scope and found in
 * the readable ones, in order.
 */
export function cacheScopes(ref: string, defaultBranch = 'refs/heads/main', baseRef?: string): CacheScope[] {
  const scopes: CacheScope[] = [{ Scope: ref, Permission: 3 }];
  for (const other of [baseRef, defaultBranch])
    if (other && !scopes.some((s) => s.Scope === other)) scopes.push({ Scope: other, Permission: 1 });
  return scopes;
}

export function makeRuntimeToken(
  ids: BackendIds,
  repository: string,
  scopes: CacheScope[] = cacheScopes('refs/heads/main'),
): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: `Actions.ExampleScope Actions.Results:${ids.workflowRunBackendId}:${ids.workflowJobRunBackendId}`,
    // The cache scopes: nothing client-side reads them; the cache service scopes entries by them.
    ac: JSON.stringify(scopes),
    repository,
    iss: 'vstoken.actions.githubusercontent.com',
    aud: 'vso:local-test-services',
    nbf: now - 60,
    iat: now - 60,
    exp: now + 6 * 3600,
  };
  return `${b64url({ typ: 'JWT', alg: 'none' })}.${b64url(payload)}.`;
}

/** The backend ids a bearer token claims, or undefined when it is not one of ours (or not a JWT at all). */
export function parseRuntimeToken(authorization: string | undefined): BackendIds | undefined {
  const m = /^Bearer (\S+)$/.exec(authorization ?? '');
  const payloadPart = m?.[1]?.split('.')[1];
  if (!payloadPart) return undefined;
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  const scp = (payload as { scp?: unknown }).scp;
  if (typeof scp !== 'string') return undefined;
  for (const scope of scp.split(' ')) {
    const [name, run, job] = scope.split(':');
    if (name === 'Actions.Results' && run && job)
      return { workflowRunBackendId: run, workflowJobRunBackendId: job };
  }
  return undefined;
}

/** The cache scopes a bearer token carries (the `ac` claim); [] when it has none. */
export function tokenScopes(authorization: string | undefined): CacheScope[] {
  const payloadPart = /^Bearer (\S+)$/.exec(authorization ?? '')?.[1]?.split('.')[1];
  if (!payloadPart) return [];
  try {
    const payload = JSON.parse(Buffer.from(payloadPart, 'base64url').toString('utf8')) as { ac?: unknown };
    const ac = typeof payload.ac === 'string' ? (JSON.parse(payload.ac) as unknown) : [];
    return Array.isArray(ac)
      ? ac.filter(
          (s): s is CacheScope =>
            typeof s === 'object' && s !== null && typeof (s as CacheScope).Scope === 'string',
        )
      : [];
  } catch {
    return [];
  }
}
