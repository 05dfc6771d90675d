/**
 * Operating the gateway: the JSON access log, Prometheus /metrics on the admin listener, per-key
 * rate limiting and last_used_at — through a real gateway process and a real s3rver upstream.
 */
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';
import { signedRequest, startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'observed';

function as(gateway: Gateway, key: CreatedKey, secretAccessKey = key.secretAccessKey) {
  return { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey };
}

/** Polls until `read` returns a value (log lines and metrics are written when a response ends). */
async function eventually<T>(read: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe('access log, metrics and last use', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let writer: CreatedKey;
  let reader: CreatedKey;
  let logDir: string;
  let logFile: string;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    logDir = mkdtempSync(path.join(tmpdir(), 'keygate-log-'));
    logFile = path.join(logDir, 'nested/access.log');
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: logFile });
    writer = await gateway.createKey({ name: 'writer', bucket: BUCKET, preset: 'read-write' });
    reader = await gateway.createKey({ name: 'reader', bucket: BUCKET, preset: 'read-only' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
    if (logDir) rmSync(logDir, { recursive: true, force: true });
  });

  const logLines = (): Array<Record<string, unknown>> =>
    existsSync(logFile)
      ? readFileSync(logFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line))
      : [];
  const lineFor = (requestId: string) => eventually(() => logLines().find((line) => line.requestId === requestId), `log line ${requestId}`);

  it('writes one JSON line per request with key id, operation, bucket, status, bytes and duration', async () => {
    const body = Buffer.alloc(3000, 'x');
    const put = await signedRequest(as(gateway, writer), 'PUT', `/${BUCKET}/logged%20object.bin`, { body });
    expect(put.status).toBe(200);
    const putLine = await lineFor(put.headers['x-amz-request-id'] as string);
    expect(putLine).toMatchObject({
      type: 'access',
      accessKeyId: writer.accessKeyId,
      method: 'PUT',
      operation: 'PutObject',
      bucket: BUCKET,
      key: 'logged object.bin',
      status: 200,
      errorCode: null,
      aborted: false,
      remoteAddress: '127.0.0.1',
    });
    expect(putLine.bytesIn).toBeGreaterThan(body.length);
    expect(putLine.bytesOut).toBeGreaterThan(0);
    expect(putLine.durationMs).toBeGreaterThan(0);
    expect(Date.parse(putLine.time as string)).toBeGreaterThan(Date.now() - 60_000);

    const get = await signedRequest(as(gateway, reader), 'GET', `/${BUCKET}/logged%20object.bin`);
    expect(get.status).toBe(200);
    const getLine = await lineFor(get.headers['x-amz-request-id'] as string);
    expect(getLine).toMatchObject({ accessKeyId: reader.accessKeyId, operation: 'GetObject', status: 200 });
    expect(getLine.bytesOut).toBeGreaterThan(body.length);
  });

  it('writes exactly one line per request, also for a client that goes away before its answer', async () => {
    const url = new URL(gateway.url);
    const objectPath = `/${BUCKET}/abandoned-upload.bin`;
    const body = Buffer.alloc(4000, 'y');
    const headers = signedHeaders(writer, url.host, 'PUT', objectPath, { body });
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => undefined);
    await once(socket, 'connect');
    socket.write(
      `PUT ${objectPath} HTTP/1.1\r\n${Object.entries(headers)
        .map(([name, value]) => `${name}: ${value}\r\n`)
        .join('')}\r\n`,
    );
    socket.write(body.subarray(0, 1000));
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    const abandoned = await eventually(() => logLines().find((line) => line.key === 'abandoned-upload.bin'), 'the abandoned upload');
    expect(abandoned).toMatchObject({ accessKeyId: writer.accessKeyId, operation: 'PutObject', aborted: true });
    // Well past the log's batching delay: a second record of any request would be in the file by now.
    await new Promise((resolve) => setTimeout(resolve, 300));
    const lines = logLines();
    expect(lines.filter((line) => line.key === 'abandoned-upload.bin')).toHaveLength(1);
    const perRequest = new Map<unknown, number>();
    for (const line of lines) perRequest.set(line.requestId, (perRequest.get(line.requestId) ?? 0) + 1);
    expect([...perRequest.values()].filter((count) => count !== 1)).toEqual([]);
    expect(perRequest.size).toBeGreaterThanOrEqual(3);
  });

  it('logs refusals with their S3 error code, and never a secret or signature', async () => {
    const denied = await signedRequest(as(gateway, reader), 'DELETE', `/${BUCKET}/logged%20object.bin`);
    expect(denied.status).toBe(403);
    expect(await lineFor(denied.headers['x-amz-request-id'] as string)).toMatchObject({
      accessKeyId: reader.accessKeyId,
      operation: 'DeleteObject',
      status: 403,
      errorCode: 'AccessDenied',
    });

    const forged = await signedRequest(as(gateway, writer, `${writer.secretAccessKey}x`), 'GET', `/${BUCKET}`);
    expect(forged.status).toBe(403);
    // The signature did not verify: the caller is not identified, so no key id is attributed.
    expect(await lineFor(forged.headers['x-amz-request-id'] as string)).toMatchObject({
      accessKeyId: null,
      operation: null,
      status: 403,
      errorCode: 'SignatureDoesNotMatch',
    });

    const log = readFileSync(logFile, 'utf8');
    for (const secret of [writer.secretAccessKey, reader.secretAccessKey, 'Signature=', 'AWS4-HMAC-SHA256', gateway.adminToken]) {
      expect(log).not.toContain(secret);
    }
  });

  it('serves Prometheus metrics on the admin listener behind the admin token', async () => {
    const anonymous = await fetch(`${gateway.adminUrl}/metrics`);
    expect(anonymous.status).toBe(401);
    expect(await anonymous.json()).toEqual({ error: 'unauthorized', detail: 'Missing or invalid API key' });
    const wrong = await fetch(`${gateway.adminUrl}/metrics`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
    expect(wrong.status).toBe(401);
    // The S3 listener does not expose metrics.
    expect((await fetch(`${gateway.url}/metrics`)).status).toBe(403);

    const scrape = async () => {
      const response = await fetch(`${gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${gateway.adminToken}` } });
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toContain('text/plain');
      return response.text();
    };
    const sample = (text: string, series: string): number => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    };
    const headSeries = 'keygate_s3_requests_total{operation="HeadObject",status="200"}';
    const before = sample(await scrape(), headSeries);
    for (let i = 0; i < 3; i++) {
      expect((await signedRequest(as(gateway, reader), 'HEAD', `/${BUCKET}/logged%20object.bin`)).status).toBe(200);
    }
    const text = await eventually(async () => {
      const current = await scrape();
      return sample(current, headSeries) === before + 3 ? current : undefined;
    }, 'three more HeadObject requests in /metrics');
    expect(sample(text, 'keygate_s3_request_duration_seconds_count{operation="HeadObject"}')).toBeGreaterThanOrEqual(3);
    expect(sample(text, 'keygate_s3_requests_total{operation="DeleteObject",status="403"}')).toBeGreaterThanOrEqual(1);
    expect(sample(text, 'keygate_s3_received_bytes_total{operation="PutObject"}')).toBeGreaterThan(3000);
    expect(sample(text, 'keygate_access_keys')).toBe(2);
    expect(text).toContain('keygate_process_resident_memory_bytes');
    expect(text).not.toContain(reader.accessKeyId);
  });

  it('keeps last_used_at per key', async () => {
    const idle = await gateway.createKey({ name: 'idle', bucket: BUCKET, preset: 'read-only' });
    const startedAt = Date.now() - 1000;
    expect((await signedRequest(as(gateway, reader), 'GET', `/${BUCKET}`)).status).toBe(200);
    const shown = (await gateway.admin('GET', `/v1/keys/${reader.accessKeyId}`)).json;
    expect(Date.parse(shown.lastUsedAt)).toBeGreaterThanOrEqual(startedAt);
    expect((await gateway.admin('GET', `/v1/keys/${idle.accessKeyId}`)).json.lastUsedAt).toBeNull();
  });
});

