/**
 * Forwarding against real S3 servers: moto validating every signature, and s3rver. Each upstream
 * is inspected directly (signed requests from the harness) so the gateway side is never its own
 * witness. A local capture server checks the headers the forwarder itself adds or removes.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Error } from '../../src/errors.js';
import { KEYGATE_USER_AGENT, UpstreamForwarder, type ForwardRequest, type UpstreamResponse } from '../../src/upstream/forward.js';
import { encodeObjectKey } from '../../src/upstream/signing.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';
import { startMoto, startS3rver, type TestUpstream } from '../helpers/upstreams.js';
import { capturingLog, generatedBody, readAll, readText, startLocalServer, targetFor, upstreamBody, type LocalServer } from './fixtures.js';

const KEYS = [
  'plain.txt',
  'dir/sub/file.bin',
  'tilde~x',
  'double//slash',
  '/leading',
  'uni ✓ é/файл.txt',
  'space and+plus=eq.txt',
  'pct%20lit%2Fx',
  "q'(x)*!.txt",
  'a?b#c&d',
  'semi;colon,comma',
];

interface UpstreamCase {
  name: string;
  start: () => Promise<TestUpstream>;
  keys: string[];
  /** Whether the server decodes aws-chunked trailers (and so stores the forwarded checksum). */
  storesTrailingChecksums: boolean;
  /** Whether the server drops an upload whose connection closed before Content-Length bytes arrived. */
  discardsTruncatedUploads: boolean;
  /** Whether the server implements ListParts and AbortMultipartUpload. */
  listsAndAbortsParts: boolean;
}

const UPSTREAMS: UpstreamCase[] = [
  {
    name: 'moto (validating signatures)',
    start: () => startMoto({ validateSignatures: true }),
    keys: KEYS,
    storesTrailingChecksums: true,
    discardsTruncatedUploads: true,
    listsAndAbortsParts: true,
  },
  {
    name: 's3rver',
    start: startS3rver,
    // s3rver cannot address '//' or a leading '/' (its router collapses them).
    keys: KEYS.filter((k) => !k.includes('//') && !k.startsWith('/')),
    storesTrailingChecksums: false,
    discardsTruncatedUploads: false,
    listsAndAbortsParts: false,
  },
];

const logged = capturingLog();
const forwarder = new UpstreamForwarder({ log: logged.log });
afterAll(() => forwarder.close());

function crc32Base64(data: Buffer): string {
  const digest = Buffer.alloc(4);
  digest.writeUInt32BE(crc32(data));
  return digest.toString('base64');
}

