/**
 * createPayloadVerifier: aws-chunked decoding (signed, signed with trailer, unsigned with trailer),
 * checksums, lengths, limits, tolerated framing variants, and the hold-back guarantee: when
 * verification fails the decoded output never reaches the final byte; when it succeeds the output
 * equals the object bytes. Split points and chunk sizes are drawn by fast-check.
 */
import { Crc32c } from '@aws-crypto/crc32c';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { createRunningChecksum, decodeDigest, type ChecksumAlgorithm } from '../../src/sigv4/checksums.js';
import { crc32c } from '../../src/sigv4/crc32c.js';
import { createPayloadVerifier, type PayloadVerifierOptions } from '../../src/sigv4/payload.js';
import { encodeAwsChunked, signChunk } from '../../src/sigv4/sign.js';
import { computeSigningKey } from '../../src/sigv4/signing-key.js';
import type { PayloadMode, SignedRequest, VerifiedRequest } from '../../src/sigv4/types.js';
import { runVerifier, splitAt } from './helpers.js';

const SIGNING = {
  signingKey: computeSigningKey('rs_sk_live_payload_tests', '20250301', 'auto'),
  amzDate: '20250301T120000Z',
  scope: '20250301/auto/s3/aws4_request',
  seedSignature: createHash('sha256').update('seed').digest('hex'),
};

function verifiedFor(payload: PayloadMode, decodedContentLength: number | null, trailerHeaders: string[] = []): VerifiedRequest<string> {
  return {
    key: 'k',
    accessKeyId: 'rs_ak_live_payload',
    authType: 'header',
    payload,
    amzDate: SIGNING.amzDate,
    scope: SIGNING.scope,
    region: 'auto',
    seedSignature: SIGNING.seedSignature,
    signingKey: SIGNING.signingKey,
    decodedContentLength,
    trailerHeaders,
    presignExpiresAt: null,
  };
}

/** Checksums computed with the reference libraries directly (base64 big-endian). */
async function referenceChecksum(algorithm: ChecksumAlgorithm, data: Buffer): Promise<string> {
  switch (algorithm) {
    case 'crc32': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(crc32(data) >>> 0);
      return out.toString('base64');
    }
    case 'crc32c': {
      const out = Buffer.alloc(4);
      out.writeUInt32BE(new Crc32c().update(data).digest() >>> 0);
      return out.toString('base64');
    }
    case 'crc64nvme': {
      const crc = new Crc64Nvme();
      crc.update(data);
      return Buffer.from(await crc.digest()).toString('base64');
    }
    default:
      return createHash(algorithm).update(data).digest('base64');
  }
}

type StreamingKind = 'signed' | 'signed-trailer' | 'unsigned-trailer';

interface Upload {
  verified: VerifiedRequest<string>;
  headers: SignedRequest['headers'];
  body: Buffer;
}

async function upload(
  kind: StreamingKind,
  data: Buffer,
  init: { chunkSize?: number | number[]; algorithm?: ChecksumAlgorithm; trailerValue?: string } = {},
): Promise<Upload> {
  const algorithm = init.algorithm ?? 'crc32';
  const trailerName = `x-amz-checksum-${algorithm}`;
  const withTrailer = kind !== 'signed';
  const payload: PayloadMode = kind === 'unsigned-trailer' ? { kind: 'streaming-unsigned-trailer' } : { kind: 'streaming-signed', trailer: withTrailer };
  const trailers = withTrailer ? { [trailerName]: init.trailerValue ?? (await referenceChecksum(algorithm, data)) } : undefined;
  const body = encodeAwsChunked(data, { chunkSize: init.chunkSize ?? 8192, signing: kind === 'unsigned-trailer' ? undefined : SIGNING, trailers });
  const headers: SignedRequest['headers'] = {
    'content-encoding': 'aws-chunked',
    'x-amz-decoded-content-length': String(data.length),
    ...(withTrailer ? { 'x-amz-trailer': trailerName } : {}),
  };
  return { verified: verifiedFor(payload, data.length, withTrailer ? [trailerName] : []), headers, body };
}

