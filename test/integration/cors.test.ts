/**
 * Per-bucket CORS through a real gateway, without a browser: rules set through the admin API and
 * the CLI, preflights answered without authentication (path-style and virtual-host), and
 * Access-Control-* headers on actual responses, errors included. test/integration/browser.test.ts
 * proves the same with a real browser.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import aws4 from 'aws4';
import { FormData, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/clients.js';
import { REPO_ROOT, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';

const WEB = 'web-assets';
const PLAIN = 'plain-bucket';
const APP = 'https://app.example.com';
const DOMAIN = 's3.keygate.test';

const RULES = {
  CORSRules: [
    {
      AllowedOrigins: [APP],
      AllowedMethods: ['PUT', 'POST', 'GET'],
      AllowedHeaders: ['content-type', 'x-amz-*'],
      ExposeHeaders: ['ETag', 'x-amz-request-id'],
      MaxAgeSeconds: 600,
    },
    { AllowedOrigins: ['*'], AllowedMethods: ['GET', 'HEAD'] },
  ],
};

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

describe('per-bucket CORS', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(WEB);
    await upstream.createBucket(PLAIN);
    gateway = await startGateway({ ...upstreamEnv(upstream), KEYGATE_DOMAIN: DOMAIN });
    await gateway.addBucket({ name: WEB });
    await gateway.addBucket({ name: PLAIN });
    key = await gateway.createKey({ name: 'web', permissions: ['read', 'write'] });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  async function call(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    const response = await request(`${gateway.url}${target}`, { method: method as 'GET', headers, body });
    return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
  }

  async function signedCall(method: string, target: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
    const url = new URL(gateway.url);
    const signed = aws4.sign(
      { host: url.host, method, path: target, service: 's3', region: key.region, headers: { 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD', ...headers }, body },
      { accessKeyId: key.accessKeyId, secretAccessKey: key.secretAccessKey },
    );
    return call(method, target, signed.headers as Record<string, string>, body);
  }

  const preflight = (target: string, origin: string | null, method: string | null, requestHeaders?: string, extra: Record<string, string> = {}) =>
    call('OPTIONS', target, {
      ...(origin === null ? {} : { origin }),
      ...(method === null ? {} : { 'access-control-request-method': method }),
      ...(requestHeaders === undefined ? {} : { 'access-control-request-headers': requestHeaders }),
      ...extra,
    });

  describe('rules through the admin API and the CLI', () => {
    it('stores, shows, validates and clears rules over the admin API', async () => {
      const stored = await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, RULES);
      expect(stored.status).toBe(200);
      expect(stored.json.bucket).toBe(WEB);
      expect(stored.json.rules[0]).toEqual({
        allowedOrigins: [APP],
        allowedMethods: ['PUT', 'POST', 'GET'],
        allowedHeaders: ['content-type', 'x-amz-*'],
        exposeHeaders: ['ETag', 'x-amz-request-id'],
        maxAgeSeconds: 600,
      });
      expect((await gateway.admin('GET', `/v1/buckets/${WEB}/cors`)).json).toEqual(stored.json);
      expect((await gateway.admin('GET', '/v1/buckets')).json.find((b: { name: string }) => b.name === WEB).cors).toEqual(stored.json.rules);

      const invalid = await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, [{ allowedOrigins: ['*'], allowedMethods: ['PATCH'] }]);
      expect(invalid.status).toBe(400);
      expect(invalid.json.detail).toMatch(/"PATCH" is not an allowed method/);
      expect((await gateway.admin('PUT', '/v1/buckets/not-registered/cors', RULES)).status).toBe(404);
      expect((await gateway.admin('GET', '/v1/buckets/not-registered/cors')).status).toBe(404);
      expect((await gateway.admin('DELETE', '/v1/buckets/not-registered/cors')).status).toBe(404);
      // The earlier rules are untouched by the refused update.
      expect((await gateway.admin('GET', `/v1/buckets/${WEB}/cors`)).json).toEqual(stored.json);
    });

    it('sets, shows and clears rules with keygate buckets cors', async () => {
      const cli = (...args: string[]) => run(process.execPath, [path.join(REPO_ROOT, 'dist/cli/main.js'), 'buckets', 'cors', ...args], gateway.env);
      const dir = mkdtempSync(path.join(tmpdir(), 'keygate-cors-'));
      const file = path.join(dir, 'rules.json');
      writeFileSync(file, JSON.stringify([{ allowedOrigins: ['http://localhost:*'], allowedMethods: ['GET'] }]));
      const set = await cli(PLAIN, '--file', file);
      expect(set.code, set.stderr).toBe(0);
      expect(set.stdout).toContain(`Stored 1 CORS rule for ${PLAIN}`);
      const shown = await cli(PLAIN, '--json');
      expect(JSON.parse(shown.stdout)).toEqual({ bucket: PLAIN, rules: [{ allowedOrigins: ['http://localhost:*'], allowedMethods: ['GET'] }] });
      expect((await cli(PLAIN)).stdout).toMatch(/http:\/\/localhost:\*\s+GET/);
      // The running server sees the change on its next request.
      expect((await preflight(`/${PLAIN}/x`, 'http://localhost:5173', 'GET')).status).toBe(200);

      writeFileSync(file, '{"CORSRules": [{"AllowedOrigins": ["*"], "AllowedMethods": ["get"]}]}');
      const bad = await cli(PLAIN, '--file', file);
      expect(bad.code).toBe(2);
      expect(bad.stderr).toMatch(/"get" is not an allowed method/);
      expect((await cli('not-registered', '--clear')).code).toBe(1);

      const cleared = await cli(PLAIN, '--clear');
      expect(cleared.code).toBe(0);
      expect((await cli(PLAIN)).stdout).toContain('has no CORS rules');
      expect((await preflight(`/${PLAIN}/x`, 'http://localhost:5173', 'GET')).status).toBe(403);
    });
  });

  describe('preflights (OPTIONS) need no credentials and never reach the upstream', () => {
    beforeAll(async () => {
      expect((await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, RULES)).status).toBe(200);
    });

    it('answers an allowed preflight on an object and on the bucket with the rule’s headers', async () => {
      const reply = await preflight(`/${WEB}/uploads/photo.jpg`, APP, 'PUT', 'Content-Type, X-Amz-Meta-Owner');
      expect(reply.status).toBe(200);
      expect(reply.headers).toMatchObject({
        'access-control-allow-origin': APP,
        'access-control-allow-methods': 'PUT, POST, GET',
        'access-control-allow-headers': 'content-type, x-amz-meta-owner',
        'access-control-expose-headers': 'ETag, x-amz-request-id',
        'access-control-max-age': '600',
        'access-control-allow-credentials': 'true',
        vary: 'Origin, Access-Control-Request-Headers, Access-Control-Request-Method',
      });
      expect(reply.text).toBe('');
      const bucketLevel = await preflight(`/${WEB}`, APP, 'POST', 'content-type');
      expect(bucketLevel.status).toBe(200);
      expect(bucketLevel.headers['access-control-allow-origin']).toBe(APP);
      // The second rule allows GET from anywhere, as "*".
      const anyone = await preflight(`/${WEB}/public.txt`, 'https://elsewhere.example', 'GET');
      expect(anyone.status).toBe(200);
      expect(anyone.headers['access-control-allow-origin']).toBe('*');
      expect(anyone.headers['access-control-allow-credentials']).toBeUndefined();
    });

    it('answers virtual-host preflights too', async () => {
      const reply = await preflight('/uploads/photo.jpg', APP, 'PUT', 'content-type', { host: `${WEB}.${DOMAIN}` });
      expect(reply.status).toBe(200);
      expect(reply.headers['access-control-allow-origin']).toBe(APP);
      const refused = await preflight('/uploads/photo.jpg', APP, 'PUT', undefined, { host: `${PLAIN}.${DOMAIN}` });
      expect(refused.status).toBe(403);
    });

    it('refuses what no rule allows with 403 AccessForbidden, like S3', async () => {
      for (const [target, origin, method, headers] of [
        [`/${WEB}/k`, 'https://evil.example', 'PUT', 'content-type'],
        [`/${WEB}/k`, APP, 'DELETE', undefined],
        [`/${WEB}/k`, APP, 'PUT', 'authorization'],
      ] as const) {
        const reply = await preflight(target, origin, method, headers);
        expect(reply.status, `${origin} ${method} ${headers}`).toBe(403);
        expect(reply.text).toContain('<Code>AccessForbidden</Code>');
        expect(reply.text).toContain('CORSResponse: This CORS request is not allowed.');
        expect(reply.text).toContain(`<Method>${method}</Method><ResourceType>OBJECT</ResourceType>`);
        expect(reply.headers['access-control-allow-origin']).toBeUndefined();
      }
      // No rules, or a bucket the registry does not know: the same answer.
      for (const bucket of [PLAIN, 'not-registered']) {
        const reply = await preflight(`/${bucket}`, APP, 'GET');
        expect(reply.status).toBe(403);
        expect(reply.text).toContain('<Code>AccessForbidden</Code><Message>CORSResponse: CORS is not enabled for this bucket.</Message>');
        expect(reply.text).toContain('<ResourceType>BUCKET</ResourceType>');
      }
    });

    it('answers 400 without Origin or with a bad Access-Control-Request-Method', async () => {
      const noOrigin = await preflight(`/${WEB}/k`, null, 'PUT');
      expect(noOrigin.status).toBe(400);
      expect(noOrigin.text).toContain('<Code>BadRequest</Code><Message>Insufficient information. Origin request header needed.</Message>');
      for (const method of [null, 'PATCH']) {
        const reply = await preflight(`/${WEB}/k`, APP, method);
        expect(reply.status).toBe(400);
        expect(reply.text).toContain('Invalid Access-Control-Request-Method');
      }
    });

    it('applies rule changes on the next request', async () => {
      expect((await preflight(`/${WEB}/k`, 'https://new.example', 'PUT')).status).toBe(403);
      await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, [...RULES.CORSRules, { AllowedOrigins: ['https://new.example'], AllowedMethods: ['PUT'] }]);
      expect((await preflight(`/${WEB}/k`, 'https://new.example', 'PUT')).status).toBe(200);
      await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, RULES);
      expect((await preflight(`/${WEB}/k`, 'https://new.example', 'PUT')).status).toBe(403);
    });
  });

  describe('actual requests', () => {
    beforeAll(async () => {
      expect((await gateway.admin('PUT', `/v1/buckets/${WEB}/cors`, RULES)).status).toBe(200);
    });

    it('get Access-Control-* headers on successes from an allowed origin', async () => {
      const put = await signedCall('PUT', `/${WEB}/cors/object.txt`, { origin: APP, 'content-type': 'text/plain' }, 'cors body');
      expect(put.status, put.text).toBe(200);
      expect(put.headers['access-control-allow-origin']).toBe(APP);
      expect(put.headers['access-control-expose-headers']).toBe('ETag, x-amz-request-id');
      expect(put.headers.vary).toContain('Origin');
      expect(put.headers.etag).toBeDefined();

      const get = await signedCall('GET', `/${WEB}/cors/object.txt`, { origin: 'https://elsewhere.example' });
      expect(get.text).toBe('cors body');
      expect(get.headers['access-control-allow-origin']).toBe('*');
    });

    it('get them on upstream and gateway errors too, so browser code can read the error', async () => {
      const missing = await signedCall('GET', `/${WEB}/cors/missing.txt`, { origin: APP });
      expect(missing.status).toBe(404);
      expect(missing.headers['access-control-allow-origin']).toBe(APP);
      const anonymous = await call('GET', `/${WEB}/cors/object.txt`, { origin: APP });
      expect(anonymous.status).toBe(403);
      expect(anonymous.text).toContain('<Code>AccessDenied</Code>');
      expect(anonymous.headers['access-control-allow-origin']).toBe(APP);
      expect(anonymous.headers['access-control-expose-headers']).toBe('ETag, x-amz-request-id');
    });

    it('get them on POST Object form uploads, also addressed virtual-host style', async () => {
      const issued = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${WEB}/forms/`, method: 'POST' });
      expect(issued.status).toBe(200);
      const form = new FormData();
      for (const [name, value] of Object.entries(issued.json.fields as Record<string, string>)) form.append(name, value);
      form.append('file', new Blob(['virtual-host form']), 'vhost.txt');
      const response = await request(`${gateway.url}/`, { method: 'POST', headers: { host: `${WEB}.${DOMAIN}`, origin: APP }, body: form });
      expect(response.statusCode, await response.body.text()).toBe(204);
      expect(response.headers['access-control-allow-origin']).toBe(APP);
      expect(response.headers['access-control-expose-headers']).toBe('ETag, x-amz-request-id');
      expect((await upstream.request('GET', `/${WEB}/forms/vhost.txt`)).body.toString()).toBe('virtual-host form');

      const refused = await request(`${gateway.url}/`, { method: 'POST', headers: { host: `${WEB}.${DOMAIN}`, origin: APP }, body: new FormData() });
      expect(refused.statusCode).toBe(403);
      expect(refused.headers['access-control-allow-origin']).toBe(APP);
      await refused.body.dump();
    });

    it('get none for an origin or method no rule allows, nor on buckets without rules', async () => {
      const evil = await signedCall('GET', `/${WEB}/cors/object.txt`, { origin: 'https://evil.example' });
      // The "*" rule allows GET from anywhere; DELETE from an unknown origin is allowed by no rule.
      expect(evil.headers['access-control-allow-origin']).toBe('*');
      const del = await signedCall('DELETE', `/${WEB}/cors/nothing.txt`, { origin: 'https://evil.example' });
      expect(del.headers['access-control-allow-origin']).toBeUndefined();
      expect(del.headers.vary).toContain('Origin');
      const plain = await signedCall('GET', `/${PLAIN}/x`, { origin: APP });
      expect(plain.headers['access-control-allow-origin']).toBeUndefined();
      const noOrigin = await signedCall('GET', `/${WEB}/cors/object.txt`);
      expect(noOrigin.headers['access-control-allow-origin']).toBeUndefined();
    });
  });
});
