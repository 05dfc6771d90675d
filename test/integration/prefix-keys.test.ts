/**
 * Keys limited to an object key prefix (`--prefix team-a/`), through a real gateway process on
 * moto with the AWS JS SDK, aws-cli and boto3: objects inside work, objects outside are refused by
 * every door (GET, PUT, copy source, DeleteObjects entries, dot segments, presigned URLs and POST
 * forms issued for the key), and listings must ask for a prefix inside the key's.
 */
import {
  AbortMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYENV_AWS, PYENV_PYTHON, awsEnv, run, tempHome } from '../helpers/clients.js';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { gatewayS3Client, sdkOutcome } from '../helpers/sdk.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';

const BUCKET = 'shared-volume';

let upstream: TestUpstream;
let gateway: Gateway;
let admin: S3Client;
let teamA: CreatedKey;
let s3: S3Client;

const outcome = sdkOutcome;

beforeAll(async () => {
  upstream = await startMoto();
  await upstream.createBucket(BUCKET);
  gateway = await startGateway(upstreamEnv(upstream));
  await gateway.addBucket({ name: BUCKET });
  admin = gatewayS3Client(gateway.url, await gateway.createKey({ name: 'admin', permissions: ['read', 'write', 'delete'] }));
  for (const [key, body] of [
    ['team-a/one.txt', 'one'],
    ['team-a/2026/q1.txt', 'q1'],
    ['team-b/secret.txt', 'secret'],
    ['team-a-evil/x.txt', 'evil'],
    ['root.txt', 'root'],
  ]) {
    await admin.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: body }));
  }
  teamA = await gateway.createKey({ name: 'team-a', permissions: ['read', 'write', 'delete'], prefix: 'team-a/' });
  s3 = gatewayS3Client(gateway.url, teamA);
});

afterAll(async () => {
  s3?.destroy();
  admin?.destroy();
  await gateway?.stop();
  await upstream?.stop();
});

