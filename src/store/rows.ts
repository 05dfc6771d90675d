/**
 * Rows <-> records, shared by both databases: the SQLite and PostgreSQL schemas give rows the same
 * shape (timestamps as Date, lists as comma-separated text), so a key or a bucket reads the same
 * whichever store holds it.
 */
import { corsRulesProblem, type CorsRule } from '../buckets/cors.js';
import { isPermission, type AccessKey, type AccessKeyWithSecret } from '../keys/model.js';
import type { KeySpec } from '../keys/validate.js';
import type { BucketRecord } from './store.js';

/** The columns of access_keys, as both schemas type them. */
export interface AccessKeyRowShape {
  accessKeyId: string;
  name: string;
  kind: 'workspace' | 'bucket';
  bucket: string | null;
  permissions: string;
  sealedSecret: string;
  expiresAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  disabledAt: Date | null;
  rateLimitPerSecond: number | null;
  rateLimitBurst: number | null;
  allowedIps: string | null;
  prefix: string | null;
}

/** The columns of buckets, as both schemas type them. */
export interface BucketRowShape {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
  corsJson: string | null;
  createdAt: Date;
}

/** The row to insert for a new key, its secret already sealed. */
export function newKeyRow(accessKeyId: string, sealedSecret: string, spec: KeySpec, now: Date): AccessKeyRowShape {
  return {
    accessKeyId,
    name: spec.name,
    kind: spec.kind,
    bucket: spec.bucket,
    permissions: spec.permissions.join(','),
    sealedSecret,
    expiresAt: spec.expiresAt,
    createdAt: now,
    lastUsedAt: null,
    disabledAt: null,
    rateLimitPerSecond: spec.rateLimit?.requestsPerSecond ?? null,
    rateLimitBurst: spec.rateLimit?.burst ?? null,
    allowedIps: spec.allowedIps?.join(',') ?? null,
    prefix: spec.prefix,
  };
}

/** What create() returns: the key as stored, with the secret shown this once. */
export function createdKey(accessKeyId: string, secretAccessKey: string, spec: KeySpec, now: Date): AccessKeyWithSecret {
  return {
    accessKeyId,
    secretAccessKey,
    name: spec.name,
    kind: spec.kind,
    bucket: spec.bucket,
    permissions: spec.permissions,
    expiresAt: spec.expiresAt,
    createdAt: now,
    lastUsedAt: null,
    disabledAt: null,
    rateLimit: spec.rateLimit,
    allowedIps: spec.allowedIps,
    prefix: spec.prefix,
  };
}

export function toAccessKey(row: AccessKeyRowShape): AccessKey {
  return {
    accessKeyId: row.accessKeyId,
    name: row.name,
    kind: row.kind,
    bucket: row.bucket,
    permissions: row.permissions.split(',').filter(isPermission),
    expiresAt: row.expiresAt,
    createdAt: row.createdAt,
    lastUsedAt: row.lastUsedAt,
    disabledAt: row.disabledAt,
    rateLimit: row.rateLimitPerSecond !== null && row.rateLimitBurst !== null ? { requestsPerSecond: row.rateLimitPerSecond, burst: row.rateLimitBurst } : null,
    allowedIps: row.allowedIps === null ? null : row.allowedIps.split(','),
    prefix: row.prefix,
  };
}

/** Shared by every request that uses the key: frozen, so a caller that tried to widen it would throw instead. */
export function frozenKey(key: AccessKey): AccessKey {
  Object.freeze(key.permissions);
  if (key.rateLimit !== null) Object.freeze(key.rateLimit);
  if (key.allowedIps !== null) Object.freeze(key.allowedIps);
  return Object.freeze(key);
}

export function toBucketRecord(row: BucketRowShape): BucketRecord {
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

/** Shared by every request routed to the bucket: frozen, so no caller can change what the next one sees. */
export function frozenRecord(record: BucketRecord): BucketRecord {
  for (const rule of record.cors ?? []) {
    for (const list of Object.values(rule)) if (Array.isArray(list)) Object.freeze(list);
    Object.freeze(rule);
  }
  if (record.cors) Object.freeze(record.cors);
  return Object.freeze(record);
}

/** cors_json for a set of rules (null: none). */
export function corsJsonOf(rules: CorsRule[] | null): string | null {
  return rules === null ? null : JSON.stringify(rules);
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

const time = (value: Date | null) => value?.getTime() ?? null;

/** The same key, as far as requests are concerned: lastUsedAt is a statistic and may move on without it. */
export function sameKeyRow(a: AccessKeyRowShape, b: AccessKeyRowShape): boolean {
  return (
    a.accessKeyId === b.accessKeyId &&
    a.name === b.name &&
    a.kind === b.kind &&
    a.bucket === b.bucket &&
    a.permissions === b.permissions &&
    a.sealedSecret === b.sealedSecret &&
    time(a.expiresAt) === time(b.expiresAt) &&
    time(a.createdAt) === time(b.createdAt) &&
    time(a.disabledAt) === time(b.disabledAt) &&
    a.rateLimitPerSecond === b.rateLimitPerSecond &&
    a.rateLimitBurst === b.rateLimitBurst &&
    a.allowedIps === b.allowedIps &&
    a.prefix === b.prefix
  );
}

export function sameBucketRow(a: BucketRowShape, b: BucketRowShape): boolean {
  return (
    a.name === b.name &&
    a.datacenter === b.datacenter &&
    a.endpoint === b.endpoint &&
    a.region === b.region &&
    a.upstreamBucket === b.upstreamBucket &&
    a.corsJson === b.corsJson &&
    time(a.createdAt) === time(b.createdAt)
  );
}
