/**
 * The PostgreSQL schema: the SQLite schema (../schema.ts) column for column, so rows read the same
 * in both stores (src/store/rows.ts). Migrations in /migrations/postgres are generated from this
 * file with `npm run db:generate:postgres`; the change signal (keygate_generation and its
 * triggers, see replica.ts) is a hand-written migration there.
 */
import { sql } from 'drizzle-orm';
import { check, doublePrecision, index, integer, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

/** Milliseconds are all a JavaScript Date holds; storing more would make round trips inexact. */
const at = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });

export const accessKeys = pgTable(
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
    expiresAt: at('expires_at'),
    createdAt: at('created_at').notNull(),
    lastUsedAt: at('last_used_at'),
    disabledAt: at('disabled_at'),
    rateLimitPerSecond: doublePrecision('rate_limit_per_second'),
    rateLimitBurst: integer('rate_limit_burst'),
    allowedIps: text('allowed_ips'),
    prefix: text('prefix'),
  },
  (table) => [
    index('access_keys_bucket_idx').on(table.bucket),
    // The same defense in depth as the SQLite schema: a row edited by hand cannot become a malformed key.
    check('access_keys_kind_check', sql`${table.kind} IN ('workspace', 'bucket')`),
    check('access_keys_bucket_matches_kind', sql`(${table.kind} = 'bucket') = (${table.bucket} IS NOT NULL)`),
    check('access_keys_bucket_no_delete_admin', sql`${table.kind} = 'workspace' OR ${table.permissions} IN ('read', 'read,write')`),
  ],
);

export const buckets = pgTable('buckets', {
  name: text('name').primaryKey(),
  datacenter: text('datacenter'),
  endpoint: text('endpoint'),
  region: text('region'),
  upstreamBucket: text('upstream_bucket').notNull(),
  corsJson: text('cors_json'),
  createdAt: at('created_at').notNull(),
});

export const meta = pgTable('meta', {
  name: text('name').primaryKey(),
  value: text('value').notNull(),
});

/** Bucket names in byte order, as SQLite sorts them, whatever the database's collation. */
export const byName = sql`${buckets.name} COLLATE "C"`;