async function run(u: Upload, pieces: Buffer[] = [u.body], options?: PayloadVerifierOptions) {
  const verifier = createPayloadVerifier(u.verified, u.headers, options);
  const result = await runVerifier(verifier, pieces);
  return { ...result, verifier };
}

const KINDS: StreamingKind[] = ['signed', 'signed-trailer', 'unsigned-trailer'];
const ALGORITHMS: ChecksumAlgorithm[] = ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256'];

function randomData(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    out[i] = x >> 16;
  }
  return out;
}

describe('checksum algorithms (known-answer "123456789")', () => {
  it.each([
    ['crc32', 'cbf43926'],
    ['crc32c', 'e3069283'],
    ['crc64nvme', 'ae8b14860a799888'],
    ['sha1', 'f7c3bc1d808e04732adf679965ccc34ca7ae3441'],
    ['sha256', '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225'],
  ] as const)('%s', async (algorithm, hex) => {
    const running = createRunningChecksum(algorithm);
    running.update(Buffer.from('1234'));
    running.update(Buffer.from('56789'));
    expect((await running.digest()).toString('hex')).toBe(hex);
  });

  it('the slice-by-8 CRC-32C equals @aws-crypto/crc32c for any data and any split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fc.nat(), (bytes, cut) => {
        const at = cut % (bytes.length + 1);
        expect(crc32c(bytes.subarray(at), crc32c(bytes.subarray(0, at)))).toBe(new Crc32c().update(bytes).digest() >>> 0);
      }),
      { numRuns: 500 },
    );
  });

  it('decodes only canonical base64 of the right size', () => {
    expect(decodeDigest('crc32', 's3SFCQ==')?.toString('hex')).toBe('b3748509');
    for (const bad of ['s3SFCQ=', 's3SFCQ', 's3SFCQ==AA', 's3SFCR==', 'AAAAAAAA', '****', '']) expect(decodeDigest('crc32', bad), bad).toBeUndefined();
  });
});

describe('aws-chunked round trips', () => {
  it.each(KINDS)('%s: decodes to the original bytes for any chunk sizes and TCP-like splits', async (kind) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 90_000 }),
        // S3's minimum for every chunk but the last: 8 KiB.
        fc.array(fc.integer({ min: 8192, max: 20_000 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.constantFrom(...ALGORITHMS),
        async (length, chunkSizes, cuts, algorithm) => {
          const data = randomData(length, length + 7);
          const u = await upload(kind, data, { chunkSize: chunkSizes, algorithm });
          const result = await run(
            u,
            splitAt(
              u.body,
              cuts.map((c) => c % (u.body.length + 1)),
            ),
          );
          expect(result.error, result.error?.message).toBeUndefined();
          expect(result.output.equals(data)).toBe(true);
          if (kind !== 'signed') expect(result.verifier.checksums).toEqual({ [`x-amz-checksum-${algorithm}`]: await referenceChecksum(algorithm, data) });
        },
      ),
      { numRuns: 40 },
    );
  });

  it('feeds byte by byte', async () => {
    const data = randomData(20_000);
    for (const kind of KINDS) {
      const u = await upload(kind, data, { chunkSize: 8192 });
      const result = await run(
        u,
        [...u.body].map((b) => Buffer.from([b])),
      );
      expect(result.error).toBeUndefined();
      expect(result.output.equals(data)).toBe(true);
    }
  });

  it.each(ALGORITHMS)('unsigned trailer with %s: verified value is exposed and announced before end', async (algorithm) => {
    const data = randomData(20_000, 3);
    const u = await upload('unsigned-trailer', data, { algorithm });
    const result = await run(u);
    expect(result.error).toBeUndefined();
    const expected = await referenceChecksum(algorithm, data);
    expect(result.events).toEqual([[`x-amz-checksum-${algorithm}`, expected, 'trailer']]);
  });

  it('an empty object: only the final chunk and the trailer', async () => {
    for (const kind of KINDS) {
      const u = await upload(kind, Buffer.alloc(0));
      const result = await run(u);
      expect(result.error).toBeUndefined();
      expect(result.output.length).toBe(0);
    }
  });
});

