/**
 * How forwarding behaves when the upstream misbehaves: retries, status mapping, timeouts,
 * resets, aborts and failing request bodies. Local node:http servers play the upstream, since no
 * S3 server produces these failures on demand.
 *
 * Upstream error answers become S3Errors with the gateway's own message: the client never reads
 * the upstream's endpoint, words or request id; the forwarder's log has them for the operator.
 */
import { Readable } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { Cancellation } from '../../src/cancellation.js';
import { parseRetryAfterMs, UpstreamForwarder, type ForwardRequest } from '../../src/upstream/forward.js';
import { RUNPOD_CAPABILITIES, type UpstreamTarget } from '../../src/upstream/target.js';
import { capturingLog, readAll, readText, startLocalServer, targetFor, upstreamBody, type LogEntry, type LocalServer } from './fixtures.js';

const CREDENTIALS = { accessKeyId: 'AKIDFAILURES', secretAccessKey: 'super-secret-do-not-leak' };
/** The upstream's own words: they must reach the log, never the client. */
const UPSTREAM_MESSAGE = 'upstream-only words from node-7.internal';
const S3_XML_ERROR = (code: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${UPSTREAM_MESSAGE}</Message>${extra}</Error>`;

const logged = capturingLog();
const forwarder = new UpstreamForwarder({
  headersTimeoutMs: 400,
  bodyTimeoutMs: 400,
  retry: { baseDelayMs: 10, maxDelayMs: 40, maxRetryAfterMs: 300 },
  random: () => 0.5,
  log: logged.log,
});
afterAll(() => forwarder.close());

let server: LocalServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
  logged.entries.length = 0;
});

async function upstream(handler: Parameters<typeof startLocalServer>[0], options?: Parameters<typeof startLocalServer>[1]): Promise<UpstreamTarget> {
  server = await startLocalServer(handler, options);
  return targetFor({ endpoint: server.url, region: 'us-east-1', ...CREDENTIALS }, 'bkt');
}

function get(target: UpstreamTarget, extra: Partial<ForwardRequest> = {}): ForwardRequest {
  return { target, method: 'GET', objectKey: 'k', query: [], headers: {}, body: null, retry: true, ...extra };
}

/** The one log line about an upstream error answer. */
function errorAnswerLogged(): LogEntry {
  const entries = logged.find('upstream error answer');
  expect(entries).toHaveLength(1);
  expect(entries[0]!.level).toBe('warn');
  return entries[0]!;
}

/** Neither the client's error nor the log ever carries the upstream credentials. */
function expectNoCredentials(error: S3Error): void {
  const everything = `${error.message} ${JSON.stringify(error.details)} ${JSON.stringify(error.headers)} ${JSON.stringify(logged.entries)}`;
  expect(everything).not.toContain(CREDENTIALS.secretAccessKey);
  expect(everything).not.toContain(CREDENTIALS.accessKeyId);
}

/** The client-facing message names no endpoint and repeats none of the upstream's words. */
function expectGatewayWordsOnly(error: S3Error): void {
  expect(error.message).not.toContain(server!.url);
  expect(error.message).not.toContain('127.0.0.1');
  expect(error.message).not.toContain(UPSTREAM_MESSAGE);
  expectNoCredentials(error);
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

  it('gives up after 3 attempts: a non-S3 503 page becomes ServiceUnavailable; the upstream is named in the log only', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'text/html', 'retry-after': '0' });
      res.end('<html>maintenance</html>');
    });
    const error = await s3ErrorOf(forwarder.forward(get(target, { requestId: 'req-503' })));
    expect(error).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
    expect(error.message).toContain('HTTP 503');
    expectGatewayWordsOnly(error);
    expect(error.message).not.toContain('maintenance');
    expect(error.headers['retry-after']).toBe('0');
    expect(server!.requests).toHaveLength(3);
    // Only the final answer is reported, with everything the operator needs.
    expect(errorAnswerLogged().fields).toMatchObject({
      requestId: 'req-503',
      upstream: server!.url,
      method: 'GET',
      status: 503,
      upstreamRequestId: null,
      body: '<html>maintenance</html>',
    });
  });

  it('turns an upstream S3 error document (e.g. SlowDown) into the same code with the gateway message once retries are exhausted', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/xml', 'transfer-encoding': 'chunked', 'x-amz-request-id': 'up-1', 'retry-after': '0' });
      res.end(S3_XML_ERROR('SlowDown'));
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'SlowDown', status: 503, message: 'Please reduce your request rate.' });
    expect(error.headers).toEqual({ 'retry-after': '0' });
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(3);
    const entry = errorAnswerLogged();
    expect(entry.fields).toMatchObject({ upstream: server!.url, status: 503, upstreamRequestId: 'up-1' });
    expect(entry.fields.body).toContain('<Code>SlowDown</Code>');
    expect(entry.fields.body).toContain(UPSTREAM_MESSAGE);
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
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(3);
    const entries = logged.find('upstream unreachable');
    expect(entries).toHaveLength(1);
    expect(entries[0]!.fields).toMatchObject({ upstream: server!.url, method: 'GET' });
  });

  it('does not retry requests with a body or without the retry flag', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(502);
      res.end();
    });
    await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(server!.requests).toHaveLength(1);
    await s3ErrorOf(forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(Buffer.from('data')), retry: true })));
    expect(server!.requests).toHaveLength(2);
    expect(server!.requests[1]!.body.toString()).toBe('data');
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
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(1);
    expect(errorAnswerLogged().fields).toMatchObject({ upstream: `RunPod EU-RO-1 (${server!.url})`, status: 507 });
  });

  it('maps 507 from a generic S3 upstream to InsufficientStorage without RunPod advice', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(507);
      res.end();
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'InsufficientStorage', status: 507 });
    expect(error.message).not.toMatch(/RunPod/);
    expectGatewayWordsOnly(error);
  });

  it('keeps the code and status of an S3 4xx error, with the gateway message and the upstream document in the log', async () => {
    const xml = S3_XML_ERROR('NoSuchKey', '<Key>k</Key><RequestId>r1</RequestId><HostId>host-7</HostId>');
    const target = await upstream((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/xml', 'x-amz-request-id': 'r1' });
      res.end(xml);
    });
    const error = await s3ErrorOf(forwarder.forward(get(target, { requestId: 'gw-1' })));
    expect(error).toMatchObject({ code: 'NoSuchKey', status: 404, message: 'The specified key does not exist.' });
    // Of the document's details, only those describing the client's own request are kept.
    expect(error.details).toEqual({ Key: 'k' });
    expect(error.toXml('/bkt/k', 'gw-1')).not.toMatch(/r1|host-7|upstream-only/);
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(1);
    expect(errorAnswerLogged().fields).toEqual({ requestId: 'gw-1', upstream: server!.url, method: 'GET', status: 404, upstreamRequestId: 'r1', body: xml });
  });

  it('keeps only the allowlisted detail elements of an upstream error document', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/xml' });
      res.end(
        S3_XML_ERROR(
          'EntityTooSmall',
          '<ProposedSize>10</ProposedSize><MinSizeAllowed>5242880</MinSizeAllowed><PartNumber>1</PartNumber><ETag>&quot;e&quot;</ETag>' +
            '<Endpoint>node-7.internal</Endpoint><StringToSign>AWS4-HMAC-SHA256</StringToSign><CanonicalRequest>GET</CanonicalRequest><AWSAccessKeyId>x</AWSAccessKeyId>',
        ),
      );
    });
    const error = await s3ErrorOf(forwarder.forward(get(target, { method: 'POST', retry: false })));
    expect(error).toMatchObject({ code: 'EntityTooSmall', status: 400, message: 'Your proposed upload is smaller than the minimum allowed object size.' });
    expect(error.details).toEqual({ ProposedSize: '10', MinSizeAllowed: '5242880', PartNumber: '1', ETag: '"e"' });
    expectGatewayWordsOnly(error);
  });

  it('answers a code the catalog does not know with that code, its status, and a message of the gateway', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(409, { 'content-type': 'application/xml' });
      res.end(S3_XML_ERROR('InvalidObjectState'));
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'InvalidObjectState', status: 409 });
    expect(error.message).toBe('The storage service answered InvalidObjectState.');
    expectGatewayWordsOnly(error);
  });

  it.each(['SignatureDoesNotMatch', 'InvalidAccessKeyId', 'RequestTimeTooSkewed', 'XAmzContentSHA256Mismatch'])(
    'answers BadGateway when the upstream refuses the gateway credentials or signature (%s), never as if it were the client',
    async (code) => {
      const target = await upstream((_req, res) => {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end(S3_XML_ERROR(code, `<AWSAccessKeyId>${CREDENTIALS.accessKeyId}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256</StringToSign>`));
      });
      const error = await s3ErrorOf(forwarder.forward(get(target)));
      expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
      expect(error.message).toContain(`(${code})`);
      expect(error.message).toMatch(/operator should check the gateway's upstream credentials/);
      expect(error.details).toEqual({});
      expect(error.message).not.toContain(server!.url);
      expect(error.message).not.toContain(UPSTREAM_MESSAGE);
      expect(error.message).not.toContain(CREDENTIALS.accessKeyId);
      expect(error.message).not.toContain(CREDENTIALS.secretAccessKey);
      expect(errorAnswerLogged().fields).toMatchObject({ upstream: server!.url, status: 403 });
      expect(server!.requests).toHaveLength(1);
    },
  );

  it('answers BadGateway for an upstream redirect, never passing the redirect on', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(301, { 'content-type': 'application/xml', location: 'http://elsewhere.internal/' });
      res.end(S3_XML_ERROR('PermanentRedirect', '<Endpoint>elsewhere.internal</Endpoint><Bucket>bkt</Bucket>'));
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toMatch(/redirected the request \(PermanentRedirect\)/);
    expect(error.message).not.toContain('elsewhere.internal');
    expect(error.details).toEqual({});
    expect(error.headers).not.toHaveProperty('location');
    expectGatewayWordsOnly(error);
  });

  it('streams a 304 Not Modified on as an answer, not an error', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(304, { etag: '"e"', 'x-amz-request-id': 'r304' });
      res.end();
    });
    const response = await forwarder.forward(get(target, { headers: { 'if-none-match': '"e"' } }));
    expect(response.status).toBe(304);
    expect(response.headers.etag).toBe('"e"');
    expect(response.headers).not.toHaveProperty('x-amz-request-id');
    await readAll(response.body);
    expect(logged.entries).toHaveLength(0);
  });

  it.each([
    [404, 'NoSuchKey'],
    [403, 'AccessDenied'],
    [412, 'PreconditionFailed'],
    [400, 'InvalidRequest'],
  ])('keeps the status of a HEAD %i, which has no body, with the code S3 uses for it (%s)', async (status, code) => {
    const target = await upstream((_req, res) => {
      res.writeHead(status, { 'x-amz-request-id': 'rh' });
      res.end();
    });
    const error = await s3ErrorOf(forwarder.forward(get(target, { method: 'HEAD' })));
    expect(error).toMatchObject({ code, status });
    expectGatewayWordsOnly(error);
    expect(errorAnswerLogged().fields).toMatchObject({ method: 'HEAD', status, upstreamRequestId: 'rh', body: null });
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
    const page = '<!doctype html><title>500 Internal Server Error</title>';
    const target = await upstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/html' });
      res.end(page);
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toContain('HTTP 500');
    expect(error.message).not.toContain('Internal Server Error');
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(3);
    expect(errorAnswerLogged().fields).toMatchObject({ upstream: server!.url, status: 500, body: page });
  });

  it('retries an S3 InternalError and answers InternalError with the gateway message once retries are exhausted', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end(S3_XML_ERROR('InternalError'));
    });
    const error = await s3ErrorOf(forwarder.forward(get(target)));
    expect(error).toMatchObject({ code: 'InternalError', status: 500, message: 'We encountered an internal error. Please try again.' });
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(3);
    expect(errorAnswerLogged().fields.body).toContain(UPSTREAM_MESSAGE);
  });

  it('logs only the first 4 KiB of a large error body', async () => {
    const page = `<html>${'x'.repeat(10_000)}</html>`;
    const target = await upstream((_req, res) => {
      res.writeHead(502, { 'content-type': 'text/html' });
      res.end(page);
    });
    await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(errorAnswerLogged().fields.body).toBe(page.slice(0, 4096));
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

  it('keeps a HEAD 5xx status (after retries): a HEAD answer has no body to judge', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const error = await s3ErrorOf(forwarder.forward(get(target, { method: 'HEAD' })));
    expect(error).toMatchObject({ code: 'InternalError', status: 500 });
    expectGatewayWordsOnly(error);
    expect(server!.requests).toHaveLength(3);
    expect(errorAnswerLogged().fields).toMatchObject({ method: 'HEAD', status: 500, body: null });
  });

  it('does not retry a 500 for a request with a body', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    await s3ErrorOf(forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(Buffer.from('data')) })));
    expect(server!.requests).toHaveLength(1);
  });
});

describe('network failures', () => {
  it('connection refused -> BadGateway; the endpoint is named in the log only, the credentials nowhere', async () => {
    const target = await upstream(() => {});
    const url = server!.url;
    await server!.close();
    server = undefined;
    const error = await s3ErrorOf(forwarder.forward(get(target, { requestId: 'req-refused' })));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toMatch(/^The storage service of this bucket refused the connection; /);
    expect(error.message).not.toContain(url);
    expect(error.message).not.toContain(target.endpoint.host);
    expectNoCredentials(error);
    const entries = logged.find('upstream unreachable');
    expect(entries).toHaveLength(1);
    expect(entries[0]!.level).toBe('warn');
    expect(entries[0]!.fields).toEqual({ requestId: 'req-refused', upstream: url, method: 'GET', error: 'ECONNREFUSED' });
  });

  it('an upstream that cannot be found (DNS) -> BadGateway without the host name', async () => {
    const target = targetFor({ endpoint: 'http://no-such-host.invalid:9', region: 'us-east-1', ...CREDENTIALS }, 'bkt');
    const error = await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(error).toMatchObject({ code: 'BadGateway', status: 502 });
    expect(error.message).toMatch(/could not be found \(DNS\)/);
    expect(error.message).not.toContain('no-such-host');
    expectNoCredentials(error);
    expect(logged.find('upstream unreachable')[0]!.fields).toMatchObject({
      upstream: 'http://no-such-host.invalid:9',
      error: expect.stringMatching(/^(ENOTFOUND|EAI_AGAIN)$/),
    });
  });

  it('an upstream that does not answer in time -> GatewayTimeout', async () => {
    const target = await upstream(() => {
      // never answers
    });
    const started = Date.now();
    const error = await s3ErrorOf(forwarder.forward(get(target, { retry: false })));
    expect(error).toMatchObject({ code: 'GatewayTimeout', status: 504 });
    expect(error.message).toMatch(/did not answer in time/);
    expectGatewayWordsOnly(error);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(logged.find('upstream unreachable')[0]!.fields).toMatchObject({ upstream: server!.url, error: 'UND_ERR_HEADERS_TIMEOUT' });
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
    const abort = new Cancellation();
    const body = new Readable({ read() {} });
    body.push(Buffer.alloc(1000));
    const pending = forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(body, { length: 1_000_000 }), signal: abort, retry: false }));
    await waitFor(() => server!.requests.length === 1);
    const reason = new S3Error('RequestTimeout', 'The client closed the connection.');
    abort.cancel(reason);
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
    const abort = new Cancellation();
    const response = await forwarder.forward(get(target, { signal: abort }));
    const reading = readAll(response.body);
    abort.cancel(new Error('client gone'));
    await expect(reading).rejects.toThrow();
    await waitFor(() => upstreamClosed);
  });

  it('an abort during the retry backoff stops retrying', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(503, { 'retry-after': '60' });
      res.end();
    });
    const slowRetries = new UpstreamForwarder({ retry: { maxRetryAfterMs: 10_000 } });
    const abort = new Cancellation();
    const pending = slowRetries.forward(get(target, { signal: abort }));
    await waitFor(() => server!.requests.length === 1);
    const started = Date.now();
    abort.cancel(new Error('client gone'));
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
    const pending = forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(body, { length: 100_000 }), retry: false }));
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
    const pending = forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(body, { length: 20_000 }), retry: false }));
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
    await expect(forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(failing, { length: 0 }) }))).rejects.toMatchObject({ code: 'BadDigest' });
    expect(server!.requests).toHaveLength(0);

    const ok = await forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(Buffer.alloc(0)) }));
    expect(ok.status).toBe(200);
    expect(server!.requests[0]!.headers['content-length']).toBe('0');
  });

  it('refuses a body longer than its declared length, sending nothing of it as a whole object', async () => {
    const target = await upstream((_req, res) => {
      res.writeHead(200);
      res.end();
    });
    await expect(forwarder.forward(get(target, { method: 'PUT', body: upstreamBody(Readable.from([Buffer.from('x')]), { length: 0 }) }))).rejects.toMatchObject(
      {
        code: 'IncompleteBody',
      },
    );
    expect(server!.requests).toHaveLength(0);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
