/**
 * The database schema (drizzle, SQLite). Migrations in /migrations/sqlite are generated from this
 * file with `npm run db:generate`; never edit applied migrations, add new ones. The PostgreSQL
 * schema (postgres/schema.ts) mirrors this one: change both together.
 *
 * Timestamps are stored as integer milliseconds since the epoch. Secrets are stored only sealed
 * (src/crypto/seal.ts); the master key lives outside the database.
 */
import { sql } from 'drizzle-orm';
import { check, index, integer, real, sqliteTable, text } from 'drizzle-orm/sqlite-core';

export const accessKeys = sqliteTable(
  'access_keys',
  {
    accessKeyId: text('access_key_id').primaryKey(),
    name: text('name').notNull(),
    kind: text('kind', { enum: ['workspace', 'bucket'] }).notNull(),
    bucket: text('bucket'),
    /** Comma-separated, in PERMISSIONS order, e.g. "read,write". */
    permissions: text('permissions').notNull(),
    /** `v1:<iv>:<ciphertext>:<tag>`, AES-256-GCM with the access key id as AAD. */
    sealedSecret: text('sealed_secret').notNull(),
    expiresAt: integer('expires_at', { mode: 'timestamp_ms' }),
    createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
    lastUsedAt: integer('last_used_at', { mode: 'timestamp_ms' }),
    /** When the key was disabled (refused, kept); null while it is enabled. */
    disabledAt: integer('disabled_at', { mode: 'timestamp_ms' }),
    /** The key's own rate limit (requests per second and burst), both null for the gateway's. */
    rateLimitPerSecond: real('rate_limit_per_second'),
    rateLimitBurst: integer('rate_limit_burst'),
    /** Comma-separated CIDRs the key may be used from; null = anywhere. */
    allowedIps: text('allowed_ips'),
    /** Object keys the key may touch start with this; null = any. */
    prefix: text('prefix'),
  },
  (table) => [
    index('access_keys_bucket_idx').on(table.bucket),
    // Defense in depth: a row edited by hand still cannot become a malformed key. The last check
    // mirrors PRESETS (src/keys/model.ts); changing the presets needs a new migration.
    check('access_keys_kind_check', sql`${table.kind} IN ('workspace', 'bucket')`),
    check('access_keys_bucket_matches_kind', sql`(${table.kind} = 'bucket') = (${table.bucket} IS NOT NULL)`),
    check('access_keys_bucket_no_delete_admin', sql`${table.kind} = 'workspace' OR ${table.permissions} IN ('read', 'read,write')`),
  ],
);

export const buckets = sqliteTable('buckets', {
  name: text('name').primaryKey(),
  datacenter: text('datacenter'),
  endpoint: text('endpoint'),
  region: text('region'),
  upstreamBucket: text('upstream_bucket').notNull(),
  /** JSON array of CORS rules, null when the bucket has none. */
  corsJson: text('cors_json'),
  createdAt: integer('created_at', { mode: 'timestamp_ms' }).notNull(),
});

/** Small facts about the installation itself, e.g. the master key check value. */
export const meta = sqliteTable('meta', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
});

export type AccessKeyRow = typeof accessKeys.$inferSelect;
export type BucketRow = typeof buckets.$inferSelect;
