/**
 * Configuration from the environment (every variable is described in docs/configuration.md).
 * Everything is validated once at start; a bad value stops the process with a message naming the
 * variable and the fix.
 */
import path from 'node:path';
import { parseAddressRanges } from './keys/source-ips.js';
import { knownDatacenters, normalizeDatacenter } from './upstream/runpod-datacenters.js';
import { upstreamTimeoutsFromEnv, type UpstreamTimeouts } from './upstream/timeouts.js';

export interface UpstreamCredentials {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface DefaultUpstream extends UpstreamCredentials {
  endpoint: URL;
  region: string;
}

export interface Config {
  dataDir: string;
  /** KEYGATE_DATABASE_URL: a shared PostgreSQL key store, or null for SQLite in dataDir. */
  databaseUrl: string | null;
  host: string;
  port: number;
  adminHost: string;
  adminPort: number;
  /** Endpoint shown to users and used in presigned URLs, without trailing slash. */
  publicUrl: string;
  /** Whether publicUrl is the default (http://localhost:<KEYGATE_PORT>) rather than KEYGATE_PUBLIC_URL. */
  publicUrlIsDefault: boolean;
  /** Region clients sign with. `us-east-1` is always accepted too (see acceptedRegions). */
  region: string;
  /** Regions a client signature may be scoped to. */
  acceptedRegions: string[];
  /** Enables virtual-host addressing `bucket.<domain>` when set. */
  domain: string | null;
  keyTag: string;
  /** 32-byte master key from KEYGATE_MASTER_KEY, or null to use/generate `<dataDir>/master.key`. */
  masterKey: Buffer | null;
  /** Admin token from KEYGATE_ADMIN_TOKEN, or null to use/generate one whose hash is kept in `<dataDir>/admin-token.sha256`. */
  adminToken: string | null;
  defaultUpstream: DefaultUpstream | null;
  runpodCredentials: UpstreamCredentials | null;
  runpodApiKey: string | null;
  /** datacenter id (upper case) -> endpoint URL override. */
  runpodEndpoints: Record<string, URL> | null;
  runpodRestUrl: string;
  /** Size in GB of the network volumes CreateBucket makes on RunPod (KEYGATE_RUNPOD_VOLUME_SIZE_GB). */
  runpodVolumeSizeGb: number;
  /**
   * Datacenter of new RunPod buckets whose CreateBucket names none (KEYGATE_RUNPOD_DEFAULT_DATACENTER),
   * upper case; null = CreateBucket must name one (LocationConstraint).
   */
  runpodDefaultDatacenter: string | null;
  /** Whether DeleteBucket may delete an empty RunPod network volume (KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1). */
  runpodAllowVolumeDelete: boolean;
  /**
   * Whether the default upstream decodes aws-chunked bodies with trailing checksums
   * (KEYGATE_UPSTREAM_TRAILING_CHECKSUMS, default on; s3rver and some small servers need it off).
   */
  upstreamTrailingChecksums: boolean;
  /** Include StringToSign/CanonicalRequest in SignatureDoesNotMatch errors (KEYGATE_DEBUG_SIGNATURES=1). */
  debugSignatures: boolean;
  /** Per-key request rate limit (KEYGATE_RATE_LIMIT / KEYGATE_RATE_LIMIT_BURST), null = unlimited. */
  rateLimit: RateLimitConfig | null;
  /** Where the JSON access log goes (KEYGATE_ACCESS_LOG): stdout, a file (appended), or nowhere. */
  accessLog: AccessLogTarget;
  /** How long to wait for upstreams (KEYGATE_UPSTREAM_{CONNECT,HEADERS,BODY}_TIMEOUT_MS). */
  upstreamTimeouts: UpstreamTimeouts;
  /**
   * How long what is read before a signature can be checked (a POST form's fields) may take to
   * arrive (KEYGATE_UNAUTHENTICATED_TIMEOUT_MS).
   */
  unauthenticatedTimeoutMs: number;
  /**
   * How many requests from senders not yet authenticated (POST forms being read, refused bodies
   * being discarded) the S3 listener serves at once (KEYGATE_UNAUTHENTICATED_MAX_REQUESTS).
   */
  unauthenticatedMaxRequests: number;
  /** A dashboard session unused this long ends (KEYGATE_DASHBOARD_IDLE_TIMEOUT_MS, default 30 minutes). */
  dashboardIdleTimeoutMs: number;
  /** Proxies (CIDRs) whose X-Forwarded-For is believed for keys' allowed networks (KEYGATE_TRUSTED_PROXIES); null = none. */
  trustedProxies: string[] | null;
}

export interface RateLimitConfig {
  /** Sustained requests per second allowed for each access key. */
  requestsPerSecond: number;
  /** Requests a key may make at once after being idle (token bucket size). */
  burst: number;
}

export type AccessLogTarget = { kind: 'stdout' } | { kind: 'off' } | { kind: 'file'; path: string };

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** v2 REST API; v1 (https://rest.runpod.io/v1) is being retired but its response shape is still understood. */
export const DEFAULT_RUNPOD_REST_URL = 'https://api.runpod.io/v2';

/** Network volumes the gateway creates: 10 GB unless KEYGATE_RUNPOD_VOLUME_SIZE_GB says otherwise (10 to 4096). */
export const DEFAULT_RUNPOD_VOLUME_SIZE_GB = 10;
export const MIN_RUNPOD_VOLUME_SIZE_GB = 10;
export const MAX_RUNPOD_VOLUME_SIZE_GB = 4096;

export function loadConfig(env: Env = process.env): Config {
  const get = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };

  const region = get('KEYGATE_REGION') ?? 'auto';
  if (!/^[a-z0-9-]{1,64}$/i.test(region)) {
    throw new ConfigError('KEYGATE_REGION', `"${region}" is not a region name; use e.g. "auto" or "us-east-1".`);
  }

  const keyTag = get('KEYGATE_KEY_TAG') ?? 'live';
  if (!/^[a-z0-9]{1,16}$/.test(keyTag)) {
    throw new ConfigError('KEYGATE_KEY_TAG', `"${keyTag}" must be 1-16 lowercase letters or digits, e.g. "live" or "test".`);
  }

  const domain = get('KEYGATE_DOMAIN')?.toLowerCase() ?? null;
  if (domain !== null && !/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?$/.test(domain)) {
    throw new ConfigError('KEYGATE_DOMAIN', `"${domain}" is not a host name; use e.g. "s3.example.com".`);
  }

  const port = parsePort('KEYGATE_PORT', get('KEYGATE_PORT') ?? '9000');
  const configuredPublicUrl = get('KEYGATE_PUBLIC_URL');
  // The default follows the port clients reach this process on locally.
  const publicUrl = parseUrl('KEYGATE_PUBLIC_URL', configuredPublicUrl ?? `http://localhost:${port}`);
  const runpodEndpoints = parseRunpodEndpoints(get('KEYGATE_RUNPOD_ENDPOINTS'));

  return {
    dataDir: path.resolve(get('KEYGATE_DATA_DIR') ?? './data'),
    databaseUrl: parseOptional(get('KEYGATE_DATABASE_URL'), (value) => parseDatabaseUrl('KEYGATE_DATABASE_URL', value)),
    host: get('KEYGATE_HOST') ?? '0.0.0.0',
    port,
    adminHost: get('KEYGATE_ADMIN_HOST') ?? '127.0.0.1',
    adminPort: parsePort('KEYGATE_ADMIN_PORT', get('KEYGATE_ADMIN_PORT') ?? '9001'),
    publicUrl: publicUrl.href.replace(/\/+$/, ''),
    publicUrlIsDefault: configuredPublicUrl === undefined,
    region,
    acceptedRegions: [...new Set([region, 'us-east-1'])],
    domain,
    keyTag,
    masterKey: parseMasterKey(get('KEYGATE_MASTER_KEY')),
    adminToken: parseAdminToken(get('KEYGATE_ADMIN_TOKEN')),
    defaultUpstream: parseDefaultUpstream(get),
    runpodCredentials: parseRunpodCredentials(get),
    runpodApiKey: get('RUNPOD_API_KEY') ?? null,
    runpodEndpoints,
    runpodRestUrl: parseUrl('KEYGATE_RUNPOD_REST_URL', get('KEYGATE_RUNPOD_REST_URL') ?? DEFAULT_RUNPOD_REST_URL).href.replace(/\/+$/, ''),
    runpodVolumeSizeGb: parseWholeNumber(
      'KEYGATE_RUNPOD_VOLUME_SIZE_GB',
      get('KEYGATE_RUNPOD_VOLUME_SIZE_GB'),
      DEFAULT_RUNPOD_VOLUME_SIZE_GB,
      MIN_RUNPOD_VOLUME_SIZE_GB,
      MAX_RUNPOD_VOLUME_SIZE_GB,
    ),
    runpodDefaultDatacenter: parseDefaultDatacenter(get('KEYGATE_RUNPOD_DEFAULT_DATACENTER'), runpodEndpoints),
    runpodAllowVolumeDelete: parseBoolean('KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE', get('KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE')),
    upstreamTrailingChecksums: parseBoolean('KEYGATE_UPSTREAM_TRAILING_CHECKSUMS', get('KEYGATE_UPSTREAM_TRAILING_CHECKSUMS') ?? '1'),
    debugSignatures: parseBoolean('KEYGATE_DEBUG_SIGNATURES', get('KEYGATE_DEBUG_SIGNATURES')),
    rateLimit: parseRateLimit(get('KEYGATE_RATE_LIMIT'), get('KEYGATE_RATE_LIMIT_BURST')),
    accessLog: parseAccessLog(get('KEYGATE_ACCESS_LOG')),
    upstreamTimeouts: upstreamTimeoutsFromEnv(env),
    unauthenticatedTimeoutMs: parseWholeNumber('KEYGATE_UNAUTHENTICATED_TIMEOUT_MS', get('KEYGATE_UNAUTHENTICATED_TIMEOUT_MS'), 10_000, 100, 600_000),
    unauthenticatedMaxRequests: parseWholeNumber('KEYGATE_UNAUTHENTICATED_MAX_REQUESTS', get('KEYGATE_UNAUTHENTICATED_MAX_REQUESTS'), 256, 1, 100_000),
    trustedProxies: parseTrustedProxies(get('KEYGATE_TRUSTED_PROXIES')),
    dashboardIdleTimeoutMs: parseWholeNumber('KEYGATE_DASHBOARD_IDLE_TIMEOUT_MS', get('KEYGATE_DASHBOARD_IDLE_TIMEOUT_MS'), 1_800_000, 1_000, 86_400_000),
  };
}

function parseWholeNumber(variable: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) {
    throw new ConfigError(variable, `"${value}" is not a whole number from ${min} to ${max}; e.g. ${fallback} (the default).`);
  }
  return number;
}

