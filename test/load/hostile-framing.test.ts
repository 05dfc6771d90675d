/**
 * Hostile framing must not multiply the gateway's work: a client chooses how many pieces its
 * upload arrives in (aws-chunked chunks, TCP segments), so the gateway's cost must follow the bytes,
 * not the pieces. The gateway's own CPU time is read from /proc before and after each upload and
 * compared with a plain upload of the same size (wide margins: CPU time on a shared machine).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { cpuSecondsOf } from '../helpers/process-resources.js';
import { signedHeaders } from '../helpers/sign.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'framing';

describe('hostile framing', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let writer: CreatedKey;
  let port: number;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
    writer = await gateway.createKey({ name: 'writer', permissions: ['read', 'write'] });
    port = Number(new URL(gateway.url).port);
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  /** An aws-chunked body (unsigned chunks, no trailer) of `chunks` chunks of `size` bytes each. */
  function awsChunked(chunks: number, size: number): Buffer {
    const frame = Buffer.concat([Buffer.from(`${size.toString(16)}\r\n`), Buffer.alloc(size, 'x'), Buffer.from('\r\n')]);
    const parts = new Array<Buffer>(chunks).fill(frame);
    parts.push(Buffer.from('0\r\n\r\n'));
    return Buffer.concat(parts);
  }

  /** Sends a PUT as raw bytes (optionally in `writes` pieces) and resolves with the status line's code. */
  function put(objectKey: string, body: Buffer, headers: Record<string, string>, signedLength: boolean, writeSize?: number): Promise<number> {
    const path = `/${BUCKET}/${objectKey}`;
    const host = `127.0.0.1:${port}`;
    const signed = signedHeaders(writer, host, 'PUT', path, { headers });
    if (!signedLength) signed['content-length'] = String(body.length);
    let head = `PUT ${path} HTTP/1.1\r\n`;
    for (const [name, value] of Object.entries(signed)) head += `${name}: ${value}\r\n`;
    head += 'connection: close\r\n\r\n';
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.setNoDelay(true);
      let answer = '';
      socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1];
        if (status === undefined) reject(new Error(`no answer: ${answer.slice(0, 200)}`));
        else resolve(Number(status));
      });
      socket.write(head);
      if (writeSize === undefined) socket.write(body);
      else for (let at = 0; at < body.length; at += writeSize) socket.write(body.subarray(at, at + writeSize));
    });
  }

  async function gatewayCpuFor(work: () => Promise<unknown>): Promise<number> {
    const before = cpuSecondsOf(gateway.pid);
    await work();
    // Let the gateway finish what follows the answer (draining a refused body) before reading its CPU time.
    await new Promise((resolve) => setTimeout(resolve, 200));
    return cpuSecondsOf(gateway.pid) - before;
  }

  const plainPut = (objectKey: string, size: number) => {
    const body = Buffer.alloc(size, 'p');
    return put(objectKey, body, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(size) }, true);
  };

  it('one-byte aws-chunked chunks: refused at the second chunk (InvalidChunkSizeError), at the cost of a plain upload', async () => {
    // Warm up both paths so the measured runs compare steady-state costs.
    await plainPut('warm.bin', 1024 * 1024);
    const oneByteChunks = (decoded: number) =>
      put(
        'one-byte.bin',
        awsChunked(200_000, 1),
        { 'content-encoding': 'aws-chunked', 'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER', 'x-amz-decoded-content-length': String(decoded) },
        false,
      );
    expect(await oneByteChunks(200_000)).toBe(403);
    const wire = awsChunked(200_000, 1).length;
    const plain = await gatewayCpuFor(() => plainPut('plain.bin', wire));
    const hostile = await gatewayCpuFor(async () => {
      expect(await oneByteChunks(200_000)).toBe(403);
      // One byte more declared than sent: refused the same way, long before the end.
      expect(await oneByteChunks(200_001)).toBe(403);
    });
    // Two hostile uploads against one plain upload of the same wire size; before the chunk-size
    // rule and output coalescing, each cost ~50x a plain upload (one upstream write per chunk).
    expect(hostile, `gateway CPU: plain ${plain.toFixed(2)} s, two one-byte-chunk uploads ${hostile.toFixed(2)} s`).toBeLessThan(Math.max(0.5, plain * 6));
    expect((await upstream.request('HEAD', `/${BUCKET}/one-byte.bin`)).status).toBe(404);
  });

  it('four concurrent 6 MB one-byte-chunk uploads leave /_health answering', async () => {
    const body = awsChunked(1_000_000, 1);
    const headers = {
      'content-encoding': 'aws-chunked',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-decoded-content-length': '1000000',
    };
    let healthAnswers = 0;
    let busy = true;
    const probe = (async () => {
      while (busy) {
        const response = await fetch(`${gateway.url}/_health`);
        if (response.status === 200) healthAnswers++;
        await response.text();
      }
    })();
    const cpu = await gatewayCpuFor(async () => {
      const statuses = await Promise.all(Array.from({ length: 4 }, (_, i) => put(`hostile-${i}.bin`, body, headers, false)));
      expect(statuses).toEqual([403, 403, 403, 403]);
    });
    busy = false;
    await probe;
    expect(healthAnswers).toBeGreaterThan(0);
    // Before: 58 CPU-s of gateway work for these four uploads.
    expect(cpu, `gateway CPU for 4 x 6 MB of one-byte chunks: ${cpu.toFixed(2)} s`).toBeLessThan(5);
  });

  it('valid 8 KiB chunks cost about what a plain upload of the same bytes costs', async () => {
    const size = 8 * 1024 * 1024;
    const body = awsChunked(size / 8192, 8192);
    const headers = {
      'content-encoding': 'aws-chunked',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-decoded-content-length': String(size),
    };
    await put('warm-chunked.bin', body, headers, false);
    const plain = await gatewayCpuFor(async () => expect(await plainPut('plain-8m.bin', size)).toBe(200));
    const chunked = await gatewayCpuFor(async () => expect(await put('chunked-8k.bin', body, headers, false)).toBe(200));
    expect(chunked, `gateway CPU: plain ${plain.toFixed(2)} s, 8 KiB chunks ${chunked.toFixed(2)} s`).toBeLessThan(Math.max(0.5, plain * 4));
  });

  it('a plain upload arriving in tiny TCP segments goes upstream in blocks', async () => {
    const size = 256 * 1024;
    const body = Buffer.alloc(size, 's');
    const segmented = await gatewayCpuFor(async () =>
      expect(await put('segments.bin', body, { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', 'content-length': String(size) }, true, 64)).toBe(200),
    );
    const stored = await upstream.request('GET', `/${BUCKET}/segments.bin`);
    expect(stored.body.equals(body)).toBe(true);
    // 4096 writes of 64 bytes; the gateway's cost follows the reads the kernel coalesces, and the
    // upstream gets 64 KiB blocks (see test/sigv4/payload.test.ts for the block sizes).
    expect(segmented, `gateway CPU for 256 KiB in 64-byte writes: ${segmented.toFixed(2)} s`).toBeLessThan(1);
  });
});
