import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { ADMIN_BODY_LIMIT_BYTES, createAdminApp } from '../../src/http/admin.js';
import { ADMIN_OPENAPI } from '../../src/http/openapi.js';
import { openStore, type Store } from '../../src/store/open.js';
import { startServer } from '../../src/server.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from '../helpers/keygate-cli.js';
import { CREATED_KEY_FIELDS, KEY_FIELDS } from '../helpers/key-shapes.js';

const TOKEN = 'admin-test-token-0123456789abcdef';
const PUBLIC_URL = 'https://s3.example.test';
const UNAUTHORIZED = { error: 'unauthorized', detail: 'Missing or invalid API key' };

const dirs = makeTempDirs();
let store: Store;
let app: Hono;

beforeEach(async () => {
  const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_PUBLIC_URL: PUBLIC_URL, KEYGATE_REGION: 'eu-test-1' });
  store = await openStore(config);
  app = createAdminApp({ config, store, adminToken: TOKEN });
});
afterEach(async () => {
  await store.close();
  dirs.cleanup();
});

async function call(method: string, route: string, options: { body?: unknown; raw?: string; auth?: string | null } = {}) {
  const headers: Record<string, string> = {};
  const auth = options.auth === undefined ? `Bearer ${TOKEN}` : options.auth;
  if (auth !== null) headers.authorization = auth;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] = 'application/json';
  }
  const response = await app.request(route, { method, headers, body });
  const text = await response.text();
  return { status: response.status, headers: response.headers, text, json: text ? JSON.parse(text) : null };
}

describe('authentication', () => {
  it('serves /health without a token', async () => {
    const response = await call('GET', '/health', { auth: null });
    expect(response.status).toBe(200);
    expect(response.json).toEqual({ status: 'ok' });
  });

  it.each([
    ['missing', null],
    ['wrong scheme', `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`],
    ['token without scheme', TOKEN],
    ['empty bearer', 'Bearer '],
    ['wrong token', 'Bearer not-the-token-at-all-000000'],
    ['token prefix', `Bearer ${TOKEN.slice(0, -1)}`],
    ['token with suffix', `Bearer ${TOKEN}x`],
    ['two tokens', `Bearer ${TOKEN} ${TOKEN}`],
  ])('rejects %s with 401', async (_label, auth) => {
    for (const [method, route] of [
      ['GET', '/v1/keys'],
      ['POST', '/v1/keys'],
      ['DELETE', '/v1/keys/rs_ak_live_0000000000000000000000000000000000000000'],
      ['GET', '/v1/buckets'],
      ['GET', '/openapi.json'],
      ['GET', '/no/such/route'],
    ] as const) {
      const response = await call(method, route, { auth, body: method === 'POST' ? { name: 'x', preset: 'read-only' } : undefined });
      expect(response.status, `${method} ${route}`).toBe(401);
      expect(response.json).toEqual(UNAUTHORIZED);
      expect(response.headers.get('www-authenticate')).toBe('Bearer');
    }
    expect(await store.keys.list()).toEqual([]);
  });

  it('accepts the right token (scheme is case-insensitive)', async () => {
    expect((await call('GET', '/v1/keys')).status).toBe(200);
    expect((await call('GET', '/v1/keys', { auth: `bearer ${TOKEN}` })).status).toBe(200);
  });
});

