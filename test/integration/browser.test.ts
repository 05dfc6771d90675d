/**
 * A real browser (headless Debian chromium through playwright-core) uploads from a page on another
 * origin: with a presigned PUT URL issued by keygate's admin API, and with a presigned POST form
 * made by @aws-sdk/s3-presigned-post. The browser enforces CORS itself (preflights, readable
 * headers), so this proves the gateway's CORS end to end. Chromium is required: CI installs it, and
 * a missing browser fails this suite rather than skipping it.
 */
import { createPresignedPost } from '@aws-sdk/s3-presigned-post';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, upstreamEnv, type CreatedKey, type Gateway } from '../helpers/gateway.js';
import { startS3rver, type TestUpstream } from '../helpers/upstreams.js';
import { gatewayS3Client } from '../helpers/sdk.js';

const CHROMIUM = '/usr/bin/chromium';
const BUCKET = 'browser-uploads';
const NO_CORS_BUCKET = 'browser-no-cors';

const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>keygate upload page</title></head>
<body>
<p>Uploads straight to keygate from the browser.</p>
<script>
  function bytesOf(base64) {
    return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  }
  // (a) presigned PUT: a cross-origin PUT, so the browser preflights it.
  window.uploadWithPut = async (url, base64) => {
    const response = await fetch(url, { method: 'PUT', body: bytesOf(base64), headers: { 'Content-Type': 'application/octet-stream' } });
    return { status: response.status, etag: response.headers.get('ETag'), text: await response.text() };
  };
  // (b) presigned POST: the policy fields, then the file, as multipart/form-data.
  window.uploadWithPost = async (url, fields, base64, filename) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(fields)) form.append(name, value);
    form.append('file', new Blob([bytesOf(base64)], { type: 'application/octet-stream' }), filename);
    const response = await fetch(url, { method: 'POST', body: form });
    return { status: response.status, etag: response.headers.get('ETag'), location: response.headers.get('Location'), text: await response.text() };
  };
  window.tryFetch = async (url, init) => {
    try {
      const response = await fetch(url, init);
      return { ok: true, status: response.status };
    } catch (error) {
      return { ok: false, error: String(error) };
    }
  };
