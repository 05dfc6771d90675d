/**
 * Multipart upload ids bound to their bucket and object key. An upstream may not check that an
 * upload id belongs to the bucket a request names (s3rver accepts parts for any bucket's upload):
 * then a key scoped to bucket B could add parts to, or complete, an upload it learned of in bucket
 * A. So clients never see upstream upload ids: the gateway hands out
 *
 *   <upstream id, base64url>.<HMAC-SHA256(bucket, key, upstream id), 128 bits, base64url>
 *
 * and takes back only ids whose MAC matches the bucket and key of the request. A listing's
 * upload-id-marker (where a listing resumes, no access to anything) is bound to the bucket alone.
 * The MAC key is derived from the master key, so every instance sharing it accepts the same ids;
 * nothing is stored.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from '../errors.js';
import type { S3Operation } from './classify.js';
import { rewriteWithin, textOf, textRewrite, type ElementRewrites } from './xml-rewrite.js';

const MAC_BYTES = 16;

export class UploadIdBinding {
  constructor(private readonly secret: Buffer) {}

  /** The id a client gets for an upstream upload of `key` in `bucket`. */
  seal(bucket: string, key: string, upstreamId: string): string {
    return this.sealFor(`upload\n${bucket.length}:${bucket}\n${Buffer.byteLength(key)}:${key}`, upstreamId);
  }

  /** The upstream id behind a client's id, if it was issued for this bucket and key; null otherwise. */
  open(bucket: string, key: string, sealed: string): string | null {
    return this.openFor(`upload\n${bucket.length}:${bucket}\n${Buffer.byteLength(key)}:${key}`, sealed);
  }

  private sealMarker(bucket: string, upstreamId: string): string {
    return this.sealFor(`marker\n${bucket.length}:${bucket}`, upstreamId);
  }

  private sealFor(context: string, upstreamId: string): string {
    return `${Buffer.from(upstreamId, 'utf8').toString('base64url')}.${this.mac(context, upstreamId).toString('base64url')}`;
  }

  private openFor(context: string, sealed: string): string | null {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(sealed)) return null;
    const dot = sealed.indexOf('.');
    const upstreamId = Buffer.from(sealed.slice(0, dot), 'base64url').toString('utf8');
    const given = Buffer.from(sealed.slice(dot + 1), 'base64url');
    const expected = this.mac(context, upstreamId);
    return given.length === expected.length && timingSafeEqual(given, expected) ? upstreamId : null;
  }

  /**
   * The operation with the upload ids of its query opened for the upstream: `uploadId` for the
   * request's bucket and key, `upload-id-marker` for the bucket. An id issued for another bucket or
   * key is NoSuchUpload, as S3 answers for an id it does not know.
   */
  openInRequest(operation: S3Operation): void {
    operation.query = operation.query.map(([name, value]): [string, string] => {
      if (name === 'uploadId') {
        const opened = this.open(operation.bucket ?? '', operation.key ?? '', value);
        if (opened === null) throw noSuchUpload(value);
        return [name, opened];
      }
      if (name === 'upload-id-marker' && value !== '') {
        const bucket = operation.bucket ?? '';
        const opened = this.openFor(`marker\n${bucket.length}:${bucket}`, value);
        if (opened === null) {
          throw new S3Error('InvalidArgument', 'upload-id-marker must be the NextUploadIdMarker of a previous listing of this bucket.', {
            details: { ArgumentName: 'upload-id-marker', ArgumentValue: value },
          });
        }
        return [name, opened];
      }
      return [name, value];
    });
  }

  /**
   * How an answer naming upload ids is rewritten: each id sealed with the bucket and the key it
   * belongs to — the request's key for answers about one upload (Initiate, ListParts), the entry's
   * own `<Key>` in a listing's `<Upload>` records (whatever order the upstream writes them in).
   * `within` applies inside each record too (the owner rewrite). `urlEncodedKeys`: the listing
   * was asked for with encoding-type=url, so its keys are URL-encoded.
   */
  answerRewrites(bucket: string, requestKey: string | null, urlEncodedKeys: boolean, within: ElementRewrites = {}): ElementRewrites {
    const marker = textRewrite((id) => (id === '' ? id : this.sealMarker(bucket, id)));
    return {
      UploadId: textRewrite((id) => this.seal(bucket, requestKey ?? '', id)),
      UploadIdMarker: marker,
      NextUploadIdMarker: marker,
      Upload: (content) => {
        const listed = textOf(content, 'Key') ?? '';
        const key = urlEncodedKeys ? decodeUrlEncoded(listed) : listed;
        return rewriteWithin(content, { ...within, UploadId: textRewrite((id) => this.seal(bucket, key, id)) });
      },
    };
  }

  private mac(context: string, upstreamId: string): Buffer {
    return createHmac('sha256', this.secret).update(`${context}\n${upstreamId}`).digest().subarray(0, MAC_BYTES);
  }
}

function noSuchUpload(uploadId: string): S3Error {
  return new S3Error(
    'NoSuchUpload',
    'The specified multipart upload does not exist for this bucket and key; the upload ID may be invalid, or the upload may have been aborted or completed.',
    {
      details: { UploadId: uploadId },
    },
  );
}

/** S3's encoding-type=url form: percent-encoding, with "+" for spaces. */
function decodeUrlEncoded(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}
