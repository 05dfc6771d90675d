/**
 * The bucket lifecycle on RunPod (src/buckets/lifecycle.ts), in-process with real parts: the SQLite
 * bucket registry, the resolver and forwarder, the REST client against a local fake of RunPod's REST
 * API, and moto standing in for the datacenters' S3 (a created volume is a moto bucket).
 */
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AMBIGUOUS_HOLD_MS, BucketLifecycle, BucketLifecycleError, volumeName, type BucketLifecycleErrorCode } from '../../src/buckets/lifecycle.js';
import { isValidBucketName } from '../../src/buckets/validate.js';
import type { Config } from '../../src/config.js';
import { S3Error } from '../../src/errors.js';
import type { AccessKey } from '../../src/keys/model.js';
import { parseAddress } from '../../src/s3/address.js';
import { classify, describeOperation, type S3Operation } from '../../src/s3/classify.js';
import { executeOperation, type HandlerDeps, type OperationContext } from '../../src/s3/handlers.js';
import { planOperation } from '../../src/s3/plan.js';
import { UploadIdBinding } from '../../src/s3/upload-ids.js';
import { openStore, type Store } from '../../src/store/open.js';
import { UpstreamForwarder, type ForwardRequest, type UpstreamResponse } from '../../src/upstream/forward.js';
import { UpstreamResolver } from '../../src/upstream/resolver.js';
import { RunpodVolumeApi } from '../../src/upstream/runpod-volumes.js';
import { startFakeRunpodRest, type FakeAnswer, type FakeRunpodRest } from '../helpers/fake-runpod-rest.js';
import { configFor, makeTempDirs, TEST_MASTER_KEY_HEX } from '../helpers/keygate-cli.js';
import { freePort } from '../helpers/ports.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';
import { capturingLog } from '../upstream/fixtures.js';
import { Cancellation } from '../../src/cancellation.js';

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
  rest.onDeleting = null;
  // Volumes of earlier tests would be in the listing every create now checks.
  rest.volumes.clear();
  logged.entries.length = 0;
});
afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  dirs.cleanup();
});

interface Setup {
  config: Config;
  store: Store;
  lifecycle: BucketLifecycle;
  clock: { now: number };
  resolver: UpstreamResolver;
}

