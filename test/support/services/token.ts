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

export function makeRuntimeToken(ids: BackendIds, repository: string): string {
  const now = Math.floor(Date.now() / 1000);
  const payload = {
    nameid: 'dddddddd-dddd-dddd-dddd-dddddddddddd',
    scp: `Actions.ExampleScope Actions.Results:${ids.workflowRunBackendId}:${ids.workflowJobRunBackendId}`,
    // The real token also carries the cache scopes (`ac`); nothing client-side reads them.
    ac: JSON.stringify([{ Scope: 'refs/heads/main', Permission: 3 }]),
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
