// A throwaway PostgreSQL server for tests: Debian's server binaries (`/usr/lib/postgresql/<v>/bin`, else
// `initdb` on PATH), a fresh cluster in a temporary folder, listening on a free loopback port with its unix
// socket in that folder too, trust authentication, durability off (the data is thrown away). PostgreSQL refuses
// to run as root, so under root the server runs as the `postgres` user (else `nobody`) and the folder is handed
// to that user. `stop()` shuts it down and removes the folder.
//
// Missing binaries are an error, never a skip: `.ci/run` installs them, and a test that silently did not run
// would look like a test that passed.
import { type ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, readdirSync, realpathSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';

export interface PostgresBinaries {
  /** The folder holding initdb, postgres and (on Debian) psql. */
  bin: string;
  initdb: string;
  postgres: string;
  psql: string;
}

const INSTALL_HINT =
  'Install the PostgreSQL server: run `.ci/run` (it installs it when missing) or ' +
  '`apt-get update && apt-get install -y --no-install-recommends postgresql`.';

function onPath(name: string): string | undefined {
  for (const d of (process.env.PATH ?? '').split(delimiter)) {
    const p = join(d, name);
    if (d && existsSync(p)) return p;
  }
  return undefined;
}

/** The newest installed server (Debian's versioned folders first), or an error that says how to install one. */
export function findPostgres(): PostgresBinaries {
  const candidates: string[] = [];
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => existsSync(join(debian, v, 'bin', 'initdb')))
      .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a));
    for (const v of versions) candidates.push(join(debian, v, 'bin'));
  }
  const initdbOnPath = onPath('initdb');
  if (initdbOnPath) candidates.push(dirname(realpathSync(initdbOnPath)));
  for (const bin of candidates) {
    const postgres = join(bin, 'postgres');
    if (!existsSync(postgres)) continue;
    const psql = existsSync(join(bin, 'psql')) ? join(bin, 'psql') : onPath('psql');
    if (!psql) continue;
    return { bin, initdb: join(bin, 'initdb'), postgres, psql };
  }
  throw new Error(
    'PostgreSQL server binaries not found: looked for initdb, postgres and psql in /usr/lib/postgresql/*/bin ' +
      `and on PATH (${process.env.PATH ?? ''}). ${INSTALL_HINT}`,
  );
}