async function setup(
  env: Record<string, string> = {},
  options: { timeoutMs?: number; maxHolds?: number; forwarder?: Pick<UpstreamForwarder, 'forward'> } = {},
): Promise<Setup> {
  const config = configFor(dirs.make(), {
    KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX,
    RUNPOD_API_KEY: API_KEY,
    KEYGATE_RUNPOD_REST_URL: `${rest.url}/v2`,
    KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint, 'US-KS-2': moto.endpoint }),
    RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
    RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
    ...env,
  });
  const store = await openStore(config);
  stores.push(store);
  const resolver = new UpstreamResolver({ config, registry: store.buckets, forwarder, discovery: null, log: logged.log, runpodBucketLifecycle: true });
  const api =
    config.runpodApiKey === null ? null : new RunpodVolumeApi({ restUrl: config.runpodRestUrl, apiKey: config.runpodApiKey, timeoutMs: options.timeoutMs });
  const clock = { now: Date.now() };
  const lifecycle = new BucketLifecycle({
    config,
    registry: store.buckets,
    rest: api,
    resolver,
    forwarder: options.forwarder ?? forwarder,
    log: logged.log,
    now: () => clock.now,
    maxHolds: options.maxHolds,
  });
  return { config, store, lifecycle, clock, resolver };
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
    const { lifecycle, store, config } = await setup();
    expect(lifecycle.canCreateOnRunpod).toBe(true);
    const record = await lifecycle.createRunpodBucket({ name: 'team-data', datacenter: 'eu-ro-1' });
    expect(posts()).toHaveLength(1);
    expect(posts()[0]!.body).toEqual({ name: 'team-data', size: config.runpodVolumeSizeGb, dataCenter: 'EU-RO-1' });
    const volumeId = [...rest.volumes.values()].find((volume) => volume.name === 'team-data')!.id;
    expect(record).toMatchObject({ name: 'team-data', datacenter: 'EU-RO-1', endpoint: null, region: null, upstreamBucket: volumeId });
    expect(await store.buckets.get('team-data')).toMatchObject({ datacenter: 'EU-RO-1', upstreamBucket: volumeId });

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

  it('uses KEYGATE_RUNPOD_VOLUME_SIZE_GB, names dotted buckets with underscores, and the default datacenter when none is asked for', async () => {
    const { lifecycle } = await setup({ KEYGATE_RUNPOD_VOLUME_SIZE_GB: '50', KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'us-ks-2' });
    await lifecycle.createRunpodBucket({ name: 'logs.example.com' });
    await lifecycle.createRunpodBucket({ name: 'other', datacenter: '  ' });
    expect(posts().map((call) => call.body)).toEqual([
      { name: 'logs_example_com', size: 50, dataCenter: 'US-KS-2' },
      { name: 'other', size: 50, dataCenter: 'US-KS-2' },
    ]);
  });

  it("gives bucket names that differ only in dots and hyphens different volume names, within RunPod's name rules", async () => {
    for (const [a, b] of [
      ['team.data', 'team-data'],
      ['a.b-c', 'a-b.c'],
      ['x.y.z', 'x-y-z'],
    ] as const) {
      expect(volumeName(a)).not.toBe(volumeName(b));
    }
    for (const name of ['team.data', 'team-data', `${'a.'.repeat(31)}a`, 'logs.example.com']) {
      expect(isValidBucketName(name)).toBe(true);
      // RunPod's volume names: letters, digits, `-`, `_` and spaces; never longer than the bucket name.
      expect(volumeName(name)).toMatch(/^[A-Za-z0-9_-]{3,63}$/);
    }
    const { lifecycle } = await setup();
    await lifecycle.createRunpodBucket({ name: 'team.data', datacenter: 'EU-RO-1' });
    await lifecycle.createRunpodBucket({ name: 'team-data', datacenter: 'EU-RO-1' });
    expect(posts().map((call) => (call.body as { name: string }).name)).toEqual(['team_data', 'team-data']);
  });

  it('refuses without a datacenter, or with one RunPod has no S3 in, listing the valid ones; RunPod is not asked', async () => {
    const { lifecycle } = await setup();
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
      const { lifecycle } = await setup({ KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'EU-RO-1' });
      const error = await refusal(lifecycle.createRunpodBucket({ name }), 'InvalidBucketName', 400);
      expect(error.message).toMatch(/S3 bucket naming/);
      expect(rest.calls).toEqual([]);
    },
  );

  it('answers BucketAlreadyOwnedByYou for a registered name, without asking RunPod', async () => {
    const { lifecycle, store } = await setup();
    await store.buckets.add({ name: 'taken', datacenter: 'EU-RO-1', upstreamBucket: 'somevolume' });
    await refusal(lifecycle.createRunpodBucket({ name: 'taken', datacenter: 'EU-RO-1' }), 'BucketAlreadyOwnedByYou', 409);
    expect(rest.calls).toEqual([]);
  });

  it('creates one volume when the same name is created many times at once', async () => {
    const { lifecycle } = await setup();
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => lifecycle.createRunpodBucket({ name: 'raced', datacenter: 'EU-RO-1' })));
    expect(posts()).toHaveLength(1);
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
    for (const result of results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')) {
      expect(result.reason).toMatchObject({ code: 'BucketAlreadyOwnedByYou' });
    }
  });

  it('names the new volume when another process registered the name meanwhile', async () => {
    const { lifecycle, store, config } = await setup();
    const otherProcess = await openStore(config);
    stores.push(otherProcess);
    rest.onCreated = async () => {
      await otherProcess.buckets.add({ name: 'contested', datacenter: 'US-KS-2', upstreamBucket: 'theirs' });
    };
    const error = await refusal(lifecycle.createRunpodBucket({ name: 'contested', datacenter: 'EU-RO-1' }), 'BucketAlreadyOwnedByYou', 409);
    const orphan = [...rest.volumes.values()].find((volume) => volume.name === 'contested')!.id;
    expect(error.volumeId).toBe(orphan);
    expect(error.message).toContain(`RunPod network volume ${orphan} (in EU-RO-1)`);
    expect(error.message).toMatch(/delete .* in the RunPod console|keygate buckets add <name> --datacenter EU-RO-1 --upstream-bucket/);
    // The other registration stands.
    expect(await store.buckets.get('contested')).toMatchObject({ datacenter: 'US-KS-2', upstreamBucket: 'theirs' });
    expect(logged.find('RunPod volume created but not registered')[0]?.fields).toMatchObject({ bucket: 'contested', volumeId: orphan });
  });

  it('names the new volume when registering it fails', async () => {
    const { lifecycle, store } = await setup();
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
        /refused the gateway's RunPod API key \(HTTP 401\).*nothing was created.*set RUNPOD_API_KEY/,
      ],
      [
        'a datacenter RunPod refuses (400)',
        { status: 400, json: { error: 'no capacity in data center EU-RO-1' } },
        'InvalidLocationConstraint',
        400,
        /refused to create a network volume in EU-RO-1 for bucket "fails" \(HTTP 400\), for a reason about the datacenter.*Try another datacenter.*reason is in the gateway's log/,
      ],
      [
        'a size RunPod refuses (400)',
        { status: 400, json: { message: 'size exceeds your quota' } },
        'InvalidArgument',
        400,
        /refused to create a 10 GB network volume.*\(HTTP 400\).*reason in the gateway's log.*KEYGATE_RUNPOD_VOLUME_SIZE_GB/,
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
      const { lifecycle } = await setup();
      rest.failNext('POST', answer);
      const error = await refusal(lifecycle.createRunpodBucket({ name: 'fails', datacenter: 'EU-RO-1' }), code, status);
      expect(error.message).toMatch(message);
      // RunPod's own words are for the operator's log only (they can carry account details).
      const runpodSaid = (answer.json as { error?: string; message?: string }).error ?? (answer.json as { message?: string }).message;
      if (runpodSaid !== undefined) {
        expect(error.message).not.toContain(runpodSaid.replace(API_KEY, '[redacted]').slice(0, 20));
        expect(JSON.stringify(logged.find('creating a RunPod volume failed')[0]?.fields)).toContain(runpodSaid.replace(API_KEY, '[redacted]'));
      }
      if (code === 'SlowDown') expect(error.headers['retry-after']).toBe('12');
      // Nothing was created, so trying again asks RunPod again.
      await lifecycle.createRunpodBucket({ name: 'fails', datacenter: 'EU-RO-1' });
      expect(posts()).toHaveLength(2);
    });

    it('an unreachable REST API: ServiceUnavailable, nothing created', async () => {
      const { lifecycle } = await setup({ KEYGATE_RUNPOD_REST_URL: `http://127.0.0.1:${await freePort()}/v2` });
      const error = await refusal(lifecycle.createRunpodBucket({ name: 'offline', datacenter: 'EU-RO-1' }), 'ServiceUnavailable', 503);
      // The listing made just before the POST is what fails first.
      expect(error.message).toMatch(/could not list the RunPod account's network volumes to check that "offline" is free\. Nothing was created/);
      expect(error.retryAfterSeconds).toBe(30);
    });

    it.each<[string, FakeAnswer, BucketLifecycleErrorCode, number]>([
      ['a 500 after RunPod created the volume', { status: 500, json: { error: 'internal' }, createAnyway: true }, 'BadGateway', 502],
      ['a 201 without a usable id', { status: 201, raw: '{"id": 42}', createAnyway: true }, 'BadGateway', 502],
      ['no answer in time', { status: 0, hang: true }, 'GatewayTimeout', 504],
    ])('%s: says a volume may exist, and holds the name so a retry creates no second volume', async (_what, answer, code, status) => {
      const { lifecycle, clock } = await setup({}, { timeoutMs: 500 });
      rest.failNext('POST', answer);
      const first = await refusal(lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' }), code, status);
      expect(first.message).toMatch(/network volume named "unsure" (may or may not have been|was probably) created in EU-RO-1/);
      expect(first.message).toMatch(/check the RunPod console.*keygate buckets add unsure --datacenter EU-RO-1 --upstream-bucket <volume id>/);
      const retried = await refusal(lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' }), 'OperationAborted', 409);
      expect(retried.message).toMatch(/earlier attempt to create bucket "unsure" ended without a clear answer/);
      expect(posts()).toHaveLength(1);
      // Other names are not held.
      await lifecycle.createRunpodBucket({ name: 'sure', datacenter: 'EU-RO-1' });
      clock.now += AMBIGUOUS_HOLD_MS;
      const made = [...rest.volumes.values()].find((volume) => volume.name === 'unsure');
      if (made !== undefined) {
        // After the hold, a volume RunPod did make still refuses the name (the account's listing says so, restarts or not).
        const leftover = await refusal(lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' }), 'OperationAborted', 409);
        expect(leftover.volumeId).toBe(made.id);
        rest.volumes.delete(made.id);
      }
      // Once the operator has looked (and removed any such volume), the name can be created again.
      await lifecycle.createRunpodBucket({ name: 'unsure', datacenter: 'EU-RO-1' });
      expect(posts()).toHaveLength(3);
    });
  });

  it('is not offered without RUNPOD_API_KEY or without the RunPod S3 credentials', async () => {
    for (const env of [{ RUNPOD_API_KEY: '' }, { RUNPOD_S3_ACCESS_KEY: '', RUNPOD_S3_SECRET_KEY: '' }] as Array<Record<string, string>>) {
      const { lifecycle } = await setup(env);
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
    const { lifecycle, store } = await setup();
    const volumeId = await created(lifecycle, 'precious');
    const error = await refusal(lifecycle.deleteRunpodBucket('precious'), 'AccessDenied', 403);
    expect(error.message).toMatch(
      /deletes its RunPod network volume and every file on it.*KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1.*keygate buckets remove precious/,
    );
    // The volume id is the gateway's business: clients only know the bucket's name.
    expect(error.message).not.toContain(volumeId);
    expect(deletes()).toEqual([]);
    expect(await store.buckets.get('precious')).not.toBeNull();
  });

  it('deletes an empty bucket: the volume (DELETE recorded), then the registration', async () => {
    const { lifecycle, store } = await setup(ALLOW);
    const volumeId = await created(lifecycle, 'scratch');
    await lifecycle.deleteRunpodBucket('scratch');
    expect(deletes().map((call) => `${call.path} ${call.authorization}`)).toEqual([`/v2/network-volumes/${volumeId} Bearer ${API_KEY}`]);
    expect(await store.buckets.get('scratch')).toBeNull();
    expect(rest.volumes.has(volumeId)).toBe(false);
    expect((await moto.request('HEAD', `/${volumeId}`)).status).toBe(404);
    // Gone: deleting again is NoSuchBucket.
    await refusal(lifecycle.deleteRunpodBucket('scratch'), 'NoSuchBucket', 404);
  });

  it('refuses a bucket holding an object, or a multipart upload in progress', async () => {
    const { lifecycle, store } = await setup(ALLOW);
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
    expect(await store.buckets.get('full')).not.toBeNull();
  });

  it('refuses a volume another registered bucket also serves', async () => {
    const { lifecycle, store } = await setup(ALLOW);
    const volumeId = await created(lifecycle, 'shared-one');
    await store.buckets.add({ name: 'shared-alias', datacenter: 'EU-RO-1', upstreamBucket: volumeId });
    const error = await refusal(lifecycle.deleteRunpodBucket('shared-one'), 'InvalidBucketState', 409);
    expect(error.message).toMatch(/also serves bucket "shared-alias"/);
    expect(deletes()).toEqual([]);
  });

  it('unregisters a bucket whose volume RunPod no longer has', async () => {
    const { lifecycle, store } = await setup(ALLOW);
    await store.buckets.add({ name: 'stale', datacenter: 'EU-RO-1', upstreamBucket: 'kgvstale00000' });
    await moto.createBucket('kgvstale00000');
    await lifecycle.deleteRunpodBucket('stale');
    expect(await store.buckets.get('stale')).toBeNull();
    // Documented (docs/runpod.md): what makes retrying a delete whose answer was lost safe; the log says what to check.
    const [gone] = logged.find('RunPod volume already gone; unregistering its bucket');
    expect(gone).toMatchObject({ level: 'warn', fields: { bucket: 'stale', volumeId: 'kgvstale00000' } });
    expect(gone!.fields.check).toMatch(/RUNPOD_API_KEY may belong to another RunPod account/);
  });

  it('keeps the registration when RunPod refuses the delete (a volume in use)', async () => {
    const { lifecycle, store } = await setup(ALLOW);
    await created(lifecycle, 'in-use');
    rest.failNext('DELETE', { status: 400, json: { error: 'network volume is in use by pod abc' } });
    const error = await refusal(lifecycle.deleteRunpodBucket('in-use'), 'InvalidBucketState', 409);
    expect(error.message).toMatch(/refused to delete.*\(HTTP 400\).*still registered.*reason is in the gateway's log/);
    expect(error.message).not.toContain('pod abc');
    expect(logged.find('deleting a RunPod volume failed')[0]?.fields.error).toContain('network volume is in use by pod abc');
    expect(await store.buckets.get('in-use')).not.toBeNull();
    // The fence is down again: writes are taken.
    expect(lifecycle.isBeingDeleted('in-use')).toBe(false);
  });

  it('says what to do for names it does not delete: unknown, not on RunPod', async () => {
    const { lifecycle, store } = await setup({
      ...ALLOW,
      KEYGATE_UPSTREAM_ENDPOINT: moto.endpoint,
      KEYGATE_UPSTREAM_ACCESS_KEY_ID: 'a',
      KEYGATE_UPSTREAM_SECRET_ACCESS_KEY: 'b',
    });
    await refusal(lifecycle.deleteRunpodBucket('unknown-name'), 'NoSuchBucket', 404);
    await store.buckets.add({ name: 'generic', upstreamBucket: 'generic' });
    await refusal(lifecycle.deleteRunpodBucket('generic'), 'NotImplemented', 501);
    expect(rest.calls).toEqual([]);
  });
});

describe('names that are taken, or whose volume may exist', () => {
  const create = (lifecycle: BucketLifecycle, name: string) => lifecycle.createRunpodBucket({ name, datacenter: 'EU-RO-1' });

  it('refuses a name that is the volume id of a registered bucket (any case), without asking RunPod', async () => {
    const { lifecycle, store } = await setup();
    await store.buckets.add({ name: 'team-data', datacenter: 'EU-RO-1', upstreamBucket: 'KGVREGISTERED1' });
    const error = await refusal(create(lifecycle, 'kgvregistered1'), 'BucketAlreadyOwnedByYou', 409);
    expect(error.message).toMatch(/"kgvregistered1" is the storage of bucket "team-data" on this gateway.*choose another name/);
    expect(rest.calls).toEqual([]);
    expect(await store.buckets.get('kgvregistered1')).toBeNull();
  });

  it("refuses a name that is the id of one of the account's volumes, from a listing made right before the POST (never cached)", async () => {
    const { lifecycle, store } = await setup();
    rest.volumes.set('kgvunregistered', { id: 'kgvunregistered', name: 'made-in-the-console', size: 10, dataCenterId: 'EU-RO-1' });
    const error = await refusal(create(lifecycle, 'kgvunregistered'), 'BucketAlreadyOwnedByYou', 409);
    expect(error.message).toMatch(/"kgvunregistered" is the id of a RunPod network volume of this gateway's account \(in EU-RO-1\).*choose another name/);
    expect(await store.buckets.get('kgvunregistered')).toBeNull();
    await create(lifecycle, 'fresh-one');
    await create(lifecycle, 'fresh-two');
    expect(rest.calls.map((call) => `${call.method} ${call.path}`)).toEqual([
      'GET /v2/network-volumes',
      'GET /v2/network-volumes',
      'POST /v2/network-volumes',
      'GET /v2/network-volumes',
      'POST /v2/network-volumes',
    ]);
  });

  it("refuses with 503 when that listing fails: nothing is created blind, and RunPod's words stay in the log", async () => {
    const { lifecycle } = await setup();
    rest.failNext('GET', { status: 500, json: { error: 'listing broke for account acct-SECRET-42' } });
    const failed = await refusal(create(lifecycle, 'blind'), 'ServiceUnavailable', 503);
    expect(failed.message).toMatch(/could not list the RunPod account's network volumes to check that "blind" is free\. Nothing was created.*gateway's log/);
    expect(failed.message).not.toContain('acct-SECRET-42');
    expect(failed.headers['retry-after']).toBe('30');
    expect(JSON.stringify(logged.find('listing RunPod volumes before creating a bucket failed; nothing was created')[0]?.fields)).toContain('acct-SECRET-42');
    rest.failNext('GET', { status: 429, json: {}, headers: { 'retry-after': '8' } });
    const limited = await refusal(create(lifecycle, 'blind'), 'SlowDown', 503);
    expect(limited.headers['retry-after']).toBe('8');
    expect(posts()).toEqual([]);
    // Not held: nothing can have been created.
    await create(lifecycle, 'blind');
  });

  it("refuses a name whose volume name one of the account's volumes has (an earlier create whose answer was lost, before a restart too)", async () => {
    const { lifecycle } = await setup();
    rest.volumes.set('kgvleftover00', { id: 'kgvleftover00', name: volumeName('left.over'), size: 10, dataCenterId: 'EU-RO-1' });
    const error = await refusal(create(lifecycle, 'left.over'), 'OperationAborted', 409);
    expect(error.message).toMatch(
      /network volume named "left_over" already exists in EU-RO-1.*keygate buckets add left\.over --datacenter EU-RO-1 --upstream-bucket <volume id>.*the id is in the gateway's log/,
    );
    // The id is for the operator (log, error.volumeId), not in the client's message.
    expect(error.volumeId).toBe('kgvleftover00');
    expect(error.message).not.toContain('kgvleftover00');
    expect(logged.find('a RunPod volume already has the name of the bucket being created; nothing was created')[0]?.fields).toMatchObject({
      bucket: 'left.over',
      volumeId: 'kgvleftover00',
    });
    expect(posts()).toEqual([]);
  });

  it('pauses creating (503 SlowDown) when the hold table is full, instead of dropping a hold', async () => {
    const { lifecycle, clock } = await setup({}, { maxHolds: 2 });
    for (const name of ['held-one', 'held-two']) {
      rest.failNext('POST', { status: 500, json: { error: 'internal' } });
      await refusal(create(lifecycle, name), 'BadGateway', 502);
    }
    clock.now += 60_000;
    const paused = await refusal(create(lifecycle, 'third'), 'SlowDown', 503);
    expect(paused.message).toMatch(/Too many recent attempts to create buckets ended without a clear answer.*nothing was created\. Retry in 540 s/);
    expect(paused.headers['retry-after']).toBe('540');
    // Every hold stands: a retry of a held name still creates nothing.
    await refusal(create(lifecycle, 'held-one'), 'OperationAborted', 409);
    await refusal(create(lifecycle, 'held-two'), 'OperationAborted', 409);
    expect(posts()).toHaveLength(2);
    expect(logged.find('creating RunPod buckets paused: too many creates ended without a clear answer')).toHaveLength(1);
    // Once the holds end, creating resumes.
    clock.now += AMBIGUOUS_HOLD_MS;
    await create(lifecycle, 'third');
    expect(posts()).toHaveLength(3);
  });
});

describe('writes while a RunPod bucket is being deleted', () => {
  const ALLOW = { KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: '1' };
  const KEY = { accessKeyId: 'rs_ak_test_lifecycle', name: 'writer' } as unknown as AccessKey;

  const op = (method: string, target: string, headers: Record<string, string> = {}): S3Operation =>
    classify(method, parseAddress(target, undefined, null), headers);
  const writes = (bucket: string): Array<[string, S3Operation]> => [
    ['PutObject', op('PUT', `/${bucket}/new.txt`)],
    ['CreateMultipartUpload', op('POST', `/${bucket}/big.bin?uploads`)],
    ['UploadPart', op('PUT', `/${bucket}/big.bin?partNumber=1&uploadId=u1`)],
    ['CopyObject', op('PUT', `/${bucket}/copy.txt`, { 'x-amz-copy-source': `/${bucket}/new.txt` })],
    ['PostObject', describeOperation('PostObject', { bucket, key: 'form.txt', query: [] }, {})],
    ['CompleteMultipartUpload', op('POST', `/${bucket}/big.bin?uploadId=u1`)],
  ];
  const notWrites = (bucket: string): Array<[string, S3Operation]> => [
    ['GetObject', op('GET', `/${bucket}/new.txt`)],
    ['ListObjectsV2', op('GET', `/${bucket}?list-type=2`)],
    ['HeadBucket', op('HEAD', `/${bucket}`)],
    ['AbortMultipartUpload', op('DELETE', `/${bucket}/big.bin?uploadId=u1`)],
    ['DeleteObject', op('DELETE', `/${bucket}/new.txt`)],
  ];

  function handlerDeps(s: Setup, forward: (request: ForwardRequest) => Promise<UpstreamResponse>): HandlerDeps {
    return {
      resolver: s.resolver,
      lifecycle: s.lifecycle,
      signingRegions: ['us-east-1'],
      forwarder: { forward },
      region: 'us-east-1',
      uploadIds: new UploadIdBinding(Buffer.alloc(32, 7)),
      publicUrl: 'http://gateway.test',
    };
  }
  const context = (): OperationContext => ({
    key: KEY,
    method: 'PUT',
    body: null,
    signal: new Cancellation(),
    requestId: 'test',
    keyNow: async () => KEY,
  });
  const answered = (): UpstreamResponse => ({ status: 200, headers: { etag: '"e"' }, body: Readable.from([]) });
  const outcome = (promise: Promise<unknown>): Promise<string> =>
    promise.then(
      () => 'planned',
      (error: unknown) => (error instanceof S3Error ? `${error.status} ${error.code}: ${error.message}` : String(error)),
    );

  it('refuses writes (409 OperationAborted, at planning, before any body) while the volume is being deleted; reads go on; the fence lifts when RunPod refuses', async () => {
    const s = await setup(ALLOW);
    const volumeId = (await s.lifecycle.createRunpodBucket({ name: 'fenced', datacenter: 'EU-RO-1' })).upstreamBucket;
    const deps = { resolver: s.resolver, lifecycle: s.lifecycle };
    const during: Record<string, unknown> = {};
    rest.onDeleting = async () => {
      during.fencedByName = s.lifecycle.isBeingDeleted('fenced');
      // Addressed by its volume id (discovery) it is the same volume.
      during.fencedById = s.lifecycle.isBeingDeleted(volumeId.toUpperCase());
      during.other = s.lifecycle.isBeingDeleted('another-bucket');
      for (const [name, operation] of [...writes('fenced'), ...notWrites('fenced')]) during[name] = await outcome(planOperation(deps, operation, 1));
      during.beginWrite = await outcome(Promise.resolve().then(() => s.lifecycle.beginWrite('fenced', volumeId)));
    };
    rest.failNext('DELETE', { status: 400, json: { error: 'network volume is in use by pod abc' } });
    await refusal(s.lifecycle.deleteRunpodBucket('fenced'), 'InvalidBucketState', 409);
    expect(during).toMatchObject({ fencedByName: true, fencedById: true, other: false });
    for (const [name] of writes('fenced')) {
      expect(during[name], name).toMatch(/^409 OperationAborted: Bucket "fenced" is being deleted, so the gateway refuses writes to it\./);
    }
    expect(during.beginWrite).toMatch(/^409 OperationAborted: Bucket "fenced" is being deleted/);
    for (const [name] of notWrites('fenced')) expect(during[name], name).toBe('planned');
    // RunPod refused: the fence is down, writes are taken again.
    expect(s.lifecycle.isBeingDeleted('fenced')).toBe(false);
    for (const [name, operation] of writes('fenced')) expect(await outcome(planOperation(deps, operation, 1)), name).toBe('planned');
  });

  it('checks emptiness again behind the fence: a write that landed after the first check refuses the delete', async () => {
    let volumeId = '';
    let objectListings = 0;
    // A write already past the gateway's checks when the delete began lands right after its first listing.
    const landing: Pick<UpstreamForwarder, 'forward'> = {
      forward: async (request) => {
        const response = await forwarder.forward(request);
        if (request.query.some(([name]) => name === 'list-type') && ++objectListings === 1) {
          expect((await moto.request('PUT', `/${volumeId}/late.txt`, { body: 'landed' })).status).toBe(200);
        }
        return response;
      },
    };
    const s = await setup(ALLOW, { forwarder: landing });
    volumeId = (await s.lifecycle.createRunpodBucket({ name: 'late-write', datacenter: 'EU-RO-1' })).upstreamBucket;
    const error = await refusal(s.lifecycle.deleteRunpodBucket('late-write'), 'BucketNotEmpty', 409);
    expect(error.message).toMatch(/not empty/);
    expect(objectListings).toBe(2);
    expect(deletes()).toEqual([]);
    expect((await moto.request('GET', `/${volumeId}/late.txt`)).body.toString()).toBe('landed');
    expect(await s.store.buckets.get('late-write')).not.toBeNull();
    expect(s.lifecycle.isBeingDeleted('late-write')).toBe(false);
  });

  it('a write being forwarded refuses the delete; a write planned before the delete began is refused when it is about to be forwarded', async () => {
    const s = await setup(ALLOW);
    const volumeId = (await s.lifecycle.createRunpodBucket({ name: 'busy', datacenter: 'EU-RO-1' })).upstreamBucket;
    let forwarded = 0;
    let letThrough!: () => void;
    const gate = new Promise<void>((resolve) => (letThrough = resolve));
    const deps = handlerDeps(s, async (request) => {
      forwarded += 1;
      expect(request.target.bucket).toBe(volumeId);
      await gate;
      return answered();
    });
    const upload = op('PUT', '/busy/big.bin');
    const writing = executeOperation(deps, await planOperation(deps, upload, 3), context());
    await new Promise((resolve) => setImmediate(resolve));
    expect(forwarded).toBe(1);
    const refused = await refusal(s.lifecycle.deleteRunpodBucket('busy'), 'OperationAborted', 409);
    expect(refused.message).toMatch(/Bucket "busy" has a write in progress, so it was not deleted\. Stop writing to it/);
    expect(deletes()).toEqual([]);
    expect(s.lifecycle.isBeingDeleted('busy')).toBe(false);
    letThrough();
    expect(await writing).toMatchObject({ status: 200 });

    // Planned before the delete (as a request whose body is still arriving), executed while it runs.
    const planned = await planOperation(deps, op('PUT', '/busy/late.bin'), 3);
    let late = '';
    rest.onDeleting = async () => {
      late = await outcome(executeOperation(deps, planned, context()));
    };
    await s.lifecycle.deleteRunpodBucket('busy');
    expect(late).toMatch(/^409 OperationAborted: Bucket "busy" is being deleted/);
    expect(forwarded).toBe(1);
    expect(await s.store.buckets.get('busy')).toBeNull();
  });

  it('refuses a volume any other registration names, whatever its kind, endpoint or case', async () => {
    const { lifecycle, store } = await setup(ALLOW);
    const volumeId = (await lifecycle.createRunpodBucket({ name: 'aliased', datacenter: 'EU-RO-1' })).upstreamBucket;
    await store.buckets.add({ name: 'by-endpoint', endpoint: 'http://127.0.0.1:9', region: 'us-east-1', upstreamBucket: volumeId.toUpperCase() });
    const error = await refusal(lifecycle.deleteRunpodBucket('aliased'), 'InvalidBucketState', 409);
    expect(error.message).toMatch(/also serves bucket "by-endpoint"/);
    expect(deletes()).toEqual([]);
    await store.buckets.remove('by-endpoint');
    await lifecycle.deleteRunpodBucket('aliased');
  });
});
