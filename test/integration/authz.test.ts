/**
 * The authorization matrix through a real gateway: every key kind x preset/flag set x operation,
 * with the expected allow/deny, plus scoped ListBuckets, revocation and expiry on the next request.
 */
import {
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startS3rver } from '../helpers/upstreams.js';
import { gatewayS3Client, sdkOutcome } from '../helpers/sdk.js';
import { runCliProcess } from '../helpers/keygate-cli.js';
import { PYENV_AWS, awsEnv, run, tempHome } from '../helpers/clients.js';

type Flag = 'read' | 'write' | 'delete' | 'admin';
const FLAGS: Flag[] = ['read', 'write', 'delete', 'admin'];
const OWN = 'own-bucket';
const OTHER = 'other-bucket';

/** An operation, the flags it needs, and how to run it against a bucket with a client. */
interface Probe {
  name: string;
  needs: Flag[];
  run(s3: S3Client, bucket: string, tag: string): Promise<unknown>;
}

const PROBES: Probe[] = [
  { name: 'HeadBucket', needs: ['read'], run: (s3, Bucket) => s3.send(new HeadBucketCommand({ Bucket })) },
  { name: 'ListObjectsV2', needs: ['read'], run: (s3, Bucket) => s3.send(new ListObjectsV2Command({ Bucket })) },
  {
    name: 'GetObject',
    needs: ['read'],
    run: (s3, Bucket) => s3.send(new GetObjectCommand({ Bucket, Key: 'seed.txt' })).then((r) => r.Body!.transformToString()),
  },
  { name: 'HeadObject', needs: ['read'], run: (s3, Bucket) => s3.send(new HeadObjectCommand({ Bucket, Key: 'seed.txt' })) },
  { name: 'PutObject', needs: ['write'], run: (s3, Bucket, tag) => s3.send(new PutObjectCommand({ Bucket, Key: `put-${tag}.txt`, Body: 'x' })) },
  {
    name: 'CopyObject',
    needs: ['read', 'write'],
    run: (s3, Bucket, tag) => s3.send(new CopyObjectCommand({ Bucket, Key: `copy-${tag}.txt`, CopySource: `${Bucket}/seed.txt` })),
  },
  { name: 'CreateMultipartUpload', needs: ['write'], run: (s3, Bucket, tag) => s3.send(new CreateMultipartUploadCommand({ Bucket, Key: `mp-${tag}` })) },
  { name: 'DeleteObject', needs: ['delete'], run: (s3, Bucket, tag) => s3.send(new DeleteObjectCommand({ Bucket, Key: `absent-${tag}` })) },
  {
    name: 'DeleteObjects',
    needs: ['delete'],
    run: (s3, Bucket, tag) => s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: [{ Key: `absent-${tag}-1` }, { Key: `absent-${tag}-2` }] } })),
  },
  {
    name: 'CreateBucket+DeleteBucket',
    needs: ['admin'],
    run: async (s3, _bucket, tag) => {
      const Bucket = `made-${tag}`
        .toLowerCase()
        .replace(/[^a-z0-9-]/g, '-')
        .slice(0, 60);
      await s3.send(new CreateBucketCommand({ Bucket }));
      await s3.send(new DeleteBucketCommand({ Bucket }));
    },
  },
];

function client(gateway: Gateway, key: CreatedKey): S3Client {
  return gatewayS3Client(gateway.url, key);
}

const outcome = sdkOutcome;

