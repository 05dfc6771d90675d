/**
 * Memory stays bounded over the benchmark's whole sequence, as the gateway ships (access log on
 * stdout): small requests first (HEAD and GET of 1 KiB objects, 32 at a time, presigned), then a
 * 1 GiB object up and down. The bound is checked on the kernel's own peak (VmHWM, the highest RSS
 * since the process started, so no sample can miss it): under 150 MB. The large body is generated
 * and checked on the fly here too. And the bytes do not drive V8 into full GCs: with the capped
 * heap and V8's own growing factor (no src/heap-tuning.ts) the gateway ran a mark-compact every
 * ~15–25 MB carried. Counted from `--trace-gc` lines (exact; prom-client's GC histogram records
 * one GC per observer batch).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { runClosedLoop } from '../../bench/load.js';
import { memoryOf } from '../../bench/processes.js';
import { presignUrl } from '../../src/sigv4/sign.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';
import { startS3rver } from '../helpers/upstreams.js';

const SIZE = 1024 * 1024 * 1024;
const BLOCK = Buffer.alloc(1024 * 1024, 'keygate-');
/** The goal of docs/benchmarks.md, in the same units (10^6 bytes). */
const RSS_LIMIT = 150 * 1e6;
/** Full GCs allowed while 2 GiB pass through (tuned: 0-1; factor 1.3 as without the tuning: ~100; factor 3: ~40). */
const MAJOR_GC_LIMIT = 10;
const SMALL_OBJECTS = Array.from({ length: 64 }, (_, i) => `small/object-${i}.bin`);
const SMALL_OBJECT_BYTES = 1024;
const SMALL_PHASE_MS = 6_000;

let upstream: Awaited<ReturnType<typeof startS3rver>>;
let gateway: Gateway;
let key: CreatedKey;

beforeAll(async () => {
  upstream = await startS3rver();
  await upstream.createBucket('big-bucket');
  gateway = await startGateway(upstreamEnv(upstream), { nodeArgs: ['--trace-gc', '--trace-gc-ignore-scavenger'] });
  key = await gateway.createKey({ name: 'big', permissions: ['read', 'write'] });
});

/** Path and query of a presigned gateway URL (made once, like the benchmark's). */
function presignedPath(method: string, path: string): string {
  const url = new URL(
    presignUrl({
      method,
      url: new URL(`${gateway.url}${path}`),
      accessKeyId: key.accessKeyId,
      secretAccessKey: key.secretAccessKey,
      region: 'us-east-1',
      expiresInSeconds: 3600,
    }),
  );
  return url.pathname + url.search;
}

afterAll(async () => {
  await gateway?.stop();
  await upstream?.stop();
});

function body(): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= SIZE) return void this.push(null);
      sent += BLOCK.length;
      this.push(BLOCK);
    },
  });
}

/** Mark-compacts the gateway has run so far (its `--trace-gc` lines on stdout). */
function majorGcCount(): number {
  return gateway.output().match(/: Mark-Compact /g)?.length ?? 0;
}

it('keeps the gateway under 150 MB peak RSS through small requests and then 1 GiB up and down, without full GCs', async () => {
  for (const object of SMALL_OBJECTS) {
    const response = await fetch(`${gateway.url}${presignedPath('PUT', `/big-bucket/${object}`)}`, {
      method: 'PUT',
      body: Buffer.alloc(SMALL_OBJECT_BYTES, 'x'),
    });
    expect(response.status).toBe(200);
  }
  for (const method of ['HEAD', 'GET'] as const) {
    const result = await runClosedLoop({
      origin: gateway.url,
      method,
      paths: SMALL_OBJECTS.map((object) => presignedPath(method, `/big-bucket/${object}`)),
      concurrency: 32,
      durationMs: SMALL_PHASE_MS / 2,
      warmupMs: 0,
      expectedBytes: SMALL_OBJECT_BYTES,
    });
    expect(result.errors, result.firstError ?? '').toBe(0);
    expect(result.requests).toBeGreaterThan(100);
  }
  const afterSmall = memoryOf(gateway.pid).peakRss;
  expect(afterSmall, `peak RSS after the small requests ${(afterSmall / 1e6).toFixed(1)} MB`).toBeLessThan(RSS_LIMIT);

  const majorGcsBefore = majorGcCount();
  let peak = 0;
  const sampler = setInterval(() => (peak = Math.max(peak, gateway.rss())), 50);
  try {
    const url = new URL(gateway.url);
    const path = '/big-bucket/one-gib.bin';
    // Streamed, so signed UNSIGNED-PAYLOAD with the length given as a header (no body handed to the signer).
    const putHeaders = signedHeaders(key, url.host, 'PUT', path, { headers: { 'content-length': String(SIZE) } });
    const putStatus = await new Promise<number>((resolve, reject) => {
      const request = http.request({ host: url.hostname, port: url.port, method: 'PUT', path, headers: putHeaders }, (response) => {
        response.resume();
        response.on('end', () => resolve(response.statusCode ?? 0));
      });
      request.on('error', reject);
      body().pipe(request);
    });
    expect(putStatus).toBe(200);

    const expected = createHash('md5');
    for await (const chunk of body()) expected.update(chunk as Buffer);
    const getHeaders = signedHeaders(key, url.host, 'GET', path);
    const { received, digest } = await new Promise<{ received: number; digest: string }>((resolve, reject) => {
      const request = http.request({ host: url.hostname, port: url.port, method: 'GET', path, headers: getHeaders }, (response) => {
        const hash = createHash('md5');
        let count = 0;
        response.on('data', (chunk: Buffer) => {
          count += chunk.length;
          hash.update(chunk);
        });
        response.on('end', () => resolve({ received: count, digest: hash.digest('hex') }));
        response.on('error', reject);
      });
      request.on('error', reject);
      request.end();
    });
    expect(received).toBe(SIZE);
    expect(digest).toBe(expected.digest('hex'));
  } finally {
    clearInterval(sampler);
  }
  expect(peak).toBeGreaterThan(0);
  // The kernel updates VmHWM lazily (per-task RSS counters are batched): the samples may see a little more.
  const lifetimePeak = Math.max(memoryOf(gateway.pid).peakRss, peak);
  expect(lifetimePeak, `peak RSS (VmHWM) over the whole sequence ${(lifetimePeak / 1e6).toFixed(1)} MB`).toBeLessThan(RSS_LIMIT);
  expect(majorGcCount() - majorGcsBefore, 'mark-compact GCs while 2 GiB passed through').toBeLessThanOrEqual(MAJOR_GC_LIMIT);
}, 300_000);
