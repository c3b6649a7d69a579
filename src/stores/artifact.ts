// The `artifact` store: the real @actions/artifact (loaded only when used). Each save uploads the bundle
// as a new artifact whose name carries the attempt and sequence; restore lists artifacts through the REST
// API with the token and takes the newest by creation time. Within one workflow run (attempts re-running
// it) the run's own list is asked; with an explicit `key` that outlives runs, the repository's list is.
import { join } from 'node:path';
import { ARCHIVE, MANIFEST } from './bundle.js';
import { RestError, type RestOptions, rest } from './rest.js';
import { EntryUnusable, isEntryOf, type PruneOutcome, type Store, StoreError } from './store.js';
import { DEFAULT_IDLE_MS, withIdleTimeout } from './watchdog.js';

type ArtifactModule = typeof import('@actions/artifact');

export interface ArtifactStoreOptions {
  token: string;
  /** owner/name */
  repository: string;
  runId: number;
  /** `run`: this workflow run's artifacts; `repository`: every run's (explicit keys resume across runs). */
  scope: 'run' | 'repository';
  apiUrl: string;
  retentionDays?: number;
  /** How long a connection to the service may stay silent before it is given up (see watchdog.ts). */
  idleTimeoutMs?: number;
  /** Aborts the REST listing (main's SIGINT). */
  signal?: AbortSignal;
}

interface Listed {
  id: number;
  name: string;
  createdAt: number;
  runId: number;
}

interface RestArtifact {
  id: number;
  name: string;
  created_at?: string;
  expired?: boolean;
  workflow_run?: { id?: number; repository_id?: number; head_repository_id?: number };
}

export class ArtifactStore implements Store {
  readonly kind = 'artifact' as const;
  readonly #o: ArtifactStoreOptions;
  #lib: ArtifactModule | undefined;

  constructor(o: ArtifactStoreOptions) {
    this.#o = o;
  }

