/**
 * The soak's mixed traffic: keys of several kinds (workspace-wide and per-bucket, different flags)
 * held in a KeyRing that rotates them mid-run, and workers that each own a key prefix in both
 * buckets, remember exactly what they stored there, and check every answer against that model.
 *
 * Because a worker is the only writer of its prefix and runs one request at a time, its model is
 * exact: a GET must return the stored bytes, a listing must list exactly the stored keys, a HEAD
 * the stored length and ETag. A refused request (scope or revocation) must have changed nothing,
 * which later reads and listings of the same prefix check.
 *
 * Most requests go through the cheap aws4 + undici client; a few go through @aws-sdk/client-s3
 * with stream bodies, which sends them aws-chunked with a CRC32 trailer, as current SDKs do.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import type { CreatedKey } from '../helpers/gateway.js';
import type { Expectation, Ledger } from './ledger.js';
import { ClientError, objectPath, xmlKeys, xmlValue, type CallResult, type SignedCall, type SignedClient } from './signed-client.js';

export const BUCKETS = ['soak-a', 'soak-b'] as const;
export type BucketName = (typeof BUCKETS)[number];
type Flag = 'read' | 'write' | 'delete';

export interface RoleSpec {
  name: string;
  /** null: workspace-wide. Per-bucket keys only come as the read-only / read-write presets. */
  bucket: BucketName | null;
  permissions: Flag[];
  /** Rotated (deleted and replaced) during the run; 'steady' never is, so traffic always has a live key. */
  rotates: boolean;
}

export const ROLES: readonly RoleSpec[] = [
  { name: 'workspace-full', bucket: null, permissions: ['read', 'write', 'delete'], rotates: true },
  { name: 'workspace-read', bucket: null, permissions: ['read'], rotates: true },
  { name: 'workspace-read-write', bucket: null, permissions: ['read', 'write'], rotates: true },
  { name: 'a-read-write', bucket: 'soak-a', permissions: ['read', 'write'], rotates: true },
  { name: 'b-read-write', bucket: 'soak-b', permissions: ['read', 'write'], rotates: true },
  { name: 'b-read-only', bucket: 'soak-b', permissions: ['read'], rotates: true },
  { name: 'steady', bucket: null, permissions: ['read', 'write', 'delete'], rotates: false },
];

function allows(role: RoleSpec, bucket: BucketName, flag: Flag): boolean {
  return (role.bucket === null || role.bucket === bucket) && role.permissions.includes(flag);
}

/** The live key of every role, and the keys revoked so far. */
export class KeyRing {
  private readonly live = new Map<string, CreatedKey>();
  readonly revoked: CreatedKey[] = [];

  constructor(initial: Iterable<[role: string, key: CreatedKey]>) {
    for (const [role, key] of initial) this.live.set(role, key);
  }

  key(role: string): CreatedKey {
    const key = this.live.get(role);
    if (!key) throw new Error(`no key for role ${role}`);
    return key;
  }

  replace(role: string, key: CreatedKey): void {
    this.live.set(role, key);
  }

  liveKeys(): CreatedKey[] {
    return [...this.live.values()];
  }
}

const QUIET_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** One SDK client per access key, all on one keep-alive agent. */
export class SdkClients {
  private readonly clients = new Map<string, S3Client>();
  private readonly agent: http.Agent;

  constructor(
    private readonly endpoint: string,
    maxSockets: number,
  ) {
    this.agent = new http.Agent({ keepAlive: true, maxSockets });
  }

