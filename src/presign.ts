/**
 * Presigned URL and presigned POST form issuance for a stored key (`keygate presign`, `POST /v1/presign`). RunPod has no
 * presigned URLs, so the gateway signs them with the key's own secret and verifies them itself.
 * A URL is only issued for something the key may do, so nobody is handed a link that can only fail.
 */
import { authorize } from './authz.js';
import type { Config } from './config.js';
import { isDisabled, isExpired, type AccessKeyWithSecret } from './keys/model.js';
import { parseAddress } from './s3/address.js';
import { dotSegmentOf } from './s3/dot-segments.js';
import { S3Error } from './errors.js';
import { bucketNameProblem } from './buckets/validate.js';
import { classify, describeOperation } from './s3/classify.js';
import { MAX_KEY_BYTES } from './s3/address.js';
import { formatAmzDate } from './sigv4/dates.js';
import { presignUrl } from './sigv4/sign.js';
import { computeSigningKey, hmacSha256 } from './sigv4/signing-key.js';
import { uriEncode } from './sigv4/uri-encoding.js';
import { AWS4_HMAC_SHA256, MAX_PRESIGN_EXPIRES_SECONDS } from './sigv4/types.js';
import type { KeyStore } from './store/store.js';
import { parseExpiresIn } from './keys/validate.js';

export const PRESIGN_METHODS = ['GET', 'PUT', 'HEAD', 'DELETE'] as const;
export const DEFAULT_PRESIGN_SECONDS = 600;

export class PresignError extends Error {
  constructor(
    message: string,
    /** invalid: the request is wrong (usage); denied: the key may not do it (expired, no permission or scope); not_found: no such key. */
    readonly problem: 'invalid' | 'denied' | 'not_found' = 'invalid',
  ) {
    super(message);
    this.name = 'PresignError';
  }
}

export interface PresignInput {
  accessKeyId: string;
  /** `s3://bucket/key` */
  target: string;
  method?: string;
  /** Seconds, or `15m`, `12h`, `7d`; default 10 minutes, at most 7 days. */
  expiresIn?: string | number;
}

export interface PresignedUrl {
  url: string;
  method: string;
  expiresAt: Date;
}

export interface PresignPostInput {
  accessKeyId: string;
  /** `s3://bucket/key-prefix` (or `s3://bucket/` for any key): the form may upload any key under the prefix. */
  target: string;
  /** Largest file the form accepts, in bytes (or `10k`, `25m`, `2g`, binary units); default: the upstream's limit. */
  maxSize?: string | number;
  expiresIn?: string | number;
}

/** A presigned POST form: post `fields`, then the file as the field `file`, to `url` (multipart/form-data). */
export interface PresignedPost {
  url: string;
  fields: Record<string, string>;
  expiresAt: Date;
}

/**
 * Issues a SigV4 POST policy form (S3 "POST Object", for browser uploads) for a stored key. The
 * policy pins the bucket and the key prefix, allows any Content-Type, and caps the size when asked;
 * `fields.key` is `<prefix>${filename}` (the uploaded file's name), which the page may replace with
 * any key under the prefix.
 */