describe('keys', () => {
  it('creates a key and returns the CLI --json shape', async () => {
    const response = await call('POST', '/v1/keys', { body: { name: 'uploader', bucket: 'my-data', preset: 'read-write', expiresIn: '30d' } });
    expect(response.status).toBe(201);
    expect(Object.keys(response.json)).toEqual(CREATED_KEY_FIELDS);
    expect(response.json).toMatchObject({
      name: 'uploader',
      bucket: 'my-data',
      permissions: ['read', 'write'],
      endpoint: PUBLIC_URL,
      region: 'eu-test-1',
    });
    expect(response.json.accessKeyId).toMatch(/^rs_ak_live_[0-9a-f]{40}$/);
    expect(response.json.secretAccessKey).toMatch(/^rs_sk_live_[0-9a-f]{64}$/);
    const created = Date.parse(response.json.createdAt);
    expect(Date.parse(response.json.expiresAt) - created).toBe(30 * 86_400_000);
    // The store agrees, secret included.
    expect((await store.keys.findWithSecret(response.json.accessKeyId))?.secretAccessKey).toBe(response.json.secretAccessKey);
  });

  it('limits a key to networks, and refuses malformed ones', async () => {
    const office = await call('POST', '/v1/keys', { body: { name: 'office', permissions: ['read'], allowedIps: '10.0.0.0/8, 2001:db8::/32' } });
    expect(office.status).toBe(201);
    expect(office.json.allowedIps).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    expect((await call('GET', `/v1/keys/${office.json.accessKeyId}`)).json.allowedIps).toEqual(['10.0.0.0/8', '2001:db8::/32']);
    const listed = await call('POST', '/v1/keys', { body: { name: 'list', permissions: ['read'], allowedIps: ['192.168.1.7'] } });
    expect(listed.json.allowedIps).toEqual(['192.168.1.7/32']);
    for (const allowedIps of ['10.0.0.0/33', 'example.com', [1], { a: 1 }, ' , ']) {
      const refused = await call('POST', '/v1/keys', { body: { name: 'bad', permissions: ['read'], allowedIps } });
      expect(refused.status, JSON.stringify(allowedIps)).toBe(400);
    }
  });

  it('gives a key its own rate limit, and refuses a malformed one', async () => {
    const limited = await call('POST', '/v1/keys', { body: { name: 'slow', permissions: ['read'], rateLimit: '2/s', rateBurst: 5 } });
    expect(limited.status).toBe(201);
    expect(limited.json.rateLimit).toEqual({ requestsPerSecond: 2, burst: 5 });
    expect((await call('GET', `/v1/keys/${limited.json.accessKeyId}`)).json.rateLimit).toEqual({ requestsPerSecond: 2, burst: 5 });
    expect((await store.keys.get(limited.json.accessKeyId))!.rateLimit).toEqual({ requestsPerSecond: 2, burst: 5 });
    for (const body of [{ rateLimit: 'lots' }, { rateLimit: 0 }, { rateBurst: 3 }, { rateLimit: '1/s', rateBurst: 0 }]) {
      const refused = await call('POST', '/v1/keys', { body: { name: 'bad', permissions: ['read'], ...body } });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json.error).toBe('invalid_request');
    }
  });

  it('creates workspace keys from permissions and numeric lifetimes', async () => {
    const response = await call('POST', '/v1/keys', { body: { name: 'ops', permissions: ['delete', 'read'], expiresIn: 3600, bucket: null } });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ bucket: null, permissions: ['read', 'delete'] });
    expect(Date.parse(response.json.expiresAt) - Date.parse(response.json.createdAt)).toBe(3_600_000);
  });

  it('lists, filters, shows and deletes keys', async () => {
    const a = (await call('POST', '/v1/keys', { body: { name: 'a', preset: 'read-only' } })).json;
    const b = (await call('POST', '/v1/keys', { body: { name: 'b', bucket: 'my-data', preset: 'read-only' } })).json;

    const list = await call('GET', '/v1/keys');
    expect(list.status).toBe(200);
    expect(list.json.map((k: { accessKeyId: string }) => k.accessKeyId).sort()).toEqual([a.accessKeyId, b.accessKeyId].sort());
    for (const key of list.json) expect(Object.keys(key)).toEqual(KEY_FIELDS);
    expect(list.text).not.toContain('rs_sk_');

    const filtered = await call('GET', '/v1/keys?bucket=my-data');
    expect(filtered.json.map((k: { name: string }) => k.name)).toEqual(['b']);

    const shown = await call('GET', `/v1/keys/${a.accessKeyId}`);
    expect(shown.status).toBe(200);
    const { secretAccessKey: _secret, ...withoutSecret } = a;
    expect(shown.json).toEqual({ ...withoutSecret, lastUsedAt: null, disabled: false, disabledAt: null });

    const deleted = await call('DELETE', `/v1/keys/${a.accessKeyId}`);
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect(await store.keys.findWithSecret(a.accessKeyId)).toBeNull();
    expect((await call('GET', `/v1/keys/${a.accessKeyId}`)).status).toBe(404);
    const again = await call('DELETE', `/v1/keys/${a.accessKeyId}`);
    expect(again.status).toBe(404);
    expect(again.json).toMatchObject({ error: 'not_found' });
    expect(again.json.detail).toContain(a.accessKeyId);
  });

  it('disables and enables keys with PATCH {"disabled": …}, refusing anything else', async () => {
    const key = (await call('POST', '/v1/keys', { body: { name: 'p', preset: 'read-only' } })).json;
    const disabled = await call('PATCH', `/v1/keys/${key.accessKeyId}`, { body: { disabled: true } });
    expect(disabled.status).toBe(200);
    expect(disabled.json).toMatchObject({ accessKeyId: key.accessKeyId, disabled: true, disabledAt: expect.stringMatching(/^\d{4}-/) });
    expect((await store.keys.get(key.accessKeyId))!.disabledAt).not.toBeNull();
    expect((await call('GET', `/v1/keys/${key.accessKeyId}`)).json.disabled).toBe(true);
    for (const body of [{}, { disabled: 'true' }, { disabled: 1 }, { disabled: null }, { disabled: true, name: 'x' }, []]) {
      const refused = await call('PATCH', `/v1/keys/${key.accessKeyId}`, { body });
      expect(refused.status, JSON.stringify(body)).toBe(400);
      expect(refused.json).toMatchObject({ error: 'invalid_request' });
    }
    expect((await call('PATCH', `/v1/keys/${key.accessKeyId}`, { raw: '{"disabled":', auth: `Bearer ${TOKEN}` })).status).toBe(400);
    const enabled = await call('PATCH', `/v1/keys/${key.accessKeyId}`, { body: { disabled: false } });
    expect(enabled.json).toMatchObject({ disabled: false, disabledAt: null });
    expect((await call('PATCH', '/v1/keys/rs_ak_live_0000000000000000000000000000000000000000', { body: { disabled: true } })).status).toBe(404);
    expect((await call('PATCH', '/v1/keys/nope', { body: { disabled: true } })).status).toBe(404);
    expect((await call('PATCH', `/v1/keys/${key.accessKeyId}`, { body: { disabled: true }, auth: null })).status).toBe(401);
  });

  it('answers 404 JSON for ids that are not access key ids', async () => {
    for (const id of ['nope', 'rs_ak_live_xyz', '%00']) {
      expect((await call('GET', `/v1/keys/${id}`)).json).toMatchObject({ error: 'not_found' });
      expect((await call('DELETE', `/v1/keys/${id}`)).status).toBe(404);
    }
  });

  it.each([
    [{}, /name is required/],
    [{ name: 'x' }, /permissions .* or a preset/],
    [{ name: 'x', bucket: 'my-data', permissions: ['read', 'admin'] }, /cannot have admin/],
    [{ name: 'x', bucket: 'my-data', permissions: ['read', 'delete'] }, /cannot delete/],
    [{ name: 'x', permissions: ['read', 'root'] }, /Unknown permission "root"/],
    [{ name: 'x', bucket: 'Nope_Bucket', preset: 'read-only' }, /Bucket name/],
    [{ name: 'x', preset: 'read-only', expiresIn: '1y' }, /lifetime/],
    [{ name: 'x', preset: 'read-only', expiresIn: -10 }, /positive/],
    [{ name: 'x', preset: 'read-only', permissions: ['read'] }, /not both/],
    [{ name: 42, preset: 'read-only' }, /name is required/],
    [{ name: 'x', preset: 'read-only', permission: ['read'] }, /Unknown field "permission"/],
    [['name', 'x'], /JSON object/],
    ['just a string', /JSON object/],
    [null, /JSON object/],
  ])('rejects %j with 400 invalid_request', async (body, detail) => {
    const response = await call('POST', '/v1/keys', { body });
    expect(response.status).toBe(400);
    expect(response.json.error).toBe('invalid_request');
    expect(response.json.detail).toMatch(detail);
    expect(await store.keys.list()).toEqual([]);
  });

  it('rejects malformed JSON and empty bodies', async () => {
    for (const raw of ['{"name": "x",', '', 'nul']) {
      const response = await call('POST', '/v1/keys', { raw });
      expect(response.status).toBe(400);
      expect(response.json).toMatchObject({ error: 'invalid_request' });
      expect(response.json.detail).toMatch(/not valid JSON/);
    }
  });

  it('caps request bodies', async () => {
    const big = { name: 'x', preset: 'read-only', padding: 'a'.repeat(ADMIN_BODY_LIMIT_BYTES) };
    const response = await call('POST', '/v1/keys', { body: big });
    expect(response.status).toBe(413);
    expect(response.json).toMatchObject({ error: 'payload_too_large' });
    expect(await store.keys.list()).toEqual([]);
  });
});

