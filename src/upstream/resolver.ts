/**
 * Bucket -> upstream routing. Order: the operator's bucket registry, then the default upstream
 * (KEYGATE_UPSTREAM_*), then RunPod volume discovery (a bucket named like a network volume id).
 */
import type { Config, UpstreamCredentials } from '../config.js';
import { S3Error } from '../errors.js';
import { readUpstreamBody, type UpstreamForwarder } from './forward.js';
import { listBucketsFromXml } from './list-buckets.js';
import { logToStderr, type Logger } from '../observability/log.js';
import {
  datacenterHint,
  datacenterOfRunpodEndpoint,
  normalizeDatacenter,
  runpodEndpoint,
  RunpodVolumeDiscovery,
  VolumeDiscoveryError,
  type VolumeDiscovery,
} from './runpod.js';
import { describeUpstream, GENERIC_S3_CAPABILITIES, RUNPOD_CAPABILITIES, type UpstreamCapabilities, type UpstreamTarget } from './target.js';

export interface BucketRecordLike {
  name: string;
  datacenter: string | null;
  endpoint: string | null;
  region: string | null;
  upstreamBucket: string;
  createdAt: Date;
}

/** The bucket registry as the request path reads it: as of the request's start (src/store/store.ts). */
export interface BucketRegistry {
  findForRouting(name: string): BucketRecordLike | null;
  listForRouting(): readonly BucketRecordLike[];
}

export interface UpstreamResolverDeps {
  config: Config;
  registry: BucketRegistry;
  /** undefined: built from config (RUNPOD_API_KEY); null: discovery disabled. */
  discovery?: VolumeDiscovery | null;
  /** Capability overrides for generic S3 upstreams (e.g. `trailingChecksums: false` for s3rver-like servers). */
  genericCapabilities?: Partial<UpstreamCapabilities>;
  /** Sends the default upstream's ListBuckets. */
  forwarder: Pick<UpstreamForwarder, 'forward'>;
  /** Where operator-facing details of failures go (clients get a short error). */
  log?: Logger;
  /**
   * Whether the gateway creates and deletes RunPod buckets itself (src/buckets/lifecycle.ts):
   * RunPod targets then have the `bucketLifecycle` capability. Default false.
   */
  runpodBucketLifecycle?: boolean;
}

export interface ListedBucket {
  name: string;
  createdAt: Date | null;
}

const MAX_LIST_BUCKETS_XML_BYTES = 4 * 1024 * 1024;
/** Datacenter endpoints kept parsed (RunPod has a few dozen datacenters). */
const MAX_CACHED_DATACENTERS = 256;

export class UpstreamResolver {
  private readonly config: Config;
  private readonly registry: BucketRegistry;
  private readonly discovery: VolumeDiscovery | null;
  private readonly genericCapabilities: UpstreamCapabilities;
  private readonly forwarder: Pick<UpstreamForwarder, 'forward'>;
  private readonly log: Logger;
  private readonly runpodCapabilities: UpstreamCapabilities;
  /**
   * Parts of a target that do not depend on the bucket, made once and shared by every request's
   * target (a target is never modified): parsing a URL and copying the credentials and
   * capabilities per request was a measurable share of a small request's CPU.
   */
  private readonly defaultUpstream: { endpoint: URL; region: string; credentials: UpstreamCredentials } | null;
  private readonly runpodEndpoints = new Map<string, URL | null>();
  private readonly runpodCredentials: UpstreamCredentials | null;
  /** The target of each registry record the store handed out (frozen, replaced on any change). */
  private readonly recordTargets = new WeakMap<BucketRecordLike, UpstreamTarget>();

  constructor(deps: UpstreamResolverDeps) {
    this.config = deps.config;
    this.registry = deps.registry;
    this.discovery = deps.discovery === undefined ? RunpodVolumeDiscovery.fromConfig(deps.config) : deps.discovery;
    this.genericCapabilities = Object.freeze({ ...GENERIC_S3_CAPABILITIES, ...deps.genericCapabilities });
    this.forwarder = deps.forwarder;
    this.log = deps.log ?? logToStderr;
    this.runpodCapabilities = Object.freeze({ ...RUNPOD_CAPABILITIES, bucketLifecycle: deps.runpodBucketLifecycle ?? false });
    const upstream = this.config.defaultUpstream;
    this.defaultUpstream = upstream
      ? {
          endpoint: new URL(upstream.endpoint.href),
          region: upstream.region,
          credentials: Object.freeze({ accessKeyId: upstream.accessKeyId, secretAccessKey: upstream.secretAccessKey }),
        }
      : null;
    this.runpodCredentials = this.config.runpodCredentials ? Object.freeze({ ...this.config.runpodCredentials }) : null;
  }

