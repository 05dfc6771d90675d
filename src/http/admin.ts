/**
 * The admin listener (loopback by default): the admin API, which manages keys and buckets over JSON
 * with a bearer token (shapes match the CLI's --json output; every failure is JSON
 * `{"error": <code>, "detail": <what to do>}`), and the dashboard (src/http/dashboard/) on the
 * other paths.
 */
import type { GatewayMetrics } from '../observability/metrics.js';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Config } from '../config.js';
import { CorsDocumentError, parseCorsDocument } from '../buckets/cors.js';
import { bucketToJson, corsToJson } from '../buckets/json.js';
import { BucketValidationError, type AddBucketInput } from '../buckets/validate.js';
import { isAccessKeyId } from '../crypto/keygen.js';
import { createdKeyToJson, keyToJson } from '../keys/json.js';
import { KeyValidationError, type CreateKeyInput } from '../keys/validate.js';
import { isStoreUnavailable, storeErrorMessage, type Store } from '../store/store.js';
import { verifierForToken, type AdminTokenVerifier } from './admin-token.js';
import { ADMIN_OPENAPI } from './openapi.js';
import { createDashboard, type DashboardDeps } from './dashboard/app.js';
import { PresignError, issuePresignedPost, issuePresignedUrl } from '../presign.js';

export const ADMIN_BODY_LIMIT_BYTES = 64 * 1024;

export interface AdminAppDeps {
  config: Config;
  store: Store;
  /** The token itself, or a verifier (e.g. from the stored hash, see prepareAdminToken). */
  adminToken: string | AdminTokenVerifier;
  /** Served at GET /metrics (Prometheus text format), behind the same token. */
  metrics?: GatewayMetrics;
  /** The dashboard's services (sessions use the same admin token); without them, only the API is served. */
  dashboard?: Omit<DashboardDeps, 'config' | 'store' | 'verifyToken'>;
}

type ErrorCode = 'unauthorized' | 'invalid_request' | 'not_found' | 'conflict' | 'payload_too_large' | 'internal_error' | 'store_unavailable';
type ErrorStatus = 400 | 401 | 404 | 409 | 413 | 500 | 503;

const KEY_FIELDS = ['name', 'bucket', 'permissions', 'preset', 'expiresIn', 'rateLimit', 'rateBurst', 'allowedIps', 'prefix'] as const;
const KEY_UPDATE_FIELDS = ['disabled'] as const;
const BUCKET_FIELDS = ['name', 'datacenter', 'upstreamBucket', 'endpoint', 'region'] as const;
const PRESIGN_FIELDS = ['accessKeyId', 'target', 'method', 'expiresIn', 'maxSize'] as const;

/** Thrown inside handlers for a 400 the error handler renders. */
class InvalidRequest extends Error {}

/** Paths of the JSON API (bearer token); every other path is the dashboard's (session cookie). */
export function isAdminApiPath(path: string): boolean {
  return path === '/health' || path === '/openapi.json' || path === '/metrics' || path === '/v1' || path.startsWith('/v1/');
}

/**
 * The admin listener's app: the JSON API on its paths (isAdminApiPath), the dashboard on every
 * other path when it is configured. The two never share middleware: the API knows only the bearer
 * token, the dashboard only its session cookie.
 */
export function createAdminApp(deps: AdminAppDeps): Hono {
  const verify = typeof deps.adminToken === 'string' ? verifierForToken(deps.adminToken) : deps.adminToken;
  const api = createAdminApi(deps, verify);
  const dashboard = deps.dashboard ? createDashboard({ ...deps.dashboard, config: deps.config, store: deps.store, verifyToken: verify }) : null;
  const app = new Hono();
  app.all('*', (c) => (dashboard === null || isAdminApiPath(c.req.path) ? api : dashboard).fetch(c.req.raw, c.env));
  return app;
}