describe('buckets', () => {
  it('adds, lists and removes buckets', async () => {
    const added = await call('POST', '/v1/buckets', { body: { name: 'abc123xyz9', datacenter: 'eu-ro-1' } });
    expect(added.status).toBe(201);
    expect(added.json).toMatchObject({ name: 'abc123xyz9', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: 'abc123xyz9', cors: null });
    expect(Object.keys(added.json)).toEqual(['name', 'datacenter', 'endpoint', 'region', 'upstreamBucket', 'cors', 'createdAt']);
    const other = await call('POST', '/v1/buckets', {
      body: { name: 'minio-data', endpoint: 'http://127.0.0.1:9000', region: 'us-east-1', upstreamBucket: 'real' },
    });
    expect(other.status).toBe(201);

    const list = await call('GET', '/v1/buckets');
    expect(list.json.map((b: { name: string }) => b.name)).toEqual(['abc123xyz9', 'minio-data']);
    expect((await store.buckets.get('minio-data'))?.upstreamBucket).toBe('real');

    expect((await call('DELETE', '/v1/buckets/minio-data')).status).toBe(204);
    const missing = await call('DELETE', '/v1/buckets/minio-data');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: 'not_found' });
    expect(await store.buckets.get('minio-data')).toBeNull();
  });

  it('answers 409 for a bucket that is already registered', async () => {
    await call('POST', '/v1/buckets', { body: { name: 'my-data', datacenter: 'EU-RO-1' } });
    const response = await call('POST', '/v1/buckets', { body: { name: 'my-data', datacenter: 'US-KS-2' } });
    expect(response.status).toBe(409);
    expect(response.json).toMatchObject({ error: 'conflict' });
    expect((await store.buckets.get('my-data'))?.datacenter).toBe('EU-RO-1');
  });

  it.each([
    [{ name: 'Bad_Name' }, /lowercase/],
    [{ name: 'ok-name', datacenter: 'EU-RO-1', endpoint: 'http://x', region: 'r' }, /not both/],
    [{ name: 'ok-name', endpoint: 'http://x' }, /region/],
    [{ name: 'ok-name', endpoint: 'javascript:alert(1)', region: 'us-east-1' }, /http/],
    [{ name: 'ok-name', dc: 'EU-RO-1' }, /Unknown field "dc"/],
    [{}, /name is required/],
  ])('rejects %j with 400', async (body, detail) => {
    const response = await call('POST', '/v1/buckets', { body });
    expect(response.status).toBe(400);
    expect(response.json.error).toBe('invalid_request');
    expect(response.json.detail).toMatch(detail);
    expect(await store.buckets.list()).toEqual([]);
  });
});

