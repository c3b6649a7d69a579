// A local GitHub Actions artifact service for the REAL @actions/artifact 6.2.1: the results service's
// ArtifactService (v2, Twirp over JSON) plus the public REST endpoints it uses with a token for other runs.
//
// Twirp: POST {ACTIONS_RESULTS_URL origin}/twirp/github.actions.results.api.v1.ArtifactService/<Method>,
// bearer ACTIONS_RUNTIME_TOKEN, snake_case JSON, int64 as strings, Timestamp as RFC 3339, StringValue /
// Int64Value wrappers as bare JSON values. The library takes the backend ids it sends from the token's
// `scp` claim (see token.ts). Upload goes to `signed_upload_url` with BlockBlobClient.uploadStream
// (staged blocks, content type application/zip); download is a plain GET of `signed_url`, unzipped when the
// response is application/zip.
//
// REST (GITHUB_API_URL, `Authorization: token <github-token>`), used when a call passes `findBy`:
//   GET    /repos/{owner}/{repo}/actions/runs/{run_id}/artifacts?name&per_page&page  (list, getArtifact)
//   GET    /repos/{owner}/{repo}/actions/artifacts?name&per_page&page  (every run's, newest first)
//   GET    /repos/{owner}/{repo}/actions/artifacts/{artifact_id}/zip  -> 302 to a signed blob URL
//   GET    /repos/{owner}/{repo}/actions/artifacts/{artifact_id}
//   DELETE /repos/{owner}/{repo}/actions/artifacts/{artifact_id}
//
// What @actions/artifact 6.2.1 does when this service misbehaves (pinned by
// test/services/artifact-service.test.ts): every client method THROWS (rejects); nothing is swallowed.
//  - Twirp outage (500/502/503/504) and throttle (429): retried, 5 attempts with 3 s, ~4.5-6.8 s,
//    ~6.8-10 s, ~10-15 s waits (~25-35 s), then "Failed to <Method>: Failed to make request after 5
//    attempts: ...". Unlike @actions/cache, 429 is retried like a 5xx.
//  - Twirp unreachable (connection reset/refused): NetworkError, not retried, rejects at once with
//    "Failed to <Method>: Unable to make request: ECONNRESET ...".
//  - Twirp 4xx (write-denied, not found, duplicate name): not retried, "Received non-retryable error".
//  - REST list/get (findBy): Octokit's retry plugin, 5 retries waiting 1, 4, 9, 16, 25 s (~55 s) on 5xx,
//    429 and connection errors (Octokit reports those as status 500); not on 400/401/403/404/422.
//  - REST download (findBy): no retry plugin for the 302 request itself, so a reset connection rejects at
//    once (undici's bare "other side closed"); the blob GET that follows is retried 5 times, 5 s apart,
//    before "Unable to download and extract artifact".
//  - Blob faults (blob-proxy.ts): a `cut` upload is retried by the Azure SDK 4 times (~16 s) before
//    "Unable to make request: ECONNRESET"; a `truncate`d download fails to unzip, retried 5 times 5 s apart
//    (~25 s) before "Artifact download failed after 5 retries"; a `cut` download never errors by itself
//    (the response's abort is not forwarded through `pipe`), only the library's 30 s no-data timer ends each
//    of the 5 attempts: ~3 minutes.
//  - Important for callers: @actions/github (which the REST calls go through) reads GITHUB_API_URL once,
//    when the module is first imported, so the variable must be set before @actions/artifact is imported.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Azurite } from './azurite.js';
import type { BlobProxy } from './blob-proxy.js';
import {
  applyTransportFault,
  type FaultMode,
  FaultSwitch,
  type Handler,
  type HttpService,
  isBlobFault,
  RequestCounter,
  readJson,
  sendJson,
  shapeReply,
  startHttpService,
  str,
  twirpError,
} from './http.js';
import { type BackendIds, backendId, parseRuntimeToken } from './token.js';

