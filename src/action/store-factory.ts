// Picks the store the `store` input names.
import { ArtifactStore } from '../stores/artifact.js';
import { CacheStore } from '../stores/cache.js';
import { NoStore, type Store } from '../stores/store.js';
import type { RunnerConfig } from './config.js';
import type { Inputs } from './inputs.js';

export function makeStore(
  inputs: Pick<Inputs, 'store' | 'githubToken' | 'key' | 'retentionDays'>,
  cfg: RunnerConfig,
  signal?: AbortSignal,
): Store {
  if (inputs.store === 'none') return new NoStore();
  if (inputs.store === 'artifact')
    return new ArtifactStore({
      token: inputs.githubToken,
      repository: cfg.repository,
      runId: cfg.runId,
      // The default key is per run; an explicit key is meant to be found by later runs.
      scope: inputs.key === undefined ? 'run' : 'repository',
      apiUrl: cfg.apiUrl,
      ...(inputs.retentionDays !== undefined ? { retentionDays: inputs.retentionDays } : {}),
      ...(signal ? { signal } : {}),
    });
  return new CacheStore({
    rest: {
      apiUrl: cfg.apiUrl,
      token: inputs.githubToken,
      repository: cfg.repository,
      ...(signal ? { signal } : {}),
    },
    ...(cfg.ref ? { ref: cfg.ref } : {}),
  });
}