describe('tampering is detected and the final byte is never emitted', () => {
  /** Offsets of the bytes of a given kind in an encoded body. */
  function regions(body: Buffer): { data: number[]; signature: number[]; size: number[]; checksum: number[] } {
    const out = { data: [] as number[], signature: [] as number[], size: [] as number[], checksum: [] as number[] };
    let i = 0;
    for (;;) {
      const eol = body.indexOf('\n', i);
      const line = body.toString('latin1', i, eol).replace(/\r$/, '');
      const sizeText = line.split(';')[0]!;
      for (let k = 0; k < sizeText.length; k++) out.size.push(i + k);
      const sig = line.indexOf('chunk-signature=');
      if (sig >= 0) for (let k = 0; k < 64; k++) out.signature.push(i + sig + 16 + k);
      const size = parseInt(sizeText, 16);
      i = eol + 1;
      if (size === 0) break;
      for (let k = 0; k < size; k++) out.data.push(i + k);
      i += size + 2;
    }
    for (;;) {
      const eol = body.indexOf('\n', i);
      if (eol < 0) break;
      const line = body.toString('latin1', i, eol).replace(/\r$/, '');
      const colon = line.indexOf(':');
      if (colon > 0) {
        const target = line.startsWith('x-amz-trailer-signature') ? out.signature : out.checksum;
        for (let k = colon + 1; k < line.length; k++) target.push(i + k);
      }
      i = eol + 1;
    }
    return out;
  }

  function replaceChar(current: number, alphabet: string, pick: number): number {
    const choices = [...alphabet].filter((c) => c.charCodeAt(0) !== current);
    return choices[pick % choices.length]!.charCodeAt(0);
  }

  it.each(KINDS)('%s: any changed data, size, signature or checksum byte', async (kind) => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 40_000 }),
        fc.integer({ min: 8192, max: 12_000 }),
        fc.constantFrom('data', 'signature', 'size', 'checksum'),
        fc.nat(),
        fc.nat(),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (length, chunkSize, where, position, replacement, cuts) => {
          const data = randomData(length, length);
          const u = await upload(kind, data, { chunkSize, algorithm: 'crc32c' });
          const candidates = regions(u.body)[where as 'data'];
          fc.pre(candidates.length > 0);
          const offset = candidates[position % candidates.length]!;
          const body = Buffer.from(u.body);
          const alphabet =
            where === 'data'
              ? 'abcdefghijklmnopqrstuvwxyz\x00\xff'
              : where === 'checksum'
                ? 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
                : '0123456789abcdef';
          body[offset] = replaceChar(body[offset]!, alphabet, replacement);
          const result = await run(
            { ...u, body },
            splitAt(
              body,
              cuts.map((c) => c % (body.length + 1)),
            ),
          );
          expect(result.error, `tampered ${where} byte at ${offset} was accepted`).toBeDefined();
          expect(result.output.length).toBeLessThan(data.length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it.each(KINDS)('%s: any truncation', async (kind) => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 30_000 }), fc.integer({ min: 8192, max: 10_000 }), fc.nat(), async (length, chunkSize, cut) => {
        const data = randomData(length, 5);
        const u = await upload(kind, data, { chunkSize });
        // Dropping only the closing "\r\n\r\n" is a tolerated variant; anything shorter must fail.
        const end = cut % (u.body.length - 4);
        const result = await run(u, [u.body.subarray(0, end)]);
        expect(result.error, `truncated at ${end}/${u.body.length} was accepted`).toBeDefined();
        expect(result.output.length).toBeLessThan(data.length);
      }),
      { numRuns: 60 },
    );
  });

  it('a truncated body fails with IncompleteBody', async () => {
    const u = await upload('signed', randomData(30_000), { chunkSize: 8192 });
    const result = await run(u, [u.body.subarray(0, 15_000)]);
    expect(result.error?.code).toBe('IncompleteBody');
    expect(result.error?.message).toMatch(/ended inside chunk/);
  });

  it('a signed chunk without chunk-signature fails', async () => {
    const body = Buffer.from(`5\r\nhello\r\n0;chunk-signature=${'0'.repeat(64)}\r\n\r\n`);
    const result = await run({ verified: verifiedFor({ kind: 'streaming-signed', trailer: false }, 5), headers: {}, body });
    expect(result.error?.code).toBe('SignatureDoesNotMatch');
    expect(result.output.length).toBe(0);
  });

  it('reordered chunks break the signature chain', async () => {
    const [a, b] = [Buffer.alloc(8192, 'a'), Buffer.alloc(8192, 'b')];
    const first = signChunk(SIGNING, SIGNING.seedSignature, a);
    const second = signChunk(SIGNING, first, b);
    const final = signChunk(SIGNING, second, Buffer.alloc(0));
    const body = Buffer.concat([
      Buffer.from(`2000;chunk-signature=${second}\r\n`),
      b,
      Buffer.from(`\r\n2000;chunk-signature=${first}\r\n`),
      a,
      Buffer.from(`\r\n0;chunk-signature=${final}\r\n\r\n`),
    ]);
    const result = await run({ verified: verifiedFor({ kind: 'streaming-signed', trailer: false }, 16_384), headers: {}, body });
    expect(result.error?.code).toBe('SignatureDoesNotMatch');
  });
});

