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
 */
import type Database from 'better-sqlite3';

export class ChangeDetector {
  private readonly dataVersion: Database.Statement<[], number>;
  private lastDataVersion: number;
  private counter = 0;

  constructor(sqlite: Database.Database) {
    this.dataVersion = sqlite.prepare<[], number>('PRAGMA data_version').pluck();
    this.lastDataVersion = this.dataVersion.get()!;
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
  get(key: string, load: () => V | null): V | null {
    const generation = this.changes.generation();
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
