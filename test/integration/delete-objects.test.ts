/**
 * DeleteObjects fan-out through a real gateway when the upstream fails some single deletes: each
 * key gets exactly the forwarder's retries (no extra layer multiplying them), transient failures
 * are absorbed, and a key that keeps failing is reported in the DeleteResult while the others are
 * deleted. Upstream: moto validating signatures, behind a fault-injecting proxy that counts attempts.
 */
import { createHash } from 'node:crypto';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_RETRY_POLICY } from '../../src/upstream/forward.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { signedRequest, startMoto, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'fanout-bucket';
const xml = new XMLParser({ parseTagValue: false, isArray: (name) => name === 'Deleted' || name === 'Error' });
const S3_INTERNAL_ERROR =
  '<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message></Error>';

interface DeleteResult {
  Deleted?: Array<{ Key: string }>;
  Error?: Array<{ Key: string; Code: string; Message: string }>;
}

describe('DeleteObjects fan-out when the upstream fails', () => {
  let moto: TestUpstream;
  let proxy: FaultProxy;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(BUCKET);
    proxy = await startFaultProxy(moto.endpoint);
    gateway = await startGateway({ ...upstreamEnv(moto), KEYGATE_ACCESS_LOG: 'off' });
    await gateway.addBucket({ name: BUCKET, endpoint: proxy.url, region: moto.region });
    key = await gateway.createKey({ name: 'fanout', permissions: ['read', 'write', 'delete'] });
  });

  afterAll(async () => {
    await gateway?.stop();
    await proxy?.close();
    await moto?.stop();
  });

  afterEach(() => proxy.setRule(null));

  async function seed(...names: string[]): Promise<void> {
    for (const name of names) expect((await moto.request('PUT', `/${BUCKET}/${name}`, { body: name })).status).toBe(200);
  }

  async function existsUpstream(name: string): Promise<boolean> {
    return (await moto.request('HEAD', `/${BUCKET}/${name}`)).status === 200;
  }

  /** Entries are keys, or keys with extra elements (conditions) for their <Object>. */
  async function deleteObjects(entries: Array<string | { key: string; conditions: string }>): Promise<DeleteResult> {
    const objects = entries.map((entry) =>
      typeof entry === 'string' ? `<Object><Key>${entry}</Key></Object>` : `<Object><Key>${entry.key}</Key>${entry.conditions}</Object>`,
    );
    const body = Buffer.from(`<Delete>${objects.join('')}</Delete>`);
    const response = await signedRequest(
      { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      'POST',
      `/${BUCKET}`,
      { query: 'delete', body, headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') } },
    );
    expect(response.status, response.body.toString()).toBe(200);
    return (xml.parse(response.body.toString()) as { DeleteResult: DeleteResult }).DeleteResult;
  }

  function upstreamDeletesOf(name: string): number {
    return proxy.requests.filter((request) => request.method === 'DELETE' && request.url.split('?')[0] === `/${BUCKET}/${name}`).length;
  }

  it("retries a key that keeps failing exactly as often as the forwarder's policy says, reports it and deletes the rest", async () => {
    await seed('keep-a', 'broken-b', 'keep-c');
    proxy.setRule(({ method, url }) =>
      method === 'DELETE' && url.startsWith(`/${BUCKET}/broken-b`) ? { kind: 'status', status: 500, body: S3_INTERNAL_ERROR } : null,
    );

    const result = await deleteObjects(['keep-a', 'broken-b', 'keep-c']);
    expect(result.Deleted?.map((entry) => entry.Key).sort()).toEqual(['keep-a', 'keep-c']);
    expect(result.Error).toEqual([{ Key: 'broken-b', Code: 'InternalError', Message: expect.any(String) }]);
    expect(upstreamDeletesOf('broken-b')).toBe(DEFAULT_RETRY_POLICY.attempts);
    expect(upstreamDeletesOf('keep-a')).toBe(1);
    expect(await existsUpstream('broken-b')).toBe(true);
    expect(await existsUpstream('keep-a')).toBe(false);
  });

  it('reports an upstream that answers without an S3 error document as BadGateway, after the same number of attempts', async () => {
    await seed('html-d');
    proxy.setRule(({ method, url }) =>
      method === 'DELETE' && url.startsWith(`/${BUCKET}/html-d`)
        ? { kind: 'status', status: 502, body: '<html>bad gateway</html>', headers: { 'content-type': 'text/html' } }
        : null,
    );

    const result = await deleteObjects(['html-d']);
    expect(result.Deleted ?? []).toEqual([]);
    expect(result.Error).toEqual([{ Key: 'html-d', Code: 'BadGateway', Message: expect.stringContaining('502') }]);
    expect(upstreamDeletesOf('html-d')).toBe(DEFAULT_RETRY_POLICY.attempts);
    expect(await existsUpstream('html-d')).toBe(true);
  });

  it('absorbs a transient failure: the key is deleted after one retry', async () => {
    await seed('flaky-e');
    let failures = 0;
    proxy.setRule(({ method, url }) => {
      if (method !== 'DELETE' || !url.startsWith(`/${BUCKET}/flaky-e`) || failures > 0) return null;
      failures++;
      return { kind: 'status', status: 503, body: '<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' };
    });

    const result = await deleteObjects(['flaky-e']);
    expect(result.Deleted?.map((entry) => entry.Key)).toEqual(['flaky-e']);
    expect(result.Error ?? []).toEqual([]);
    expect(upstreamDeletesOf('flaky-e')).toBe(2);
    expect(await existsUpstream('flaky-e')).toBe(false);
  });

  it('deletes an entry with <Size> or <LastModifiedTime> only when the object has them, though the upstream ignores both', async () => {
    // moto, like S3's general purpose buckets, ignores x-amz-if-match-size and
    // x-amz-if-match-last-modified-time: the gateway checks them against a HEAD of the object.
    await seed('sized-f', 'dated-g', 'right-h');
    const head = await moto.request('HEAD', `/${BUCKET}/right-h`);
    const lastModified = new Date(String(head.headers['last-modified'])).toISOString();

    const result = await deleteObjects([
      { key: 'sized-f', conditions: '<Size>999</Size>' },
      { key: 'dated-g', conditions: '<LastModifiedTime>2001-01-01T00:00:00Z</LastModifiedTime>' },
      { key: 'right-h', conditions: `<Size>${'right-h'.length}</Size><LastModifiedTime>${lastModified}</LastModifiedTime>` },
    ]);
    expect(result.Deleted?.map((entry) => entry.Key)).toEqual(['right-h']);
    expect(result.Error?.map((entry) => [entry.Key, entry.Code]).sort()).toEqual([
      ['dated-g', 'PreconditionFailed'],
      ['sized-f', 'PreconditionFailed'],
    ]);
    expect(await existsUpstream('sized-f')).toBe(true);
    expect(await existsUpstream('dated-g')).toBe(true);
    expect(await existsUpstream('right-h')).toBe(false);
    expect(upstreamDeletesOf('sized-f') + upstreamDeletesOf('dated-g')).toBe(0);
  });

  it('refuses a <LastModifiedTime> without a time zone (it would be read in the gateway host zone)', async () => {
    await seed('zoneless-i');
    const body = Buffer.from('<Delete><Object><Key>zoneless-i</Key><LastModifiedTime>2025-01-01T00:00:00</LastModifiedTime></Object></Delete>');
    const response = await signedRequest(
      { endpoint: gateway.url, region: key.region, accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
      'POST',
      `/${BUCKET}`,
      { query: 'delete', body, headers: { 'content-type': 'application/xml', 'content-md5': createHash('md5').update(body).digest('base64') } },
    );
    expect(response.status).toBe(400);
    expect(response.body.toString()).toContain('<Code>MalformedXML</Code>');
    expect(await existsUpstream('zoneless-i')).toBe(true);
  });
});
