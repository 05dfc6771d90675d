/**
 * SigV4 microbenchmarks: request verification with a warm signing-key cache (the per-request cost
 * of authentication) and payload-verifier throughput. `npx tsx bench/sigv4.ts` prints a markdown
 * table; `runSigv4Bench()` returns the rows for the combined `npm run bench`.
 */
import { Crc64Nvme as SdkCrc64Nvme } from '@aws-sdk/crc64-nvme';
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Crc64Nvme } from '../src/sigv4/crc64nvme.js';
import { createPayloadVerifier } from '../src/sigv4/payload.js';
import { encodeAwsChunked, presignUrl, signRequest } from '../src/sigv4/sign.js';
import { verifyRequest } from '../src/sigv4/verify.js';
import type { PayloadMode, SignedRequest, VerifiedRequest, VerifyOptions } from '../src/sigv4/types.js';

export interface BenchRow {
  name: string;
  /** Main figure, in `unit`. */
  value: number;
  unit: 'µs/op' | 'MB/s';
  /** Secondary figure, e.g. "126k ops/s". */
  detail: string;
  /** `| name | value unit | detail |` */
  markdown: string;
}

const KEY_ID = 'rs_ak_live_0123456789abcdef0123';
const SECRET = 'rs_sk_live_abcdefghijklmnopqrstuvwxyz0123456789ABCD';
const HOST = 'localhost:9000';

function row(name: string, value: number, unit: BenchRow['unit'], detail: string): BenchRow {
  const shown = value >= 100 ? value.toFixed(0) : value.toFixed(2);
  return { name, value, unit, detail, markdown: `| ${name} | ${shown} ${unit} | ${detail} |` };
}

/** Runs fn in batches until `minMs` elapsed; returns the best batch's µs per call. */
export function timePerOp(fn: () => void, minMs = 400): number {
  for (let i = 0; i < 2000; i++) fn(); // warm up JIT and caches
  const batch = 2000;
  let best = Infinity;
  const deadline = performance.now() + minMs;
  do {
    const start = performance.now();
    for (let i = 0; i < batch; i++) fn();
    best = Math.min(best, ((performance.now() - start) * 1000) / batch);
  } while (performance.now() < deadline);
  return best;
}

function headerSignedGet(now: Date, rawPath: string, rawQuery = ''): SignedRequest {
  // What an SDK GetObject carries: the usual headers, some unsigned (user-agent, amz-sdk-*).
  const signed = signRequest({
    method: 'GET',
    rawPath,
    rawQuery,
    headers: {
      host: HOST,
      'x-amz-user-agent': 'aws-sdk-js/3.0',
      'amz-sdk-invocation-id': '4a8b3f9e-2d1c-4f6a-9b8e-7c6d5e4f3a2b',
      'amz-sdk-request': 'attempt=1; max=3',
    },
    accessKeyId: KEY_ID,
    secretAccessKey: SECRET,
    region: 'auto',
    now,
  });
  return { method: 'GET', rawPath, rawQuery, headers: { ...signed, 'user-agent': 'aws-sdk-js/3.0 ua/2.1 os/linux', accept: '*/*', connection: 'keep-alive' } };
}

async function payloadThroughput(name: string, payload: PayloadMode, trailer: string | undefined, signed: boolean): Promise<BenchRow> {
  const size = 16 * 1024 * 1024;
  const data = Buffer.alloc(size, 7);
  const signing = { signingKey: Buffer.alloc(32, 1), amzDate: '20250301T120000Z', scope: '20250301/auto/s3/aws4_request', seedSignature: 'a'.repeat(64) };
  const body = encodeAwsChunked(data, {
    chunkSize: 64 * 1024,
    signing: signed ? signing : undefined,
    trailers: trailer ? { [trailer]: await checksumOf(trailer, data) } : undefined,
  });
  const verified: VerifiedRequest<null> = {
    key: null,
    accessKeyId: KEY_ID,
    authType: 'header',
    payload,
    ...signing,
    region: 'auto',
    decodedContentLength: size,
    trailerHeaders: trailer ? [trailer] : [],
    presignExpiresAt: null,
  };
  let best = Infinity;
  for (let round = 0; round < 4; round++) {
    const verifier = createPayloadVerifier(verified, { 'x-amz-trailer': trailer });
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      verifier.on('data', () => undefined);
      verifier.on('end', resolve);
      verifier.on('error', reject);
      for (let offset = 0; offset < body.length; offset += 65536) verifier.write(body.subarray(offset, offset + 65536));
      verifier.end();
    });
    best = Math.min(best, performance.now() - start);
  }
  const mbPerSecond = size / 1024 / 1024 / (best / 1000);
  return row(name, mbPerSecond, 'MB/s', `16 MiB in 64 KiB chunks, ${best.toFixed(0)} ms`);
}

