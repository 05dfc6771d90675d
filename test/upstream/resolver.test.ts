/** Bucket -> upstream routing: registry, default upstream, RunPod discovery, and the ListBuckets union. */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config.js';
import { S3Error } from '../../src/errors.js';
import { UpstreamForwarder, type ForwardRequest } from '../../src/upstream/forward.js';
import { UpstreamResolver, type BucketRecordLike, type BucketRegistry, type UpstreamResolverDeps } from '../../src/upstream/resolver.js';
import { RunpodVolumeDiscovery, type VolumeDiscovery } from '../../src/upstream/runpod.js';
import { RUNPOD_MAX_PUT_BYTES, S3_MAX_PUT_BYTES } from '../../src/upstream/target.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';
import { capturingLog, startLocalServer, type LocalServer } from './fixtures.js';

const RUNPOD_ENV = { RUNPOD_S3_ACCESS_KEY: 'user_runpod', RUNPOD_S3_SECRET_KEY: 'rps_secret' };
const DEFAULT_UPSTREAM_ENV = {
  KEYGATE_UPSTREAM_ENDPOINT: 'http://127.0.0.1:9999',
  KEYGATE_UPSTREAM_REGION: 'eu-central-1',
  KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'default-key',
  KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'default-secret',
};

const logged = capturingLog();
const forwarder = new UpstreamForwarder({ log: logged.log });
afterAll(() => forwarder.close());

/** A resolver with the shared forwarder (it only sends the default upstream's ListBuckets). */
function resolverWith(deps: Omit<UpstreamResolverDeps, 'forwarder'> & Partial<Pick<UpstreamResolverDeps, 'forwarder'>>): UpstreamResolver {
  return new UpstreamResolver({ forwarder, log: logged.log, ...deps });
}

function config(env: Record<string, string> = {}): Config {
  return loadConfig({ KEYGATE_DATA_DIR: '/tmp/keygate-resolver-test', ...env });
}

function registry(records: Array<Partial<BucketRecordLike> & { name: string }> = []): BucketRegistry {
  const full = records.map((r) => ({
    datacenter: null,
    endpoint: null,
    region: null,
    upstreamBucket: r.name,
    createdAt: new Date('2025-01-02T03:04:05Z'),
    ...r,
  }));
  return { findForRouting: (name) => full.find((r) => r.name === name) ?? null, listForRouting: () => full };
}

function staticDiscovery(volumes: Array<{ id: string; datacenter: string }>): VolumeDiscovery {
  const all = volumes.map((v) => ({ ...v, name: v.id, sizeGb: 10, createdAt: new Date('2026-01-02T03:04:05Z') }));
  return { find: async (id) => all.find((v) => v.id === id) ?? null, list: async () => all };
}

