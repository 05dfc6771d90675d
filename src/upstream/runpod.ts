/**
 * RunPod specifics: which S3 endpoint serves a datacenter, and which datacenter holds a network
 * volume (found through RunPod's REST API, cached so S3 requests never wait on it for long).
 */
import { request, type Dispatcher } from 'undici';
import type { Config } from '../config.js';
import { readAtMost } from '../read-at-most.js';
import { isDatacenterId, normalizeDatacenter } from './runpod-datacenters.js';

export { datacenterHint, isDatacenterId, knownDatacenters, normalizeDatacenter, RUNPOD_S3_DATACENTERS } from './runpod-datacenters.js';

const RUNPOD_S3_HOST = /^s3api-([a-z]{2,4}(?:-[a-z]{2,4})?-\d+)\.runpod\.io$/i;

/**
 * The S3 endpoint of a datacenter: the KEYGATE_RUNPOD_ENDPOINTS override if any, else
 * `https://s3api-<lowercase id>.runpod.io`. Null when the id is not shaped like a datacenter id.
 */
export function runpodEndpoint(datacenter: string, overrides: Record<string, URL> | null): URL | null {
  const id = normalizeDatacenter(datacenter);
  const override = overrides?.[id];
  if (override) return new URL(override.href);
  if (!isDatacenterId(id)) return null;
  return new URL(`https://s3api-${id.toLowerCase()}.runpod.io`);
}

/** EU-RO-1 for https://s3api-eu-ro-1.runpod.io; null for any other host. */
export function datacenterOfRunpodEndpoint(endpoint: URL): string | null {
  const match = RUNPOD_S3_HOST.exec(endpoint.hostname);
  return match ? normalizeDatacenter(match[1]!) : null;
}

// ---------------------------------------------------------------------------------------------
// Volume discovery

export interface RunpodVolume {
  /** The volume id, which is also its bucket name on RunPod's S3 API. */
  id: string;
  name: string;
  /** Size in GB as RunPod reports it, null when absent. */
  sizeGb: number | null;
  /** Upper-case datacenter id. */
  datacenter: string;
  /**
   * When the volume was created, if RunPod's answer says (createdAt / created_at / creationDate);
   * otherwise when this gateway first listed it.
   */
  createdAt: Date;
}

export interface VolumeDiscovery {
  /** The volume with this id, or null when the account has none (cached; see RunpodVolumeDiscovery). */
  find(volumeId: string): Promise<RunpodVolume | null>;
  /** All volumes of the account (cached). */
  list(): Promise<RunpodVolume[]>;
}

/** A listing failure worded for the operator: what went wrong and what to change. */
export class VolumeDiscoveryError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'VolumeDiscoveryError';
  }
}

export interface RunpodVolumeDiscoveryOptions {
  /** REST base URL, e.g. https://api.runpod.io/v2 or https://rest.runpod.io/v1. */
  restUrl: string;
  apiKey: string;
  /** How long a successful listing is served from cache. Default 5 min. */
  cacheTtlMs?: number;
  /** Minimum time between two listing attempts, so unknown bucket names cannot hammer the API. Default 30 s. */
  minRefreshIntervalMs?: number;
  /** Whole-request timeout. Default 10 s. */
  timeoutMs?: number;
  log?: (entry: Record<string, unknown>) => void;
  now?: () => number;
  dispatcher?: Dispatcher;
}

const DEFAULT_CACHE_TTL_MS = 5 * 60_000;
const DEFAULT_MIN_REFRESH_INTERVAL_MS = 30_000;
const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_RESPONSE_BYTES = 8 * 1024 * 1024;

/**
 * Lists the account's network volumes through RunPod's REST API (v2 `GET /network-volumes`, or v1
 * `GET /networkvolumes` when the base URL ends in /v1; either response shape is understood).
 *
 * Caching: a listing is reused for `cacheTtlMs`. A lookup of an id missing from the cache triggers
 * a refresh, but listing attempts are at least `minRefreshIntervalMs` apart, whatever their
 * outcome. A failed refresh is logged once per failure streak and the last good listing is kept.
 */
