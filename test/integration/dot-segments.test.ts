/**
 * Object keys with `.`/`..` path segments through a real gateway: refused with 400 InvalidArgument
 * for per-bucket access keys (any upstream) and for RunPod buckets (a local moto stands in for
 * s3api-<dc>.runpod.io), in paths, copy sources and DeleteObjects entries, before anything reaches
 * the upstream. Requests are sent raw (node:http does not normalize paths; WHATWG URL parsing would).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';
import { signedHeaders } from '../helpers/sign.js';

const SCOPED_BUCKET = 'scoped-bucket';
const OTHER_BUCKET = 'other-bucket';
const VOLUME = 'vol0dots1';

interface RawResponse {
  status: number;
  body: string;
}

function errorOf(response: RawResponse): { code?: string; message?: string; argumentName?: string } {
  return {
    code: /<Code>([^<]+)<\/Code>/.exec(response.body)?.[1],
    message: /<Message>([^<]*)<\/Message>/.exec(response.body)?.[1],
    argumentName: /<ArgumentName>([^<]*)<\/ArgumentName>/.exec(response.body)?.[1],
  };
}

describe('object keys with dot segments through the gateway', () => {
  let moto: TestUpstream;
  let gateway: Gateway;
  let scoped: CreatedKey;
  let workspace: CreatedKey;
  let port: number;

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    for (const bucket of [SCOPED_BUCKET, OTHER_BUCKET, VOLUME]) await moto.createBucket(bucket);
    gateway = await startGateway({
      ...upstreamEnv(moto),
      KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint }),
      RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
      RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
      KEYGATE_ACCESS_LOG: 'off',
    });
    await gateway.addBucket({ name: VOLUME, datacenter: 'EU-RO-1' });
    // Per-bucket keys cannot have `delete` (presets only), so DeleteObjects is exercised on the RunPod bucket.
    scoped = await gateway.createKey({ name: 'scoped', bucket: SCOPED_BUCKET, preset: 'read-write' });
    workspace = await gateway.createKey({ name: 'workspace', permissions: ['read', 'write', 'delete'] });
    port = Number(new URL(gateway.url).port);
    for (const [bucket, objectKey] of [
      [OTHER_BUCKET, 'x'],
      [SCOPED_BUCKET, 'b'],
      [VOLUME, 'b'],
    ]) {
      expect((await moto.request('PUT', `/${bucket}/${objectKey}`, { body: 'seed' })).status).toBe(200);
    }
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  /** Signed over the literal path (aws4 does not normalize S3 paths) and sent as is. */
  function send(key: CreatedKey, method: string, path: string, options: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<RawResponse> {
    const body = options.body;
    const headers = signedHeaders(key, `127.0.0.1:${port}`, method, path, options);
    return new Promise((resolve, reject) => {
      const request = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      });
      request.on('error', reject);
      request.end(body);
    });
  }

  async function upstreamKeys(bucket: string): Promise<string[]> {
    const listing = await moto.request('GET', `/${bucket}`, { query: 'list-type=2' });
    return [...listing.body.toString().matchAll(/<Key>([^<]*)<\/Key>/g)].map((match) => match[1]!);
  }

  async function upstreamBody(bucket: string, objectKey: string): Promise<string | null> {
    const response = await moto.request('GET', `/${bucket}/${objectKey}`);
    return response.status === 200 ? response.body.toString() : null;
  }

  function expectRefused(response: RawResponse, why: RegExp, argumentName = 'key'): void {
    expect(response.status, response.body).toBe(400);
    const error = errorOf(response);
    expect(error.code).toBe('InvalidArgument');
    expect(error.message).toMatch(why);
    expect(error.message).toContain('without &quot;.&quot; or &quot;..&quot; segments');
    expect(error.argumentName).toBe(argumentName);
  }

  it('refuses per-bucket keys that would step outside their bucket: paths, encoded dots, copy sources', async () => {
    const scopedReason = /scoped to one bucket/;
    expectRefused(await send(scoped, 'PUT', `/${SCOPED_BUCKET}/../${OTHER_BUCKET}/x`, { body: Buffer.from('overwritten') }), scopedReason);
    expectRefused(await send(scoped, 'PUT', `/${SCOPED_BUCKET}/%2E%2E/${OTHER_BUCKET}/x`, { body: Buffer.from('overwritten') }), scopedReason);
    expectRefused(await send(scoped, 'GET', `/${SCOPED_BUCKET}/a/./b`), scopedReason);
    expectRefused(await send(scoped, 'POST', `/${SCOPED_BUCKET}/a/../b?uploads`), scopedReason);
    expectRefused(
      await send(scoped, 'PUT', `/${SCOPED_BUCKET}/copy`, { headers: { 'x-amz-copy-source': `/${SCOPED_BUCKET}/../${OTHER_BUCKET}/x` } }),
      scopedReason,
      'x-amz-copy-source',
    );

    expect(await upstreamBody(OTHER_BUCKET, 'x')).toBe('seed');
    expect(await upstreamBody(SCOPED_BUCKET, 'b')).toBe('seed');
    expect(await upstreamKeys(SCOPED_BUCKET)).toEqual(['b']);
    // Dots inside names are ordinary keys.
    expect((await send(scoped, 'PUT', `/${SCOPED_BUCKET}/v1.../..hidden`, { body: Buffer.from('ok') })).status).toBe(200);
    expect(await upstreamBody(SCOPED_BUCKET, 'v1.../..hidden')).toBe('ok');
  });

  // The forwarder must send the path as signed: a URL string would be normalized by WHATWG URL
  // parsing (`/b/a/../k` -> `/b/k`), so moto would answer SignatureDoesNotMatch (and an upstream
  // that skipped the check would act on another object).
  it('keeps keys literal for workspace keys on generic S3, as S3 does', async () => {
    const put = await send(workspace, 'PUT', `/${SCOPED_BUCKET}/lit/../eral`, { body: Buffer.from('literal') });
    expect(put.status, put.body).toBe(200);
    expect(await upstreamKeys(SCOPED_BUCKET)).toContain('lit/../eral');
    expect((await send(workspace, 'GET', `/${SCOPED_BUCKET}/lit/../eral`)).body).toBe('literal');
  });

  it('refuses dot segments on a RunPod bucket even for workspace keys', async () => {
    const runpodReason = /RunPod/;
    expectRefused(await send(workspace, 'PUT', `/${VOLUME}/../${OTHER_BUCKET}/x`, { body: Buffer.from('overwritten') }), runpodReason);
    expectRefused(await send(workspace, 'GET', `/${VOLUME}/a/../b`), runpodReason);
    expectRefused(await send(workspace, 'POST', `/${VOLUME}/../escape?uploads`), runpodReason);
    expectRefused(await send(workspace, 'PUT', `/${VOLUME}/copy`, { headers: { 'x-amz-copy-source': `/${VOLUME}/a/./b` } }), runpodReason, 'x-amz-copy-source');

    expect(await upstreamBody(OTHER_BUCKET, 'x')).toBe('seed');
    expect(await upstreamKeys(VOLUME)).toEqual(['b']);
  });

  it('refuses listing prefixes (per-bucket keys, RunPod buckets) and markers (RunPod) with dot segments, still lists dotfiles', async () => {
    expectRefused(await send(scoped, 'GET', `/${SCOPED_BUCKET}?list-type=2&prefix=..%2F${OTHER_BUCKET}%2F`), /scoped to one bucket/, 'prefix');
    expectRefused(await send(workspace, 'GET', `/${VOLUME}?list-type=2&prefix=..%2F`), /RunPod/, 'prefix');
    expectRefused(await send(workspace, 'GET', `/${VOLUME}?marker=a%2F..%2F..%2Fx`), /RunPod/, 'marker');

    const dotfiles = await send(scoped, 'GET', `/${SCOPED_BUCKET}?list-type=2&prefix=.`);
    expect(dotfiles.status, dotfiles.body).toBe(200);
    // On generic S3 a page can end at a literal key such as `lit/./page-end` (stored by a workspace
    // key); the marker a client sends back must not stop a per-bucket key's listing there.
    expect((await send(workspace, 'PUT', `/${SCOPED_BUCKET}/lit/./page-end`, { body: Buffer.from('x') })).status).toBe(200);
    const nextPage = await send(scoped, 'GET', `/${SCOPED_BUCKET}?marker=lit%2F.%2Fpage-end`);
    expect(nextPage.status, nextPage.body).toBe(200);
    const volume = await send(workspace, 'GET', `/${VOLUME}?list-type=2&prefix=b`);
    expect(volume.status, volume.body).toBe(200);
    expect(volume.body).toContain('<Key>b</Key>');
  });

  it('reports DeleteObjects entries with dot segments on a RunPod bucket as per-key errors and deletes the others', async () => {
    expect((await moto.request('PUT', `/${VOLUME}/doomed`, { body: 'x' })).status).toBe(200);
    const xml = Buffer.from(
      `<Delete><Object><Key>../${OTHER_BUCKET}/x</Key></Object><Object><Key>./b</Key></Object><Object><Key>doomed</Key></Object></Delete>`,
    );
    const response = await send(workspace, 'POST', `/${VOLUME}?delete`, {
      body: xml,
      headers: { 'content-md5': createHash('md5').update(xml).digest('base64') },
    });
    expect(response.status, response.body).toBe(200);
    expect(response.body).toContain('<Deleted><Key>doomed</Key></Deleted>');
    expect(response.body).toMatch(/<Error><Key>\.\.\/other-bucket\/x<\/Key><Code>InvalidArgument<\/Code><Message>[^<]*RunPod/);
    expect(response.body).toMatch(/<Error><Key>\.\/b<\/Key><Code>InvalidArgument<\/Code>/);
    expect(await upstreamBody(OTHER_BUCKET, 'x')).toBe('seed');
    expect(await upstreamKeys(VOLUME)).toEqual(['b']);
    expect((await send(workspace, 'GET', `/${VOLUME}/b`)).body).toBe('seed');
  });
});
