/**
 * CreateBucket and DeleteBucket on RunPod through a real gateway process: buckets become network
 * volumes made through RunPod's REST API (a local fake that records every call) and served by the
 * datacenter's S3 (moto, signatures validated), driven by real clients (the AWS JS SDK, boto3,
 * aws-cli v1 and v2). Also: what RunPod's failures become for clients (never RunPod's own words),
 * who may create and delete, that writes to a bucket being deleted are refused, and that
 * unregistering a bucket never touches RunPod.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  PutObjectCommand,
  S3ServiceException,
  type BucketLocationConstraint,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awsEnv, DEBIAN_AWS, DEBIAN_PYTHON, debianClientsPresent, PYENV_AWS, PYENV_PYTHON, run, runOk, tempHome } from '../helpers/clients.js';
import { startFakeRunpodRest, type FakeAnswer, type FakeRunpodRest, type RecordedRestCall } from '../helpers/fake-runpod-rest.js';
import { startGateway, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { runCliProcess } from '../helpers/keygate-cli.js';
import { exchange, type RawResponse } from '../helpers/raw-http.js';
import { gatewayS3Client } from '../helpers/sdk.js';
import { signedHeaders } from '../helpers/sign.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';

const API_KEY = 'rpa_integration_test_key_5f1e2d3c4b5a';
const itDebian = debianClientsPresent() ? it : it.skip;

let moto: TestUpstream;
let rest: FakeRunpodRest;
/** Creates buckets (default datacenter US-KS-2), refuses deletes; REST v2. */
let gateway: Gateway;
/** Deletes empty buckets; REST v1. */
let deleting: Gateway;
let admin: CreatedKey;
let deletingAdmin: CreatedKey;

function runpodEnv(version: 'v1' | 'v2'): Record<string, string> {
  return {
    KEYGATE_REGION: 'auto',
    RUNPOD_API_KEY: API_KEY,
    KEYGATE_RUNPOD_REST_URL: `${rest.url}/${version}`,
    KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint, 'US-KS-2': moto.endpoint }),
    RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
    RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
  };
}

beforeAll(async () => {
  moto = await startMoto({ validateSignatures: true });
  rest = await startFakeRunpodRest({ apiKey: API_KEY, datacenters: { 'EU-RO-1': moto, 'US-KS-2': moto } });
  [gateway, deleting] = await Promise.all([
    startGateway({ ...runpodEnv('v2'), KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'US-KS-2' }),
    startGateway({ ...runpodEnv('v1'), KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: '1' }),
  ]);
  admin = await gateway.createKey({ name: 'admin', permissions: ['read', 'write', 'delete', 'admin'] });
  deletingAdmin = await deleting.createKey({ name: 'admin', permissions: ['read', 'write', 'delete', 'admin'] });
});

afterAll(async () => {
  await gateway?.stop();
  await deleting?.stop();
  await rest?.stop();
  await moto?.stop();
});

/** Calls that change something (creates, deletes); volume listings for routing are not counted. */
const changes = () => rest.changes();
const postsFor = (name: string): RecordedRestCall[] =>
  rest.calls.filter((call) => call.method === 'POST' && (call.body as { name?: string } | null)?.name === name);
const volumeOf = (name: string): string => [...rest.volumes.values()].find((volume) => volume.name === name)!.id;

/** A signed request sent byte for byte (status, headers and body as they came). */
function send(target: Gateway, key: CreatedKey, method: string, path: string, body?: Buffer, headers: Record<string, string> = {}): Promise<RawResponse> {
  const host = new URL(target.url).host;
  const signed = signedHeaders(key, host, method, path, { body, headers });
  return exchange(Number(new URL(target.url).port), { method, target: path, headers: Object.entries(signed), body }, { untilResponse: true });
}

const configuration = (constraint: string) =>
  Buffer.from(
    `<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>${constraint}</LocationConstraint></CreateBucketConfiguration>`,
  );