/** Who runs the server: ourselves, or under root an unprivileged user. */
function serverUser(): { name: string; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of ['postgres', 'nobody']) {
    try {
      const uid = Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
      const gid = Number(execFileSync('id', ['-g', name], { encoding: 'utf8' }).trim());
      if (Number.isInteger(uid) && Number.isInteger(gid)) return { name, uid, gid };
    } catch {
      // No such user: try the next.
    }
  }
  throw new Error(
    'running as root, and neither a `postgres` nor a `nobody` user exists to run the PostgreSQL server ' +
      '(it refuses to run as root). Create one: `useradd --system postgres` (the postgresql package does).',
  );
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; uid?: number; gid?: number; input?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      { env: opts.env ?? process.env, uid: opts.uid, gid: opts.gid, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        if (err && typeof err.code !== 'number') return reject(err);
        resolve({ code, stdout, stderr });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** A long-lived psql: one process for many small queries (polling for an event costs no fork). */
export interface PsqlSession {
  /** Rows of the result, `|`-separated fields; rejects with the server's message on an SQL error. */
  query(sql: string): Promise<string[]>;
  close(): Promise<void>;
}

export interface Postgres {
  readonly bin: PostgresBinaries;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly database: string;
  /** PGHOST, PGPORT, PGUSER, PGDATABASE for clients (and nothing that would point them elsewhere). */
  readonly env: Record<string, string>;
  readonly dir: string;
  /** Everything the server logged so far (its stderr): startup lines, and every ERROR with its statement. */
  log(): string;
  /** One query through a fresh psql: rows, `|`-separated fields. Default database: `database`. */
  query(sql: string, database?: string): Promise<string[]>;
  /** A psql kept open (transactions and session locks last across its queries). Default database: `database`. */
  session(database?: string): PsqlSession;
  /** `env` with PGDATABASE set to another database of this server. */
  envFor(database: string): Record<string, string>;
  /** A whole environment for a client: this process's, without its own PG* variables, plus `envFor(database)`. */
  clientEnv(database?: string): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Created after start and named in `env.PGDATABASE`. Default `test`. */
  database?: string;
  /** Extra server settings (`-c name=value`). */
  settings?: Record<string, string>;
}

const PSQL_ARGS = ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=1'];

export async function startPostgres(opts: StartOptions = {}): Promise<Postgres> {
  const bin = findPostgres();
  const owner = serverUser();
  const ids = owner ? { uid: owner.uid, gid: owner.gid } : {};
  const dir = await mkdtemp(join(tmpdir(), 'ckpt-pg-'));
  try {
    const data = join(dir, 'data');
    const sockets = join(dir, 'sock');
    await mkdir(sockets);
    if (owner) {
      chownSync(dir, owner.uid, owner.gid);
      chownSync(sockets, owner.uid, owner.gid);
    }
    const serverEnv: NodeJS.ProcessEnv = { PATH: process.env.PATH, LC_ALL: 'C', LANG: 'C', TZ: 'UTC' };
    const init = await run(
      bin.initdb,
      ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync'],
      { env: serverEnv, ...ids },
    );
    if (init.code !== 0)
      throw new Error(
        `initdb failed (exit ${init.code}) for data directory ${data}` +
          `${owner ? ` as user ${owner.name}` : ''}: ${init.stderr.trim() || init.stdout.trim()}. ` +
          `The folder must be writable by that user; ${INSTALL_HINT}`,
      );

    let lastError = '';
    // The port is free when picked; another process may take it before the server binds: pick again.
    for (let tries = 0; tries < 3; tries++) {
      const port = await freePort();
      const server = await launch(bin, data, sockets, port, serverEnv, ids, opts.settings ?? {});
      if ('error' in server) {
        lastError = server.error;
        if (/could not (bind|create listen socket)|address already in use/i.test(server.error)) continue;
        break;
      }
      const database = opts.database ?? 'test';
      const env = {
        PGHOST: '127.0.0.1',
        PGPORT: String(port),
        PGUSER: 'postgres',
        PGDATABASE: database,
      };
      const clientEnv = (db = database): NodeJS.ProcessEnv => {
        const e: NodeJS.ProcessEnv = { ...process.env };
        // Anything that could point a client at another server or credentials (PGSERVICE, PGPASSFILE…).
        for (const k of Object.keys(e)) if (k.startsWith('PG')) delete e[k];
        return { ...e, ...env, PGDATABASE: db };
      };
      const query = async (sql: string, db = database): Promise<string[]> => {
        const r = await run(bin.psql, [...PSQL_ARGS, '-c', sql], { env: clientEnv(db) });
        if (r.code !== 0)
          throw new Error(
            `psql on 127.0.0.1:${port}/${db} failed (exit ${r.code}) for ${sql}: ${r.stderr.trim()}`,
          );
        return r.stdout.split('\n').filter((l) => l !== '');
      };
      const pg: Postgres = {
        bin,
        host: '127.0.0.1',
        port,
        user: 'postgres',
        database,
        env,
        dir,
        log: server.log,
        query: (sql, db) => query(sql, db),
        session: (db = database) => openSession(bin.psql, clientEnv(db), `127.0.0.1:${port}/${db}`),
        clientEnv,
        envFor: (db) => ({ ...env, PGDATABASE: db }),
        stop: async () => {
          await server.stop();
          await rm(dir, { recursive: true, force: true });
        },
      };
      try {
        await query(`CREATE DATABASE "${database}"`, 'postgres');
      } catch (err) {
        await pg.stop();
        throw err;
      }
      return pg;
    }
    throw new Error(
      `PostgreSQL (${bin.postgres}) did not start on 127.0.0.1 with data directory ${data}: ${lastError}. ` +
        `See the log above; ${INSTALL_HINT}`,
    );
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

interface Launched {
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts `postgres` in the foreground and resolves when it accepts connections (its own log line says so). */
async function launch(
  bin: PostgresBinaries,
  data: string,
  sockets: string,
  port: number,
  env: NodeJS.ProcessEnv,
  ids: { uid?: number; gid?: number },
  extra: Record<string, string>,
): Promise<Launched | { error: string }> {
  const settings: Record<string, string> = {
    listen_addresses: '127.0.0.1',
    port: String(port),
    unix_socket_directories: sockets,
    // Throwaway data: no durability work, no parallel workers (small /dev/shm in containers).
    fsync: 'off',
    synchronous_commit: 'off',
    full_page_writes: 'off',
    max_wal_size: '2GB',
    max_parallel_workers_per_gather: '0',
    max_connections: '50',
    // `db=… app=…` on every line: a test can tell its own database's errors from another's.
    log_line_prefix: '%m [%p] db=%d app=%a ',
    ...extra,
  };
  const args = ['-D', data];
  for (const [k, v] of Object.entries(settings)) args.push('-c', `${k}=${v}`);
  const child: ChildProcess = spawn(bin.postgres, args, { env, ...ids, stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const onData = (d: Buffer) => {
    log += d.toString();
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // If the test process dies without stop(), do not leave a server behind.
  const killOnExit = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGQUIT');
  };
  process.once('exit', killOnExit);
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGINT'); // fast shutdown: roll back sessions, checkpoint, exit
    const gone = await Promise.race([
      exited.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 15_000).unref()),
    ]);
    if (!gone) {
      child.kill('SIGKILL');
      await exited;
    }
  };
  const ready = await new Promise<boolean>((resolve) => {
    const check = () => {
      if (/database system is ready to accept connections/.test(log)) resolve(true);
    };
    child.stderr?.on('data', check);
    child.stdout?.on('data', check);
    void exited.then(() => resolve(false));
    setTimeout(() => resolve(false), 60_000).unref();
  });
  if (!ready) {
    await stop();
    return { error: `server exited or did not become ready within 60 s; its log:\n${log.trim()}` };
  }
  return { log: () => log, stop };
}

function openSession(psql: string, env: NodeJS.ProcessEnv, where: string): PsqlSession {
  const child = spawn(psql, ['-X', '-q', '-A', '-t', '-v', 'ON_ERROR_STOP=0'], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  let n = 0;
  let closed = false;
  const pending: Array<{ marker: string; resolve: (rows: string[]) => void; reject: (e: Error) => void }> =
    [];
  const drain = () => {
    for (;;) {
      const head = pending[0];
      if (!head) return;
      const at = out.indexOf(`${head.marker} `);
      const eol = at < 0 ? -1 : out.indexOf('\n', at);
      if (eol < 0) return;
      const rows = out
        .slice(0, at)
        .split('\n')
        .filter((l) => l !== '');
      const failed = out.slice(at + head.marker.length + 1, eol).trim() === 'true';
      out = out.slice(eol + 1);
      pending.shift();
      if (failed) {
        head.reject(new Error(`psql session on ${where}: ${err.trim() || 'query failed'}`));
      } else head.resolve(rows);
      err = '';
    }
  };
  child.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
    drain();
  });
  child.stderr?.on('data', (d: Buffer) => {
    err += d.toString();
  });
  child.once('exit', (code) => {
    closed = true;
    for (const p of pending.splice(0))
      p.reject(new Error(`psql session on ${where} ended (exit ${code}): ${err.trim()}`));
  });
  return {
    query(sql) {
      if (closed) return Promise.reject(new Error(`psql session on ${where} is closed`));
      n += 1;
      const marker = `__checkpoint_query_${n}__`;
      return new Promise((resolve, reject) => {
        pending.push({ marker, resolve, reject });
        // ERROR is psql's own variable: true when the last statement failed.
        child.stdin?.write(`${sql.replace(/;\s*$/, '')};\n\\echo ${marker} :ERROR\n`);
      });
    },
    close() {
      if (closed) return Promise.resolve();
      return new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.stdin?.end('\\q\n');
      });
    },
  };
}
