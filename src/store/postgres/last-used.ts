/**
 * lastUsedAt writes for the PostgreSQL store: a statistic, so they must never cost a request
 * anything. They go through their own single connection (a row locked by someone else's long
 * transaction holds up this one connection, never the pool that requests read the change signal
 * through), give up on locks quickly, and are batched: while one UPDATE runs, the keys used
 * meanwhile wait and go in the next one. Each key is noted at most once a minute per instance
 * (KeyStore.touchLastUsed), so N instances write at most N times a minute per busy key.
 */
import pg from 'pg';
import { quietOnConnectionErrors } from './connection-errors.js';

/** Milliseconds a write waits for a row lock before giving up (the next use of the key tries again a minute later). */
const LOCK_TIMEOUT_MS = 1_000;
const STATEMENT_TIMEOUT_MS = 5_000;
const BATCHED_UPDATE =
  'UPDATE access_keys AS k SET last_used_at = v.at FROM unnest($1::text[], $2::timestamptz[]) AS v(id, at) ' +
  'WHERE k.access_key_id = v.id AND (k.last_used_at IS NULL OR k.last_used_at < v.at)';

export class LastUsedWriter {
  private readonly pool: pg.Pool;
  private readonly pending = new Map<string, Date>();
  private flushing: Promise<void> | null = null;

  constructor(connection: pg.PoolConfig) {
    this.pool = new pg.Pool({
      ...connection,
      max: 1,
      lock_timeout: LOCK_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS * 2,
    });
    quietOnConnectionErrors(this.pool);
  }

  note(accessKeyId: string, at: Date): void {
    this.pending.set(accessKeyId, at);
    this.flushing ??= this.flush().finally(() => {
      this.flushing = null;
    });
  }

  /** Writes what is pending (tests and shutdown), then closes the connection. */
  async close(): Promise<void> {
    await this.flushing;
    await this.pool.end().catch(() => undefined);
  }

  private async flush(): Promise<void> {
    while (this.pending.size > 0) {
      const batch = [...this.pending];
      this.pending.clear();
      // A failure (server restarting, lock timeout) drops this batch: the keys' next use writes again.
      await this.pool.query(BATCHED_UPDATE, [batch.map(([id]) => id), batch.map(([, at]) => at)]).catch(() => undefined);
    }
  }
}