async function s3ErrorOf(promise: Promise<unknown>): Promise<S3Error> {
  const error = await promise.then(
    () => new Error('expected a failure'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3Error);
  return error as S3Error;
}

describe('resolve: registered buckets', () => {
  it('a datacenter record goes to that RunPod endpoint with the RunPod credentials and limits', async () => {
    const resolver = resolverWith({
      config: config(RUNPOD_ENV),
      registry: registry([{ name: 'models', datacenter: 'eu-ro-1', upstreamBucket: 'vol123' }]),
      discovery: null,
    });
    const target = await resolver.resolve('models');
    expect(target).toMatchObject({
      kind: 'runpod',
      region: 'EU-RO-1',
      bucket: 'vol123',
      datacenter: 'EU-RO-1',
      credentials: { accessKeyId: 'user_runpod', secretAccessKey: 'rps_secret' },
      capabilities: {
        bucketLifecycle: false,
        bucketConfiguration: false,
        versioning: false,
        tagging: false,
        acl: false,
        objectAttributes: false,
        objectLock: false,
        uploadPartCopy: false,
        keysArePaths: true,
        maxPutObjectBytes: RUNPOD_MAX_PUT_BYTES,
        trailingChecksums: true,
      },
    });
    expect(target!.endpoint.href).toBe('https://s3api-eu-ro-1.runpod.io/');
  });

  it('RunPod buckets can be created and deleted when the gateway manages RunPod buckets; targetOf routes a record as resolve does', async () => {
    const records = registry([{ name: 'models', datacenter: 'EU-RO-1', upstreamBucket: 'vol123' }]);
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: records, discovery: null, runpodBucketLifecycle: true });
    const target = (await resolver.resolve('models'))!;
    expect(target.capabilities).toMatchObject({ bucketLifecycle: true, bucketConfiguration: false, keysArePaths: true });
    expect(resolver.targetOf(records.findForRouting('models')!)).toEqual(target);
  });

  it('KEYGATE_RUNPOD_ENDPOINTS overrides the derived endpoint', async () => {
    const resolver = resolverWith({
      config: config({ ...RUNPOD_ENV, KEYGATE_RUNPOD_ENDPOINTS: '{"EU-RO-1":"http://127.0.0.1:5000"}' }),
      registry: registry([{ name: 'models', datacenter: 'EU-RO-1' }]),
      discovery: null,
    });
    expect((await resolver.resolve('models'))!.endpoint.href).toBe('http://127.0.0.1:5000/');
  });

  /** A configuration problem: clients get a short 409 that no retry changes, the operator the fix in the log. */
  function expectMisconfigured(error: S3Error, bucket: string, fix: RegExp): void {
    expect(error).toMatchObject({ code: 'InvalidBucketState', status: 409 });
    expect(error.message).toContain(`"${bucket}"`);
    expect(error.message).not.toMatch(/KEYGATE_|RUNPOD_|keygate buckets/);
    const entry = logged.find('bucket not servable: configuration').at(-1);
    expect(entry?.fields.bucket).toBe(bucket);
    expect(String(entry?.fields.fix)).toMatch(fix);
  }

  it('a RunPod bucket without RUNPOD_S3_* credentials: the log names the variables to set', async () => {
    const resolver = resolverWith({ config: config(), registry: registry([{ name: 'models', datacenter: 'EU-RO-1' }]), discovery: null });
    expectMisconfigured(await s3ErrorOf(resolver.resolve('models')), 'models', /set RUNPOD_S3_ACCESS_KEY and RUNPOD_S3_SECRET_KEY/);
  });

  it('a datacenter that is not a datacenter id fails with the known list as a hint', async () => {
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: registry([{ name: 'models', datacenter: 'moon base' }]), discovery: null });
    expectMisconfigured(await s3ErrorOf(resolver.resolve('models')), 'models', /"moon base".*EU-RO-1.*keygate buckets add models --datacenter/);
  });

  it('an endpoint+region record uses the default upstream credentials, else the RunPod ones, else says what to set', async () => {
    const record = { name: 'r2', endpoint: 'https://account.r2.cloudflarestorage.com', region: 'auto', upstreamBucket: 'real-r2' };
    const withDefault = await resolverWith({
      config: config({ ...DEFAULT_UPSTREAM_ENV, ...RUNPOD_ENV }),
      registry: registry([record]),
      discovery: null,
    }).resolve('r2');
    expect(withDefault).toMatchObject({ kind: 's3', region: 'auto', bucket: 'real-r2', datacenter: null, credentials: { accessKeyId: 'default-key' } });
    expect(withDefault!.endpoint.href).toBe('https://account.r2.cloudflarestorage.com/');
    expect(withDefault!.capabilities).toEqual({
      bucketLifecycle: true,
      bucketConfiguration: true,
      versioning: true,
      tagging: true,
      acl: true,
      objectAttributes: true,
      objectLock: true,
      uploadPartCopy: true,
      keysArePaths: false,
      maxPutObjectBytes: S3_MAX_PUT_BYTES,
      trailingChecksums: true,
    });

    const withRunpod = await resolverWith({ config: config(RUNPOD_ENV), registry: registry([record]), discovery: null }).resolve('r2');
    expect(withRunpod!.credentials.accessKeyId).toBe('user_runpod');

    const error = await s3ErrorOf(resolverWith({ config: config(), registry: registry([record]), discovery: null }).resolve('r2'));
    expectMisconfigured(error, 'r2', /KEYGATE_UPSTREAM_ACCESS_KEY_ID and KEYGATE_UPSTREAM_SECRET_ACCESS_KEY/);
  });

  it('an endpoint record pointing at a RunPod S3 host is treated as RunPod', async () => {
    const resolver = resolverWith({
      config: config({ ...DEFAULT_UPSTREAM_ENV, ...RUNPOD_ENV }),
      registry: registry([{ name: 'vol', endpoint: 'https://s3api-us-ks-2.runpod.io', region: null, upstreamBucket: 'abc' }]),
      discovery: null,
    });
    expect(await resolver.resolve('vol')).toMatchObject({
      kind: 'runpod',
      datacenter: 'US-KS-2',
      region: 'US-KS-2',
      credentials: { accessKeyId: 'user_runpod' },
    });
  });

  it('a record without datacenter or endpoint uses the default upstream with its upstream bucket name, or explains the fix', async () => {
    const records = registry([{ name: 'alias', upstreamBucket: 'real-name' }]);
    const target = await resolverWith({ config: config(DEFAULT_UPSTREAM_ENV), registry: records, discovery: null }).resolve('alias');
    expect(target).toMatchObject({ kind: 's3', bucket: 'real-name', region: 'eu-central-1', credentials: { accessKeyId: 'default-key' } });
    const error = await s3ErrorOf(resolverWith({ config: config(RUNPOD_ENV), registry: records, discovery: null }).resolve('alias'));
    expectMisconfigured(error, 'alias', /KEYGATE_UPSTREAM_ENDPOINT/);
  });
});

