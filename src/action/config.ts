// Everything the action reads from the runner's environment, in one place.
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface RunnerConfig {
  workspace: string;
  temp: string;
  runId: number;
  runAttempt: number;
  workflow: string;
  /** `.github/workflows/x.yml@refs/heads/main`, from GITHUB_WORKFLOW_REF (dispatch needs the file). */
  workflowRef: string;
  job: string;
  repository: string;
  ref: string;
  apiUrl: string;
  /** GITHUB_ACTOR: who started the workflow run (the approver of the `approve` input); '' when unset. */
  actor?: string;
  /** RUNNER_ENVIRONMENT says `self-hosted`: the workspace may outlive the job. */
  selfHosted: boolean;
  /** The runner's job-level token variables are present (a real or emulated runner, not a laptop). */
  summaryFile?: string;
}

export function readConfig(env: NodeJS.ProcessEnv = process.env): RunnerConfig {
  const workspace = env.GITHUB_WORKSPACE || process.cwd();
  const cfg: RunnerConfig = {
    workspace,
    temp: env.RUNNER_TEMP || join(tmpdir(), 'checkpoint-action'),
    runId: Number(env.GITHUB_RUN_ID) || 0,
    runAttempt: Number(env.GITHUB_RUN_ATTEMPT) || 1,
    workflow: env.GITHUB_WORKFLOW || 'workflow',
    workflowRef: env.GITHUB_WORKFLOW_REF || '',
    job: env.GITHUB_JOB || 'job',
    repository: env.GITHUB_REPOSITORY || '',
    ref: env.GITHUB_REF || '',
    apiUrl: env.GITHUB_API_URL || 'https://api.github.com',
    actor: env.GITHUB_ACTOR || '',
    selfHosted: env.RUNNER_ENVIRONMENT === 'self-hosted',
  };
  if (env.GITHUB_STEP_SUMMARY) cfg.summaryFile = env.GITHUB_STEP_SUMMARY;
  return cfg;
}
