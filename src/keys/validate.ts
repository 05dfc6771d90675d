/**
 * Rules for issuing an access key, shared by the CLI and the admin API so both accept and reject
 * exactly the same requests.
 *
 * - Workspace keys (no bucket): any non-empty subset of read/write/delete/admin, or a preset.
 * - Per-bucket keys: only the presets read-only or read-write. They can never delete or administer;
 *   a permission list is accepted only when it is exactly a preset's set.
 * - Permissions or a preset must be given explicitly: there is no silent default for what a
 *   credential may do.
 */
import { bucketNameProblem } from '../buckets/validate.js';
import { parseAddressRanges } from './source-ips.js';
import { PERMISSIONS, PRESETS, isPermission, isPreset, type KeyKind, type KeyRateLimit, type Permission } from './model.js';

export interface CreateKeyInput {
  name: string;
  /** Restricts the key to one bucket; null/absent for a workspace-wide key. */
  bucket?: string | null;
  permissions?: string[];
  preset?: string;
  /** '30d', '12h', '90m', '3600s', or a number of seconds; null/absent for no expiry. */
  expiresIn?: string | number | null;
  /** The key's own rate: '20/s', '0.5/s', or a number of requests per second; null/absent: the gateway's. */
  rateLimit?: string | number | null;
  /** Requests at once after being idle (with rateLimit only); default one second's worth. */
  rateBurst?: string | number | null;
  /** Networks the key may be used from: `10.0.0.0/8,2001:db8::/32` or a list; null/absent: anywhere. */
  allowedIps?: string | string[] | null;
  /** Object keys the key may touch start with this, e.g. `team-a/`; null/absent: any. */
  prefix?: string | null;
}

/** A validated, normalized key request: what the store persists. */
export interface KeySpec {
  name: string;
  kind: KeyKind;
  bucket: string | null;
  /** Deduplicated, in PERMISSIONS order. */
  permissions: Permission[];
  expiresAt: Date | null;
  rateLimit: KeyRateLimit | null;
  allowedIps: string[] | null;
  prefix: string | null;
}

export class KeyValidationError extends Error {
  constructor(
    readonly field: 'name' | 'bucket' | 'permissions' | 'preset' | 'expiresIn' | 'rateLimit' | 'allowedIps' | 'prefix',
    message: string,
  ) {
    super(message);
    this.name = 'KeyValidationError';
  }
}

export const MAX_KEY_NAME_LENGTH = 128;
/** Ten years, counting leap days. Longer-lived credentials are almost always a mistake. */
export const MAX_EXPIRY_SECONDS = 10 * 365.25 * 24 * 3600;

const UNIT_SECONDS = { s: 1, m: 60, h: 3600, d: 86_400 } as const;
const PRESET_NAMES = Object.keys(PRESETS).join(', ');

export function validateKeyInput(input: CreateKeyInput, now: Date = new Date()): KeySpec {
  const name = validateKeyName(input.name);
  const bucket = validateBucket(input.bucket);
  const requested = requestedPermissions(input);
  const permissions = bucket === null ? requested : bucketKeyPermissions(requested);
  const expiresIn = input.expiresIn === undefined || input.expiresIn === null ? null : parseExpiresIn(input.expiresIn);
  return {
    name,
    kind: bucket === null ? 'workspace' : 'bucket',
    bucket,
    permissions,
    expiresAt: expiresIn === null ? null : new Date(now.getTime() + expiresIn * 1000),
    rateLimit: parseKeyRateLimit(input.rateLimit, input.rateBurst),
    allowedIps: validateAllowedIps(input.allowedIps),
    prefix: validatePrefix(input.prefix),
  };
}

/** S3's own limit on an object key, which a prefix is the start of. */
const MAX_PREFIX_BYTES = 1024;

function validatePrefix(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string') throw new KeyValidationError('prefix', 'The prefix must be a string like "team-a/".');
  if (Buffer.byteLength(value) > MAX_PREFIX_BYTES) throw new KeyValidationError('prefix', `The prefix is longer than ${MAX_PREFIX_BYTES} bytes.`);
  if (/[\p{Cc}]/u.test(value)) throw new KeyValidationError('prefix', 'The prefix contains control characters; use printable characters only.');
  // A prefix with a "." or ".." segment names no place an upstream that resolves paths would keep it.
  if (value.split('/').some((segment) => segment === '.' || segment === '..')) {
    throw new KeyValidationError('prefix', `The prefix ${JSON.stringify(value)} contains a "." or ".." path segment; use a plain folder such as "team-a/".`);
  }
  return value;
}

