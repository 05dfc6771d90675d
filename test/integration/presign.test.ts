/**
 * Presigned URLs: issued by `keygate presign` and `POST /v1/presign`, or made by boto3 and the AWS
 * JS presigner with rs_ keys, all verified by the gateway itself (RunPod has none).
 */
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PYENV_PYTHON, run, runOk } from '../helpers/clients.js';
import { REPO_ROOT, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startS3rver } from '../helpers/upstreams.js';
import { gatewayS3Client } from '../helpers/sdk.js';

const BUCKET = 'presign-bucket';

describe('presigned URLs through keygate', () => {
  let upstream: Awaited<ReturnType<typeof startS3rver>>;
  let gateway: Gateway;
  let key: CreatedKey;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway(upstreamEnv(upstream));
    key = await gateway.createKey({ name: 'presigner', bucket: BUCKET, preset: 'read-write' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  const cli = (...args: string[]) => run(process.execPath, [path.join(REPO_ROOT, 'dist/cli/main.js'), 'presign', ...args], gateway.env);

  it('PUT via the admin API, GET via the CLI', async () => {
    const issued = await gateway.admin('POST', '/v1/presign', {
      accessKeyId: key.accessKeyId,
      target: `s3://${BUCKET}/dir/up ✓+load.txt`,
      method: 'PUT',
      expiresIn: '15m',
    });
    expect(issued.status).toBe(200);
    expect(issued.json.url).toMatch(new RegExp(`^${gateway.url}/${BUCKET}/dir/up%20%E2%9C%93%2Bload\\.txt\\?X-Amz-Algorithm=AWS4-HMAC-SHA256`));
    expect(Date.parse(issued.json.expiresAt) - Date.now()).toBeGreaterThan(14 * 60_000);
    const put = await fetch(issued.json.url, { method: 'PUT', body: 'presigned body' });
    expect(put.status).toBe(200);

    const got = await cli(key.accessKeyId, `s3://${BUCKET}/dir/up ✓+load.txt`);
    expect(got.code, got.stderr).toBe(0);
    const response = await fetch(got.stdout.trim());
    expect(await response.text()).toBe('presigned body');
  });

  it('only issues URLs the key may use, and never past 7 days', async () => {
    const del = await cli(key.accessKeyId, `s3://${BUCKET}/x`, '--method', 'DELETE');
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/may not DELETE/);
    const other = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: 's3://other-bucket/x' });
    expect(other.status).toBe(400);
    const tooLong = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${BUCKET}/x`, expiresIn: '8d' });
    expect(tooLong.status).toBe(400);
    expect(tooLong.json.detail).toMatch(/7 days/);
    const unknown = await gateway.admin('POST', '/v1/presign', { accessKeyId: `rs_ak_live_${'0'.repeat(40)}`, target: `s3://${BUCKET}/x` });
    expect(unknown.status).toBe(404);
  });

  it('rejects expired and tampered URLs with S3 errors', async () => {
    const shortLived = await cli(key.accessKeyId, `s3://${BUCKET}/dir/up ✓+load.txt`, '--expires-in', '1');
    const url = shortLived.stdout.trim();
    const tampered = url.replace('up%20', 'up%21');
    const tamperedResponse = await fetch(tampered);
    expect(tamperedResponse.status).toBe(403);
    expect(await tamperedResponse.text()).toContain('<Code>SignatureDoesNotMatch</Code>');
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await fetch(url);
    expect(expired.status).toBe(403);
    expect(await expired.text()).toContain('Request has expired');
  });

  it('accepts URLs presigned by the AWS JS presigner and by boto3 with rs_ keys', async () => {
    const s3 = gatewayS3Client(gateway.url, key);
    const putUrl = await getSignedUrl(s3, new PutObjectCommand({ Bucket: BUCKET, Key: 'sdk presigned.txt' }), { expiresIn: 300 });
    expect((await fetch(putUrl, { method: 'PUT', body: 'from the js presigner' })).status).toBe(200);
    const getUrl = await getSignedUrl(s3, new GetObjectCommand({ Bucket: BUCKET, Key: 'sdk presigned.txt' }), { expiresIn: 300 });
    expect(await (await fetch(getUrl)).text()).toBe('from the js presigner');
    s3.destroy();

    const script = [
      'import boto3, sys',
      'from botocore.config import Config',
      's3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name=sys.argv[2], aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4], config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))',
      'print(s3.generate_presigned_url("get_object", Params={"Bucket": sys.argv[5], "Key": "sdk presigned.txt"}, ExpiresIn=300))',
    ].join('\n');
    const url = (await runOk(PYENV_PYTHON, ['-c', script, gateway.url, key.region, key.accessKeyId, key.secretAccessKey, BUCKET])).trim();
    expect(await (await fetch(url)).text()).toBe('from the js presigner');
  });
});