function createAdminApi(deps: AdminAppDeps, verify: AdminTokenVerifier): Hono {
  const { config, store } = deps;
  const app = new Hono();

  app.get('/health', (c) => c.json({ status: 'ok' }));

  app.use('*', async (c, next) => {
    const token = bearerToken(c.req.header('authorization'));
    if (token === null || !verify(token)) {
      c.header('WWW-Authenticate', 'Bearer');
      return fail(c, 401, 'unauthorized', 'Missing or invalid API key');
    }
    await next();
  });

  app.use(
    '*',
    bodyLimit({
      maxSize: ADMIN_BODY_LIMIT_BYTES,
      onError: (c) => fail(c, 413, 'payload_too_large', `Request bodies are limited to ${ADMIN_BODY_LIMIT_BYTES} bytes.`),
    }),
  );

  app.get('/openapi.json', (c) => c.json(ADMIN_OPENAPI));

  const metrics = deps.metrics;
  if (metrics !== undefined) {
    // Prometheus sends the token with `authorization: { credentials: <token> }` in a scrape config.
    app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'content-type': metrics.registry.contentType }));
  }

  app.post('/v1/keys', async (c) => {
    // Field types are checked by the key rules themselves (validateKeyInput), which the CLI shares.
    const body = (await readJsonObject(c, KEY_FIELDS)) as unknown as CreateKeyInput;
    const key = await store.keys.create(body);
    return c.json(createdKeyToJson(key, config), 201);
  });

  app.get('/v1/keys', async (c) => {
    const bucket = c.req.query('bucket');
    return c.json((await store.keys.list(bucket === undefined ? {} : { bucket })).map((key) => keyToJson(key, config)));
  });

  app.get('/v1/keys/:id', async (c) => {
    const id = c.req.param('id');
    const key = isAccessKeyId(id) ? await store.keys.get(id) : null;
    return key ? c.json(keyToJson(key, config)) : keyNotFound(c, id);
  });

  app.patch('/v1/keys/:id', async (c) => {
    const id = c.req.param('id');
    const body = await readJsonObject(c, KEY_UPDATE_FIELDS);
    if (typeof body.disabled !== 'boolean') throw new InvalidRequest('Send {"disabled": true} to disable the key or {"disabled": false} to enable it.');
    const key = isAccessKeyId(id) ? await store.keys.setDisabled(id, body.disabled) : null;
    return key ? c.json(keyToJson(key, config)) : keyNotFound(c, id);
  });

  app.delete('/v1/keys/:id', async (c) => {
    const id = c.req.param('id');
    return isAccessKeyId(id) && (await store.keys.delete(id)) ? c.body(null, 204) : keyNotFound(c, id);
  });

  app.post('/v1/presign', async (c) => {
    const body = await readJsonObject(c, PRESIGN_FIELDS);
    const { accessKeyId, target, method, expiresIn, maxSize } = body;
    if (typeof accessKeyId !== 'string' || typeof target !== 'string') {
      throw new InvalidRequest('accessKeyId and target ("s3://BUCKET/KEY") are required strings.');
    }
    if ((method !== undefined && typeof method !== 'string') || (expiresIn !== undefined && typeof expiresIn !== 'string' && typeof expiresIn !== 'number')) {
      throw new InvalidRequest('method must be a string and expiresIn a string like "15m" or a number of seconds.');
    }
    if (maxSize !== undefined && typeof maxSize !== 'string' && typeof maxSize !== 'number') {
      throw new InvalidRequest('maxSize must be a number of bytes or a string like "25m".');
    }
    if (method?.toUpperCase() === 'POST') {
      // A browser form (POST Object policy) rather than a URL: the same shape plus its fields.
      const form = await issuePresignedPost(store.keys, config, { accessKeyId, target, maxSize, expiresIn });
      return c.json({ url: form.url, method: 'POST', fields: form.fields, expiresAt: form.expiresAt.toISOString() });
    }
    if (maxSize !== undefined) throw new InvalidRequest('maxSize only applies to method "POST" (browser form uploads).');
    const presigned = await issuePresignedUrl(store.keys, config, { accessKeyId, target, method, expiresIn });
    return c.json({ url: presigned.url, method: presigned.method, expiresAt: presigned.expiresAt.toISOString() });
  });

  app.post('/v1/buckets', async (c) => {
    // Field types are checked by validateAddBucketInput, shared with the CLI.
    const body = (await readJsonObject(c, BUCKET_FIELDS)) as unknown as AddBucketInput;
    return c.json(bucketToJson(await store.buckets.add(body)), 201);
  });

  app.get('/v1/buckets', async (c) => c.json((await store.buckets.list()).map(bucketToJson)));

  app.delete('/v1/buckets/:name', async (c) => {
    const name = c.req.param('name');
    return (await store.buckets.remove(name)) ? c.body(null, 204) : bucketNotFound(c, name);
  });

  app.get('/v1/buckets/:name/cors', async (c) => {
    const name = c.req.param('name');
    const bucket = await store.buckets.get(name);
    return bucket ? c.json(corsToJson(name, bucket.cors)) : bucketNotFound(c, name);
  });

  app.put('/v1/buckets/:name/cors', async (c) => {
    const name = c.req.param('name');
    let rules;
    try {
      rules = parseCorsDocument(await readJson(c));
    } catch (error) {
      if (error instanceof CorsDocumentError) throw new InvalidRequest(error.message);
      throw error;
    }
    const bucket = await store.buckets.setCors(name, rules);
    return bucket ? c.json(corsToJson(name, bucket.cors)) : bucketNotFound(c, name);
  });

  app.delete('/v1/buckets/:name/cors', async (c) => {
    const name = c.req.param('name');
    return (await store.buckets.setCors(name, null)) ? c.body(null, 204) : bucketNotFound(c, name);
  });

  app.notFound((c) => fail(c, 404, 'not_found', `No route ${c.req.method} ${c.req.path}; see GET /openapi.json.`));

  app.onError((error, c) => {
    if (error instanceof InvalidRequest || error instanceof KeyValidationError) {
      return fail(c, 400, 'invalid_request', error.message);
    }
    if (error instanceof PresignError) {
      return error.problem === 'not_found' ? fail(c, 404, 'not_found', error.message) : fail(c, 400, 'invalid_request', error.message);
    }
    if (error instanceof BucketValidationError) {
      return error.problem === 'conflict' ? fail(c, 409, 'conflict', error.message) : fail(c, 400, 'invalid_request', error.message);
    }
    // Log the failure without request bodies (they can carry names a user considers private).
    console.error(JSON.stringify({ level: 'error', msg: 'admin API error', method: c.req.method, path: c.req.path, error: storeErrorMessage(error) }));
    if (isStoreUnavailable(error)) {
      return fail(
        c,
        503,
        'store_unavailable',
        'The key store (PostgreSQL) cannot be reached or did not answer in time; retry shortly. The server log has details.',
      );
    }
    return fail(c, 500, 'internal_error', 'The admin API failed unexpectedly; the server log has details.');
  });

  return app;
}