export const ARTIFACT_TWIRP_SERVICE = 'github.actions.results.api.v1.ArtifactService';
export const ARTIFACT_TWIRP_METHODS = [
  'CreateArtifact',
  'FinalizeArtifact',
  'ListArtifacts',
  'GetSignedArtifactURL',
  'DeleteArtifact',
] as const;
/** Named after Octokit's `rest.actions.*` methods. */
export const ARTIFACT_REST_METHODS = [
  'listWorkflowRunArtifacts',
  'listRepositoryArtifacts',
  'getArtifact',
  'downloadArtifact',
  'deleteArtifact',
] as const;
export type ArtifactTwirpMethod = (typeof ARTIFACT_TWIRP_METHODS)[number];
export type ArtifactRestMethod = (typeof ARTIFACT_REST_METHODS)[number];
export type ArtifactMethod = ArtifactTwirpMethod | ArtifactRestMethod;

export const ARTIFACT_UPLOAD_METHODS: readonly ArtifactMethod[] = ['CreateArtifact', 'FinalizeArtifact'];
export const ARTIFACT_DOWNLOAD_METHODS: readonly ArtifactMethod[] = [
  'ListArtifacts',
  'GetSignedArtifactURL',
  'listWorkflowRunArtifacts',
  'getArtifact',
  'downloadArtifact',
];

export const DUPLICATE_ARTIFACT_MESSAGE = 'an artifact with this name already exists on the workflow run';
export const ARTIFACT_WRITE_DENIED_MESSAGE = 'artifact write denied: the token is read-only';

export interface RunRef {
  runId: number;
  runAttempt: number;
  /** Jobs of one attempt get different job backend ids. */
  job?: string;
  /** GITHUB_REF of the run (the cache scope its token writes); default `refs/heads/main`. */
  ref?: string;
  /**
   * The repository the run's code came from, when not this one: a `pull_request` run from a fork. Its
   * artifacts still belong to this repository's runs (and show in its list), with this head repository id.
   */
  headRepositoryId?: number;
}

export interface ArtifactRecord {
  id: number;
  name: string;
  workflowRunBackendId: string;
  workflowJobRunBackendId: string;
  /** GITHUB_RUN_ID of the run whose token created it; undefined for backend ids nobody registered. */
  runId?: number;
  runAttempt?: number;
  /** Set for artifacts of a run from a fork (RunRef.headRepositoryId). */
  headRepositoryId?: number;
  blob: string;
  mimeType?: string;
  createdAt: Date;
  finalizedAt?: Date;
  size?: number;
  /** `sha256:<hex>` as the library reports it. */
  digest?: string;
  expiresAt?: Date;
  deleted: boolean;
}

export interface ArtifactService {
  container: string;
  /** Twirp routes, for the server ACTIONS_RESULTS_URL points at. */
  twirpHandler: Handler;
  /** REST routes, for the server GITHUB_API_URL points at. */
  restHandler: Handler;
  /** The backend ids a runtime token for this run carries; remembers the run for the REST API. */
  registerRun(run: RunRef): BackendIds;
  /** Copies, in creation order, deleted and unfinalized ones included. */
  artifacts(): ArtifactRecord[];
  /** `only`: 'upload', 'download' (Twirp and REST reads), 'rest', or a list of methods. */
  setFault(mode: FaultMode, only?: 'upload' | 'download' | 'rest' | Iterable<ArtifactMethod>): void;
  counts(): Partial<Record<ArtifactMethod, number>>;
  count(method: ArtifactMethod): number;
  resetCounts(): void;
  clear(): void;
  /**
   * Damages the stored zip of the newest artifact called `name` (its first local header is overwritten), so
   * every download of it fails to unzip, as a blob damaged at rest would.
   */
  damage(name: string): Promise<void>;
}

export interface ArtifactServiceOptions {
  /** `owner/name`; REST calls for another repository get 404. */
  repository: string;
  /** The GitHub token REST calls must carry (`token <t>` or `Bearer <t>`). */
  githubToken: string;
  /** Where REST responses say they live; only cosmetic (`url`, `archive_download_url`). */
  apiUrl?: () => string;
  container?: string;
  repositoryId?: number;
  /** Where `cut` / `truncate` send the blob transfers; without it they shape the reply instead. */
  blobProxy?: BlobProxy;
}

