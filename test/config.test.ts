import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULT_RUNPOD_REST_URL, loadConfig, parseMasterKey } from '../src/config.js';

/** Asserts loadConfig(env) fails with a ConfigError naming `variable` and giving a fix. */
function expectConfigError(env: Record<string, string>, variable: string, hint?: RegExp): void {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  const error = caught as ConfigError;
  expect(error.variable).toBe(variable);
  expect(error.message.startsWith(`${variable}: `)).toBe(true);
  if (hint) expect(error.message).toMatch(hint);
}

describe('loadConfig defaults', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      dataDir: path.resolve('./data'),
      host: '0.0.0.0',
      port: 9000,
      adminHost: '127.0.0.1',
      adminPort: 9001,
      publicUrl: 'http://localhost:9000',
      region: 'auto',
      acceptedRegions: ['auto', 'us-east-1'],
      domain: null,
      keyTag: 'live',
      masterKey: null,
      adminToken: null,
      defaultUpstream: null,
      runpodCredentials: null,
      runpodApiKey: null,
      runpodEndpoints: null,
      runpodRestUrl: DEFAULT_RUNPOD_REST_URL,
      debugSignatures: false,
    });
  });

  it('treats blank values as unset', () => {
    const config = loadConfig({ KEYGATE_PORT: '  ', KEYGATE_REGION: '', KEYGATE_MASTER_KEY: ' ' });
    expect(config.port).toBe(9000);
    expect(config.region).toBe('auto');
    expect(config.masterKey).toBeNull();
  });
});

describe('loadConfig values', () => {
  it('reads every variable', () => {
    const config = loadConfig({
      KEYGATE_DATA_DIR: '/tmp/kg-data',
      KEYGATE_HOST: '127.0.0.1',
      KEYGATE_PORT: '8080',
      KEYGATE_ADMIN_HOST: '0.0.0.0',
      KEYGATE_ADMIN_PORT: '0',
      KEYGATE_PUBLIC_URL: 'https://s3.example.com/',
      KEYGATE_REGION: 'us-east-1',
      KEYGATE_DOMAIN: 'S3.Example.com',
      KEYGATE_KEY_TAG: 'test',
      KEYGATE_ADMIN_TOKEN: 'a-long-enough-admin-token',
      KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:9999',
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'AKIA',
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'secret',
      RUNPOD_S3_ACCESS_KEY: 'rp-ak',
      RUNPOD_S3_SECRET_KEY: 'rp-sk',
      RUNPOD_API_KEY: 'rp-api',
      KEYGATE_RUNPOD_ENDPOINTS: '{"eu-ro-1":"http://127.0.0.1:5000"}',
      KEYGATE_RUNPOD_REST_URL: 'http://127.0.0.1:6000/v2/',
      KEYGATE_DEBUG_SIGNATURES: 'yes',
    });
    expect(config.dataDir).toBe('/tmp/kg-data');
    expect(config.port).toBe(8080);
    expect(config.adminPort).toBe(0);
    expect(config.publicUrl).toBe('https://s3.example.com');
    expect(config.acceptedRegions).toEqual(['us-east-1']);
    expect(config.domain).toBe('s3.example.com');
    expect(config.keyTag).toBe('test');
    expect(config.adminToken).toBe('a-long-enough-admin-token');
    expect(config.defaultUpstream?.endpoint.href).toBe('http://127.0.0.1:9999/');
    expect(config.defaultUpstream?.region).toBe('us-east-1');
    expect(config.runpodCredentials).toEqual({ accessKeyId: 'rp-ak', secretAccessKey: 'rp-sk' });
    expect(config.runpodApiKey).toBe('rp-api');
    expect(Object.keys(config.runpodEndpoints ?? {})).toEqual(['EU-RO-1']);
    expect(config.runpodRestUrl).toBe('http://127.0.0.1:6000/v2');
    expect(config.debugSignatures).toBe(true);
  });

  it('accepts the master key as hex or base64 of the same 32 bytes', () => {
    const bytes = Buffer.alloc(32, 0xab);
    expect(loadConfig({ KEYGATE_MASTER_KEY: bytes.toString('hex') }).masterKey).toEqual(bytes);
    expect(loadConfig({ KEYGATE_MASTER_KEY: bytes.toString('base64') }).masterKey).toEqual(bytes);
    expect(loadConfig({ KEYGATE_MASTER_KEY: bytes.toString('base64url') }).masterKey).toEqual(bytes);
    expect(parseMasterKey(undefined)).toBeNull();
  });
});

