/**
 * The dashboard end to end in headless Debian chromium (playwright-core): sign in by keyboard,
 * create keys from the pages and use their one-time secrets with the AWS SDK against the running
 * gateway, the objects browser, the CORS editor, presigned links, rotation, revocation taking
 * effect on the next S3 request, CSRF refusals, sign-out and session expiry. Pages are found by
 * their labels and roles, so unlabelled fields fail the test. Screenshots of every page go to
 * .ci/out/screenshots (the main ones are committed under docs/screenshots).
 */
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startGateway, upstreamEnv, type Gateway } from '../helpers/gateway.js';
import { gatewayS3Client } from '../helpers/sdk.js';
import { startFakeRunpodRest, type FakeRunpodRest } from '../helpers/fake-runpod-rest.js';
import { startMoto, type TestUpstream } from '../helpers/upstreams.js';

const CHROMIUM = '/usr/bin/chromium';
const BUCKET = 'team-data';
const OTHER_BUCKET = 'other-data';
const SCREENSHOTS = path.join(REPO_ROOT, '.ci/out/screenshots');
const BROWSER_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Text of the first match, once it is visible. */
async function textOf(locator: Locator): Promise<string> {
  await locator.first().waitFor({ state: 'visible', timeout: 10_000 });
  return locator.first().innerText();
}

/** Clicks something that navigates (a link, a form's submit button) and waits for the new page. */
async function clickThrough(locator: Locator): Promise<void> {
  await Promise.all([locator.page().waitForNavigation({ waitUntil: 'load' }), locator.click()]);
}

