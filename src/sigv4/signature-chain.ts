/**
 * The aws-chunked signature chain of STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): each chunk is
 * signed over the previous signature (the request's seed signature first) and the chunk's sha256;
 * the trailer block is signed over the final chunk's signature.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { S3Error } from '../errors.js';
import { sha256Hex } from './canonical.js';
import { canonicalTrailers, chunkStringToSign, trailerStringToSign } from './sign.js';
import { hmacSha256 } from './signing-key.js';

const SIGNATURE_HEX = /^[0-9a-f]{64}$/;

export interface ChainContext {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
  /** Adds StringToSign to SignatureDoesNotMatch errors. */
  debug?: boolean;
}

export class ChunkSignatureChain {
  private previous: string;
  private expected: Buffer | undefined;
  private hash: Hash | undefined;
  private chunkNumber = 0;

  constructor(private readonly ctx: ChainContext) {
    this.previous = ctx.seedSignature;
  }

  beginChunk(signature: string | undefined): void {
    this.chunkNumber++;
    if (signature === undefined || signature === '') {
      throw new S3Error(
        'SignatureDoesNotMatch',
        `Chunk ${this.chunkNumber} has no chunk-signature; STREAMING-AWS4-HMAC-SHA256-PAYLOAD requires one on every chunk.`,
      );
    }
    this.expected = SIGNATURE_HEX.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
    this.hash = createHash('sha256');
  }

  update(data: Uint8Array): void {
    this.hash!.update(data);
  }

  /** Checks the current chunk; the chain then continues from its signature. */
  endChunk(): void {
    const stringToSign = chunkStringToSign(this.ctx.amzDate, this.ctx.scope, this.previous, this.hash!.digest('hex'));
    const actual = hmacSha256(this.ctx.signingKey, stringToSign);
    if (!equal(this.expected!, actual)) {
      throw this.mismatch(
        `The signature of chunk ${this.chunkNumber} does not match its data; the body was altered or signed with a different key.`,
        stringToSign,
      );
    }
    this.previous = actual.toString('hex');
    this.hash = undefined;
  }

  /** Checks the trailer signature over the canonical trailer block. */
  verifyTrailer(trailers: Iterable<readonly [string, string]>, signature: string | undefined): void {
    if (signature === undefined) {
      throw new S3Error(
        'SignatureDoesNotMatch',
        'The trailing headers are not signed: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER requires x-amz-trailer-signature.',
      );
    }
    const stringToSign = trailerStringToSign(this.ctx.amzDate, this.ctx.scope, this.previous, sha256Hex(canonicalTrailers(trailers)));
    const actual = hmacSha256(this.ctx.signingKey, stringToSign);
    const provided = SIGNATURE_HEX.test(signature) ? Buffer.from(signature, 'hex') : Buffer.alloc(0);
    if (!equal(provided, actual)) {
      throw this.mismatch('The x-amz-trailer-signature does not match the trailing headers.', stringToSign);
    }
  }

  private mismatch(message: string, stringToSign: string): S3Error {
    return new S3Error('SignatureDoesNotMatch', message, { details: this.ctx.debug ? { StringToSign: stringToSign } : undefined });
  }
}

function equal(provided: Buffer, actual: Buffer): boolean {
  return provided.length === actual.length && timingSafeEqual(provided, actual);
}