</script>
</body></html>`;

function md5Hex(bytes: Buffer): string {
  return createHash('md5').update(bytes).digest('hex');
}

describe('browser uploads from another origin', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let key: CreatedKey;
  let pageServer: http.Server;
  let pageOrigin: string;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;

  beforeAll(async () => {
    upstream = await startS3rver();
    await upstream.createBucket(BUCKET);
    await upstream.createBucket(NO_CORS_BUCKET);
    gateway = await startGateway(upstreamEnv(upstream));
    await gateway.addBucket({ name: BUCKET });
    await gateway.addBucket({ name: NO_CORS_BUCKET });
    key = await gateway.createKey({ name: 'browser', permissions: ['read', 'write'] });

    // The page's origin differs from the gateway's by port: every upload is cross-origin.
    pageServer = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE_HTML);
    });
    await new Promise<void>((resolve) => pageServer.listen(0, '127.0.0.1', resolve));
    pageOrigin = `http://127.0.0.1:${(pageServer.address() as AddressInfo).port}`;

    const rules = await gateway.admin('PUT', `/v1/buckets/${BUCKET}/cors`, [
      { allowedOrigins: [pageOrigin], allowedMethods: ['PUT', 'POST', 'GET'], allowedHeaders: ['*'], exposeHeaders: ['ETag', 'Location'], maxAgeSeconds: 0 },
    ]);
    expect(rules.status).toBe(200);

    // launch() starts from a fresh temporary profile each time.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    context = await browser.newContext();
    page = await context.newPage();
    await page.goto(`${pageOrigin}/`);
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await new Promise((resolve) => (pageServer ? pageServer.close(resolve) : resolve(undefined)));
    await gateway?.stop();
    await upstream?.stop();
  });

  function accessLog(): Array<Record<string, unknown>> {
    return gateway
      .output()
      .split('\n')
      .filter((line) => line.startsWith('{') && line.includes('"type":"access"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('uploads with a presigned PUT URL after a real preflight, and reads the ETag', async () => {
    const bytes = randomBytes(200 * 1024);
    const issued = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${BUCKET}/put/from browser.bin`, method: 'PUT' });
    expect(issued.status).toBe(200);
    const preflightsBefore = accessLog().filter((r) => r.method === 'OPTIONS').length;

    const result = await page.evaluate(([url, base64]) => (globalThis as any).uploadWithPut(url, base64), [
      issued.json.url as string,
      bytes.toString('base64'),
    ] as const);
    expect(result.status, result.text).toBe(200);
    expect(result.etag).toBe(`"${md5Hex(bytes)}"`);

    // Access log lines are written in batches, a few ms after their request: poll.
    await expect.poll(() => accessLog().filter((r) => r.method === 'OPTIONS').length).toBeGreaterThan(preflightsBefore);
    const preflights = accessLog().filter((r) => r.method === 'OPTIONS');
    expect(preflights.at(-1)).toMatchObject({ status: 200, operation: 'PreflightRequest', bucket: BUCKET, accessKeyId: null });

    const stored = await upstream.request('GET', `/${BUCKET}/put/from%20browser.bin`);
    expect(stored.status).toBe(200);
    expect(stored.body.equals(bytes)).toBe(true);
  });

  it('uploads with a presigned POST form from createPresignedPost, and reads ETag and Location', async () => {
    const bytes = randomBytes(150 * 1024);
    const s3 = gatewayS3Client(gateway.url, key);
    const { url, fields } = await createPresignedPost(s3, {
      Bucket: BUCKET,
      Key: 'post/${filename}',
      Conditions: [['content-length-range', 1, 1024 * 1024]],
      Expires: 300,
    });
    s3.destroy();

    const result = await page.evaluate(([postUrl, postFields, base64]) => (globalThis as any).uploadWithPost(postUrl, postFields, base64, 'photo.jpg'), [
      url,
      fields,
      bytes.toString('base64'),
    ] as const);
    expect(result.status, result.text).toBe(204);
    expect(result.etag).toBe(`"${md5Hex(bytes)}"`);
    expect(result.location).toBe(`${gateway.url}/${BUCKET}/post/photo.jpg`);

    const stored = await upstream.request('GET', `/${BUCKET}/post/photo.jpg`);
    expect(stored.status).toBe(200);
    expect(stored.body.equals(bytes)).toBe(true);
  });

  it('is blocked by the browser when no CORS rule allows the page', async () => {
    const issued = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${NO_CORS_BUCKET}/blocked.bin`, method: 'PUT' });
    expect(issued.status).toBe(200);
    const result = await page.evaluate(
      (url) => (globalThis as any).tryFetch(url, { method: 'PUT', body: 'blocked', headers: { 'Content-Type': 'application/octet-stream' } }),
      issued.json.url as string,
    );
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/TypeError/);
    // The preflight failed, so the browser never sent the PUT.
    expect((await upstream.request('HEAD', `/${NO_CORS_BUCKET}/blocked.bin`)).status).toBe(404);
    await expect.poll(() => accessLog().some((r) => r.method === 'OPTIONS' && r.bucket === NO_CORS_BUCKET && r.status === 403)).toBe(true);

    // A GET from the page to the CORS-enabled bucket works, to the other one it does not.
    const allowedGet = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${BUCKET}/post/photo.jpg` });
    expect(await page.evaluate((url) => (globalThis as any).tryFetch(url), allowedGet.json.url as string)).toEqual({ ok: true, status: 200 });
    const blockedGet = await gateway.admin('POST', '/v1/presign', { accessKeyId: key.accessKeyId, target: `s3://${NO_CORS_BUCKET}/anything` });
    expect((await page.evaluate((url) => (globalThis as any).tryFetch(url), blockedGet.json.url as string)).ok).toBe(false);
  });
});
