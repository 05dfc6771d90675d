/**
 * How forwarding behaves when the upstream misbehaves: retries, status mapping, timeouts,
 * resets, aborts and failing request bodies. Local node:http servers play the upstream, since no
 * S3 server produces these failures on demand.
 */
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/s3/errors.js';
import { parseRetryAfterMs, UpstreamForwarder, type ForwardRequest } from '../../src/upstream/forward.js';
import { RUNPOD_CAPABILITIES, type UpstreamTarget } from '../../src/upstream/target.js';
import { readAll, readText, startLocalServer, targetFor, type LocalServer } from './fixtures.js';

const CREDENTIALS = { accessKeyId: 'AKIDFAILURES', secretAccessKey: 'super-secret-do-not-leak' };
const S3_XML_ERROR = (code: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>m</Message></Error>`;

const forwarder = new UpstreamForwarder({
  headersTimeoutMs: 400,
  bodyTimeoutMs: 400,
  retry: { baseDelayMs: 10, maxDelayMs: 40, maxRetryAfterMs: 300 },
  random: () => 0.5,
});
afterAll(() => forwarder.close());

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function upstream(handler: Parameters<typeof startLocalServer>[0], options?: Parameters<typeof startLocalServer>[1]): Promise<UpstreamTarget> {
  server = await startLocalServer(handler, options);
  return targetFor({ endpoint: server.url, region: 'us-east-1', ...CREDENTIALS }, 'bkt');
}

function get(target: UpstreamTarget, extra: Partial<ForwardRequest> = {}): ForwardRequest {
  return { target, method: 'GET', objectKey: 'k', query: [], headers: {}, body: null, contentLength: null, retry: true, ...extra };
}

async function s3ErrorOf(promise: Promise<unknown>): Promise<S3Error> {
  const error = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3Error);
  return error as S3Error;
}

describe('retries of idempotent bodiless requests', () => {
  it('retries a 502 and returns the following 200', async () => {
    const target = await upstream((_req, res, _body, index) => {
      res.writeHead(index === 0 ? 502 : 200, { 'content-type': 'text/plain' });
      res.end(index === 0 ? 'bad gateway' : 'payload');
    });
    const response = await forwarder.forward(get(target));
    expect(response.status).toBe(200);
    expect(await readText(response.body)).toBe('payload');
    expect(server!.requests).toHaveLength(2);
    // Each attempt is signed anew.
    expect(server!.requests[0]!.headers['x-amz-date']).toBeDefined();
  });

  it('honours Retry-After, capped at the configured maximum', async () => {
    const target = await upstream((_req, res, _body, index) => {
      res.writeHead(index === 0 ? 503 : 200, index === 0 ? { 'retry-after': '60' } : {});
      res.end();
    });
    const started = Date.now();
    const response = await forwarder.forward(get(target));
    const elapsed = Date.now() - started;
    expect(response.status).toBe(200);
    expect(elapsed).toBeGreaterThanOrEqual(280);
    expect(elapsed).toBeLessThan(3000);
    expect(parseRetryAfterMs('2')).toBe(2000);
    expect(parseRetryAfterMs(new Date(Date.now() + 3000).toUTCString())).toBeGreaterThan(1000);
    expect(parseRetryAfterMs('soon')).toBeNull();
  });

  it('gives up after 3 attempts: a non-S3 503 page becomes ServiceUnavailable with the upstream named', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '0' });
      res.end('<html>maintenance</html>');
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
    expect(error.message).toContain(server!.url);
    expect(error.headers['retry-after']).toBe('0');
    expect(server!.requests).toHaveLength(3);
  });

  it('passes an upstream S3 error document (e.g. SlowDown) through once retries are exhausted', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml', 'transfer-encoding': 'chunked', 'x-amz-request-id': 'up-1' });
      res.end(S3_XML_ERROR('SlowDown'));
    });
    const response = await forwarder.forward(get(target));
    expect(response.status).toBe(503);
    expect(response.headers['x-amz-request-id']).toBe('up-1');
    expect(response.headers).not.toHaveProperty('transfer-encoding');
    const body = await readText(response.body);
    expect(body).toContain('<Code>SlowDown</Code>');
    expect(response.headers['content-length']).toBe(String(Buffer.byteLength(body)));
    expect(server!.requests).toHaveLength(3);
  });

  it('retries a 524 (RunPod/Cloudflare timeout) and then answers GatewayTimeout', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(524);
      res.end('A timeout occurred');
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'GatewayTimeout', status: 504 });
    expect(server!.requests).toHaveLength(3);
  });

  it('retries connection resets before the response, then answers BadGateway', async () => {
    const target = await upstream((req) => {
      req.socket.destroy();
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toMatch(/closed the connection unexpectedly/);
    expect(server!.requests).toHaveLength(3);
  });

  it('does not retry requests with a body or without the retry flag', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(502);
      res.end();
    });
    await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(server!.requests).toHaveLength(1);
    const body = Buffer.from('data');
    await s3ErrorOf(forwarder.forward(get(target, { method: 'PUT', body: Readable.from([body]), contentLength: body.length, retry: true })));
    expect(server!.requests).toHaveLength(2);
  });
});

describe('status mapping', () => {
  it('maps 507 to InsufficientStorage telling how to grow a RunPod volume, without retrying', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(507);
      res.end();
    });
    const runpod: UpstreamTarget = { ...target, kind: 'runpod', datacenter: 'EU-RO-1', bucket: 'vol123', capabilities: { ...RUNPOD_CAPABILITIES } };
    const error = await s3ErrorOf(forwarder.forward(get(runpod)));
    expect(error).toMatchObject({ code: 'InsufficientStorage', status: 507 });
    expect(error.message).toMatch(/network volume "vol123" in EU-RO-1 is full; increase its size/);
    expect(server!.requests).toHaveLength(1);
  });

  it('passes S3 4xx errors through unchanged', async () => {
    const xml = S3_XML_ERROR('NoSuchKey');
    const target = await upstream((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/xml', 'x-amz-request-id': 'r1' });
      res.end(xml);
    });
    const response = await forwarder.forward(get(target));
    expect(response.status).toBe(404);
    expect(response.headers['x-amz-request-id']).toBe('r1');
    expect(await readText(response.body)).toBe(xml);
  });

  it('answers a non-S3 504 page with GatewayTimeout', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(504, { 'content-type': 'text/html' });
      res.end('<html>gateway timeout</html>');
    });
    await expect(forwarder.forward(get(target, { retry: false }))).rejects.toMatchObject({ code: 'GatewayTimeout', status: 504 });
  });
});

describe('5xx without an S3 error document', () => {
  it('retries an HTML 500 and answers BadGateway naming the status, never passing the page on', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>500 Internal Server Error</title>');
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toContain('HTTP 500');
    expect(error.message).toContain(server!.url);
    expect(server!.requests).toHaveLength(3);
  });

  it('retries an S3 InternalError and passes the document on once retries are exhausted', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end(S3_XML_ERROR('InternalError'));
    });
    const response = await forwarder.forward(get(target));
    expect(response.status).toBe(500);
    expect(await readText(response.body)).toContain('<Code>InternalError</Code>');
    expect(server!.requests).toHaveLength(3);
  });

  it('a 500 that succeeds on retry is invisible to the client', async () => {
    const target = await upstream((_req, res, _body, index) => {
      res.writeHead(index === 0 ? 500 : 200);
      res.end(index === 0 ? 'oops' : 'fine');
    });
    const response = await forwarder.forward(get(target));
    expect(await readText(response.body)).toBe('fine');
  });

  it('maps any other bodiless or non-S3 5xx (501, 505) to BadGateway', async () => {
    for (const status of [501, 505]) {
      const target = await upstream((_req, res) => {
        res.writeHead(status);
        res.end();
      });
      await expect(forwarder.forward(get(target, { retry: false }))).rejects.toMatchObject({ code: 'BadGateway', status: 502 });
      await server!.close();
      server = undefined;
    }
  });

  it('passes a HEAD 5xx status through: a HEAD answer has no body to judge', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const response = await forwarder.forward(get(target, { method: 'HEAD' }));
    expect(response.status).toBe(500);
    expect(server!.requests).toHaveLength(3);
  });

  it('does not retry a 500 for a request with a body', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const body = Buffer.from('data');
    await s3ErrorOf(forwarder.forward(get(target, { method: 'PUT', body: Readable.from([body]), contentLength: body.length })));
    expect(server!.requests).toHaveLength(1);
  });
});

describe('network failures', () => {
  it('connection refused -> BadGateway naming the endpoint, never the credentials', async () => {
    const target = await upstream(() => {});
    await server!.close();
    server = undefined;
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toContain(`${target.endpoint.origin} refused the connection (ECONNREFUSED)`);
    expect(error.message).not.toContain(CREDENTIALS.secretAccessKey);
    expect(error.message).not.toContain(CREDENTIALS.accessKeyId);
  });

  it('an upstream that does not answer in time -> GatewayTimeout', async () => {
    const target = await upstream(() => {
      // never answers
    });
    const started = Date.now();
    const error = await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(error).toMatchObject({ code: 'GatewayTimeout', status: 504 });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a reset in the middle of the response body fails the body stream (the status was already sent)', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000));
      setTimeout(() => res.socket?.destroy(), 50);
    });
    const response = await forwarder.forward(get(target));
    expect(response.status).toBe(200);
    await expect(readAll(response.body)).rejects.toThrow();
  });

  it('a stalled response body times out', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(200, { 'content-length': '10' });
      res.write('12345');
    });
    const response = await forwarder.forward(get(target));
    await expect(readAll(response.body)).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
  });
});

describe('client aborts and failing request bodies', () => {
  it('a client abort during an upload destroys the upstream request at once', async () => {
    const target = await upstream(() => {}, { streamBody: true });
    const abort = new AbortController();
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000));
    const pending = forwarder.forward(get(target, { method: 'PUT', body, contentLength: 1_000_000, signal: abort.signal, retry: false }));
    await waitFor(() => server!.requests.length === 1);
    const reason = new S3Error('RequestTimeout', 'The client closed the connection.');
    abort.abort(reason);
    await expect(pending).rejects.toBe(reason);
    await waitFor(() => server!.requests[0]!.aborted);
  });

  it('a client abort while streaming the response closes the upstream connection', async () => {
    let upstreamClosed = false;
    const target = await upstream((_req, res) => {
      res.on('close', () => (upstreamClosed = true));
      res.writeHead(200, { 'content-length': String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(64 * 1024));
    });
    const abort = new AbortController();
    const response = await forwarder.forward(get(target, { signal: abort.signal }));
    const reading = readAll(response.body);
    abort.abort(new Error('client gone'));
    await expect(reading).rejects.toThrow();
    await waitFor(() => upstreamClosed);
  });

  it('an abort during the retry backoff stops retrying', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'retry-after': '60' });
      res.end();
    });
    const slowRetries = new UpstreamForwarder({ retry: { maxRetryAfterMs: 10_000 } });
    const abort = new AbortController();
    const pending = slowRetries.forward(get(target, { signal: abort.signal }));
    await waitFor(() => server!.requests.length === 1);
    const started = Date.now();
    abort.abort(new Error('client gone'));
    await expect(pending).rejects.toThrow('client gone');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(server!.requests).toHaveLength(1);
    await slowRetries.close();
  });

  it('a body stream that fails mid-way aborts the upstream request before its declared length, and its error is reported', async () => {
    let receivedBytes = 0;
    const target = await upstream(
      (req) => {
        req.on('data', (chunk: Buffer) => (receivedBytes += chunk.length));
      },
      { streamBody: true },
    );
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(50_000, 1));
    const verifierError = new S3Error('SignatureDoesNotMatch', 'chunk 2 signature does not match');
    const pending = forwarder.forward(get(target, { method: 'PUT', body, contentLength: 100_000, retry: false }));
    await waitFor(() => server!.requests.length === 1);
    setTimeout(() => body.destroy(verifierError), 50);
    await expect(pending).rejects.toBe(verifierError);
    await waitFor(() => server!.requests[0]!.aborted);
    expect(receivedBytes).toBe(50_000);
  });

  it('a body stream destroyed without an error also aborts the upstream request (IncompleteBody)', async () => {
    const target = await upstream((req) => void req.resume(), { streamBody: true });
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(10_000));
    const pending = forwarder.forward(get(target, { method: 'PUT', body, contentLength: 20_000, retry: false }));
    await waitFor(() => server!.requests.length === 1);
    body.destroy();
    await expect(pending).rejects.toMatchObject({ code: 'IncompleteBody' });
    await waitFor(() => server!.requests[0]!.aborted);
  });

  it('an empty body is sent only after its stream ended cleanly', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(200);
      res.end();
    });
    const failing = new Readable({ read() {} });
    setTimeout(() => failing.destroy(new S3Error('BadDigest')), 20);
    await expect(forwarder.forward(get(target, { method: 'PUT', body: failing, contentLength: 0 }))).rejects.toMatchObject({ code: 'BadDigest' });
    expect(server!.requests).toHaveLength(0);

    const ok = await forwarder.forward(get(target, { method: 'PUT', body: Readable.from([]), contentLength: 0 }));
    expect(ok.status).toBe(200);
    expect(server!.requests[0]!.headers['content-length']).toBe('0');
  });

  it('refuses a body without a known length', async () => {
    const target = await upstream(() => {});
    await expect(forwarder.forward(get(target, { method: 'PUT', body: Readable.from([Buffer.from('x')]), contentLength: null }))).rejects.toMatchObject({
      code: 'MissingContentLength',
    });
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