describe('authorization matrix through the gateway', () => {
  let upstream: Awaited<ReturnType<typeof startS3rver>>;
  let gateway: Gateway;

  beforeAll(async () => {
    upstream = await startS3rver();
    for (const bucket of [OWN, OTHER]) {
      await upstream.createBucket(bucket);
    }
    gateway = await startGateway(upstreamEnv(upstream));
    const seeder = client(gateway, await gateway.createKey({ name: 'seeder', permissions: ['write'] }));
    for (const Bucket of [OWN, OTHER]) await seeder.send(new PutObjectCommand({ Bucket, Key: 'seed.txt', Body: 'seed' }));
    seeder.destroy();
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  const subsets = Array.from({ length: 15 }, (_, i) => FLAGS.filter((_, bit) => (i + 1) & (1 << bit)));

  it.each(subsets.map((flags) => [flags.join('+'), flags] as const))('workspace key %s', async (label, flags) => {
    const s3 = client(gateway, await gateway.createKey({ name: `ws-${label}`, permissions: flags }));
    for (const probe of PROBES) {
      const expected = probe.needs.every((flag) => flags.includes(flag)) ? 'allowed' : 'AccessDenied';
      expect(await outcome(probe.run(s3, OTHER, `ws-${label}`)), `${probe.name} with ${label}`).toBe(expected);
    }
    const listed = await outcome(s3.send(new ListBucketsCommand({})));
    expect(listed).toBe(flags.includes('read') ? 'allowed' : 'AccessDenied');
    s3.destroy();
  });

  it.each([
    ['read-only', ['read']],
    ['read-write', ['read', 'write']],
  ] as const)('per-bucket %s key: its bucket by preset, any other bucket denied', async (preset, flags) => {
    const s3 = client(gateway, await gateway.createKey({ name: `b-${preset}`, bucket: OWN, preset }));
    for (const probe of PROBES) {
      const own = probe.needs.every((flag) => (flags as readonly Flag[]).includes(flag)) ? 'allowed' : 'AccessDenied';
      expect(await outcome(probe.run(s3, OWN, `b-${preset}`)), `${probe.name} on own bucket`).toBe(own);
      expect(await outcome(probe.run(s3, OTHER, `b-${preset}`)), `${probe.name} on other bucket`).toBe('AccessDenied');
      expect(await outcome(probe.run(s3, 'no-such-bucket-anywhere', `b-${preset}`)), `${probe.name} on missing bucket`).toBe('AccessDenied');
    }
    const buckets = await s3.send(new ListBucketsCommand({}));
    expect((buckets.Buckets ?? []).map((b) => b.Name)).toEqual([OWN]);
    // copying from a bucket outside the key's scope is refused even into its own bucket
    expect(await outcome(s3.send(new CopyObjectCommand({ Bucket: OWN, Key: 'stolen.txt', CopySource: `${OTHER}/seed.txt` })))).toBe('AccessDenied');
    s3.destroy();
  });

  it('a workspace key lists every bucket', async () => {
    const s3 = client(gateway, await gateway.createKey({ name: 'lister', permissions: ['read'] }));
    const names = ((await s3.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name);
    expect(names).toEqual(expect.arrayContaining([OWN, OTHER]));
    s3.destroy();
  });

  it('a deleted key fails on the very next request; its replacement keeps working (rotation)', async () => {
    const oldKey = await gateway.createKey({ name: 'rotating', permissions: ['read'] });
    const newKey = await gateway.createKey({ name: 'rotating-2', permissions: ['read'] });
    const [oldClient, newClient] = [client(gateway, oldKey), client(gateway, newKey)];
    expect(await outcome(oldClient.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    expect(await outcome(newClient.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    await gateway.deleteKey(oldKey.accessKeyId);
    expect(await outcome(oldClient.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('error:InvalidAccessKeyId');
    expect(await outcome(newClient.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    oldClient.destroy();
    newClient.destroy();
  });

  it('a key deleted by the CLI (another process, same store) fails on the very next request', async () => {
    const key = await gateway.createKey({ name: 'cli-revoked', permissions: ['read'] });
    const s3 = client(gateway, key);
    // Warm every request-path cache (key row and secret, bucket route) with a run of requests.
    for (let i = 0; i < 5; i++) expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    const deleted = await runCliProcess(['keys', 'delete', key.accessKeyId], gateway.env);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('error:InvalidAccessKeyId');
    s3.destroy();
  });

  it('a key disabled by the CLI or the admin API is refused on the next request (presigned URLs and aws-cli too) and works again once enabled', async () => {
    const key = await gateway.createKey({ name: 'pausable', permissions: ['read'] });
    const s3 = client(gateway, key);
    const presigned = (await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${OWN}/seed.txt` })).json.url as string;
    const home = tempHome();
    const cli = () =>
      run(PYENV_AWS, ['--endpoint-url', gateway.url, 's3api', 'list-objects-v2', '--bucket', OWN], awsEnv({ ...key, endpoint: gateway.url }, home));
    for (let i = 0; i < 3; i++) expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    expect((await fetch(presigned)).status).toBe(200);

    const disabled = await runCliProcess(['keys', 'disable', key.accessKeyId], gateway.env);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('AccessDenied');
    const refused = await fetch(presigned);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain(`The access key ${key.accessKeyId} is disabled`);
    const fromCli = await cli();
    expect(fromCli.code).not.toBe(0);
    expect(fromCli.stderr).toMatch(/AccessDenied.*is disabled/s);
    // Issuing new presigned URLs for it is refused too.
    expect((await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${OWN}/seed.txt` })).status).toBe(400);

    expect((await gateway.admin('PATCH', `/v1/keys/${key.accessKeyId}`, { disabled: false })).status).toBe(200);
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    expect((await fetch(presigned)).status).toBe(200);
    expect((await cli()).code).toBe(0);

    expect((await gateway.admin('PATCH', `/v1/keys/${key.accessKeyId}`, { disabled: true })).json.disabled).toBe(true);
    expect(await outcome(s3.send(new GetObjectCommand({ Bucket: OWN, Key: 'seed.txt' })))).toBe('AccessDenied');
    s3.destroy();
  });

  it("a key's own rate limit holds (SlowDown with Retry-After past it) while the gateway has none, and other keys are not limited", async () => {
    const limited = await gateway.createKey({ name: 'metered', permissions: ['read'], rateLimit: '0.2/s', rateBurst: 2 });
    const free = await gateway.createKey({ name: 'unmetered', permissions: ['read'] });
    expect(limited.rateLimit).toEqual({ requestsPerSecond: 0.2, burst: 2 });
    const [s3, other] = [client(gateway, limited), client(gateway, free)];
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('error:SlowDown');
    const home = tempHome();
    const cli = await run(PYENV_AWS, ['--endpoint-url', gateway.url, 's3api', 'list-objects-v2', '--bucket', OWN], {
      ...awsEnv({ ...limited, endpoint: gateway.url }, home),
      AWS_MAX_ATTEMPTS: '1',
      AWS_RETRY_MODE: 'standard',
    });
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/SlowDown.*its own limit/s);
    for (let i = 0; i < 20; i++) expect(await outcome(other.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('allowed');
    s3.destroy();
    other.destroy();
  });

  it('an expired key is refused', async () => {
    const key = await gateway.createKey({ name: 'short-lived', permissions: ['read'], expiresIn: 1 });
    const s3 = client(gateway, key);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: OWN })))).toBe('AccessDenied');
    s3.destroy();
  });

  it('unauthenticated requests are denied with an S3 XML error', async () => {
    for (const [method, target] of [
      ['GET', '/'],
      ['GET', `/${OWN}/seed.txt`],
      ['PUT', `/${OWN}/anon.txt`],
    ]) {
      const response = await fetch(`${gateway.url}${target}`, { method, body: method === 'PUT' ? 'x' : undefined });
      expect(response.status).toBe(403);
      const text = await response.text();
      expect(text).toContain('<Code>AccessDenied</Code>');
    }
  });
});
