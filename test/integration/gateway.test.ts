/**
 * Gateway behaviours beyond plain forwarding: RunPod routing by datacenter (a local moto stands in
 * for s3api-<dc>.runpod.io), RunPod gap filling, virtual-host addressing, Expect: 100-continue,
 * health, and S3 XML errors for bad input.
 */
import http from 'node:http';
import aws4 from 'aws4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startMoto } from '../helpers/upstreams.js';

const VOLUME = 'vol0runpod1';
const DOMAIN = 's3.keygate.test';

interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  sawContinue: boolean;
}

describe('gateway in front of a RunPod datacenter', () => {
  let moto: Awaited<ReturnType<typeof startMoto>>;
  let gateway: Gateway;
  let key: CreatedKey;
  let port: number;

  beforeAll(async () => {
    moto = await startMoto({ validateSignatures: true });
    await moto.createBucket(VOLUME);
    gateway = await startGateway({
      KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint }),
      RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
      RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
      KEYGATE_DOMAIN: `${DOMAIN}`,
    });
    await gateway.addBucket({ name: VOLUME, datacenter: 'EU-RO-1' });
    key = await gateway.createKey({ name: 'runpod', permissions: ['read', 'write', 'delete', 'admin'] });
    port = Number(new URL(gateway.url).port);
  });

  afterAll(async () => {
    await gateway?.stop();
    await moto?.stop();
  });

  /** A request signed with the key, sent raw so every header (Host, Expect) is under the test's control. */
  function send(
    method: string,
    path: string,
    options: { host?: string; headers?: Record<string, string>; body?: Buffer | null; secret?: string } = {},
  ): Promise<RawResponse> {
    const host = options.host ?? `127.0.0.1:${port}`;
    const signed = aws4.sign(
      { host, method, path, service: 's3', region: key.region, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...options.headers }, signQuery: false },
      { accessKeyId: key.accessKeyId, secretAccessKey: options.secret ?? key.secretAccessKey },
    );
    return new Promise((resolve, reject) => {
      let sawContinue = false;
      const request = http.request({ host: '127.0.0.1', port, method, path: signed.path, headers: signed.headers as http.OutgoingHttpHeaders });
      request.on('continue', () => {
        sawContinue = true;
        request.end(options.body ?? undefined);
      });
      request.on('response', (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (body += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body, sawContinue }));
      });
      request.on('error', reject);
      if (!options.headers?.expect) request.end(options.body ?? undefined);
    });
  }

  it('routes the volume to its datacenter endpoint, re-signed with the RunPod credentials', async () => {
    const put = await send('PUT', `/${VOLUME}/dir/hello.txt`, { body: Buffer.from('hello runpod'), headers: { 'content-length': '12' } });
    expect(put.status).toBe(200);
    const upstreamCopy = await moto.request('GET', `/${VOLUME}/dir/hello.txt`);
    expect(upstreamCopy.body.toString()).toBe('hello runpod');
    const got = await send('GET', `/${VOLUME}/dir/hello.txt`);
    expect(got.body).toBe('hello runpod');
  });

  it('synthesizes GetBucketLocation and ListBuckets, and fans DeleteObjects out', async () => {
    const location = await send('GET', `/${VOLUME}?location`);
    expect(location.status).toBe(200);
    expect(location.body).toContain('<LocationConstraint');
    const buckets = await send('GET', '/');
    expect(buckets.body).toContain(`<Name>${VOLUME}</Name>`);
    await send('PUT', `/${VOLUME}/a.txt`, { body: Buffer.from('a'), headers: { 'content-length': '1' } });
    const xml = `<Delete><Object><Key>a.txt</Key></Object><Object><Key>dir/hello.txt</Key></Object></Delete>`;
    const deleted = await send('POST', `/${VOLUME}?delete`, {
      body: Buffer.from(xml),
      headers: { 'content-length': String(xml.length), 'content-type': 'application/xml' },
    });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toContain('<Deleted><Key>a.txt</Key></Deleted>');
    expect(deleted.body).toContain('<Deleted><Key>dir/hello.txt</Key></Deleted>');
    expect((await moto.request('GET', `/${VOLUME}/a.txt`)).status).toBe(404);
  });

  it('answers NotImplemented for what RunPod lacks', async () => {
    for (const [method, path] of [
      ['PUT', '/newbucket1'],
      ['DELETE', `/${VOLUME}`],
      ['GET', `/${VOLUME}/x?tagging`],
      ['GET', `/${VOLUME}?versioning`],
    ] as const) {
      const response = await send(method, path);
      expect(response.status, `${method} ${path}`).toBe(501);
      expect(response.body).toContain('<Code>NotImplemented</Code>');
    }
  });

  it('refuses a PutObject over 500 MB before the body is sent (Expect: 100-continue)', async () => {
    const response = await send('PUT', `/${VOLUME}/huge.bin`, { headers: { 'content-length': String(600_000_000), expect: '100-continue' } });
    expect(response.sawContinue).toBe(false);
    expect(response.status).toBe(400);
    expect(response.body).toContain('<Code>EntityTooLarge</Code>');
    expect(response.body).toContain('multipart');
  });

  it('answers 100 Continue only to authorized uploads', async () => {
    const denied = await send('PUT', `/${VOLUME}/x.txt`, { headers: { 'content-length': '5', expect: '100-continue' }, secret: `${key.secretAccessKey}x` });
    expect(denied.sawContinue).toBe(false);
    expect(denied.status).toBe(403);
    const allowed = await send('PUT', `/${VOLUME}/x.txt`, { headers: { 'content-length': '5', expect: '100-continue' }, body: Buffer.from('12345') });
    expect(allowed.sawContinue).toBe(true);
    expect(allowed.status).toBe(200);
  });

  it('serves virtual-host addressing under KEYGATE_DOMAIN', async () => {
    const put = await send('PUT', '/vhost.txt', { host: `${VOLUME}.${DOMAIN}:${port}`, body: Buffer.from('vhost'), headers: { 'content-length': '5' } });
    expect(put.status).toBe(200);
    expect((await send('GET', `/${VOLUME}/vhost.txt`)).body).toBe('vhost');
  });

  it('has a health endpoint that cannot collide with a bucket', async () => {
    const response = await fetch(`${gateway.url}/_health`);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual({ status: 'ok' });
    const head = await fetch(`${gateway.url}/_health`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    // Any other method there is an S3 request like any other: refused as one, never a health answer.
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const other = await fetch(`${gateway.url}/_health`, { method });
      expect(other.status, method).toBeGreaterThanOrEqual(400);
      expect(other.status, method).toBeLessThan(500);
      expect(await other.text(), method).toContain('<Error>');
    }
  });

  it('answers bad input with S3 XML errors, never 5xx', async () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      [`/${VOLUME}/k`, { authorization: 'AWS4-HMAC-SHA256 Credential=garbage' }, 'AuthorizationHeaderMalformed'],
      [`/${VOLUME}/%ZZ`, {}, 'InvalidArgument'],
      ['/Not_A_Bucket/k', {}, 'InvalidBucketName'],
      [`/${VOLUME}/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Algorithm=AWS4-HMAC-SHA256`, {}, ''],
    ];
    for (const [path, headers, code] of cases) {
      const response = await fetch(`${gateway.url}${path}`, { headers });
      expect(response.status, path).toBeGreaterThanOrEqual(400);
      expect(response.status, path).toBeLessThan(500);
      const text = await response.text();
      expect(text).toMatch(/^<\?xml[^>]*>\n<Error><Code>\w+<\/Code>/);
      if (code) expect(text).toContain(`<Code>${code}</Code>`);
    }
  });
});
