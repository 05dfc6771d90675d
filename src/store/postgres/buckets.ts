/**
 * The bucket registry in the PostgreSQL store. Management reads and writes go to the database; the
 * request path reads the replica (replica.ts), which every write here reaches through the change signal.
 */
import { eq } from 'drizzle-orm';
import type { NodePgDatabase } from 'drizzle-orm/node-postgres';
import { corsRulesProblem } from '../../buckets/cors.js';
import { BucketValidationError, validateAddBucketInput, type AddBucketInput } from '../../buckets/validate.js';
import { bucketConflict } from '../buckets.js';
import { corsJsonOf, toBucketRecord } from '../rows.js';
import type { BucketRecord, BucketStore, CorsRule } from '../store.js';
import type { StoreReplica } from './replica.js';
import { buckets, byName } from './schema.js';

export class PostgresBucketRepository implements BucketStore {
  constructor(
    private readonly db: NodePgDatabase<Record<string, unknown>>,
    private readonly replica: StoreReplica,
  ) {}

  async add(input: AddBucketInput, now: Date = new Date()): Promise<BucketRecord> {
    const spec = validateAddBucketInput(input);
    const inserted = await this.db
      .insert(buckets)
      .values({ ...spec, corsJson: null, createdAt: now })
      .onConflictDoNothing()
      .returning({ name: buckets.name });
    if (inserted.length === 0) throw bucketConflict(spec.name);
    return { ...spec, cors: null, createdAt: now };
  }

  async list(): Promise<BucketRecord[]> {
    return (await this.db.select().from(buckets).orderBy(byName)).map(toBucketRecord);
  }

  async get(name: string): Promise<BucketRecord | null> {
    const [row] = await this.db.select().from(buckets).where(eq(buckets.name, name)).limit(1);
    return row ? toBucketRecord(row) : null;
  }

  async remove(name: string): Promise<boolean> {
    return (await this.db.delete(buckets).where(eq(buckets.name, name)).returning({ name: buckets.name })).length > 0;
  }

  async setCors(name: string, rules: CorsRule[] | null): Promise<BucketRecord | null> {
    if (rules !== null) {
      const problem = corsRulesProblem(rules);
      if (problem) throw new BucketValidationError(problem);
    }
    const [row] = await this.db
      .update(buckets)
      .set({ corsJson: corsJsonOf(rules) })
      .where(eq(buckets.name, name))
      .returning();
    return row ? toBucketRecord(row) : null;
  }

  findForRouting(name: string): Readonly<BucketRecord> | null {
    return this.replica.bucket(name);
  }

  listForRouting(): readonly Readonly<BucketRecord>[] {
    return this.replica.bucketList();
  }
}