export async function issuePresignedPost(keys: KeyStore, config: Config, input: PresignPostInput, now: Date = new Date()): Promise<PresignedPost> {
  const seconds = presignLifetime(input.expiresIn);
  const maxSize = input.maxSize === undefined ? null : parseByteSize(input.maxSize);
  const match = /^s3:\/\/([^/]+)(?:\/(.*))?$/s.exec(input.target);
  if (!match) throw new PresignError(`"${input.target}" is not a bucket address; use s3://BUCKET/KEY-PREFIX (or s3://BUCKET/ for any key).`);
  const bucket = match[1]!;
  const prefix = match[2] ?? '';
  assertBucketName(bucket, input.target);
  if (Buffer.byteLength(prefix) > MAX_KEY_BYTES) throw new PresignError(`The key prefix is longer than ${MAX_KEY_BYTES} bytes.`);

  const key = await usableKey(keys, input.accessKeyId, now);
  try {
    authorize(key, describeOperation('PostObject', { bucket, key: prefix, query: [] }, {}), now);
  } catch (error) {
    if (error instanceof S3Error) throw new PresignError(`The key ${key.accessKeyId} may not upload to s3://${bucket}/${prefix}: ${error.message}`, 'denied');
    throw error;
  }

  const amzDate = formatAmzDate(now);
  const credential = `${key.accessKeyId}/${amzDate.slice(0, 8)}/${config.region}/s3/aws4_request`;
  const expiresAt = new Date(now.getTime() + seconds * 1000);
  const conditions: unknown[] = [
    { bucket },
    ['starts-with', '$key', prefix],
    ['starts-with', '$Content-Type', ''],
    ...(maxSize === null ? [] : [['content-length-range', 0, maxSize]]),
    { 'x-amz-algorithm': AWS4_HMAC_SHA256 },
    { 'x-amz-credential': credential },
    { 'x-amz-date': amzDate },
  ];
  const policy = Buffer.from(JSON.stringify({ expiration: expiresAt.toISOString(), conditions })).toString('base64');
  const signature = hmacSha256(computeSigningKey(key.secretAccessKey, amzDate.slice(0, 8), config.region, 's3'), policy).toString('hex');
  return {
    url: `${new URL(config.publicUrl).origin}/${bucket}`,
    fields: {
      key: `${prefix}\${filename}`,
      'x-amz-algorithm': AWS4_HMAC_SHA256,
      'x-amz-credential': credential,
      'x-amz-date': amzDate,
      policy,
      'x-amz-signature': signature,
    },
    expiresAt,
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

function parseByteSize(value: string | number): number {
  const match = /^(\d{1,15})\s*([kmg]?)(?:i?b)?$/i.exec(String(value).trim());
  const bytes = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    throw new PresignError(`"${value}" is not a size; give bytes, or e.g. 512k, 25m, 2g.`);
  }
  return bytes;
}

export async function issuePresignedUrl(keys: KeyStore, config: Config, input: PresignInput, now: Date = new Date()): Promise<PresignedUrl> {
  const method = (input.method ?? 'GET').toUpperCase();
  if (!(PRESIGN_METHODS as readonly string[]).includes(method)) {
    throw new PresignError(`Method "${input.method}" cannot be presigned; use one of ${PRESIGN_METHODS.join(', ')}, or POST for a browser upload form.`);
  }
  const seconds = presignLifetime(input.expiresIn);
  const { bucket, key: objectKey } = parseTarget(input.target);

  const key = await usableKey(keys, input.accessKeyId, now);

  const encodedPath = `/${bucket}/${uriEncode(objectKey, true)}`;
  try {
    const operation = classify(method, parseAddress(encodedPath, undefined, null), {});
    // The URL must do what was asked: this object, this method, nothing else.
    if (operation.bucket !== bucket || operation.key !== objectKey || operation.query.length > 0) {
      throw new PresignError(`"${input.target}" does not name one object; use s3://BUCKET/KEY.`);
    }
    authorize(key, operation, now);
  } catch (error) {
    if (error instanceof S3Error) {
      throw new PresignError(`The key ${key.accessKeyId} may not ${method} s3://${bucket}/${objectKey}: ${error.message}`, 'denied');
    }
    throw error;
  }
  const url = presignUrl({
    method,
    url: new URL(`${new URL(config.publicUrl).origin}${encodedPath}`),
    accessKeyId: key.accessKeyId,
    secretAccessKey: key.secretAccessKey,
    region: config.region,
    expiresInSeconds: seconds,
    now,
  });
  return { url, method, expiresAt: new Date(now.getTime() + seconds * 1000) };
}

/** The stored key with its secret; PresignError when it does not exist or has expired. */
async function usableKey(keys: KeyStore, accessKeyId: string, now: Date): Promise<AccessKeyWithSecret> {
  const key = await keys.findWithSecret(accessKeyId);
  if (!key) throw new PresignError(`No access key ${accessKeyId}; see \`keygate keys list\`.`, 'not_found');
  if (isDisabled(key))
    throw new PresignError(`The access key ${key.accessKeyId} is disabled; enable it first (keygate keys enable ${key.accessKeyId}).`, 'denied');
  if (isExpired(key, now)) throw new PresignError(`The access key ${key.accessKeyId} has expired; create a new key.`, 'denied');
  return key;
}

function presignLifetime(value: string | number | undefined): number {
  if (value === undefined) return DEFAULT_PRESIGN_SECONDS;
  let seconds: number;
  try {
    seconds = parseExpiresIn(value);
  } catch (error) {
    throw new PresignError((error as Error).message);
  }
  if (seconds > MAX_PRESIGN_EXPIRES_SECONDS) {
    throw new PresignError(`Presigned URLs live at most 7 days (${MAX_PRESIGN_EXPIRES_SECONDS} s); ask for 7d or less.`);
  }
  return seconds;
}

function parseTarget(target: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/s.exec(target);
  if (!match) throw new PresignError(`"${target}" is not an object address; use s3://BUCKET/KEY.`);
  const [, bucket, key] = match as unknown as [string, string, string];
  assertBucketName(bucket, target);
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new PresignError(`The object key is longer than ${MAX_KEY_BYTES} bytes.`);
  // A URL cannot carry `.`/`..` path segments unchanged: every HTTP client would resolve them.
  if (dotSegmentOf(key) !== null) {
    throw new PresignError('Keys with "." or ".." path segments cannot be presigned: HTTP clients rewrite such URLs.');
  }
  return { bucket, key };
}

/** The bucket part of an s3:// address must be a bucket name (not, say, `bucket?list-type=2`). */
function assertBucketName(bucket: string, target: string): void {
  const problem = bucketNameProblem(bucket);
  if (problem !== null) throw new PresignError(`"${target}" does not start with a bucket name: the bucket name ${problem}`);
}