function parseTrustedProxies(value: string | undefined): string[] | null {
  if (value === undefined) return null;
  try {
    return parseAddressRanges(value);
  } catch (error) {
    throw new ConfigError('KEYGATE_TRUSTED_PROXIES', `${(error as Error).message} List your load balancers' or proxies' addresses, e.g. 10.0.0.0/8.`);
  }
}

function parseRateLimit(rate: string | undefined, burst: string | undefined): RateLimitConfig | null {
  const requestsPerSecond = rate === undefined ? 0 : Number(rate);
  if (!/^\d+(\.\d+)?$/.test(rate ?? '0') || !Number.isFinite(requestsPerSecond)) {
    throw new ConfigError('KEYGATE_RATE_LIMIT', `"${rate}" is not a rate; use requests per second per key, e.g. 50 (0 = unlimited).`);
  }
  if (requestsPerSecond === 0) {
    if (burst !== undefined) throw new ConfigError('KEYGATE_RATE_LIMIT_BURST', 'only applies with KEYGATE_RATE_LIMIT set; set both or neither.');
    return null;
  }
  // Default burst: one second's worth, and at least one request.
  const size = burst === undefined ? Math.max(1, Math.ceil(requestsPerSecond)) : Number(burst);
  if (!/^\d+$/.test(burst ?? String(size)) || size < 1) {
    throw new ConfigError('KEYGATE_RATE_LIMIT_BURST', `"${burst}" is not a burst size; use a whole number of requests >= 1, e.g. 100.`);
  }
  return { requestsPerSecond, burst: size };
}

