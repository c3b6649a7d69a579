// Azurite's blob service as a child process: the real blob storage both @actions libraries upload to and
// download from through the SAS URLs the fake services hand out.
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import {
  BlobSASPermissions,
  BlobServiceClient,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
} from '@azure/storage-blob';

/** Azurite's well-known development account (public, documented, accepted by every Azurite). */
export const AZURITE_ACCOUNT = 'devstoreaccount1';
export const AZURITE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface SasOverrides {
  contentDisposition?: string;
  contentType?: string;
}

export interface Azurite {
  /** Blob endpoint including the account, e.g. `http://127.0.0.1:41234/devstoreaccount1`. */
  url: string;
  account: string;
  key: string;
  /** Wall time from spawn to "listens on". */
  startupMs: number;
  pid: number;
  client: BlobServiceClient;
  ensureContainer(name: string): Promise<void>;
  /**
   * A SAS URL for one blob; `permissions` as in Azure (`r`, `cw`, ...). Valid for an hour. `overrides` set the
   * response headers a GET of the URL returns (as signed download URLs from GitHub do).
   */
  sasUrl(container: string, blob: string, permissions: string, overrides?: SasOverrides): string;
  /** Downloads a blob's bytes, for assertions on what a library actually stored. */
  read(container: string, blob: string): Promise<Buffer>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

/**
 * Last line of defence if a test run dies without calling stop(): 'exit' handlers may only do synchronous
 * work, and kill() is. The child also exits by itself when its IPC channel to us closes (see start), which
 * covers this process being SIGKILLed.
 */
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
  });
}

function azuriteBlobMain(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('azurite/package.json')), 'dist/src/blob/main.js');
}

/** Without AZURITE_ACCOUNTS, which would replace the well-known account the URLs are signed for. */
function azuriteEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.AZURITE_ACCOUNTS;
  return env;
}

// Exits the child when the parent goes away: Node closes the IPC channel however the parent dies.
const PARENT_GUARD = `data:text/javascript,process.on('disconnect',()=>process.exit(0))`;

export async function startAzurite(opts: { startTimeoutMs?: number } = {}): Promise<Azurite> {
  installExitHook();
  // In-memory persistence refuses --location (Azurite 3.35: "not supported when the --location option is
  // set"), so the working directory is the temp dir instead: anything Azurite writes lands there.
  const cwd = await mkdtemp(join(tmpdir(), 'azurite-'));
  const started = Date.now();
  const child = spawn(
    process.execPath,
    [
      `--import=${PARENT_GUARD}`,
      azuriteBlobMain(),
      '--inMemoryPersistence',
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--silent',
      '--disableTelemetry',
      '--skipApiVersionCheck',
      '--loose',
    ],
    { cwd, stdio: ['ignore', 'pipe', 'pipe', 'ipc'], env: azuriteEnv() },
  );
  live.add(child);
  const exited = once(child, 'exit').then(() => {
    live.delete(child);
  });

  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });

  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      if (child.connected) child.disconnect();
      else child.kill('SIGKILL');
      // Only a safety net for a wedged child; the normal path is the guard's process.exit on disconnect.
      const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(force);
    }
    await rm(cwd, { recursive: true, force: true });
  };

  let origin: string;
  try {
    origin = await new Promise<string>((resolve, reject) => {
      const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
      const timer = setTimeout(
        () =>
          reject(new Error(`Azurite did not listen within ${opts.startTimeoutMs ?? 30_000} ms: ${stderr}`)),
        opts.startTimeoutMs ?? 30_000,
      );
      lines.on('line', (line) => {
        const m = /successfully listens on (http:\/\/\S+)/.exec(line);
        if (m?.[1]) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`Azurite exited before listening (code ${code}, signal ${signal}): ${stderr}`));
      });
    });
  } catch (err) {
    await stop();
    throw err;
  }
  const startupMs = Date.now() - started;

  const url = `${origin}/${AZURITE_ACCOUNT}`;
  const credential = new StorageSharedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY);
  const client = new BlobServiceClient(url, credential);
  const containers = new Set<string>();

  return {
    url,
    account: AZURITE_ACCOUNT,
    key: AZURITE_KEY,
    startupMs,
    pid: child.pid ?? -1,
    client,
    async ensureContainer(name) {
      if (containers.has(name)) return;
      await client.getContainerClient(name).createIfNotExists();
      containers.add(name);
    },
    sasUrl(container, blob, permissions, overrides = {}) {
      const now = Date.now();
      const sas = generateBlobSASQueryParameters(
        {
          containerName: container,
          blobName: blob,
          permissions: BlobSASPermissions.parse(permissions),
          // Backdated so a clock difference between us and Azurite can never make a fresh URL "not yet valid".
          startsOn: new Date(now - 5 * 60_000),
          expiresOn: new Date(now + 60 * 60_000),
          protocol: SASProtocol.HttpsAndHttp,
          ...overrides,
        },
        credential,
      ).toString();
      const path = blob.split('/').map(encodeURIComponent).join('/');
      return `${url}/${encodeURIComponent(container)}/${path}?${sas}`;
    },
    async read(container, blob) {
      return client.getContainerClient(container).getBlobClient(blob).downloadToBuffer();
    },
    stop,
  };
}
