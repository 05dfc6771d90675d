/**
 * The key model: what an access key may do. Shared by the store, the CLI, the admin API and the
 * authorizer, so the rules live in exactly one place.
 */

export const PERMISSIONS = ['read', 'write', 'delete', 'admin'] as const;
export type Permission = (typeof PERMISSIONS)[number];

/** Per-bucket keys are only ever issued through these presets. */
export const PRESETS = {
  'read-only': ['read'],
  'read-write': ['read', 'write'],
} as const satisfies Record<string, readonly Permission[]>;
export type Preset = keyof typeof PRESETS;

export type KeyKind = 'workspace' | 'bucket';

/** A key's own request rate (token bucket): `burst` at once after being idle, then `requestsPerSecond`. */
export interface KeyRateLimit {
  requestsPerSecond: number;
  burst: number;
}

/** An access key as everything outside the store sees it. Never carries the secret. */
export interface AccessKey {
  accessKeyId: string;
  name: string;
  kind: KeyKind;
  /** Set for kind 'bucket', null for workspace-wide keys. */
  bucket: string | null;
  permissions: Permission[];
  expiresAt: Date | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  /** Set while the key is disabled: every request with it is refused until it is enabled again. */
  disabledAt: Date | null;
  /** The key's own rate limit, overriding the gateway's (KEYGATE_RATE_LIMIT); null = the gateway's. */
  rateLimit: KeyRateLimit | null;
  /** Networks (CIDRs) the key may be used from; null = anywhere. */
  allowedIps: string[] | null;
  /** The only object keys it may touch start with this (in every bucket it reaches); null = any key. */
  prefix: string | null;
}

/** The unsealed form, only produced for request verification and for the one-time display at creation. */
export interface AccessKeyWithSecret extends AccessKey {
  secretAccessKey: string;
}

export function isPermission(value: string): value is Permission {
  return (PERMISSIONS as readonly string[]).includes(value);
}

export function isPreset(value: string): value is Preset {
  return Object.hasOwn(PRESETS, value);
}

export function hasPermission(key: Pick<AccessKey, 'permissions'>, permission: Permission): boolean {
  return key.permissions.includes(permission);
}

export function isDisabled(key: Pick<AccessKey, 'disabledAt'>): boolean {
  return key.disabledAt !== null;
}

export function isExpired(key: Pick<AccessKey, 'expiresAt'>, now: Date = new Date()): boolean {
  return key.expiresAt !== null && key.expiresAt.getTime() <= now.getTime();
}
