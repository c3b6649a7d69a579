// The runner's side of an action: inputs from INPUT_* variables, outputs and state through the
// GITHUB_OUTPUT / GITHUB_STATE files, log commands (`::warning::`, `::group::`) on stdout. This is the
// protocol @actions/core implements, written out here because importing @actions/core also loads its OIDC
// client and with it @actions/http-client and undici (1.2 MB of bundle, ~50 ms of compile on every cold
// start) that main and post never use. The store libraries bring their own copy when they are loaded.
import { randomUUID } from 'node:crypto';
import { appendFileSync } from 'node:fs';
import { EOL } from 'node:os';

export interface AnnotationProperties {
  title?: string;
  file?: string;
}

function escapeData(s: string): string {
  return s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}

function escapeProperty(s: string): string {
  return escapeData(s).replace(/:/g, '%3A').replace(/,/g, '%2C');
}

function issue(command: string, message = '', props: Record<string, string | number | undefined> = {}): void {
  const p = Object.entries(props)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${escapeProperty(String(v))}`)
    .join(',');
  process.stdout.write(`::${command}${p ? ` ${p}` : ''}::${escapeData(message)}${EOL}`);
}

/** `name<<delimiter` blocks, as the runner reads GITHUB_OUTPUT and GITHUB_STATE. */
function fileCommand(
  envName: 'GITHUB_OUTPUT' | 'GITHUB_STATE',
  legacy: string,
  name: string,
  value: string,
): void {
  const file = process.env[envName];
  if (!file) {
    issue(legacy, value, { name });
    return;
  }
  const delimiter = `ghadelimiter_${randomUUID()}`;
  // A uuid cannot appear by chance; refusing is what the toolkit does should one be forged into a value.
  if (name.includes(delimiter) || value.includes(delimiter))
    throw new Error(`${envName}: the name or value of "${name}" contains the delimiter`);
  appendFileSync(file, `${name}<<${delimiter}${EOL}${value}${EOL}${delimiter}${EOL}`, { encoding: 'utf8' });
}

/** The raw input (not trimmed: `run` keeps its layout); '' when the workflow gave none. */
export function getInput(name: string): string {
  return process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '';
}

export function setOutput(name: string, value: string): void {
  fileCommand('GITHUB_OUTPUT', 'set-output', name, value);
}

export function saveState(name: string, value: string): void {
  fileCommand('GITHUB_STATE', 'save-state', name, value);
}

/** What main saved, handed to post by the runner as STATE_<name>. */
export function getState(name: string): string {
  return process.env[`STATE_${name}`] ?? '';
}

export function info(message: string): void {
  process.stdout.write(`${message}${EOL}`);
}

export function warning(message: string, props: AnnotationProperties = {}): void {
  issue('warning', message, { ...props });
}

export function error(message: string, props: AnnotationProperties = {}): void {
  issue('error', message, { ...props });
}

export function setFailed(message: string): void {
  process.exitCode = 1;
  error(message);
}

export function setSecret(value: string): void {
  issue('add-mask', value);
}

export function startGroup(name: string): void {
  issue('group', name);
}

export function endGroup(): void {
  issue('endgroup');
}
