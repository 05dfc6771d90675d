/**
 * The bucket lifecycle on RunPod (src/buckets/lifecycle.ts), in-process with real parts: the SQLite
 * bucket registry, the resolver and forwarder, the REST client against a local fake of RunPod's REST
 * API, and moto standing in for the datacenters' S3 (a created volume is a moto bucket).
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AMBIGUOUS_HOLD_MS, BucketLifecycle, BucketLifecycleError, type BucketLifecycleErrorCode } from '../../src/buckets/lifecycle.js';
import type { Config } from '../../src/config.js';
import { S3Error } from '../../src/errors.js';
import { openStore, type Store } from '../../src/store/db.js';
import { UpstreamForwarder } from '../../src/upstream/forward.js';
import { UpstreamResolver } from '../../src/upstream/resolver.js';
import { RunpodVolumeApi } from '../../src/upstream/runpod-volumes.js';
import { startFakeRunpodRest, type FakeAnswer, type FakeRunpodRest } from '../helpers/fake-runpod-rest.js';
import { configFor, makeTempDirs, TEST_MASTER_KEY_HEX } from '../helpers/keygate-cli.js';
import { freePort } from '../helpers/ports.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';
import { capturingLog } from '../upstream/fixtures.js';

const API_KEY = 'rpa_lifecycle_test_key_9876543210';

let moto: TestUpstream;
let rest: FakeRunpodRest;
const logged = capturingLog();
const forwarder = new UpstreamForwarder({ log: logged.log });
const dirs = makeTempDirs();
const stores: Store[] = [];

beforeAll(async () => {
  moto = await startMoto({ validateSignatures: true });
  rest = await startFakeRunpodRest({ apiKey: API_KEY, datacenters: { 'EU-RO-1': moto, 'US-KS-2': moto } });
});
afterAll(async () => {
  await forwarder.close();
  await rest?.stop();
  await moto?.stop();
});
beforeEach(() => {
  rest.calls.length = 0;
  rest.onCreated = null;
  logged.entries.length = 0;
});
afterEach(() => {
  for (const store of stores.splice(0)) store.close();
  dirs.cleanup();
});

interface Setup {
  config: Config;
  store: Store;
  lifecycle: BucketLifecycle;
  clock: { now: number };
}

function setup(env: Record<string, string> = {}, options: { timeoutMs?: number } = {}): Setup {
  const config = configFor(dirs.make(), {
    KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
    RUNPOD_API_KEY: API_KEY,
    KEYGATE_RUNPOD_REST_URL: `${rest.url}/v2`,
    KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint, 'US-KS-2': moto.endpoint }),
    RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
    RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
    ...env,
  });
  const store = openStore(config);
  stores.push(store);
  const resolver = new UpstreamResolver({ config, registry: store.buckets, forwarder, discovery: null, log: logged.log, runpodBucketLifecycle: true });
  const api =
    config.runpodApiKey === null ? null : new RunpodVolumeApi({ restUrl: config.runpodRestUrl, apiKey: config.runpodApiKey, timeoutMs: options.timeoutMs });
  const clock = { now: Date.now() };
  const lifecycle = new BucketLifecycle({ config, registry: store.buckets, rest: api, resolver, forwarder, log: logged.log, now: () => clock.now });
  return { config, store, lifecycle, clock };
}

async function refusal(promise: Promise<unknown>, code: BucketLifecycleErrorCode, status: number): Promise<BucketLifecycleError> {
  const error = await promise.then(
    () => new Error('expected a refusal'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BucketLifecycleError);
  // An S3 error as the S3 listener answers it.
  expect(error).toBeInstanceOf(S3Error);
  expect(error).toMatchObject({ code, status });
  expect((error as Error).message).not.toContain(API_KEY);
  return error as BucketLifecycleError;
}

const posts = () => rest.calls.filter((call) => call.method === 'POST');
const deletes = () => rest.calls.filter((call) => call.method === 'DELETE');

describe('creating a bucket on RunPod', () => {
  it('creates a volume in the datacenter asked for and registers the name -> its id there, usable at once', async () => {
    const { lifecycle, store, config } = setup();
    expect(lifecycle.canCreateOnRunpod).toBe(true);
    const record = await lifecycle.createRunpodBucket({ name: 'team-data', datacenter: 'eu-ro-1' });
    expect(posts()).toHaveLength(1);
    expect(posts()[0]!.body).toEqual({ name: 'team-data', size: config.runpodVolumeSizeGb, dataCenter: 'EU-RO-1' });
    const volumeId = [...rest.volumes.values()].find((volume) => volume.name === 'team-data')!.id;
    expect(record).toMatchObject({ name: 'team-data', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: volumeId });
    expect(store.buckets.get('team-data')).toMatchObject({ datacenter: 'EU-RO-1', upstreamBucket: volumeId });

    // Routed to the volume's bucket on the datacenter's S3 on the very next lookup.
    const resolver = new UpstreamResolver({ config, registry: store.buckets, forwarder, discovery: null, log: logged.log });
    const target = (await resolver.resolve('team-data'))!;
    expect(target).toMatchObject({ kind: 'runpod', bucket: volumeId, datacenter: 'EU-RO-1' });
    const put = await forwarder.forward({
      target,
      method: 'PUT',
      objectKey: 'hello.txt',
      query: [],
      headers: {},
      body: null,
    });
    put.body.resume();
    expect((await moto.request('HEAD', `/${volumeId}/hello.txt`)).status).toBe(200);
  });

  it('uses KEYGATE_RUNPOD_VOLUME_SIZE_GB, names dotted buckets with hyphens, and the default datacenter when none is asked for', async () => {
    const { lifecycle } = setup({ KEYGATE_RUNPOD_VOLUME_SIZE_GB: '50', KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'us-ks-2' });
    await lifecycle.createRunpodBucket({ name: 'logs.example.com' });
    await lifecycle.createRunpodBucket({ name: 'other', datacenter: '  ' });
    expect(posts().map((call) => call.body)).toEqual([
      { name: 'logs-example-com', size: 50, dataCenter: 'US-KS-2' },
      { name: 'other', size: 50, dataCenter: 'US-KS-2' },
    ]);
  });

  it('refuses without a datacenter, or with one RunPod has no S3 in, listing the valid ones; RunPod is not asked', async () => {
    const { lifecycle } = setup();
    const none = await refusal(lifecycle.createRunpodBucket({ name: 'no-dc' }), 'InvalidLocationConstraint', 400);
    expect(none.message).toMatch(/LocationConstraint.*--region EU-RO-1.*KEYGATE_RUNPOD_DEFAULT_DATACENTER.*EU-CZ-1, EU-RO-1/);
    const unknown = await refusal(lifecycle.createRunpodBucket({ name: 'moon', datacenter: 'MOON-1' }), 'InvalidLocationConstraint', 400);
    expect(unknown.message).toMatch(/"MOON-1" is not a RunPod datacenter.*US-KS-2/);
    await refusal(lifecycle.createRunpodBucket({ name: 'eu-bucket', datacenter: 'EU' }), 'InvalidLocationConstraint', 400);
    // A caller passing parsed JSON as is: a number is no datacenter (and not "none given" either).
    await refusal(lifecycle.createRunpodBucket({ name: 'eu-bucket', datacenter: 1 as unknown as string }), 'InvalidLocationConstraint', 400);
    expect(rest.calls).toEqual([]);
  });

  it.each(['../x', 'Team-Data', 'a'.repeat(64), 'ab', '-start', 'a..b', '192.168.0.1', 'xn--bad', ''])(
    'refuses the bucket name %j before asking RunPod',
    async (name) => {
      const { lifecycle } = setup({ KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'EU-RO-1' });
      const error = await refusal(lifecycle.createRunpodBucket({ name }), 'InvalidBucketName', 400);
      expect(error.message).toMatch(/S3 bucket naming/);
      expect(rest.calls).toEqual([]);
    },
  );

  it('answers BucketAlreadyOwnedByYou for a registered name, without asking RunPod', async () => {
    const { lifecycle, store } = setup();
    store.buckets.add({ name: 'taken', datacenter: 'EU-RO-1', upstreamBucket: 'somevolume' });
    await refusal(lifecycle.createRunpodBucket({ name: 'taken', datacenter: 'EU-RO-1' }), 'BucketAlreadyOwnedByYou', 409);
    expect(rest.calls).toEqual([]);
  });

  it('creates one volume when the same name is created many times at once', async () => {
    const { lifecycle } = setup();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => lifecycle.createRunpodBucket({ name: 'raced', datacenter: 'EU-RO-1' })));
    expect(posts()).toHaveLength(1);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(result.reason).toMatchObject({ code: 'BucketAlreadyOwnedByYou' });
    }
  });

  it('names the new volume when another process registered the name meanwhile', async () => {
    const { lifecycle, store, config } = setup();
    const otherProcess = openStore(config);
    stores.push(otherProcess);
    rest.onCreated = () => void otherProcess.buckets.add({ name: 'contested', datacenter: 'US-KS-2', upstreamBucket: 'theirs' });
    const error = await refusal(lifecycle.createRunpodBucket({ name: 'contested', datacenter: 'EU-RO-1' }), 'BucketAlreadyOwnedByYou', 409);
    const orphan = [...rest.volumes.values()].find((volume) => volume.name === 'contested')!.id;
    expect(error.volumeId).toBe(orphan);
    expect(error.message).toContain(`RunPod network volume ${orphan} (in EU-RO-1)`);
    expect(error.message).toMatch(/delete .* in the RunPod console|keygate buckets add <name> --datacenter EU-RO-1 --upstream-bucket/);
    // The other registration stands.
    expect(store.buckets.get('contested')).toMatchObject({ datacenter: 'US-KS-2', upstreamBucket: 'theirs' });
    expect(logged.find('RunPod volume created but not registered')[0]?.fields).toMatchObject({ bucket: 'contested', volumeId: orphan });
  });

  it('names the new volume when registering it fails', async () => {
    const { lifecycle, store } = setup();
    rest.onCreated = () => store.close();
    const error = await refusal(lifecycle.createRunpodBucket({ name: 'lost', datacenter: 'EU-RO-1' }), 'InternalError', 500);
    const orphan = [...rest.volumes.values()].find((volume) => volume.name === 'lost')!.id;
    expect(error.volumeId).toBe(orphan);
    expect(error.message).toContain(orphan);
  });

  describe('RunPod failures', () => {
    it.each<[string, FakeAnswer, BucketLifecycleErrorCode, number, RegExp]>([
      [
        'a refused API key (401, echoing it)',
        { status: 401, json: { error: `invalid api key ${API_KEY}` } },
        'AccessDenied',
        403,
        /refused the gateway's RunPod API key \(HTTP 401: "invalid api key \[redacted\]"\).*nothing was created.*set RUNPOD_API_KEY/,
      ],
      [
        'a datacenter RunPod refuses (400)',
        { status: 400, json: { error: 'no capacity in data center EU-RO-1' } },
        'InvalidLocationConstraint',
        400,
        /refused to create a network volume in EU-RO-1.*"no capacity in data center EU-RO-1".*Try another datacenter/,
      ],
      [
        'a size RunPod refuses (400)',
        { status: 400, json: { message: 'size exceeds your quota' } },
        'InvalidArgument',
        400,
        /refused to create a 10 GB network volume.*"size exceeds your quota".*KEYGATE_RUNPOD_VOLUME_SIZE_GB/,
      ],
      [
        'a wrong REST URL (404)',
        { status: 404, json: { error: 'not found' } },
        'NotImplemented',
        501,
        /no network volumes at POST \/v2\/network-volumes.*KEYGATE_RUNPOD_REST_URL/,
      ],
      ['a rate limit (429)', { status: 429, json: {}, headers: { 'retry-after': '12' } }, 'SlowDown', 503, /nothing was created\. Retry in 12 s/],
    ])('%s', async (_what, answer, code, status, message) => {
      const { lifecycle } = setup();
      rest.failNext('POST', answer);
      const error = await refusal(lifecycle.createRunpodBucket({ name: 'fails', datacenter: 'EU-RO-1' }), code, status);
      expect(error.message).toMatch(message);
      if (code === 'SlowDown') expect(error.headers['retry-after']).toBe('12');
      // Nothing was created, so trying again asks RunPod again.
      await lifecycle.createRunpodBucket({ name: 'fails', datacenter: 'EU-RO-1' });
      expect(posts()).toHaveLength(2);
    });

    it('an unreachable REST API: ServiceUnavailable, nothing created', async () => {
      const { lifecycle } = setup({ KEYGATE_RUNPOD_REST_URL: `http://127.0.0.1:${await freePort()}/v2` });
      const error = await refusal(lifecycle.createRunpodBucket({ name: 'offline', datacenter: 'EU-RO-1' }), 'ServiceUnavailable', 503);
      expect(error.message).toMatch(/could not reach RunPod's REST API.*nothing was created/);
      expect(error.retryAfterSeconds).toBe(30);
    });

    it.each<[string, FakeAnswer, BucketLifecycleErrorCode, number]>([
      ['a 500 after RunPod created the volume', { status: 500, json: { error: 'internal' }, createAnyway: true }, 'BadGateway', 502],
      ['a 201 without a usable id', { status: 201, raw: '{"id": 42}', createAnyway: true }, 'BadGateway', 502],
      ['no answer in time', { status: 0, hang: true }, 'GatewayTimeout', 504],
    ])('%s: says a volume may exist, and holds the name so a retry creates no second volume', async (_what, answer, code, status) => {
      const { lifecycle, clock } = setup({}, { timeoutMs: 500 });
      rest.failNext('POST', answer);
      const first = await refusal(lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' }), code, status);
      expect(first.message).toMatch(/network volume named "unsure" (may or may not have been|was probably) created in EU-RO-1/);
      expect(first.message).toMatch(/check the RunPod console.*keygate buckets add unsure --datacenter EU-RO-1 --upstream-bucket <volume id>/);
      const retried = await refusal(lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' }), 'OperationAborted', 409);
      expect(retried.message).toMatch(/earlier attempt to create bucket "unsure" ended without a clear answer/);
      expect(posts()).toHaveLength(1);
      // Other names are not held.
      await lifecycle.createRunpodBucket({ name: 'sure', datacenter: 'EU-RO-1' });
      // After the hold, the operator has had time to look: the name can be created again.
      clock.now += AMBIGUOUS_HOLD_MS;
      await lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' });
      expect(posts()).toHaveLength(3);
    });
  });

  it('is not offered without RUNPOD_API_KEY or without the RunPod S3 credentials', async () => {
    for (const env of [{ RUNPOD_API_KEY: '' }, { RUNPOD_S3_ACCESS_KEY: '', RUNPOD_S3_SECRET_KEY: '' }] as Array<Record<string, string>>) {
      const { lifecycle } = setup(env);
      expect(lifecycle.canCreateOnRunpod).toBe(false);
      const error = await refusal(lifecycle.createRunpodBucket({ name: 'nope', datacenter: 'EU-RO-1' }), 'NotImplemented', 501);
      expect(error.message).toMatch(/RUNPOD_API_KEY.*keygate buckets add nope --datacenter <DC> --upstream-bucket <volume id>/);
    }
    expect(rest.calls).toEqual([]);
  });
});

describe('deleting a RunPod bucket', () => {
  const ALLOW = { KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: '1' };

  async function created(lifecycle: BucketLifecycle, name: string): Promise<string> {
    return (await lifecycle.createRunpodBucket({ name, datacenter: 'EU-RO-1' })).upstreamBucket;
  }

  it('is refused unless KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1, saying how to allow it and how to unregister instead', async () => {
    const { lifecycle, store } = setup();
    const volumeId = await created(lifecycle, 'precious');
    const error = await refusal(lifecycle.deleteRunpodBucket('precious'), 'AccessDenied', 403);
    expect(error.message).toMatch(
      /deletes its RunPod network volume and every file on it.*KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1.*keygate buckets remove precious/,
    );
    // The volume id is the gateway's business: clients only know the bucket's name.
    expect(error.message).not.toContain(volumeId);
    expect(deletes()).toEqual([]);
    expect(store.buckets.get('precious')).not.toBeNull();
  });

  it('deletes an empty bucket: the volume (DELETE recorded), then the registration', async () => {
    const { lifecycle, store } = setup(ALLOW);
    const volumeId = await created(lifecycle, 'scratch');
    await lifecycle.deleteRunpodBucket('scratch');
    expect(deletes().map((call) => `${call.path} ${call.authorization}`)).toEqual([`/v2/network-volumes/${volumeId} Bearer ${API_KEY}`]);
    expect(store.buckets.get('scratch')).toBeNull();
    expect(rest.volumes.has(volumeId)).toBe(false);
    expect((await moto.request('HEAD', `/${volumeId}`)).status).toBe(404);
    // Gone: deleting again is NoSuchBucket.
    await refusal(lifecycle.deleteRunpodBucket('scratch'), 'NoSuchBucket', 404);
  });

  it('refuses a bucket holding an object, or a multipart upload in progress', async () => {
    const { lifecycle, store } = setup(ALLOW);
    const volumeId = await created(lifecycle, 'full');
    await moto.request('PUT', `/${volumeId}/dir/file.txt`, { body: 'data' });
    const error = await refusal(lifecycle.deleteRunpodBucket('full'), 'BucketNotEmpty', 409);
    expect(error.message).toMatch(/not empty.*aws s3 rm s3:\/\/full --recursive/);
    await moto.request('DELETE', `/${volumeId}/dir/file.txt`);
    const initiated = await moto.request('POST', `/${volumeId}/big.bin`, { query: 'uploads' });
    expect(initiated.status).toBe(200);
    const uploads = await refusal(lifecycle.deleteRunpodBucket('full'), 'BucketNotEmpty', 409);
    expect(uploads.message).toMatch(/multipart uploads in progress.*abort-multipart-upload/);
    expect(deletes()).toEqual([]);
    expect(store.buckets.get('full')).not.toBeNull();
  });

  it('refuses a volume another registered bucket also serves', async () => {
    const { lifecycle, store } = setup(ALLOW);
    const volumeId = await created(lifecycle, 'shared-one');
    store.buckets.add({ name: 'shared-alias', datacenter: 'EU-RO-1', upstreamBucket: volumeId });
    const error = await refusal(lifecycle.deleteRunpodBucket('shared-one'), 'InvalidBucketState', 409);
    expect(error.message).toMatch(/also serves bucket "shared-alias"/);
    expect(deletes()).toEqual([]);
  });

  it('unregisters a bucket whose volume RunPod no longer has', async () => {
    const { lifecycle, store } = setup(ALLOW);
    store.buckets.add({ name: 'stale', datacenter: 'EU-RO-1', upstreamBucket: 'kgvstale00000' });
    await moto.createBucket('kgvstale00000');
    await lifecycle.deleteRunpodBucket('stale');
    expect(store.buckets.get('stale')).toBeNull();
    expect(logged.find('RunPod volume already gone; unregistering its bucket')).toHaveLength(1);
  });

  it('keeps the registration when RunPod refuses the delete (a volume in use)', async () => {
    const { lifecycle, store } = setup(ALLOW);
    await created(lifecycle, 'in-use');
    rest.failNext('DELETE', { status: 400, json: { error: 'network volume is in use by pod abc' } });
    const error = await refusal(lifecycle.deleteRunpodBucket('in-use'), 'InvalidBucketState', 409);
    expect(error.message).toMatch(/refused to delete.*"network volume is in use by pod abc".*still registered/);
    expect(store.buckets.get('in-use')).not.toBeNull();
  });

  it('says what to do for names it does not delete: unknown, not on RunPod', async () => {
    const { lifecycle, store } = setup({
      ...ALLOW,
      KEYGATE_UPSTREAM_ENDPOINT: moto.endpoint,
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a',
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b',
    });
    await refusal(lifecycle.deleteRunpodBucket('unknown-name'), 'NoSuchBucket', 404);
    store.buckets.add({ name: 'generic', upstreamBucket: 'generic' });
    await refusal(lifecycle.deleteRunpodBucket('generic'), 'NotImplemented', 501);
    expect(rest.calls).toEqual([]);
  });
});
