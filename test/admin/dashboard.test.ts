/**
 * The dashboard's security rules, in process and as an attacker would probe them: sessions and
 * their expiry, CSRF (token and origin), the cookie's flags, headers on every page, hostile form
 * bodies, escaping of stored names, and the separation from the bearer-token API.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Hono } from 'hono';
import { createAdminApp } from '../../src/http/admin.js';
import { SESSION_COOKIE } from '../../src/http/dashboard/app.js';
import { ONE_TIME_VIEW_MS, SessionStore, csrfTokenMatches } from '../../src/http/dashboard/session.js';
import { openStore, type Store } from '../../src/store/open.js';
import type { UpstreamTarget } from '../../src/upstream/target.js';
import { TEST_MASTER_KEY_HEX, configFor, makeTempDirs } from '../helpers/keygate-cli.js';

const TOKEN = 'admin-test-token-0123456789abcdef';
const ORIGIN = 'http://admin.test';
const IDLE_MS = 60_000;

const dirs = makeTempDirs();
let store: Store;
let app: Hono;
let clock: number;

const unusedResolver = {
  resolve: async () => null,
  listBuckets: async () => (await store.buckets.list()).map((bucket) => ({ name: bucket.name, createdAt: bucket.createdAt })),
};
const unusedObjects = {
  list: async () => {
    throw new Error('not used');
  },
  delete: async () => {},
};

beforeEach(async () => {
  clock = 1_000_000;
  const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX, KEYGATE_PUBLIC_URL: 'https://s3.example.test' });
  store = await openStore(config);
  app = createAdminApp({
    config,
    store,
    adminToken: TOKEN,
    dashboard: { resolver: unusedResolver, objects: unusedObjects, lifecycle: null, idleTimeoutMs: IDLE_MS, now: () => clock },
  });
});
afterEach(async () => {
  await store.close();
  dirs.cleanup();
});

interface Sent {
  status: number;
  headers: Headers;
  text: string;
}

async function send(method: string, path: string, options: { cookie?: string; form?: string; headers?: Record<string, string> } = {}): Promise<Sent> {
  const headers: Record<string, string> = { host: 'admin.test', ...options.headers };
  if (options.cookie !== undefined) headers.cookie = `${SESSION_COOKIE}=${options.cookie}`;
  if (options.form !== undefined) {
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
    headers.origin ??= ORIGIN;
  }
  const response = await app.request(`${ORIGIN}${path}`, { method, headers, body: options.form });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function signIn(): Promise<{ cookie: string; csrf: string }> {
  const response = await send('POST', '/signin', { form: `token=${TOKEN}` });
  expect(response.status).toBe(303);
  const cookie = /keygate_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')![1]!;
  const page = await send('GET', '/storage', { cookie });
  const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
  return { cookie, csrf };
}

/** An admin app on `onStore` whose dashboard routes buckets with `resolve`, and a signed-in session id for it. */
async function signedInWithResolver(
  onStore: Store,
  config: ReturnType<typeof configFor>,
  resolve: (name: string) => Promise<UpstreamTarget | null>,
): Promise<{ app: Hono; id: string }> {
  const app = createAdminApp({
    config,
    store: onStore,
    adminToken: TOKEN,
    dashboard: { resolver: { resolve, listBuckets: async () => [] }, objects: unusedObjects, lifecycle: null, idleTimeoutMs: IDLE_MS, now: () => clock },
  });
  const signedIn = await app.request(`${ORIGIN}/signin`, {
    method: 'POST',
    headers: { host: 'admin.test', origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' },
    body: `token=${TOKEN}`,
  });
  return { app, id: /keygate_session=([^;]+)/.exec(signedIn.headers.get('set-cookie')!)![1]! };
}

describe('sessions', () => {
  it('signs in with the admin token only, and sets an HttpOnly SameSite=Strict cookie', async () => {
    for (const token of ['', 'wrong-token-0000000000000000', TOKEN.slice(0, -1), `${TOKEN}x`]) {
      const response = await send('POST', '/signin', { form: `token=${encodeURIComponent(token)}` });
      expect(response.status).toBe(401);
      expect(response.headers.get('set-cookie')).toBeNull();
    }
    const response = await send('POST', '/signin', { form: `token=${TOKEN}` });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/storage');
    const cookie = response.headers.get('set-cookie')!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toMatch(/Secure/);
    expect(cookie).toMatch(/Path=\//);
  });

  it('marks the cookie Secure when served over https', async () => {
    const response = await send('POST', '/signin', { form: `token=${TOKEN}`, headers: { 'x-forwarded-proto': 'https', origin: 'https://admin.test' } });
    expect(response.headers.get('set-cookie')).toMatch(/Secure/);
  });

  it('sends pages to sign-in without a session, and refuses state changes', async () => {
    const page = await send('GET', '/storage');
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/signin');
    const forged = await send('GET', '/storage', { cookie: 'A'.repeat(43) });
    expect(forged.headers.get('location')).toBe('/signin?why=expired');
    const post = await send('POST', '/keys', { form: 'name=x&permissions=read' });
    expect(post.status).toBe(403);
    expect(await store.keys.list()).toEqual([]);
  });

  it('ends a session after the idle timeout, and on sign-out', async () => {
    const { cookie, csrf } = await signIn();
    clock += IDLE_MS - 1;
    expect((await send('GET', '/storage', { cookie })).status).toBe(200);
    clock += IDLE_MS - 1; // used just now, so still alive
    expect((await send('GET', '/storage', { cookie })).status).toBe(200);
    clock += IDLE_MS;
    const expired = await send('GET', '/storage', { cookie });
    expect(expired.status).toBe(303);
    expect(expired.headers.get('location')).toBe('/signin?why=expired');

    const second = await signIn();
    expect((await send('POST', '/signout', { cookie: second.cookie, form: `_csrf=${second.csrf}` })).status).toBe(303);
    expect((await send('GET', '/storage', { cookie: second.cookie })).status).toBe(303);
    expect((await send('POST', '/keys', { cookie: second.cookie, form: `name=x&permissions=read&_csrf=${second.csrf}` })).status).toBe(403);
    expect((await send('POST', '/keys', { cookie, form: `name=x&permissions=read&_csrf=${csrf}` })).status).toBe(403);
    expect(await store.keys.list()).toEqual([]);
  });

  it('issues a new session at every sign-in (no fixation)', async () => {
    const first = await signIn();
    const response = await send('POST', '/signin', { cookie: first.cookie, form: `token=${TOKEN}` });
    const next = /keygate_session=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')![1]!;
    expect(next).not.toBe(first.cookie);
    expect((await send('GET', '/storage', { cookie: first.cookie })).status).toBe(303);
  });

  it('tries every session cookie presented: one tossed in by a sibling site hides nothing', async () => {
    const { cookie } = await signIn();
    const response = await app.request(`${ORIGIN}/storage`, {
      headers: { host: 'admin.test', cookie: `${SESSION_COOKIE}=${'B'.repeat(43)}; ${SESSION_COOKIE}=${cookie}` },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('set-cookie')).toBeNull();
  });

  it('over https, names the cookie __Host- (Secure, host-only) and expects it under that name', async () => {
    const https = { 'x-forwarded-proto': 'https', origin: 'https://admin.test' };
    const response = await send('POST', '/signin', { form: `token=${TOKEN}`, headers: https });
    const setCookie = response.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/^__Host-keygate_session=[^;]+;.*Secure/);
    const id = /__Host-keygate_session=([^;]+)/.exec(setCookie)![1]!;
    const page = await app.request(`${ORIGIN}/storage`, {
      headers: { host: 'admin.test', 'x-forwarded-proto': 'https', cookie: `__Host-keygate_session=${id}` },
    });
    expect(page.status).toBe(200);
    // The plain name is not accepted over https.
    expect(
      (await app.request(`${ORIGIN}/storage`, { headers: { host: 'admin.test', 'x-forwarded-proto': 'https', cookie: `keygate_session=${id}` } })).status,
    ).toBe(303);
  });

  it('pauses sign-in after 10 wrong tokens a minute, even for the right token, then recovers', async () => {
    for (let i = 0; i < 10; i++) expect((await send('POST', '/signin', { form: 'token=wrong-token-0000000000000000' })).status).toBe(401);
    const paused = await send('POST', '/signin', { form: `token=${TOKEN}` });
    expect(paused.status).toBe(429);
    expect(Number(paused.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(paused.headers.get('set-cookie')).toBeNull();
    clock += 61_000;
    expect((await send('POST', '/signin', { form: `token=${TOKEN}` })).status).toBe(303);
  });

  it('does not use up the one-time secret on HEAD or on another key id', async () => {
    const { cookie, csrf } = await signIn();
    const created = await send('POST', '/keys', { cookie, form: `name=ok&permissions=read&_csrf=${csrf}` });
    const location = created.headers.get('location')!;
    expect((await send('HEAD', location, { cookie })).status).toBe(200);
    const handle = new URL(location, ORIGIN).searchParams.get('once');
    expect((await send('GET', `/keys/rs_ak_live_0000000000000000000000000000000000000000/secret?once=${handle}`, { cookie })).status).toBe(410);
    const shown = await send('GET', location, { cookie });
    expect(shown.status).toBe(200);
    expect(shown.text).toContain('rs_sk_');
  });

  it('SessionStore: one-time values are taken once, within their window', () => {
    let now = 0;
    const sessions = new SessionStore({ idleTimeoutMs: 10 * ONE_TIME_VIEW_MS, now: () => now });
    const { id, session } = sessions.create();
    const handle = sessions.keepOnce(session, 'secret');
    expect(sessions.takeOnce(session, handle)).toBe('secret');
    expect(sessions.takeOnce(session, handle)).toBeNull();
    const late = sessions.keepOnce(session, 'late');
    now += ONE_TIME_VIEW_MS;
    expect(sessions.takeOnce(session, late)).toBeNull();
    expect(sessions.takeOnce(session, undefined)).toBeNull();
    expect(sessions.get(id)).toBe(session);
    expect(csrfTokenMatches(session, session.csrfToken)).toBe(true);
    for (const bad of [undefined, '', 'x', session.csrfToken.slice(1), `${session.csrfToken}x`, ['a']]) expect(csrfTokenMatches(session, bad)).toBe(false);
  });

  it('SessionStore: bounded, and sessions end after their maximum lifetime even when used', () => {
    let now = 0;
    const sessions = new SessionStore({ idleTimeoutMs: 1000, maxLifetimeMs: 5000, maxSessions: 3, now: () => now });
    const ids = Array.from({ length: 5 }, () => sessions.create().id);
    expect(ids.map((id) => sessions.get(id) !== null)).toEqual([false, false, true, true, true]);
    for (let t = 0; t < 5; t++) {
      now += 900;
      expect(sessions.get(ids[4])).not.toBeNull();
    }
    now += 600;
    expect(sessions.get(ids[4])).toBeNull();
  });
});

describe('CSRF', () => {
  it('refuses posts without the token, with a wrong one, or with another session’s', async () => {
    const { cookie, csrf } = await signIn();
    const other = await signIn();
    for (const form of [
      'name=a&permissions=read',
      'name=a&permissions=read&_csrf=',
      `name=a&permissions=read&_csrf=${csrf.slice(0, -1)}${csrf.endsWith('A') ? 'B' : 'A'}`,
      `name=a&permissions=read&_csrf=${other.csrf}`,
    ]) {
      expect((await send('POST', '/keys', { cookie, form })).status, form).toBe(403);
    }
    expect(await store.keys.list()).toEqual([]);
    expect((await send('POST', '/keys', { cookie, form: `name=a&permissions=read&_csrf=${csrf}` })).status).toBe(303);
    expect((await store.keys.list()).map((key) => key.name)).toEqual(['a']);
  });

  it('refuses posts from another origin even with a valid token', async () => {
    const { cookie, csrf } = await signIn();
    const form = `name=a&permissions=read&_csrf=${csrf}`;
    const hostile: Array<Record<string, string>> = [
      { origin: 'http://evil.test' },
      { origin: 'null' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'http://admin.test.evil.test' },
    ];
    for (const headers of hostile) {
      expect((await send('POST', '/keys', { cookie, form, headers })).status, JSON.stringify(headers)).toBe(403);
    }
    // Sign-in from another site is refused too (login CSRF).
    expect((await send('POST', '/signin', { form: `token=${TOKEN}`, headers: { origin: 'http://evil.test' } })).status).toBe(403);
    expect(await store.keys.list()).toEqual([]);
  });

  it('accepts only URL-encoded forms with the fields the form has, within the size limit', async () => {
    const { cookie, csrf } = await signIn();
    const multipart = await send('POST', '/keys', {
      cookie,
      form: `--b\r\ncontent-disposition: form-data; name="_csrf"\r\n\r\n${csrf}\r\n--b\r\ncontent-disposition: form-data; name="name"\r\n\r\nx\r\n--b--\r\n`,
      headers: { 'content-type': 'multipart/form-data; boundary=b' },
    });
    expect(multipart.status).toBe(403);
    expect((await send('POST', '/keys', { cookie, form: `name=a&permissions=read&bucket=&isAdmin=1&_csrf=${csrf}` })).status).toBe(400);
    const huge = await send('POST', '/keys', { cookie, form: `name=${'a'.repeat(70 * 1024)}&_csrf=${csrf}` });
    expect(huge.status).toBe(413);
    expect(await store.keys.list()).toEqual([]);
  });

  it('answers a token of the right length in characters but not in bytes with 403, not a crash', async () => {
    const { cookie, csrf } = await signIn();
    const response = await send('POST', '/signout', { cookie, form: `_csrf=${encodeURIComponent('é'.repeat(csrf.length))}` });
    expect(response.status).toBe(403);
    expect((await send('GET', '/storage', { cookie })).status).toBe(200);
  });

  it('refuses an Origin whose scheme is not the one the dashboard is served with', async () => {
    const { cookie, csrf } = await signIn();
    const response = await send('POST', '/keys', { cookie, form: `name=a&permissions=read&_csrf=${csrf}`, headers: { origin: 'https://admin.test' } });
    expect(response.status).toBe(403);
    expect(await store.keys.list()).toEqual([]);
  });

  it('refuses fields a form does not have on every state change', async () => {
    const { cookie, csrf } = await signIn();
    expect((await send('POST', '/signout', { cookie, form: `_csrf=${csrf}&_method=DELETE` })).status).toBe(400);
    expect((await send('GET', '/storage', { cookie })).status).toBe(200);
  });

  it('allows only GET, HEAD and POST', async () => {
    const { cookie, csrf } = await signIn();
    for (const method of ['PUT', 'DELETE', 'PATCH']) {
      expect((await send(method, '/keys', { cookie, form: `name=a&permissions=read&_csrf=${csrf}` })).status).toBe(403);
    }
  });
});

describe('pages', () => {
  it('sends a strict CSP and no-cache, no-frame, no-sniff headers on every page', async () => {
    const { cookie } = await signIn();
    for (const path of ['/signin', '/storage', '/no/such/page', '/keys/rs_ak_live_0000000000000000000000000000000000000000']) {
      const response = await send('GET', path, { cookie });
      const csp = response.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).toContain("form-action 'self'");
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('x-frame-options')).toBe('DENY');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.text).not.toMatch(/<script>|<style>| on[a-z]+="/i);
    }
    const css = await send('GET', '/assets/dashboard.css');
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
  });

  it('escapes names from the store and paths from the request', async () => {
    const { cookie, csrf } = await signIn();
    const name = '<img src=x onerror=alert(1)>"\'&';
    expect((await send('POST', '/keys', { cookie, form: `name=${encodeURIComponent(name)}&permissions=read&_csrf=${csrf}` })).status).toBe(303);
    const page = await send('GET', '/storage', { cookie });
    expect(page.text).not.toContain('<img src=x');
    expect(page.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    const missing = await send('GET', '/buckets/%3Cscript%3Ealert(1)%3C%2Fscript%3E', { cookie });
    expect(missing.status).toBe(404);
    expect(missing.text).not.toContain('<script>alert');
  });

  it('shows a key-creation error with the values kept, and never a secret twice', async () => {
    const { cookie, csrf } = await signIn();
    const bad = await send('POST', '/keys', { cookie, form: `name=kept-name&permissions=read&expiresIn=forever&_csrf=${csrf}` });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('is not a lifetime');
    expect(bad.text).toContain('value="kept-name"');
    const created = await send('POST', '/keys', { cookie, form: `name=ok&permissions=read&permissions=write&expiresIn=1d&_csrf=${csrf}` });
    const location = created.headers.get('location')!;
    const shown = await send('GET', location, { cookie });
    const [key] = await store.keys.list();
    expect(key).toMatchObject({ name: 'ok', permissions: ['read', 'write'] });
    const secret = /id="secret-access-key"[^>]*>\s*([^<\s]+)/.exec(shown.text)![1]!;
    expect(secret).toMatch(/^rs_sk_/);
    expect((await store.keys.findWithSecret(key!.accessKeyId))!.secretAccessKey).toBe(secret);
    const again = await send('GET', location, { cookie });
    expect(again.status).toBe(410);
    expect(again.text).not.toContain(secret);
    // Another session cannot take it either.
    const other = await signIn();
    const handle = new URL(location, ORIGIN).searchParams.get('once');
    expect((await send('GET', `/keys/${key!.accessKeyId}/secret?once=${handle}`, { cookie: other.cookie })).text).not.toContain(secret);
  });

  it('answers names no bucket can have with 404, without asking the resolver, and downloads only by POST', async () => {
    const { cookie } = await signIn();
    let resolved = 0;
    const { app: counting, id } = await signedInWithResolver(store, configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX }), async () => {
      resolved++;
      return null;
    });
    for (const name of ['photos%3Fdelete', 'UPPER', 'a', 'x'.repeat(64), '..', 'a%2Fb', '%00abc']) {
      const response = await counting.request(`${ORIGIN}/buckets/${name}/objects`, { headers: { host: 'admin.test', cookie: `${SESSION_COOKIE}=${id}` } });
      expect(response.status, name).toBe(404);
    }
    expect(resolved).toBe(0);
    expect((await send('GET', '/buckets/some-bucket/objects/download?key=a.txt', { cookie })).status).toBe(404);
  });

  it('routes as of each page request: a bucket removed by another process since the last S3 request has no route', async () => {
    const config = configFor(dirs.make(), { KEYGATE_MASTER_KEY: TEST_MASTER_KEY_HEX });
    const own = await openStore(config);
    const cli = await openStore(config); // another connection to the same database, as the CLI is
    try {
      await own.buckets.add({ name: 'moved-away', endpoint: 'http://old.example', region: 'us-east-1' });
      // An S3 request routed it: its record is cached as of that request.
      await own.beginRequest();
      expect(own.buckets.findForRouting('moved-away')).not.toBeNull();
      await cli.buckets.remove('moved-away');
      // The resolver reads the registry as the S3 path does (findForRouting, no refresh of its own).
      const { app: routed, id } = await signedInWithResolver(own, config, async (name) => {
        const record = own.buckets.findForRouting(name);
        return record === null ? null : ({ kind: 'generic', datacenter: null, endpoint: new URL(record.endpoint!), bucket: name } as unknown as UpstreamTarget);
      });
      const page = await routed.request(`${ORIGIN}/buckets/moved-away`, { headers: { host: 'admin.test', cookie: `${SESSION_COOKIE}=${id}` } });
      expect(page.status).toBe(404);
      expect(await page.text()).not.toContain('old.example');
    } finally {
      await cli.close();
      await own.close();
    }
  });

  it('disables and enables a key from its page, through the store', async () => {
    const { cookie, csrf } = await signIn();
    const created = await store.keys.create({ name: 'pausable', permissions: ['read'] });
    const before = await send('GET', `/keys/${created.accessKeyId}`, { cookie });
    expect(before.text).toContain('Disable this key');
    const disabled = await send('POST', `/keys/${created.accessKeyId}/disable`, { cookie, form: `_csrf=${csrf}` });
    expect(disabled.status).toBe(303);
    expect((await store.keys.get(created.accessKeyId))!.disabledAt).not.toBeNull();
    const page = await send('GET', `/keys/${created.accessKeyId}`, { cookie });
    expect(page.text).toContain('is disabled: its next request is refused');
    expect(page.text).toMatch(/disabled since \d{4}-/);
    expect(page.text).toContain('Enable this key');
    expect((await send('GET', '/storage', { cookie })).text).toMatch(/disabled since/);
    expect((await send('POST', `/keys/${created.accessKeyId}/enable`, { cookie, form: `_csrf=${csrf}` })).status).toBe(303);
    expect((await store.keys.get(created.accessKeyId))!.disabledAt).toBeNull();
    // Without the token nothing changes.
    expect((await send('POST', `/keys/${created.accessKeyId}/disable`, { cookie, form: '' })).status).toBe(403);
    expect((await store.keys.get(created.accessKeyId))!.disabledAt).toBeNull();
    expect((await send('POST', '/keys/rs_ak_live_0000000000000000000000000000000000000000/disable', { cookie, form: `_csrf=${csrf}` })).status).toBe(404);
  });

  it('keeps the API on the bearer token: a session cookie opens no API route, the token opens no page', async () => {
    const { cookie } = await signIn();
    const api = await send('GET', '/v1/keys', { cookie });
    expect(api.status).toBe(401);
    const page = await send('GET', '/storage', { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/signin');
  });
});
