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
 *   the registry and a fresh (uncached) listing of the account's volumes are checked just before
 *   RunPod is asked (a volume already named like the bucket's volume refuses the create, whatever
 *   made it), and a create whose outcome is unknown (a timeout, a RunPod-side failure, an
 *   unreadable answer) holds the name for AMBIGUOUS_HOLD_MS, so an SDK's automatic retry cannot
 *   create a second volume; when too many holds are pending, no create is attempted at all;
 * - a name re-pointed: a name that is a volume id (of the account, or of a registered bucket) is
 *   not created as a new bucket;
 * - a volume nobody knows about: when registering fails after RunPod created the volume, the error
 *   names the volume id for the operator to clean up;
 * - losing data: a delete needs KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1, a bucket that is empty (no
 *   object, no multipart upload in progress: one listing of each, max 1 entry), and a volume no
 *   other registration names. While it runs, the bucket is fenced: writes to it (planned or about
 *   to be forwarded, src/s3/plan.ts and src/s3/handlers.ts) are refused, a write already being
 *   forwarded refuses the delete, and emptiness is checked again behind the fence, right before
 *   RunPod is asked. Unregistering a bucket (`keygate buckets remove`, the admin API) never comes
 *   here and never deletes data.
 *
 * RunPod's own words (its error messages) go to the operator's log only: clients get the
 * gateway's messages, which say what to check.
 */
import type { Config } from '../config.js';
import { S3Error, type S3ErrorCode } from '../errors.js';
import { logToStderr, type Logger } from '../observability/log.js';
import type { BucketRecord, BucketStore } from '../store/store.js';
import { readUpstreamBody, type UpstreamForwarder } from '../upstream/forward.js';
import type { UpstreamResolver } from '../upstream/resolver.js';
import { isDatacenterId, knownDatacenters, normalizeDatacenter } from '../upstream/runpod-datacenters.js';
import { RunpodRestError, type ListedVolumeSummary, type RunpodVolumeRest } from '../upstream/runpod-volumes.js';
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
  registry: Pick<BucketStore, 'get' | 'add' | 'remove' | 'list'>;
  /** RunPod's REST API (RunpodVolumeApi.fromConfig); null without RUNPOD_API_KEY: nothing can be created or deleted. */
  rest: RunpodVolumeRest | null;
  /** Routes a registered bucket, for the listings that check a bucket is empty before it is deleted. */
  resolver: Pick<UpstreamResolver, 'targetOf'>;
  forwarder: Pick<UpstreamForwarder, 'forward'>;
  log?: Logger;
  now?: () => number;
  /** Holds (AMBIGUOUS_HOLD_MS) pending at once before creating pauses; default MAX_HOLDS. */
  maxHolds?: number;
}

/** How long a name stays held after a create whose outcome is unknown. */
export const AMBIGUOUS_HOLD_MS = 10 * 60_000;
/**
 * Holds pending at once (each follows a failed RunPod call). A hold is never dropped before its
 * time: with this many pending, creating pauses (503 SlowDown) until the oldest ends.
 */