  for(key: CreatedKey): S3Client {
    let client = this.clients.get(key.accessKeyId);
    if (!client) {
      client = new S3Client({
        endpoint: this.endpoint,
        region: key.region,
        forcePathStyle: true,
        credentials: { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
        maxAttempts: 1,
        requestHandler: { httpAgent: this.agent, requestTimeout: 60_000 },
        // The SDK logs refused streaming uploads to the console; the ledger already judges every answer.
        logger: QUIET_LOGGER,
      });
      this.clients.set(key.accessKeyId, client);
    }
    return client;
  }

  destroy(): void {
    for (const client of this.clients.values()) client.destroy();
    this.agent.destroy();
  }
}

export interface Traffic {
  client: SignedClient;
  sdk: SdkClients;
  ledger: Ledger;
  keys: KeyRing;
  /** Object bodies are slices of this random buffer, so expected bytes cost no memory per object. */
  content: Buffer;
  /** Which gateway instance `client` and `sdk` talk to, for the ledger (0 when there is only one). */
  instance?: number;
}

/** Random bytes object bodies are cut from; twice the largest body so offsets vary. */
export function makeContent(): Buffer {
  return randomBytes(2 * MAX_BODY_BYTES);
}

const KIB = 1024;
const MAX_BODY_BYTES = 1024 * KIB;
/** Bodies up to this size are sent with their SHA-256 signed; larger ones as UNSIGNED-PAYLOAD. */
const SIGNED_PAYLOAD_MAX_BYTES = 64 * KIB;
/** Objects a worker keeps per bucket: bounds s3rver's disk use at 64 workers x 2 buckets. */
const MAX_OBJECTS_PER_BUCKET = 6;

/** Mostly small objects, some medium, a few up to 1 MiB (mean ~110 KiB). */
function pickBodySize(): number {
  const r = Math.random();
  if (r < 0.6) return randomInt(1 * KIB, 16 * KIB);
  if (r < 0.9) return randomInt(16 * KIB, 256 * KIB);
  return randomInt(256 * KIB, MAX_BODY_BYTES + 1);
}

/** Key names: mostly plain, some with characters that need encoding both ways. */
const NAME_SUFFIXES = ['.bin', '.bin', '.bin', ' with space.txt', '-ünïcødé.dat', '+plus=sign.bin'];

type Segment = readonly [offset: number, length: number];

interface StoredObject {
  /** Slices of `content` whose concatenation is the object. */
  segments: Segment[];
  size: number;
  etag: string | null;
}

type Operation =
  'put' | 'get' | 'rangeGet' | 'head' | 'list' | 'delete' | 'deleteObjects' | 'copy' | 'multipart' | 'sdkPut' | 'sdkGet' | 'denied' | 'revokedProbe';

/** Relative frequency of each operation (a worker draws one per step). */
const OPERATION_WEIGHTS: ReadonlyArray<readonly [Operation, number]> = [
  ['put', 20],
  ['get', 22],
  ['rangeGet', 4],
  ['head', 10],
  ['list', 8],
  ['delete', 9],
  ['deleteObjects', 3],
  ['copy', 3],
  ['multipart', 2],
  ['sdkPut', 3],
  ['sdkGet', 3],
  ['denied', 8],
  ['revokedProbe', 3],
];
const TOTAL_WEIGHT = OPERATION_WEIGHTS.reduce((sum, [, weight]) => sum + weight, 0);

function pickOperation(): Operation {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [operation, weight] of OPERATION_WEIGHTS) {
    if ((r -= weight) < 0) return operation;
  }
  return 'get';
}

function pick<T>(items: readonly T[]): T {
  return items[Math.floor(Math.random() * items.length)]!;
}

function header(result: CallResult, name: string): string | null {
  const value = result.headers[name];
  return typeof value === 'string' ? value : null;
}

