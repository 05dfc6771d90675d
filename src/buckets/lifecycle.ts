/**
 * Creating and deleting buckets on RunPod: a bucket is a network volume, created and deleted through
 * RunPod's REST API (src/upstream/runpod-volumes.ts) and registered in the bucket registry under the
 * bucket's name (name -> volume id in its datacenter), so requests route to it at once.
 *
 * One code path for every caller: S3 CreateBucket/DeleteBucket (src/s3/handlers.ts), the admin
 * dashboard, anything else. Every refusal and failure is a BucketLifecycleError: an S3 error (code,
 * status) whose message says what the user or the operator should do next.
 *
 * What it guards against:
 * - two volumes for one name: calls for the same name run one after the other in this process,
 *   the registry is checked just before RunPod is asked, and a create whose outcome is unknown (a
 *   timeout, a RunPod-side failure, an unreadable answer) holds the name for AMBIGUOUS_HOLD_MS, so
 *   an SDK's automatic retry cannot create a second volume;
 * - a volume nobody knows about: when registering fails after RunPod created the volume, the error
 *   names the volume id for the operator to clean up;
 * - losing data: a delete needs KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1, a bucket that is empty (no
 *   object, no multipart upload in progress: one listing of each, max 1 entry), and a volume no
 *   other registered bucket uses. Unregistering a bucket (`keygate buckets remove`, the admin API)
 *   never comes here and never deletes data.
 */
import type { Config } from '../config.js';
import { S3Error, type S3ErrorCode } from '../errors.js';
import { logToStderr, type Logger } from '../observability/log.js';
import type { BucketRecord, BucketRepository } from '../store/buckets.js';
import { readUpstreamBody, type UpstreamForwarder } from '../upstream/forward.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import { isDatacenterId, knownDatacenters, normalizeDatacenter } from '../upstream/runpod-datacenters.js';
import { RunpodRestError, type RunpodVolumeRest } from '../upstream/runpod-volumes.js';
import type { UpstreamTarget } from '../upstream/target.js';
import { bucketNameProblem, BucketValidationError } from './validate.js';

export type BucketLifecycleErrorCode = Extract<
  S3ErrorCode,
  | 'AccessDenied'
  | 'BadGateway'
  | 'BucketAlreadyOwnedByYou'
  | 'BucketNotEmpty'
  | 'GatewayTimeout'
  | 'InternalError'
  | 'InvalidArgument'
  | 'InvalidBucketName'
  | 'InvalidBucketState'
  | 'InvalidLocationConstraint'
  | 'NoSuchBucket'
  | 'NotImplemented'
  | 'OperationAborted'
  | 'ServiceUnavailable'
  | 'SlowDown'
>;

export interface BucketLifecycleErrorOptions {
  /** A RunPod volume the failure concerns: created but left unregistered, or possibly created. */
  volumeId?: string | null;
  retryAfterSeconds?: number | null;
  cause?: unknown;
}

/**
 * Why a bucket was not created or deleted. An S3Error, so the S3 listener answers it as is (code,
 * status, message, Retry-After); other callers read `code`, `status` and `message`.
 */
export class BucketLifecycleError extends S3Error {
  declare readonly code: BucketLifecycleErrorCode;
  /** A RunPod volume id the operator may need to deal with (register or delete), null when none. */
  readonly volumeId: string | null;
  /** When a retry makes sense after a wait (rate limits, RunPod unreachable), in seconds. */
  readonly retryAfterSeconds: number | null;

