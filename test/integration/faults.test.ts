/**
 * Fault injection through a real gateway process: a real S3 upstream (moto, validating signatures)
 * behind a fault-injecting proxy (test/helpers/fault-proxy.ts) that makes it go down, answer late,
 * stall or reset mid-body and fail with 5xx, and clients that walk away mid-transfer. Every
 * scenario checks what the client sees (a prompt S3 error, or a visibly failed transfer, never a
 * short body passed off as complete), what reached the upstream (retries counted, no partial
 * object), and that the gateway survives without leaking descriptors or sockets.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { freePort, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { eventually, openFdCount, tcpSockets } from '../helpers/process-resources.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';
import { signedHeaders } from '../helpers/sign.js';

/** Reached through the fault proxy. */
const FAULTY = 'faulty-bucket';
/** Reached directly (the default upstream): the control that the gateway still serves. */
const DIRECT = 'direct-bucket';
/** Registered with an endpoint nothing listens on. */
const DOWN = 'down-bucket';

/** Short upstream timeouts so slow-upstream scenarios finish quickly (the defaults are minutes). */
const HEADERS_TIMEOUT_MS = 3000;
const BODY_TIMEOUT_MS = 3000;
/** Extra fds allowed after a scenario: pooled idle upstream connections come and go. */
const FD_TOLERANCE = 3;

const xml = new XMLParser({ parseTagValue: false });

interface ClientResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The response arrived whole (its 'end' fired, no error). */
  complete: boolean;
  error: string | null;
}