function validateAllowedIps(value: unknown): string[] | null {
  if (value === undefined || value === null || value === '') return null;
  if (typeof value !== 'string' && !(Array.isArray(value) && value.every((item) => typeof item === 'string'))) {
    throw new KeyValidationError('allowedIps', 'The allowed networks must be a string like "10.0.0.0/8,2001:db8::/32" or a list of such strings.');
  }
  try {
    return parseAddressRanges(value);
  } catch (error) {
    throw new KeyValidationError('allowedIps', `Allowed networks: ${(error as Error).message}`);
  }
}

/** A submitted value as a message shows it. */
function shown(value: unknown): string {
  return typeof value === 'string' ? `"${value}"` : (JSON.stringify(value) ?? String(typeof value));
}

/** The most a key's own limit may allow (per second, and at once). */
export const MAX_KEY_RATE_PER_SECOND = 100_000;
export const MAX_KEY_RATE_BURST = 1_000_000;

/**
 * A key's own rate limit: `rate` is '20/s', '0.5/s' or a number (requests per second), `burst` a
 * whole number of requests (default: one second's worth, at least 1). Both absent: null.
 */
export function parseKeyRateLimit(rate: unknown, burst: unknown): KeyRateLimit | null {
  const hasBurst = burst !== undefined && burst !== null && burst !== '';
  if (rate === undefined || rate === null || rate === '') {
    if (hasBurst) throw new KeyValidationError('rateLimit', 'A burst only applies with a rate limit; give the rate too, e.g. 20/s.');
    return null;
  }
  const text = typeof rate === 'number' ? String(rate) : typeof rate === 'string' ? rate.trim().toLowerCase() : '';
  const match = /^(\d{1,6}(?:\.\d{1,3})?)(?:\/s)?$/.exec(text);
  const requestsPerSecond = match ? Number(match[1]) : NaN;
  if (!(requestsPerSecond > 0 && requestsPerSecond <= MAX_KEY_RATE_PER_SECOND)) {
    throw new KeyValidationError(
      'rateLimit',
      `${shown(rate)} is not a rate limit; use requests per second, e.g. 20/s or 0.5/s (more than 0, at most ${MAX_KEY_RATE_PER_SECOND}/s).`,
    );
  }
  const size = hasBurst
    ? typeof burst === 'number'
      ? burst
      : typeof burst === 'string' && /^\d{1,7}$/.test(burst.trim())
        ? Number(burst.trim())
        : NaN
    : Math.max(1, Math.ceil(requestsPerSecond));
  if (!Number.isSafeInteger(size) || size < 1 || size > MAX_KEY_RATE_BURST) {
    throw new KeyValidationError('rateLimit', `${shown(burst)} is not a burst; use a whole number of requests from 1 to ${MAX_KEY_RATE_BURST}.`);
  }
  return { requestsPerSecond, burst: size };
}

export function validateKeyName(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new KeyValidationError('name', 'A key name is required; name keys after who or what uses them, e.g. "ci-uploader".');
  }
  const name = value.trim();
  if ([...name].length > MAX_KEY_NAME_LENGTH) {
    throw new KeyValidationError('name', `The key name is longer than ${MAX_KEY_NAME_LENGTH} characters; shorten it.`);
  }
  // Control and format characters would corrupt tables and logs, and can disguise one name as another.
  if (/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u.test(name)) {
    throw new KeyValidationError('name', 'The key name contains control characters; use printable characters only.');
  }
  return name;
}

/**
 * Parses a lifetime: `30d`, `12h`, `15m`, `3600s` or plain seconds (string or number). Returns
 * seconds; throws KeyValidationError for anything else, for zero, and for more than ten years.
 */
