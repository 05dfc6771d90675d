/**
 * The documented JSON shapes of access keys, field for field and in order: `keys create --json`,
 * `POST /v1/keys` (created), and `keys list/show --json`, `GET /v1/keys` (listed). Spelled out
 * here, not derived from src, so a change to the contract shows up as a failing test.
 */
export const CREATED_KEY_FIELDS = [
  'accessKeyId',
  'secretAccessKey',
  'name',
  'bucket',
  'permissions',
  'endpoint',
  'region',
  'expiresAt',
  'createdAt',
  'rateLimit',
  'allowedIps',
  'prefix',
];

export const KEY_FIELDS = [...CREATED_KEY_FIELDS.filter((field) => field !== 'secretAccessKey'), 'lastUsedAt', 'disabled', 'disabledAt'];
