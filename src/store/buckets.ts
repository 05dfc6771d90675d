/**
 * The operator's bucket registry in the SQLite store: which public bucket name maps to which
 * upstream (a RunPod datacenter, or an explicit endpoint and region, or the default upstream when
 * neither is set).
 */
import { asc, eq, sql } from 'drizzle-orm';
import { corsRulesProblem } from '../buckets/cors.js';
import { BucketValidationError, validateAddBucketInput, type AddBucketInput } from '../buckets/validate.js';
import { ChangeDetector, FreshnessCache, type Freshness } from './change-detector.js';
import type { KeygateDatabase } from './db.js';
import { corsJsonOf, frozenRecord, toBucketRecord } from './rows.js';
import { buckets } from './schema.js';
import type { BucketRecord, BucketStore, CorsRule } from './store.js';

/** Registered buckets whose rows are kept for request routing (oldest dropped first). */
const MAX_CACHED_BUCKETS = 4096;

export class BucketRepository implements BucketStore {
  private readonly findByName;
  private readonly changes: ChangeDetector;
  /** name -> row, valid only while the database is unchanged (see findForRouting). */
  private readonly recordCache: FreshnessCache<BucketRecord>;

  constructor(private readonly db: KeygateDatabase) {
    this.findByName = db
      .select()
      .from(buckets)
      .where(eq(buckets.name, sql.placeholder('name')))
      .prepare();
    this.changes = ChangeDetector.of(db.$client);
    this.recordCache = new FreshnessCache(this.changes, MAX_CACHED_BUCKETS);
  }

  async add(input: AddBucketInput, now: Date = new Date()): Promise<BucketRecord> {
    const spec = validateAddBucketInput(input);
    const result = this.db
      .insert(buckets)
      .values({ ...spec, corsJson: null, createdAt: now })
      .onConflictDoNothing()
      .run();
    this.changes.noteLocalWrite();
    if (result.changes === 0) throw bucketConflict(spec.name);
    return { ...spec, cors: null, createdAt: now };
  }

  async list(): Promise<BucketRecord[]> {
    return this.listNow();
  }

  async get(name: string): Promise<BucketRecord | null> {
    const row = this.findByName.get({ name });
    return row ? toBucketRecord(row) : null;
  }

  async remove(name: string): Promise<boolean> {
    const removed = this.db.delete(buckets).where(eq(buckets.name, name)).run().changes > 0;
    this.changes.noteLocalWrite();
    return removed;
  }

  async setCors(name: string, rules: CorsRule[] | null): Promise<BucketRecord | null> {
    if (rules !== null) {
      const problem = corsRulesProblem(rules);
      if (problem) throw new BucketValidationError(problem);
    }
    const result = this.db
      .update(buckets)
      .set({ corsJson: corsJsonOf(rules) })
      .where(eq(buckets.name, name))
      .run();
    this.changes.noteLocalWrite();
    return result.changes > 0 ? this.get(name) : null;
  }

  /**
   * A bucket removed or changed by any process is seen on the very next request: the row is reused
   * only while SQLite's data_version shows no commit by another connection and this repository
   * wrote nothing since it was read (see change-detector.ts).
   */
  findForRouting(name: string, freshness: Freshness = 'request'): Readonly<BucketRecord> | null {
    return this.recordCache.get(
      name,
      () => {
        const row = this.findByName.get({ name });
        return row ? frozenRecord(toBucketRecord(row)) : null;
      },
      freshness,
    );
  }

  /** Read afresh: SQLite answers a small table faster than a cache could be kept right. */
  listForRouting(): readonly Readonly<BucketRecord>[] {
    return this.listNow();
  }

  private listNow(): BucketRecord[] {
    return this.db.select().from(buckets).orderBy(asc(buckets.name)).all().map(toBucketRecord);
  }
}

/** Both stores refuse a second registration of a name with the same words. */
export function bucketConflict(name: string): BucketValidationError {
  return new BucketValidationError(
    `Bucket "${name}" is already registered; remove it first (keygate buckets remove ${name}) to change where it points.`,
    'conflict',
  );
}
