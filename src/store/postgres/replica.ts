/**
 * What S3 requests read in the PostgreSQL store: every key and bucket, held in memory and kept as
 * fresh as the SQLite store keeps its cache, across any number of instances.
 *
 * The signal is one row, keygate_generation, whose change_id a trigger replaces with a random one in
 * the same transaction as every change to access_keys or buckets
 * (migrations/postgres/0001_change_signal.sql; last_used_at writes excepted). Freshness rule, the
 * same as SQLite's (src/store/change-detector.ts): before its first lookup a request awaits sync(),
 * which settles only after a read of change_id that STARTED after the call; if it differs from the
 * one the tables here were loaded with, they are reloaded, together with change_id, in one
 * repeatable-read snapshot, by a load that also started after that read. A change committed before
 * a request started is therefore seen by that request, on every instance, whoever made it (another
 * instance, the CLI, psql, a restore from a backup). Requests arriving together share reads: while
 * one read is in flight, later callers wait for the next one, so at most two are outstanding
 * whatever the request rate; reloads are shared the same way.
 *
 * LISTEN/NOTIFY (the trigger notifies 'keygate_changes') only makes an instance reload before the
 * next request needs it; correctness never depends on it. A lost notification or a listener that is
 * reconnecting costs the first request after a change one reload, nothing more. When the counter
 * cannot be read (the server is down or restarting), sync() rejects and the request is refused with
 * ServiceUnavailable: nothing held here is used without a read that vouches for it.
 */
import type pg from 'pg';
import { drizzle } from 'drizzle-orm/node-postgres';
import { unsealSecret } from '../../crypto/seal.js';
import { S3Error } from '../../errors.js';
import { frozenKey, frozenRecord, sameKeyRow, toAccessKey, toBucketRecord, type AccessKeyRowShape } from '../rows.js';
import type { BucketRecord, KeyForVerification } from '../store.js';
import { accessKeys, buckets, byName } from './schema.js';

export const CHANGE_CHANNEL = 'keygate_changes';
/**
 * A named statement: parsed once per connection, then only bound and executed. Every request waits
 * on it, so it gives up sooner than other queries (query_timeout per query: read by pg's
 * Client.query, missing from @types/pg): a primary-key read that takes seconds means the server is
 * unwell, and requests are better refused (ServiceUnavailable, retried by clients) than held.
 */
const READ_CHANGE_ID: pg.QueryConfig & { query_timeout: number } = {
  name: 'keygate_read_change_id',
  text: 'SELECT change_id FROM keygate_generation WHERE id = 1',
  query_timeout: 4_000,
};
const LISTENER_RETRY_MIN_MS = 250;
const LISTENER_RETRY_MAX_MS = 5_000;

interface KeyEntry {
  row: AccessKeyRowShape;
  /** Unsealed on first use: a reload does not pay an AES-GCM open for every key. */
  verification?: KeyForVerification;
}

interface Snapshot {
  /** keygate_generation.change_id when these tables were read; null before the first load. */
  changeId: string | null;
  keys: Map<string, KeyEntry>;
  buckets: Map<string, Readonly<BucketRecord>>;
  bucketList: readonly Readonly<BucketRecord>[];
}

export type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

export interface ReplicaOptions {
  pool: pg.Pool;
  masterKey: Buffer;
  /** Opens the dedicated LISTEN connection (a new pg.Client each time it reconnects). */
  connectListener: () => pg.Client;
  log: Log;
}

export class StoreReplica {
  private snapshot: Snapshot = { changeId: null, keys: new Map(), buckets: new Map(), bucketList: [] };
  private readonly checks = new FreshRuns(() => this.readAndCatchUp());
  private readonly loads = new FreshRuns(() => this.loadSnapshot());
  private listener: pg.Client | null = null;
  private listenerRetryMs = LISTENER_RETRY_MIN_MS;
  private listenerTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Whether the LISTEN connection is up (reported by /metrics; nothing depends on it). */
  listening = false;
  /** Full reloads so far (tests and the benchmark read it). */
  reloads = 0;

  constructor(private readonly options: ReplicaOptions) {}

  /** Loads the tables and starts listening; fails when the server cannot be reached. */
  async start(): Promise<void> {
    await this.sync();
    this.listen();
  }

  /** Settles once a read of change_id that started after this call found the tables here current (see the file comment). */
  sync(): Promise<void> {
    return this.checks.run();
  }

  key(accessKeyId: string): KeyForVerification | null {
    const entry = this.snapshot.keys.get(accessKeyId);
    if (entry === undefined) return null;
    entry.verification ??= {
      key: frozenKey(toAccessKey(entry.row)),
      secretAccessKey: unsealSecret(this.options.masterKey, entry.row.accessKeyId, entry.row.sealedSecret),
    };
    return entry.verification;
  }

  bucket(name: string): Readonly<BucketRecord> | null {
    return this.snapshot.buckets.get(name) ?? null;
  }

