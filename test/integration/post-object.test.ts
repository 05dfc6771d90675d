/**
 * POST Object (browser form uploads with a SigV4 POST policy) through a real gateway to a real
 * upstream: forms made by @aws-sdk/s3-presigned-post, boto3 and a hand-written signer; every
 * rejection answers S3's XML error and leaves nothing upstream.
 */
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { createHash } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import path from 'node:path';
import { PYENV_PYTHON, run, runOk } from '../helpers/clients.js';
import { REPO_ROOT, startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startMoto, startS3rver, type TestUpstream } from '../helpers/upstreams.js';
import { gatewayS3Client } from '../helpers/sdk.js';
import { signPolicy, signPolicyText } from '../helpers/post-forms.js';

const BUCKET = 'form-uploads';
const OTHER_BUCKET = 'form-other';

interface PostResult {
  status: number;
  headers: Headers;
  text: string;
}

function errorCode(text: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(text)?.[1];
}

function encodeKey(key: string): string {
  return key.split('/').map(encodeURIComponent).join('/');
}

describe('POST Object through keygate', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let writer: CreatedKey;
  let reader: CreatedKey;

  beforeAll(async () => {
    upstream = await startMoto({ validateSignatures: true });
    await upstream.createBucket(BUCKET);
    await upstream.createBucket(OTHER_BUCKET);
    gateway = await startGateway(upstreamEnv(upstream));
    writer = await gateway.createKey({ name: 'form-writer', bucket: BUCKET, preset: 'read-write' });
    reader = await gateway.createKey({ name: 'form-reader', bucket: BUCKET, preset: 'read-only' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  async function post(
    bucket: string,
    fields: Record<string, string>,
    file: { name: string; content: string | Buffer; type?: string } | null,
  ): Promise<PostResult> {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    if (file) form.append('file', new Blob([file.content], { type: file.type ?? 'application/octet-stream' }), file.name);
    const response = await fetch(`${gateway.url}/${bucket}`, { method: 'POST', body: form, redirect: 'manual' });
    return { status: response.status, headers: response.headers, text: await response.text() };
  }

  async function upstreamObject(bucket: string, key: string) {
    return upstream.request('GET', `/${bucket}/${encodeKey(key)}`);
  }

  async function expectAbsent(bucket: string, key: string): Promise<void> {
    expect((await upstream.request('HEAD', `/${bucket}/${encodeKey(key)}`)).status).toBe(404);
  }

  async function expectRejected(result: PostResult, status: number, code: string, bucket: string, key: string): Promise<void> {
    expect(result.status, result.text).toBe(status);
    expect(errorCode(result.text), result.text).toBe(code);
    await expectAbsent(bucket, key);
  }

  /** A valid form for `key` under uploads/, 1 byte to 1 KiB. */
  function standardForm(
    key: string,
    signer: CreatedKey = writer,
    bucket = BUCKET,
    extra: Record<string, string> = {},
    extraConditions: unknown[] = [],
  ): Record<string, string> {
    return {
      key,
      ...extra,
      ...signPolicy(signer, [{ bucket }, ['starts-with', '$key', 'uploads/'], ['content-length-range', 1, 1024], ...extraConditions]),
    };
  }

  it('stores a form made by @aws-sdk/s3-presigned-post, with ${filename}, Content-Type and metadata', async () => {
    const s3 = gatewayS3Client(gateway.url, writer);
    const { url, fields } = await createPresignedPost(s3, {
      Bucket: BUCKET,
      Key: 'uploads/js/${filename}',
      Conditions: [
        ['content-length-range', 1, 1024 * 1024],
        ['starts-with', '$Content-Type', 'text/'],
      ],
      Fields: { 'x-amz-meta-origin': 'js-sdk', 'Cache-Control': 'max-age=60' },
      Expires: 300,
    });
    s3.destroy();
    expect(url).toBe(`${gateway.url}/${BUCKET}`);
    const result = await post(BUCKET, { ...fields, 'Content-Type': 'text/plain; charset=utf-8' }, { name: 'hello world.txt', content: 'hello from a form' });
    expect(result.status, result.text).toBe(204);
    const etag = `"${createHash('md5').update('hello from a form').digest('hex')}"`;
    expect(result.headers.get('etag')).toBe(etag);
    expect(result.headers.get('location')).toBe(`${gateway.url}/${BUCKET}/uploads/js/hello%20world.txt`);

    const stored = await upstreamObject(BUCKET, 'uploads/js/hello world.txt');
    expect(stored.status).toBe(200);
    expect(stored.body.toString()).toBe('hello from a form');
    expect(stored.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(stored.headers['x-amz-meta-origin']).toBe('js-sdk');
    expect(stored.headers['cache-control']).toBe('max-age=60');
  });

  it('stores a form made by boto3 generate_presigned_post and answers 201 with a PostResponse', async () => {
    const script = [
      'import boto3, json, sys',
      'from botocore.config import Config',
      's3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name=sys.argv[2], aws_access_key_id=sys.argv[3], aws_secret_access_key=sys.argv[4], config=Config(signature_version="s3v4", s3={"addressing_style": "path"}))',
      'post = s3.generate_presigned_post(sys.argv[5], "uploads/py/${filename}", Fields={"success_action_status": "201"}, Conditions=[{"success_action_status": "201"}, ["content-length-range", 0, 4096]], ExpiresIn=300)',
      'print(json.dumps(post))',
    ].join('\n');
    const issued = JSON.parse(await runOk(PYENV_PYTHON, ['-c', script, gateway.url, writer.region, writer.accessKeyId, writer.secretAccessKey, BUCKET])) as {
      url: string;
      fields: Record<string, string>;
    };
    expect(issued.url).toBe(`${gateway.url}/${BUCKET}`);
    const result = await post(BUCKET, issued.fields, { name: 'data.bin', content: Buffer.from([0, 1, 2, 255]) });
    expect(result.status, result.text).toBe(201);
    const etag = `"${createHash('md5')
      .update(Buffer.from([0, 1, 2, 255]))
      .digest('hex')}"`;
    expect(result.text).toContain(
      `<PostResponse><Location>${gateway.url}/${BUCKET}/uploads/py/data.bin</Location><Bucket>${BUCKET}</Bucket><Key>uploads/py/data.bin</Key><ETag>&quot;`,
    );
    expect(result.text).toContain(`${etag.slice(1, -1)}&quot;</ETag></PostResponse>`);
    expect(result.headers.get('content-type')).toBe('application/xml');
    const stored = await upstreamObject(BUCKET, 'uploads/py/data.bin');
    expect([...stored.body]).toEqual([0, 1, 2, 255]);
  });

  it('answers success_action_status 200 with an empty 200, and success_action_redirect with a 303', async () => {
    const ok = await post(
      BUCKET,
      standardForm('uploads/status-200.txt', writer, BUCKET, { success_action_status: '200' }, [{ success_action_status: '200' }]),
      { name: 'a.txt', content: 'two hundred' },
    );
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('');
    expect((await upstreamObject(BUCKET, 'uploads/status-200.txt')).body.toString()).toBe('two hundred');

    const redirectTo = 'https://app.example.com/done?from=form';
    const redirected = await post(
      BUCKET,
      standardForm('uploads/redirected ${filename}', writer, BUCKET, { success_action_redirect: redirectTo }, [
        ['starts-with', '$success_action_redirect', 'https://app.example.com/'],
      ]),
      { name: 'r.txt', content: 'redirected' },
    );
    expect(redirected.status).toBe(303);
    const location = new URL(redirected.headers.get('location')!);
    expect(location.origin + location.pathname).toBe('https://app.example.com/done');
    expect(location.searchParams.get('from')).toBe('form');
    expect(location.searchParams.get('bucket')).toBe(BUCKET);
    expect(location.searchParams.get('key')).toBe('uploads/redirected r.txt');
    expect(location.searchParams.get('etag')).toBe(`"${createHash('md5').update('redirected').digest('hex')}"`);
    expect((await upstreamObject(BUCKET, 'uploads/redirected r.txt')).body.toString()).toBe('redirected');
  });

  it('ignores fields after the file and x-ignore- fields, and matches condition names case-insensitively', async () => {
    const form = new FormData();
    const fields = {
      key: 'uploads/case.txt',
      'X-Ignore-Tracking': 'anything',
      'Content-Type': 'text/csv',
      ...signPolicy(writer, [{ Bucket: BUCKET }, ['eq', '$KEY', 'uploads/case.txt'], ['starts-with', '$content-type', 'text/']]),
    };
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', new Blob(['a,b\n']), 'case.csv');
    form.append('x-amz-meta-after-file', 'ignored');
    const response = await fetch(`${gateway.url}/${BUCKET}`, { method: 'POST', body: form });
    expect(response.status, await response.text()).toBe(204);
    const stored = await upstreamObject(BUCKET, 'uploads/case.txt');
    expect(stored.body.toString()).toBe('a,b\n');
    expect(stored.headers['content-type']).toBe('text/csv');
    expect(stored.headers['x-amz-meta-after-file']).toBeUndefined();
  });

  it('uses forms issued by keygate: POST /v1/presign and keygate presign --method POST', async () => {
    const issued = await gateway.admin('POST', '/v1/presign', {
      accessKeyId: writer.accessKeyId,
      target: `s3://${BUCKET}/issued/`,
      method: 'POST',
      maxSize: '1k',
      expiresIn: '5m',
    });
    expect(issued.status, JSON.stringify(issued.json)).toBe(200);
    expect(issued.json).toMatchObject({ url: `${gateway.url}/${BUCKET}`, method: 'POST' });
    expect(Object.keys(issued.json.fields)).toEqual(['key', 'x-amz-algorithm', 'x-amz-credential', 'x-amz-date', 'policy', 'x-amz-signature']);
    expect(issued.json.fields.key).toBe('issued/${filename}');
    expect(Date.parse(issued.json.expiresAt) - Date.now()).toBeGreaterThan(4 * 60_000);
    const stored = await post(BUCKET, { ...issued.json.fields, 'Content-Type': 'image/png' }, { name: 'pic.png', content: 'png bytes' });
    expect(stored.status, stored.text).toBe(204);
    const object = await upstreamObject(BUCKET, 'issued/pic.png');
    expect(object.body.toString()).toBe('png bytes');
    expect(object.headers['content-type']).toBe('image/png');
    await expectRejected(
      await post(BUCKET, issued.json.fields, { name: 'big.bin', content: Buffer.alloc(1025) }),
      400,
      'EntityTooLarge',
      BUCKET,
      'issued/big.bin',
    );
    await expectRejected(
      await post(BUCKET, { ...issued.json.fields, key: 'elsewhere/pic.png' }, { name: 'pic.png', content: 'x' }),
      403,
      'AccessDenied',
      BUCKET,
      'elsewhere/pic.png',
    );

    const cli = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/cli/main.js'), 'presign', writer.accessKeyId, `s3://${BUCKET}/cli/`, '--method', 'POST'],
      gateway.env,
    );
    expect(cli.code, cli.stderr).toBe(0);
    const form = JSON.parse(cli.stdout) as { url: string; fields: Record<string, string> };
    const chosenKey = await post(BUCKET, { ...form.fields, key: 'cli/chosen name.txt' }, { name: 'ignored.txt', content: 'from the cli form' });
    expect(chosenKey.status, chosenKey.text).toBe(204);
    expect((await upstreamObject(BUCKET, 'cli/chosen name.txt')).body.toString()).toBe('from the cli form');

    const readOnly = await gateway.admin('POST', '/v1/presign', { accessKeyId: reader.accessKeyId, target: `s3://${BUCKET}/x/`, method: 'POST' });
    expect(readOnly.status).toBe(400);
    expect(readOnly.json.detail).toMatch(/may not upload/);
    const sizeOnPut = await gateway.admin('POST', '/v1/presign', { accessKeyId: writer.accessKeyId, target: `s3://${BUCKET}/x`, method: 'PUT', maxSize: 10 });
    expect(sizeOnPut.status).toBe(400);
    const cliSizeOnGet = await run(
      process.execPath,
      [path.join(REPO_ROOT, 'dist/cli/main.js'), 'presign', writer.accessKeyId, `s3://${BUCKET}/x`, '--max-size', '10'],
      gateway.env,
    );
    expect(cliSizeOnGet.code).toBe(2);
  });

  describe('rejections leave nothing upstream', () => {
    it('a tampered signature', async () => {
      const fields = standardForm('uploads/tampered.txt');
      const signature = fields['x-amz-signature']!;
      fields['x-amz-signature'] = signature.slice(0, -1) + (signature.endsWith('0') ? '1' : '0');
      await expectRejected(await post(BUCKET, fields, { name: 'x', content: 'x' }), 403, 'SignatureDoesNotMatch', BUCKET, 'uploads/tampered.txt');
    });

    it('a policy changed after signing', async () => {
      const fields = standardForm('uploads/widened.txt');
      const policy = JSON.parse(Buffer.from(fields.policy!, 'base64').toString());
      policy.conditions[2] = ['content-length-range', 1, 10 * 1024 * 1024];
      fields.policy = Buffer.from(JSON.stringify(policy)).toString('base64');
      await expectRejected(await post(BUCKET, fields, { name: 'x', content: 'x' }), 403, 'SignatureDoesNotMatch', BUCKET, 'uploads/widened.txt');
    });

    it('an expired policy', async () => {
      const now = new Date();
      const fields = {
        key: 'uploads/expired.txt',
        ...signPolicy(writer, [{ bucket: BUCKET }, ['starts-with', '$key', 'uploads/']], { expiration: new Date(now.getTime() - 1000), now }),
      };
      const result = await post(BUCKET, fields, { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', BUCKET, 'uploads/expired.txt');
      expect(result.text).toContain('Invalid according to Policy: Policy expired');
    });

    it('a key outside the starts-with prefix', async () => {
      const fields = standardForm('elsewhere/escape.txt');
      const result = await post(BUCKET, fields, { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', BUCKET, 'elsewhere/escape.txt');
      expect(result.text).toContain('Policy Condition failed: [&quot;starts-with&quot;,&quot;$key&quot;,&quot;uploads/&quot;]');
    });

    it('a field the policy does not cover', async () => {
      const fields = { ...standardForm('uploads/extra.txt'), 'x-amz-meta-sneaky': 'yes' };
      const result = await post(BUCKET, fields, { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', BUCKET, 'uploads/extra.txt');
      expect(result.text).toContain('Extra input fields: x-amz-meta-sneaky');
    });

    it('a form posted to another bucket than its policy names', async () => {
      const fields = standardForm('uploads/wrong-bucket.txt');
      const result = await post(OTHER_BUCKET, fields, { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', OTHER_BUCKET, 'uploads/wrong-bucket.txt');
      expect(result.text).toContain('Policy Condition failed: {&quot;bucket&quot;:&quot;form-uploads&quot;}');
    });

    it('a file larger or smaller than content-length-range', async () => {
      const large = await post(BUCKET, standardForm('uploads/large.txt'), { name: 'x', content: Buffer.alloc(1025, 'a') });
      await expectRejected(large, 400, 'EntityTooLarge', BUCKET, 'uploads/large.txt');
      expect(large.text).toContain('<MaxSizeAllowed>1024</MaxSizeAllowed>');
      const small = await post(BUCKET, standardForm('uploads/small.txt'), { name: 'x', content: '' });
      await expectRejected(small, 400, 'EntityTooSmall', BUCKET, 'uploads/small.txt');
      expect(small.text).toContain('<MinSizeAllowed>1</MinSizeAllowed>');
    });

    it('answers an oversized file as soon as it passes the limit, without waiting for the rest', async () => {
      // 64 MiB at a slow pace against a 1 KiB limit: the refusal arrives after the first few KiB.
      const fields = standardForm('uploads/huge.txt');
      const result = await rawPost(gateway.url, BUCKET, fields, 'huge.bin', 64 * 1024 * 1024, { paceMs: 5 });
      expect(result.status, result.text).toBe(400);
      expect(errorCode(result.text)).toBe('EntityTooLarge');
      expect(result.sentBeforeResponse).toBeGreaterThan(0);
      expect(result.sentBeforeResponse).toBeLessThan(2 * 1024 * 1024);
      await expectAbsent(BUCKET, 'uploads/huge.txt');
    });

    it.each([
      ['a tampered signature', 403, 'SignatureDoesNotMatch'],
      ['an unknown access key', 403, 'InvalidAccessKeyId'],
    ])('refuses %s on a multi-MiB file while it streams, and stays up for the next sender', async (what, status, code) => {
      const fields = standardForm(`uploads/streaming-${code}.txt`);
      if (code === 'SignatureDoesNotMatch') fields['x-amz-signature'] = '0'.repeat(64);
      else fields['x-amz-credential'] = fields['x-amz-credential']!.replace(writer.accessKeyId, 'rs_ak_unknown0000000000000000');
      for (let round = 0; round < 3; round++) {
        const result = await rawPost(gateway.url, BUCKET, fields, 'stream.bin', 8 * 1024 * 1024, { paceMs: 1 });
        expect(result.status, `${what}: ${result.text}`).toBe(status);
        expect(errorCode(result.text)).toBe(code);
      }
      const health = await fetch(`${gateway.url}/_health`);
      expect(health.status).toBe(200);
      await expectAbsent(BUCKET, `uploads/streaming-${code}.txt`);
    });

    it('refuses a form whose file is a plain field (no filename) and stays up for the next sender', async () => {
      // The refusal destroys the file it holds in memory, not yet read: that must never be an unheard error.
      const fields = standardForm('uploads/field-file.txt');
      const boundary = 'keygate-field-file';
      const encode = (parts: string[][]) =>
        parts.map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('') + `--${boundary}--\r\n`;
      const tampered = { ...fields, 'x-amz-signature': '0'.repeat(64) };
      for (let round = 0; round < 3; round++) {
        const response = await fetch(`${gateway.url}/${BUCKET}`, {
          method: 'POST',
          headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
          body: encode([...Object.entries(tampered), ['file', 'content as a field']]),
        });
        const text = await response.text();
        expect(response.status, text).toBe(403);
        expect(errorCode(text)).toBe('SignatureDoesNotMatch');
      }
      expect((await fetch(`${gateway.url}/_health`)).status).toBe(200);
      await expectAbsent(BUCKET, 'uploads/field-file.txt');
    });

    it('a read-only key', async () => {
      const result = await post(BUCKET, standardForm('uploads/read-only.txt', reader), { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', BUCKET, 'uploads/read-only.txt');
      expect(result.text).toContain('lacks the &quot;write&quot; permission');
    });

    it('a key that satisfies starts-with but steps out of it with ".." segments (per-bucket key)', async () => {
      const fields = standardForm('uploads/../../form-other/escape.txt');
      const result = await post(BUCKET, fields, { name: 'x', content: 'x' });
      expect(result.status, result.text).toBe(400);
      expect(errorCode(result.text)).toBe('InvalidArgument');
      expect(result.text).toContain('&quot;..&quot; path segment');
      await expectAbsent(OTHER_BUCKET, 'escape.txt');
      const listed = await upstream.request('GET', `/${BUCKET}`, { query: 'list-type=2&prefix=uploads%2F..' });
      expect(listed.body.toString()).not.toContain('<Key>');
    });

    it('a per-bucket key on another bucket', async () => {
      const result = await post(OTHER_BUCKET, standardForm('uploads/other.txt', writer, OTHER_BUCKET), { name: 'x', content: 'x' });
      await expectRejected(result, 403, 'AccessDenied', OTHER_BUCKET, 'uploads/other.txt');
    });

    it('a deleted key', async () => {
      const doomed = await gateway.createKey({ name: 'doomed', bucket: BUCKET, preset: 'read-write' });
      const fields = standardForm('uploads/deleted-key.txt', doomed);
      await gateway.deleteKey(doomed.accessKeyId);
      await expectRejected(await post(BUCKET, fields, { name: 'x', content: 'x' }), 403, 'InvalidAccessKeyId', BUCKET, 'uploads/deleted-key.txt');
    });

    it('an unsigned (anonymous) form', async () => {
      await expectRejected(
        await post(BUCKET, { key: 'uploads/anonymous.txt' }, { name: 'x', content: 'x' }),
        403,
        'AccessDenied',
        BUCKET,
        'uploads/anonymous.txt',
      );
    });

    it('a policy that is not base64 JSON', async () => {
      const fields = { ...standardForm('uploads/bad-policy.txt') };
      const broken = Buffer.from('{"expiration": "2030-01-01T00:00:00Z", "conditions": [').toString('base64');
      Object.assign(fields, signPolicyText(writer, broken), { policy: broken });
      const result = await post(BUCKET, fields, { name: 'x', content: 'x' });
      await expectRejected(result, 400, 'InvalidPolicyDocument', BUCKET, 'uploads/bad-policy.txt');
    });

    it('a form without a file', async () => {
      const result = await post(BUCKET, standardForm('uploads/no-file.txt'), null);
      await expectRejected(result, 400, 'InvalidArgument', BUCKET, 'uploads/no-file.txt');
      expect(result.text).toContain('exactly one file');
    });

    it('a malformed multipart body', async () => {
      const fields = standardForm('uploads/malformed.txt');
      const boundary = 'keygate-boundary';
      const head = Object.entries(fields)
        .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
        .join('');
      // The file part never ends: no closing boundary.
      const body = `${head}--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="m.txt"\r\n\r\nunterminated`;
      const response = await fetch(`${gateway.url}/${BUCKET}`, {
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
        body,
      });
      const text = await response.text();
      expect(response.status, text).toBe(400);
      expect(errorCode(text)).toBe('MalformedPOSTRequest');
      await expectAbsent(BUCKET, 'uploads/malformed.txt');

      const noBoundary = await fetch(`${gateway.url}/${BUCKET}`, { method: 'POST', headers: { 'content-type': 'multipart/form-data' }, body: 'x' });
      expect(noBoundary.status).toBe(400);
      expect(errorCode(await noBoundary.text())).toBe('MalformedPOSTRequest');
    });
  });
});

/**
 * Streams a form whose file is `size` generated bytes (never held in memory), with an exact
 * Content-Length. Resolves with the response even when the gateway answers before the body is sent.
 */
function rawPost(
  baseUrl: string,
  bucket: string,
  fields: Record<string, string>,
  filename: string,
  size: number,
  options: { paceMs?: number } = {},
): Promise<{ status: number; text: string; md5: string; sentBeforeResponse: number }> {
  const boundary = `----keygate${Date.now()}`;
  const head = Buffer.from(
    Object.entries(fields)
      .map(([name, value]) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`)
      .join('') + `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`,
  );
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  const block = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < block.length; i++) block[i] = (i * 31) & 0xff;
  const md5 = createHash('md5');
  let sent = 0;
  // Paced: 64 KiB per tick, like a slow uplink, so the client is idle and reads an early answer at once.
  const chunkSize = options.paceMs === undefined ? block.length : 64 * 1024;
  const body = new Readable({
    read() {
      const next = () => {
        if (this.destroyed) return;
        if (sent === 0) this.push(head);
        if (sent >= size) {
          this.push(tail);
          this.push(null);
          return;
        }
        const chunk = block.subarray(0, Math.min(chunkSize, size - sent));
        sent += chunk.length;
        md5.update(chunk);
        this.push(chunk);
      };
      if (options.paceMs === undefined) next();
      else setTimeout(next, options.paceMs);
    },
  });
  let sentBeforeResponse = -1;
  const url = new URL(`${baseUrl}/${bucket}`);
  return new Promise((resolve, reject) => {
    const request = http.request(
      {
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': String(head.length + size + tail.length) },
      },
      (response) => {
        sentBeforeResponse = sent;
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        // 'close' too: after an early refusal the gateway closes the connection while we still write.
        let finished = false;
        const finish = () => {
          if (finished) return;
          finished = true;
          body.destroy();
          request.destroy();
          resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString(), md5: md5.digest('hex'), sentBeforeResponse });
        };
        response.on('end', finish);
        response.on('close', finish);
      },
    );
    // The gateway may close the connection while we still write (early refusal): the response decides.
    request.on('error', (error) => (sent < size ? undefined : reject(error)));
    body.pipe(request);
  });
}

describe('POST Object with a large file', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let writer: CreatedKey;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    gateway = await startGateway(upstreamEnv(upstream));
    writer = await gateway.createKey({ name: 'big-form', bucket: BUCKET, preset: 'read-write' });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.stop();
  });

  it('spools 200 MB with flat memory and stores every byte', async () => {
    const size = 200 * 1024 * 1024;
    const fields = {
      key: 'uploads/${filename}',
      ...signPolicy(writer, [{ bucket: BUCKET }, ['starts-with', '$key', 'uploads/'], ['content-length-range', 0, size]]),
    };
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, gateway.rss())), 50);
    let result;
    try {
      result = await rawPost(gateway.url, BUCKET, fields, 'big.bin', size);
    } finally {
      clearInterval(sampler);
    }
    expect(result.status, result.text).toBe(204);
    const head = await upstream.request('HEAD', `/${BUCKET}/uploads/big.bin`);
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(size);
    expect(head.headers.etag).toBe(`"${result.md5}"`);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThan(150 * 1024 * 1024);
  });
});
