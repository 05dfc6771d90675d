/**
 * What an upstream answers never reaches a client unfiltered: its headers pass an allowlist, its
 * bucket names and endpoint are replaced by the client's, an `<Error>` it hides inside a 200 becomes
 * a proper error, and a DeleteObjects entry's conditions go upstream with each single delete. The
 * upstream here is scripted (test/helpers/capturing-upstream.ts) so it can answer like a hostile or
 * broken one; its bucket is registered under another name, as a RunPod volume id would be.
 */
import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { request as undiciRequest } from 'undici';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startCapturingUpstream, type CapturedRequest, type CapturingUpstream } from '../helpers/capturing-upstream.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedHeaders } from '../helpers/sign.js';

const BUCKET = 'photos';
/** The upstream's name for it: a client must never learn it. */
const UPSTREAM_BUCKET = 'vol-7f3a9c2e1d-private';
const REGION = 'eu-ro-1';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

describe('answers from a hostile upstream', () => {
  let upstream: CapturingUpstream;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    upstream = await startCapturingUpstream();
    upstream.buckets = [UPSTREAM_BUCKET];
    gateway = await startGateway({
      ...upstreamEnv({ endpoint: upstream.endpoint, region: REGION, accessKeyId: 'UPSTREAMKEY', secretAccessKey: 'upstream-secret' }),
      KEYGATE_ACCESS_LOG: 'off',
    });
    await gateway.addBucket({ name: BUCKET, endpoint: upstream.endpoint, region: REGION, upstreamBucket: UPSTREAM_BUCKET });
    key = await gateway.createKey({ name: 'all', permissions: ['read', 'write', 'delete'] });
  });

  beforeEach(() => {
    upstream.answerWith = null;
    upstream.requests.length = 0;
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  async function send(method: string, path: string, options: { headers?: Record<string, string>; body?: string } = {}): Promise<Answer> {
    const url = new URL(gateway.url);
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const headers = signedHeaders(key, url.host, method, path, { body, headers: options.headers });
    const response = await undiciRequest(`${gateway.url}${path}`, { method: method as 'GET', headers, body });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  function answerXml(status: number, xml: string, headers: Record<string, string> = {}) {
    return (_request: CapturedRequest, res: ServerResponse) => {
      const bytes = Buffer.from(xml);
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': String(bytes.length), ...headers });
      res.end(bytes);
      return true;
    };
  }

  const HOSTILE_HEADERS = {
    server: 'upstream-s3/1.2.3',
    'set-cookie': 'session=upstream-session; Path=/',
    'x-amz-request-id': 'UPSTREAM-REQUEST-ID',
    'x-amz-id-2': 'UPSTREAM-HOST-ID',
    'x-amzn-requestid': 'UPSTREAM-INTERNAL',
    'x-amz-server-side-encryption': 'aws:kms',
    'x-amz-server-side-encryption-aws-kms-key-id': 'arn:aws:kms:eu-ro-1:123456789012:key/operator-key',
    'x-amz-bucket-region': 'EU-RO-1-DATACENTER',
    'access-control-allow-origin': 'https://evil.example',
    'access-control-allow-credentials': 'true',
    location: 'https://s3api-eu-ro-1.runpod.io/vol-7f3a9c2e1d-private/x',
    'x-upstream-debug': 'internal host 10.0.0.7',
    'x-amz-meta-colour': 'blue',
    etag: '"abc"',
  };

  it('passes only object headers: no upstream server, cookies, request ids, KMS key, CORS, redirects or inventions', async () => {
    upstream.answerWith = (_request, res) => {
      res.writeHead(200, { ...HOSTILE_HEADERS, 'content-length': '5', 'content-type': 'text/plain' });
      res.end('hello');
      return true;
    };
    const answer = await send('GET', `/${BUCKET}/object.txt`, { headers: { origin: 'https://evil.example' } });
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('hello');
    expect(answer.headers['x-amz-meta-colour']).toBe('blue');
    expect(answer.headers.etag).toBe('"abc"');
    expect(answer.headers['x-amz-server-side-encryption']).toBe('aws:kms');
    for (const name of [
      'set-cookie',
      'x-amz-id-2',
      'x-amzn-requestid',
      'x-amz-server-side-encryption-aws-kms-key-id',
      'x-amz-bucket-region',
      'access-control-allow-origin',
      'access-control-allow-credentials',
      'location',
      'x-upstream-debug',
    ]) {
      expect(answer.headers[name], name).toBeUndefined();
    }
    expect(answer.headers.server).not.toBe(HOSTILE_HEADERS.server);
    expect(answer.headers['x-amz-request-id']).not.toBe('UPSTREAM-REQUEST-ID');
    expect(JSON.stringify(answer.headers)).not.toMatch(/upstream|runpod|operator-key|vol-7f3a/i);
  });

  it("reports the gateway's region for a bucket (HeadBucket), never the upstream's datacenter", async () => {
    upstream.answerWith = (_request, res) => {
      res.writeHead(200, { 'x-amz-bucket-region': 'EU-RO-1-DATACENTER', 'content-length': '0' });
      res.end();
      return true;
    };
    const answer = await send('HEAD', `/${BUCKET}`);
    expect(answer.status).toBe(200);
    expect(answer.headers['x-amz-bucket-region']).toBe(key.region);
  });

  it("names the client's bucket and the gateway's endpoint in answers, never the upstream's (Complete, Initiate, listings)", async () => {
    const created = await send('POST', `/${BUCKET}/big.bin?uploads`);
    expect(created.status).toBe(200);
    expect(created.text).toContain(`<Bucket>${BUCKET}</Bucket>`);
    expect(created.text).not.toContain(UPSTREAM_BUCKET);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!;

    const complete = '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>';
    const completed = await send('POST', `/${BUCKET}/big.bin?uploadId=${encodeURIComponent(uploadId)}`, { body: complete });
    expect(completed.status).toBe(200);
    expect(completed.text).toContain(`<Bucket>${BUCKET}</Bucket>`);
    expect(completed.text).toContain(`<Location>${gateway.url}/${BUCKET}/big.bin</Location>`);
    expect(completed.text).not.toMatch(new RegExp(`${UPSTREAM_BUCKET}|http://upstream`));

    upstream.answerWith = answerXml(
      200,
      `<?xml version="1.0"?><ListBucketResult><Name>${UPSTREAM_BUCKET}</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>` +
        `<IsTruncated>false</IsTruncated><Contents><Key>a.txt</Key><Size>1</Size></Contents></ListBucketResult>`,
    );
    const listed = await send('GET', `/${BUCKET}?list-type=2`);
    expect(listed.status).toBe(200);
    expect(listed.text).toContain(`<Name>${BUCKET}</Name>`);
    expect(listed.text).toContain('<Key>a.txt</Key>');
    expect(listed.text).not.toContain(UPSTREAM_BUCKET);
  });

  it('turns an <Error> inside a 200 (a copy or completion that failed late) into an error in its own words', async () => {
    const hidden =
      '<?xml version="1.0"?><Error><Code>InternalError</Code><Message>disk /dev/sdb3 on storage-node-17 failed</Message>' +
      `<Resource>/${UPSTREAM_BUCKET}/copy.txt</Resource><RequestId>UPSTREAM-REQ</RequestId></Error>`;
    upstream.answerWith = answerXml(200, hidden);
    const copied = await send('PUT', `/${BUCKET}/copy.txt`, { headers: { 'x-amz-copy-source': `/${BUCKET}/source.txt` } });
    expect(copied.status).toBe(500);
    expect(copied.text).toContain('<Code>InternalError</Code>');
    expect(copied.text).not.toMatch(/storage-node|sdb3|UPSTREAM-REQ|vol-7f3a/);

    upstream.answerWith = null;
    const created = await send('POST', `/${BUCKET}/late.bin?uploads`);
    const uploadId = /<UploadId>([^<]+)<\/UploadId>/.exec(created.text)![1]!;
    upstream.answerWith = answerXml(200, '<?xml version="1.0"?>\n  <Error><Code>InvalidPart</Code><Message>part 1 missing on node-3</Message></Error>');
    const complete = '<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"a"</ETag></Part></CompleteMultipartUpload>';
    const completed = await send('POST', `/${BUCKET}/late.bin?uploadId=${encodeURIComponent(uploadId)}`, { body: complete });
    expect(completed.status).toBe(400);
    expect(completed.text).toContain('<Code>InvalidPart</Code>');
    expect(completed.text).not.toContain('node-3');
  });

  it('sends each DeleteObjects entry with its own conditions (ETag, LastModifiedTime, Size) as a conditional delete', async () => {
    upstream.answerWith = (request, res) => {
      if (request.method === 'HEAD' && request.rawPath.endsWith('/fresh.txt')) {
        // What the gateway checks <Size> and <LastModifiedTime> against.
        res.writeHead(200, { 'content-length': '42', 'last-modified': 'Fri, 31 Jan 2025 12:00:00 GMT', etag: '"current"' });
        res.end();
        return true;
      }
      if (request.method !== 'DELETE') return false;
      // The upstream refuses deletes whose condition does not hold.
      const stale = request.headers['if-match']?.[0] === '"stale"';
      res.writeHead(stale ? 412 : 204, stale ? { 'content-type': 'application/xml' } : {});
      res.end(stale ? '<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>' : '');
      return true;
    };
    const body =
      '<Delete>' +
      '<Object><Key>fresh.txt</Key><ETag>"current"</ETag><LastModifiedTime>2025-01-31T12:00:00.000Z</LastModifiedTime><Size>42</Size></Object>' +
      '<Object><Key>stale.txt</Key><ETag>"stale"</ETag></Object>' +
      '<Object><Key>plain.txt</Key></Object>' +
      '</Delete>';
    const md5 = createHash('md5').update(body).digest('base64');
    const answer = await send('POST', `/${BUCKET}?delete`, { body, headers: { 'content-md5': md5 } });
    expect(answer.status).toBe(200);
    expect(answer.text).toContain('<Deleted><Key>fresh.txt</Key></Deleted>');
    expect(answer.text).toContain('<Deleted><Key>plain.txt</Key></Deleted>');
    expect(answer.text).toMatch(/<Error><Key>stale.txt<\/Key>.*<Code>PreconditionFailed<\/Code>/);

    const deletes = new Map(upstream.requests.filter((r) => r.method === 'DELETE').map((r) => [r.rawPath, r.headers]));
    const fresh = deletes.get(`/${UPSTREAM_BUCKET}/fresh.txt`)!;
    expect(fresh['if-match']).toEqual(['"current"']);
    expect(fresh['x-amz-if-match-last-modified-time']).toEqual(['Fri, 31 Jan 2025 12:00:00 GMT']);
    expect(fresh['x-amz-if-match-size']).toEqual(['42']);
    const plain = deletes.get(`/${UPSTREAM_BUCKET}/plain.txt`)!;
    expect(plain['if-match']).toBeUndefined();
    expect(plain['x-amz-if-match-size']).toBeUndefined();
  });

  it.each([
    ['<LastModifiedTime>yesterday</LastModifiedTime>', 'ISO 8601'],
    ['<Size>-1</Size>', 'size in bytes'],
    ['<ETag>"a\tb"</ETag>', 'ETag'],
  ])('refuses a DeleteObjects entry with a malformed condition (%s) before deleting anything', async (condition, hint) => {
    const body = `<Delete><Object><Key>other.txt</Key></Object><Object><Key>x.txt</Key>${condition}</Object></Delete>`;
    const md5 = createHash('md5').update(body).digest('base64');
    const answer = await send('POST', `/${BUCKET}?delete`, { body, headers: { 'content-md5': md5 } });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain('<Code>MalformedXML</Code>');
    expect(answer.text).toContain(hint);
    expect(upstream.requests.filter((r) => r.method === 'DELETE')).toEqual([]);
  });
});