  constructor(code: BucketLifecycleErrorCode, message: string, options: BucketLifecycleErrorOptions = {}) {
    const retryAfterSeconds = options.retryAfterSeconds ?? null;
    super(code, message, { cause: options.cause, headers: retryAfterSeconds === null ? {} : { 'retry-after': String(retryAfterSeconds) } });
    this.name = 'BucketLifecycleError';
    this.volumeId = options.volumeId ?? null;
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export interface CreateRunpodBucketInput {
  /** The bucket's name (S3 naming rules). */
  name: string;
  /** RunPod datacenter id (any case); null/undefined/empty = KEYGATE_RUNPOD_DEFAULT_DATACENTER. */
  datacenter?: string | null;
}

export interface BucketLifecycleDeps {
  config: Pick<Config, 'runpodCredentials' | 'runpodEndpoints' | 'runpodVolumeSizeGb' | 'runpodDefaultDatacenter' | 'runpodAllowVolumeDelete'>;
  /** The bucket registry (store.buckets). */
  registry: Pick<BucketRepository, 'get' | 'add' | 'remove' | 'list'>;
  /** RunPod's REST API (RunpodVolumeApi.fromConfig); null without RUNPOD_API_KEY: nothing can be created or deleted. */
  rest: RunpodVolumeRest | null;
  /** Routes a registered bucket, for the listings that check a bucket is empty before it is deleted. */
  resolver: Pick<UpstreamResolver, 'targetOf'>;
  forwarder: Pick<UpstreamForwarder, 'forward'>;
  log?: Logger;
  now?: () => number;
}

/** How long a name stays held after a create whose outcome is unknown. */
export const AMBIGUOUS_HOLD_MS = 10 * 60_000;
/** Names held at once; the oldest hold goes first (each hold follows a failed RunPod call). */
const MAX_HOLDS = 1024;
/** The emptiness listings are one entry long; their answers are small. */
const MAX_LISTING_BYTES = 64 * 1024;

interface Hold {
  until: number;
  datacenter: string;
}

export class BucketLifecycle {
  private readonly config: BucketLifecycleDeps['config'];
  private readonly registry: BucketLifecycleDeps['registry'];
  private readonly rest: RunpodVolumeRest | null;
  private readonly resolver: BucketLifecycleDeps['resolver'];
  private readonly forwarder: BucketLifecycleDeps['forwarder'];
  private readonly log: Logger;
  private readonly now: () => number;
  /** Per bucket name: the end of the latest call queued for it. */
  private readonly queues = new Map<string, Promise<void>>();
  /** Names whose last create ended with an unknown outcome. */
  private readonly holds = new Map<string, Hold>();

  constructor(deps: BucketLifecycleDeps) {
    this.config = deps.config;
    this.registry = deps.registry;
    this.rest = deps.rest;
    this.resolver = deps.resolver;
    this.forwarder = deps.forwarder;
    this.log = deps.log ?? logToStderr;
    this.now = deps.now ?? Date.now;
  }

  /** True when buckets can be created on RunPod (RUNPOD_API_KEY and the RunPod S3 credentials configured). */
  get canCreateOnRunpod(): boolean {
    return this.rest !== null && this.config.runpodCredentials !== null;
  }

  /** True when an empty RunPod bucket may be deleted with its volume (KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1 as well). */
  get canDeleteVolumes(): boolean {
    return this.canCreateOnRunpod && this.config.runpodAllowVolumeDelete;
  }

  /** The datacenters a bucket can be created in (upper case, sorted). */
  get datacenters(): string[] {
    return knownDatacenters(this.config.runpodEndpoints);
  }

  /**
   * Creates a RunPod network volume (KEYGATE_RUNPOD_VOLUME_SIZE_GB) in the datacenter, and
   * registers `name` -> the volume's id there. Returns the registry record.
   */
  async createRunpodBucket(input: CreateRunpodBucketInput): Promise<BucketRecord> {
    const name = typeof input.name === 'string' ? input.name : '';
    if (!this.canCreateOnRunpod) {
      throw new BucketLifecycleError(
        'NotImplemented',
        `This gateway does not create RunPod buckets: the operator can enable it with RUNPOD_API_KEY (RunPod REST API) next to RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY, ` +
          `or create the network volume in the RunPod console and register it with \`keygate buckets add ${name || 'NAME'} --datacenter <DC> --upstream-bucket <volume id>\`.`,
      );
    }
    const problem = bucketNameProblem(name);
    if (problem !== null) {
      throw new BucketLifecycleError('InvalidBucketName', `The bucket name ${problem} Use S3 bucket naming, e.g. "team-data".`);
    }
    const datacenter = this.chooseDatacenter(name, input.datacenter);
    return this.exclusive(name, () => this.create(name, datacenter));
  }

  /**
   * Deletes a registered RunPod bucket's network volume, then unregisters the bucket. Refused unless
   * KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1, the bucket is empty, and no other registered bucket uses
   * the volume.
   */
  async deleteRunpodBucket(name: string): Promise<void> {
    await this.exclusive(name, () => this.delete(name));
  }

  // -------------------------------------------------------------------------------------------
  // Create

  private chooseDatacenter(name: string, requested: string | null | undefined): string {
    const known = this.datacenters;
    if (requested !== undefined && requested !== null && typeof requested !== 'string') {
      throw new BucketLifecycleError('InvalidLocationConstraint', `The datacenter must be a datacenter id such as EU-RO-1; use one of ${known.join(', ')}.`);
    }
    const given = typeof requested === 'string' && requested.trim() !== '' ? normalizeDatacenter(requested) : null;
    if (given === null) {
      if (this.config.runpodDefaultDatacenter !== null) return this.config.runpodDefaultDatacenter;
      throw new BucketLifecycleError(
        'InvalidLocationConstraint',
        `Bucket "${name}" needs a RunPod datacenter: name one as the LocationConstraint (\`aws s3 mb s3://${name} --region EU-RO-1\`, ` +
          `boto3 \`CreateBucketConfiguration={"LocationConstraint": "EU-RO-1"}\`), or the operator sets KEYGATE_RUNPOD_DEFAULT_DATACENTER. ` +
          `Datacenters: ${known.join(', ')}.`,
      );
    }
    if (!known.includes(given)) {
      throw new BucketLifecycleError(
        'InvalidLocationConstraint',
        `"${clip(requested!)}" is not a RunPod datacenter this gateway creates buckets in; use one of ${known.join(', ')}.`,
      );
    }
    return given;
  }

  private async create(name: string, datacenter: string): Promise<BucketRecord> {
    if (this.registry.get(name) !== null) {
      throw new BucketLifecycleError('BucketAlreadyOwnedByYou', `Bucket "${name}" already exists on this gateway.`);
    }
    this.refuseIfHeld(name);
    const rest = this.rest!;
    const sizeGb = this.config.runpodVolumeSizeGb;
    let volume;
    try {
      volume = await rest.createVolume({ name: volumeName(name), sizeGb, datacenter });
    } catch (error) {
      throw this.createFailure(name, datacenter, sizeGb, error);
    }
    const reported = volume.datacenter !== null && isDatacenterId(volume.datacenter) ? volume.datacenter : datacenter;
    if (reported !== datacenter) {
      this.log('warn', 'RunPod created the volume in another datacenter than asked', { bucket: name, volumeId: volume.id, asked: datacenter, reported });
    }
    let record: BucketRecord;
    try {
      record = this.registry.add({ name, datacenter: reported, upstreamBucket: volume.id });
    } catch (error) {
      throw this.registrationFailure(name, reported, volume.id, error);
    }
    this.log('info', 'bucket created on RunPod', { bucket: name, volumeId: volume.id, datacenter: reported, sizeGb });
    return record;
  }

  private refuseIfHeld(name: string): void {
    const hold = this.holds.get(name);
    if (hold === undefined) return;
    if (hold.until <= this.now()) {
      this.holds.delete(name);
      return;
    }
    throw new BucketLifecycleError(
      'OperationAborted',
      `An earlier attempt to create bucket "${name}" ended without a clear answer from RunPod, so a network volume named "${volumeName(name)}" may exist in ${hold.datacenter} already. ` +
        `The operator should check the RunPod console, then register that volume (\`keygate buckets add ${name} --datacenter ${hold.datacenter} --upstream-bucket <volume id>\`) or delete it. ` +
        `Until ${new Date(hold.until).toISOString()} (or a gateway restart) the gateway does not create "${name}" again.`,
    );
  }

  private hold(name: string, datacenter: string): void {
    this.holds.delete(name);
    if (this.holds.size >= MAX_HOLDS) this.holds.delete(this.holds.keys().next().value!);
    this.holds.set(name, { until: this.now() + AMBIGUOUS_HOLD_MS, datacenter });
  }

  private createFailure(name: string, datacenter: string, sizeGb: number, error: unknown): BucketLifecycleError {
    if (!(error instanceof RunpodRestError)) {
      this.hold(name, datacenter);
      this.log('error', 'creating a RunPod volume failed', { bucket: name, datacenter, error: String(error) });
      return new BucketLifecycleError(
        'InternalError',
        `Creating bucket "${name}" failed unexpectedly; a network volume may have been created in ${datacenter}: the operator should check the RunPod console and the gateway's log.`,
        { cause: error },
      );
    }
    const { details } = error;
    this.log(details.mayHaveActed ? 'error' : 'warn', 'creating a RunPod volume failed', {
      bucket: name,
      datacenter,
      sizeGb,
      failure: error.failure,
      reason: error.message,
    });
    const nothing = 'nothing was created';
    const quote = details.runpodMessage === null ? '' : `: "${details.runpodMessage}"`;
    const status = details.status === null ? '' : ` (HTTP ${details.status}${quote})`;
    if (details.mayHaveActed) {
      this.hold(name, datacenter);
      const outcome =
        error.failure === 'bad_response'
          ? `RunPod answered the creation of bucket "${name}"${status} without a volume id the gateway can use, so a network volume named "${volumeName(name)}" was probably created in ${datacenter} but not registered`
          : error.failure === 'timeout'
            ? `RunPod's REST API did not answer in time while creating bucket "${name}", so a network volume named "${volumeName(name)}" may or may not have been created in ${datacenter}`
            : `RunPod's REST API failed${status} while creating bucket "${name}", so a network volume named "${volumeName(name)}" may or may not have been created in ${datacenter}`;
      const next =
        `The operator should check the RunPod console: register such a volume with \`keygate buckets add ${name} --datacenter ${datacenter} --upstream-bucket <volume id>\`, or delete it. ` +
        `The gateway does not create "${name}" again for ${AMBIGUOUS_HOLD_MS / 60_000} minutes.`;
      return new BucketLifecycleError(error.failure === 'timeout' ? 'GatewayTimeout' : 'BadGateway', `${outcome}. ${next}`, { cause: error });
    }
    switch (error.failure) {
      case 'unauthorized':
        return new BucketLifecycleError(
          'AccessDenied',
          `RunPod refused the gateway's RunPod API key${status} when creating bucket "${name}"; ${nothing}. ` +
            'The operator should set RUNPOD_API_KEY to a RunPod API key with read/write access to network volumes (RunPod console, Settings, API Keys) and restart the gateway.',
          { cause: error },
        );
      case 'not_found':
        return new BucketLifecycleError(
          'NotImplemented',
          `RunPod's REST API has no network volumes at ${details.call}${status}; ${nothing}. ` +
            'The operator should set KEYGATE_RUNPOD_REST_URL to https://api.runpod.io/v2 (the default) or https://rest.runpod.io/v1.',
          { cause: error },
        );
      case 'rate_limited': {
        const wait = details.retryAfterSeconds ?? 30;
        return new BucketLifecycleError('SlowDown', `RunPod is limiting the gateway's REST calls; ${nothing}. Retry in ${wait} s.`, {
          retryAfterSeconds: wait,
          cause: error,
        });
      }
      case 'unreachable':
        return new BucketLifecycleError(
          'ServiceUnavailable',
          `The gateway could not reach RunPod's REST API to create bucket "${name}"; ${nothing}. Retry later; if it persists, the operator should check the gateway's network access and KEYGATE_RUNPOD_REST_URL.`,
          { retryAfterSeconds: 30, cause: error },
        );
      default: {
        // A refusal (400, 402, 409, 422…): about the datacenter, or the size, the account, the name.
        const aboutDatacenter = /data\s*-?\s*center/i.test(details.runpodMessage ?? '');
        if (aboutDatacenter) {
          return new BucketLifecycleError(
            'InvalidLocationConstraint',
            `RunPod refused to create a network volume in ${datacenter} for bucket "${name}"${status}; ${nothing}. Try another datacenter (${this.datacenters.join(', ')}).`,
            { cause: error },
          );
        }
        return new BucketLifecycleError(
          'InvalidArgument',
          `RunPod refused to create a ${sizeGb} GB network volume in ${datacenter} for bucket "${name}"${status}; ${nothing}. ` +
            'The operator should check the size (KEYGATE_RUNPOD_VOLUME_SIZE_GB), the datacenter and the RunPod account (balance, limits).',
          { cause: error },
        );
      }
    }
  }

  private registrationFailure(name: string, datacenter: string, volumeId: string, error: unknown): BucketLifecycleError {
    this.log('error', 'RunPod volume created but not registered', { bucket: name, volumeId, datacenter, error: String(error) });
    const cleanUp =
      `The operator should delete RunPod network volume ${volumeId} (in ${datacenter}) in the RunPod console, ` +
      `or register it with \`keygate buckets add <name> --datacenter ${datacenter} --upstream-bucket ${volumeId}\`.`;
    if (error instanceof BucketValidationError && error.problem === 'conflict') {
      return new BucketLifecycleError(
        'BucketAlreadyOwnedByYou',
        `Bucket "${name}" was registered by someone else while its RunPod network volume was being created, so the new volume ${volumeId} serves no bucket. ${cleanUp}`,
        { volumeId, cause: error },
      );
    }
    // Not retried into a second volume: the name is held like after an unknown outcome.
    this.hold(name, datacenter);
    return new BucketLifecycleError(
      'InternalError',
      `RunPod network volume ${volumeId} was created in ${datacenter} for bucket "${name}", but registering the bucket failed. ${cleanUp}`,
      { volumeId, cause: error },
    );
  }

  // -------------------------------------------------------------------------------------------
  // Delete

  private async delete(name: string): Promise<void> {
    const record = this.registry.get(name);
    if (record === null) {
      throw new BucketLifecycleError(
        'NoSuchBucket',
        `Bucket "${name}" is not registered with this gateway; the gateway deletes only registered RunPod buckets (a volume reached by discovery is deleted in the RunPod console).`,
      );
    }
    const target = this.targetOf(record);
    if (target.kind !== 'runpod') {
      throw new BucketLifecycleError('NotImplemented', `Bucket "${name}" is not on RunPod; delete it with its own storage's tools.`);
    }
    const rest = this.rest;
    if (rest === null) {
      throw new BucketLifecycleError(
        'NotImplemented',
        `Deleting RunPod buckets needs RUNPOD_API_KEY on the gateway; to stop serving "${name}" and keep its data, unregister it: \`keygate buckets remove ${name}\`.`,
      );
    }
    if (!this.config.runpodAllowVolumeDelete) {
      throw new BucketLifecycleError(
        'AccessDenied',
        `Deleting bucket "${name}" deletes its RunPod network volume and every file on it, which this gateway does not allow. ` +
          `The operator can allow it for keys with the admin permission by setting KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1 on the gateway and restarting it. ` +
          `To stop serving the bucket and keep its data, unregister it instead: \`keygate buckets remove ${name}\`.`,
      );
    }
    const sharing = this.registry
      .list()
      .filter((other) => other.name !== name && other.upstreamBucket === record.upstreamBucket && this.sameVolume(other, target))
      .map((other) => `"${other.name}"`);
    if (sharing.length > 0) {
      throw new BucketLifecycleError(
        'InvalidBucketState',
        `The RunPod network volume of bucket "${name}" also serves bucket ${sharing.join(', ')}; unregister that first (\`keygate buckets remove …\`), ` +
          `or unregister "${name}" alone and keep the data (\`keygate buckets remove ${name}\`).`,
      );
    }
    await this.assertEmpty(name, target);
    let outcome: 'deleted' | 'not_found';
    try {
      outcome = await rest.deleteVolume(record.upstreamBucket);
    } catch (error) {
      throw this.deleteFailure(name, record.upstreamBucket, error);
    }
    if (outcome === 'not_found') {
      this.log('warn', 'RunPod volume already gone; unregistering its bucket', { bucket: name, volumeId: record.upstreamBucket });
    }
    try {
      this.registry.remove(name);
    } catch (error) {
      this.log('error', 'RunPod volume deleted but its bucket not unregistered', { bucket: name, volumeId: record.upstreamBucket, error: String(error) });
      throw new BucketLifecycleError(
        'InternalError',
        `The RunPod network volume of bucket "${name}" was deleted, but unregistering the bucket failed; the operator should run \`keygate buckets remove ${name}\`.`,
        { volumeId: record.upstreamBucket, cause: error },
      );
    }
    this.log('info', 'bucket deleted on RunPod', { bucket: name, volumeId: record.upstreamBucket, datacenter: target.datacenter });
  }

  private targetOf(record: BucketRecord): UpstreamTarget {
    try {
      return this.resolver.targetOf(record);
    } catch (error) {
      if (error instanceof S3Error) throw new BucketLifecycleError('InvalidBucketState', error.message, { cause: error });
      throw error;
    }
  }

  /** Whether another registered bucket routes to the same RunPod volume. */
  private sameVolume(other: BucketRecord, target: UpstreamTarget): boolean {
    try {
      const theirs = this.resolver.targetOf(other);
      return theirs.kind === 'runpod' && theirs.endpoint.href === target.endpoint.href;
    } catch {
      // A record the gateway cannot route may still name the volume: count it, deleting is the riskier side.
      return true;
    }
  }

  /** BucketNotEmpty unless one listing of objects and one of multipart uploads (one entry each) find nothing. */
  private async assertEmpty(name: string, target: UpstreamTarget): Promise<void> {
    const objects = await this.listOne(name, target, [
      ['list-type', '2'],
      ['max-keys', '1'],
    ]);
    if (/<Contents[\s>]/.test(objects)) {
      throw new BucketLifecycleError(
        'BucketNotEmpty',
        `Bucket "${name}" is not empty; delete its objects first (e.g. \`aws s3 rm s3://${name} --recursive\`), then delete the bucket.`,
      );
    }
    const uploads = await this.listOne(name, target, [
      ['uploads', ''],
      ['max-uploads', '1'],
    ]);
    if (/<Upload[\s>]/.test(uploads)) {
      throw new BucketLifecycleError(
        'BucketNotEmpty',
        `Bucket "${name}" has multipart uploads in progress; abort them first (\`aws s3api list-multipart-uploads --bucket ${name}\`, then \`aws s3api abort-multipart-upload\`), then delete the bucket.`,
      );
    }
  }

  private async listOne(name: string, target: UpstreamTarget, query: Array<[string, string]>): Promise<string> {
    try {
      const response = await this.forwarder.forward({ target, method: 'GET', objectKey: null, bucketLevel: true, query, headers: {}, body: null, retry: true });
      return await readUpstreamBody(response, MAX_LISTING_BYTES);
    } catch (error) {
      const code = error instanceof S3Error ? error.code : 'InternalError';
      this.log('warn', 'could not check that a bucket is empty before deleting it', { bucket: name, error: String(error) });
      const kept: BucketLifecycleErrorCode = code === 'GatewayTimeout' || code === 'SlowDown' || code === 'ServiceUnavailable' ? code : 'BadGateway';
      throw new BucketLifecycleError(kept, `The gateway could not check that bucket "${name}" is empty (${code}); nothing was deleted. Retry later.`, {
        cause: error,
        retryAfterSeconds: kept === 'SlowDown' || kept === 'ServiceUnavailable' ? 30 : null,
      });
    }
  }

  private deleteFailure(name: string, volumeId: string, error: unknown): BucketLifecycleError {
    this.log('error', 'deleting a RunPod volume failed', { bucket: name, volumeId, error: error instanceof Error ? error.message : String(error) });
    if (!(error instanceof RunpodRestError)) {
      return new BucketLifecycleError(
        'InternalError',
        `Deleting bucket "${name}" failed unexpectedly; it is still registered. The operator's log has the details.`,
        {
          cause: error,
        },
      );
    }
    const { details } = error;
    const quote = details.runpodMessage === null ? '' : `: "${details.runpodMessage}"`;
    const status = details.status === null ? '' : ` (HTTP ${details.status}${quote})`;
    const kept = `Bucket "${name}" is still registered.`;
    switch (error.failure) {
      case 'unauthorized':
        return new BucketLifecycleError(
          'AccessDenied',
          `RunPod refused the gateway's RunPod API key${status} when deleting bucket "${name}". ${kept} ` +
            'The operator should set RUNPOD_API_KEY to a RunPod API key with read/write access to network volumes and restart the gateway.',
          { cause: error },
        );
      case 'not_found':
        return new BucketLifecycleError(
          'NotImplemented',
          `RunPod's REST API has no network volumes at ${details.call}${status}. ${kept} ` +
            'The operator should set KEYGATE_RUNPOD_REST_URL to https://api.runpod.io/v2 (the default) or https://rest.runpod.io/v1.',
          { cause: error },
        );
      case 'rejected':
        return new BucketLifecycleError(
          'InvalidBucketState',
          `RunPod refused to delete the network volume of bucket "${name}"${status}, e.g. because a pod or an endpoint still uses it. ${kept} Detach it from everything, then retry.`,
          { cause: error },
        );
      case 'rate_limited': {
        const wait = details.retryAfterSeconds ?? 30;
        return new BucketLifecycleError('SlowDown', `RunPod is limiting the gateway's REST calls. ${kept} Retry in ${wait} s.`, {
          retryAfterSeconds: wait,
          cause: error,
        });
      }
      case 'unreachable':
        return new BucketLifecycleError(
          'ServiceUnavailable',
          `The gateway could not reach RunPod's REST API to delete bucket "${name}". ${kept} Retry later.`,
          {
            retryAfterSeconds: 30,
            cause: error,
          },
        );
      default:
        // Deleting again is safe: a volume already gone is then just unregistered.
        return new BucketLifecycleError(
          error.failure === 'timeout' ? 'GatewayTimeout' : 'BadGateway',
          `RunPod's REST API failed${status} while deleting the network volume of bucket "${name}"; it may or may not be deleted. ${kept} Retry the delete.`,
          { cause: error },
        );
    }
  }

  // -------------------------------------------------------------------------------------------

  /** Runs `work` after every earlier call for the same name has finished (in this process). */
  private async exclusive<T>(name: string, work: () => Promise<T>): Promise<T> {
    const previous = this.queues.get(name) ?? Promise.resolve();
    const result = previous.then(work);
    const done = result.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(name, done);
    try {
      return await result;
    } finally {
      if (this.queues.get(name) === done) this.queues.delete(name);
    }
  }
}

/** The volume's display name in the RunPod console: the bucket's name (dots as hyphens: RunPod's names take letters, digits, `-`, `_` and spaces). */
export function volumeName(bucket: string): string {
  return bucket.replace(/\./g, '-');
}

/** A client's value, short and printable, for a message. */
function clip(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const printable = value.replace(/[\u0000-\u001F\u007F]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 63)}…` : printable;
}