  async #client() {
    this.#lib ??= await import('@actions/artifact');
    return new this.#lib.DefaultArtifactClient();
  }

  get #owner(): string {
    return this.#o.repository.split('/')[0] ?? '';
  }

  get #repo(): string {
    return this.#o.repository.split('/')[1] ?? '';
  }

  /** GET a REST list page; the library only lists one run, so the repository-wide list is asked directly. */
  async #repositoryArtifacts(prefix: string): Promise<Listed[]> {
    const found: Listed[] = [];
    // GitHub lists a repository's artifacts newest first; ten pages of 100 reach far enough back for a
    // checkpoint that is saved every few minutes, without walking a big repository's whole history.
    for (let page = 1; page <= 10; page++) {
      const res = await rest(this.#rest(), 'GET', `/actions/artifacts?per_page=100&page=${page}`);
      const body = (await res.json()) as { artifacts?: RestArtifact[] };
      const list = body.artifacts ?? [];
      for (const a of list) {
        if (a.expired || !a.name.startsWith(prefix)) continue;
        // A `pull_request` run from a fork uploads into this repository's list too, with no secrets and
        // code nobody reviewed: its artifacts are never a checkpoint to resume from.
        const run = a.workflow_run;
        const fromFork =
          run?.head_repository_id !== undefined &&
          run.repository_id !== undefined &&
          run.head_repository_id !== run.repository_id;
        if (fromFork) continue;
        found.push({
          id: a.id,
          name: a.name,
          createdAt: a.created_at ? Date.parse(a.created_at) : 0,
          runId: a.workflow_run?.id ?? this.#o.runId,
        });
      }
      if (list.length < 100) break;
    }
    return found;
  }

  async #runArtifacts(prefix: string): Promise<Listed[]> {
    const client = await this.#client();
    const { artifacts } = await client.listArtifacts({
      findBy: {
        token: this.#o.token,
        workflowRunId: this.#o.runId,
        repositoryOwner: this.#owner,
        repositoryName: this.#repo,
      },
    });
    return artifacts
      .filter((a) => a.name.startsWith(prefix))
      .map((a) => ({ id: a.id, name: a.name, createdAt: a.createdAt?.getTime() ?? 0, runId: this.#o.runId }));
  }

  #watched<T>(fn: () => Promise<T>): Promise<T> {
    return withIdleTimeout(this.#o.idleTimeoutMs ?? DEFAULT_IDLE_MS, fn).then((r) => r.result);
  }

  async restore(prefix: string, dir: string, refused: ReadonlySet<string> = new Set()) {
    if (!this.#o.token)
      throw new StoreError('artifact restore needs `github-token` to list artifacts; set it');
    let newest: Listed | undefined;
    try {
      const list = await this.#watched(() =>
        this.#o.scope === 'repository' ? this.#repositoryArtifacts(prefix) : this.#runArtifacts(prefix),
      );
      // Newest by creation time; equal times (one-second resolution) fall back to the higher id. Entries
      // already refused are passed over, so a bad newest entry leaves the one before it usable.
      newest = list
        .filter((a) => isEntryOf(prefix, a.name) && !refused.has(a.name))
        .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id)[0];
    } catch (err) {
      throw new StoreError(`artifact list failed: ${(err as Error).message}`, { cause: err });
    }
    if (!newest) return undefined;
    try {
      const client = await this.#client();
      const id = newest.id;
      const runId = newest.runId;
      await this.#watched(() =>
        client.downloadArtifact(id, {
          path: dir,
          findBy: {
            token: this.#o.token,
            workflowRunId: runId,
            repositoryOwner: this.#owner,
            repositoryName: this.#repo,
          },
        }),
      );
    } catch (err) {
      throw new EntryUnusable(
        newest.name,
        `artifact download of ${newest.name} failed: ${(err as Error).message}`,
        { cause: err },
      );
    }
    return { name: newest.name };
  }

  #rest(): RestOptions {
    return {
      apiUrl: this.#o.apiUrl,
      token: this.#o.token,
      repository: this.#o.repository,
      ...(this.#o.signal ? { signal: this.#o.signal } : {}),
    };
  }

  /**
   * Deletes this key's artifacts older than the newest `keep` (the run's own for the per-run key, the
   * repository's for an explicit one), through the REST API: it needs `actions: write`.
   */
  async prune(prefix: string, keep: number): Promise<PruneOutcome> {
    if (!this.#o.token) return { deleted: 0, kept: 0, denied: true };
    let listed: Listed[];
    try {
      if (this.#o.scope === 'repository') listed = await this.#repositoryArtifacts(prefix);
      else {
        const res = await rest(this.#rest(), 'GET', `/actions/runs/${this.#o.runId}/artifacts?per_page=100`);
        const body = (await res.json()) as { artifacts?: RestArtifact[] };
        listed = (body.artifacts ?? []).map((a) => ({
          id: a.id,
          name: a.name,
          createdAt: a.created_at ? Date.parse(a.created_at) : 0,
          runId: this.#o.runId,
        }));
      }
    } catch (err) {
      if (err instanceof RestError && err.denied) return { deleted: 0, kept: 0, denied: true };
      throw new StoreError(`listing the artifacts of ${prefix}* failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    const old = listed
      .filter((a) => isEntryOf(prefix, a.name))
      .sort((a, b) => b.createdAt - a.createdAt || b.id - a.id)
      .slice(keep);
    let deleted = 0;
    for (const [i, a] of old.entries()) {
      try {
        await rest(this.#rest(), 'DELETE', `/actions/artifacts/${a.id}`);
        deleted += 1;
      } catch (err) {
        if (err instanceof RestError && err.denied) return { deleted, kept: old.length - i, denied: true };
        throw new StoreError(`deleting the artifact ${a.name} failed: ${(err as Error).message}`, {
          cause: err,
        });
      }
    }
    return { deleted, kept: 0, denied: false };
  }

  async save(name: string, dir: string): Promise<void> {
    try {
      const client = await this.#client();
      await this.#watched(() =>
        client.uploadArtifact(name, [join(dir, MANIFEST), join(dir, ARCHIVE)], dir, {
          // The archive is already gzip'ed.
          compressionLevel: 0,
          ...(this.#o.retentionDays ? { retentionDays: this.#o.retentionDays } : {}),
        }),
      );
    } catch (err) {
      throw new StoreError(`artifact upload of ${name} failed: ${(err as Error).message}`, { cause: err });
    }
  }
}