describe('resolve: targets are made once and shared, never modified', () => {
  it("a frozen registry record's target is reused until the store hands out a changed record", async () => {
    let record: BucketRecordLike = Object.freeze({
      name: 'models',
      datacenter: 'EU-RO-1',
      endpoint: null,
      region: null,
      upstreamBucket: 'vol1',
      createdAt: new Date(0),
    });
    const records: BucketRegistry = { findForRouting: (name) => (name === record.name ? record : null), listForRouting: () => [record] };
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: records, discovery: null });
    const first = await resolver.resolve('models');
    expect(await resolver.resolve('models')).toBe(first);
    // A change is a new frozen record (as both stores make them): routed afresh.
    record = Object.freeze({ ...record, datacenter: 'US-KS-2', upstreamBucket: 'vol2' });
    const changed = (await resolver.resolve('models'))!;
    expect(changed).not.toBe(first);
    expect(changed).toMatchObject({ bucket: 'vol2', datacenter: 'US-KS-2', region: 'US-KS-2' });
    expect(changed.endpoint.href).toBe('https://s3api-us-ks-2.runpod.io/');
  });

  it('a record that is not frozen is routed on every call (it could change in place)', async () => {
    const record: BucketRecordLike = { name: 'models', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: 'vol1', createdAt: new Date(0) };
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: { findForRouting: () => record, listForRouting: () => [record] }, discovery: null });
    const first = (await resolver.resolve('models'))!;
    record.upstreamBucket = 'vol9';
    expect((await resolver.resolve('models'))!.bucket).toBe('vol9');
    expect(first.bucket).toBe('vol1');
  });

  it('buckets of one upstream share its parsed endpoint, credentials and capabilities, which cannot be changed', async () => {
    const resolver = resolverWith({
      config: config({ ...DEFAULT_UPSTREAM_ENV, ...RUNPOD_ENV }),
      registry: registry([
        { name: 'a', datacenter: 'EU-RO-1' },
        { name: 'b', datacenter: 'EU-RO-1' },
      ]),
      discovery: null,
    });
    const [a, b, c, d] = [await resolver.resolve('a'), await resolver.resolve('b'), await resolver.resolve('c'), await resolver.resolve('d')];
    expect(a!.endpoint).toBe(b!.endpoint);
    expect(c!.endpoint).toBe(d!.endpoint);
    expect([c!.bucket, d!.bucket]).toEqual(['c', 'd']);
    for (const target of [a!, c!]) {
      expect(Object.isFrozen(target.capabilities)).toBe(true);
      expect(Object.isFrozen(target.credentials)).toBe(true);
    }
    expect(() => {
      (c!.capabilities as { acl: boolean }).acl = false;
    }).toThrow(TypeError);
    expect((await resolver.resolve('e'))!.capabilities.acl).toBe(true);
  });
});

