/**
 * The operator's bucket registry: which public bucket name maps to which upstream (a RunPod
 * datacenter, or an explicit endpoint and region, or the default upstream when neither is set).
 */
import { asc, eq, sql } from 'drizzle-orm';
import { corsRulesProblem, type CorsRule } from '../buckets/cors.js';
import { BucketValidationError, validateAddBucketInput, type AddBucketInput } from '../buckets/validate.js';
import { ChangeDetector, FreshnessCache, type Freshness } from './change-detector.js';
import type { KeygateDatabase } from './db.js';
import { buckets, type BucketRow } from './schema.js';

export type { AddBucketInput } from '../buckets/validate.js';
export type { CorsRule } from '../buckets/cors.js';
export { BucketValidationError } from '../buckets/validate.js';

export interface BucketRecord {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
  cors: CorsRule[] | null;
  createdAt: Date;
}

/** Registered buckets whose rows are kept for request routing (oldest dropped first). */
const MAX_CACHED_BUCKETS = 4096;

export class BucketRepository {
  private readonly findByName;
  private readonly changes: ChangeDetector;
  /** name -> row, valid only while the database is unchanged (see get). */
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

  /** Registers a bucket. Throws BucketValidationError for invalid input, or with problem 'conflict' if it exists. */
  add(input: AddBucketInput, now: Date = new Date()): BucketRecord {
    const spec = validateAddBucketInput(input);
    const result = this.db
      .insert(buckets)
      .values({ ...spec, corsJson: null, createdAt: now })
      .onConflictDoNothing()
      .run();
    this.changes.noteLocalWrite();
    if (result.changes === 0) {
      throw new BucketValidationError(
        `Bucket "${spec.name}" is already registered; remove it first (keygate buckets remove ${spec.name}) to change where it points.`,
        'conflict',
      );
    }
    return { ...spec, cors: null, createdAt: now };
  }

  list(): BucketRecord[] {
    return this.db.select().from(buckets).orderBy(asc(buckets.name)).all().map(toBucketRecord);
  }

  /**
   * The bucket, as of this moment: a bucket removed or changed by any process is seen on the very
   * next call. The row is reused only while SQLite's data_version shows no commit by another
   * connection and this repository wrote nothing since it was read (see change-detector.ts).
   * The record returned is shared with later lookups: read it, never change it.
   */
  get(name: string, freshness: Freshness = 'now'): Readonly<BucketRecord> | null {
    return this.recordCache.get(
      name,
      () => {
        const row = this.findByName.get({ name });
        return row ? frozenRecord(toBucketRecord(row)) : null;
      },
      freshness,
    );
  }

  /** Unregisters a bucket; keys scoped to it stay (re-adding the bucket makes them usable again). */
  remove(name: string): boolean {
    const removed = this.db.delete(buckets).where(eq(buckets.name, name)).run().changes > 0;
    this.changes.noteLocalWrite();
    return removed;
  }

  /** Replaces the bucket's CORS rules (null clears them). Returns the updated record, or null if the bucket is not registered. */
  setCors(name: string, rules: CorsRule[] | null): BucketRecord | null {
    if (rules !== null) {
      const problem = corsRulesProblem(rules);
      if (problem) throw new BucketValidationError(problem);
    }
    const result = this.db
      .update(buckets)
      .set({ corsJson: rules === null ? null : JSON.stringify(rules) })
      .where(eq(buckets.name, name))
      .run();
    this.changes.noteLocalWrite();
    return result.changes > 0 ? this.get(name) : null;
  }
}

/** Shared by every request routed to the bucket: frozen, so no caller can change what the next one sees. */
function frozenRecord(record: BucketRecord): BucketRecord {
  for (const rule of record.cors ?? []) {
    for (const list of Object.values(rule)) if (Array.isArray(list)) Object.freeze(list);
    Object.freeze(rule);
  }
  if (record.cors) Object.freeze(record.cors);
  return Object.freeze(record);
}

function toBucketRecord(row: BucketRow): BucketRecord {
  return {
    name: row.name,
    datacenter: row.datacenter,
    endpoint: row.endpoint,
    region: row.region,
    upstreamBucket: row.upstreamBucket,
    cors: parseCors(row.corsJson),
    createdAt: row.createdAt,
  };
}

/** A hand-edited, unparsable cors_json reads as "no CORS rules": failing closed denies cross-origin access. */
function parseCors(json: string | null): CorsRule[] | null {
  if (json === null) return null;
  try {
    const rules: unknown = JSON.parse(json);
    return corsRulesProblem(rules) === null ? (rules as CorsRule[]) : null;
  } catch {
    return null;
  }
}