describe('limits and malformed framing', () => {
  const unsigned = (decoded: number, trailer = 'x-amz-checksum-crc32') => ({
    verified: verifiedFor({ kind: 'streaming-unsigned-trailer' }, decoded, [trailer]),
    headers: { 'x-amz-trailer': trailer },
  });

  it('rejects a chunk larger than maxChunkSize before reading its data', async () => {
    const big = await run({ ...unsigned(100_000_000), body: Buffer.from('1000001\r\n') });
    expect(big.error?.code).toBe('MaxMessageLengthExceeded');
    expect(big.error?.message).toMatch(/16777216-byte limit/);
    const custom = await upload('unsigned-trailer', randomData(3000), { chunkSize: 2000 });
    expect((await run(custom, [custom.body], { maxChunkSize: 1000 })).error?.code).toBe('MaxMessageLengthExceeded');
    expect((await run({ ...unsigned(1), body: Buffer.from('ffffffffffffffff\r\n') })).error?.code).toBe('MaxMessageLengthExceeded');
  });

  it('caps header and trailer lines', async () => {
    const endless = await run({ ...unsigned(10), body: Buffer.alloc(5000, '1') });
    expect(endless.error?.code).toBe('MaxMessageLengthExceeded');
    const longTrailer = await run({ ...unsigned(0), body: Buffer.from(`0\r\nx-amz-checksum-crc32:${'A'.repeat(5000)}\r\n\r\n`) });
    expect(longTrailer.error?.code).toBe('MaxMessageLengthExceeded');
    const many = await run({ ...unsigned(0), body: Buffer.from('0\r\n' + 'x-amz-checksum-crc32:AAAAAA==\r\n'.repeat(20) + '\r\n') });
    expect(many.error).toBeDefined();
  });

  it.each([
    ['non-hex size', 'zz\r\nhello\r\n0\r\n\r\n'],
    ['data longer than its size', '3\r\nhello\r\n0\r\n\r\n'],
    ['trailer without colon', '5\r\nhello\r\n0\r\nx-amz-checksum-crc32\r\n\r\n'],
    ['data after the end', `5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\nextra`],
    ['negative size', '-5\r\nhello\r\n0\r\n\r\n'],
    ['size with spaces', ' 5\r\nhello\r\n0\r\n\r\n'],
  ])('%s -> InvalidRequest', async (_what, text) => {
    const result = await run({ ...unsigned(5), body: Buffer.from(text) });
    expect(result.error?.code, result.error?.message).toBe('InvalidRequest');
    expect(result.output.length).toBeLessThan(5);
  });

  it('more data than x-amz-decoded-content-length fails as soon as a chunk announces it', async () => {
    const u = await upload('unsigned-trailer', randomData(40_000), { chunkSize: 8192 });
    const lying = { ...u, verified: { ...u.verified, decodedContentLength: 20_000 } };
    const result = await run(lying);
    expect(result.error?.code).toBe('IncompleteBody');
    expect(result.output.length).toBeLessThan(20_000);
  });

  it('less data than x-amz-decoded-content-length -> IncompleteBody', async () => {
    const u = await upload('signed', randomData(40_000), { chunkSize: 8192 });
    const result = await run({ ...u, verified: { ...u.verified, decodedContentLength: 40_001 } });
    expect(result.error?.code).toBe('IncompleteBody');
    expect(result.output.length).toBeLessThan(40_000);
  });
});

