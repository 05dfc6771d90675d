/**
 * createPayloadVerifier: a Transform that takes the raw request body and emits the decoded object
 * bytes, after checking everything the request promised about them (x-amz-content-sha256, aws-chunked
 * signatures, trailing and header checksums, Content-MD5, lengths).
 *
 * Hold-back guarantee: the last piece of decoded data is only pushed in _flush, after every check
 * passed. A forwarder that sends Content-Length = decoded length upstream therefore never completes
 * an upstream body that fails verification; on failure the stream errors instead (with an S3Error).
 * An empty body has no final byte to hold back: forwarders should wait for 'end' before sending one.
 *
 * Decoded bytes leave in blocks of at least OUTPUT_BLOCK_BYTES (the last one excepted), however
 * small the pieces they arrive in (tiny aws-chunked chunks, one-byte TCP segments): each push
 * costs an upstream socket write, so the count of pushes must not be the sender's choice.
 */
import { Transform, type TransformCallback } from 'node:stream';
import { S3Error } from '../errors.js';
import { headerValue } from '../header-value.js';
import { checksumAlgorithmOfHeader, createRunningChecksum, decodeDigest, type ChecksumAlgorithm, type RunningChecksum } from './checksums.js';
import { AwsChunkedDecoder, DEFAULT_MAX_CHUNK_SIZE, DEFAULT_MAX_LINE_LENGTH, malformedChunked, type ChunkHeader } from './chunked.js';
import { PieceGatherer } from './piece-gatherer.js';
import { ChunkSignatureChain } from './signature-chain.js';
import type { SignedRequest, VerifiedRequest } from './types.js';

export interface PayloadVerifierOptions {
  /** Largest aws-chunked chunk accepted; default 16 MiB. */
  maxChunkSize?: number;
  /** Longest aws-chunked header/trailer line; default 4 KiB. */
  maxHeaderLine?: number;
  /**
   * 'verify' (default) checks x-amz-checksum-* request headers against the body. Pass 'ignore' for
   * CompleteMultipartUpload (POST ?uploadId=…), whose checksum headers describe the whole object,
   * not the XML body.
   */
  checksumHeaders?: 'verify' | 'ignore';
  /** Adds StringToSign to chunk SignatureDoesNotMatch errors. */
  debug?: boolean;
}

export type ChecksumSource = 'header' | 'trailer';
export type ChecksumListener = (headerName: string, base64Value: string, source: ChecksumSource) => void;

interface ExpectedDigest {
  name: string;
  algorithm: ChecksumAlgorithm | 'md5';
  expected: Buffer;
  source: ChecksumSource | 'content-md5';
}

const MAX_TRAILERS = 16;
/** Decoded bytes are passed on in blocks of at least this size. */
export const OUTPUT_BLOCK_BYTES = 64 * 1024;
/** S3's rule for aws-chunked bodies: every chunk but the last carries at least this many bytes. */
export const MIN_CHUNK_BYTES = 8192;

export class PayloadVerifier extends Transform {
  /**
   * Checksums of the object, header name -> base64 value: x-amz-checksum-* request headers at once,
   * trailing ones when they arrive. All are verified before the last bytes are pushed; the
   * 'checksum' event fires per value once it is verified (before 'end').
   */
  readonly checksums: Record<string, string> = {};

  private readonly running = new Map<ChecksumAlgorithm | 'md5', RunningChecksum>();
  private readonly expectedDigests: ExpectedDigest[] = [];
  private readonly payloadSha256: string | undefined;
  private readonly expectedLength: number | null;
  private readonly lengthHeader: string;
  private readonly declaredTrailers: ReadonlySet<string>;
  private readonly allowsTrailers: boolean;
  private readonly decoder: AwsChunkedDecoder | undefined;
  private readonly chain: ChunkSignatureChain | undefined;
  private readonly trailers = new Map<string, string>();
  private trailerSignature: string | undefined;
  /** Decoded pieces not yet pushed; the newest one is always held back until _flush. */
  private readonly held = new PieceGatherer();
  private decoded = 0;
  /** Size and number of the previous aws-chunked data chunk (only the last may be under MIN_CHUNK_BYTES). */
  private previousChunk: { size: number; index: number } | null = null;
  private chunkCount = 0;

