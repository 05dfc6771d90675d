/**
 * The JSON shapes of access keys, shared by `keygate keys … --json` and the admin API so scripts can
 * use either interchangeably. Field order is part of the contract other tooling relies on: keep it.
 */
import type { Config } from '../config.js';
import type { AccessKey, AccessKeyWithSecret, KeyRateLimit, Permission } from './model.js';

/** Returned once, at creation. */
export interface CreatedKeyJson {
  accessKeyId: string;
  secretAccessKey: string;
  name: string;
  bucket: string | null;
  permissions: Permission[];
  endpoint: string;
  region: string;
  expiresAt: string | null;
  createdAt: string;
  /** The key's own rate limit; null = the gateway's (KEYGATE_RATE_LIMIT). */
  rateLimit: KeyRateLimit | null;
  /** Networks the key may be used from; null = anywhere. */
  allowedIps: string[] | null;
  /** Object keys the key may touch start with this; null = any. */
  prefix: string | null;
}

/** Listing/showing a key: the created shape without the secret, plus lastUsedAt and whether it is disabled (and since when). */
export type KeyJson = Omit<CreatedKeyJson, 'secretAccessKey'> & { lastUsedAt: string | null; disabled: boolean; disabledAt: string | null };

type Endpoint = Pick<Config, 'publicUrl' | 'region'>;

export function createdKeyToJson(key: AccessKeyWithSecret, config: Endpoint): CreatedKeyJson {
  return {
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    name: key.name,
    bucket: key.bucket,
    permissions: [...key.permissions],
    endpoint: config.publicUrl,
    region: config.region,
    expiresAt: key.expiresAt?.toISOString() ?? null,
    createdAt: key.createdAt.toISOString(),
    rateLimit: key.rateLimit === null ? null : { ...key.rateLimit },
    allowedIps: key.allowedIps === null ? null : [...key.allowedIps],
    prefix: key.prefix,
  };
}

export function keyToJson(key: AccessKey, config: Endpoint): KeyJson {
  return {
    accessKeyId: key.accessKeyId,
    name: key.name,
    bucket: key.bucket,
    permissions: [...key.permissions],
    endpoint: config.publicUrl,
    region: config.region,
    expiresAt: key.expiresAt?.toISOString() ?? null,
    createdAt: key.createdAt.toISOString(),
    rateLimit: key.rateLimit === null ? null : { ...key.rateLimit },
    allowedIps: key.allowedIps === null ? null : [...key.allowedIps],
    prefix: key.prefix,
    lastUsedAt: key.lastUsedAt?.toISOString() ?? null,
    disabled: key.disabledAt !== null,
    disabledAt: key.disabledAt?.toISOString() ?? null,
  };
}