describe('loadConfig errors name the variable and the fix', () => {
  it.each([
    [{ KEYGATE_PORT: 'abc' }, 'KEYGATE_PORT', /0 to 65535/],
    [{ KEYGATE_PORT: '70000' }, 'KEYGATE_PORT', /0 to 65535/],
    [{ KEYGATE_PORT: '-1' }, 'KEYGATE_PORT', /TCP port/],
    [{ KEYGATE_ADMIN_PORT: '9001x' }, 'KEYGATE_ADMIN_PORT', /TCP port/],
    [{ KEYGATE_REGION: 'us east 1' }, 'KEYGATE_REGION', /region/],
    [{ KEYGATE_KEY_TAG: 'Live' }, 'KEYGATE_KEY_TAG', /lowercase/],
    [{ KEYGATE_KEY_TAG: 'a_b' }, 'KEYGATE_KEY_TAG', /lowercase/],
    [{ KEYGATE_KEY_TAG: 'x'.repeat(17) }, 'KEYGATE_KEY_TAG', /1-16/],
    [{ KEYGATE_DOMAIN: 'bad domain' }, 'KEYGATE_DOMAIN', /host name/],
    [{ KEYGATE_PUBLIC_URL: 'not a url' }, 'KEYGATE_PUBLIC_URL', /not a URL/],
    [{ KEYGATE_PUBLIC_URL: 'ftp://example.com' }, 'KEYGATE_PUBLIC_URL', /http/],
    [{ KEYGATE_MASTER_KEY: 'abcd' }, 'KEYGATE_MASTER_KEY', /openssl rand -hex 32/],
    [{ KEYGATE_MASTER_KEY: 'g'.repeat(64) }, 'KEYGATE_MASTER_KEY', /32 bytes/],
    [{ KEYGATE_MASTER_KEY: Buffer.alloc(31).toString('base64') }, 'KEYGATE_MASTER_KEY', /32 bytes/],
    [{ KEYGATE_ADMIN_TOKEN: 'short' }, 'KEYGATE_ADMIN_TOKEN', /at least 16/],
    [{ KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:9' }, 'KEYGATE_UPSTREAM_ACCESS_KEY_ID', /required/],
    [{ KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:9', KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a' }, 'KEYGATE_UPSTREAM_SECRET_ACCESS_KEY', /required/],
    [{ KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a', KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b' }, 'KEYGATE_UPSTREAM_ENDPOINT', /required/],
    [
      { KEYGATE_UPSTREAM_ENDPOINT: 'nope', KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a', KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b' },
      'KEYGATE_UPSTREAM_ENDPOINT',
      /not a URL/,
    ],
    [{ RUNPOD_S3_SECRET_KEY: 'x' }, 'RUNPOD_S3_ACCESS_KEY', /required/],
    [{ RUNPOD_S3_ACCESS_KEY: 'x' }, 'RUNPOD_S3_SECRET_KEY', /required/],
    [{ KEYGATE_RUNPOD_ENDPOINTS: '{nope' }, 'KEYGATE_RUNPOD_ENDPOINTS', /JSON/],
    [{ KEYGATE_RUNPOD_ENDPOINTS: '["http://x"]' }, 'KEYGATE_RUNPOD_ENDPOINTS', /object/],
    [{ KEYGATE_RUNPOD_ENDPOINTS: '{"EU-RO-1":5}' }, 'KEYGATE_RUNPOD_ENDPOINTS', /URL string/],
    [{ KEYGATE_RUNPOD_ENDPOINTS: '{"EU-RO-1":"gopher://x"}' }, 'KEYGATE_RUNPOD_ENDPOINTS', /http/],
    [{ KEYGATE_RUNPOD_REST_URL: '::' }, 'KEYGATE_RUNPOD_REST_URL', /not a URL/],
    [{ KEYGATE_DEBUG_SIGNATURES: 'maybe' }, 'KEYGATE_DEBUG_SIGNATURES', /1 or 0/],
  ])('%j -> %s', (env, variable, hint) => {
    expectConfigError(env, variable, hint);
  });
});

describe('rate limit and access log settings', () => {
  it('defaults to no rate limit and an access log on stdout', () => {
    const config = loadConfig({});
    expect(config.rateLimit).toBeNull();
    expect(config.accessLog).toEqual({ kind: 'stdout' });
  });

  it('reads a per-key rate with a default burst of one second', () => {
    expect(loadConfig({ KEYGATE_RATE_LIMIT: '50' }).rateLimit).toEqual({ requestsPerSecond: 50, burst: 50 });
    expect(loadConfig({ KEYGATE_RATE_LIMIT: '0.5' }).rateLimit).toEqual({ requestsPerSecond: 0.5, burst: 1 });
    expect(loadConfig({ KEYGATE_RATE_LIMIT: '10', KEYGATE_RATE_LIMIT_BURST: '40' }).rateLimit).toEqual({ requestsPerSecond: 10, burst: 40 });
    expect(loadConfig({ KEYGATE_RATE_LIMIT: '0' }).rateLimit).toBeNull();
  });

  it.each([
    [{ KEYGATE_RATE_LIMIT: 'fast' }, 'KEYGATE_RATE_LIMIT'],
    [{ KEYGATE_RATE_LIMIT: '-3' }, 'KEYGATE_RATE_LIMIT'],
    [{ KEYGATE_RATE_LIMIT: '10', KEYGATE_RATE_LIMIT_BURST: '0' }, 'KEYGATE_RATE_LIMIT_BURST'],
    [{ KEYGATE_RATE_LIMIT: '10', KEYGATE_RATE_LIMIT_BURST: '2.5' }, 'KEYGATE_RATE_LIMIT_BURST'],
    [{ KEYGATE_RATE_LIMIT_BURST: '10' }, 'KEYGATE_RATE_LIMIT_BURST'],
    [{ KEYGATE_ACCESS_LOG: 'syslog' }, 'KEYGATE_ACCESS_LOG'],
  ])('rejects %o naming %s', (env, variable) => {
    expect(() => loadConfig(env)).toThrow(new RegExp(`^${variable}: `));
  });

  it('turns the access log off or sends it to a file', () => {
    expect(loadConfig({ KEYGATE_ACCESS_LOG: 'off' }).accessLog).toEqual({ kind: 'off' });
    expect(loadConfig({ KEYGATE_ACCESS_LOG: '/var/log/keygate/access.log' }).accessLog).toEqual({ kind: 'file', path: '/var/log/keygate/access.log' });
  });
});

describe('upstream timeouts', () => {
  it('are validated at start, not at the first upstream request', () => {
    expect(loadConfig({ KEYGATE_UPSTREAM_HEADERS_TIMEOUT_MS: '90000' }).upstreamTimeouts.headersTimeoutMs).toBe(90_000);
    expect(() => loadConfig({ KEYGATE_UPSTREAM_CONNECT_TIMEOUT_MS: '10s' })).toThrow(/^KEYGATE_UPSTREAM_CONNECT_TIMEOUT_MS: /);
  });
});

describe('RunPod bucket lifecycle', () => {
  it('defaults: 10 GB volumes, no default datacenter, deletes not allowed', () => {
    expect(loadConfig({})).toMatchObject({ runpodVolumeSizeGb: 10, runpodDefaultDatacenter: null, runpodAllowVolumeDelete: false });
    expect(
      loadConfig({ KEYGATE_RUNPOD_VOLUME_SIZE_GB: '4096', KEYGATE_RUNPOD_DEFAULT_DATACENTER: ' eu-ro-1 ', KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: '1' }),
    ).toMatchObject({ runpodVolumeSizeGb: 4096, runpodDefaultDatacenter: 'EU-RO-1', runpodAllowVolumeDelete: true });
  });

  it.each(['9', '4097', '10.5', 'ten', '-10'])('refuses KEYGATE_RUNPOD_VOLUME_SIZE_GB=%s, saying the range', (value) => {
    expectConfigError({ KEYGATE_RUNPOD_VOLUME_SIZE_GB: value }, 'KEYGATE_RUNPOD_VOLUME_SIZE_GB', /from 10 to 4096/);
  });

  it('accepts only datacenters buckets can be created in as the default, listing them', () => {
    expectConfigError(
      { KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'MOON-1' },
      'KEYGATE_RUNPOD_DEFAULT_DATACENTER',
      /"MOON-1".*EU-CZ-1, EU-RO-1.*KEYGATE_RUNPOD_ENDPOINTS/,
    );
    expectConfigError({ KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'auto' }, 'KEYGATE_RUNPOD_DEFAULT_DATACENTER');
    // A datacenter KEYGATE_RUNPOD_ENDPOINTS maps is one.
    expect(
      loadConfig({ KEYGATE_RUNPOD_ENDPOINTS: '{"ap-jp-1":"http://127.0.0.1:5000"}', KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'AP-JP-1' }).runpodDefaultDatacenter,
    ).toBe('AP-JP-1');
    expectConfigError({ KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: 'sure' }, 'KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE');
  });
});
