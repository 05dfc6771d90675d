/** Shared fixtures for the SigV4 tests: AWS example credentials, an independent signer, stream drivers. */
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { expect } from 'vitest';
import { S3Error, type S3ErrorCode } from '../../src/errors.js';
import type { PayloadVerifier } from '../../src/sigv4/payload.js';
import type { KeyLookup, SignedRequest, VerifyOptions } from '../../src/sigv4/types.js';

/** Credentials of AWS's published S3 SigV4 examples. */
export const AWS_EXAMPLE = {
  accessKeyId: 'AKIAIOSFODNN7EXAMPLE',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  region: 'us-east-1',
  amzDate: '20130524T000000Z',
  now: new Date('2013-05-24T00:00:00Z'),
} as const;

export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function lookupFor(keys: Record<string, string>): KeyLookup<string> {
  return (accessKeyId) => (accessKeyId in keys ? { secretAccessKey: keys[accessKeyId]!, key: `key:${accessKeyId}` } : undefined);
}

export const awsExampleOptions: VerifyOptions<string> = {
  lookup: lookupFor({ [AWS_EXAMPLE.accessKeyId]: AWS_EXAMPLE.secretAccessKey }),
  regions: ['us-east-1'],
  now: AWS_EXAMPLE.now,
};

/** Runs fn and returns the S3Error it throws; fails the test for anything else. */
export function s3ErrorOf(fn: () => unknown): S3Error {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(S3Error);
    return error as S3Error;
  }
  throw new Error('expected an S3Error, but nothing was thrown');
}

export function expectS3Error(fn: () => unknown, code: S3ErrorCode, message?: string | RegExp): S3Error {
  const error = s3ErrorOf(fn);
  expect(error.code, `${error.code}: ${error.message}`).toBe(code);
  if (message !== undefined) expect(error.message).toMatch(message);
  return error;
}

/** sha256 / HMAC-SHA256 in the shape @smithy/signature-v4 expects (its "Checksum" constructor). */
export class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key =
      secret === undefined || typeof secret === 'string'
        ? secret
        : ArrayBuffer.isView(secret)
          ? Buffer.from(secret.buffer, secret.byteOffset, secret.byteLength)
          : Buffer.from(secret);
    this.hash = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: Uint8Array | string): void {
    this.hash.update(data);
  }
  async digest(): Promise<Uint8Array> {
    return this.hash.digest();
  }
  reset(): void {
    throw new Error('not needed');
  }
}

/** @smithy/signature-v4 configured the way the AWS SDK configures it for S3. */
export function smithyS3Signer(accessKeyId: string, secretAccessKey: string, region: string, service = 's3'): SignatureV4 {
  return new SignatureV4({
    credentials: { accessKeyId, secretAccessKey },
    region,
    service,
    sha256: NodeSha256,
    uriEscapePath: false,
    applyChecksum: false,
  });
}

/** Splits a URL-ish "path?query" the way the HTTP layer does. */
export function splitTarget(target: string): Pick<SignedRequest, 'rawPath' | 'rawQuery'> {
  const q = target.indexOf('?');
  return q < 0 ? { rawPath: target, rawQuery: '' } : { rawPath: target.slice(0, q), rawQuery: target.slice(q + 1) };
}

/** Lower-cases header names like Node does. */
export function nodeHeaders(headers: Record<string, string | string[]>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = value;
  return out;
}

export interface VerifierRun {
  output: Buffer;
  error: S3Error | undefined;
  /** Checksum events seen, in order. */
  events: [string, string, string][];
}

/** Writes the pieces into the verifier and collects its output until 'end' or 'error'. */
export function runVerifier(verifier: PayloadVerifier, pieces: Iterable<Buffer>): Promise<VerifierRun> {
  const output: Buffer[] = [];
  const events: [string, string, string][] = [];
  verifier.onChecksum((name, value, source) => events.push([name, value, source]));
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error?: unknown) => {
      if (settled) return;
      settled = true;
      if (error !== undefined && !(error instanceof S3Error)) {
        reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        return;
      }
      resolve({ output: Buffer.concat(output), error: error, events });
    };
    verifier.on('data', (piece: Buffer) => output.push(piece));
    verifier.on('error', (error) => settle(error));
    verifier.on('end', () => settle());
    setImmediate(() => {
      for (const piece of pieces) {
        if (verifier.destroyed) return;
        verifier.write(piece);
      }
      if (!verifier.destroyed) verifier.end();
    });
  });
}

/** Cuts a buffer at the given offsets (sorted, deduplicated, clamped). */
export function splitAt(buffer: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.max(0, Math.min(buffer.length, c))))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let start = 0;
  for (const p of points) {
    if (p > start) pieces.push(buffer.subarray(start, p));
    start = Math.max(start, p);
  }
  if (start < buffer.length) pieces.push(buffer.subarray(start));
  return pieces;
}

export function base64Of(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}