async function sdkError(promise: Promise<unknown>): Promise<S3ServiceException> {
  const error = await promise.then(
    () => new Error('expected an S3 error'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(S3ServiceException);
  return error as S3ServiceException;
}

function sdk(target: Gateway, key: CreatedKey, region = key.region): S3Client {
  return gatewayS3Client(target.url, { ...key, region });
}

describe('creating buckets', () => {
  it('AWS JS SDK: CreateBucket with a LocationConstraint makes a volume there, and the very next requests use it', async () => {
    const s3 = sdk(gateway, admin);
    const created = await s3.send(
      new CreateBucketCommand({ Bucket: 'sdk-bucket', CreateBucketConfiguration: { LocationConstraint: 'EU-RO-1' as BucketLocationConstraint } }),
    );
    expect(created.Location).toBe('/sdk-bucket');
    expect(postsFor('sdk-bucket')).toHaveLength(1);
    const [post] = postsFor('sdk-bucket');
    expect(post).toMatchObject({ path: '/v2/network-volumes', authorization: `Bearer ${API_KEY}` });
    expect(post!.body).toEqual({ name: 'sdk-bucket', size: 10, dataCenter: 'EU-RO-1' });

    await s3.send(new PutObjectCommand({ Bucket: 'sdk-bucket', Key: 'docs/a.txt', Body: 'hello volume' }));
    const got = await s3.send(new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'docs/a.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello volume');
    // Stored in the volume's bucket on the datacenter's S3.
    expect((await moto.request('GET', `/${volumeOf('sdk-bucket')}/docs/a.txt`)).body.toString()).toBe('hello volume');
    expect((await gateway.admin('GET', '/v1/buckets')).json).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'sdk-bucket', datacenter: 'EU-RO-1', upstreamBucket: volumeOf('sdk-bucket') })]),
    );
  });

  async function boto3CreateBucket(python: string, bucket: string): Promise<void> {
    const script = `
import sys, boto3
from botocore.config import Config
endpoint, region, access_key, secret_key, bucket = sys.argv[1:6]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
print("location", s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-ro-1"})["Location"])
s3.put_object(Bucket=bucket, Key="k.txt", Body=b"boto3 data")
print("body", s3.get_object(Bucket=bucket, Key="k.txt")["Body"].read().decode())
try:
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "EU-RO-1"})
except s3.exceptions.BucketAlreadyOwnedByYou as error:
    print("again", error.response["ResponseMetadata"]["HTTPStatusCode"])
`;
    const output = await runOk(python, ['-c', script, gateway.url, admin.region, admin.accessKeyId, admin.secretAccessKey, bucket]);
    expect(output).toContain(`location /${bucket}`);
    expect(output).toContain('body boto3 data');
    expect(output).toContain('again 409');
    expect(postsFor(bucket).map((call) => call.body)).toEqual([{ name: bucket, size: 10, dataCenter: 'EU-RO-1' }]);
  }

  it('boto3 (pyenv): create_bucket with a lower-case LocationConstraint, then put and get', () => boto3CreateBucket(PYENV_PYTHON, 'boto3-bucket'));
  itDebian('boto3 (Debian): create_bucket with a lower-case LocationConstraint, then put and get', () => boto3CreateBucket(DEBIAN_PYTHON, 'boto3-debian'));

  async function awsMakeBucket(aws: string, bucket: string): Promise<void> {
    const home = tempHome();
    const env = awsEnv({ endpoint: gateway.url, region: admin.region, accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey }, home);
    // The region becomes the LocationConstraint (the client then follows the gateway's region hint to sign).
    expect(await runOk(aws, ['--endpoint-url', gateway.url, 's3', 'mb', `s3://${bucket}`, '--region', 'EU-RO-1'], env)).toContain(`make_bucket: ${bucket}`);
    expect(postsFor(bucket).map((call) => call.body)).toEqual([{ name: bucket, size: 10, dataCenter: 'EU-RO-1' }]);
    writeFileSync(path.join(home, 'from-cli.txt'), 'written by aws-cli\n');
    await runOk(aws, ['--endpoint-url', gateway.url, 's3', 'cp', path.join(home, 'from-cli.txt'), `s3://${bucket}/from-cli.txt`], env);
    expect(await runOk(aws, ['--endpoint-url', gateway.url, 's3', 'ls', `s3://${bucket}`], env)).toContain('from-cli.txt');
    const again = await run(aws, ['--endpoint-url', gateway.url, 's3', 'mb', `s3://${bucket}`, '--region', 'EU-RO-1'], env);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('BucketAlreadyOwnedByYou');
    expect(postsFor(bucket)).toHaveLength(1);
  }

  it('aws-cli v1 (pyenv): `aws s3 mb s3://NAME --region EU-RO-1` makes a working bucket in EU-RO-1', () => awsMakeBucket(PYENV_AWS, 'cli-v1'));
  itDebian('aws-cli v2 (Debian): `aws s3 mb s3://NAME --region EU-RO-1` makes a working bucket in EU-RO-1', () => awsMakeBucket(DEBIAN_AWS, 'cli-v2'));

  it('uses KEYGATE_RUNPOD_DEFAULT_DATACENTER when the client names none or names the gateway region, and the datacenter s3api names', async () => {
    // A client in us-east-1 sends no CreateBucketConfiguration at all.
    await sdk(gateway, admin, 'us-east-1').send(new CreateBucketCommand({ Bucket: 'default-dc' }));
    // aws-cli in the gateway's region `auto` sends LocationConstraint=auto.
    const home = tempHome();
    const env = awsEnv({ endpoint: gateway.url, region: 'auto', accessKeyId: admin.accessKeyId, secretAccessKey: admin.secretAccessKey }, home);
    await runOk(PYENV_AWS, ['--endpoint-url', gateway.url, 's3', 'mb', 's3://default-auto'], env);
    // Naming the datacenter without signing for it: s3api with the LocationConstraint.
    await runOk(
      PYENV_AWS,
      ['--endpoint-url', gateway.url, 's3api', 'create-bucket', '--bucket', 's3api-bucket', '--create-bucket-configuration', 'LocationConstraint=EU-RO-1'],
      env,
    );
    expect(postsFor('s3api-bucket').map((call) => call.body)).toEqual([{ name: 's3api-bucket', size: 10, dataCenter: 'EU-RO-1' }]);
    expect(postsFor('default-dc').map((call) => call.body)).toEqual([{ name: 'default-dc', size: 10, dataCenter: 'US-KS-2' }]);
    expect(postsFor('default-auto').map((call) => call.body)).toEqual([{ name: 'default-auto', size: 10, dataCenter: 'US-KS-2' }]);
  });

  it('answers 409 BucketAlreadyOwnedByYou for any name a route knows, and creates one volume for concurrent creates', async () => {
    await moto.createBucket('registered-volume');
    await gateway.addBucket({ name: 'registered-one', datacenter: 'EU-RO-1', upstreamBucket: 'registered-volume' });
    const before = changes().length;
    for (const name of ['sdk-bucket', 'registered-one']) {
      const error = await sdkError(sdk(gateway, admin).send(new CreateBucketCommand({ Bucket: name })));
      expect(error.name).toBe('BucketAlreadyOwnedByYou');
      expect(error.$metadata.httpStatusCode).toBe(409);
    }
    expect(changes()).toHaveLength(before);

    const results = await Promise.all(Array.from({ length: 5 }, () => send(gateway, admin, 'PUT', '/raced-bucket', configuration('EU-RO-1'))));
    expect(results.map((result) => result.status).sort()).toEqual([200, 409, 409, 409, 409]);
    expect(postsFor('raced-bucket')).toHaveLength(1);
  });

  it('refuses invalid names, datacenters and bodies before RunPod hears of them', async () => {
    const before = changes().length;
    for (const path of ['/Team-Data', '/ab', `/${'a'.repeat(64)}`, '/../x', '/a_b', '/xn--bucket']) {
      const response = await send(gateway, admin, 'PUT', path, configuration('EU-RO-1'));
      expect(response.status, path).toBe(400);
      expect(response.body, path).toContain('<Code>InvalidBucketName</Code>');
    }
    const unknown = await send(gateway, admin, 'PUT', '/mars-bucket', configuration('MARS-1'));
    expect(unknown.status).toBe(400);
    expect(unknown.body).toContain('<Code>InvalidLocationConstraint</Code>');
    expect(unknown.body).toMatch(/&quot;MARS-1&quot; is not a RunPod datacenter.*EU-RO-1/);

    const bomb = Buffer.from(
      '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><CreateBucketConfiguration><LocationConstraint>&b;</LocationConstraint></CreateBucketConfiguration>',
    );
    const refusedBomb = await send(gateway, admin, 'PUT', '/bomb-bucket', bomb);
    expect(refusedBomb.status).toBe(400);
    expect(refusedBomb.body).toContain('<Code>MalformedXML</Code>');

    const huge = Buffer.concat([configuration('EU-RO-1'), Buffer.alloc(100 * 1024, ' ')]);
    const refusedHuge = await send(gateway, admin, 'PUT', '/huge-bucket', huge);
    expect(refusedHuge.status).toBe(400);
    expect(refusedHuge.body).toContain('<Code>MaxMessageLengthExceeded</Code>');

    const directory = Buffer.from(
      '<CreateBucketConfiguration><Location><Name>usw2-az1</Name><Type>AvailabilityZone</Type></Location></CreateBucketConfiguration>',
    );
    expect((await send(gateway, admin, 'PUT', '/directory-bucket', directory)).body).toContain('<Code>NotImplemented</Code>');
    const locked = await send(gateway, admin, 'PUT', '/locked-bucket', undefined, { 'x-amz-bucket-object-lock-enabled': 'true' });
    expect(locked.status).toBe(501);
    const public_ = await send(gateway, admin, 'PUT', '/public-bucket', undefined, { 'x-amz-acl': 'public-read' });
    expect(public_.status).toBe(501);

    // A body whose signed hash does not match is refused before anything is created.
    const host = new URL(gateway.url).host;
    const headers = signedHeaders(admin, host, 'PUT', '/tampered-bucket', { body: configuration('EU-RO-1') });
    const tampered = await exchange(
      Number(new URL(gateway.url).port),
      {
        method: 'PUT',
        target: '/tampered-bucket',
        headers: Object.entries(headers),
        body: configuration('US-KS-2'),
      },
      { untilResponse: true },
    );
    expect(tampered.status).toBe(400);
    expect(tampered.body).toContain('<Code>XAmzContentSHA256Mismatch</Code>');
    expect(changes()).toHaveLength(before);
  });

  it('refuses keys without admin, and per-bucket keys, before any REST call', async () => {
    const writer = await gateway.createKey({ name: 'writer', permissions: ['read', 'write', 'delete'] });
    const ownBucket = await gateway.createKey({ name: 'own', bucket: 'mine-bucket', preset: 'read-write' });
    const otherBucket = await gateway.createKey({ name: 'other', bucket: 'sdk-bucket', preset: 'read-write' });
    const before = rest.calls.length;
    for (const [key, bucket] of [
      [writer, 'writer-bucket'],
      [ownBucket, 'mine-bucket'],
      [otherBucket, 'not-mine-bucket'],
    ] as const) {
      const response = await send(gateway, key, 'PUT', `/${bucket}`, configuration('EU-RO-1'));
      expect(response.status, key.name).toBe(403);
      expect(response.body).toContain('<Code>AccessDenied</Code>');
      const deleted = await send(gateway, key, 'DELETE', '/sdk-bucket');
      expect(deleted.status, key.name).toBe(403);
    }
    // Not even a volume listing: authorization comes before routing.
    expect(rest.calls).toHaveLength(before);
  });
});

