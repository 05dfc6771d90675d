/**
 * The PostgreSQL server behind the gateway's PostgreSQL store (KEYGATE_DATABASE_URL) in the
 * benchmark: a throwaway cluster started by the tests' helper (test/helpers/postgres.ts: its own
 * initdb in a temp dir, a free loopback port, trust auth, fsync off), with pg_stat_statements loaded
 * so the bench can count the store's statements on the server side, exactly:
 * - change-id reads: `SELECT change_id FROM keygate_generation WHERE id = 1`, the per-batch check
 *   every S3 request awaits (src/store/postgres/replica.ts);
 * - reloads: the repeatable-read snapshot that reads every key and bucket after a change (it reads
 *   change_id too, with the same statement, which is subtracted).
 * The server's own CPU time (the postmaster and all its processes, from /proc) is work a deployment
 * pays for, so the bench reports it next to the gateway's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { startPostgres } from '../test/helpers/postgres.js';

export interface StoreStatements {
  /** The per-request check (excluding the one each reload makes inside its snapshot). */
  changeIdReads: number;
  /** Full reloads of keys and buckets. */
  reloads: number;
}

export interface BenchPostgres {
  /** postgres://keygate@127.0.0.1:PORT/keygate */
  url: string;
  /** The postmaster's pid. */
  pid: number;
  /** e.g. "PostgreSQL 15.14" */
  version: string;
  /** CPU seconds the whole server (postmaster, backends, background processes) has used so far. */
  cpuSeconds(): number;
  /** The store's statements the server has run so far (all databases, all clients). */
  storeStatements(): Promise<StoreStatements>;
  stop(): Promise<void>;
}

/** utime + stime (and, with `children`, cutime + cstime of reaped children) of one process, seconds. */
function cpuOf(pid: number, children: boolean): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
  return ticks / 100;
}

/**
 * The server's CPU so far: the postmaster with every child it has reaped (a backend whose connection
 * closed), plus the live children (backends, checkpointer, walwriter, ...). A backend that exits
 * moves its time from the second sum to the first, so the total only grows.
 */
function serverCpuSeconds(postmaster: number): number {
  let seconds = cpuOf(postmaster, true);
  let children = '';
  try {
    children = readFileSync(`/proc/${postmaster}/task/${postmaster}/children`, 'utf8');
  } catch {
    // Kernel without CONFIG_PROC_CHILDREN: the postmaster and the children it reaped only.
  }
  for (const child of children.split(' ').filter((text) => text !== '')) {
    try {
      seconds += cpuOf(Number(child), false);
    } catch {
      // exited meanwhile (its time is now in the postmaster's cutime)
    }
  }
  return seconds;
}

export async function startBenchPostgres(): Promise<BenchPostgres> {
  const server = await startPostgres({ settings: { shared_preload_libraries: 'pg_stat_statements' } });
  const client = new pg.Client({ connectionString: server.url, application_name: 'keygate-bench', connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
    await client.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    const version = (await client.query<{ v: string }>(`SELECT split_part(version(), ' ', 1) || ' ' || current_setting('server_version') AS v`)).rows[0]!.v;
    // The first line of postmaster.pid is the postmaster's pid.
    const pid = Number(readFileSync(path.join(server.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
    return {
      url: server.url,
      pid,
      version,
      cpuSeconds: () => serverCpuSeconds(pid),
      async storeStatements() {
        const { rows } = await client.query<{ reads: string; loads: string }>(
          `SELECT coalesce(sum(calls) FILTER (WHERE query = 'SELECT change_id FROM keygate_generation WHERE id = $1'), 0) AS reads,
                  coalesce(sum(calls) FILTER (WHERE query ILIKE 'begin isolation level repeatable read%'), 0) AS loads
             FROM pg_stat_statements`,
        );
        const reloads = Number(rows[0]!.loads);
        return { changeIdReads: Number(rows[0]!.reads) - reloads, reloads };
      },
      async stop() {
        await client.end().catch(() => undefined);
        await server.remove();
      },
    };
  } catch (error) {
    await client.end().catch(() => undefined);
    await server.remove();
    throw error;
  }
}