  /** The upstream of a bucket, or null when no route knows it. Throws S3Error on misconfiguration. */
  async resolve(bucket: string): Promise<UpstreamTarget | null> {
    // Routing is looked up for the S3 request being served (plan.ts).
    const record = this.registry.findForRouting(bucket);
    if (record) return this.targetForRecord(record);

    if (this.config.defaultUpstream) return this.defaultUpstreamTarget(bucket);

    if (this.discovery) {
      let volume;
      try {
        volume = await this.discovery.find(bucket);
      } catch (error) {
        // Transient (RunPod's REST API): worth a retry, so 503 with Retry-After; the details go to the log.
        const reason = error instanceof VolumeDiscoveryError ? error.message : String(error);
        this.log('warn', 'volume discovery unavailable', { bucket, reason, fix: `or register it with \`keygate buckets add ${bucket} --datacenter <DC>\`` });
        throw new S3Error('ServiceUnavailable', `The gateway cannot tell where bucket "${bucket}" is stored right now; retry later.`, {
          cause: error,
          headers: { 'retry-after': '30' },
        });
      }
      if (volume) return this.runpodTarget(bucket, volume.datacenter, volume.id, null, null);
    }
    return null;
  }

  /** Where a registered bucket's requests go (what resolve() answers for it). Throws S3Error on misconfiguration. */
  targetOf(record: BucketRecordLike): UpstreamTarget {
    return this.targetForRecord(record);
  }

  /**
   * Every bucket a client could address: registry entries, discovered RunPod volumes, and the
   * default upstream's own buckets, de-duplicated by name (the first source wins).
   */
  async listBuckets(): Promise<ListedBucket[]> {
    const byName = new Map<string, ListedBucket>();
    const add = (bucket: ListedBucket) => {
      if (!byName.has(bucket.name)) byName.set(bucket.name, bucket);
    };
    const registered = this.registry.listForRouting();
    for (const record of registered) add({ name: record.name, createdAt: record.createdAt });

    if (this.discovery) {
      // A volume registered under a name of its own (as CreateBucket registers the volumes it
      // creates) is listed by that name only.
      const aliased = new Set(registered.filter((record) => record.datacenter !== null).map((record) => record.upstreamBucket));
      try {
        for (const volume of await this.discovery.list()) if (!aliased.has(volume.id)) add({ name: volume.id, createdAt: volume.createdAt });
      } catch {
        // Discovery logs its own failures; registered buckets are still worth listing.
      }
    }
    if (this.config.defaultUpstream) {
      for (const bucket of await this.listDefaultUpstreamBuckets()) add(bucket);
    }
    return [...byName.values()];
  }

  private targetForRecord(record: BucketRecordLike): UpstreamTarget {
    const known = this.recordTargets.get(record);
    if (known !== undefined) return known;
    const target = this.buildTargetForRecord(record);
    // The stores hand out frozen records, a new object for a changed row: a frozen one's target cannot go stale.
    if (Object.isFrozen(record)) this.recordTargets.set(record, target);
    return target;
  }

  private buildTargetForRecord(record: BucketRecordLike): UpstreamTarget {
    if (record.datacenter) {
      return this.runpodTarget(record.name, record.datacenter, record.upstreamBucket, record.endpoint, record.region);
    }
    if (record.endpoint) {
      const endpoint = parseRecordEndpoint(record);
      if (typeof endpoint === 'string') throw this.misconfigured(record.name, endpoint);
      const datacenter = datacenterOfRunpodEndpoint(endpoint);
      // A RunPod endpoint given by URL is still RunPod: its credentials and its limits.
      if (datacenter) return this.runpodTarget(record.name, datacenter, record.upstreamBucket, record.endpoint, record.region);
      return {
        kind: 's3',
        endpoint,
        region: record.region ?? this.config.defaultUpstream?.region ?? 'us-east-1',
        bucket: record.upstreamBucket,
        credentials: this.genericCredentials(record.name),
        datacenter: null,
        capabilities: this.genericCapabilities,
      };
    }
    if (this.config.defaultUpstream) return this.defaultUpstreamTarget(record.upstreamBucket);
    throw this.misconfigured(
      record.name,
      `Bucket "${record.name}" is registered without a datacenter or endpoint and no default upstream is configured; ` +
        `re-add it with \`keygate buckets add ${record.name} --datacenter <DC>\` (or --endpoint/--region), or set KEYGATE_UPSTREAM_ENDPOINT.`,
    );
  }

  private defaultUpstreamTarget(upstreamBucket: string): UpstreamTarget {
    const { endpoint, region, credentials } = this.defaultUpstream!;
    return {
      kind: 's3',
      endpoint,
      region,
      bucket: upstreamBucket,
      credentials,
      datacenter: null,
      capabilities: this.genericCapabilities,
    };
  }