describe("RunPod's failures, as clients see them", () => {
  beforeEach(() => {
    rest.calls.length = 0;
  });

  it.each<[string, FakeAnswer, number, string, RegExp]>([
    [
      'a refused API key',
      { status: 401, json: { error: `invalid api key ${API_KEY}` } },
      403,
      'AccessDenied',
      /refused the gateway&apos;s RunPod API key \(HTTP 401\) when creating .*; nothing was created.*RUNPOD_API_KEY/,
    ],
    [
      'a datacenter without capacity',
      { status: 400, json: { error: 'no capacity in data center EU-RO-1' } },
      400,
      'InvalidLocationConstraint',
      /refused to create a network volume in EU-RO-1/,
    ],
    ['a wrong REST URL', { status: 404, raw: '<html>404</html>' }, 501, 'NotImplemented', /KEYGATE_RUNPOD_REST_URL/],
  ])('%s', async (_what, answer, status, code, message) => {
    rest.failNext('POST', answer);
    const response = await send(gateway, admin, 'PUT', '/failing-bucket', configuration('EU-RO-1'));
    expect(response.status).toBe(status);
    expect(response.body).toContain(`<Code>${code}</Code>`);
    expect(response.body).toMatch(message);
    expect(response.body).not.toContain(API_KEY);
    expect(response.body).not.toContain('<html>');
    // RunPod's own words (which can name account details) are for the operator's log only.
    expect(response.body).not.toMatch(/invalid api key|no capacity/);
  });

  it('a rate limit: 503 SlowDown with Retry-After', async () => {
    rest.failNext('POST', { status: 429, json: { error: 'too many requests' }, headers: { 'retry-after': '9' } });
    const response = await send(gateway, admin, 'PUT', '/limited-bucket', configuration('EU-RO-1'));
    expect(response.status).toBe(503);
    expect(response.body).toContain('<Code>SlowDown</Code>');
    expect(response.headers['retry-after']).toBe('9');
  });

  it('a RunPod-side failure after it made the volume: 502, never its body, and a retry makes no second volume', async () => {
    rest.failNext('POST', { status: 500, json: { error: `stack trace SECRET-INTERNAL-DETAIL ${API_KEY}` }, createAnyway: true });
    const response = await send(gateway, admin, 'PUT', '/unsure-bucket', configuration('EU-RO-1'));
    expect(response.status).toBe(502);
    expect(response.body).toContain('<Code>BadGateway</Code>');
    expect(response.body).toMatch(/may or may not have been created in EU-RO-1.*check the RunPod console/);
    expect(response.body).not.toContain(API_KEY);
    // The SDK's automatic retry of a 502:
    const retried = await sdkError(sdk(gateway, admin).send(new CreateBucketCommand({ Bucket: 'unsure-bucket' })));
    expect(retried.name).toBe('OperationAborted');
    expect(retried.$metadata.httpStatusCode).toBe(409);
    expect(postsFor('unsure-bucket')).toHaveLength(1);
  });
});