export function parseExpiresIn(value: string | number): number {
  let seconds: number;
  if (typeof value === 'number') {
    seconds = value;
  } else if (typeof value === 'string') {
    const match = /^(\d{1,12})([smhd]?)$/.exec(value.trim().toLowerCase());
    if (!match) {
      throw new KeyValidationError(
        'expiresIn',
        `"${value}" is not a lifetime; use a number with a unit, e.g. 30d, 12h, 15m or 3600s (plain numbers are seconds).`,
      );
    }
    seconds = Number(match[1]) * UNIT_SECONDS[(match[2] || 's') as keyof typeof UNIT_SECONDS];
  } else {
    throw new KeyValidationError('expiresIn', 'The lifetime must be a string like "30d" or a number of seconds.');
  }
  if (!Number.isSafeInteger(seconds) || seconds <= 0) {
    throw new KeyValidationError('expiresIn', `The lifetime must be a positive whole number of seconds, got ${String(value)}.`);
  }
  if (seconds > MAX_EXPIRY_SECONDS) {
    throw new KeyValidationError('expiresIn', `The lifetime ${String(value)} is longer than 10 years; use at most 3652d.`);
  }
  return seconds;
}

function validateBucket(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new KeyValidationError('bucket', 'The bucket must be a bucket name string.');
  const problem = bucketNameProblem(value);
  if (problem) {
    throw new KeyValidationError('bucket', `Bucket name ${problem} Pass the bucket exactly as clients address it, e.g. "my-data".`);
  }
  return value;
}

function requestedPermissions(input: CreateKeyInput): Permission[] {
  const hasPermissions = input.permissions !== undefined && input.permissions !== null;
  const hasPreset = input.preset !== undefined && input.preset !== null;
  if (hasPermissions && hasPreset) {
    throw new KeyValidationError('permissions', 'Give either permissions or a preset, not both.');
  }
  if (hasPreset) {
    const preset = typeof input.preset === 'string' ? input.preset.trim().toLowerCase() : '';
    if (!isPreset(preset)) {
      throw new KeyValidationError('preset', `Unknown preset "${String(input.preset)}"; use one of: ${PRESET_NAMES}.`);
    }
    return [...PRESETS[preset]];
  }
  if (!hasPermissions) {
    throw new KeyValidationError('permissions', `Say what the key may do: permissions (any of ${PERMISSIONS.join(', ')}) or a preset (${PRESET_NAMES}).`);
  }
  if (!Array.isArray(input.permissions) || input.permissions.some((p) => typeof p !== 'string')) {
    throw new KeyValidationError('permissions', `Permissions must be a list of names from: ${PERMISSIONS.join(', ')}.`);
  }
  const names = input.permissions.map((p) => p.trim().toLowerCase());
  const unknown = names.filter((p) => !isPermission(p));
  if (unknown.length > 0) {
    throw new KeyValidationError(
      'permissions',
      `Unknown permission${unknown.length > 1 ? 's' : ''} ${unknown.map((p) => `"${p}"`).join(', ')}; use any of: ${PERMISSIONS.join(', ')}.`,
    );
  }
  if (names.length === 0) {
    throw new KeyValidationError('permissions', `Permissions must not be empty; use any of: ${PERMISSIONS.join(', ')}.`);
  }
  return PERMISSIONS.filter((p) => names.includes(p));
}

/** Per-bucket keys exist only in the preset shapes, so a leaked bucket key can never delete or administer. */
function bucketKeyPermissions(permissions: Permission[]): Permission[] {
  if (permissions.includes('admin')) {
    throw new KeyValidationError(
      'permissions',
      'Per-bucket keys cannot have admin; drop the bucket for a workspace-wide admin key, or use preset read-only or read-write.',
    );
  }
  if (permissions.includes('delete')) {
    throw new KeyValidationError(
      'permissions',
      'Per-bucket keys cannot delete; use preset read-only or read-write, or drop the bucket for a workspace key with delete.',
    );
  }
  const matching = Object.values(PRESETS).find((preset) => preset.length === permissions.length && preset.every((p) => permissions.includes(p)));
  if (!matching) {
    throw new KeyValidationError(
      'permissions',
      `Per-bucket keys are read-only or read-write, not "${permissions.join(',')}"; use preset read-only or read-write.`,
    );
  }
  return [...matching];
}
