/**
 * A real, throwaway PostgreSQL server for tests: the store's PostgreSQL backend must be tested
 * against the real thing (SQL dialect, transactions, concurrent connections, restarts), not a mock.
 *
 * Each server is its own cluster (initdb) in a fresh temp dir under os.tmpdir(), with its unix
 * socket there too, listening on a free loopback port only, so it never meets a system cluster
 * (Debian's package may run one on 5432) or another test file's server. It uses Debian's server
 * binaries in /usr/lib/postgresql/<version>/bin (`apt-get install -y postgresql`; .ci/run installs
 * them). As root, initdb and pg_ctl run as the `postgres` system user (PostgreSQL refuses to run
 * as root); otherwise as the current user.
 *
 * Trust authentication, superuser `keygate`, database `keygate`; fsync off (data survives a clean
 * stop/start, not a machine crash). The server log is kept in the temp dir and its tail is part of
 * every error, so a failed start says why.
 */
import { spawn, spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.js';

export interface PostgresServer {
  /** postgres://keygate@127.0.0.1:<port>/<database> (trust auth, no password). */
  url: string;
  port: number;
  /** The cluster's data directory (inside the temp dir). */
  dataDir: string;
  /** The server log (inside the temp dir); its tail is included in errors. */
  logFile: string;
  /** Fast shutdown (open connections are closed), data kept. Does nothing if already stopped. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same data. Does nothing if already running. */
  start(): Promise<void>;
  restart(): Promise<void>;
  /** Creates another database (for isolated tests) and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server and deletes the temp dir. Never throws; safe to call more than once. */
  remove(): Promise<void>;
}

export interface PostgresOptions {
  /** The database created at start, in `url`. Default `keygate`. */
  database?: string;
  /** Extra postgresql.conf settings, e.g. `{ statement_timeout: '5s' }` (they win over the defaults here). */
  settings?: Record<string, string | number | boolean>;
}

const DEBIAN_POSTGRESQL_DIR = '/usr/lib/postgresql';
const SUPERUSER = 'keygate';
const TIMEOUT_SECONDS = 30;
/** A unix socket path must fit in sockaddr_un (107 bytes on Linux). */
const MAX_SOCKET_PATH = 100;

/** The bin dir of the highest PostgreSQL version installed the Debian way that has initdb, or null. */
function debianBinDir(): string | null {
  let versions: string[];
  try {
    versions = readdirSync(DEBIAN_POSTGRESQL_DIR);
  } catch {
    return null;
  }
  const candidates = versions
    .filter((version) => /^\d+(\.\d+)?$/.test(version) && existsSync(path.join(DEBIAN_POSTGRESQL_DIR, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return candidates[0] === undefined ? null : path.join(DEBIAN_POSTGRESQL_DIR, candidates[0], 'bin');
}

/** Whether PostgreSQL's server binaries (initdb, pg_ctl) are installed in /usr/lib/postgresql/<version>/bin. */
export function postgresAvailable(): boolean {
  return debianBinDir() !== null;
}

interface RunResult {
  code: number | null;
  output: string;
}

/** How to run the server binaries: as the `postgres` user when we are root (PostgreSQL refuses root). */
interface Runner {
  binDir: string;
  /** uid/gid to own the temp dir, or null to leave it to the current user. */
  owner: { uid: number; gid: number } | null;
  command(binary: string, args: string[]): [string, string[]];
}

function makeRunner(): Runner {
  const binDir = debianBinDir();
  if (binDir === null) {
    throw new Error(
      `PostgreSQL server binaries not found (no ${DEBIAN_POSTGRESQL_DIR}/<version>/bin/initdb): apt-get install -y postgresql ` +
        '(the test suite needs a real PostgreSQL server; .ci/run installs it)',
    );
  }
  if (process.getuid?.() !== 0) {
    return { binDir, owner: null, command: (binary, args) => [path.join(binDir, binary), args] };
  }
  const id = (flag: string): number => {
    const result = spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' });
    const value = Number(result.stdout.trim());
    if (result.status !== 0 || !Number.isInteger(value)) {
      throw new Error(
        'running as root, but there is no `postgres` system user to run the PostgreSQL server as ' +
          `(id ${flag} postgres: ${(result.stderr || String(result.error ?? '')).trim()}): apt-get install -y postgresql creates it`,
      );
    }
    return value;
  };
  return {
    binDir,
    owner: { uid: id('-u'), gid: id('-g') },
    command: (binary, args) => ['runuser', ['-u', 'postgres', '--', path.join(binDir, binary), ...args]],
  };
}

/** The environment for the server binaries: no PG* variables of the caller (PGDATA, PGPORT, ...) leak in. */
function serverEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('PG')) env[name] = value;
  }
  env.LC_ALL = 'C';
  return env;
}

function run(runner: Runner, binary: string, args: string[], cwd: string): Promise<RunResult> {
  const [command, commandArgs] = runner.command(binary, args);
  return new Promise((resolve, reject) => {
    // cwd: the temp dir, which the postgres user can enter (the caller's cwd may not be).
    const child = spawn(command, commandArgs, { cwd, env: serverEnvironment(), stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    // pg_ctl has its own -t timeout; this only catches a binary that hangs for another reason.
    const timer = setTimeout(() => child.kill('SIGKILL'), (TIMEOUT_SECONDS + 30) * 1000);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`could not run ${command} ${commandArgs.join(' ')}: ${error.message}`));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output: output.trim() });
    });
  });
}

