/**
 * The admin API's OpenAPI 3.1 description, served at GET /openapi.json. Hand-written so it reads as
 * documentation; test/admin checks that every route the app serves is described here.
 */
import { MAX_KEY_NAME_LENGTH } from '../keys/validate.js';
import { PERMISSIONS, PRESETS } from '../keys/model.js';

const json = (schema: object) => ({ 'application/json': { schema } });
const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const errorResponse = (description: string) => ({ description, content: json(ref('Error')) });
const UNAUTHORIZED = { $ref: '#/components/responses/Unauthorized' };
const dateTime = { type: 'string', format: 'date-time' };
const nullable = (schema: object) => ({ oneOf: [schema, { type: 'null' }] });

/** A key's own rate limit in answers; null = the gateway's (KEYGATE_RATE_LIMIT). */
const RATE_LIMIT = {
  ...nullable({
    type: 'object',
    required: ['requestsPerSecond', 'burst'],
    properties: { requestsPerSecond: { type: 'number' }, burst: { type: 'integer' } },
  }),
  description: "The key's own rate limit; null: the gateway's (KEYGATE_RATE_LIMIT).",
};

/** A key's allowed networks in answers; null = anywhere. */
const ALLOWED_IPS = {
  ...nullable({ type: 'array', items: { type: 'string', description: 'address/prefix' } }),
  description: 'Networks (CIDRs) the key may be used from; null: anywhere.',
};

const PREFIX = { ...nullable({ type: 'string' }), description: 'Object keys the key may touch start with this; null: any.' };

/** A key as created (and shown once): the fields, in the order of the CLI's --json output. */
const CREATED_KEY_PROPERTIES = {
  accessKeyId: { type: 'string', pattern: '^rs_ak_[a-z0-9]+_[0-9a-f]{40}$' },
  secretAccessKey: { type: 'string', pattern: '^rs_sk_[a-z0-9]+_[0-9a-f]{64}$' },
  name: { type: 'string' },
  bucket: nullable({ type: 'string' }),
  permissions: { type: 'array', items: ref('Permission') },
  endpoint: { type: 'string', format: 'uri' },
  region: { type: 'string' },
  expiresAt: nullable(dateTime),
  createdAt: dateTime,
  rateLimit: RATE_LIMIT,
  allowedIps: ALLOWED_IPS,
  prefix: PREFIX,
};
const CREATED_KEY_REQUIRED = Object.keys(CREATED_KEY_PROPERTIES);