describe('deleting buckets', () => {
  it('is refused without KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1, and the bucket keeps working', async () => {
    const before = changes().length;
    const error = await sdkError(sdk(gateway, admin).send(new DeleteBucketCommand({ Bucket: 'sdk-bucket' })));
    expect(error.name).toBe('AccessDenied');
    expect(error.$metadata.httpStatusCode).toBe(403);
    expect(error.message).toMatch(/KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1.*keygate buckets remove sdk-bucket/);
    expect(changes()).toHaveLength(before);
    const got = await sdk(gateway, admin).send(new GetObjectCommand({ Bucket: 'sdk-bucket', Key: 'docs/a.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello volume');
  });

  it('with it (REST v1): refuses a bucket that is not empty, then deletes the empty one: volume and registration', async () => {
    const s3 = sdk(deleting, deletingAdmin);
    await s3.send(new CreateBucketCommand({ Bucket: 'doomed', CreateBucketConfiguration: { LocationConstraint: 'EU-RO-1' as BucketLocationConstraint } }));
    expect(postsFor('doomed')).toHaveLength(1);
    expect(postsFor('doomed')[0]).toMatchObject({ path: '/v1/networkvolumes', body: { name: 'doomed', size: 10, dataCenterId: 'EU-RO-1' } });
    const volumeId = volumeOf('doomed');
    await s3.send(new PutObjectCommand({ Bucket: 'doomed', Key: 'last.txt', Body: 'bye' }));

    const notEmpty = await sdkError(s3.send(new DeleteBucketCommand({ Bucket: 'doomed' })));
    expect(notEmpty.name).toBe('BucketNotEmpty');
    expect(notEmpty.$metadata.httpStatusCode).toBe(409);
    expect(rest.calls.filter((call) => call.method === 'DELETE')).toEqual([]);

    await s3.send(new DeleteObjectCommand({ Bucket: 'doomed', Key: 'last.txt' }));
    const deleted = await send(deleting, deletingAdmin, 'DELETE', '/doomed');
    expect(deleted.status).toBe(204);
    expect(rest.calls.filter((call) => call.method === 'DELETE').map((call) => `${call.path} ${call.authorization}`)).toEqual([
      `/v1/networkvolumes/${volumeId} Bearer ${API_KEY}`,
    ]);
    expect((await deleting.admin('GET', '/v1/buckets')).json.map((bucket: { name: string }) => bucket.name)).not.toContain('doomed');
    expect((await moto.request('HEAD', `/${volumeId}`)).status).toBe(404);
    const gone = await sdkError(s3.send(new HeadBucketCommand({ Bucket: 'doomed' })));
    expect(gone.$metadata.httpStatusCode).toBe(404);
  });

  it('refuses writes to a bucket while it is being deleted (409 OperationAborted), and takes them again when the delete fails', async () => {
    const s3 = sdk(deleting, deletingAdmin);
    await s3.send(new CreateBucketCommand({ Bucket: 'fenced', CreateBucketConfiguration: { LocationConstraint: 'EU-RO-1' as BucketLocationConstraint } }));
    const volumeId = volumeOf('fenced');
    const during: Record<string, RawResponse> = {};
    // RunPod is asked to delete the volume: while it has not answered, clients write and read.
    rest.onDeleting = async () => {
      during.put = await send(deleting, deletingAdmin, 'PUT', '/fenced/during.txt', Buffer.from('written during the delete'));
      during.upload = await send(deleting, deletingAdmin, 'POST', '/fenced/big.bin?uploads');
      during.list = await send(deleting, deletingAdmin, 'GET', '/fenced?list-type=2');
    };
    rest.failNext('DELETE', { status: 400, json: { error: 'network volume is in use by pod pod-7f3a of account acct-42' } });
    try {
      const refused = await send(deleting, deletingAdmin, 'DELETE', '/fenced');
      expect(refused.status).toBe(409);
      expect(refused.body).toContain('<Code>InvalidBucketState</Code>');
      expect(refused.body).not.toMatch(/pod-7f3a|acct-42/);
    } finally {
      rest.onDeleting = null;
    }
    for (const answer of [during.put!, during.upload!]) {
      expect(answer.status).toBe(409);
      expect(answer.body).toContain('<Code>OperationAborted</Code>');
      expect(answer.body).toMatch(/Bucket &quot;fenced&quot; is being deleted, so the gateway refuses writes to it/);
    }
    expect(during.list!.status).toBe(200);
    expect((await moto.request('HEAD', `/${volumeId}/during.txt`)).status).toBe(404);
    // The delete failed: the bucket takes writes again.
    await s3.send(new PutObjectCommand({ Bucket: 'fenced', Key: 'after.txt', Body: 'kept' }));
    expect((await moto.request('GET', `/${volumeId}/after.txt`)).body.toString()).toBe('kept');
    expect(deleting.output()).toMatch(/network volume is in use by pod pod-7f3a/);
  });

  it('unregistering (`keygate buckets remove`, admin API DELETE /v1/buckets/:name) never calls RunPod nor deletes data', async () => {
    const before = rest.calls.length;
    const volumes = rest.volumes.size;
    const cliVolume = volumeOf('sdk-bucket');
    const removed = await runCliProcess(['buckets', 'remove', 'sdk-bucket'], gateway.env);
    expect(removed.code, removed.stderr).toBe(0);
    const apiVolume = volumeOf('default-dc');
    expect((await gateway.admin('DELETE', '/v1/buckets/default-dc')).status).toBe(204);
    expect(rest.calls).toHaveLength(before);
    expect(rest.volumes.size).toBe(volumes);
    expect((await moto.request('GET', `/${cliVolume}/docs/a.txt`)).body.toString()).toBe('hello volume');
    expect((await moto.request('HEAD', `/${apiVolume}`)).status).toBe(200);
  });

  it('never shows the RunPod API key in any answer or log line', () => {
    for (const target of [gateway, deleting]) {
      expect(target.output()).not.toContain(API_KEY);
    }
  });
});