describe('tolerated framing variants', () => {
  const data = Buffer.alloc(17_408, 'a');
  const verified = verifiedFor({ kind: 'streaming-unsigned-trailer' }, 17_408, ['x-amz-checksum-crc32']);
  const headers = { 'x-amz-trailer': 'x-amz-checksum-crc32' };
  const chunks = `2000\r\n${'a'.repeat(8192)}\r\n2000\r\n${'a'.repeat(8192)}\r\n400\r\n${'a'.repeat(1024)}\r\n0\r\n`;

  it.each([
    // AWS's STREAMING-UNSIGNED-PAYLOAD-TRAILER example ends its trailer with a bare LF and two CRLFs.
    ['AWS unsigned-trailer example ending', `${chunks}x-amz-checksum-crc32:s3SFCQ==\n\r\n\r\n`],
    ['canonical CRLF', `${chunks}x-amz-checksum-crc32:s3SFCQ==\r\n\r\n`],
    ['bare LF everywhere', `${chunks}x-amz-checksum-crc32:s3SFCQ==\r\n\r\n`.replace(/\r\n/g, '\n')],
    ['no closing blank line', `${chunks}x-amz-checksum-crc32:s3SFCQ==\r\n`],
    ['no line ending at all after the trailer', `${chunks}x-amz-checksum-crc32:s3SFCQ==`],
    ['blank line before the trailers', `${chunks}\r\nx-amz-checksum-crc32:s3SFCQ==\r\n\r\n`],
    ['extra CRLFs after the end', `${chunks}x-amz-checksum-crc32:s3SFCQ==\r\n\r\n\r\n\r\n`],
    ['upper-case hex and trailer name', `${chunks.replace('400\r\n', '400\r\n')}X-Amz-Checksum-CRC32: s3SFCQ== \r\n\r\n`],
    ['unknown chunk extension', `${chunks.replace('400\r\n', '400;foo=bar\r\n')}x-amz-checksum-crc32:s3SFCQ==\r\n\r\n`],
  ])('%s', async (_what, text) => {
    const result = await run({ verified, headers, body: Buffer.from(text) });
    expect(result.error, result.error?.message).toBeUndefined();
    expect(result.output.equals(data)).toBe(true);
  });

  it('a signed body whose final chunk is followed directly by EOF', async () => {
    const u = await upload('signed', randomData(100));
    const result = await run(u, [u.body.subarray(0, u.body.length - 2)]);
    expect(result.error).toBeUndefined();
  });
});