describe('a key limited to team-a/', () => {
  it('reads and writes inside its prefix, and nothing outside it', async () => {
    expect(teamA.prefix).toBe('team-a/');
    expect(await (await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'team-a/one.txt' }))).Body!.transformToString()).toBe('one');
    expect(await outcome(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-a/new.txt', Body: 'new' })))).toBe('allowed');
    for (const key of ['team-b/secret.txt', 'team-a-evil/x.txt', 'root.txt', 'team-a']) {
      expect(await outcome(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }))), key).toBe('AccessDenied');
      expect(await outcome(s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))), key).toBe('AccessDenied');
    }
    expect(await outcome(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'team-b/planted.txt', Body: 'x' })))).toBe('AccessDenied');
    // Dot segments never get compared with the prefix: they are refused.
    expect(await outcome(s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'team-a/../team-b/secret.txt' })))).toBe('error:InvalidArgument');
  });

  it('copies only from inside its prefix', async () => {
    expect(await outcome(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'team-a/copy.txt', CopySource: `${BUCKET}/team-a/one.txt` })))).toBe('allowed');
    expect(await outcome(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'team-a/stolen.txt', CopySource: `${BUCKET}/team-b/secret.txt` })))).toBe(
      'AccessDenied',
    );
    expect(await outcome(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'team-a/stolen.txt' })))).toBe('error:NotFound');
  });

  it('copies nothing from outside its prefix through a source bucket the upstream would read as a path', async () => {
    // Decoded once by the gateway: bucket `shared-volume%2Fteam-b%2Fsecret.txt?`, key team-a/one.txt
    // (inside the prefix). Sent on as it was, the upstream decodes it as /shared-volume/team-b/secret.txt.
    const smuggled = `${BUCKET}%252Fteam-b%252Fsecret.txt%3F/team-a/one.txt`;
    expect(await outcome(s3.send(new CopyObjectCommand({ Bucket: BUCKET, Key: 'team-a/smuggled.txt', CopySource: smuggled })))).toBe('error:InvalidArgument');
    const upload = await s3.send(new CreateMultipartUploadCommand({ Bucket: BUCKET, Key: 'team-a/smuggled-part.txt' }));
    expect(
      await outcome(
        s3.send(new UploadPartCopyCommand({ Bucket: BUCKET, Key: 'team-a/smuggled-part.txt', UploadId: upload.UploadId, PartNumber: 1, CopySource: smuggled })),
      ),
    ).toBe('error:InvalidArgument');
    await s3.send(new AbortMultipartUploadCommand({ Bucket: BUCKET, Key: 'team-a/smuggled-part.txt', UploadId: upload.UploadId }));
    expect(await outcome(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'team-a/smuggled.txt' })))).toBe('error:NotFound');
  });

  it('lists only with a prefix inside its own; delimiter results stay inside', async () => {
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: BUCKET })))).toBe('AccessDenied');
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-' })))).toBe('AccessDenied');
    expect(await outcome(s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-b/' })))).toBe('AccessDenied');
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'team-a/', Delimiter: '/' }));
    expect((listed.Contents ?? []).map((o) => o.Key).sort()).toEqual(['team-a/copy.txt', 'team-a/new.txt', 'team-a/one.txt']);
    expect((listed.CommonPrefixes ?? []).map((p) => p.Prefix)).toEqual(['team-a/2026/']);
  });

  it('deletes each DeleteObjects entry inside its prefix and refuses the others one by one', async () => {
    const answer = await s3.send(
      new DeleteObjectsCommand({
        Bucket: BUCKET,
        Delete: { Objects: [{ Key: 'team-a/copy.txt' }, { Key: 'team-b/secret.txt' }, { Key: 'team-a/../team-b/secret.txt' }] },
      }),
    );
    expect((answer.Deleted ?? []).map((d) => d.Key)).toEqual(['team-a/copy.txt']);
    expect((answer.Errors ?? []).map((e) => [e.Key, e.Code])).toEqual([
      ['team-b/secret.txt', 'AccessDenied'],
      ['team-a/../team-b/secret.txt', 'InvalidArgument'],
    ]);
    expect(await outcome(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'team-b/secret.txt' })))).toBe('allowed');
  });

  it('gets presigned URLs and POST forms only inside its prefix', async () => {
    const inside = await gateway.admin('POST', '/v1/presign', { accessKeyId: teamA.accessKeyId, target: `s3://${BUCKET}/team-a/one.txt` });
    expect(inside.status).toBe(200);
    expect(await (await fetch(inside.json.url as string)).text()).toBe('one');
    const outside = await gateway.admin('POST', '/v1/presign', { accessKeyId: teamA.accessKeyId, target: `s3://${BUCKET}/team-b/secret.txt` });
    expect(outside.status).toBe(400);
    expect(outside.json.detail).toMatch(/starting with "team-a\/"/);
    const form = await gateway.admin('POST', '/v1/presign', { accessKeyId: teamA.accessKeyId, target: `s3://${BUCKET}/team-b/`, method: 'POST' });
    expect(form.status).toBe(400);
    const ownForm = await gateway.admin('POST', '/v1/presign', { accessKeyId: teamA.accessKeyId, target: `s3://${BUCKET}/team-a/uploads/`, method: 'POST' });
    expect(ownForm.status).toBe(200);
    // The form's key field changed to a place outside the prefix: refused, nothing stored.
    const fields = { ...(ownForm.json.fields as Record<string, string>), key: 'team-b/from-form.txt' };
    const body = new FormData();
    for (const [name, value] of Object.entries(fields)) body.append(name, value);
    body.append('file', new Blob(['x']), 'x.txt');
    const posted = await fetch(ownForm.json.url as string, { method: 'POST', body });
    expect(posted.status).toBe(403);
    expect(await outcome(admin.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'team-b/from-form.txt' })))).toBe('error:NotFound');
  });

  it('works the same with aws-cli and boto3', async () => {
    const env = awsEnv({ ...teamA, endpoint: gateway.url }, tempHome());
    const ls = await run(PYENV_AWS, ['--endpoint-url', gateway.url, 's3', 'ls', `s3://${BUCKET}/team-a/`], env);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toContain('one.txt');
    expect(ls.stdout).toContain('PRE 2026/');
    const lsAll = await run(PYENV_AWS, ['--endpoint-url', gateway.url, 's3', 'ls', `s3://${BUCKET}/`], env);
    expect(lsAll.code).not.toBe(0);
    expect(lsAll.stderr).toMatch(/AccessDenied/);
    const steal = await run(PYENV_AWS, ['--endpoint-url', gateway.url, 's3', 'cp', `s3://${BUCKET}/team-b/secret.txt`, '-'], env);
    expect(steal.code).not.toBe(0);
    const script = [
      'import boto3, sys',
      'from botocore.config import Config',
      `s3 = boto3.client("s3", endpoint_url=${JSON.stringify(gateway.url)}, region_name=${JSON.stringify(teamA.region)}, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))`,
      `print(s3.get_object(Bucket=${JSON.stringify(BUCKET)}, Key="team-a/one.txt")["Body"].read().decode())`,
      'try:',
      `    s3.list_objects_v2(Bucket=${JSON.stringify(BUCKET)})`,
      '    print("listed")',
      'except Exception as error:',
      '    print(error.response["Error"]["Code"])',
    ].join('\n');
    const boto = await run(PYENV_PYTHON, ['-c', script], env);
    expect(boto.code, boto.stderr).toBe(0);
    expect(boto.stdout.trim().split('\n')).toEqual(['one', 'AccessDenied']);
  });
});