  constructor(verified: VerifiedRequest<unknown>, headers: SignedRequest['headers'], options: PayloadVerifierOptions = {}) {
    super();
    const payload = verified.payload;
    const chunked = payload.kind === 'streaming-signed' || payload.kind === 'streaming-unsigned-trailer';
    this.allowsTrailers = payload.kind === 'streaming-unsigned-trailer' || (payload.kind === 'streaming-signed' && payload.trailer);
    this.declaredTrailers = new Set(verified.trailerHeaders);

    if (chunked) {
      this.expectedLength = verified.decodedContentLength;
      this.lengthHeader = 'x-amz-decoded-content-length';
    } else {
      const contentLength = headerValue(headers, 'content-length');
      this.expectedLength = contentLength !== undefined && /^\d{1,15}$/.test(contentLength) ? Number(contentLength) : null;
      this.lengthHeader = 'Content-Length';
    }
    if (payload.kind === 'signed') {
      this.payloadSha256 = payload.sha256;
      this.runningChecksum('sha256');
    }
    if (payload.kind === 'streaming-signed') {
      this.chain = new ChunkSignatureChain({
        signingKey: verified.signingKey,
        amzDate: verified.amzDate,
        scope: verified.scope,
        seedSignature: verified.seedSignature,
        debug: options.debug,
      });
    }
    if (chunked) {
      this.decoder = new AwsChunkedDecoder(
        {
          chunkStart: (header) => this.onChunkStart(header),
          data: (piece) => {
            this.chain?.update(piece);
            this.accept(piece);
          },
          chunkEnd: () => this.chain?.endChunk(),
          finalChunk: (header) => {
            this.chain?.beginChunk(header.signature);
            this.chain?.endChunk();
          },
          trailer: (name, value) => this.onTrailer(name, value),
          trailerSignature: (signature) => void (this.trailerSignature = signature),
        },
        {
          maxChunkSize: options.maxChunkSize ?? DEFAULT_MAX_CHUNK_SIZE,
          maxLineLength: options.maxHeaderLine ?? DEFAULT_MAX_LINE_LENGTH,
          maxTrailers: MAX_TRAILERS,
          expectTrailers: this.allowsTrailers,
        },
      );
    }

    try {
      this.setUpDeclaredDigests(headers, options.checksumHeaders ?? 'verify');
    } catch (error) {
      // One error channel for the caller: the stream's 'error' event (before any body is read).
      process.nextTick(() => this.destroy(error as Error));
    }
  }

  /** Typed 'checksum' subscription; see `checksums`. */
  onChecksum(listener: ChecksumListener): this {
    return this.on('checksum', listener);
  }