describe('trailer declarations', () => {
  it('a declared trailer that never arrives -> InvalidRequest', async () => {
    const u = await upload('unsigned-trailer', randomData(100));
    const body = Buffer.from(u.body.toString('latin1').replace(/x-amz-checksum-crc32:.*\r\n/, ''), 'latin1');
    const result = await run({ ...u, body });
    expect(result.error?.code).toBe('InvalidRequest');
    expect(result.error?.message).toMatch(/announced x-amz-checksum-crc32/);
    expect(result.output.length).toBeLessThan(100);
  });

  it('a trailer for another algorithm than announced -> InvalidRequest', async () => {
    const data = randomData(100);
    const u = await upload('unsigned-trailer', data, { algorithm: 'crc32c' });
    const result = await run({
      ...u,
      verified: { ...u.verified, trailerHeaders: ['x-amz-checksum-crc32'] },
      headers: { ...u.headers, 'x-amz-trailer': 'x-amz-checksum-crc32' },
    });
    expect(result.error?.code).toBe('InvalidRequest');
  });

  it('x-amz-trailer naming something other than a checksum -> InvalidRequest before any body is read', async () => {
    const verified = verifiedFor({ kind: 'streaming-unsigned-trailer' }, 0, ['x-amz-meta-foo']);
    const result = await run({ verified, headers: {}, body: Buffer.from('0\r\nx-amz-meta-foo:bar\r\n\r\n') });
    expect(result.error?.code).toBe('InvalidRequest');
    expect(result.error?.message).toMatch(/Unsupported trailing header/);
  });

  it('trailers with a payload mode that has none -> InvalidRequest', async () => {
    const noTrailer = await run({ verified: verifiedFor({ kind: 'unsigned' }, null, ['x-amz-checksum-crc32']), headers: {}, body: Buffer.from('x') });
    expect(noTrailer.error?.code).toBe('InvalidRequest');
    const u = await upload('signed', randomData(10));
    const sneaky = Buffer.concat([u.body.subarray(0, u.body.length - 2), Buffer.from('x-amz-checksum-crc32:AAAAAA==\r\n\r\n')]);
    const result = await run({ ...u, body: sneaky });
    expect(result.error?.code).toBe('InvalidRequest');
  });

  it('a malformed trailing checksum value -> InvalidRequest; a wrong one -> BadDigest', async () => {
    const data = randomData(100);
    const malformed = await upload('unsigned-trailer', data, { trailerValue: 'not-base64!' });
    expect((await run(malformed)).error?.code).toBe('InvalidRequest');
    const wrong = await upload('unsigned-trailer', data, { trailerValue: 'AAAAAA==' });
    const result = await run(wrong);
    expect(result.error?.code).toBe('BadDigest');
    expect(result.output.length).toBeLessThan(100);
  });
});

describe('single-part bodies (signed / unsigned payloads)', () => {
  const body = Buffer.from('hello, world');
  const sha256 = createHash('sha256').update(body).digest('hex');
  const md5 = createHash('md5').update(body).digest('base64');

  it('unsigned payload with Content-Length passes through in any split', async () => {
    const verifier = createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { 'content-length': '12' });
    const result = await runVerifier(verifier, [body.subarray(0, 1), body.subarray(1, 2), body.subarray(2)]);
    expect(result.error).toBeUndefined();
    expect(result.output.equals(body)).toBe(true);
  });

  it('a short body -> IncompleteBody; a long one -> IncompleteBody', async () => {
    const short = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { 'content-length': '13' }), [body]);
    expect(short.error?.code).toBe('IncompleteBody');
    expect(short.output.length).toBeLessThan(12);
    const long = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { 'content-length': '5' }), [body]);
    expect(long.error?.code).toBe('IncompleteBody');
  });

  it('signed payload: sha256 match passes, mismatch fails with both digests', async () => {
    const ok = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'signed', sha256 }, null), {}), [body]);
    expect(ok.error).toBeUndefined();
    const bad = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'signed', sha256: 'f'.repeat(64) }, null), {}), [
      body.subarray(0, 6),
      body.subarray(6),
    ]);
    expect(bad.error?.code).toBe('XAmzContentSHA256Mismatch');
    expect(bad.error?.details['S3ComputedContentSHA256']).toBe(sha256);
    expect(bad.output.length).toBeLessThan(12);
  });

  it('Content-MD5: match passes, mismatch -> BadDigest, malformed -> InvalidDigest', async () => {
    const unsigned = verifiedFor({ kind: 'unsigned' }, null);
    expect((await runVerifier(createPayloadVerifier(unsigned, { 'content-md5': md5 }), [body])).error).toBeUndefined();
    const wrong = await runVerifier(createPayloadVerifier(unsigned, { 'content-md5': createHash('md5').update('x').digest('base64') }), [body]);
    expect(wrong.error?.code).toBe('BadDigest');
    expect(wrong.output.length).toBeLessThan(12);
    const malformed = await runVerifier(createPayloadVerifier(unsigned, { 'content-md5': 'abc' }), [body]);
    expect(malformed.error?.code).toBe('InvalidDigest');
    expect(malformed.output.length).toBe(0);
  });

  it.each(ALGORITHMS)('x-amz-checksum-%s header: verified, exposed at once, BadDigest on mismatch', async (algorithm) => {
    const name = `x-amz-checksum-${algorithm}`;
    const value = await referenceChecksum(algorithm, body);
    const verifier = createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { [name]: value });
    expect(verifier.checksums).toEqual({ [name]: value });
    const ok = await runVerifier(verifier, [body]);
    expect(ok.error).toBeUndefined();
    expect(ok.events).toEqual([[name, value, 'header']]);
    const other = await referenceChecksum(algorithm, Buffer.from('other'));
    const bad = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { [name]: other }), [body]);
    expect(bad.error?.code).toBe('BadDigest');
    expect(bad.output.length).toBeLessThan(12);
  });

  it('checksum headers are also verified for aws-chunked bodies, and can be ignored (CompleteMultipartUpload)', async () => {
    const data = randomData(3000);
    const u = await upload('signed', data);
    const wrong = { ...u.headers, 'x-amz-checksum-sha256': await referenceChecksum('sha256', Buffer.from('x')) };
    expect((await run({ ...u, headers: wrong })).error?.code).toBe('BadDigest');
    const ignored = await run({ ...u, headers: wrong }, [u.body], { checksumHeaders: 'ignore' });
    expect(ignored.error).toBeUndefined();
    expect(ignored.verifier.checksums).toEqual({});
  });

  it('a malformed x-amz-checksum header -> InvalidRequest before any body is read', async () => {
    const result = await runVerifier(createPayloadVerifier(verifiedFor({ kind: 'unsigned' }, null), { 'x-amz-checksum-crc32': 'nope' }), [body]);
    expect(result.error?.code).toBe('InvalidRequest');
    expect(result.output.length).toBe(0);
  });
});

