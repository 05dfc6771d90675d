/**
 * S3 conformance: what works against the upstream must work the same through keygate. Each case
 * sends the same request straight to moto (with the operator's credentials) and through the gateway
 * (with a workspace key holding every permission), each side in its own bucket, and compares what
 * S3 clients see: status, error code, the document's fields, the object stored.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { exchange, type RawResponse } from '../helpers/raw-http.js';
import { signedHeaders } from '../helpers/sign.js';
import { signedRequest, startMoto, type SignedResponse, type TestUpstream } from '../helpers/upstreams.js';

const DIRECT = 'conformance-direct';
const VIA_GATEWAY = 'conformance-gateway';
const LOCKED_DIRECT = 'conformance-lock-direct';
const LOCKED_VIA_GATEWAY = 'conformance-lock-gateway';

type Side = 'direct' | 'gateway';
const SIDES: Side[] = ['direct', 'gateway'];

const codeOf = (text: string) => /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? null;
const fieldOf = (text: string, name: string) => new RegExp(`<${name}>([^<]*)</${name}>`).exec(text)?.[1] ?? null;
const md5 = (body: string | Buffer) => createHash('md5').update(body).digest('base64');

describe('S3 conformance through keygate (moto upstream)', () => {
  let moto: TestUpstream;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    moto = await startMoto();
    await moto.createBucket(DIRECT);
    await moto.createBucket(VIA_GATEWAY);
    gateway = await startGateway(upstreamEnv(moto));
    key = await gateway.createKey({ name: 'everything', permissions: ['read', 'write', 'delete', 'admin'] });
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  const credentialsOf = (side: Side) =>
    side === 'direct' ? moto : { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey };
  const bucketOf = (side: Side) => (side === 'direct' ? DIRECT : VIA_GATEWAY);

  function send(side: Side, method: string, path: string, options: { query?: string; headers?: Record<string, string>; body?: string | Buffer } = {}) {
    return signedRequest(credentialsOf(side), method, path, options);
  }

  /** The same request on both sides (`{bucket}` in the path is each side's bucket). */
  async function both(
    method: string,
    path: string,
    options: { query?: string; headers?: Record<string, string>; body?: string | Buffer; bucket?: (side: Side) => string } = {},
  ): Promise<Record<Side, SignedResponse & { text: string }>> {
    const out = {} as Record<Side, SignedResponse & { text: string }>;
    for (const side of SIDES) {
      const response = await send(side, method, path.replace('{bucket}', (options.bucket ?? bucketOf)(side)), options);
      out[side] = { ...response, text: response.body.toString('utf8') };
    }
    return out;
  }

  /** Status and error code must match; returns both answers. */
  async function same(...args: Parameters<typeof both>) {
    const answers = await both(...args);
    const seen = (side: Side) => `${answers[side].status} ${codeOf(answers[side].text) ?? ''}`.trim();
    expect(seen('gateway'), `${args[0]} ${args[1]}: direct ${seen('direct')}; through keygate ${answers.gateway.text.slice(0, 300)}`).toBe(seen('direct'));
    return answers;
  }

  /** A raw request, so headers undici refuses (Expect) are sent as written. */
  function raw(side: Side, method: string, path: string, headers: Record<string, string>, body: Buffer): Promise<RawResponse> {
    const credentials = credentialsOf(side);
    const url = new URL(credentials.endpoint);
    const signed = signedHeaders(credentials, url.host, method, path, { body, headers });
    return exchange(Number(url.port), { method, target: path, headers: Object.entries(signed), body }, { untilResponse: true });
  }

  it.each([['200'], [''], ['something-else']])('ignores Expect: %j as S3 does (Node would answer 417 itself)', async (expectation) => {
    for (const side of SIDES) {
      const path = `/${bucketOf(side)}/expect-${expectation.length}.txt`;
      const answer = await raw(side, 'PUT', path, { expect: expectation, 'content-type': 'text/plain' }, Buffer.from('expected body'));
      expect(answer.status, `${side}: ${answer.body}`).toBe(200);
      const stored = await moto.request('GET', path);
      expect(stored.body.toString(), side).toBe('expected body');
    }
  });

  it('keeps Content-Encoding as sent when it has no aws-chunked token ("deflate, gzip" stays so)', async () => {
    await same('PUT', '/{bucket}/encoded.bin', { body: 'x', headers: { 'content-encoding': 'deflate, gzip' } });
    const heads = await same('HEAD', '/{bucket}/encoded.bin');
    expect(heads.gateway.headers['content-encoding']).toBe(heads.direct.headers['content-encoding']);
    expect(heads.gateway.headers['content-encoding']).toBe('deflate, gzip');
  });

  it('answers S3 sub-resources it does not offer with 501 NotImplemented, not AccessDenied', async () => {
    for (const query of ['torrent', 'restore', 'select&select-type=2']) {
      const answer = await send('gateway', query === 'torrent' ? 'GET' : 'POST', `/${VIA_GATEWAY}/encoded.bin`, { query });
      expect([answer.status, codeOf(answer.body.toString())], query).toEqual([501, 'NotImplemented']);
    }
  });

  it('creates a bucket with object lock when asked (x-amz-bucket-object-lock-enabled), and reads its configuration', async () => {
    const lockedBucketOf = (side: Side) => (side === 'direct' ? LOCKED_DIRECT : LOCKED_VIA_GATEWAY);
    const created = await same('PUT', '/{bucket}', { headers: { 'x-amz-bucket-object-lock-enabled': 'true' }, bucket: lockedBucketOf });
    expect(created.gateway.status).toBe(200);
    const configuration = await same('GET', '/{bucket}', { query: 'object-lock', bucket: lockedBucketOf });
    expect(fieldOf(configuration.gateway.text, 'ObjectLockEnabled')).toBe('Enabled');
  });

  it('forwards the object lock operations (configuration, retention, legal hold) and the governance bypass', async () => {
    const lockedBucketOf = (side: Side) => `${side === 'direct' ? LOCKED_DIRECT : LOCKED_VIA_GATEWAY}-ops`;
    await same('PUT', '/{bucket}', { headers: { 'x-amz-bucket-object-lock-enabled': 'true' }, bucket: lockedBucketOf });
    const configuration =
      '<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled>' +
      '<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>1</Days></DefaultRetention></Rule></ObjectLockConfiguration>';
    await same('PUT', '/{bucket}', { query: 'object-lock', body: configuration, headers: { 'content-md5': md5(configuration) }, bucket: lockedBucketOf });
    const read = await same('GET', '/{bucket}', { query: 'object-lock', bucket: lockedBucketOf });
    expect(fieldOf(read.gateway.text, 'Mode')).toBe('GOVERNANCE');

    const put = await same('PUT', '/{bucket}/locked.txt', { body: 'keep me', headers: { 'content-md5': md5('keep me') }, bucket: lockedBucketOf });
    const versionOf = (side: Side) => String(put[side].headers['x-amz-version-id']);
    const retainUntil = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d{3}Z$/, '.000Z');
    const retention = `<Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>GOVERNANCE</Mode><RetainUntilDate>${retainUntil}</RetainUntilDate></Retention>`;
    await same('PUT', '/{bucket}/locked.txt', { query: 'retention', body: retention, headers: { 'content-md5': md5(retention) }, bucket: lockedBucketOf });
    const gotRetention = await same('GET', '/{bucket}/locked.txt', { query: 'retention', bucket: lockedBucketOf });
    // (moto answers GetObjectRetention with the object itself: the gateway relays what the upstream answers.)
    expect(gotRetention.gateway.text).toBe(gotRetention.direct.text);

    const hold = '<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>ON</Status></LegalHold>';
    await same('PUT', '/{bucket}/locked.txt', { query: 'legal-hold', body: hold, headers: { 'content-md5': md5(hold) }, bucket: lockedBucketOf });
    const gotHold = await same('GET', '/{bucket}/locked.txt', { query: 'legal-hold', bucket: lockedBucketOf });
    expect(gotHold.gateway.text).toBe(gotHold.direct.text);
    const off = '<LegalHold xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>OFF</Status></LegalHold>';
    await same('PUT', '/{bucket}/locked.txt', { query: 'legal-hold', body: off, headers: { 'content-md5': md5(off) }, bucket: lockedBucketOf });

    // A retained version cannot be deleted without the bypass, and can with it (admin + delete).
    for (const side of SIDES) {
      const path = `/${lockedBucketOf(side)}/locked.txt`;
      const query = `versionId=${encodeURIComponent(versionOf(side))}`;
      const refused = await send(side, 'DELETE', path, { query });
      expect(refused.status, `${side} without bypass: ${refused.body.toString()}`).toBe(403);
      const bypassed = await send(side, 'DELETE', path, { query, headers: { 'x-amz-bypass-governance-retention': 'true' } });
      expect(bypassed.status, `${side} with bypass: ${bypassed.body.toString()}`).toBe(204);
    }
  });

  it('forwards GetObjectAttributes with its attribute headers', async () => {
    await same('PUT', '/{bucket}/attributes.txt', { body: 'twelve bytes' });
    const answers = await same('GET', '/{bucket}/attributes.txt', {
      query: 'attributes',
      headers: { 'x-amz-object-attributes': 'ETag,ObjectSize,StorageClass', 'x-amz-max-parts': '10' },
    });
    expect(fieldOf(answers.gateway.text, 'ObjectSize')).toBe('12');
    expect(fieldOf(answers.gateway.text, 'ETag')).toBe(fieldOf(answers.direct.text, 'ETag'));
    expect(fieldOf(answers.gateway.text, 'StorageClass')).toBe(fieldOf(answers.direct.text, 'StorageClass'));
  });

  it('completes an upload whose part was uploaded twice, and treats a part listed again as the upstream does', async () => {
    const part = Buffer.alloc(5 * 1024 * 1024, 'p');
    for (const listTwice of [false, true]) {
      const name = `resent-${listTwice}.bin`;
      const etags: Record<Side, string[]> = { direct: [], gateway: [] };
      const uploads: Record<Side, string> = { direct: '', gateway: '' };
      for (const side of SIDES) {
        const created = await send(side, 'POST', `/${bucketOf(side)}/${name}`, { query: 'uploads' });
        uploads[side] = fieldOf(created.body.toString(), 'UploadId')!;
        for (let attempt = 0; attempt < 2; attempt++) {
          const uploaded = await send(side, 'PUT', `/${bucketOf(side)}/${name}`, {
            query: `partNumber=1&uploadId=${encodeURIComponent(uploads[side])}`,
            body: part,
          });
          expect(uploaded.status).toBe(200);
          etags[side].push(String(uploaded.headers.etag));
        }
      }
      const answers = {} as Record<Side, SignedResponse>;
      for (const side of SIDES) {
        const listed = listTwice ? etags[side] : [etags[side][1]!];
        const body = `<CompleteMultipartUpload>${listed.map((etag) => `<Part><PartNumber>1</PartNumber><ETag>${etag}</ETag></Part>`).join('')}</CompleteMultipartUpload>`;
        answers[side] = await send(side, 'POST', `/${bucketOf(side)}/${name}`, { query: `uploadId=${encodeURIComponent(uploads[side])}`, body });
      }
      const seen = (side: Side) => `${answers[side].status} ${codeOf(answers[side].body.toString()) ?? ''}`;
      expect(seen('gateway'), `listed ${listTwice ? 'twice' : 'once'}: ${answers.gateway.body.toString()}`).toBe(seen('direct'));
      if (!listTwice) expect(answers.gateway.status).toBe(200);
    }
  });

  it('pages ListBuckets with max-buckets and continuation-token, filters by prefix, as SDKs ask', async () => {
    const direct = await send('direct', 'GET', '/');
    const all = [...direct.body.toString().matchAll(/<Name>([^<]+)<\/Name>/g)].map((match) => match[1]!).sort();
    expect(all.length).toBeGreaterThanOrEqual(3);
    const seen: string[] = [];
    let token: string | null = null;
    for (let page = 0; page < 20; page++) {
      const answer = await send('gateway', 'GET', '/', {
        query: `max-buckets=2${token === null ? '' : `&continuation-token=${encodeURIComponent(token)}`}`,
      });
      const text = answer.body.toString();
      expect(answer.status, text).toBe(200);
      seen.push(...[...text.matchAll(/<Name>([^<]+)<\/Name>/g)].map((match) => match[1]!));
      token = fieldOf(text, 'ContinuationToken');
      if (token === null) break;
    }
    expect(seen).toEqual(all);
    const prefixed = (await send('gateway', 'GET', '/', { query: 'prefix=conformance-lock-' })).body.toString();
    const lockBuckets = all.filter((name) => name.startsWith('conformance-lock-'));
    expect(lockBuckets.length).toBeGreaterThan(0);
    expect([...prefixed.matchAll(/<Name>([^<]+)<\/Name>/g)].map((match) => match[1])).toEqual(lockBuckets);
    expect(fieldOf(prefixed, 'Prefix')).toBe('conformance-lock-');
    const refused = await send('gateway', 'GET', '/', { query: 'max-buckets=0' });
    expect([refused.status, codeOf(refused.body.toString())]).toEqual([400, 'InvalidArgument']);
  });

  it('fans a 200-key DeleteObjects out without warnings (no listener leak on the request)', async () => {
    const keys = Array.from({ length: 200 }, (_, i) => `batch/${i}.txt`);
    for (const objectKey of keys.slice(0, 20)) await send('gateway', 'PUT', `/${VIA_GATEWAY}/${objectKey}`, { body: 'x' });
    const body = `<Delete>${keys.map((objectKey) => `<Object><Key>${objectKey}</Key></Object>`).join('')}</Delete>`;
    const answer = await send('gateway', 'POST', `/${VIA_GATEWAY}`, { query: 'delete', body, headers: { 'content-md5': md5(body) } });
    expect(answer.status).toBe(200);
    expect(answer.body.toString().match(/<Deleted>/g)).toHaveLength(200);
    expect(gateway.output()).not.toMatch(/MaxListenersExceededWarning|memory leak/);
  });
});