describe('fault injection through a real gateway', () => {
  let moto: TestUpstream;
  let proxy: FaultProxy;
  let gateway: Gateway;
  let key: CreatedKey;
  let port: number;
  let baselineFds: number;

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(FAULTY);
    await moto.createBucket(DIRECT);
    proxy = await startFaultProxy(moto.endpoint);
    gateway = await startGateway({
      ...upstreamEnv(moto),
      KEYGATE_UPSTREAM_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
      KEYGATE_UPSTREAM_BODY_TIMEOUT_MS: String(BODY_TIMEOUT_MS),
      KEYGATE_UPSTREAM_CONNECT_TIMEOUT_MS: '2000',
      KEYGATE_ACCESS_LOG: 'off',
    });
    await gateway.addBucket({ name: FAULTY, endpoint: proxy.url, region: moto.region });
    await gateway.addBucket({ name: DOWN, endpoint: `http://127.0.0.1:${await freePort()}`, region: moto.region });
    key = await gateway.createKey({ name: 'faults', permissions: ['read', 'write', 'delete'] });
    port = Number(new URL(gateway.url).port);
    // Warm up (store, signing-key cache, one pooled connection each way), then let idle sockets close.
    expect((await send('PUT', `/${DIRECT}/warm`, { body: Buffer.from('warm') })).status).toBe(200);
    const warm = await send('PUT', `/${FAULTY}/warm`, { body: Buffer.from('warm') });
    expect(warm.status, warm.body.toString()).toBe(200);
    await eventually(() => proxy.openConnections() === 0, 10_000);
    baselineFds = openFdCount(gateway.pid);
  });

  afterAll(async () => {
    await gateway?.stop();
    await proxy?.close();
    await moto?.stop();
  });

  afterEach(async () => {
    proxy.setRule(null);
    await expectGatewayHealthy();
    // A proxy that stopped reading never notices the gateway hang up; the gateway side was checked above.
    proxy.dropConnections();
  });

  /** A request signed with the test key (aws4, not the code under test), on a fresh connection. */
  function send(
    method: string,
    path: string,
    options: { body?: Buffer; headers?: Record<string, string>; onResponse?: (response: http.IncomingMessage) => void } = {},
  ): Promise<ClientResult> {
    const body = options.body;
    const headers = signedHeaders(key, `127.0.0.1:${port}`, method, path, options);
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let result: ClientResult = { status: 0, headers: {}, body: Buffer.alloc(0), complete: false, error: null };
      const finish = (error: string | null) => {
        if (result.complete || result.error) return;
        result = { ...result, body: Buffer.concat(chunks), complete: error === null, error };
        resolve(result);
      };
      const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false });
      request.setTimeout(30_000, () => request.destroy(new Error('client timeout: the gateway did not answer in 30 s')));
      request.on('response', (response) => {
        result.status = response.statusCode ?? 0;
        result.headers = response.headers;
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => finish(null));
        response.on('aborted', () => finish('aborted'));
        response.on('error', (error) => finish(error.message));
        response.on('close', () => finish('closed before the end of the response'));
        options.onResponse?.(response);
      });
      request.on('error', (error) => finish(error.message));
      request.end(body);
    });
  }

  function s3ErrorCode(result: ClientResult): string | undefined {
    return (xml.parse(result.body.toString('utf8')) as { Error?: { Code?: string } }).Error?.Code;
  }

  async function expectGatewayHealthy(): Promise<void> {
    const health = await fetch(`${gateway.url}/_health`);
    expect(health.status).toBe(200);
    const put = await send('PUT', `/${DIRECT}/alive.txt`, { body: Buffer.from('still serving') });
    expect(put.status, put.body.toString()).toBe(200);
    const get = await send('GET', `/${DIRECT}/alive.txt`);
    expect(get.body.toString()).toBe('still serving');
    // Idle pooled upstream connections close after the upstream's keep-alive timeout; what stays is a leak.
    const toProxy = () => tcpSockets(gateway.pid).filter((socket) => socket.remotePort === proxy.port);
    const settled = await eventually(() => openFdCount(gateway.pid) <= baselineFds + FD_TOLERANCE && toProxy().length === 0, 15_000);
    const sockets = tcpSockets(gateway.pid);
    expect(settled, `fds ${openFdCount(gateway.pid)} (baseline ${baselineFds}), sockets ${JSON.stringify(sockets)}`).toBe(true);
    expect(sockets.filter((socket) => socket.state === 'CLOSE_WAIT')).toEqual([]);
  }

  async function putDirect(objectKey: string, body: Buffer): Promise<void> {
    const response = await moto.request('PUT', `/${FAULTY}/${objectKey}`, { body });
    expect(response.status).toBe(200);
  }

  async function existsUpstream(objectKey: string): Promise<boolean> {
    const response = await moto.request('HEAD', `/${FAULTY}/${objectKey}`);
    return response.status === 200;
  }

  describe('upstream down (connection refused)', () => {
    it('answers BadGateway promptly, retrying a GET but not a PUT', async () => {
      for (const [method, body] of [
        ['GET', undefined],
        ['HEAD', undefined],
        ['PUT', Buffer.from('payload')],
      ] as const) {
        const started = Date.now();
        const result = await send(method, `/${DOWN}/object`, { body });
        expect(result.status, method).toBe(502);
        if (method !== 'HEAD') {
          expect(s3ErrorCode(result)).toBe('BadGateway');
          expect(result.body.toString()).toContain('refused the connection');
        }
        expect(Date.now() - started, method).toBeLessThan(5000);
      }
    });
  });

  describe('upstream slow', () => {
    it('answers GatewayTimeout when the response headers do not come, without retrying the timeout', async () => {
      await putDirect('slow.txt', Buffer.from('slow'));
      proxy.setRule(() => ({ kind: 'delay-headers', ms: Infinity }));
      const before = proxy.requests.length;
      const started = Date.now();
      const result = await send('GET', `/${FAULTY}/slow.txt`);
      const elapsed = Date.now() - started;
      expect(result.status).toBe(504);
      expect(s3ErrorCode(result)).toBe('GatewayTimeout');
      expect(elapsed).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 100);
      expect(elapsed).toBeLessThan(HEADERS_TIMEOUT_MS + 4000);
      expect(proxy.requests.length - before).toBe(1);
      expect(await eventually(() => proxy.requests.at(-1)!.closedByGateway, 5000)).toBe(true);
    });

    it('answers GatewayTimeout to an upload the upstream stops reading', async () => {
      proxy.setRule(() => ({ kind: 'stall-request', afterBytes: 64 * 1024 }));
      // Larger than what loopback socket buffers absorb, so the gateway really is blocked writing.
      const result = await send('PUT', `/${FAULTY}/stalled-upload.bin`, { body: randomBytes(16 * 1024 * 1024) });
      expect(result.status).toBe(504);
      expect(s3ErrorCode(result)).toBe('GatewayTimeout');
      expect(await existsUpstream('stalled-upload.bin')).toBe(false);
    });

    it('cuts the download when the upstream stalls mid-body: never a complete-looking 200', async () => {
      const object = randomBytes(2 * 1024 * 1024);
      await putDirect('stall.bin', object);
      proxy.setRule(() => ({ kind: 'stall-response', afterBytes: 100_000 }));
      const started = Date.now();
      const result = await send('GET', `/${FAULTY}/stall.bin`);
      expect(result.status).toBe(200);
      expect(result.headers['content-length']).toBe(String(object.length));
      expect(result.complete).toBe(false);
      expect(result.body.length).toBeLessThan(object.length);
      expect(Date.now() - started).toBeLessThan(BODY_TIMEOUT_MS + 4000);
    });
  });

  describe('upstream resetting mid-body', () => {
    it('download: the client sees a failed transfer, not a short object', async () => {
      const object = randomBytes(2 * 1024 * 1024);
      await putDirect('reset.bin', object);
      proxy.setRule(() => ({ kind: 'reset-response', afterBytes: 300_000 }));
      const result = await send('GET', `/${FAULTY}/reset.bin`);
      expect(result.status).toBe(200);
      expect(result.complete).toBe(false);
      expect(result.body.length).toBeLessThan(object.length);
    });

    it('upload: the client gets an S3 error and no object is written', async () => {
      proxy.setRule(() => ({ kind: 'reset-request', afterBytes: 256 * 1024 }));
      const before = proxy.requests.length;
      const result = await send('PUT', `/${FAULTY}/reset-upload.bin`, { body: randomBytes(4 * 1024 * 1024) });
      // The gateway may answer before the client finished sending; either way the upload failed.
      if (result.status !== 0) {
        expect(result.status).toBe(502);
        expect(s3ErrorCode(result)).toBe('BadGateway');
      } else {
        expect(result.error).not.toBeNull();
      }
      expect(proxy.requests.length - before, 'an upload with a body is not retried').toBe(1);
      expect(await existsUpstream('reset-upload.bin')).toBe(false);
    });
  });

  describe('upstream 5xx', () => {
    const HTML_PAGE = '<html><body>upstream trouble</body></html>';
    const cases = [
      { status: 500, attempts: 3, clientStatus: 502, code: 'BadGateway' },
      { status: 502, attempts: 3, clientStatus: 502, code: 'BadGateway' },
      { status: 503, attempts: 3, clientStatus: 503, code: 'ServiceUnavailable' },
      { status: 524, attempts: 3, clientStatus: 504, code: 'GatewayTimeout' },
      { status: 507, attempts: 1, clientStatus: 507, code: 'InsufficientStorage' },
    ];
    for (const { status, attempts, clientStatus, code } of cases) {
      it(`an HTML ${status} becomes ${clientStatus} ${code} after ${attempts} attempt(s) of a GET`, async () => {
        proxy.setRule(() => ({ kind: 'status', status, body: HTML_PAGE, headers: { 'content-type': 'text/html' } }));
        const before = proxy.requests.length;
        const result = await send('GET', `/${FAULTY}/any.txt`);
        expect(result.status).toBe(clientStatus);
        expect(s3ErrorCode(result)).toBe(code);
        expect(result.body.toString()).not.toContain('upstream trouble');
        expect(proxy.requests.length - before).toBe(attempts);
      });
    }

    it('passes an upstream S3 InternalError document on once retries are exhausted', async () => {
      const document = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>upstream says so</Message></Error>';
      proxy.setRule(() => ({ kind: 'status', status: 500, body: document, headers: { 'content-type': 'application/xml' } }));
      const before = proxy.requests.length;
      const result = await send('HEAD', `/${FAULTY}/any.txt`);
      expect(result.status).toBe(500);
      expect(proxy.requests.length - before).toBe(3);
      const get = await send('GET', `/${FAULTY}/any.txt`);
      expect(get.status).toBe(500);
      expect(s3ErrorCode(get)).toBe('InternalError');
    });

    it('recovers transparently when a GET succeeds on a retry', async () => {
      await putDirect('flaky.txt', Buffer.from('worth the wait'));
      const before = proxy.requests.length;
      proxy.setRule(({ index }) => (index - before < 2 ? { kind: 'status', status: 503 } : null));
      const result = await send('GET', `/${FAULTY}/flaky.txt`);
      expect(result.status).toBe(200);
      expect(result.body.toString()).toBe('worth the wait');
      expect(proxy.requests.length - before).toBe(3);
    });

    it('does not retry non-idempotent requests (PUT with a body, POST)', async () => {
      proxy.setRule(() => ({ kind: 'status', status: 503 }));
      let before = proxy.requests.length;
      const put = await send('PUT', `/${FAULTY}/once.txt`, { body: Buffer.from('once') });
      expect(put.status).toBe(503);
      expect(s3ErrorCode(put)).toBe('ServiceUnavailable');
      expect(proxy.requests.length - before).toBe(1);
      before = proxy.requests.length;
      const create = await send('POST', `/${FAULTY}/once.txt?uploads`);
      expect(create.status).toBe(503);
      expect(proxy.requests.length - before).toBe(1);
      expect(await existsUpstream('once.txt')).toBe(false);
    });
  });

  describe('client going away', () => {
    /** Starts a signed PUT of `declared` bytes, sends `sent` of them, then drops the connection. */
    async function abandonUpload(path: string, declared: number, sent: number): Promise<void> {
      const headers = signedHeaders(key, `127.0.0.1:${port}`, 'PUT', path, { headers: { 'content-length': String(declared) } });
      const request = http.request({ host: '127.0.0.1', port, method: 'PUT', path, headers, agent: false });
      request.on('error', () => undefined);
      await new Promise<void>((resolve) => request.write(randomBytes(sent), () => resolve()));
      // Give the gateway time to start the upstream request and stream the first bytes.
      await new Promise((resolve) => setTimeout(resolve, 500));
      request.destroy();
    }

    it('mid-upload (single PUT): the upstream request is aborted and no partial object exists', async () => {
      const before = proxy.requests.length;
      await abandonUpload(`/${FAULTY}/abandoned.bin`, 8 * 1024 * 1024, 1024 * 1024);
      expect(await eventually(() => proxy.requests.length > before && proxy.requests.at(-1)!.closedByGateway, 5000)).toBe(true);
      const upstreamSide = proxy.requests.at(-1)!;
      expect(upstreamSide.requestComplete).toBe(false);
      expect(upstreamSide.bodyBytes).toBeGreaterThan(0);
      expect(upstreamSide.bodyBytes).toBeLessThan(8 * 1024 * 1024);
      expect(await existsUpstream('abandoned.bin')).toBe(false);

      // Straight to moto as well (no proxy in between): still nothing stored.
      await abandonUpload(`/${DIRECT}/abandoned.bin`, 8 * 1024 * 1024, 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await moto.request('HEAD', `/${DIRECT}/abandoned.bin`)).status).toBe(404);
    });

    it('mid-download: the upstream connection is released', async () => {
      // Larger than loopback socket buffers hold, so the upstream is still sending when the client leaves.
      await putDirect('big.bin', randomBytes(48 * 1024 * 1024));
      const before = proxy.requests.length;
      const result = await send('GET', `/${FAULTY}/big.bin`, {
        onResponse: (response) => {
          let received = 0;
          response.on('data', (chunk: Buffer) => {
            received += chunk.length;
            if (received > 256 * 1024) response.destroy();
          });
        },
      });
      expect(result.complete).toBe(false);
      expect(await eventually(() => proxy.requests.length > before && proxy.requests.at(-1)!.closedByGateway, 5000)).toBe(true);
      expect(proxy.requests.at(-1)!.responseFinished).toBe(false);
      expect(await eventually(() => proxy.openConnections() === 0, 5000)).toBe(true);
    });
  });
});