function credentialsOf(key: CreatedKey) {
  return { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey, region: key.region };
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function describeCall(call: SignedCall): string {
  const query = call.query ? `?${Object.keys(call.query).join('&')}` : '';
  const copy = call.headers?.['x-amz-copy-source'] ? ` from ${call.headers['x-amz-copy-source']}` : '';
  return `${call.method} ${call.bucket}/${call.key ?? ''}${query}${copy}`;
}

interface Sent {
  result: CallResult;
  key: CreatedKey;
  /** 2xx: it took effect, the model follows it. */
  applied: boolean;
}

export class TrafficWorker {
  private readonly objects: Record<BucketName, Map<string, StoredObject>> = { 'soak-a': new Map(), 'soak-b': new Map() };
  private counter = 0;
  readonly prefix: string;

  constructor(
    id: number,
    private readonly traffic: Traffic,
  ) {
    this.prefix = `w${String(id).padStart(2, '0')}/`;
  }

  async run(until: number): Promise<void> {
    while (performance.now() < until) await this.step(pickOperation());
  }

  /** Lists both of the worker's prefixes with the steady key and compares them with the model. */
  async verifyFinalState(): Promise<void> {
    for (const bucket of BUCKETS) await this.list(bucket, 'steady');
  }

  private step(operation: Operation): Promise<void> {
    const bucket = pick(BUCKETS);
    switch (operation) {
      case 'put':
        return this.put(bucket);
      case 'get':
        return this.get(bucket, false);
      case 'rangeGet':
        return this.get(bucket, true);
      case 'head':
        return this.head(bucket);
      case 'list':
        return this.list(bucket, pick(this.rolesAllowed(bucket, 'read')).name);
      case 'delete':
        return this.delete(bucket);
      case 'deleteObjects':
        return this.deleteObjects(bucket);
      case 'copy':
        return this.copy(bucket, pick(BUCKETS));
      case 'multipart':
        return this.multipart(bucket);
      case 'sdkPut':
        return this.sdkPut(bucket);
      case 'sdkGet':
        return this.sdkGet(bucket);
      case 'denied':
        return this.denied();
      case 'revokedProbe':
        return this.revokedProbe(bucket);
    }
  }

  private rolesAllowed(bucket: BucketName, ...flags: Flag[]): RoleSpec[] {
    return ROLES.filter((role) => flags.every((flag) => allows(role, bucket, flag)));
  }

  private newObjectKey(): string {
    this.counter++;
    return `${this.prefix}obj-${String(this.counter).padStart(6, '0')}${pick(NAME_SUFFIXES)}`;
  }

  private someObject(bucket: BucketName, usable: (key: string) => boolean = () => true): [string, StoredObject] | null {
    const entries = [...this.objects[bucket]].filter(([key]) => usable(key));
    return entries.length === 0 ? null : pick(entries);
  }

  private bytesOf(object: StoredObject): Buffer {
    const { content } = this.traffic;
    if (object.segments.length === 1) {
      const [offset, length] = object.segments[0]!;
      return content.subarray(offset, offset + length);
    }
    return Buffer.concat(object.segments.map(([offset, length]) => content.subarray(offset, offset + length)));
  }

  /** Sends with the role's live key (or a given key) and has the ledger judge the answer; null on a client error. */
  private async send(operation: string, who: string | CreatedKey, expectation: Expectation, call: SignedCall): Promise<Sent | null> {
    const key = typeof who === 'string' ? this.traffic.keys.key(who) : who;
    try {
      const result = await this.traffic.client.send(credentialsOf(key), call);
      const judged = this.traffic.ledger.judge({
        accessKeyId: key.accessKeyId,
        operation,
        expectation,
        status: result.status,
        errorCode: result.errorCode,
        startedAt: result.startedAt,
        endedAt: result.endedAt,
        target: describeCall(call),
        bodiless: call.method === 'HEAD',
        instance: this.traffic.instance,
      });
      return { result, key, applied: judged.applied };
    } catch (error) {
      if (!(error instanceof ClientError)) throw error;
      this.traffic.ledger.clientError(operation, key.accessKeyId, error.message, this.traffic.instance);
      return null;
    }
  }

  private wrongData(operation: string, key: CreatedKey, detail: string): void {
    this.traffic.ledger.wrongData(operation, key.accessKeyId, detail);
  }

  private async put(bucket: BucketName): Promise<void> {
    const objects = this.objects[bucket];
    if (objects.size >= MAX_OBJECTS_PER_BUCKET) return this.delete(bucket);
    const size = pickBodySize();
    const offset = randomInt(0, this.traffic.content.length - size);
    const objectKey = this.newObjectKey();
    const sent = await this.send('PutObject', pick(this.rolesAllowed(bucket, 'write')).name, 'success', {
      method: 'PUT',
      bucket,
      key: objectKey,
      body: this.traffic.content.subarray(offset, offset + size),
      payload: size <= SIGNED_PAYLOAD_MAX_BYTES ? 'signed' : 'unsigned',
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (sent?.applied) objects.set(objectKey, { segments: [[offset, size]], size, etag: header(sent.result, 'etag') });
  }

  private async get(bucket: BucketName, ranged: boolean): Promise<void> {
    const found = this.someObject(bucket);
    if (!found) return this.put(bucket);
    const [objectKey, object] = found;
    const first = ranged ? randomInt(0, object.size) : 0;
    const last = ranged ? Math.min(object.size - 1, first + randomInt(0, 64 * KIB)) : object.size - 1;
    const operation = ranged ? 'GetObject(range)' : 'GetObject';
    const sent = await this.send(operation, pick(this.rolesAllowed(bucket, 'read')).name, 'success', {
      method: 'GET',
      bucket,
      key: objectKey,
      headers: ranged ? { range: `bytes=${first}-${last}` } : {},
    });
    if (!sent?.applied) return;
    const expected = this.bytesOf(object).subarray(first, last + 1);
    if (ranged && sent.result.status !== 206) this.wrongData(operation, sent.key, `${bucket}/${objectKey}: range answered ${sent.result.status}, not 206`);
    else if (!sent.result.body.equals(expected)) {
      this.wrongData(operation, sent.key, `${bucket}/${objectKey}: got ${sent.result.body.length} bytes that differ from the ${expected.length} stored`);
    }
  }

  private async head(bucket: BucketName): Promise<void> {
    const found = this.someObject(bucket);
    if (!found) return this.put(bucket);
    const [objectKey, object] = found;
    const sent = await this.send('HeadObject', pick(this.rolesAllowed(bucket, 'read')).name, 'success', { method: 'HEAD', bucket, key: objectKey });
    if (!sent?.applied) return;
    const length = header(sent.result, 'content-length');
    const etag = header(sent.result, 'etag');
    if (length !== String(object.size) || (object.etag !== null && etag !== object.etag)) {
      this.wrongData('HeadObject', sent.key, `${bucket}/${objectKey}: length ${length} etag ${etag}, stored ${object.size} ${object.etag}`);
    }
  }

  private async list(bucket: BucketName, role: string): Promise<void> {
    const sent = await this.send('ListObjectsV2', role, 'success', { method: 'GET', bucket, query: { 'list-type': '2', prefix: this.prefix } });
    if (!sent?.applied) return;
    const listed = xmlKeys(sent.result.body, 'Contents').sort();
    const stored = [...this.objects[bucket].keys()].sort();
    if (listed.join('\n') !== stored.join('\n')) {
      this.wrongData('ListObjectsV2', sent.key, `${bucket}/${this.prefix}: listed [${listed.join(', ')}], stored [${stored.join(', ')}]`);
    }
  }

  private async delete(bucket: BucketName): Promise<void> {
    const found = this.someObject(bucket);
    // Deleting a key that does not exist is a success in S3 too (204), and exercises that path.
    const objectKey = found?.[0] ?? `${this.prefix}never-stored-${this.counter}.bin`;
    const sent = await this.send('DeleteObject', pick(this.rolesAllowed(bucket, 'delete')).name, 'success', { method: 'DELETE', bucket, key: objectKey });
    if (sent?.applied) this.objects[bucket].delete(objectKey);
  }

  private async deleteObjects(bucket: BucketName): Promise<void> {
    const objects = this.objects[bucket];
    if (objects.size === 0) return this.put(bucket);
    const chosen = [...objects.keys()].sort(() => Math.random() - 0.5).slice(0, 3);
    const xml = `<?xml version="1.0" encoding="UTF-8"?><Delete><Quiet>false</Quiet>${chosen.map((key) => `<Object><Key>${escapeXml(key)}</Key></Object>`).join('')}</Delete>`;
    const body = Buffer.from(xml);
    const sent = await this.send('DeleteObjects', pick(this.rolesAllowed(bucket, 'delete')).name, 'success', {
      method: 'POST',
      bucket,
      query: { delete: '' },
      body,
      payload: 'signed',
      headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') },
    });
    if (!sent?.applied) return;
    const deleted = xmlKeys(sent.result.body, 'Deleted');
    for (const key of deleted) objects.delete(key);
    if (deleted.sort().join('\n') !== [...chosen].sort().join('\n')) {
      this.wrongData(
        'DeleteObjects',
        sent.key,
        `${bucket}: asked to delete [${chosen.join(', ')}], deleted [${deleted.join(', ')}]: ${sent.result.body.toString().slice(0, 500)}`,
      );
    }
  }

  /**
   * s3rver decodes x-amz-copy-source with decodeURI, which leaves reserved characters such as
   * %2B and %3D encoded, so it cannot find sources whose names contain them (S3 can): those are
   * not used as copy sources.
   */
  private async copy(sourceBucket: BucketName, targetBucket: BucketName): Promise<void> {
    const found = this.someObject(sourceBucket, (key) => decodeURI(objectPath(sourceBucket, key)) === `/${sourceBucket}/${key}`);
    if (!found) return this.put(sourceBucket);
    if (this.objects[targetBucket].size >= MAX_OBJECTS_PER_BUCKET) return this.delete(targetBucket);
    const roles = ROLES.filter((role) => allows(role, sourceBucket, 'read') && allows(role, targetBucket, 'write'));
    const [sourceKey, source] = found;
    const targetKey = this.newObjectKey();
    const sent = await this.send('CopyObject', pick(roles).name, 'success', {
      method: 'PUT',
      bucket: targetBucket,
      key: targetKey,
      headers: { 'x-amz-copy-source': objectPath(sourceBucket, sourceKey) },
    });
    if (!sent?.applied) return;
    if (sent.result.body.includes('<Error>')) {
      this.wrongData(
        'CopyObject',
        sent.key,
        `${sourceBucket}/${sourceKey} -> ${targetBucket}/${targetKey}: 200 with an error body ${sent.result.body.toString().slice(0, 300)}`,
      );
      return;
    }
    this.objects[targetBucket].set(targetKey, { ...source, etag: xmlValue(sent.result.body, 'ETag') });
  }

  /**
   * Create, two parts, complete. Each request uses the role's key live at that moment, so a
   * rotation may land mid-upload; a step refused because its key was just revoked ends the
   * attempt and the model stays unchanged. Parts are below S3's 5 MiB
   * minimum to keep the generator cheap; s3rver and the gateway do not enforce it.
   */
  private async multipart(bucket: BucketName): Promise<void> {
    if (this.objects[bucket].size >= MAX_OBJECTS_PER_BUCKET) return this.delete(bucket);
    const role = pick(this.rolesAllowed(bucket, 'write')).name;
    const objectKey = this.newObjectKey();
    const created = await this.send('CreateMultipartUpload', role, 'success', { method: 'POST', bucket, key: objectKey, query: { uploads: '' } });
    if (!created?.applied) return;
    const uploadId = xmlValue(created.result.body, 'UploadId');
    if (!uploadId) return this.wrongData('CreateMultipartUpload', created.key, `no UploadId in ${created.result.body.toString().slice(0, 300)}`);
    const { content } = this.traffic;
    const segments: Segment[] = [];
    const parts: string[] = [];
    for (const length of [randomInt(128 * KIB, 384 * KIB), randomInt(1 * KIB, 64 * KIB)]) {
      const offset = randomInt(0, content.length - length);
      const partNumber = segments.length + 1;
      const sent = await this.send('UploadPart', role, 'success', {
        method: 'PUT',
        bucket,
        key: objectKey,
        query: { partNumber: String(partNumber), uploadId },
        body: content.subarray(offset, offset + length),
        payload: length <= SIGNED_PAYLOAD_MAX_BYTES ? 'signed' : 'unsigned',
      });
      // s3rver has no AbortMultipartUpload (405): an upload cut short by a revocation is left behind.
      if (!sent?.applied) return;
      segments.push([offset, length]);
      parts.push(`<Part><PartNumber>${partNumber}</PartNumber><ETag>${escapeXml(header(sent.result, 'etag') ?? '')}</ETag></Part>`);
    }
    const completed = await this.send('CompleteMultipartUpload', role, 'success', {
      method: 'POST',
      bucket,
      key: objectKey,
      query: { uploadId },
      body: Buffer.from(`<CompleteMultipartUpload>${parts.join('')}</CompleteMultipartUpload>`),
      payload: 'signed',
      headers: { 'content-type': 'application/xml' },
    });
    if (!completed?.applied) return;
    if (completed.result.body.includes('<Error>')) {
      return this.wrongData('CompleteMultipartUpload', completed.key, `200 with an error body ${completed.result.body.toString().slice(0, 300)}`);
    }
    const size = segments.reduce((sum, [, length]) => sum + length, 0);
    this.objects[bucket].set(objectKey, { segments, size, etag: xmlValue(completed.result.body, 'ETag') });
  }

  /** PutObject through the AWS SDK with a stream body: aws-chunked, unsigned payload, CRC32 trailer. */
  private async sdkPut(bucket: BucketName): Promise<void> {
    const objects = this.objects[bucket];
    if (objects.size >= MAX_OBJECTS_PER_BUCKET) return this.delete(bucket);
    const key = this.traffic.keys.key(pick(this.rolesAllowed(bucket, 'write')).name);
    const size = pickBodySize();
    const offset = randomInt(0, this.traffic.content.length - size);
    const objectKey = this.newObjectKey();
    const body = this.traffic.content.subarray(offset, offset + size);
    const outcome = await this.sdkCall('PutObject(sdk, aws-chunked)', `${bucket}/${objectKey}`, key, async (client) => {
      const output = await client.send(new PutObjectCommand({ Bucket: bucket, Key: objectKey, Body: Readable.from([body]), ContentLength: size }));
      return output.ETag ?? null;
    });
    if (outcome?.applied) objects.set(objectKey, { segments: [[offset, size]], size, etag: outcome.value });
  }

  private async sdkGet(bucket: BucketName): Promise<void> {
    const found = this.someObject(bucket);
    if (!found) return this.sdkPut(bucket);
    const [objectKey, object] = found;
    const key = this.traffic.keys.key(pick(this.rolesAllowed(bucket, 'read')).name);
    const outcome = await this.sdkCall('GetObject(sdk)', `${bucket}/${objectKey}`, key, async (client) => {
      const output = await client.send(new GetObjectCommand({ Bucket: bucket, Key: objectKey }));
      return Buffer.from(await output.Body!.transformToByteArray());
    });
    if (outcome?.applied && !outcome.value.equals(this.bytesOf(object))) {
      this.wrongData('GetObject(sdk)', key, `${bucket}/${objectKey}: got ${outcome.value.length} bytes that differ from the ${object.size} stored`);
    }
  }

  private async sdkCall<T>(
    operation: string,
    target: string,
    key: CreatedKey,
    run: (client: S3Client) => Promise<T>,
  ): Promise<{ applied: true; value: T } | { applied: false } | null> {
    const client = this.traffic.sdk.for(key);
    const startedAt = performance.now();
    let status: number;
    let errorCode: string | null = null;
    let value: T | undefined;
    try {
      value = await run(client);
      status = 200;
    } catch (error) {
      const failure = error as { $metadata?: { httpStatusCode?: number }; Code?: string; name?: string; message?: string };
      if (failure.$metadata?.httpStatusCode === undefined) {
        this.traffic.ledger.clientError(operation, key.accessKeyId, `${target}: ${failure.name}: ${failure.message}`, this.traffic.instance);
        return null;
      }
      status = failure.$metadata.httpStatusCode;
      errorCode = failure.Code ?? failure.name ?? null;
    }
    const judged = this.traffic.ledger.judge({
      accessKeyId: key.accessKeyId,
      operation,
      expectation: 'success',
      status,
      errorCode,
      startedAt,
      endedAt: performance.now(),
      target,
      instance: this.traffic.instance,
    });
    return judged.applied && value !== undefined ? { applied: true, value } : { applied: false };
  }

  /** A request the key's scope forbids: must be 403 AccessDenied and change nothing. */
  private async denied(): Promise<void> {
    const target = (bucket: BucketName) => this.someObject(bucket)?.[0] ?? `${this.prefix}absent.bin`;
    const body = this.traffic.content.subarray(0, 1 * KIB);
    const probes: Array<() => Promise<unknown>> = [
      () =>
        this.send('PutObject(read-only key)', 'workspace-read', 'denied', {
          method: 'PUT',
          bucket: pick(BUCKETS),
          key: this.newObjectKey(),
          body,
          payload: 'signed',
        }),
      () => this.send('DeleteObject(no delete flag)', 'workspace-read-write', 'denied', { method: 'DELETE', bucket: 'soak-a', key: target('soak-a') }),
      () => this.send('GetObject(other bucket)', 'a-read-write', 'denied', { method: 'GET', bucket: 'soak-b', key: target('soak-b') }),
      () =>
        this.send('ListObjectsV2(other bucket)', 'a-read-write', 'denied', {
          method: 'GET',
          bucket: 'soak-b',
          query: { 'list-type': '2', prefix: this.prefix },
        }),
      () => this.send('DeleteObject(per-bucket key)', 'b-read-write', 'denied', { method: 'DELETE', bucket: 'soak-b', key: target('soak-b') }),
      () =>
        this.send('PutObject(per-bucket read-only)', 'b-read-only', 'denied', {
          method: 'PUT',
          bucket: 'soak-b',
          key: this.newObjectKey(),
          body,
          payload: 'signed',
        }),
      () =>
        this.send('CopyObject(unreadable source)', 'b-read-write', 'denied', {
          method: 'PUT',
          bucket: 'soak-b',
          key: this.newObjectKey(),
          headers: { 'x-amz-copy-source': objectPath('soak-a', target('soak-a')) },
        }),
      () => {
        const xml = Buffer.from(`<Delete><Object><Key>${escapeXml(target('soak-a'))}</Key></Object></Delete>`);
        return this.send('DeleteObjects(no delete flag)', 'a-read-write', 'denied', {
          method: 'POST',
          bucket: 'soak-a',
          query: { delete: '' },
          body: xml,
          payload: 'signed',
          headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(xml).digest('base64') },
        });
      },
    ];
    await pick(probes)();
  }

  /** A request with a key whose deletion has completed: must be 403 InvalidAccessKeyId (the ledger checks). */
  private async revokedProbe(bucket: BucketName): Promise<void> {
    const revoked = this.traffic.keys.revoked;
    if (revoked.length === 0) return this.get(bucket, false);
    const key = pick(revoked);
    const found = this.someObject(bucket);
    if (found && Math.random() < 0.5) {
      await this.send('GetObject(revoked key)', key, 'success', { method: 'GET', bucket, key: found[0] });
    } else {
      const objectKey = this.newObjectKey();
      const size = 4 * KIB;
      const sent = await this.send('PutObject(revoked key)', key, 'success', {
        method: 'PUT',
        bucket,
        key: objectKey,
        body: this.traffic.content.subarray(0, size),
        payload: 'signed',
      });
      // Only reached if the gateway wrongly accepted it (a recorded violation): keep the model true.
      if (sent?.applied) this.objects[bucket].set(objectKey, { segments: [[0, size]], size, etag: header(sent.result, 'etag') });
    }
  }
}

export interface RotationDeps {
  keys: KeyRing;
  ledger: Ledger;
  createKey(role: RoleSpec, generation: number): Promise<CreatedKey>;
  deleteKey(accessKeyId: string, method: 'admin-api' | 'cli'): Promise<void>;
  /** How long workers keep using the deleted key (as a client with stale credentials would) before getting the new one. */
  lingerMs: number;
  /** Runs right after the deletion completed, before the linger (e.g. one request with the deleted key on every instance). */
  afterDeletion?(revoked: CreatedKey, role: RoleSpec): Promise<void>;
}

/** Deletes a role's live key while traffic uses it, lets clients keep trying it briefly, then hands out a new key. */
export async function rotate(deps: RotationDeps, role: RoleSpec, method: 'admin-api' | 'cli', generation: number): Promise<void> {
  const old = deps.keys.key(role.name);
  deps.ledger.revocationRequested(old.accessKeyId, role.name, method, performance.now());
  await deps.deleteKey(old.accessKeyId, method);
  deps.ledger.revocationCompleted(old.accessKeyId, performance.now());
  deps.keys.revoked.push(old);
  await Promise.all([deps.afterDeletion?.(old, role), new Promise((resolve) => setTimeout(resolve, deps.lingerMs))]);
  deps.keys.replace(role.name, await deps.createKey(role, generation));
}
