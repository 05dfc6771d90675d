/**
 * Re-encodes a decoded object body as `aws-chunked` with one trailing checksum, the way SDKs send
 * STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies:
 *
 *   <hex size>\r\n<size bytes>\r\n   (fixed-size chunks, the last one shorter)
 *   0\r\n<trailer name>:<base64 value>\r\n\r\n
 *
 * The checksum is only known once the client's body ended (it arrives in the client's own
 * trailer), so the upstream must get it as a trailer too. Chunk sizes are fixed and a checksum's
 * base64 length depends only on its algorithm, so the encoded length (the upstream Content-Length)
 * is known before the first byte is sent.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors.js';

/** 64 KiB, as the AWS SDKs use. */
export const UPSTREAM_CHUNK_SIZE = 64 * 1024;

/** Base64 length of each checksum value: ceil(digest bytes / 3) * 4. */
const CHECKSUM_VALUE_LENGTH: Record<string, number> = {
  'x-amz-checksum-crc32': 8,
  'x-amz-checksum-crc32c': 8,
  'x-amz-checksum-crc64nvme': 12,
  'x-amz-checksum-sha1': 28,
  'x-amz-checksum-sha256': 44,
};

/** Null for names that are not a checksum S3 accepts as a trailer. */
export function trailerValueLength(trailerName: string): number | null {
  return CHECKSUM_VALUE_LENGTH[trailerName] ?? null;
}

function chunkFrameLength(size: number): number {
  return size.toString(16).length + 2 + size + 2;
}

/** Exact byte length of the encoded body. */
export function awsChunkedLength(decodedLength: number, chunkSize: number, trailerName: string, valueLength: number): number {
  const fullChunks = Math.floor(decodedLength / chunkSize);
  const remainder = decodedLength % chunkSize;
  const data = fullChunks * chunkFrameLength(chunkSize) + (remainder > 0 ? chunkFrameLength(remainder) : 0);
  return data + '0\r\n'.length + trailerName.length + 1 + valueLength + 2 + 2;
}

export interface TrailerEncoderOptions {
  decodedLength: number;
  chunkSize?: number;
  trailerName: string;
  /** Read when the input ended; the client's trailing checksum is verified by then. */
  trailerValue: () => string | undefined;
}

export class AwsChunkedTrailerEncoder extends Transform {
  readonly encodedLength: number;
  private readonly decodedLength: number;
  private readonly chunkSize: number;
  private readonly trailerName: string;
  private readonly valueLength: number;
  private readonly trailerValue: () => string | undefined;
  private sent = 0;
  private leftInChunk = 0;

  constructor(options: TrailerEncoderOptions) {
    super();
    const valueLength = trailerValueLength(options.trailerName);
    if (valueLength === null) throw new Error(`${options.trailerName} is not a checksum trailer`);
    this.decodedLength = options.decodedLength;
    this.chunkSize = options.chunkSize ?? UPSTREAM_CHUNK_SIZE;
    this.trailerName = options.trailerName;
    this.valueLength = valueLength;
    this.trailerValue = options.trailerValue;
    this.encodedLength = awsChunkedLength(this.decodedLength, this.chunkSize, this.trailerName, valueLength);
  }

  override _transform(input: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    if (this.sent + input.length > this.decodedLength) {
      callback(new S3Error('IncompleteBody', `The request body is longer than its declared ${this.decodedLength} bytes.`));
      return;
    }
    let offset = 0;
    while (offset < input.length) {
      if (this.leftInChunk === 0) {
        this.leftInChunk = Math.min(this.chunkSize, this.decodedLength - this.sent);
        this.push(`${this.leftInChunk.toString(16)}\r\n`);
      }
      const take = Math.min(this.leftInChunk, input.length - offset);
      this.push(input.subarray(offset, offset + take));
      offset += take;
      this.sent += take;
      this.leftInChunk -= take;
      if (this.leftInChunk === 0) this.push('\r\n');
    }
    callback();
  }

  override _flush(callback: TransformCallback): void {
    if (this.sent !== this.decodedLength) {
      callback(new S3Error('IncompleteBody', `The request body ended after ${this.sent} of its declared ${this.decodedLength} bytes.`));
      return;
    }
    const value = this.trailerValue();
    if (value === undefined || value.length !== this.valueLength) {
      // Sending a wrong-length trailer would break the Content-Length promise; fail so nothing is committed.
      callback(new S3Error('InvalidRequest', `The trailing ${this.trailerName} checksum of the request body is missing or malformed.`));
      return;
    }
    callback(null, `0\r\n${this.trailerName}:${value}\r\n\r\n`);
  }
}
