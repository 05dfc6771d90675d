/**
 * The operator's bucket registry: which public bucket name maps to which upstream (a RunPod
 * datacenter, or an explicit endpoint and region, or the default upstream when neither is set).
 */
import { asc, eq, sql } from 'drizzle-orm';
import { corsRulesProblem, type CorsRule } from '../buckets/cors.js';
import { BucketValidationError, validateAddBucketInput, type AddBucketInput } from '../buckets/validate.js';
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

export class BucketRepository {
  private readonly findByName;

  constructor(private readonly db: KeygateDatabase) {
    this.findByName = db.select().from(buckets).where(eq(buckets.name, sql.placeholder('name'))).prepare();
  }

  /** Registers a bucket. Throws BucketValidationError for invalid input, or with problem 'conflict' if it exists. */
  add(input: AddBucketInput, now: Date = new Date()): BucketRecord {
    const spec = validateAddBucketInput(input);
    const result = this.db
      .insert(buckets)
      .values({ ...spec, corsJson: null, createdAt: now })
      .onConflictDoNothing()
      .run();
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

  get(name: string): BucketRecord | null {
    const row = this.findByName.get({ name });
    return row ? toBucketRecord(row) : null;
  }

  /** Unregisters a bucket; keys scoped to it stay (re-adding the bucket makes them usable again). */
  remove(name: string): boolean {
    return this.db.delete(buckets).where(eq(buckets.name, name)).run().changes > 0;
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
    return result.changes > 0 ? this.get(name) : null;
  }
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