describe('resolve: unregistered buckets', () => {
  it('go to the default upstream under their own name, with capability overrides applied', async () => {
    const resolver = resolverWith({
      config: config(DEFAULT_UPSTREAM_ENV),
      registry: registry(),
      discovery: staticDiscovery([{ id: 'vol1', datacenter: 'EU-RO-1' }]),
      genericCapabilities: { trailingChecksums: false },
    });
    const target = await resolver.resolve('anything');
    expect(target).toMatchObject({
      kind: 's3',
      bucket: 'anything',
      region: 'eu-central-1',
      capabilities: { trailingChecksums: false, acl: true, objectLock: true, keysArePaths: false },
    });
    expect(target!.endpoint.href).toBe('http://127.0.0.1:9999/');
    // The default upstream wins over discovery for unregistered names.
    expect((await resolver.resolve('vol1'))!.kind).toBe('s3');
  });

  it('without a default upstream, are looked up as RunPod volume ids', async () => {
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: registry(), discovery: staticDiscovery([{ id: 'vol1', datacenter: 'US-CA-2' }]) });
    expect(await resolver.resolve('vol1')).toMatchObject({ kind: 'runpod', bucket: 'vol1', datacenter: 'US-CA-2', region: 'US-CA-2' });
    expect(await resolver.resolve('unknown')).toBeNull();
  });

  it('are unknown when nothing can route them (no default upstream, no RUNPOD_API_KEY)', async () => {
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: registry() });
    expect(await resolver.resolve('vol1')).toBeNull();
  });

  describe('through RunPod REST discovery built from the config', () => {
    let rest: LocalServer;
    let status = 200;
    beforeAll(async () => {
      rest = await startLocalServer((req, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            req.url === '/v1/networkvolumes'
              ? [{ id: 'v1vol', name: 'v1', size: 1, dataCenterId: 'EU-CZ-1' }]
              : { networkVolumes: [{ id: 'v2vol', name: 'v2', size: 1, dataCenter: 'EUR-IS-1', type: 'STANDARD' }] },
          ),
        );
      });
    });
    afterAll(() => rest.close());
    afterEach(() => {
      status = 200;
    });

    it.each([
      ['v2', '', 'v2vol', 'EUR-IS-1'],
      ['v1', '/v1', 'v1vol', 'EU-CZ-1'],
    ])('resolves a %s volume id to its datacenter', async (_version, suffix, volume, datacenter) => {
      const resolver = resolverWith({
        config: config({ ...RUNPOD_ENV, RUNPOD_API_KEY: 'rp', KEYGATE_RUNPOD_REST_URL: `${rest.url}${suffix}` }),
        registry: registry(),
      });
      expect(await resolver.resolve(volume)).toMatchObject({ kind: 'runpod', bucket: volume, datacenter });
      expect(rest.requests.at(-1)!.headers.authorization).toBe('Bearer rp');
    });

    it('answers 503 with the reason when volumes were never listed successfully', async () => {
      status = 401;
      const resolver = resolverWith({
        config: config({ ...RUNPOD_ENV, RUNPOD_API_KEY: 'bad' }),
        registry: registry(),
        discovery: new RunpodVolumeDiscovery({ restUrl: rest.url, apiKey: 'bad', log: () => {} }),
      });
      const error = await s3ErrorOf(resolver.resolve('v2vol'));
      // Transient: 503 with Retry-After, which clients retry; the reason is for the operator.
      expect(error).toMatchObject({ code: 'ServiceUnavailable', status: 503, headers: { 'retry-after': '30' } });
      expect(error.message).toMatch(/cannot tell where bucket "v2vol" is stored/);
      expect(error.message).not.toMatch(/RUNPOD_API_KEY/);
      const entry = logged.find('volume discovery unavailable').at(-1);
      expect(String(entry?.fields.reason)).toMatch(/RUNPOD_API_KEY/);
      expect(String(entry?.fields.fix)).toMatch(/keygate buckets add v2vol --datacenter/);
    });
  });
});

