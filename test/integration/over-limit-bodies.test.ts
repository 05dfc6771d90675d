/**
 * Bodies the gateway refuses while the client is still sending them (over a size limit, or found
 * bad part-way) must reach the client as their S3 error, every time: quickly or slowly sent, with
 * `Connection: close` or keep-alive. Closing the socket while request bytes are still unread makes
 * the kernel answer with a reset, and a reset destroys the error response the client had not read
 * yet ("connection closed after 0 bytes"). These cases once failed only now and then, depending on
 * how far the client got before the gateway closed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { errorCode, exchange, receiveAll, serializeRequest, type ExchangeOptions, type RawRequest } from '../helpers/raw-http.js';
import { signedHeaders } from '../helpers/sign.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'over-limit';
const TWO_MIB = 2 * 1024 * 1024;

describe('over-limit and refused bodies get their S3 error, not a reset', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let writer: CreatedKey;
  let reader: CreatedKey;
  let port: number;
  let uploadId: string;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_ACCESS_LOG: 'off' });
    writer = await gateway.createKey({ name: 'writer', permissions: ['read', 'write', 'delete'] });
    reader = await gateway.createKey({ name: 'reader', bucket: BUCKET, preset: 'read-only' });
    port = Number(new URL(gateway.url).port);
    const host = `127.0.0.1:${port}`;
    const created = await fetch(`${gateway.url}/${BUCKET}/object?uploads`, {
      method: 'POST',
      headers: signedHeaders(writer, host, 'POST', `/${BUCKET}/object?uploads`),
    });
    uploadId = encodeURIComponent(/<UploadId>([^<]+)<\/UploadId>/.exec(await created.text())![1]!);
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  function request(key: CreatedKey, method: string, target: string, body: Buffer | undefined, extra: Record<string, string>, connection: string): RawRequest {
    const host = `127.0.0.1:${port}`;
    const headers = signedHeaders(key, host, method, target, { body, headers: extra });
    // aws4 adds (and signs) Host itself.
    return { method, target, headers: [...Object.entries(headers), ['Connection', connection]], body };
  }

  /** An aws-chunked body (unsigned chunks) whose chunks carry `size` bytes, more than it declares. */
  function lyingAwsChunked(size: number): { body: Buffer; headers: Record<string, string> } {
    const chunk = 64 * 1024;
    const parts: Buffer[] = [];
    for (let at = 0; at < size; at += chunk) parts.push(Buffer.from(`${chunk.toString(16)}\r\n`), Buffer.alloc(chunk, ' '), Buffer.from('\r\n'));
    parts.push(Buffer.from('0\r\n\r\n'));
    return {
      body: Buffer.concat(parts),
      headers: {
        'content-encoding': 'aws-chunked',
        'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        'x-amz-decoded-content-length': '1000',
      },
    };
  }

  const overTwoMiB = Buffer.from(`<Delete><Object><Key>k</Key></Object>${' '.repeat(TWO_MIB)}</Delete>`);
  const completeOverTwoMiB = Buffer.from(`<CompleteMultipartUpload>${' '.repeat(TWO_MIB)}</CompleteMultipartUpload>`);
  const cases: Array<{ label: string; code: string; build: (connection: string) => RawRequest }> = [
    {
      label: 'DeleteObjects over 2 MiB',
      code: 'MaxMessageLengthExceeded',
      build: (connection) => request(writer, 'POST', `/${BUCKET}?delete`, overTwoMiB, {}, connection),
    },
    {
      label: 'CompleteMultipartUpload over 2 MiB',
      code: 'MaxMessageLengthExceeded',
      // A real upload (an id the gateway did not issue is refused before its size is looked at).
      build: (connection) => request(writer, 'POST', `/${BUCKET}/object?uploadId=${uploadId}`, completeOverTwoMiB, {}, connection),
    },
    {
      label: 'DeleteObjects whose aws-chunked body outgrows its declared length (found while reading)',
      code: 'IncompleteBody',
      build: (connection) => {
        const { body, headers } = lyingAwsChunked(3 * 1024 * 1024);
        // Content-Length unsigned (SigV4 allows it): the body is framing plus data, not the signed payload.
        const signed = request(writer, 'POST', `/${BUCKET}?delete`, undefined, headers, connection);
        return { ...signed, headers: [...signed.headers, ['Content-Length', String(body.length)]], body };
      },
    },
    {
      label: 'PutObject of 6 MiB with a read-only key',
      code: 'AccessDenied',
      build: (connection) => request(reader, 'PUT', `/${BUCKET}/refused.bin`, Buffer.alloc(6 * 1024 * 1024, 'x'), {}, connection),
    },
  ];

  const pacing: Array<[string, ExchangeOptions]> = [
    ['sent in one write', {}],
    ['sent slowly', { pieceBytes: 64 * 1024, pauseMs: 15 }],
  ];

  for (const { label, code, build } of cases) {
    for (const [pace, options] of pacing) {
      for (const connection of ['close', 'keep-alive']) {
        it(`${label}, ${pace}, Connection: ${connection}`, async () => {
          const rounds = options.pieceBytes === undefined ? 6 : 2;
          for (let round = 0; round < rounds; round++) {
            const response = await exchange(port, build(connection), { ...options, untilResponse: connection === 'keep-alive' });
            expect(`${response.status} ${errorCode(response)}`, `round ${round}`).toMatch(new RegExp(`^4\\d\\d ${code}$`));
          }
        });
      }
    }
  }

  it('keeps a keep-alive connection usable after a refused body that was sent in full', async () => {
    // Two requests on one connection: the refused one's body is read and discarded, so the second
    // request's bytes are parsed as a request (not as the rest of a body).
    const first = request(writer, 'POST', `/${BUCKET}?delete`, overTwoMiB, {}, 'keep-alive');
    const host = `127.0.0.1:${port}`;
    const second: RawRequest = {
      method: 'GET',
      target: '/_health',
      headers: [
        ['Host', host],
        ['Connection', 'close'],
      ],
    };
    const raw = await receiveAll(port, Buffer.concat([serializeRequest(first), serializeRequest(second)]));
    expect(raw).toMatch(/^HTTP\/1\.1 400 [^\r]*\r\n[\s\S]*MaxMessageLengthExceeded[\s\S]*HTTP\/1\.1 200 [\s\S]*"status":"ok"/);
  });

  it.each([
    ['a health check', 'GET', '/_health'],
    ['a CORS preflight', 'OPTIONS', `/${BUCKET}/object`],
  ])('refuses %s that sends a body like any unauthenticated sender, instead of reading it without a limit', async (_, method, target) => {
    // 64 MiB announced, 1 MiB sent: the answer comes at once and the connection does not wait for the rest.
    const host = `127.0.0.1:${port}`;
    const response = await exchange(
      port,
      {
        method,
        target,
        headers: [
          ['Host', host],
          ['Origin', 'https://app.example'],
          ['Access-Control-Request-Method', 'PUT'],
          ['Content-Length', String(64 * 1024 * 1024)],
        ],
        body: Buffer.alloc(1024 * 1024, 'x'),
      },
      { untilResponse: true, timeoutMs: 10_000 },
    );
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    expect(errorCode(response)).toMatch(/^(InvalidBucketName|InvalidRequest)$/);
  });
});
