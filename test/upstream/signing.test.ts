/**
 * Upstream request lines and signatures. The signature check is independent of aws4: a capture
 * server records exactly what went over the wire, and @smithy/signature-v4 (the AWS SDK's signer)
 * recomputes the signature from those bytes. This covers the awkward keys no test S3 server
 * validates (moto miscomputes them, s3rver skips SigV4 checks).
 */
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYGATE_USER_AGENT, UpstreamForwarder } from '../../src/upstream/forward.js';
import { currentAmzDate, encodeObjectKey, encodeQuery, upstreamPath } from '../../src/upstream/signing.js';
import { readAll, startLocalServer, targetFor, upstreamBody, type LocalServer } from './fixtures.js';

class NodeSha256 {
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
  reset(): void {}
}

const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

describe('encoding', () => {
  it('encodes keys byte-wise the S3 way, keeping slashes', () => {
    expect(encodeObjectKey('a b+c%d~e_f-g.h/i')).toBe('a%20b%2Bc%25d~e_f-g.h/i');
    expect(encodeObjectKey('uni ✓/файл')).toBe('uni%20%E2%9C%93/%D1%84%D0%B0%D0%B9%D0%BB');
    expect(encodeObjectKey("q'(x)*!?#&=")).toBe('q%27%28x%29%2A%21%3F%23%26%3D');
    expect(encodeObjectKey('double//slash/')).toBe('double//slash/');
    expect(encodeObjectKey('small/object-001.bin')).toBe('small/object-001.bin');
    expect(encodeObjectKey('café')).toBe('caf%C3%A9');
    expect(
      encodeQuery([
        ['prefix', 'a/b c'],
        ['uploads', ''],
      ]),
    ).toBe('prefix=a%2Fb%20c&uploads');
  });

  it('encodes query pairs in order, bare names for empty values', () => {
    expect(encodeQuery([['uploads', '']])).toBe('uploads');
    expect(
      encodeQuery([
        ['prefix', 'a b+c/d'],
        ['list-type', '2'],
        ['start-after', '~%'],
      ]),
    ).toBe('prefix=a%20b%2Bc%2Fd&list-type=2&start-after=~%25');
  });

  it('builds path-style paths for object, bucket and service level, under an endpoint path prefix', () => {
    const target = targetFor({ endpoint: 'http://127.0.0.1:9/', region: 'r', ...CREDENTIALS }, 'bkt');
    expect(upstreamPath(target, 'k ey', true)).toBe('/bkt/k%20ey');
    expect(upstreamPath(target, null, true)).toBe('/bkt');
    expect(upstreamPath(target, null, false)).toBe('/');
    const prefixed = targetFor({ endpoint: 'http://127.0.0.1:9/s3/', region: 'r', ...CREDENTIALS }, 'bkt');
    expect(upstreamPath(prefixed, 'k', true)).toBe('/s3/bkt/k');
  });
});