export const MAX_HOLDS = 1024;
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
  private readonly maxHolds: number;
  /** Buckets being deleted: name -> its volume id (lower case). Writes to either are refused. */
  private readonly deleting = new Map<string, string>();
  /** Writes being forwarded, per volume id (lower case): see beginWrite. */
  private readonly writes = new Map<string, number>();

  constructor(deps: BucketLifecycleDeps) {
    this.config = deps.config;
    this.registry = deps.registry;
    this.rest = deps.rest;
    this.resolver = deps.resolver;
    this.forwarder = deps.forwarder;
    this.log = deps.log ?? logToStderr;
    this.now = deps.now ?? Date.now;
    this.maxHolds = deps.maxHolds ?? MAX_HOLDS;
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

  /**
   * Whether bucket `name`, or the RunPod volume `volumeId` (however it is addressed: a registered
   * name, or the volume id itself through discovery), is being deleted: writes to it are refused
   * (src/s3/plan.ts, before the body is read).
   */
  isBeingDeleted(name: string, volumeId?: string | null): boolean {
    if (this.deleting.has(name)) return true;
    const volume = (volumeId ?? name).toLowerCase();
    for (const fenced of this.deleting.values()) if (fenced === volume) return true;
    return false;
  }

  /**
   * A write to bucket `name` (volume `volumeId`) about to be forwarded: refused with
   * bucketBeingDeleted() when the bucket is being deleted, else counted until the returned function
   * is called (once it has been answered). A delete that finds writes counted refuses itself
   * (OperationAborted), so a write either lands before the last emptiness check or is refused.
   */
  beginWrite(name: string, volumeId: string): () => void {
    if (this.isBeingDeleted(name, volumeId)) throw bucketBeingDeleted(name);
    const volume = volumeId.toLowerCase();
    this.writes.set(volume, (this.writes.get(volume) ?? 0) + 1);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      const left = (this.writes.get(volume) ?? 1) - 1;
      if (left > 0) this.writes.set(volume, left);
      else this.writes.delete(volume);
    };
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
    if ((await this.registry.get(name)) !== null) {
      throw new BucketLifecycleError('BucketAlreadyOwnedByYou', `Bucket "${name}" already exists on this gateway.`);
    }
    await this.refuseRegisteredVolumeId(name);
    this.refuseIfHeld(name);
    this.refuseIfTooManyHolds();
    const rest = this.rest!;
    // Fresh, right before the POST: a cached listing could miss a volume made minutes ago.
    this.refuseExistingVolume(name, await this.listVolumesBeforeCreate(name, rest));
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
      record = await this.registry.add({ name, datacenter: reported, upstreamBucket: volume.id });
    } catch (error) {
      throw this.registrationFailure(name, reported, volume.id, error);
    }
    this.log('info', 'bucket created on RunPod', { bucket: name, volumeId: volume.id, datacenter: reported, sizeGb });
    return record;
  }

  /** A name that is the volume id of a registered bucket: creating it would re-point that volume's other name. */
  private async refuseRegisteredVolumeId(name: string): Promise<void> {
    const lower = name.toLowerCase();
    const owner = (await this.registry.list()).find((record) => record.upstreamBucket.toLowerCase() === lower);
    if (owner === undefined) return;
    throw new BucketLifecycleError(
      'BucketAlreadyOwnedByYou',
      `"${name}" is the storage of bucket "${owner.name}" on this gateway, so it cannot be created as a new bucket; choose another name.`,
    );
  }

  private async listVolumesBeforeCreate(name: string, rest: RunpodVolumeRest): Promise<ListedVolumeSummary[]> {
    try {
      return await rest.listVolumes();
    } catch (error) {
      const failure = error instanceof RunpodRestError ? error.failure : 'unexpected';
      this.log('warn', 'listing RunPod volumes before creating a bucket failed; nothing was created', {
        bucket: name,
        failure,
        reason: error instanceof Error ? error.message : String(error),
      });
      const check =
        "Nothing was created. Retry later; if it persists, the operator should check the gateway's log " +
        '(RUNPOD_API_KEY needs read/write access to network volumes; KEYGATE_RUNPOD_REST_URL).';
      if (error instanceof RunpodRestError && error.failure === 'rate_limited') {
        const wait = error.details.retryAfterSeconds ?? 30;
        throw new BucketLifecycleError('SlowDown', `RunPod is limiting the gateway's REST calls, so it could not check that "${name}" is free. ${check}`, {
          retryAfterSeconds: wait,
          cause: error,
        });
      }
      throw new BucketLifecycleError(
        'ServiceUnavailable',
        `The gateway could not list the RunPod account's network volumes to check that "${name}" is free. ${check}`,
        { retryAfterSeconds: 30, cause: error },
      );
    }
  }

  /**
   * A volume whose id is the name (a bucket already, through discovery), or one named as this
   * bucket's volume would be (an earlier create whose answer was lost, before a restart too).
   */
  private refuseExistingVolume(name: string, volumes: ListedVolumeSummary[]): void {
    const lower = name.toLowerCase();
    const same = volumes.find((volume) => volume.id.toLowerCase() === lower);
    if (same !== undefined) {
      throw new BucketLifecycleError(
        'BucketAlreadyOwnedByYou',
        `"${name}" is the id of a RunPod network volume of this gateway's account${same.datacenter === null ? '' : ` (in ${same.datacenter})`}, so it cannot be created as a new bucket; choose another name.`,
      );
    }
    const wanted = volumeName(name);
    const named = volumes.find((volume) => volume.name === wanted);
    if (named === undefined) return;
    const where = named.datacenter ?? '<DC>';
    this.log('warn', 'a RunPod volume already has the name of the bucket being created; nothing was created', {
      bucket: name,
      volumeId: named.id,
      volumeName: wanted,
      datacenter: named.datacenter,
    });
    throw new BucketLifecycleError(
      'OperationAborted',
      `A RunPod network volume named "${wanted}" already exists${named.datacenter === null ? '' : ` in ${named.datacenter}`}, perhaps from an earlier attempt to create bucket "${name}" that ended without a clear answer, so the gateway does not create another. ` +
        `The operator should register it (\`keygate buckets add ${name} --datacenter ${where} --upstream-bucket <volume id>\`; the id is in the gateway's log), or delete or rename it in the RunPod console.`,
      { volumeId: named.id },
    );
  }

  /** Creating pauses while maxHolds holds are pending: a hold is never dropped to make room. */
  private refuseIfTooManyHolds(): void {
    const now = this.now();
    for (const [held, hold] of this.holds) if (hold.until <= now) this.holds.delete(held);
    if (this.holds.size < this.maxHolds) return;
    let first = Infinity;
    for (const hold of this.holds.values()) first = Math.min(first, hold.until);
    const wait = Math.max(1, Math.ceil((first - now) / 1000));
    this.log('error', 'creating RunPod buckets paused: too many creates ended without a clear answer', { holds: this.holds.size, retryAfterSeconds: wait });
    throw new BucketLifecycleError(
      'SlowDown',
      `Too many recent attempts to create buckets ended without a clear answer from RunPod, so the gateway creates no bucket for now; nothing was created. ` +
        `Retry in ${wait} s. The operator should check the RunPod console for volumes left over and the gateway's log.`,
      { retryAfterSeconds: wait },
    );
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

  /** Never evicts: refuseIfTooManyHolds keeps the table bounded (creates running at once may add a few more). */
  private hold(name: string, datacenter: string): void {
    this.holds.delete(name);
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
    // RunPod's own message stays in the log (above): it can name account details.
    const status = details.status === null ? '' : ` (HTTP ${details.status})`;
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
            `RunPod refused to create a network volume in ${datacenter} for bucket "${name}"${status}, for a reason about the datacenter; ${nothing}. ` +
              `Try another datacenter (${this.datacenters.join(', ')}); RunPod's reason is in the gateway's log.`,
            { cause: error },
          );
        }
        return new BucketLifecycleError(
          'InvalidArgument',
          `RunPod refused to create a ${sizeGb} GB network volume in ${datacenter} for bucket "${name}"${status}; ${nothing}. ` +
            "The operator should read RunPod's reason in the gateway's log and check the size (KEYGATE_RUNPOD_VOLUME_SIZE_GB), the datacenter and the RunPod account (balance, limits).",
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
    const record = await this.registry.get(name);
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
    // Every other registration naming the volume, whatever its kind or endpoint: deleting is the riskier side.
    const volume = record.upstreamBucket.toLowerCase();
    const sharing = (await this.registry.list())
      .filter((other) => other.name !== name && other.upstreamBucket.toLowerCase() === volume)
      .map((other) => `"${other.name}"`);
    if (sharing.length > 0) {
      throw new BucketLifecycleError(
        'InvalidBucketState',
        `The RunPod network volume of bucket "${name}" also serves bucket ${sharing.join(', ')}; unregister that first (\`keygate buckets remove …\`), ` +
          `or unregister "${name}" alone and keep the data (\`keygate buckets remove ${name}\`).`,
      );
    }
    // First unfenced: a bucket that is not empty is refused without refusing anyone's writes.
    await this.assertEmpty(name, target);
    this.deleting.set(name, volume);
    try {
      const inFlight = this.writes.get(volume) ?? 0;
      if (inFlight > 0) {
        throw new BucketLifecycleError(
          'OperationAborted',
          `Bucket "${name}" has ${inFlight === 1 ? 'a write' : `${inFlight} writes`} in progress, so it was not deleted. Stop writing to it, then delete it again.`,
        );
      }
      // Again behind the fence: a write that got past the gateway's checks before it went up may have landed since.
      await this.assertEmpty(name, target);
      await this.deleteVolumeAndUnregister(name, record.upstreamBucket, target, rest);
    } finally {
      this.deleting.delete(name);
    }
  }

  private async deleteVolumeAndUnregister(name: string, volumeId: string, target: UpstreamTarget, rest: RunpodVolumeRest): Promise<void> {
    let outcome: 'deleted' | 'not_found';
    try {
      outcome = await rest.deleteVolume(volumeId);
    } catch (error) {
      throw this.deleteFailure(name, volumeId, error);
    }
    if (outcome === 'not_found') {
      // Documented (docs/runpod.md): what makes retrying a delete whose answer was lost safe.
      this.log('warn', 'RunPod volume already gone; unregistering its bucket', {
        bucket: name,
        volumeId,
        check: 'if nobody deleted this volume, RUNPOD_API_KEY may belong to another RunPod account than the one holding it',
      });
    }
    try {
      await this.registry.remove(name);
    } catch (error) {
      this.log('error', 'RunPod volume deleted but its bucket not unregistered', { bucket: name, volumeId, error: String(error) });
      throw new BucketLifecycleError(
        'InternalError',
        `The RunPod network volume of bucket "${name}" was deleted, but unregistering the bucket failed; the operator should run \`keygate buckets remove ${name}\`.`,
        { volumeId, cause: error },
      );
    }
    this.log('info', 'bucket deleted on RunPod', { bucket: name, volumeId, datacenter: target.datacenter, alreadyGone: outcome === 'not_found' });
  }

  private targetOf(record: BucketRecord): UpstreamTarget {
    try {
      return this.resolver.targetOf(record);
    } catch (error) {
      if (error instanceof S3Error) throw new BucketLifecycleError('InvalidBucketState', error.message, { cause: error });
      throw error;
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
    // RunPod's own message stays in the log (above): it can name account details.
    const status = details.status === null ? '' : ` (HTTP ${details.status})`;
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
          `RunPod refused to delete the network volume of bucket "${name}"${status}, e.g. because a pod or an endpoint still uses it. ${kept} ` +
            "Detach it from everything, then retry; RunPod's reason is in the gateway's log.",
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

/**
 * The volume's display name in the RunPod console: the bucket's name with dots as underscores
 * (RunPod's names take letters, digits, `-`, `_` and spaces; up to 255 characters). S3 bucket names
 * never contain `_`, so two bucket names never share a volume name (`team.data` -> `team_data`,
 * `team-data` -> `team-data`), and the name stays as long as the bucket's (at most 63).
 */
export function volumeName(bucket: string): string {
  return bucket.replace(/\./g, '_');
}

/** A write refused because its bucket is being deleted (BucketLifecycle.isBeingDeleted). */
export function bucketBeingDeleted(bucket: string): BucketLifecycleError {
  return new BucketLifecycleError(
    'OperationAborted',
    `Bucket "${bucket}" is being deleted, so the gateway refuses writes to it. If it was not meant to be deleted, retry once the delete has ended (if the bucket still exists, it failed).`,
  );
}

/** A client's value, short and printable, for a message. */
function clip(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what is removed
  const printable = value.replace(/[\u0000-\u001F\u007F]/g, '?');
  return printable.length > 64 ? `${printable.slice(0, 63)}…` : printable;
}