export const ADMIN_OPENAPI = {
  openapi: '3.1.0',
  info: {
    title: 'keygate admin API',
    version: '1',
    description:
      'Manage scoped S3 access keys and the bucket registry of a keygate gateway. ' + 'Every route except /health needs `Authorization: Bearer <admin token>`.',
  },
  security: [{ bearerAuth: [] }],
  paths: {
    '/health': {
      get: {
        operationId: 'health',
        summary: 'Liveness check',
        security: [],
        responses: {
          '200': { description: 'The admin API is up.', content: json({ type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] }) },
        },
      },
    },
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics',
        description:
          'Request counts, durations and bytes by S3 operation, rate-limited requests, the number of keys, and the process (CPU, memory, event loop delay). Prometheus text format.',
        responses: {
          '200': { description: 'Prometheus text exposition format.', content: { 'text/plain; version=0.0.4; charset=utf-8': { schema: { type: 'string' } } } },
          '401': UNAUTHORIZED,
        },
      },
    },
    '/openapi.json': {
      get: {
        operationId: 'openapi',
        summary: 'This document',
        responses: { '200': { description: 'OpenAPI 3.1 document.', content: json({ type: 'object' }) }, '401': UNAUTHORIZED },
      },
    },
    '/v1/keys': {
      post: {
        operationId: 'createKey',
        summary: 'Create an access key',
        description:
          'Workspace keys (no bucket) take any non-empty subset of permissions, or a preset. Per-bucket keys take only ' +
          'the presets read-only or read-write (or exactly their permission sets). The secret is returned only here.',
        requestBody: { required: true, content: json(ref('CreateKeyRequest')) },
        responses: {
          '201': { description: 'Created. Store the secret now; it is never shown again.', content: json(ref('CreatedKey')) },
          '400': errorResponse('Invalid request; `detail` says what to change.'),
          '401': UNAUTHORIZED,
          '413': errorResponse('Request body too large.'),
        },
      },
      get: {
        operationId: 'listKeys',
        summary: 'List access keys (never includes secrets)',
        parameters: [{ name: 'bucket', in: 'query', required: false, schema: { type: 'string' }, description: 'Only keys scoped to this bucket.' }],
        responses: { '200': { description: 'Keys, oldest first.', content: json({ type: 'array', items: ref('Key') }) }, '401': UNAUTHORIZED },
      },
    },
    '/v1/keys/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' }, description: 'Access key id (rs_ak_…).' }],
      get: {
        operationId: 'getKey',
        summary: 'Show one access key',
        responses: { '200': { description: 'The key.', content: json(ref('Key')) }, '401': UNAUTHORIZED, '404': errorResponse('No such key.') },
      },
      patch: {
        operationId: 'updateKey',
        summary: 'Disable or enable an access key',
        description:
          'A disabled key is refused (403, saying it is disabled) from the gateway’s next request on, presigned URLs and POST forms included, and kept: enabling it makes it work as before.',
        requestBody: {
          required: true,
          content: json({ type: 'object', additionalProperties: false, required: ['disabled'], properties: { disabled: { type: 'boolean' } } }),
        },
        responses: {
          '200': { description: 'The key as it now is.', content: json(ref('Key')) },
          '400': errorResponse('Not {"disabled": true|false}.'),
          '401': UNAUTHORIZED,
          '404': errorResponse('No such key.'),
        },
      },
      delete: {
        operationId: 'deleteKey',
        summary: 'Revoke an access key',
        description: 'Takes effect on the gateway’s next request.',
        responses: { '204': { description: 'Deleted.' }, '401': UNAUTHORIZED, '404': errorResponse('No such key.') },
      },
    },
    '/v1/buckets': {
      post: {
        operationId: 'addBucket',
        summary: 'Register a bucket',
        description: 'Give a RunPod datacenter, or an endpoint with its region, or neither to use the default upstream.',
        requestBody: { required: true, content: json(ref('AddBucketRequest')) },
        responses: {
          '201': { description: 'Registered.', content: json(ref('Bucket')) },
          '400': errorResponse('Invalid request; `detail` says what to change.'),
          '401': UNAUTHORIZED,
          '409': errorResponse('The bucket is already registered.'),
          '413': errorResponse('Request body too large.'),
        },
      },
      get: {
        operationId: 'listBuckets',
        summary: 'List registered buckets',
        responses: { '200': { description: 'Buckets by name.', content: json({ type: 'array', items: ref('Bucket') }) }, '401': UNAUTHORIZED },
      },
    },
    '/v1/buckets/{name}': {
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
      delete: {
        operationId: 'removeBucket',
        summary: 'Unregister a bucket',
        description: 'Keys scoped to the bucket are kept; objects upstream are untouched.',
        responses: { '204': { description: 'Removed.' }, '401': UNAUTHORIZED, '404': errorResponse('The bucket is not registered.') },
      },
    },
    '/v1/buckets/{name}/cors': {
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
      get: {
        operationId: 'getBucketCors',
        summary: 'Show a bucket’s CORS rules',
        responses: {
          '200': { description: 'The rules (empty when none are set).', content: json(ref('BucketCors')) },
          '401': UNAUTHORIZED,
          '404': errorResponse('The bucket is not registered.'),
        },
      },
      put: {
        operationId: 'setBucketCors',
        summary: 'Replace a bucket’s CORS rules',
        description:
          'The gateway answers browser preflights (OPTIONS) from these rules without authentication and adds ' +
          'Access-Control-* headers to responses for allowed origins. Takes effect on the next request. Accepts a list of ' +
          'rules, `{"rules": [...]}`, or S3’s CORSConfiguration JSON `{"CORSRules": [{"AllowedOrigins": [...], ...}]}`.',
        requestBody: {
          required: true,
          content: json({
            oneOf: [
              { type: 'array', items: ref('CorsRule') },
              { type: 'object', required: ['rules'], properties: { rules: { type: 'array', items: ref('CorsRule') } } },
              { type: 'object', required: ['CORSRules'], properties: { CORSRules: { type: 'array', items: { type: 'object' } } } },
            ],
          }),
        },
        responses: {
          '200': { description: 'Stored.', content: json(ref('BucketCors')) },
          '400': errorResponse('Invalid rules; `detail` says what to change.'),
          '401': UNAUTHORIZED,
          '404': errorResponse('The bucket is not registered.'),
          '413': errorResponse('Request body too large.'),
        },
      },
      delete: {
        operationId: 'clearBucketCors',
        summary: 'Remove a bucket’s CORS rules',
        description: 'Cross-origin browser requests to the bucket are refused from the next request on.',
        responses: { '204': { description: 'Cleared.' }, '401': UNAUTHORIZED, '404': errorResponse('The bucket is not registered.') },
      },
    },
    '/v1/presign': {
      post: {
        operationId: 'presign',
        summary: 'Issue a presigned URL (or browser upload form) for a stored key',
        description:
          "Signed with the key's own secret and verified by the gateway. Only issued for operations the key may perform. " +
          'With method POST the answer also carries `fields`: a SigV4 POST policy form for browser uploads (S3 POST Object) of any key ' +
          "under the target's key prefix; post the fields, then the file as the field `file`, to `url` as multipart/form-data.",
        requestBody: {
          required: true,
          content: json({
            type: 'object',
            required: ['accessKeyId', 'target'],
            additionalProperties: false,
            properties: {
              accessKeyId: { type: 'string' },
              target: {
                type: 'string',
                examples: ['s3://my-bucket/path/to/object.bin'],
                description: 'For POST: s3://BUCKET/KEY-PREFIX (s3://BUCKET/ for any key).',
              },
              method: { type: 'string', enum: ['GET', 'PUT', 'HEAD', 'DELETE', 'POST'], default: 'GET' },
              maxSize: {
                oneOf: [
                  { type: 'string', examples: ['25m', '2g'] },
                  { type: 'integer', minimum: 1 },
                ],
                description: 'POST only: largest file the form accepts, in bytes or with k/m/g (binary) units.',
              },
              expiresIn: {
                oneOf: [
                  { type: 'string', examples: ['15m', '7d'] },
                  { type: 'integer', minimum: 1, maximum: 604800 },
                ],
                default: 600,
              },
            },
          }),
        },
        responses: {
          '200': {
            description: 'The presigned URL.',
            content: json({
              type: 'object',
              properties: {
                url: { type: 'string' },
                method: { type: 'string' },
                expiresAt: { type: 'string', format: 'date-time' },
                fields: {
                  type: 'object',
                  additionalProperties: { type: 'string' },
                  description: 'POST only: the form fields (key, policy, x-amz-*), in order.',
                },
              },
            }),
          },
          '400': errorResponse('Invalid input, or the key may not perform this operation.'),
          '401': UNAUTHORIZED,
          '404': errorResponse('No such access key.'),
        },
      },
    },
  },
  components: {
    securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } },
    responses: {
      Unauthorized: {
        description: 'Missing or invalid admin token.',
        content: json({ ...ref('Error'), examples: [{ error: 'unauthorized', detail: 'Missing or invalid API key' }] }),
      },
    },
    schemas: {
      Permission: { type: 'string', enum: [...PERMISSIONS] },
      Error: {
        type: 'object',
        required: ['error', 'detail'],
        properties: {
          error: {
            type: 'string',
            enum: ['unauthorized', 'invalid_request', 'not_found', 'conflict', 'payload_too_large', 'internal_error', 'store_unavailable'],
          },
          detail: { type: 'string' },
        },
      },
      CreateKeyRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: MAX_KEY_NAME_LENGTH },
          bucket: { ...nullable({ type: 'string' }), description: 'Scope the key to one bucket.' },
          permissions: { type: 'array', items: ref('Permission'), minItems: 1, description: 'Mutually exclusive with preset.' },
          preset: { type: 'string', enum: Object.keys(PRESETS) },
          expiresIn: {
            ...nullable({
              oneOf: [
                { type: 'string', pattern: '^[0-9]+[smhd]?$' },
                { type: 'integer', minimum: 1 },
              ],
            }),
            description: 'Lifetime: 30d, 12h, 15m, 3600s or seconds; at most 10 years.',
          },
          rateLimit: {
            ...nullable({
              oneOf: [
                { type: 'string', pattern: '^[0-9]+(\\.[0-9]+)?(/s)?$' },
                { type: 'number', exclusiveMinimum: 0 },
              ],
            }),
            description: "The key's own request rate, overriding KEYGATE_RATE_LIMIT: 20/s, 0.5/s or a number per second.",
          },
          rateBurst: {
            ...nullable({
              oneOf: [
                { type: 'integer', minimum: 1 },
                { type: 'string', pattern: '^[0-9]+$' },
              ],
            }),
            description: 'Requests at once after being idle (with rateLimit); default one second’s worth.',
          },
          allowedIps: {
            ...nullable({ oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' }, minItems: 1, maxItems: 64 }] }),
            description: 'Networks the key may be used from: "10.0.0.0/8,2001:db8::/32" or a list of CIDRs (a bare address is one host).',
          },
          prefix: {
            ...nullable({ type: 'string', maxLength: 1024 }),
            description: 'Object keys the key may touch start with this, e.g. "team-a/"; its listings must ask for a prefix inside it.',
          },
        },
      },
      CreatedKey: { type: 'object', required: CREATED_KEY_REQUIRED, properties: CREATED_KEY_PROPERTIES },
      Key: {
        type: 'object',
        required: [...CREATED_KEY_REQUIRED.filter((field) => field !== 'secretAccessKey'), 'lastUsedAt', 'disabled', 'disabledAt'],
        properties: {
          ...Object.fromEntries(Object.entries(CREATED_KEY_PROPERTIES).filter(([field]) => field !== 'secretAccessKey')),
          accessKeyId: { type: 'string' },
          lastUsedAt: { ...nullable(dateTime), description: 'Updated at most once a minute.' },
          disabled: { type: 'boolean', description: 'A disabled key is refused until enabled again.' },
          disabledAt: { ...nullable(dateTime), description: 'When it was disabled; null while enabled.' },
        },
      },
      AddBucketRequest: {
        type: 'object',
        additionalProperties: false,
        required: ['name'],
        properties: {
          name: { type: 'string', description: 'S3 bucket name rules (3-63 lowercase letters, digits, dots, hyphens).' },
          datacenter: { ...nullable({ type: 'string' }), description: 'RunPod datacenter id, e.g. EU-RO-1.' },
          upstreamBucket: { ...nullable({ type: 'string' }), description: 'Defaults to name.' },
          endpoint: { ...nullable({ type: 'string', format: 'uri' }), description: 'Any S3 endpoint; needs region.' },
          region: nullable({ type: 'string' }),
        },
      },
      CorsRule: {
        type: 'object',
        additionalProperties: false,
        required: ['allowedOrigins', 'allowedMethods'],
        properties: {
          id: { type: 'string' },
          allowedOrigins: {
            type: 'array',
            minItems: 1,
            items: { type: 'string' },
            description: 'Origins such as https://app.example.com; "*" alone, or one "*" inside an entry (https://*.example.com).',
          },
          allowedMethods: { type: 'array', minItems: 1, items: { type: 'string', enum: ['GET', 'PUT', 'POST', 'DELETE', 'HEAD'] } },
          allowedHeaders: {
            type: 'array',
            items: { type: 'string' },
            description: 'Request headers a preflight may ask for (case-insensitive, one "*" wildcard per entry).',
          },
          exposeHeaders: { type: 'array', items: { type: 'string' }, description: 'Response headers browser code may read, e.g. ETag.' },
          maxAgeSeconds: { type: 'integer', minimum: 0 },
        },
      },
      BucketCors: {
        type: 'object',
        required: ['bucket', 'rules'],
        properties: { bucket: { type: 'string' }, rules: { type: 'array', items: ref('CorsRule') } },
      },
      Bucket: {
        type: 'object',
        required: ['name', 'datacenter', 'endpoint', 'region', 'upstreamBucket', 'cors', 'createdAt'],
        properties: {
          name: { type: 'string' },
          datacenter: nullable({ type: 'string' }),
          endpoint: nullable({ type: 'string' }),
          region: nullable({ type: 'string' }),
          upstreamBucket: { type: 'string' },
          cors: nullable({ type: 'array', items: ref('CorsRule') }),
          createdAt: dateTime,
        },
      },
    },
  },
} as const;