describe('listBuckets', () => {
  let s3rver: TestUpstream;
  beforeAll(async () => {
    s3rver = await startS3rver();
    await s3rver.createBucket('upstream-one');
    await s3rver.createBucket('shared');
  });
  afterAll(() => s3rver?.stop());

  function defaultUpstreamEnv(upstream: TestUpstream, accessKeyId = upstream.accessKeyId): Record<string, string> {
    return {
      KEYGATE_UPSTREAM_ENDPOINT: upstream.endpoint,
      KEYGATE_UPSTREAM_REGION: upstream.region,
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: accessKeyId,
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: upstream.secretAccessKey,
    };
  }

  it('unites registry, discovered volumes and the default upstream buckets, without duplicates', async () => {
    const resolver = resolverWith({
      config: config({ ...defaultUpstreamEnv(s3rver), ...RUNPOD_ENV }),
      registry: registry([{ name: 'shared', datacenter: 'EU-RO-1' }, { name: 'registered' }]),
      discovery: staticDiscovery([
        { id: 'volume1', datacenter: 'EU-RO-1' },
        { id: 'registered', datacenter: 'EU-RO-1' },
      ]),
    });
    const buckets = await resolver.listBuckets();
    expect(buckets.map((b) => b.name).sort()).toEqual(['registered', 'shared', 'upstream-one', 'volume1']);
    expect(buckets.find((b) => b.name === 'shared')!.createdAt).toEqual(new Date('2025-01-02T03:04:05Z'));
    expect(buckets.find((b) => b.name === 'volume1')!.createdAt).toEqual(new Date('2026-01-02T03:04:05Z'));
    expect(buckets.find((b) => b.name === 'upstream-one')!.createdAt).toBeInstanceOf(Date);
  });

  it('lists a volume registered under a name of its own by that name only', async () => {
    const resolver = resolverWith({
      config: config(RUNPOD_ENV),
      registry: registry([{ name: 'team-data', datacenter: 'EU-RO-1', upstreamBucket: 'kgv0volume1' }]),
      discovery: staticDiscovery([
        { id: 'kgv0volume1', datacenter: 'EU-RO-1' },
        { id: 'unregistered', datacenter: 'EU-RO-1' },
      ]),
    });
    expect((await resolver.listBuckets()).map((b) => b.name).sort()).toEqual(['team-data', 'unregistered']);
  });

  it('still lists registered buckets when discovery is failing', async () => {
    const failing: VolumeDiscovery = { find: async () => null, list: async () => Promise.reject(new Error('down')) };
    const resolver = resolverWith({ config: config(RUNPOD_ENV), registry: registry([{ name: 'registered', datacenter: 'EU-RO-1' }]), discovery: failing });
    expect((await resolver.listBuckets()).map((b) => b.name)).toEqual(['registered']);
  });

  it('reports a default upstream that refuses ListBuckets, with the variables to check', async () => {
    logged.entries.length = 0;
    const resolver = resolverWith({ config: config(defaultUpstreamEnv(s3rver, 'NOT-A-KEY')), registry: registry(), discovery: null });
    const error = await s3ErrorOf(resolver.listBuckets());
    expect(error).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
    // Clients get a short error; the operator's log says what failed and what to check.
    expect(error.message).not.toContain(s3rver.endpoint);
    expect(error.message).not.toContain('KEYGATE_');
    const reported = logged.find('listing the default upstream buckets failed')[0];
    expect(reported?.fields).toMatchObject({ upstream: s3rver.endpoint });
    expect(String(reported?.fields.error)).toContain('BadGateway');
    expect(String(reported?.fields.fix)).toContain('KEYGATE_UPSTREAM_ACCESS_KEY_ID');
    expect(error.cause).toBeInstanceOf(S3Error);
    expect(error.cause).toMatchObject({ code: 'BadGateway', status: 502 });
    expect((error.cause as S3Error).message).toContain('(InvalidAccessKeyId)');
    expect(error.message).not.toContain('NOT-A-KEY');
    expect(error.message).not.toContain(s3rver.secretAccessKey);
    // The upstream's answer itself is in the operator's log.
    const entry = logged.find('upstream error answer')[0];
    expect(entry?.fields).toMatchObject({ upstream: s3rver.endpoint, method: 'GET', status: 403 });
    expect(entry?.fields.body).toContain('InvalidAccessKeyId');
  });

  it("sends the default upstream's ListBuckets through its forwarder, and turns any failure of it into ServiceUnavailable", async () => {
    const sent: ForwardRequest[] = [];
    const failure = new S3Error('GatewayTimeout', 'The storage service of this bucket did not answer in time; retry later.');
    const resolver = resolverWith({
      config: config(DEFAULT_UPSTREAM_ENV),
      registry: registry([{ name: 'registered' }]),
      discovery: null,
      forwarder: {
        forward: async (request) => {
          sent.push(request);
          throw failure;
        },
      },
    });
    const error = await s3ErrorOf(resolver.listBuckets());
    expect(error).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
    expect(error.message).not.toContain('127.0.0.1');
    expect(error.cause).toBe(failure);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ method: 'GET', objectKey: null, bucketLevel: false, query: [], headers: {}, body: null, retry: true });
    expect(sent[0]!.target).toMatchObject({
      kind: 's3',
      region: 'eu-central-1',
      credentials: { accessKeyId: 'default-key', secretAccessKey: 'default-secret' },
    });
    expect(sent[0]!.target.endpoint.href).toBe('http://127.0.0.1:9999/');

    const notAnError = resolverWith({
      config: config(DEFAULT_UPSTREAM_ENV),
      registry: registry(),
      discovery: null,
      forwarder: { forward: () => Promise.reject(new Error('socket exploded')) },
    });
    const wrapped = await s3ErrorOf(notAnError.listBuckets());
    expect(wrapped).toMatchObject({ code: 'ServiceUnavailable', status: 503 });
  });

  it('never asks the forwarder when there is no default upstream', async () => {
    const resolver = resolverWith({
      config: config(RUNPOD_ENV),
      registry: registry([{ name: 'registered', datacenter: 'EU-RO-1' }]),
      discovery: null,
      forwarder: { forward: () => Promise.reject(new Error('must not be called')) },
    });
    expect((await resolver.listBuckets()).map((b) => b.name)).toEqual(['registered']);
  });
});