function parseAccessLog(value: string | undefined): AccessLogTarget {
  if (value === undefined || value.toLowerCase() === 'stdout') return { kind: 'stdout' };
  if (/^(off|0|false|no|none)$/i.test(value)) return { kind: 'off' };
  if (!path.isAbsolute(value) && !value.startsWith('.')) {
    throw new ConfigError(
      'KEYGATE_ACCESS_LOG',
      `"${value}" is not understood; use "stdout" (default), "off", or a file path like /var/log/keygate/access.log.`,
    );
  }
  return { kind: 'file', path: path.resolve(value) };
}

function parsePort(variable: string, value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) {
    throw new ConfigError(variable, `"${value}" is not a TCP port; use a number from 0 to 65535.`);
  }
  return port;
}

function parseOptional<T>(value: string | undefined, parse: (value: string) => T): T | null {
  return value === undefined ? null : parse(value);
}

/**
 * A PostgreSQL connection URL, e.g. postgres://keygate:secret@db:5432/keygate?sslmode=require.
 * Messages show it without its password.
 */
export function parseDatabaseUrl(variable: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, 'is not a URL; use e.g. "postgres://keygate:<password>@db.internal:5432/keygate".');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new ConfigError(variable, `must start with postgres:// (a PostgreSQL server); "${redactDatabaseUrl(value)}" does not.`);
  }
  if (url.hostname === '' && !url.searchParams.has('host')) {
    throw new ConfigError(variable, `"${redactDatabaseUrl(value)}" names no server; use e.g. "postgres://keygate:<password>@db.internal:5432/keygate".`);
  }
  return value;
}