describe('routing and documentation', () => {
  it('answers unknown routes with 404 JSON', async () => {
    for (const [method, route] of [
      ['GET', '/v1/nope'],
      ['PUT', '/v1/keys'],
      ['GET', '/v1/presign'],
    ] as const) {
      const response = await call(method, route);
      expect(response.status).toBe(404);
      expect(response.json).toMatchObject({ error: 'not_found' });
    }
  });

  it('serves an OpenAPI 3.1 document describing every route', async () => {
    const response = await call('GET', '/openapi.json');
    expect(response.status).toBe(200);
    expect(response.json).toEqual(JSON.parse(JSON.stringify(ADMIN_OPENAPI)));
    expect(response.json.openapi).toBe('3.1.0');
    const operations = Object.entries(response.json.paths as Record<string, Record<string, unknown>>).flatMap(([route, item]) =>
      Object.keys(item)
        .filter((k) => k !== 'parameters')
        .map((method) => `${method.toUpperCase()} ${route}`),
    );
    expect(operations.sort()).toEqual(
      [
        'GET /health',
        'GET /metrics',
        'GET /openapi.json',
        'POST /v1/keys',
        'GET /v1/keys',
        'GET /v1/keys/{id}',
        'DELETE /v1/keys/{id}',
        'PATCH /v1/keys/{id}',
        'POST /v1/buckets',
        'GET /v1/buckets',
        'DELETE /v1/buckets/{name}',
        'GET /v1/buckets/{name}/cors',
        'PUT /v1/buckets/{name}/cors',
        'DELETE /v1/buckets/{name}/cors',
        'POST /v1/presign',
      ].sort(),
    );
    // Every $ref resolves.
    const refs = [...JSON.stringify(response.json).matchAll(/"\$ref":"#\/components\/(\w+)\/(\w+)"/g)];
    expect(refs.length).toBeGreaterThan(5);
    for (const [, section, name] of refs) expect(response.json.components[section!][name!], `${section}/${name}`).toBeDefined();
  });
});

