/**
 * Cheap "has the database changed?" checks for the request-path caches (keys, buckets).
 *
 * SQLite's `PRAGMA data_version` changes whenever another connection (the CLI, a second server,
 * another process or another connection in this one) commits to the database file; reading it
 * costs about as much as one tiny query and does no I/O when nothing changed. It does not change
 * for commits made on this connection, so the repositories call `noteLocalWrite()` after each of
 * their own writes. A cache that keeps the generation it was filled under and drops everything
 * when `generation()` differs therefore never serves a row that was deleted or changed before the
 * current request started, whoever changed it.
 *
 * S3 requests share data_version reads: a request awaits beginRequest() before its first lookup,
 * and every request that called it during the same turn of the event loop waits for one read made
 * in that turn's check phase (setImmediate), i.e. after all of them arrived. Lookups made for
 * requests (freshness 'request') then use the latest read: it was made after the start of every
 * request that awaited it, so each of them sees every commit made before it started. Under load,
 * several requests arrive per turn and one read serves them all; a lone request pays one read and
 * no extra wait (the check phase follows the poll phase that delivered it). The PostgreSQL store
 * shares its change-id reads the same way (src/store/postgres/replica.ts). A request that then
 * waits on its client (a POST form's fields, a body read before a copy source is routed) awaits
 * beginRequest() again: the sender must not choose how old the data it is judged by is. Lookups
 * for anything else (admin API, CLI, tests) use freshness 'now' and read every time.
 */
import type Database from 'better-sqlite3';

/** 'now': read data_version on this call. 'request': as of the latest read awaited through beginRequest() (see above). */
export type Freshness = 'now' | 'request';

/** One detector per SQLite connection, shared by its repositories (so a request reads data_version once). */
const detectors = new WeakMap<Database.Database, ChangeDetector>();

export class ChangeDetector {
  private readonly dataVersion: Database.Statement<[], number>;
  private lastDataVersion: number;
  private counter = 0;
  /** The read the requests that started in this turn of the event loop wait for; null when none is scheduled. */
  private pendingRead: Promise<void> | null = null;

  static of(sqlite: Database.Database): ChangeDetector {
    let detector = detectors.get(sqlite);
    if (detector === undefined) {
      detector = new ChangeDetector(sqlite);
      detectors.set(sqlite, detector);
    }
    return detector;
  }

  private constructor(sqlite: Database.Database) {
    this.dataVersion = sqlite.prepare<[], number>('PRAGMA data_version').pluck();
    this.lastDataVersion = this.dataVersion.get()!;
  }

  /**
   * An S3 request starts (or resumes after waiting on its client): settles after a data_version read
   * made after this call, shared with every request that called it in the same turn of the event loop.
   * Rejects when that read fails (the database is unusable), for every request waiting on it.
   */
  beginRequest(): Promise<void> {
    this.pendingRead ??= new Promise<void>((resolve, reject) => {
      setImmediate(() => {
        this.pendingRead = null;
        try {
          this.generation();
          resolve();
        } catch (error) {
          reject(error instanceof Error ? error : new Error(String(error)));
        }
      });
    });
    return this.pendingRead;
  }

  /** generation() with the given freshness: 'request' reuses the latest read (see beginRequest). */
  generationAsOf(freshness: Freshness): number {
    return freshness === 'request' ? this.counter : this.generation();
  }

  /** A number that changes after every commit by any connection, this one included (via noteLocalWrite). */
  generation(): number {
    const version = this.dataVersion.get()!;
    if (version !== this.lastDataVersion) {
      this.lastDataVersion = version;
      this.counter++;
    }
    return this.counter;
  }

  /** Must be called after every write this connection commits to the tables a cache covers. */
  noteLocalWrite(): void {
    this.counter++;
  }
}

/**
 * A bounded map that empties itself whenever the database changed since it was filled. Keys that
 * are looked up but absent in the database are not cached (so unknown ids cannot fill it).
 */
export class FreshnessCache<V> {
  private readonly entries = new Map<string, V>();
  private filledUnder = -1;

  constructor(
    private readonly changes: ChangeDetector,
    private readonly maxEntries: number,
  ) {}

  /** The cached value if the database has not changed since it was stored, else what `load` returns (cached when not null). */
  get(key: string, load: () => V | null, freshness: Freshness = 'now'): V | null {
    const generation = this.changes.generationAsOf(freshness);
    if (generation !== this.filledUnder) {
      this.entries.clear();
      this.filledUnder = generation;
    }
    const hit = this.entries.get(key);
    if (hit !== undefined) return hit;
    // A commit by another connection between the generation check and this load is harmless: the
    // value is then newer than its stamp, and the next get() sees the new data_version and clears.
    const loaded = load();
    if (loaded === null) return null;
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, loaded);
    return loaded;
  }

  /** The cached value without checking freshness or loading (for updating it in place after a local write). */
  peek(key: string): V | undefined {
    return this.entries.get(key);
  }

  get size(): number {
    return this.entries.size;
  }
}