function logTail(logFile: string): string {
  try {
    const lines = readFileSync(logFile, 'utf8').trimEnd().split('\n');
    return lines.slice(-30).join('\n');
  } catch {
    return '(no server log)';
  }
}

function describeFailure(what: string, result: RunResult, logFile: string): Error {
  return new Error(`${what} (exit code ${result.code}):\n${result.output || '(no output)'}\n--- tail of ${logFile} ---\n${logTail(logFile)}`);
}

/** A postgresql.conf line; string values are single-quoted with quotes doubled. */
function confLine(name: string, value: string | number | boolean): string {
  const rendered = typeof value === 'string' ? `'${value.replaceAll("'", "''")}'` : String(value);
  return `${name} = ${rendered}`;
}

function urlFor(port: number, database: string): string {
  return `postgres://${SUPERUSER}@127.0.0.1:${port}/${encodeURIComponent(database)}`;
}

async function createDatabaseOn(port: number, name: string): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: SUPERUSER, database: 'postgres', connectionTimeoutMillis: TIMEOUT_SECONDS * 1000 });
  try {
    await client.connect();
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether pg_ctl's failed start was another process taking the port we picked a moment earlier. */
function lostPortRace(logFile: string): boolean {
  return /could not bind|Address already in use|could not create any TCP\/IP sockets/.test(logTail(logFile));
}

export async function startPostgres(options: PostgresOptions = {}): Promise<PostgresServer> {
  const runner = makeRunner();
  const database = options.database ?? SUPERUSER;
  const directory = mkdtempSync(path.join(tmpdir(), 'keygate-postgres-'));
  const dataDir = path.join(directory, 'data');
  const socketDir = path.join(directory, 'socket');
  const logFile = path.join(directory, 'postgres.log');
  try {
    mkdirSync(socketDir);
    if (runner.owner) {
      chownSync(directory, runner.owner.uid, runner.owner.gid);
      chownSync(socketDir, runner.owner.uid, runner.owner.gid);
    }
  } catch (error) {
    rmSync(directory, { recursive: true, force: true });
    throw error;
  }

  let port = 0;
  let removed = false;
  // stop/start/remove run one at a time, so a remove() racing a restart() cannot leave a server behind.
  let queue: Promise<unknown> = Promise.resolve();
  const serially = <T>(operation: () => Promise<T>): Promise<T> => {
    const result = queue.then(operation);
    queue = result.catch(() => undefined);
    return result;
  };

  const pgCtl = (args: string[]) => run(runner, 'pg_ctl', ['-D', dataDir, ...args], directory);
  const startServer = async (): Promise<void> => {
    // -o -p: the port is the only setting passed on the command line (pg_ctl runs it through sh; a number needs no quoting).
    const result = await pgCtl(['start', '-w', '-t', String(TIMEOUT_SECONDS), '-l', logFile, '-o', `-p ${port}`]);
    if (result.code !== 0) throw describeFailure(`PostgreSQL did not start on 127.0.0.1:${port}`, result, logFile);
  };
  /** Asks pg_ctl rather than remembering: a server that died on its own counts as stopped. */
  const isRunning = async (): Promise<boolean> => (await pgCtl(['status'])).code === 0;
  const stopServer = async (mode: 'fast' | 'immediate'): Promise<void> => {
    const result = await pgCtl(['stop', '-m', mode, '-w', '-t', String(TIMEOUT_SECONDS)]);
    // Without a postmaster.pid there was no server to stop (pg_ctl still exits non-zero).
    if (result.code !== 0 && existsSync(path.join(dataDir, 'postmaster.pid'))) {
      throw describeFailure(`PostgreSQL did not stop (${mode} shutdown)`, result, logFile);
    }
  };

  // The postmaster is its own session (pg_ctl detaches it): stop it if the test process exits without remove().
  const stopOnExit = () => {
    if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
      const [command, args] = runner.command('pg_ctl', ['-D', dataDir, 'stop', '-m', 'immediate', '-w', '-t', '10']);
      spawnSync(command, args, { cwd: directory, env: serverEnvironment(), stdio: 'ignore', timeout: 15_000 });
    }
    try {
      rmSync(directory, { recursive: true, force: true });
    } catch {
      // the process is exiting; a leftover temp dir is all that is lost
    }
  };
  process.once('exit', stopOnExit);

  const remove = (): Promise<void> =>
    serially(async () => {
      if (removed) return;
      removed = true;
      process.off('exit', stopOnExit);
      if (existsSync(path.join(dataDir, 'postmaster.pid'))) {
        try {
          await stopServer('fast');
        } catch {
          await stopServer('immediate').catch(() => undefined);
        }
      }
      try {
        rmSync(directory, { recursive: true, force: true });
      } catch {
        // nothing more to do about a dir we cannot delete; it is in the temp dir
      }
    });

  try {
    if (Buffer.byteLength(path.join(socketDir, '.s.PGSQL.65535')) > MAX_SOCKET_PATH) {
      throw new Error(`the temp dir ${directory} is too long a path for a unix socket: set TMPDIR to a shorter directory (e.g. /tmp)`);
    }
    const initdb = await run(
      runner,
      'initdb',
      ['-D', dataDir, '--auth=trust', '-U', SUPERUSER, '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      directory,
    );
    if (initdb.code !== 0) {
      const hint = runner.owner ? ` (as root it runs as the postgres user, who must be able to enter ${tmpdir()})` : '';
      throw describeFailure(`initdb failed in ${dataDir}${hint}`, initdb, logFile);
    }
    const settings: Record<string, string | number | boolean> = {
      listen_addresses: '127.0.0.1',
      unix_socket_directories: socketDir,
      fsync: false,
      max_connections: 200,
      ...options.settings,
    };
    // Appended after initdb's own lines: the last occurrence of a setting wins.
    appendFileSync(
      path.join(dataDir, 'postgresql.conf'),
      `\n# keygate test server (test/helpers/postgres.ts)\n${Object.entries(settings)
        .map(([name, value]) => confLine(name, value))
        .join('\n')}\n`,
    );

    // freePort() only says the port was free a moment ago; another process may take it first, so try a few.
    for (let attempt = 1; ; attempt++) {
      port = await freePort();
      try {
        await startServer();
        break;
      } catch (error) {
        if (attempt >= 3 || !lostPortRace(logFile)) throw error;
      }
    }
    await createDatabaseOn(port, database);
  } catch (error) {
    await remove();
    throw error;
  }

  return {
    url: urlFor(port, database),
    port,
    dataDir,
    logFile,
    stop: () =>
      serially(async () => {
        // After remove() there is nothing left to stop.
        if (!removed && (await isRunning())) await stopServer('fast');
      }),
    start: () =>
      serially(async () => {
        if (removed) throw new Error(`cannot start: this PostgreSQL server was removed (${directory}); call startPostgres() for a new one`);
        if (!(await isRunning())) await startServer();
      }),
    restart: () =>
      serially(async () => {
        if (removed) throw new Error(`cannot restart: this PostgreSQL server was removed (${directory}); call startPostgres() for a new one`);
        if (await isRunning()) await stopServer('fast');
        await startServer();
      }),
    async createDatabase(name: string) {
      if (removed || !(await isRunning())) {
        throw new Error(`cannot create database ${name}: the PostgreSQL server is not running (call start() first)`);
      }
      await createDatabaseOn(port, name);
      return urlFor(port, name);
    },
    remove,
  };
}