describe('chunk sizes and output blocks', () => {
  it('refuses a chunk under 8 KiB that is not the last, naming it (InvalidChunkSizeError, as S3)', async () => {
    for (const kind of KINDS) {
      const u = await upload(kind, randomData(20_000), { chunkSize: [8192, 100, 8192] });
      const result = await run(u);
      expect(result.error?.code, kind).toBe('InvalidChunkSizeError');
      expect(result.error?.status).toBe(403);
      expect(result.error?.details).toMatchObject({ Chunk: 2, BadChunkSize: 100 });
      expect(result.output.length).toBe(0);
    }
  });

  it('refuses one-byte chunks at the second one, before decoding the rest', async () => {
    const u = await upload('unsigned-trailer', randomData(200_000), { chunkSize: 1 });
    const result = await run(u);
    expect(result.error?.code).toBe('InvalidChunkSizeError');
    expect(result.error?.details).toMatchObject({ Chunk: 1, BadChunkSize: 1 });
  });

  it('accepts a last chunk of any size, and a single small chunk', async () => {
    for (const [length, chunkSize] of [
      [8192 + 1, 8192],
      [5, 8192],
      [30_000, 8192],
    ] as const) {
      const data = randomData(length);
      const result = await run(await upload('signed', data, { chunkSize }));
      expect(result.error, `${length}/${chunkSize}`).toBeUndefined();
      expect(result.output.equals(data)).toBe(true);
    }
  });

  it('passes decoded bytes on in blocks of at least 64 KiB however small the pieces arrive', async () => {
    const data = randomData(300_000);
    const u = await upload('unsigned-trailer', data, { chunkSize: 8192 });
    const verifier = createPayloadVerifier(u.verified, u.headers);
    const pushed: number[] = [];
    verifier.on('data', (chunk: Buffer) => pushed.push(chunk.length));
    const done = new Promise((resolve, reject) => {
      verifier.on('end', resolve);
      verifier.on('error', reject);
    });
    // 100-byte TCP pieces.
    for (let at = 0; at < u.body.length; at += 100) verifier.write(u.body.subarray(at, at + 100));
    verifier.end();
    await done;
    expect(pushed.reduce((a, b) => a + b, 0)).toBe(data.length);
    for (const size of pushed.slice(0, -1)) expect(size).toBeGreaterThanOrEqual(64 * 1024);
    expect(pushed.length).toBeLessThanOrEqual(Math.ceil(data.length / (64 * 1024)) + 1);
  });
});