  /** A datacenter's endpoint, parsed once per datacenter (ids are validated, so the map stays small). */
  private runpodEndpointOf(id: string): URL | null {
    let endpoint = this.runpodEndpoints.get(id);
    if (endpoint === undefined) {
      endpoint = runpodEndpoint(id, this.config.runpodEndpoints);
      if (this.runpodEndpoints.size < MAX_CACHED_DATACENTERS) this.runpodEndpoints.set(id, endpoint);
    }
    return endpoint;
  }

  private runpodTarget(
    bucket: string,
    datacenter: string,
    upstreamBucket: string,
    endpointOverride: string | null,
    regionOverride: string | null,
  ): UpstreamTarget {
    const id = normalizeDatacenter(datacenter);
    const endpoint = endpointOverride ? parseRecordEndpoint({ name: bucket, endpoint: endpointOverride }) : this.runpodEndpointOf(id);
    if (typeof endpoint === 'string') throw this.misconfigured(bucket, endpoint);
    if (endpoint === null) {
      throw this.misconfigured(
        bucket,
        `Bucket "${bucket}" points at RunPod datacenter "${datacenter}", which is not a datacenter id (${datacenterHint()}); ` +
          `fix it with \`keygate buckets add ${bucket} --datacenter <DC>\` or map it in KEYGATE_RUNPOD_ENDPOINTS.`,
      );
    }
    if (!this.runpodCredentials) {
      throw this.misconfigured(
        bucket,
        `Bucket "${bucket}" is a RunPod network volume in ${id}, but the gateway has no RunPod S3 credentials; ` +
          'set RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY (RunPod console -> Settings -> S3 API Keys) and restart.',
      );
    }
    return {
      kind: 'runpod',
      endpoint,
      region: regionOverride ?? id,
      bucket: upstreamBucket,
      credentials: this.runpodCredentials,
      datacenter: id,
      capabilities: this.runpodCapabilities,
    };
  }

  /** Credentials for a registered non-RunPod endpoint: the default upstream's, else RunPod's. */
  private genericCredentials(bucket: string): UpstreamCredentials {
    if (this.defaultUpstream) return this.defaultUpstream.credentials;
    if (this.runpodCredentials) return this.runpodCredentials;
    throw this.misconfigured(
      bucket,
      `Bucket "${bucket}" has its own endpoint but the gateway has no credentials for it; ` +
        'set KEYGATE_UPSTREAM_ACCESS_KEY_ID and KEYGATE_UPSTREAM_SECRET_ACCESS_KEY (with KEYGATE_UPSTREAM_ENDPOINT) and restart.',
    );
  }

  /**
   * A bucket the gateway's own configuration keeps it from serving. The operator reads what to fix
   * in the log; clients get a short answer that no retry will change (409 InvalidBucketState,
   * which SDKs do not retry, instead of a 503 they would retry for nothing).
   */
  private misconfigured(bucket: string, fix: string): S3Error {
    this.log('error', 'bucket not servable: configuration', { bucket, fix });
    return new S3Error('InvalidBucketState', `The gateway is not configured to reach the storage of bucket "${bucket}"; the operator's log says what to fix.`);
  }

  private async listDefaultUpstreamBuckets(): Promise<ListedBucket[]> {
    const target = this.defaultUpstreamTarget('');
    let xml: string;
    try {
      const response = await this.forwarder.forward({
        target,
        method: 'GET',
        objectKey: null,
        bucketLevel: false,
        query: [],
        headers: {},
        body: null,
        retry: true,
      });
      xml = await readUpstreamBody(response, MAX_LIST_BUCKETS_XML_BYTES);
    } catch (error) {
      this.log('error', 'listing the default upstream buckets failed', {
        upstream: describeUpstream(target),
        error: error instanceof S3Error ? `${error.code}: ${error.message}` : String(error),
        fix: 'check KEYGATE_UPSTREAM_ACCESS_KEY_ID / KEYGATE_UPSTREAM_SECRET_ACCESS_KEY and that the key may list buckets',
      });
      throw new S3Error('ServiceUnavailable', "The gateway could not list the default storage's buckets; the operator's log has the details.", {
        cause: error,
      });
    }
    return listBucketsFromXml(xml);
  }
}

function parseRecordEndpoint(record: { name: string; endpoint: string | null }): URL | string {
  try {
    return new URL(record.endpoint!);
  } catch {
    return `Bucket "${record.name}" has an invalid endpoint "${record.endpoint}"; re-add it with \`keygate buckets add ${record.name} --endpoint https://… --region …\`.`;
  }
}