describe('signatures as the AWS SDK computes them', () => {
  let server: LocalServer;
  const forwarder = new UpstreamForwarder();

  beforeAll(async () => {
    server = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
  });
  afterAll(async () => {
    await forwarder.close();
    await server.close();
  });

  async function expectSdkSignature(index: number, region: string): Promise<void> {
    const seen = server.requests[index]!;
    const authorization = String(seen.headers.authorization);
    const signedHeaderNames = /SignedHeaders=([^,]+)/.exec(authorization)![1]!.split(';');
    const headers: Record<string, string> = {};
    for (const name of signedHeaderNames) headers[name] = String(seen.headers[name]);
    const [rawPath, rawQuery = ''] = seen.url.split(/\?(.*)/s, 2) as [string, string?];
    const query: Record<string, string> = {};
    for (const pair of rawQuery.split('&').filter(Boolean)) {
      const [name, value = ''] = pair.split(/=(.*)/s, 2) as [string, string?];
      query[decodeURIComponent(name)] = decodeURIComponent(value);
    }
    const signer = new SignatureV4({ credentials: CREDENTIALS, region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
    const amzDate = headers['x-amz-date']!;
    const signingDate = new Date(
      `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
    );
    const signed = await signer.sign(
      { method: seen.method, protocol: 'http:', hostname: '127.0.0.1', port: server.port, path: rawPath, query, headers, body: undefined },
      { signingDate },
    );
    const expected = /Signature=([0-9a-f]+)/.exec(String(signed.headers.authorization))![1];
    expect(/Signature=([0-9a-f]+)/.exec(authorization)![1], `${seen.method} ${seen.url}`).toBe(expected);
  }

  const awkwardKeys = [
    'plain.txt',
    'uni ✓ é/файл.txt',
    'space and+plus=eq.txt',
    'pct%20lit%2Fx',
    'tilde~x',
    'double//slash',
    '/leading',
    "q'(x)*!.txt",
    'a?b#c&d',
    'long-'.repeat(180),
  ].map((key) => ({
    key,
    label: JSON.stringify(key.length > 40 ? `${key.slice(0, 20)}…(${key.length} chars)` : key),
  }));

  it.each(awkwardKeys)('GET $label with a query is signed exactly like the SDK signs it', async ({ key }) => {
    const target = targetFor({ endpoint: server.url, region: 'EU-RO-1', ...CREDENTIALS }, 'vol123');
    const response = await forwarder.forward({
      target,
      method: 'GET',
      objectKey: key,
      query: [
        ['response-content-disposition', 'attachment; filename="a b+c.txt"'],
        ['versionId', '~v/1'],
      ],
      headers: { range: 'bytes=0-9', 'if-none-match': '"abc"' },
      userAgent: 'test-client/1.0',
      body: null,
    });
    await readAll(response.body);
    const index = server.requests.length - 1;
    expect(server.requests[index]!.url.startsWith(`/vol123/${encodeObjectKey(key)}?`)).toBe(true);
    expect(server.requests[index]!.headers['user-agent']).toBe(`${KEYGATE_USER_AGENT} (+test-client/1.0)`);
    // A bodiless request says (and signs) the empty body's hash, and names its host once.
    expect(server.requests[index]!.headers['x-amz-content-sha256']).toBe(createHash('sha256').update('').digest('hex'));
    expect(String(server.requests[index]!.headers.authorization)).toMatch(/SignedHeaders=[^,]*\bx-amz-content-sha256\b/);
    expect(server.requests[index]!.headers.host).toBe(`127.0.0.1:${server.port}`);
    await expectSdkSignature(index, 'EU-RO-1');
  });

  it('signs a streamed PUT with UNSIGNED-PAYLOAD, metadata and the bucket-level and service-level paths', async () => {
    const target = targetFor({ endpoint: server.url, region: 'us-east-1', ...CREDENTIALS }, 'bkt');
    const body = Buffer.from('hello');
    const put = await forwarder.forward({
      target,
      method: 'PUT',
      objectKey: 'meta key+1',
      query: [],
      headers: { 'content-type': 'text/plain', 'x-amz-meta-colour': 'blue  and   green', 'content-md5': createHash('md5').update(body).digest('base64') },
      body: upstreamBody(body),
    });
    await readAll(put.body);
    const putIndex = server.requests.length - 1;
    expect(server.requests[putIndex]!.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
    await expectSdkSignature(putIndex, 'us-east-1');

    // A plain body the client signed by its SHA-256 keeps that hash, so the upstream checks it too.
    const sha256 = createHash('sha256').update(body).digest('hex');
    const hashed = await forwarder.forward({
      target,
      method: 'PUT',
      objectKey: 'hashed',
      query: [],
      headers: {},
      body: upstreamBody(body, { sha256: sha256.toUpperCase() }),
    });
    await readAll(hashed.body);
    expect(server.requests.at(-1)!.headers['x-amz-content-sha256']).toBe(sha256);
    await expectSdkSignature(server.requests.length - 1, 'us-east-1');

    for (const [bucketLevel, expectedUrl] of [
      [true, '/bkt?uploads'],
      [false, '/?uploads'],
    ] as const) {
      const response = await forwarder.forward({ target, method: 'GET', objectKey: null, bucketLevel, query: [['uploads', '']], headers: {}, body: null });
      await readAll(response.body);
      const index = server.requests.length - 1;
      expect(server.requests[index]!.url).toBe(expectedUrl);
      await expectSdkSignature(index, 'us-east-1');
    }
  });
});

describe('currentAmzDate (the X-Amz-Date upstream requests are signed with)', () => {
  it('is the current second in the ISO basic form, and moves with the clock', () => {
    expect(currentAmzDate(Date.UTC(2026, 11, 2, 17, 3, 45, 678))).toBe('20261202T170345Z');
    expect(currentAmzDate(Date.UTC(2026, 11, 2, 17, 3, 45, 999))).toBe('20261202T170345Z');
    expect(currentAmzDate(Date.UTC(2026, 11, 2, 17, 3, 46, 0))).toBe('20261202T170346Z');
    expect(currentAmzDate(Date.UTC(2027, 0, 1, 0, 0, 0, 0))).toBe('20270101T000000Z');
    expect(currentAmzDate()).toMatch(/^\d{8}T\d{6}Z$/);
  });
});