function fail<C extends Context>(c: C, status: ErrorStatus, error: ErrorCode, detail: string): Response {
  return c.json({ error, detail }, status);
}

function bucketNotFound(c: Context, name: string): Response {
  return fail(c, 404, 'not_found', `Bucket "${name}" is not registered; GET /v1/buckets lists the registered ones.`);
}

function keyNotFound(c: Context, id: string): Response {
  return fail(c, 404, 'not_found', `No access key "${id}"; GET /v1/keys lists the existing ones.`);
}

/** The token of an `Authorization: Bearer <token>` header, or null for any other shape. */
function bearerToken(header: string | undefined): string | null {
  const match = /^Bearer +([^\s]+) *$/i.exec(header ?? '');
  return match ? match[1]! : null;
}

/** Parses the body as JSON; invalid JSON is a 400. */
async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new InvalidRequest('The request body is not valid JSON; send JSON with Content-Type: application/json.');
  }
}

/** Parses the body as a JSON object with only the given fields; anything else is a 400 saying what was wrong. */
async function readJsonObject(c: Context, allowed: readonly string[]): Promise<Record<string, unknown>> {
  const body = await readJson(c);
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new InvalidRequest(`The request body must be a JSON object with fields: ${allowed.join(', ')}.`);
  }
  const unknown = Object.keys(body).filter((field) => !allowed.includes(field));
  if (unknown.length > 0) {
    throw new InvalidRequest(`Unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((f) => `"${f}"`).join(', ')}; allowed: ${allowed.join(', ')}.`);
  }
  return body as Record<string, unknown>;
}