describe.each(UPSTREAMS)('forwarding to $name', (upstreamCase) => {
  let upstream: TestUpstream;
  let target: UpstreamTarget;
  const BUCKET = 'roundtrip';

  beforeAll(async () => {
    upstream = await upstreamCase.start();
    await upstream.createBucket(BUCKET);
    target = targetFor(upstream, BUCKET);
  });
  afterAll(async () => {
    await upstream?.stop();
  });

  const send = (request: Partial<ForwardRequest> & Pick<ForwardRequest, 'method'>): Promise<UpstreamResponse> =>
    forwarder.forward({ target, objectKey: null, query: [], headers: {}, body: null, ...request });

  async function put(key: string, data: Buffer, headers: ForwardRequest['headers'] = {}): Promise<UpstreamResponse> {
    const response = await send({ method: 'PUT', objectKey: key, headers, body: upstreamBody(data) });
    const text = await readText(response.body);
    expect(response.status, text).toBe(200);
    return response;
  }

  it('PUT, GET, HEAD, Range GET, list, copy and delete an object with its metadata', async () => {
    const data = Buffer.from('The quick brown fox jumps over the lazy dog');
    const md5 = createHash('md5').update(data).digest();
    const stored = await put('docs/fox.txt', data, {
      'content-type': 'text/plain; charset=utf-8',
      'content-md5': md5.toString('base64'),
      'cache-control': 'max-age=60',
      'content-disposition': 'attachment; filename="fox.txt"',
      'x-amz-meta-colour': 'brown',
      'x-amz-meta-legs': '4',
    });
    expect(stored.headers.etag).toBe(`"${md5.toString('hex')}"`);

    const got = await send({ method: 'GET', objectKey: 'docs/fox.txt', retry: true });
    expect(got.status).toBe(200);
    expect((await readAll(got.body)).equals(data)).toBe(true);
    expect(got.headers).toMatchObject({
      'content-type': 'text/plain; charset=utf-8',
      'x-amz-meta-colour': 'brown',
      'x-amz-meta-legs': '4',
      etag: `"${md5.toString('hex')}"`,
      'content-length': String(data.length),
    });
    expect(got.headers['last-modified']).toBeDefined();

    const head = await send({ method: 'HEAD', objectKey: 'docs/fox.txt', retry: true });
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(data.length));
    expect(await readAll(head.body)).toHaveLength(0);

    const range = await send({ method: 'GET', objectKey: 'docs/fox.txt', headers: { range: 'bytes=4-8' }, retry: true });
    expect(range.status).toBe(206);
    expect(range.headers['content-range']).toBe(`bytes 4-8/${data.length}`);
    expect(await readText(range.body)).toBe('quick');

    const notModified = await send({ method: 'GET', objectKey: 'docs/fox.txt', headers: { 'if-none-match': `"${md5.toString('hex')}"` }, retry: true });
    expect(notModified.status).toBe(304);
    await readAll(notModified.body);

    const copyKey = 'docs/fox copy+1.txt';
    const copy = await send({
      method: 'PUT',
      objectKey: copyKey,
      headers: {
        'x-amz-copy-source': `/${BUCKET}/docs/fox.txt`,
        'x-amz-metadata-directive': 'REPLACE',
        'x-amz-meta-colour': 'red',
        'content-type': 'text/plain',
      },
    });
    expect(copy.status, await readText(copy.body)).toBe(200);
    const copied = await upstream.request('GET', `/${BUCKET}/${encodeObjectKey(copyKey)}`);
    expect(copied.body.equals(data)).toBe(true);
    expect(copied.headers['x-amz-meta-colour']).toBe('red');

    const list = await send({
      method: 'GET',
      query: [
        ['list-type', '2'],
        ['prefix', 'docs/fox '],
      ],
      retry: true,
    });
    const listXml = await readText(list.body);
    expect(list.status, listXml).toBe(200);
    expect([...listXml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => m[1])).toEqual([copyKey]);

    for (const key of ['docs/fox.txt', copyKey]) {
      const deleted = await send({ method: 'DELETE', objectKey: key, retry: true });
      expect(deleted.status).toBe(204);
      await readAll(deleted.body);
    }
    expect((await upstream.request('HEAD', `/${BUCKET}/docs/fox.txt`)).status).toBe(404);
  });

  it('round-trips every key the server can address, byte for byte', async () => {
    for (const key of upstreamCase.keys) {
      const data = Buffer.from(`content of ${key}`);
      await put(key, data);
      const direct = await upstream.request('GET', `/${BUCKET}/${encodeObjectKey(key)}`);
      expect(direct.status, key).toBe(200);
      expect(direct.body.toString(), key).toBe(data.toString());
      const got = await send({ method: 'GET', objectKey: key, retry: true });
      expect(await readText(got.body), key).toBe(data.toString());
    }
    const list = await send({
      method: 'GET',
      query: [
        ['list-type', '2'],
        ['max-keys', '1000'],
      ],
      retry: true,
    });
    const xml = await readText(list.body);
    const listed = [...xml.matchAll(/<Key>([^<]*)<\/Key>/g)].map((m) => decodeXml(m[1]!));
    for (const key of upstreamCase.keys) expect(listed, key).toContain(key);
  });

  it('lists the buckets at service level and answers bucket-level HEAD', async () => {
    const buckets = await send({ method: 'GET', bucketLevel: false, retry: true });
    expect(await readText(buckets.body)).toContain(`<Name>${BUCKET}</Name>`);
    const head = await send({ method: 'HEAD', retry: true });
    expect(head.status).toBe(200);
    await readAll(head.body);
  });

  it("turns the upstream's error answers into S3 errors with the gateway's message", async () => {
    const missing = await send({ method: 'GET', objectKey: 'no/such key', retry: true }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(missing).toBeInstanceOf(S3Error);
    expect(missing).toMatchObject({ code: 'NoSuchKey', status: 404, message: 'The specified key does not exist.' });
    const headMissing = await send({ method: 'HEAD', objectKey: 'no/such key', retry: true }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(headMissing).toMatchObject({ code: 'NoSuchKey', status: 404 });
    // The operator's log names this upstream and has its own document.
    const entry = logged
      .find('upstream error answer')
      .find((e) => e.fields.upstream === upstream.endpoint && e.fields.method === 'GET' && e.fields.status === 404);
    expect(entry?.fields.body).toContain('NoSuchKey');
    expect((missing as S3Error).message).not.toContain(upstream.endpoint);

    // The upstream refusing the gateway's own key is the operator's problem, not the client's.
    const wrongKey = targetFor({ ...upstream, accessKeyId: 'AKIAUNKNOWNUNKNOWN00' }, BUCKET);
    const refused = await forwarder.forward({ target: wrongKey, method: 'GET', objectKey: 'anything', query: [], headers: {}, body: null }).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(S3Error);
    expect(refused).toMatchObject({ code: 'BadGateway', status: 502 });
    expect((refused as S3Error).message).toMatch(/refused the gateway's own request \((InvalidAccessKeyId|SignatureDoesNotMatch)\)/);
    expect((refused as S3Error).message).not.toContain(upstream.endpoint);
    expect((refused as S3Error).message).not.toContain('AKIAUNKNOWNUNKNOWN00');
    expect(JSON.stringify(logged.entries)).not.toContain(upstream.secretAccessKey);
  });

  it('forwards a checksum sent as header, and the SDK algorithm with it', async () => {
    const data = Buffer.from('checksummed by header');
    const sha256 = createHash('sha256').update(data).digest('base64');
    await put('checksum-header', data, { 'x-amz-checksum-sha256': sha256, 'x-amz-sdk-checksum-algorithm': 'SHA256' });
    const head = await upstream.request('HEAD', `/${BUCKET}/checksum-header`, { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
    expect(head.status).toBe(200);
    if (upstreamCase.storesTrailingChecksums) expect(head.headers['x-amz-checksum-sha256']).toBe(sha256);
  });

  it.each([0, 10, 64 * 1024, 200_000])(
    'forwards a trailing CRC32 with a %i-byte body (or drops it where unsupported) and stores the exact bytes',
    async (size) => {
      const data = Buffer.from(Array.from({ length: size }, (_, i) => (i * 7) & 0xff));
      const checksum = crc32Base64(data);
      // As the operation's header groups leave them: content-encoding "aws-chunked" alone and x-amz-trailer are gone.
      const response = await send({
        method: 'PUT',
        objectKey: `trailer-${size}`,
        headers: { 'x-amz-sdk-checksum-algorithm': 'CRC32' },
        body: upstreamBody(data, { checksums: { 'x-amz-checksum-crc32': checksum }, trailerChecksum: 'x-amz-checksum-crc32' }),
      });
      expect(response.status, await readText(response.body)).toBe(200);
      const stored = await upstream.request('GET', `/${BUCKET}/trailer-${size}`, { headers: { 'x-amz-checksum-mode': 'ENABLED' } });
      expect(stored.body.length).toBe(size);
      expect(stored.body.equals(data)).toBe(true);
      expect(stored.headers['content-encoding']).toBeUndefined();
      if (upstreamCase.storesTrailingChecksums) {
        expect(response.headers['x-amz-checksum-crc32']).toBe(checksum);
        expect(stored.headers['x-amz-checksum-crc32']).toBe(checksum);
      }
    },
  );

  it('uploads 3 parts with trailing checksums and completes the multipart upload', async () => {
    const key = 'multi/part object';
    const create = await send({
      method: 'POST',
      objectKey: key,
      query: [['uploads', '']],
      headers: { 'x-amz-checksum-algorithm': 'CRC32', 'content-type': 'application/x-test' },
    });
    const createXml = await readText(create.body);
    expect(create.status, createXml).toBe(200);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(createXml)![1]!;

    const parts = [Buffer.alloc(5 * 1024 * 1024, 'a'), Buffer.alloc(5 * 1024 * 1024, 'b'), Buffer.from('tail of the object')];
    const completed: string[] = [];
    for (const [index, data] of parts.entries()) {
      const checksum = crc32Base64(data);
      const response = await send({
        method: 'PUT',
        objectKey: key,
        query: [
          ['partNumber', String(index + 1)],
          ['uploadId', uploadId],
        ],
        headers: { 'x-amz-sdk-checksum-algorithm': 'CRC32' },
        body: upstreamBody(data, { checksums: { 'x-amz-checksum-crc32': checksum }, trailerChecksum: 'x-amz-checksum-crc32' }),
      });
      expect(response.status, await readText(response.body)).toBe(200);
      expect(response.headers.etag).toBe(`"${createHash('md5').update(data).digest('hex')}"`);
      if (upstreamCase.storesTrailingChecksums) expect(response.headers['x-amz-checksum-crc32']).toBe(checksum);
      const checksumElement = upstreamCase.storesTrailingChecksums ? `<ChecksumCRC32>${checksum}</ChecksumCRC32>` : '';
      completed.push(`<Part><PartNumber>${index + 1}</PartNumber><ETag>${String(response.headers.etag)}</ETag>${checksumElement}</Part>`);
    }

    if (upstreamCase.listsAndAbortsParts) {
      const listParts = await send({ method: 'GET', objectKey: key, query: [['uploadId', uploadId]], retry: true });
      const partsXml = await readText(listParts.body);
      expect(listParts.status, partsXml).toBe(200);
      expect(partsXml.match(/<PartNumber>/g)).toHaveLength(3);
    }

    const completeXml = Buffer.from(`<CompleteMultipartUpload>${completed.join('')}</CompleteMultipartUpload>`);
    const complete = await send({
      method: 'POST',
      objectKey: key,
      query: [['uploadId', uploadId]],
      headers: { 'content-type': 'application/xml' },
      body: upstreamBody(completeXml),
    });
    const completeText = await readText(complete.body);
    expect(complete.status, completeText).toBe(200);
    expect(completeText).toContain('CompleteMultipartUploadResult'.slice(0, 16));

    const whole = Buffer.concat(parts);
    const got = await send({ method: 'GET', objectKey: key, retry: true });
    const body = await readAll(got.body);
    expect(body.length).toBe(whole.length);
    expect(createHash('sha256').update(body).digest('hex')).toBe(createHash('sha256').update(whole).digest('hex'));
    const straddling = await send({ method: 'GET', objectKey: key, headers: { range: `bytes=${5 * 1024 * 1024 - 3}-${5 * 1024 * 1024 + 2}` }, retry: true });
    expect(await readText(straddling.body)).toBe('aaabbb');
  });

  it.runIf(upstreamCase.listsAndAbortsParts)('aborts a multipart upload', async () => {
    const create = await send({ method: 'POST', objectKey: 'to-abort', query: [['uploads', '']] });
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(await readText(create.body))![1]!;
    const abort = await send({ method: 'DELETE', objectKey: 'to-abort', query: [['uploadId', uploadId]], retry: true });
    expect(abort.status).toBe(204);
    await readAll(abort.body);
  });

  it(
    upstreamCase.discardsTruncatedUploads
      ? 'a body that fails mid-way never creates the object, nor replaces an existing one'
      : 'a body that fails mid-way never reaches the upstream whole (s3rver keeps the truncated bytes: its own bug)',
    async () => {
      const declared = 3 * 1024 * 1024;
      const previous = Buffer.from('previous version');
      await put('failed-overwrite', previous);
      for (const key of ['failed-new', 'failed-overwrite']) {
        const body = new Readable({ read() {} });
        body.push(Buffer.alloc(1024 * 1024, 'z'));
        const failure = new Error('chunk signature mismatch');
        setTimeout(() => body.destroy(failure), 100);
        await expect(send({ method: 'PUT', objectKey: key, body: upstreamBody(body, { length: declared }) })).rejects.toBe(failure);
      }
      // Let the upstream notice the closed connection before looking.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const created = await upstream.request('HEAD', `/${BUCKET}/failed-new`);
      const overwritten = await upstream.request('GET', `/${BUCKET}/failed-overwrite`);
      if (upstreamCase.discardsTruncatedUploads) {
        expect(created.status).toBe(404);
        expect(overwritten.body.equals(previous)).toBe(true);
      } else {
        // Never the full declared object: the gateway stopped before Content-Length bytes were sent.
        if (created.status === 200) expect(Number(created.headers['content-length'])).toBeLessThan(declared);
        expect(overwritten.body.length).toBeLessThan(declared);
      }
    },
  );
});

describe('large bodies stream without buffering', () => {
  let moto: TestUpstream;
  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket('large');
  });
  afterAll(async () => {
    await moto?.stop();
  });

  it('PUTs and GETs 50 MiB with small memory growth', async () => {
    const size = 50 * 1024 * 1024;
    const target = targetFor(moto, 'large');
    const expectedHash = createHash('sha256');
    const source = generatedBody(size);
    source.on('data', (chunk: Buffer) => expectedHash.update(chunk));

    global.gc?.();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
    try {
      const putResponse = await forwarder.forward({
        target,
        method: 'PUT',
        objectKey: 'big.bin',
        query: [],
        headers: {},
        body: upstreamBody(source, { length: size }),
      });
      expect(putResponse.status, await readText(putResponse.body)).toBe(200);

      const got = await forwarder.forward({ target, method: 'GET', objectKey: 'big.bin', query: [], headers: {}, body: null, retry: true });
      expect(got.headers['content-length']).toBe(String(size));
      const actualHash = createHash('sha256');
      let received = 0;
      for await (const chunk of got.body) {
        actualHash.update(chunk as Buffer);
        received += (chunk as Buffer).length;
      }
      expect(received).toBe(size);
      expect(actualHash.digest('hex')).toBe(expectedHash.digest('hex'));
    } finally {
      clearInterval(sampler);
    }
    // Buffering either direction would add >= 50 MiB.
    expect(peak - baseline).toBeLessThan(32 * 1024 * 1024);
  });
});

describe('headers the forwarder adds and removes (local capture server)', () => {
  let capture: LocalServer;
  let target: UpstreamTarget;
  const credentials = { accessKeyId: 'AKIDCAPTURE', secretAccessKey: 'capture-secret' };

  beforeAll(async () => {
    capture = await startLocalServer((_req, res) => {
      res.writeHead(200, { 'content-length': '0' });
      res.end();
    });
    target = targetFor({ endpoint: capture.url, region: 'us-east-1', ...credentials }, 'bkt');
  });
  afterAll(() => capture.close());
  afterEach(() => {
    capture.requests.length = 0;
  });

  async function sent(request: Partial<ForwardRequest>, to: UpstreamTarget = target): Promise<LocalServer['requests'][number]> {
    const response = await forwarder.forward({ target: to, method: 'PUT', objectKey: 'k', query: [], headers: {}, body: null, ...request });
    await readAll(response.body);
    return capture.requests.at(-1)!;
  }

  const data = Buffer.from('hello trailer');
  const checksum = crc32Base64(data);
  const trailing = () => upstreamBody(data, { checksums: { 'x-amz-checksum-crc32': checksum }, trailerChecksum: 'x-amz-checksum-crc32' });

  it('drops x-amz-sdk-checksum-algorithm when its checksum travels neither as header nor as trailer', async () => {
    const noTrailers = { ...target, capabilities: { ...target.capabilities, trailingChecksums: false } };
    const dropped = await sent({ headers: { 'x-amz-sdk-checksum-algorithm': 'CRC32', 'content-encoding': 'gzip' }, body: trailing() }, noTrailers);
    expect(dropped.headers).not.toHaveProperty('x-amz-sdk-checksum-algorithm');
    expect(dropped.headers).not.toHaveProperty('x-amz-trailer');
    expect(dropped.headers['content-encoding']).toBe('gzip');
    expect(dropped.headers['content-length']).toBe(String(data.length));
    expect(dropped.body.equals(data)).toBe(true);

    // No trailer at all, and no checksum header of that algorithm either.
    const unaccompanied = await sent({ headers: { 'x-amz-sdk-checksum-algorithm': 'SHA256', 'x-amz-checksum-crc32': checksum }, body: upstreamBody(data) });
    expect(unaccompanied.headers).not.toHaveProperty('x-amz-sdk-checksum-algorithm');
    expect(unaccompanied.headers['x-amz-checksum-crc32']).toBe(checksum);
  });

  it('keeps x-amz-sdk-checksum-algorithm with its checksum as header or as forwarded trailer', async () => {
    const sha256 = createHash('sha256').update(data).digest('base64');
    const asHeader = await sent({ headers: { 'x-amz-checksum-sha256': sha256, 'x-amz-sdk-checksum-algorithm': 'SHA256' }, body: upstreamBody(data) });
    expect(asHeader.headers).toMatchObject({ 'x-amz-checksum-sha256': sha256, 'x-amz-sdk-checksum-algorithm': 'SHA256' });

    const asTrailer = await sent({ headers: { 'x-amz-sdk-checksum-algorithm': 'crc32', 'content-encoding': 'gzip' }, body: trailing() });
    expect(asTrailer.headers).toMatchObject({
      'x-amz-sdk-checksum-algorithm': 'crc32',
      'x-amz-trailer': 'x-amz-checksum-crc32',
      'x-amz-content-sha256': 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
      'x-amz-decoded-content-length': String(data.length),
      'content-encoding': 'aws-chunked,gzip',
    });
    expect(asTrailer.headers).not.toHaveProperty('x-amz-checksum-crc32');
    expect(Number(asTrailer.headers['content-length'])).toBe(asTrailer.body.length);
    expect(asTrailer.body.toString()).toBe(`${data.length.toString(16)}\r\n${data.toString()}\r\n0\r\nx-amz-checksum-crc32:${checksum}\r\n\r\n`);
  });

  it('names the client in its own User-Agent, sends a gateway-computed Content-MD5, and signs a client-signed SHA-256', async () => {
    const md5 = createHash('md5').update(data).digest('base64');
    const sha256 = createHash('sha256').update(data).digest('hex');
    const seen = await sent({ userAgent: 'aws-cli/2.23', body: upstreamBody(data, { contentMd5: md5, sha256 }) });
    expect(seen.headers['user-agent']).toBe(`${KEYGATE_USER_AGENT} (+aws-cli/2.23)`);
    expect(KEYGATE_USER_AGENT).toMatch(/^keygate\//);
    expect(seen.headers['content-md5']).toBe(md5);
    expect(seen.headers['x-amz-content-sha256']).toBe(sha256);
    expect(seen.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDCAPTURE\//);

    const anonymous = await sent({ method: 'GET' });
    expect(anonymous.headers['user-agent']).toBe(KEYGATE_USER_AGENT);
  });

  it('sends exactly the headers it is given plus its own framing and signature ones', async () => {
    const seen = await sent({ headers: { 'content-type': 'text/plain', 'x-amz-meta-a': '1' }, body: upstreamBody(data) });
    expect(Object.keys(seen.headers).sort()).toEqual(
      ['authorization', 'connection', 'content-length', 'content-type', 'host', 'user-agent', 'x-amz-content-sha256', 'x-amz-date', 'x-amz-meta-a'].sort(),
    );
    expect(seen.headers['x-amz-content-sha256']).toBe('UNSIGNED-PAYLOAD');
  });
});

function decodeXml(text: string): string {
  return text
    .replace(/&#x([0-9a-f]+);/gi, (_, hex: string) => String.fromCodePoint(parseInt(hex, 16)))
    .replace(/&#(\d+);/g, (_, dec: string) => String.fromCodePoint(Number(dec)))
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}