export class RunpodVolumeDiscovery implements VolumeDiscovery {
  private readonly listUrl: string;
  private readonly cacheTtlMs: number;
  private readonly minRefreshIntervalMs: number;
  private readonly timeoutMs: number;
  private readonly log: (entry: Record<string, unknown>) => void;
  private readonly now: () => number;
  private volumes: RunpodVolume[] | null = null;
  /** When each volume id was first listed, for volumes whose creation time RunPod does not give. */
  private readonly firstListed = new Map<string, Date>();
  private fetchedAt = -Infinity;
  private attemptedAt = -Infinity;
  private lastError: VolumeDiscoveryError | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(private readonly options: RunpodVolumeDiscoveryOptions) {
    const base = options.restUrl.replace(/\/+$/, '');
    this.listUrl = /\/v1$/i.test(base) ? `${base}/networkvolumes` : `${base}/network-volumes`;
    this.cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.minRefreshIntervalMs = options.minRefreshIntervalMs ?? DEFAULT_MIN_REFRESH_INTERVAL_MS;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.log = options.log ?? ((entry) => console.error(JSON.stringify({ level: 'warn', ...entry })));
    this.now = options.now ?? Date.now;
  }

  /** Null when RUNPOD_API_KEY is not set (discovery disabled). */
  static fromConfig(config: Pick<Config, 'runpodApiKey' | 'runpodRestUrl'>): RunpodVolumeDiscovery | null {
    if (config.runpodApiKey === null) return null;
    return new RunpodVolumeDiscovery({ restUrl: config.runpodRestUrl, apiKey: config.runpodApiKey });
  }

  async list(): Promise<RunpodVolume[]> {
    if (this.now() - this.fetchedAt >= this.cacheTtlMs) await this.refreshIfAllowed();
    return this.cachedOrThrow();
  }

  async find(volumeId: string): Promise<RunpodVolume | null> {
    const cached = matchVolume(await this.list(), volumeId);
    if (cached) return cached;
    await this.refreshIfAllowed();
    return matchVolume(this.cachedOrThrow(), volumeId);
  }