describe('startServer', () => {
  it('serves the admin API on a real listener and shuts down', async () => {
    const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_ADMIN_PORT: '0', KEYGATE_ADMIN_TOKEN: TOKEN });
    const lines: string[] = [];
    const server = await startServer(config, { announce: (t) => lines.push(t) });
    try {
      expect(lines.join('')).toContain(`listening on ${server.adminUrl}`);
      expect(await (await fetch(`${server.adminUrl}/health`)).json()).toEqual({ status: 'ok' });
      expect((await fetch(`${server.adminUrl}/v1/keys`)).status).toBe(401);
      // The listener serves one app: unknown routes get the JSON error shape, /metrics the token too.
      const unknown = await fetch(`${server.adminUrl}/v1/nope`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(unknown.status).toBe(404);
      expect(await unknown.json()).toMatchObject({ error: 'not_found' });
      expect((await fetch(`${server.adminUrl}/metrics`)).status).toBe(401);
      const metrics = await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toMatch(/^# HELP keygate_s3_requests_total /m);
      const created = await fetch(`${server.adminUrl}/v1/keys`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'live', preset: 'read-only' }),
      });
      expect(created.status).toBe(201);
    } finally {
      await server.close();
    }
    await expect(fetch(`${server.adminUrl}/health`)).rejects.toThrow();
  });

  it('names the setting to change when the port is taken', async () => {
    const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_ADMIN_PORT: '0', KEYGATE_ADMIN_TOKEN: TOKEN });
    const first = await startServer(config, { announce: () => {} });
    try {
      const port = new URL(first.adminUrl).port;
      const clash = configFor(config.dataDir, { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_ADMIN_PORT: port, KEYGATE_ADMIN_TOKEN: TOKEN });
      await expect(startServer(clash, { announce: () => {} })).rejects.toThrow(/already in use.*change KEYGATE_ADMIN_HOST \/ KEYGATE_ADMIN_PORT/);
    } finally {
      await first.close();
    }
  });
});