describe('per-key rate limiting', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_RATE_LIMIT: '2', KEYGATE_RATE_LIMIT_BURST: '5', KEYGATE_ACCESS_LOG: 'off' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  it('refuses a key over its rate with SlowDown and Retry-After, without slowing other keys', async () => {
    const busy = await gateway.createKey({ name: 'busy', bucket: BUCKET, preset: 'read-only' });
    const calm = await gateway.createKey({ name: 'calm', bucket: BUCKET, preset: 'read-only' });
    const statuses = await Promise.all(Array.from({ length: 12 }, () => signedRequest(as(gateway, busy), 'GET', `/${BUCKET}`)));
    const ok = statuses.filter((r) => r.status === 200);
    const slowed = statuses.filter((r) => r.status === 503);
    // Burst 5, plus at most a token or two refilled while the 12 requests are in flight.
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(ok.length).toBeLessThanOrEqual(7);
    expect(ok.length + slowed.length).toBe(12);
    const refusal = slowed[0]!;
    expect(refusal.body.toString()).toContain('<Code>SlowDown</Code>');
    expect(Number(refusal.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    expect((await signedRequest(as(gateway, calm), 'GET', `/${BUCKET}`)).status).toBe(200);

    const slowedTotal = await eventually(async () => {
      const response = await fetch(`${gateway.adminUrl}/metrics`, { headers: { authorization: `Bearer ${gateway.adminToken}` } });
      const line = (await response.text()).split('\n').find((l) => l.startsWith('keygate_rate_limited_requests_total '));
      return line && Number(line.split(' ')[1]) === slowed.length ? line : undefined;
    }, 'the rate-limited counter');
    expect(slowedTotal).toBeDefined();

    // The sustained rate refills the bucket: 2/s -> a token within ~500 ms.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await signedRequest(as(gateway, busy), 'GET', `/${BUCKET}`)).status).toBe(200);
  });
});