/** A full-page screenshot into SCREENSHOTS; one-time secrets are masked first (screenshots end up in the repository). */
async function screenshot(target: Page, name: string): Promise<void> {
  await target.locator('#secret-access-key, #env-block, #boto3-snippet').evaluateAll((elements) => {
    for (const element of elements) element.textContent = (element.textContent ?? '').replace(/rs_sk_[A-Za-z0-9_]+/g, 'rs_sk_live_••••••••••••••••');
  });
  await target.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

interface ShownSecret {
  accessKeyId: string;
  secretAccessKey: string;
  endpoint: string;
  region: string;
}

describe('dashboard in a real browser', () => {
  let upstream: TestUpstream;
  let gateway: Gateway;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let evilServer: http.Server;
  let evilOrigin: string;

  const shot = (name: string, target: Page = page) => screenshot(target, name);

  /** Reads the one-time secret page; the secret itself before any screenshot masks it. */
  const readSecretPage = async (): Promise<ShownSecret> => {
    expect(await textOf(page.getByRole('alert').first())).toContain('shown only once');
    const text = async (id: string) => ((await page.locator(`#${id}`).textContent()) ?? '').trim();
    return {
      accessKeyId: await text('access-key-id'),
      secretAccessKey: await text('secret-access-key'),
      endpoint: await text('endpoint'),
      region: await text('region'),
    };
  };

  const s3For = (secret: ShownSecret) =>
    gatewayS3Client(gateway.url, { accessKeyId: secret.accessKeyId, secretAccessKey: secret.secretAccessKey, region: secret.region });

  const statusOf = async (promise: Promise<unknown>): Promise<number> => {
    try {
      await promise;
      return 200;
    } catch (error) {
      return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? -1;
    }
  };

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    // moto, not s3rver: s3rver leaves folders holding only folders out of CommonPrefixes.
    upstream = await startMoto();
    await upstream.createBucket(BUCKET);
    await upstream.createBucket(OTHER_BUCKET);
    gateway = await startGateway(upstreamEnv(upstream));
    // A cross-site page that posts to the dashboard, as an attacker's page would.
    evilServer = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(`<!doctype html><form id="f" method="post" action="${gateway.adminUrl}/keys">
        <input name="name" value="planted-by-evil"><input name="permissions" value="admin"></form>
        <script>document.getElementById('f').submit()</script>`);
    });
    await new Promise<void>((resolve) => evilServer.listen(0, '127.0.0.1', resolve));
    evilOrigin = `http://127.0.0.1:${(evilServer.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
  });

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await new Promise((resolve) => evilServer?.close(resolve));
    await gateway?.stop();
    await upstream?.stop();
  });

  it('signs in with the admin token, by keyboard', async () => {
    await page.goto(`${gateway.adminUrl}/`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    await shot('signin');
    // The token field has focus on arrival: type and press Enter.
    await page.keyboard.type('not-the-admin-token-000000');
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    expect(await textOf(page.getByRole('alert'))).toContain('not the admin token');
    await page.getByLabel('Admin token').fill(gateway.adminToken);
    await page.getByLabel('Admin token').press('Enter');
    await page.waitForURL('**/storage');
    const cookie = (await context.cookies()).find((c) => c.name === 'keygate_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  });

  it('registers buckets and shows their routing', async () => {
    for (const name of [BUCKET, OTHER_BUCKET]) {
      await page.goto(`${gateway.adminUrl}/storage`);
      await page.getByLabel('Bucket name (as clients address it)').fill(name);
      await clickThrough(page.getByRole('button', { name: 'Register bucket' }));
      await page.waitForURL(`**/buckets/${name}`);
      expect(await textOf(page.getByRole('status'))).toContain(`Bucket ${name} is registered`);
    }
    await page.goto(`${gateway.adminUrl}/storage`);
    await page.getByRole('link', { name: BUCKET, exact: true }).first().waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page.locator('table').first())).toContain('default upstream · bucket team-data');
    // A second registration of the same name is refused with a message, not a crash.
    await page.getByLabel('Bucket name (as clients address it)').fill(BUCKET);
    await clickThrough(page.getByRole('button', { name: 'Register bucket' }));
    expect(await textOf(page.getByRole('alert'))).toContain('already registered');
  });

  let workspaceSecret: ShownSecret;

  it('creates a workspace key with flags and expiry; its one-time secret works with the SDK and is never shown again', async () => {
    await page.goto(`${gateway.adminUrl}/storage`);
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Create API key' }) });
    await form.getByLabel('Key name').fill('ci-uploader');
    await form.getByRole('checkbox', { name: /^write/ }).check();
    await form.getByLabel('Expires in (optional)').fill('30d');
    await clickThrough(form.getByRole('button', { name: 'Create API key' }));
    workspaceSecret = await readSecretPage();
    expect(workspaceSecret.accessKeyId).toMatch(/^rs_ak_/);
    expect(workspaceSecret.secretAccessKey).toMatch(/^rs_sk_/);
    expect(workspaceSecret.endpoint).toBe(gateway.env.KEYGATE_PUBLIC_URL ?? `http://localhost:${gateway.env.KEYGATE_PORT}`);
    expect(await textOf(page.locator('#boto3-snippet'))).toContain(workspaceSecret.secretAccessKey);
    await page.getByRole('button', { name: 'Copy Secret access key' }).first().waitFor({ state: 'visible', timeout: 10_000 });
    await shot('key-created');

    // Reloading the page (or going back to it) never shows the secret again.
    const secretUrl = page.url();
    await page.reload();
    expect(await textOf(page.getByRole('heading', { level: 1 }))).toBe('The secret is no longer shown');
    expect(await page.content()).not.toContain(workspaceSecret.secretAccessKey);
    await page.goto(secretUrl);
    expect(await page.content()).not.toContain(workspaceSecret.secretAccessKey);

    const s3 = s3For(workspaceSecret);
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'reports/2026/q1.txt', Body: 'first quarter' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'reports/2026/q2.txt', Body: 'second quarter' }));
    await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'readme.txt', Body: 'hello from the dashboard test' }));
    await s3.send(new PutObjectCommand({ Bucket: OTHER_BUCKET, Key: 'elsewhere.txt', Body: 'other' }));
    // It was given read and write, not delete.
    expect(await statusOf(s3.send(new DeleteObjectCommand({ Bucket: BUCKET, Key: 'readme.txt' })))).toBe(403);

    await page.goto(`${gateway.adminUrl}/storage`);
    const row = page.locator('tr', { hasText: workspaceSecret.accessKeyId });
    expect(await textOf(row)).toContain('read, write');
    await shot('storage');
  });

  let bucketSecret: ShownSecret;

  it('creates a per-bucket read-only key from the bucket page', async () => {
    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}`);
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Create bucket key' }) });
    await form.getByLabel('Key name').fill('dashboard-reader');
    await form.getByRole('radio', { name: /Read-only/ }).check();
    await clickThrough(form.getByRole('button', { name: 'Create bucket key' }));
    bucketSecret = await readSecretPage();
    const s3 = s3For(bucketSecret);
    const got = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: 'readme.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello from the dashboard test');
    expect(await statusOf(s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'nope.txt', Body: 'x' })))).toBe(403);
    expect(await statusOf(s3.send(new GetObjectCommand({ Bucket: OTHER_BUCKET, Key: 'elsewhere.txt' })))).toBe(403);
    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}`);
    expect(await textOf(page.locator('tr', { hasText: bucketSecret.accessKeyId }))).toContain('read');
    await shot('bucket-keys');
  });

  it('browses objects by folder, downloads through a presigned link, and deletes after confirmation', async () => {
    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}/objects`);
    await page.getByRole('link', { name: 'reports/' }).first().waitFor({ state: 'visible', timeout: 10_000 });
    expect(await textOf(page.locator('table'))).toContain('readme.txt');
    await clickThrough(page.getByRole('link', { name: 'reports/' }));
    await clickThrough(page.getByRole('link', { name: '2026/' }));
    expect(await textOf(page.locator('table'))).toContain('q1.txt');
    expect(await textOf(page.locator('table'))).toContain('q2.txt');
    await shot('objects');

    // Download: a POST (CSRF-protected) answered with a redirect to a short-lived presigned URL on
    // the S3 endpoint. Posted with the page's own form fields (the browser would follow the
    // redirect into a file download).
    const downloadForm = page.locator('form', { has: page.getByRole('button', { name: 'Download reports/2026/q1.txt' }) });
    const fields = { _csrf: await downloadForm.locator('input[name=_csrf]').inputValue(), key: await downloadForm.locator('input[name=key]').inputValue() };
    const redirect = await page.request.post(`${gateway.adminUrl}/buckets/${BUCKET}/objects/download`, {
      form: fields,
      maxRedirects: 0,
      headers: { origin: gateway.adminUrl },
    });
    expect(redirect.status()).toBe(303);
    const location = redirect.headers().location!;
    expect(location.startsWith(`${gateway.env.KEYGATE_PUBLIC_URL ?? gateway.url}/${BUCKET}/reports/2026/q1.txt?`), location).toBe(true);
    expect(location).toContain('X-Amz-Expires=60');
    expect(location).toContain(bucketSecret.accessKeyId); // the narrowest key that can read signs it
    const download = await page.request.get(location);
    expect(download.status()).toBe(200);
    expect(await download.text()).toBe('first quarter');
    // The same download as a GET (what another page on the same site could make the browser do) does nothing.
    expect((await page.request.get(`${gateway.adminUrl}/buckets/${BUCKET}/objects/download?key=readme.txt`, { maxRedirects: 0 })).status()).toBe(404);

    await clickThrough(page.getByRole('link', { name: 'Delete reports/2026/q2.txt' }));
    expect(await textOf(page.locator('.warning'))).toContain('reports/2026/q2.txt');
    await shot('object-delete-confirm');
    await clickThrough(page.getByRole('button', { name: 'Delete object' }));
    expect(await textOf(page.getByRole('status'))).toContain('Deleted reports/2026/q2.txt');
    expect(await statusOf(s3For(workspaceSecret).send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'reports/2026/q2.txt' })))).toBe(404);
    expect(await statusOf(s3For(workspaceSecret).send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'reports/2026/q1.txt' })))).toBe(200);
  });

  it('pages through a long listing', async () => {
    const s3 = s3For(workspaceSecret);
    await Promise.all(
      Array.from({ length: 105 }, (_, i) => s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `many/item-${String(i).padStart(3, '0')}`, Body: 'x' }))),
    );
    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}/objects?prefix=many%2F`);
    expect(await page.locator('tbody tr').count()).toBe(100);
    await clickThrough(page.getByRole('link', { name: 'Next page →' }));
    expect(await page.locator('tbody tr').count()).toBe(5);
    expect(await textOf(page.locator('table'))).toContain('item-104');
    await page.getByRole('link', { name: 'First page' }).first().waitFor({ state: 'visible', timeout: 10_000 });
  });

  it('edits CORS rules with validation, and the S3 listener answers preflights by them', async () => {
    const preflight = () =>
      fetch(`${gateway.url}/${BUCKET}/readme.txt`, {
        method: 'OPTIONS',
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'PUT' },
      });
    expect((await preflight()).status).toBe(403);

    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}/cors`);
    await page.getByLabel('Allowed origins').fill('https://*.*.example.com');
    await clickThrough(page.getByRole('button', { name: 'Add rule' }));
    expect(await textOf(page.getByRole('alert'))).toContain('more than one "*"');
    // What was typed is kept for correcting.
    expect(await page.getByLabel('Allowed origins').inputValue()).toBe('https://*.*.example.com');
    await page.getByLabel('Allowed origins').fill('https://app.example.com');
    await page.getByLabel('Max age in seconds (optional)').fill('600');
    await clickThrough(page.getByRole('button', { name: 'Add rule' }));
    expect(await textOf(page.getByRole('status'))).toContain('CORS rule added');
    expect(await textOf(page.locator('table'))).toContain('https://app.example.com');
    await shot('cors');
    const allowed = await preflight();
    expect(allowed.status).toBe(200);
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');

    // The JSON editor round-trips what the form made, and refuses invalid JSON with the text kept.
    const document = await page.getByLabel('Rules (JSON)').inputValue();
    expect(JSON.parse(document)).toEqual([{ allowedOrigins: ['https://app.example.com'], allowedMethods: ['GET', 'PUT'], maxAgeSeconds: 600 }]);
    await page.getByLabel('Rules (JSON)').fill('[{"allowedOrigins": ["https://a.example"], ');
    await clickThrough(page.getByRole('button', { name: 'Save rules' }));
    expect(await textOf(page.getByRole('alert'))).toContain('not valid JSON');
    expect(await page.getByLabel('Rules (JSON)').inputValue()).toBe('[{"allowedOrigins": ["https://a.example"], ');

    await page.getByLabel('Rules (JSON)').fill(JSON.stringify({ rules: [{ allowedOrigins: ['https://b.example'], allowedMethods: ['GET'] }] }));
    await clickThrough(page.getByRole('button', { name: 'Save rules' }));
    expect(await textOf(page.getByRole('status'))).toContain('CORS rules saved');
    expect((await gateway.admin('GET', `/v1/buckets/${BUCKET}/cors`)).json.rules).toEqual([{ allowedOrigins: ['https://b.example'], allowedMethods: ['GET'] }]);
    expect((await preflight()).status).toBe(403);

    await clickThrough(page.getByRole('button', { name: 'Remove rule 1' }));
    await page.getByText('No CORS rules').first().waitFor({ state: 'visible', timeout: 10_000 });
  });

  it('issues presigned links', async () => {
    await page.goto(`${gateway.adminUrl}/buckets/${BUCKET}/links`);
    await page.getByLabel('Sign with key').selectOption(workspaceSecret.accessKeyId);
    await page.getByLabel('Object key').fill('readme.txt');
    await page.getByLabel('Expires in').fill('5m');
    await clickThrough(page.getByRole('button', { name: 'Create link' }));
    const url = ((await page.locator('#presigned-url').textContent()) ?? '').trim();
    expect(url).toContain('X-Amz-Expires=300');
    await shot('presigned-link');
    expect(await (await fetch(url)).text()).toBe('hello from the dashboard test');
    // A read-only key cannot be made to presign an upload.
    await page.getByLabel('Sign with key').selectOption(bucketSecret.accessKeyId);
    await page.getByLabel('Allows').selectOption('PUT');
    await clickThrough(page.getByRole('button', { name: 'Create link' }));
    expect(await textOf(page.getByRole('alert'))).toContain('may not PUT');
  });

  it('rotates a key: the twin has the same scope and works at once', async () => {
    await page.goto(`${gateway.adminUrl}/keys/${bucketSecret.accessKeyId}`);
    await shot('key');
    await clickThrough(page.getByRole('button', { name: 'Rotate: create a twin' }));
    const twin = await readSecretPage();
    expect(twin.accessKeyId).not.toBe(bucketSecret.accessKeyId);
    await page.getByText('This key replaces').first().waitFor({ state: 'visible', timeout: 10_000 });
    const listed = (await gateway.admin('GET', `/v1/keys/${twin.accessKeyId}`)).json;
    expect(listed).toMatchObject({ name: 'dashboard-reader', bucket: BUCKET, permissions: ['read'] });
    const got = await s3For(twin).send(new GetObjectCommand({ Bucket: BUCKET, Key: 'readme.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello from the dashboard test');
  });

  it('revokes a key after confirmation; its next S3 request is refused', async () => {
    const s3 = s3For(workspaceSecret);
    expect((await s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1 }))).KeyCount).toBe(1);
    await page.goto(`${gateway.adminUrl}/keys/${workspaceSecret.accessKeyId}`);
    await clickThrough(page.getByRole('link', { name: 'Revoke this key…' }));
    await shot('revoke-confirm');
    await clickThrough(page.getByRole('button', { name: 'Revoke ci-uploader' }));
    expect(await textOf(page.getByRole('status'))).toContain('is revoked');
    expect(await statusOf(s3.send(new ListObjectsV2Command({ Bucket: BUCKET, MaxKeys: 1 })))).toBe(403);
    expect((await gateway.admin('GET', `/v1/keys/${workspaceSecret.accessKeyId}`)).status).toBe(404);
  });

  it('refuses cross-site form posts and posts without the CSRF token', async () => {
    const before = (await gateway.admin('GET', '/v1/keys')).json.length;
    // An attacker's page auto-submits a form to the dashboard in the signed-in browser.
    const evilPage = await context.newPage();
    const answer = evilPage.waitForResponse((response) => response.url() === `${gateway.adminUrl}/keys`);
    await evilPage.goto(`${evilOrigin}/`);
    expect((await answer).status()).toBe(403);
    await evilPage.close();
    // Same origin, live session, but no token / a wrong token.
    for (const body of ['name=no-token&permissions=read', 'name=bad-token&permissions=read&_csrf=AAAA']) {
      const status = await page.evaluate(
        async (form) => (await fetch('/keys', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form })).status,
        body,
      );
      expect(status).toBe(403);
    }
    const keys = (await gateway.admin('GET', '/v1/keys')).json;
    expect(keys.length).toBe(before);
    expect(keys.map((k: { name: string }) => k.name)).not.toContain('planted-by-evil');
  });

  it('works without JavaScript: create and revoke a key', async () => {
    const noJs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 390, height: 844 } });
    try {
      const p = await noJs.newPage();
      await p.goto(`${gateway.adminUrl}/signin`);
      await p.getByLabel('Admin token').fill(gateway.adminToken);
      await clickThrough(p.getByRole('button', { name: 'Sign in' }));
      await p.waitForURL('**/storage');
      await shot('storage-phone', p);
      const form = p.locator('form', { has: p.getByRole('button', { name: 'Create API key' }) });
      await form.getByLabel('Key name').fill('no-js-key');
      await clickThrough(form.getByRole('button', { name: 'Create API key' }));
      const id = ((await p.locator('#access-key-id').textContent()) ?? '').trim();
      expect(id).toMatch(/^rs_ak_/);
      // Without JavaScript the copy buttons stay hidden; the values are plain text to select.
      await p.getByRole('button', { name: 'Copy Secret access key' }).waitFor({ state: 'hidden', timeout: 10_000 });
      await p.goto(`${gateway.adminUrl}/keys/${id}/revoke`);
      await clickThrough(p.getByRole('button', { name: 'Revoke no-js-key' }));
      await p.waitForURL('**/storage');
      expect((await gateway.admin('GET', `/v1/keys/${id}`)).status).toBe(404);
    } finally {
      await noJs.close();
    }
  });

  it('signs out: the session is gone for every page and form', async () => {
    const csrf = await page.locator('input[name=_csrf]').first().inputValue();
    await clickThrough(page.getByRole('button', { name: 'Sign out' }));
    await page.waitForURL('**/signin?why=signed-out');
    expect(await textOf(page.getByRole('status'))).toContain('signed out');
    await page.goto(`${gateway.adminUrl}/storage`);
    expect(new URL(page.url()).pathname).toBe('/signin');
    // The old token and cookie-less posts do nothing.
    const status = await page.evaluate(
      async (token) =>
        (
          await fetch('/keys', {
            method: 'POST',
            headers: { 'content-type': 'application/x-www-form-urlencoded' },
            body: `name=after-signout&permissions=read&_csrf=${token}`,
          })
        ).status,
      csrf,
    );
    expect(status).toBe(403);
  });

  it('ends idle sessions', async () => {
    const idle = await startGateway({ ...upstreamEnv(upstream), KEYGATE_DASHBOARD_IDLE_TIMEOUT_MS: '1500' });
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      await p.goto(`${idle.adminUrl}/signin`);
      await p.getByLabel('Admin token').fill(idle.adminToken);
      await clickThrough(p.getByRole('button', { name: 'Sign in' }));
      await p.waitForURL('**/storage');
      await p.reload();
      expect(new URL(p.url()).pathname).toBe('/storage');
      await new Promise((resolve) => setTimeout(resolve, 2000));
      await p.reload();
      expect(new URL(p.url()).pathname).toBe('/signin');
      expect(await textOf(p.getByRole('status'))).toContain('session has ended');
    } finally {
      await ctx.close();
      await idle.stop();
    }
  });
});

describe('dashboard: buckets on RunPod', () => {
  const API_KEY = 'rpa_dashboard_test_key_0a1b2c3d4e5f';
  let moto: TestUpstream;
  let rest: FakeRunpodRest;
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    moto = await startMoto();
    rest = await startFakeRunpodRest({ apiKey: API_KEY, datacenters: { 'EU-RO-1': moto, 'US-KS-2': moto } });
    gateway = await startGateway({
      RUNPOD_API_KEY: API_KEY,
      KEYGATE_RUNPOD_REST_URL: `${rest.url}/v2`,
      KEYGATE_RUNPOD_ENDPOINTS: JSON.stringify({ 'EU-RO-1': moto.endpoint, 'US-KS-2': moto.endpoint }),
      RUNPOD_S3_ACCESS_KEY: moto.accessKeyId,
      RUNPOD_S3_SECRET_KEY: moto.secretAccessKey,
      KEYGATE_RUNPOD_DEFAULT_DATACENTER: 'US-KS-2',
      KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE: '1',
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: BROWSER_ARGS });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
    await page.goto(`${gateway.adminUrl}/signin`);
    await page.getByLabel('Admin token').fill(gateway.adminToken);
    await clickThrough(page.getByRole('button', { name: 'Sign in' }));
  });

  afterAll(async () => {
    await browser?.close();
    await gateway?.stop();
    await rest?.stop();
    await moto?.stop();
  });

  it('creates a bucket as a network volume, with the same rules as S3 CreateBucket', async () => {
    await page.goto(`${gateway.adminUrl}/storage`);
    const form = page.locator('form', { has: page.getByRole('button', { name: 'Create bucket' }) });
    expect(await form.getByLabel('Datacenter').inputValue()).toBe('US-KS-2'); // KEYGATE_RUNPOD_DEFAULT_DATACENTER
    await form.getByLabel('Bucket name').fill('Not_A_Bucket');
    await clickThrough(form.getByRole('button', { name: 'Create bucket' }));
    expect(await textOf(page.getByRole('alert'))).toMatch(/bucket name/i);
    expect(rest.changes()).toEqual([]);

    await page.goto(`${gateway.adminUrl}/storage`);
    await screenshot(page, 'storage-runpod');
    await form.getByLabel('Bucket name').fill('team-volume');
    await form.getByLabel('Datacenter').selectOption('EU-RO-1');
    await clickThrough(form.getByRole('button', { name: 'Create bucket' }));
    expect(new URL(page.url()).pathname).toBe('/buckets/team-volume');
    expect(await textOf(page.getByRole('status'))).toContain('Bucket team-volume is created');
    const posts = rest.changes().filter((call) => call.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.path).toBe('/v2/network-volumes');
    expect(posts[0]!.authorization).toBe(`Bearer ${API_KEY}`);
    expect(posts[0]!.body).toMatchObject({ size: 10, dataCenter: 'EU-RO-1' });
    expect(await textOf(page.locator('main p.muted'))).toContain('RunPod EU-RO-1');

    // The new bucket works for a key made on its page at once.
    const keyForm = page.locator('form', { has: page.getByRole('button', { name: 'Create bucket key' }) });
    await keyForm.getByLabel('Key name').fill('volume-writer');
    await keyForm.getByRole('radio', { name: /Read & Write/ }).check();
    await clickThrough(keyForm.getByRole('button', { name: 'Create bucket key' }));
    const secret = {
      accessKeyId: (await page.locator('#access-key-id').innerText()).trim(),
      secretAccessKey: (await page.locator('#secret-access-key').innerText()).trim(),
      region: (await page.locator('#region').innerText()).trim(),
    };
    const s3 = gatewayS3Client(gateway.url, secret);
    await s3.send(new PutObjectCommand({ Bucket: 'team-volume', Key: 'hello.txt', Body: 'on a volume' }));
    expect(await (await s3.send(new GetObjectCommand({ Bucket: 'team-volume', Key: 'hello.txt' }))).Body!.transformToString()).toBe('on a volume');
    s3.destroy();
  });

  it('deletes the bucket and its volume only when empty, after the name is typed', async () => {
    await page.goto(`${gateway.adminUrl}/buckets/team-volume/settings`);
    await screenshot(page, 'bucket-settings');
    await page.getByLabel(/Type the bucket name/).fill('team-volum');
    await clickThrough(page.getByRole('button', { name: 'Delete bucket and volume' }));
    expect(await textOf(page.getByRole('alert'))).toContain('Type the bucket name');
    await page.getByLabel(/Type the bucket name/).fill('team-volume');
    await clickThrough(page.getByRole('button', { name: 'Delete bucket and volume' }));
    expect(await textOf(page.getByRole('alert'))).toMatch(/not empty/i);
    expect(rest.changes().filter((call) => call.method === 'DELETE')).toEqual([]);

    await page.goto(`${gateway.adminUrl}/buckets/team-volume/objects`);
    await clickThrough(page.getByRole('link', { name: 'Delete hello.txt' }));
    await clickThrough(page.getByRole('button', { name: 'Delete object' }));
    await page.goto(`${gateway.adminUrl}/buckets/team-volume/settings`);
    await page.getByLabel(/Type the bucket name/).fill('team-volume');
    await clickThrough(page.getByRole('button', { name: 'Delete bucket and volume' }));
    expect(new URL(page.url()).pathname).toBe('/storage');
    expect(await textOf(page.getByRole('status'))).toContain('network volume are deleted');
    const deletes = rest.changes().filter((call) => call.method === 'DELETE');
    expect(deletes).toHaveLength(1);
    expect(deletes[0]!.path).toMatch(/^\/v2\/network-volumes\/[^/]+$/);
    expect((await gateway.admin('GET', '/v1/buckets')).json.map((b: { name: string }) => b.name)).not.toContain('team-volume');
  });
});