/** The URL as it may be shown in logs and messages: any password replaced by "***". */
export function redactDatabaseUrl(value: string): string {
  // Whatever precedes an '@' may be a password, however malformed the rest (postgres:/user:pw@host).
  const masked = value.replace(/^([a-z][a-z0-9+.-]*:\/{0,2})[^@/?#]*@/i, '$1***@');
  try {
    const url = new URL(masked);
    if (url.searchParams.has('password')) url.searchParams.set('password', '***');
    return url.href;
  } catch {
    return '(an unparsable URL)';
  }
}

function parseUrl(variable: string, value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(variable, `"${value}" is not a URL; use e.g. "https://s3.example.com".`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError(variable, `"${value}" must start with http:// or https://.`);
  }
  return url;
}

function parseBoolean(variable: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  if (/^(1|true|yes|on)$/i.test(value)) return true;
  if (/^(0|false|no|off)$/i.test(value)) return false;
  throw new ConfigError(variable, `"${value}" is not a boolean; use 1 or 0.`);
}

/** Accepts 64 hex characters or base64 of exactly 32 bytes. */
export function parseMasterKey(value: string | undefined): Buffer | null {
  if (value === undefined) return null;
  if (/^[0-9a-f]{64}$/i.test(value)) return Buffer.from(value, 'hex');
  if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) {
    const bytes = Buffer.from(value, 'base64');
    if (bytes.length === 32) return bytes;
  }
  throw new ConfigError('KEYGATE_MASTER_KEY', 'must be 32 bytes as 64 hex characters or base64; generate one with `openssl rand -hex 32`.');
}

function parseAdminToken(value: string | undefined): string | null {
  if (value === undefined) return null;
  if (value.length < 16) {
    throw new ConfigError('KEYGATE_ADMIN_TOKEN', 'is too short; use at least 16 characters, e.g. `openssl rand -hex 32`.');
  }
  return value;
}

function parseDefaultUpstream(get: (name: string) => string | undefined): DefaultUpstream | null {
  const names = ['KEYGATE_UPSTREAM_ENDPOINT', 'KEYGATE_UPSTREAM_ACCESS_KEY_ID', 'KEYGATE_UPSTREAM_SECRET_ACCESS_KEY'] as const;
  const present = names.filter((n) => get(n) !== undefined);
  if (present.length === 0) return null;
  const missing = names.find((n) => get(n) === undefined);
  if (missing) {
    throw new ConfigError(missing, `is required when ${present.join(', ')} is set (the default upstream needs endpoint and credentials).`);
  }
  return {
    endpoint: parseUrl('KEYGATE_UPSTREAM_ENDPOINT', get('KEYGATE_UPSTREAM_ENDPOINT')!),
    region: get('KEYGATE_UPSTREAM_REGION') ?? 'us-east-1',
    accessKeyId: get('KEYGATE_UPSTREAM_ACCESS_KEY_ID')!,
    secretAccessKey: get('KEYGATE_UPSTREAM_SECRET_ACCESS_KEY')!,
  };
}

function parseRunpodCredentials(get: (name: string) => string | undefined): UpstreamCredentials | null {
  const accessKeyId = get('RUNPOD_S3_ACCESS_KEY');
  const secretAccessKey = get('RUNPOD_S3_SECRET_KEY');
  if (accessKeyId === undefined && secretAccessKey === undefined) return null;
  if (accessKeyId === undefined) throw new ConfigError('RUNPOD_S3_ACCESS_KEY', 'is required when RUNPOD_S3_SECRET_KEY is set.');
  if (secretAccessKey === undefined) throw new ConfigError('RUNPOD_S3_SECRET_KEY', 'is required when RUNPOD_S3_ACCESS_KEY is set.');
  return { accessKeyId, secretAccessKey };
}

function parseDefaultDatacenter(value: string | undefined, endpoints: Record<string, URL> | null): string | null {
  if (value === undefined) return null;
  const datacenter = normalizeDatacenter(value);
  const known = knownDatacenters(endpoints);
  if (!known.includes(datacenter)) {
    throw new ConfigError(
      'KEYGATE_RUNPOD_DEFAULT_DATACENTER',
      `"${value}" is not a RunPod datacenter with S3; use one of ${known.join(', ')} (a newer one works once KEYGATE_RUNPOD_ENDPOINTS maps it).`,
    );
  }
  return datacenter;
}

function parseRunpodEndpoints(value: string | undefined): Record<string, URL> | null {
  if (value === undefined) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError('KEYGATE_RUNPOD_ENDPOINTS', 'is not valid JSON; use e.g. {"EU-RO-1":"http://127.0.0.1:5000"}.');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError('KEYGATE_RUNPOD_ENDPOINTS', 'must be a JSON object mapping datacenter id to endpoint URL.');
  }
  const endpoints: Record<string, URL> = {};
  for (const [datacenter, url] of Object.entries(parsed)) {
    if (typeof url !== 'string') {
      throw new ConfigError('KEYGATE_RUNPOD_ENDPOINTS', `the endpoint for "${datacenter}" must be a URL string.`);
    }
    endpoints[datacenter.toUpperCase()] = parseUrl('KEYGATE_RUNPOD_ENDPOINTS', url);
  }
  return endpoints;
}