  /** Decoded bytes seen so far (including the held-back piece). */
  get decodedLength(): number {
    return this.decoded;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      if (this.decoder) this.decoder.write(chunk);
      else this.accept(chunk);
      callback();
    } catch (error) {
      callback(error as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    this.finish().then(
      () => {
        if (this.held.size > 0) this.push(this.held.take());
        callback();
      },
      (error: Error) => callback(error),
    );
  }

  private setUpDeclaredDigests(headers: SignedRequest['headers'], checksumHeaders: 'verify' | 'ignore'): void {
    if (this.declaredTrailers.size > 0 && !this.allowsTrailers) {
      throw new S3Error(
        'InvalidRequest',
        'x-amz-trailer is only allowed with STREAMING-UNSIGNED-PAYLOAD-TRAILER or STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER payloads.',
      );
    }
    for (const name of this.declaredTrailers) {
      const algorithm = checksumAlgorithmOfHeader(name);
      if (algorithm === undefined) {
        throw new S3Error(
          'InvalidRequest',
          `Unsupported trailing header "${name}" in x-amz-trailer; only x-amz-checksum-{crc32,crc32c,crc64nvme,sha1,sha256} can be sent as trailers.`,
          {
            details: { ArgumentName: 'x-amz-trailer', ArgumentValue: name },
          },
        );
      }
      this.runningChecksum(algorithm);
    }
    if (checksumHeaders === 'verify') {
      for (const name of Object.keys(headers)) {
        const algorithm = checksumAlgorithmOfHeader(name);
        const value = algorithm && headerValue(headers, name);
        if (algorithm === undefined || value === undefined) continue;
        const expected = decodeDigest(algorithm, value);
        if (expected === undefined) {
          throw new S3Error('InvalidRequest', `Value for ${name} header is invalid: expected the base64 ${algorithm} digest of the body.`);
        }
        this.runningChecksum(algorithm);
        this.expectedDigests.push({ name, algorithm, expected, source: 'header' });
        this.checksums[name] = value;
      }
    }
    const contentMd5 = headerValue(headers, 'content-md5');
    if (contentMd5 !== undefined) {
      const expected = decodeDigest('md5', contentMd5.trim());
      if (expected === undefined)
        throw new S3Error('InvalidDigest', 'The Content-MD5 you specified is not valid: send the base64 of the 16-byte MD5 digest of the body.');
      this.runningChecksum('md5');
      this.expectedDigests.push({ name: 'content-md5', algorithm: 'md5', expected, source: 'content-md5' });
    }
  }

  private runningChecksum(algorithm: ChecksumAlgorithm | 'md5'): void {
    if (!this.running.has(algorithm)) this.running.set(algorithm, createRunningChecksum(algorithm));
  }

  private onChunkStart(header: ChunkHeader): void {
    this.chunkCount++;
    if (this.previousChunk !== null && this.previousChunk.size < MIN_CHUNK_BYTES) {
      throw new S3Error(
        'InvalidChunkSizeError',
        `Only the last chunk is allowed to have a size less than ${MIN_CHUNK_BYTES} bytes; send chunks of at least 8 KiB (64 KiB or more is better).`,
        {
          status: 403,
          details: { Chunk: this.previousChunk.index, BadChunkSize: this.previousChunk.size },
        },
      );
    }
    this.previousChunk = { size: header.size, index: this.chunkCount };
    if (this.expectedLength !== null && this.decoded + header.size > this.expectedLength) {
      throw new S3Error('IncompleteBody', `The aws-chunked body carries more bytes than x-amz-decoded-content-length (${this.expectedLength}).`);
    }
    this.chain?.beginChunk(header.signature);
  }

  private onTrailer(name: string, value: string): void {
    if (!this.allowsTrailers) {
      throw malformedChunked(`trailing header "${name}" sent, but x-amz-content-sha256 does not announce trailers (use a *-TRAILER value).`);
    }
    if (this.trailers.has(name)) throw malformedChunked(`trailing header "${name}" sent twice.`);
    this.trailers.set(name, value);
  }

  /**
   * Takes decoded bytes: hashes them, and once at least a block is held before this piece, pushes
   * that (one write upstream), holding this piece back.
   */
  private accept(piece: Buffer): void {
    if (piece.length === 0) return;
    if (this.expectedLength !== null && this.decoded + piece.length > this.expectedLength) {
      throw new S3Error('IncompleteBody', `The body is longer than its ${this.lengthHeader} (${this.expectedLength}).`);
    }
    for (const checksum of this.running.values()) checksum.update(piece);
    this.decoded += piece.length;
    if (this.held.size >= OUTPUT_BLOCK_BYTES) this.push(this.held.take());
    this.held.add(piece);
  }

  /** Every end-of-body check, in the order a client can best act on. */
  private async finish(): Promise<void> {
    if (this.decoder) {
      this.decoder.end();
      this.checkTrailers();
    }
    if (this.expectedLength !== null && this.decoded !== this.expectedLength) {
      throw new S3Error(
        'IncompleteBody',
        `You did not provide the number of bytes specified by the ${this.lengthHeader} HTTP header: expected ${this.expectedLength}, received ${this.decoded}.`,
      );
    }
    const digests = new Map<string, Buffer>();
    for (const [algorithm, checksum] of this.running) digests.set(algorithm, await checksum.digest());

    if (this.payloadSha256 !== undefined) {
      const computed = digests.get('sha256')!.toString('hex');
      if (computed !== this.payloadSha256) {
        throw new S3Error('XAmzContentSHA256Mismatch', undefined, {
          details: { ClientComputedContentSHA256: this.payloadSha256, S3ComputedContentSHA256: computed },
        });
      }
    }
    for (const digest of this.expectedDigests) {
      const computed = digests.get(digest.algorithm)!;
      if (!computed.equals(digest.expected)) {
        throw digest.source === 'content-md5'
          ? new S3Error('BadDigest', 'The Content-MD5 you specified did not match what we received.', {
              details: { ExpectedDigest: digest.expected.toString('base64'), CalculatedDigest: computed.toString('base64') },
            })
          : new S3Error('BadDigest', `The ${digest.algorithm.toUpperCase()} you specified in ${digest.name} did not match the calculated checksum.`, {
              details: { [`Checksum${digest.algorithm.toUpperCase()}`]: digest.expected.toString('base64'), CalculatedChecksum: computed.toString('base64') },
            });
      }
    }
    for (const digest of this.expectedDigests) {
      if (digest.source !== 'content-md5') this.emit('checksum', digest.name, this.checksums[digest.name], digest.source);
    }
  }

  /** Trailer signature, then declared vs received trailers, then decodes their values. */
  private checkTrailers(): void {
    if (this.chain !== undefined && this.allowsTrailers && (this.trailers.size > 0 || this.trailerSignature !== undefined || this.declaredTrailers.size > 0)) {
      this.chain.verifyTrailer(this.trailers, this.trailerSignature);
    }
    for (const name of this.declaredTrailers) {
      if (!this.trailers.has(name)) {
        throw new S3Error('InvalidRequest', `x-amz-trailer announced ${name}, but the body's trailing headers did not include it.`, {
          details: { ArgumentName: 'x-amz-trailer', ArgumentValue: name },
        });
      }
    }
    for (const [name, value] of this.trailers) {
      const algorithm = this.declaredTrailers.has(name) ? checksumAlgorithmOfHeader(name) : undefined;
      if (algorithm === undefined) {
        throw new S3Error('InvalidRequest', `The body has a trailing header "${name}" that x-amz-trailer did not announce.`, {
          details: { ArgumentName: 'x-amz-trailer', ArgumentValue: name },
        });
      }
      const expected = decodeDigest(algorithm, value);
      if (expected === undefined)
        throw new S3Error('InvalidRequest', `Value for ${name} trailing header is invalid: expected the base64 ${algorithm} digest of the body.`);
      this.expectedDigests.push({ name, algorithm, expected, source: 'trailer' });
      this.checksums[name] = value;
    }
  }
}

export function createPayloadVerifier<K>(verified: VerifiedRequest<K>, headers: SignedRequest['headers'], limits?: PayloadVerifierOptions): PayloadVerifier {
  return new PayloadVerifier(verified, headers, limits);
}