  bucketList(): readonly Readonly<BucketRecord>[] {
    return this.snapshot.bucketList;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.listenerTimer !== null) clearTimeout(this.listenerTimer);
    const listener = this.listener;
    this.listener = null;
    this.listening = false;
    await listener?.end().catch(() => undefined);
  }

  private async readAndCatchUp(): Promise<void> {
    let changeId: string;
    try {
      const result = await this.options.pool.query<{ change_id: string }>(READ_CHANGE_ID);
      changeId = result.rows[0]!.change_id;
    } catch (error) {
      throw storeUnavailable(error);
    }
    // A load that starts after this read holds everything committed before it (a load already in flight may not).
    if (changeId !== this.snapshot.changeId) await this.loads.run();
  }

  private async loadSnapshot(): Promise<void> {
    let loaded;
    try {
      loaded = await this.readTables();
    } catch (error) {
      throw storeUnavailable(error);
    }
    // Loads run one at a time and each reads the database as of its start: the latest is the newest.
    const previous = this.snapshot;
    const keys = new Map<string, KeyEntry>();
    for (const row of loaded.keyRows) {
      const before = previous.keys.get(row.accessKeyId);
      // An unchanged row keeps its unsealed secret (and with it the signing keys derived for it).
      keys.set(row.accessKeyId, before !== undefined && sameKeyRow(before.row, row) ? before : { row });
    }
    const bucketList = loaded.bucketRows.map((row) => frozenRecord(toBucketRecord(row)));
    this.snapshot = { changeId: loaded.changeId, keys, buckets: new Map(bucketList.map((record) => [record.name, record])), bucketList };
    this.reloads++;
  }

  /**
   * Every key and bucket with the change id they go with, in one repeatable-read snapshot, on a
   * connection checked out by hand: one that failed or timed out anywhere (even in BEGIN or in the
   * rollback) is destroyed, never returned to the pool still inside this transaction, where later
   * change-id reads would keep seeing this snapshot.
   */
  private async readTables() {
    const client = await this.options.pool.connect();
    let failure: unknown = null;
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const tx = drizzle(client);
      const signal = await client.query<{ change_id: string }>('SELECT change_id FROM keygate_generation WHERE id = 1');
      const keyRows = await tx.select().from(accessKeys);
      const bucketRows = await tx.select().from(buckets).orderBy(byName);
      await client.query('COMMIT');
      return { changeId: signal.rows[0]!.change_id, keyRows, bucketRows };
    } catch (error) {
      failure = error;
      throw error;
    } finally {
      client.release(failure !== null);
    }
  }

  /** The LISTEN connection: reconnects with backoff until closed; each (re)connect also syncs, for changes missed meanwhile. */
  private listen(): void {
    if (this.closed) return;
    const client = this.options.connectListener();
    this.listener = client;
    let failed = false;
    const retry = (error?: unknown) => {
      if (failed) return;
      failed = true;
      this.listening = false;
      if (this.listener === client) this.listener = null;
      void client.end().catch(() => undefined);
      if (this.closed) return;
      this.options.log('warn', 'key store change listener disconnected; reconnecting (requests still check for changes)', {
        error: error instanceof Error ? error.message : 'connection ended',
        retryInMs: this.listenerRetryMs,
      });
      this.listenerTimer = setTimeout(() => {
        this.listenerTimer = null;
        this.listen();
      }, this.listenerRetryMs);
      this.listenerTimer.unref();
      this.listenerRetryMs = Math.min(this.listenerRetryMs * 2, LISTENER_RETRY_MAX_MS);
    };
    client.on('error', retry);
    client.on('end', () => retry());
    client.on('notification', () => this.syncInBackground());
    client
      .connect()
      .then(() => client.query(`LISTEN ${CHANGE_CHANNEL}`))
      .then(() => {
        if (failed) return;
        this.listening = true;
        this.listenerRetryMs = LISTENER_RETRY_MIN_MS;
        this.syncInBackground();
      })
      .catch(retry);
  }

  private syncInBackground(): void {
    if (this.closed) return;
    // A failure here is the next request's to report (its own sync fails the same way).
    this.sync().catch(() => undefined);
  }
}

/**
 * Runs a task for callers that need a run which STARTED after their call: the first caller starts
 * one; callers arriving while it runs share the next one, started when it ends. So however many
 * callers come, at most one run is in flight and one is waiting.
 */
class FreshRuns {
  private running: Promise<void> | null = null;
  private next: Promise<void> | null = null;

  constructor(private readonly task: () => Promise<void>) {}

  run(): Promise<void> {
    if (this.running === null) {
      this.running = this.task().finally(() => {
        this.running = null;
      });
      return this.running;
    }
    this.next ??= this.running
      .catch(() => undefined)
      .then(() => {
        this.next = null;
        return this.run();
      });
    return this.next;
  }
}

/** Requests are refused, not judged by what may be stale, while the key store cannot be read. */
function storeUnavailable(error: unknown): S3Error {
  return new S3Error('ServiceUnavailable', 'The gateway cannot reach its key store right now; retry shortly.', {
    headers: { 'retry-after': '1' },
    cause: error,
  });
}