/** Raw checksum throughput over 16 MiB fed in 64 KiB chunks at an odd byteOffset; best of 8 rounds. */
async function checksumThroughput(name: string, create: () => { update(data: Uint8Array): unknown; digest(): unknown }): Promise<BenchRow> {
  const size = 16 * 1024 * 1024;
  const data = randomBytes(size + 1).subarray(1);
  let best = Infinity;
  for (let round = 0; round < 8; round++) {
    const start = performance.now();
    const checksum = create();
    for (let offset = 0; offset < size; offset += 65536) checksum.update(data.subarray(offset, offset + 65536));
    await checksum.digest();
    best = Math.min(best, performance.now() - start);
  }
  const mbPerSecond = size / 1024 / 1024 / (best / 1000);
  return row(name, mbPerSecond, 'MB/s', `16 MiB in 64 KiB chunks, ${best.toFixed(1)} ms`);
}

async function checksumOf(trailer: string, data: Buffer): Promise<string> {
  const { createRunningChecksum } = await import('../src/sigv4/checksums.js');
  const running = createRunningChecksum(trailer.replace('x-amz-checksum-', '') as 'crc32');
  running.update(data);
  return (await running.digest()).toString('base64');
}

export async function runSigv4Bench(): Promise<BenchRow[]> {
  const now = new Date();
  const options: VerifyOptions<string> = {
    lookup: (id) => (id === KEY_ID ? { secretAccessKey: SECRET, key: 'key' } : undefined),
    regions: ['auto', 'us-east-1'],
    now,
  };
  const rows: BenchRow[] = [];

  const plain = headerSignedGet(now, '/bucket/photos/2025/03/holiday-0042.jpg');
  verifyRequest(plain, options); // fills the signing-key cache
  const plainUs = timePerOp(() => verifyRequest(plain, options));
  rows.push(row('sigv4 header auth verify, warm key cache', plainUs, 'µs/op', `${Math.round(1000 / plainUs)}k ops/s`));

  const listing = headerSignedGet(now, '/bucket', 'list-type=2&prefix=photos%2F2025%2F&delimiter=%2F&max-keys=1000');
  const listingUs = timePerOp(() => verifyRequest(listing, options));
  rows.push(row('sigv4 header auth verify, ListObjectsV2 query', listingUs, 'µs/op', `${Math.round(1000 / listingUs)}k ops/s`));

  const awkward = headerSignedGet(now, '/bucket/a%20b+c%7Ed/%E2%82%AC%F0%9F%98%80/%7e(1)!.txt');
  const awkwardUs = timePerOp(() => verifyRequest(awkward, options));
  rows.push(row('sigv4 header auth verify, non-canonical key encoding', awkwardUs, 'µs/op', `${Math.round(1000 / awkwardUs)}k ops/s`));

  const url = new URL(
    presignUrl({
      method: 'GET',
      url: new URL(`http://${HOST}/bucket/photos/holiday.jpg`),
      accessKeyId: KEY_ID,
      secretAccessKey: SECRET,
      region: 'auto',
      expiresInSeconds: 3600,
      now,
    }),
  );
  const presigned: SignedRequest = { method: 'GET', rawPath: url.pathname, rawQuery: url.search.slice(1), headers: { host: HOST, 'user-agent': 'curl/8' } };
  const presignedUs = timePerOp(() => verifyRequest(presigned, options));
  rows.push(row('sigv4 presigned URL verify', presignedUs, 'µs/op', `${Math.round(1000 / presignedUs)}k ops/s`));

  const wrong: SignedRequest = {
    ...plain,
    headers: { ...plain.headers, authorization: String(plain.headers['authorization']).replace(/Signature=\w/, 'Signature=0') },
  };
  const wrongUs = timePerOp(() => {
    try {
      verifyRequest(wrong, options);
    } catch {
      // SignatureDoesNotMatch expected; this path also tries the alternative canonical forms
    }
  });
  rows.push(row('sigv4 rejected signature (incl. fallback readings)', wrongUs, 'µs/op', `${Math.round(1000 / wrongUs)}k ops/s`));

  rows.push(await payloadThroughput('aws-chunked signed (STREAMING-AWS4-HMAC-SHA256-PAYLOAD)', { kind: 'streaming-signed', trailer: false }, undefined, true));
  rows.push(await payloadThroughput('aws-chunked unsigned, crc32 trailer', { kind: 'streaming-unsigned-trailer' }, 'x-amz-checksum-crc32', false));
  rows.push(await payloadThroughput('aws-chunked unsigned, crc64nvme trailer', { kind: 'streaming-unsigned-trailer' }, 'x-amz-checksum-crc64nvme', false));
  rows.push(await payloadThroughput('aws-chunked unsigned, crc32c trailer', { kind: 'streaming-unsigned-trailer' }, 'x-amz-checksum-crc32c', false));
  rows.push(await checksumThroughput('CRC64NVME alone (src/sigv4/crc64nvme.ts, slice-by-16)', () => new Crc64Nvme()));
  rows.push(await checksumThroughput('CRC64NVME alone (@aws-sdk/crc64-nvme, for comparison)', () => new SdkCrc64Nvme()));
  return rows;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await runSigv4Bench();
  console.log('| benchmark | result | detail |\n|---|---|---|');
  for (const r of rows) console.log(r.markdown);
}
