// The environment a unit sees: the engine's own, minus the runner's secrets, plus the plan's and ours.

/**
 * Variables that let a process talk to the runner's services as the job. User commands never need them and
 * must not be able to read them (DESIGN §6, Security).
 */
const SECRET_NAMES = new Set([
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL',
  'ACTIONS_RUNTIME_URL',
]);
const SECRET_PREFIXES = ['ACTIONS_ID_TOKEN_REQUEST_'];

export function isRunnerSecret(name: string): boolean {
  return SECRET_NAMES.has(name) || SECRET_PREFIXES.some((p) => name.startsWith(p));
}

export function scrubEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !isRunnerSecret(k)) out[k] = v;
  return out;
}