function isTwirpMethod(m: string): m is ArtifactTwirpMethod {
  return (ARTIFACT_TWIRP_METHODS as readonly string[]).includes(m);
}

function restError(res: ServerResponse, status: number, message: string): void {
  sendJson(res, status, {
    message,
    documentation_url: 'https://docs.github.com/rest/actions/artifacts',
    status: String(status),
  });
}

export function createArtifactService(azurite: Azurite, opts: ArtifactServiceOptions): ArtifactService {
  const container = opts.container ?? 'actions-results';
  const repositoryId = opts.repositoryId ?? 123456789;
  const faults = new FaultSwitch<ArtifactMethod>();
  const counter = new RequestCounter<ArtifactMethod>();
  const runs = new Map<string, { runId: number; runAttempt: number; headRepositoryId?: number }>();
  let records: ArtifactRecord[] = [];
  let nextId = 1001;

  const twirpPrefix = `/twirp/${ARTIFACT_TWIRP_SERVICE}/`;

  function registerRun(run: RunRef): BackendIds {
    // One backend id per run, shared by its attempts (artifacts belong to the run); one per job attempt.
    const workflowRunBackendId = backendId('run', opts.repository, run.runId);
    const workflowJobRunBackendId = backendId(
      'job',
      opts.repository,
      run.runId,
      run.runAttempt,
      run.job ?? 'job',
    );
    runs.set(workflowJobRunBackendId, {
      runId: run.runId,
      runAttempt: run.runAttempt,
      ...(run.headRepositoryId !== undefined ? { headRepositoryId: run.headRepositoryId } : {}),
    });
    return { workflowRunBackendId, workflowJobRunBackendId };
  }

  const visible = (r: ArtifactRecord) => r.finalizedAt !== undefined && !r.deleted;
  const expired = (r: ArtifactRecord) => r.expiresAt !== undefined && r.expiresAt.getTime() <= Date.now();

  /** The SAS URL as handed out: through the blob proxy when a blob fault is set on the method. */
  type Route = (sasUrl: string) => string;
  const direct: Route = (u) => u;
  function routeFor(fault: FaultMode, res: ServerResponse, handsOutBlob: boolean): Route {
    if (!isBlobFault(fault)) return direct;
    const proxy = opts.blobProxy;
    if (proxy && handsOutBlob) return (u) => proxy.route(u, fault);
    shapeReply(res, fault);
    return direct;
  }

  function downloadUrl(r: ArtifactRecord, route: Route = direct): string {
    const fileName = r.mimeType === 'application/zip' ? `${r.name}.zip` : r.name;
    return route(
      azurite.sasUrl(container, r.blob, 'r', {
        contentDisposition: `attachment; filename="${fileName}"; filename*=UTF-8''${encodeURIComponent(fileName)}`,
      }),
    );
  }

  // ---- Twirp ----

  async function createArtifact(
    body: Record<string, unknown>,
    ids: BackendIds,
    res: ServerResponse,
    route: Route,
  ) {
    const name = str(body, 'name');
    if (!name) return twirpError(res, 400, 'invalid_argument', 'name is required');
    const taken = records.some(
      (r) => !r.deleted && r.workflowRunBackendId === ids.workflowRunBackendId && r.name === name,
    );
    if (taken) return twirpError(res, 409, 'already_exists', DUPLICATE_ARTIFACT_MESSAGE);
    await azurite.ensureContainer(container);
    const id = nextId++;
    const run = runs.get(ids.workflowJobRunBackendId);
    const expiresAt = typeof body.expires_at === 'string' ? new Date(body.expires_at) : undefined;
    const mimeType = typeof body.mime_type === 'string' ? body.mime_type : undefined;
    const blob = `${ids.workflowRunBackendId}/${id}/${name}`;
    records.push({
      id,
      name,
      ...ids,
      runId: run?.runId,
      runAttempt: run?.runAttempt,
      ...(run?.headRepositoryId !== undefined ? { headRepositoryId: run.headRepositoryId } : {}),
      blob,
      mimeType,
      // GitHub's timestamps have whole seconds: saves within one second tie, and only the id orders them.
      createdAt: new Date(Math.floor(Date.now() / 1000) * 1000),
      expiresAt,
      deleted: false,
    });
    sendJson(res, 200, { ok: true, signed_upload_url: route(azurite.sasUrl(container, blob, 'cw')) });
  }

  async function finalizeArtifact(body: Record<string, unknown>, ids: BackendIds, res: ServerResponse) {
    const name = str(body, 'name');
    const r = records.find(
      (x) =>
        !x.deleted &&
        !x.finalizedAt &&
        x.workflowJobRunBackendId === ids.workflowJobRunBackendId &&
        x.name === name,
    );
    if (!r) return twirpError(res, 404, 'not_found', `artifact ${name} was not created by this job`);
    try {
      await azurite.client.getContainerClient(container).getBlobClient(r.blob).getProperties();
    } catch {
      return twirpError(res, 400, 'failed_precondition', `artifact ${name} has no uploaded content`);
    }
    r.finalizedAt = new Date();
    r.size = Number(body.size ?? 0);
    r.digest = typeof body.hash === 'string' ? body.hash : undefined;
    sendJson(res, 200, { ok: true, artifact_id: String(r.id) });
  }

  function listArtifacts(body: Record<string, unknown>, res: ServerResponse) {
    const run = str(body, 'workflow_run_backend_id');
    const nameFilter = typeof body.name_filter === 'string' ? body.name_filter : undefined;
    const idFilter = body.id_filter === undefined ? undefined : Number(body.id_filter);
    const found = records.filter(
      (r) =>
        visible(r) &&
        r.workflowRunBackendId === run &&
        (nameFilter === undefined || r.name === nameFilter) &&
        (idFilter === undefined || r.id === idFilter),
    );
    sendJson(res, 200, {
      artifacts: found.map((r) => ({
        workflow_run_backend_id: r.workflowRunBackendId,
        workflow_job_run_backend_id: r.workflowJobRunBackendId,
        database_id: String(r.id),
        name: r.name,
        size: String(r.size ?? 0),
        created_at: r.createdAt.toISOString(),
        ...(r.digest ? { digest: r.digest } : {}),
      })),
    });
  }

  function newestByName(run: string, name: string): ArtifactRecord | undefined {
    return records
      .filter((r) => visible(r) && r.workflowRunBackendId === run && r.name === name)
      .sort((a, b) => b.id - a.id)[0];
  }

  function signedUrl(body: Record<string, unknown>, res: ServerResponse, route: Route) {
    const r = newestByName(str(body, 'workflow_run_backend_id'), str(body, 'name'));
    if (!r) return twirpError(res, 404, 'not_found', 'artifact not found');
    if (expired(r)) return twirpError(res, 404, 'not_found', 'artifact has expired');
    sendJson(res, 200, { signed_url: downloadUrl(r, route) });
  }

  async function remove(r: ArtifactRecord): Promise<void> {
    r.deleted = true;
    await azurite.client.getContainerClient(container).getBlobClient(r.blob).deleteIfExists();
  }

  async function deleteArtifact(body: Record<string, unknown>, res: ServerResponse) {
    const r = newestByName(str(body, 'workflow_run_backend_id'), str(body, 'name'));
    if (!r) return twirpError(res, 404, 'not_found', 'artifact not found');
    await remove(r);
    sendJson(res, 200, { ok: true, artifact_id: String(r.id) });
  }

  const twirpHandler: Handler = async (req, res) => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    if (!path.startsWith(twirpPrefix)) return false;
    const method = path.slice(twirpPrefix.length);
    if (req.method !== 'POST' || !isTwirpMethod(method)) {
      twirpError(res, 404, 'bad_route', `no handler for ${req.method} ${path}`);
      return true;
    }
    counter.hit(method);
    const fault = faults.for(method);
    if (applyTransportFault(fault, req, res, 'twirp')) return true;
    const route = routeFor(fault, res, method === 'CreateArtifact' || method === 'GetSignedArtifactURL');
    const body = await readJson(req);
    const ids = parseRuntimeToken(req.headers.authorization);
    if (!ids) {
      twirpError(res, 401, 'unauthenticated', 'missing or malformed runtime token');
      return true;
    }
    // The service only lets a token act on its own run.
    const run = str(body, 'workflow_run_backend_id');
    if (run && run !== ids.workflowRunBackendId) {
      twirpError(res, 403, 'permission_denied', 'workflow run backend id does not match the token');
      return true;
    }
    const writes = method === 'CreateArtifact' || method === 'DeleteArtifact';
    if ((fault === 'write-denied' && writes) || (fault === 'read-denied' && !writes)) {
      const msg = writes ? ARTIFACT_WRITE_DENIED_MESSAGE : 'artifact read denied: token has no read scope';
      twirpError(res, 403, 'permission_denied', msg);
      return true;
    }
    switch (method) {
      case 'CreateArtifact':
        await createArtifact(body, ids, res, route);
        break;
      case 'FinalizeArtifact':
        await finalizeArtifact(body, ids, res);
        break;
      case 'ListArtifacts':
        listArtifacts(body, res);
        break;
      case 'GetSignedArtifactURL':
        signedUrl(body, res, route);
        break;
      case 'DeleteArtifact':
        await deleteArtifact(body, res);
        break;
    }
    return true;
  };

  // ---- REST ----

  function restArtifact(r: ArtifactRecord) {
    const api = opts.apiUrl?.() ?? 'https://api.github.com';
    const base = `${api}/repos/${opts.repository}/actions/artifacts/${r.id}`;
    return {
      id: r.id,
      node_id: Buffer.from(`Artifact${r.id}`).toString('base64'),
      name: r.name,
      size_in_bytes: r.size ?? 0,
      url: base,
      archive_download_url: `${base}/zip`,
      expired: expired(r),
      digest: r.digest ?? null,
      created_at: r.createdAt.toISOString(),
      updated_at: (r.finalizedAt ?? r.createdAt).toISOString(),
      expires_at: r.expiresAt?.toISOString() ?? null,
      workflow_run: {
        id: r.runId ?? null,
        repository_id: repositoryId,
        head_repository_id: r.headRepositoryId ?? repositoryId,
        head_branch: 'main',
        head_sha: '0000000000000000000000000000000000000000',
      },
    };
  }

  const restRoutes: Array<{ verb: string; re: RegExp; method: ArtifactRestMethod }> = [
    {
      verb: 'GET',
      re: /^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)\/artifacts$/,
      method: 'listWorkflowRunArtifacts',
    },
    { verb: 'GET', re: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts$/, method: 'listRepositoryArtifacts' },
    { verb: 'GET', re: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)$/, method: 'getArtifact' },
    {
      verb: 'GET',
      re: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)\/([^/]+)$/,
      method: 'downloadArtifact',
    },
    {
      verb: 'DELETE',
      re: /^\/repos\/([^/]+)\/([^/]+)\/actions\/artifacts\/(\d+)$/,
      method: 'deleteArtifact',
    },
  ];

  const restHandler: Handler = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://api.invalid');
    let match: { m: RegExpExecArray; method: ArtifactRestMethod } | undefined;
    for (const route of restRoutes) {
      const m = route.re.exec(url.pathname);
      if (m && req.method === route.verb) {
        match = { m, method: route.method };
        break;
      }
    }
    if (!match) return false;
    const { m, method } = match;
    counter.hit(method);
    const fault = faults.for(method);
    if (applyTransportFault(fault, req, res, 'rest')) return true;
    const route = routeFor(fault, res, method === 'downloadArtifact');
    const auth = /^(?:token|Bearer) (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (auth !== opts.githubToken) {
      restError(res, 401, 'Bad credentials');
      return true;
    }
    if (`${m[1]}/${m[2]}`.toLowerCase() !== opts.repository.toLowerCase()) {
      restError(res, 404, 'Not Found');
      return true;
    }
    const writes = method === 'deleteArtifact';
    if ((fault === 'write-denied' && writes) || (fault === 'read-denied' && !writes)) {
      restError(res, 403, 'Resource not accessible by integration');
      return true;
    }
    const id = Number(m[3]);
    if (method === 'listRepositoryArtifacts') {
      // Every run's artifacts, newest first, as GitHub lists them.
      const name = url.searchParams.get('name');
      const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 30) || 30, 100);
      const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
      const all = records.filter((r) => visible(r) && (name === null || r.name === name)).reverse();
      sendJson(res, 200, {
        total_count: all.length,
        artifacts: all.slice((page - 1) * perPage, page * perPage).map(restArtifact),
      });
      return true;
    }
    if (method === 'listWorkflowRunArtifacts') {
      const name = url.searchParams.get('name');
      const perPage = Math.min(Number(url.searchParams.get('per_page') ?? 30) || 30, 100);
      const page = Math.max(Number(url.searchParams.get('page') ?? 1) || 1, 1);
      const all = records.filter((r) => visible(r) && r.runId === id && (name === null || r.name === name));
      sendJson(res, 200, {
        total_count: all.length,
        artifacts: all.slice((page - 1) * perPage, page * perPage).map(restArtifact),
      });
      return true;
    }
    const r = records.find((x) => visible(x) && x.id === id);
    if (!r) {
      restError(res, 404, 'Not Found');
      return true;
    }
    switch (method) {
      case 'getArtifact':
        sendJson(res, 200, restArtifact(r));
        break;
      case 'downloadArtifact':
        if (m[4] !== 'zip') restError(res, 404, 'Not Found');
        else if (expired(r)) restError(res, 410, 'Artifact has expired');
        else {
          res.writeHead(302, { location: downloadUrl(r, route), 'content-length': 0 });
          res.end();
        }
        break;
      case 'deleteArtifact':
        await remove(r);
        res.writeHead(204);
        res.end();
        break;
    }
    return true;
  };

  return {
    container,
    twirpHandler,
    restHandler,
    registerRun,
    artifacts: () => records.map((r) => ({ ...r })),
    setFault(mode, only) {
      if (only === 'upload') faults.set(mode, ARTIFACT_UPLOAD_METHODS);
      else if (only === 'download') faults.set(mode, ARTIFACT_DOWNLOAD_METHODS);
      else if (only === 'rest') faults.set(mode, ARTIFACT_REST_METHODS);
      else faults.set(mode, only);
    },
    counts: () => counter.snapshot(),
    count: (method) => counter.get(method),
    resetCounts: () => counter.reset(),
    clear() {
      records = [];
    },
    async damage(name) {
      const r = records.filter((x) => visible(x) && x.name === name).sort((a, b) => b.id - a.id)[0];
      if (!r) throw new Error(`no artifact called ${name} to damage`);
      const blob = azurite.client.getContainerClient(container).getBlockBlobClient(r.blob);
      const zip = await blob.downloadToBuffer();
      // The first local file header: a streaming unzip (the library's) finds no valid signature and fails,
      // as it does for a zip damaged anywhere it reads before the first file's data.
      zip.fill(0x5a, 0, Math.min(zip.length, 30));
      await blob.uploadData(zip, { blobHTTPHeaders: { blobContentType: r.mimeType ?? 'application/zip' } });
    },
  };
}

/** The artifact service alone: Twirp and REST on one port (index.ts gives them separate origins). */
export async function startArtifactService(
  azurite: Azurite,
  opts: ArtifactServiceOptions,
): Promise<ArtifactService & { http: HttpService }> {
  let url = '';
  const svc = createArtifactService(azurite, { apiUrl: () => url, ...opts });
  const http = await startHttpService([svc.twirpHandler, svc.restHandler]);
  url = http.url;
  return { ...svc, http };
}