  /** One uncached listing; throws VolumeDiscoveryError (for `keygate buckets sync`, which wants to see failures). */
  async fetchVolumes(): Promise<ListedVolume[]> {
    let response: Dispatcher.ResponseData;
    try {
      response = await request(this.listUrl, {
        method: 'GET',
        headers: { authorization: `Bearer ${this.options.apiKey}`, accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeoutMs),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
        dispatcher: this.options.dispatcher,
      });
    } catch (error) {
      throw new VolumeDiscoveryError(
        `Could not reach the RunPod REST API at ${this.listUrl} (${describeNetworkError(error)}); check network access or KEYGATE_RUNPOD_REST_URL.`,
        { cause: error },
      );
    }
    const text = await readLimited(response.body, MAX_RESPONSE_BYTES, this.listUrl);
    if (response.statusCode === 401 || response.statusCode === 403) {
      throw new VolumeDiscoveryError(
        `The RunPod REST API rejected RUNPOD_API_KEY (HTTP ${response.statusCode}); create an API key with read access to network volumes in the RunPod console (Settings -> API Keys) and set RUNPOD_API_KEY.`,
      );
    }
    if (response.statusCode !== 200) {
      throw new VolumeDiscoveryError(`The RunPod REST API answered HTTP ${response.statusCode} to GET ${this.listUrl}: ${text.slice(0, 200)}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new VolumeDiscoveryError(`The RunPod REST API returned invalid JSON from ${this.listUrl}: ${text.slice(0, 200)}`);
    }
    return parseVolumes(parsed, this.listUrl);
  }

  private cachedOrThrow(): RunpodVolume[] {
    if (this.volumes !== null) return this.volumes;
    // Never listed successfully: saying "no such bucket" would hide the real problem.
    throw this.lastError ?? new VolumeDiscoveryError('RunPod network volumes have not been listed yet.');
  }

  private async refreshIfAllowed(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (this.now() - this.attemptedAt < this.minRefreshIntervalMs) return;
    this.attemptedAt = this.now();
    this.inFlight = this.fetchVolumes()
      .then(
        (listed) => {
          const seen = new Date(this.now());
          const volumes = listed.map((volume) => {
            if (volume.createdAt !== null) return { ...volume, createdAt: volume.createdAt };
            if (!this.firstListed.has(volume.id)) this.firstListed.set(volume.id, seen);
            return { ...volume, createdAt: this.firstListed.get(volume.id)! };
          });
          this.volumes = volumes;
          this.fetchedAt = this.now();
          if (this.lastError) this.log({ msg: 'RunPod volume discovery recovered', volumes: volumes.length });
          this.lastError = null;
        },
        (error: unknown) => {
          const failure = error instanceof VolumeDiscoveryError ? error : new VolumeDiscoveryError(String(error), { cause: error });
          if (!this.lastError) {
            this.log({
              msg: 'RunPod volume discovery failed; keeping the last listing',
              error: failure.message,
              cachedVolumes: this.volumes?.length ?? null,
            });
          }
          this.lastError = failure;
        },
      )
      .finally(() => {
        this.inFlight = null;
      });
    return this.inFlight;
  }
}

function matchVolume(volumes: RunpodVolume[], volumeId: string): RunpodVolume | null {
  // Bucket names are lower case while volume ids may not be: fall back to a case-insensitive match.
  const lower = volumeId.toLowerCase();
  return volumes.find((v) => v.id === volumeId) ?? volumes.find((v) => v.id.toLowerCase() === lower) ?? null;
}

/** Accepts v2 `{"networkVolumes":[…]}` and v1 `[…]`; each item needs an id and a datacenter. */
/** A volume as RunPod's answer describes it (its creation time only when the answer has one). */
export type ListedVolume = Omit<RunpodVolume, 'createdAt'> & { createdAt: Date | null };

export function parseVolumes(body: unknown, source: string): ListedVolume[] {
  const items = Array.isArray(body) ? body : isRecord(body) && Array.isArray(body.networkVolumes) ? body.networkVolumes : null;
  if (items === null) {
    throw new VolumeDiscoveryError(`Unexpected response from ${source}: expected a list of network volumes.`);
  }
  const volumes: ListedVolume[] = [];
  for (const item of items) {
    if (!isRecord(item) || typeof item.id !== 'string' || item.id === '') continue;
    const datacenter = datacenterField(item);
    if (datacenter === null) continue;
    volumes.push({
      id: item.id,
      name: typeof item.name === 'string' ? item.name : item.id,
      sizeGb: typeof item.size === 'number' ? item.size : null,
      datacenter: normalizeDatacenter(datacenter),
      createdAt: dateField(item),
    });
  }
  return volumes;
}

function dateField(item: Record<string, unknown>): Date | null {
  for (const value of [item.createdAt, item.created_at, item.creationDate]) {
    if (typeof value !== 'string' && typeof value !== 'number') continue;
    const date = new Date(value);
    if (!Number.isNaN(date.getTime())) return date;
  }
  return null;
}

/** The datacenter id a RunPod volume item names (dataCenter, dataCenterId or datacenter; a string or an object with an id). */
export function datacenterField(item: Record<string, unknown>): string | null {
  for (const value of [item.dataCenter, item.dataCenterId, item.datacenter]) {
    if (typeof value === 'string' && value !== '') return value;
    if (isRecord(value) && typeof value.id === 'string' && value.id !== '') return value.id;
  }
  return null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

async function readLimited(body: Dispatcher.ResponseData['body'], limit: number, source: string): Promise<string> {
  let bytes: Buffer | null;
  try {
    bytes = await readAtMost(body, limit);
  } catch (error) {
    throw new VolumeDiscoveryError(`Reading the response from ${source} failed (${describeNetworkError(error)}).`, { cause: error });
  }
  if (bytes === null) throw new VolumeDiscoveryError(`The response from ${source} is larger than ${limit} bytes.`);
  return bytes.toString('utf8');
}

export function describeNetworkError(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    if (error.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timed out';
    return typeof code === 'string' ? code : error.message;
  }
  return String(error);
}
