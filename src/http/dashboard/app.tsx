/**
 * The dashboard: HTML pages on the admin listener for what the CLI and the admin API do — keys,
 * buckets, CORS rules, presigned links — plus an objects browser. It calls the same services as
 * they do (the key store's create/delete with its validation, the bucket registry, the CORS
 * parser, the presigner, the RunPod bucket lifecycle); nothing here decides what is valid.
 *
 * Security model: sign-in with the admin token starts a server-side session (HttpOnly,
 * SameSite=Strict cookie). Every state change is a POST that must carry the session's CSRF token
 * and, when the browser says where it came from (Origin, Sec-Fetch-Site), come from this origin.
 * Every page is sent with a strict Content-Security-Policy (no inline script or style), no caching
 * and no referrer, so a new key's secret is shown once and never stored by the browser.
 */
import { Hono, type Context, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { deleteCookie, setCookie } from 'hono/cookie';
import type { Config } from '../../config.js';
import { CorsDocumentError, parseCorsDocument, type CorsRule } from '../../buckets/cors.js';
import type { BucketObjects } from '../../buckets/objects.js';
import { BucketValidationError, bucketNameProblem, type AddBucketInput } from '../../buckets/validate.js';
import { isAccessKeyId } from '../../crypto/keygen.js';
import { S3Error } from '../../errors.js';
import { hasPermission, isExpired, type AccessKey, type AccessKeyWithSecret } from '../../keys/model.js';
import { boto3Snippet, environmentBlock } from '../../keys/snippets.js';
import { KeyValidationError, type CreateKeyInput } from '../../keys/validate.js';
import { PresignError, issuePresignedUrl } from '../../presign.js';
import { isStoreUnavailable, storeErrorMessage, type Store } from '../../store/store.js';
import type { BucketRecord } from '../../store/store.js';
import { RUNPOD_S3_DATACENTERS } from '../../upstream/runpod.js';
import type { UpstreamResolver } from '../../upstream/resolver.js';
import { describeUpstream } from '../../upstream/target.js';
import type { AdminTokenVerifier } from '../admin-token.js';
import { ASSET_VERSION, DASHBOARD_CSS, DASHBOARD_JS } from './assets.js';
import type { PageContext } from './layout.js';
import { BucketKeysPage, CorsPage, DeleteObjectConfirmPage, LinksPage, ObjectsPage, SettingsPage, type BucketSummary } from './pages/bucket.js';
import { KeyPage, RevokeConfirmPage, SecretGonePage, SecretPage, type OneTimeSecret } from './pages/keys.js';
import { ErrorPage } from './pages/errors.js';
import { SignInPage, StoragePage, type BucketRow, type StorageView } from './pages/storage.js';
import { DEFAULT_IDLE_TIMEOUT_MS, FailureBudget, SessionStore, csrfTokenMatches, type Session } from './session.js';

/** What the dashboard needs of the RunPod bucket lifecycle (creating and deleting network volumes). */
export interface DashboardBucketLifecycle {
  readonly canCreateOnRunpod: boolean;
  readonly canDeleteVolumes: boolean;
  /** The datacenters buckets can be created in. */
  readonly datacenters: readonly string[];
  createRunpodBucket(input: { name: string; datacenter?: string | null }): Promise<BucketRecord>;
  deleteRunpodBucket(name: string): Promise<void>;
}

export interface DashboardDeps {
  config: Config;
  store: Store;
  verifyToken: AdminTokenVerifier;
  resolver: Pick<UpstreamResolver, 'resolve' | 'listBuckets'>;
  objects: Pick<BucketObjects, 'list' | 'delete'>;
  lifecycle?: DashboardBucketLifecycle | null;
  /** A session unused this long ends (default 30 minutes). */
  idleTimeoutMs?: number;
  now?: () => number;
}

export const SESSION_COOKIE = 'keygate_session';
export const DASHBOARD_BODY_LIMIT_BYTES = 64 * 1024;
/** Wrong admin tokens accepted per minute (for the whole listener) before sign-in pauses. */
export const SIGN_IN_FAILURES_PER_MINUTE = 10;
/** Presigned download links from the objects browser live this long. */
export const DOWNLOAD_LINK_SECONDS = 60;

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ');

type Env = { Variables: { session: Session; sessionId: string } };

/** Thrown by form readers: the page is shown again with this message (400). */
class FormProblem extends Error {}

export function createDashboard(deps: DashboardDeps): Hono<Env> {
  const { config, store } = deps;
  const now = deps.now ?? Date.now;
  const sessions = new SessionStore({ idleTimeoutMs: deps.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, now });
  const failedSignIns = new FailureBudget({ failures: SIGN_IN_FAILURES_PER_MINUTE, windowMs: 60_000, now });
  const app = new Hono<Env>();

  app.use('*', securityHeaders);
  app.use(
    '*',
    bodyLimit({
      maxSize: DASHBOARD_BODY_LIMIT_BYTES,
      onError: (c) => c.html(<ErrorPage ctx={noSession} title="Too large" message={`Forms are limited to ${DASHBOARD_BODY_LIMIT_BYTES} bytes.`} />, 413),
    }),
  );

  app.get('/assets/dashboard.css', (c) => asset(c, DASHBOARD_CSS, 'text/css; charset=utf-8'));
  app.get('/assets/dashboard.js', (c) => asset(c, DASHBOARD_JS, 'text/javascript; charset=utf-8'));

  app.get('/signin', (c) => c.html(<SignInPage status={signInStatus(c.req.query('why'))} />));

  app.post('/signin', async (c) => {
    if (!sameOrigin(c)) return c.html(<SignInPage error="This sign-in form came from another site; open the dashboard's own page." />, 403);
    // Checked before the token: past the budget, guessing gets no answer at all.
    const retryAfter = failedSignIns.secondsUntilAllowed();
    if (retryAfter > 0) {
      c.header('Retry-After', String(retryAfter));
      return c.html(<SignInPage error={`Too many failed sign-ins; try again in ${retryAfter} seconds (the CLI and the admin API keep working).`} />, 429);
    }
    const form = await readForm(c, ['token']).catch(() => null);
    const token = typeof form?.token === 'string' ? form.token : '';
    if (token === '' || !deps.verifyToken(token)) {
      failedSignIns.note();
      return c.html(<SignInPage error="That is not the admin token. It was printed once when keygate generated it (or is KEYGATE_ADMIN_TOKEN)." />, 401);
    }
    for (const presented of presentedSessionIds(c)) sessions.destroy(presented);
    const { id } = sessions.create();
    setCookie(c, sessionCookieName(c), id, { httpOnly: true, sameSite: 'Strict', secure: isHttps(c), path: '/' });
    return c.redirect('/storage', 303);
  });

  // Everything below needs a live session; state changes also need its CSRF token.
  const requireSession: MiddlewareHandler<Env> = async (c, next) => {
    // Every presented value is tried: a cookie tossed in by a sibling site must not hide the real one.
    const presentedIds = presentedSessionIds(c);
    const presented = presentedIds.find((id) => sessions.get(id) !== null);
    const session = presented === undefined ? null : sessions.get(presented);
    if (session === null) {
      if (presentedIds.length > 0) deleteCookie(c, sessionCookieName(c), { path: '/', secure: isHttps(c) });
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return c.redirect(`/signin${presentedIds.length === 0 ? '' : '?why=expired'}`, 303);
      return c.html(
        <ErrorPage
          ctx={noSession}
          title="Not signed in"
          message="Your session has ended, or this form came from another site. Sign in again and retry."
          signIn
        />,
        403,
      );
    }
    c.set('session', session);
    c.set('sessionId', presented!);
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') {
      if (c.req.method !== 'POST' || !sameOrigin(c)) {
        return c.html(
          <ErrorPage ctx={pageContext(session)} title="Refused" message="This request came from another site; use the dashboard's own forms." />,
          403,
        );
      }
      const form = await readForm(c).catch((error: unknown) => error);
      if (form instanceof Error || !csrfTokenMatches(session, (form as Record<string, unknown>)._csrf)) {
        return c.html(
          <ErrorPage
            ctx={pageContext(session)}
            title="Refused"
            message="The form's security token is missing or out of date; reload the page and try again."
          />,
          403,
        );
      }
    }
    await next();
  };
  app.use('*', requireSession);
  // Routing lookups (the resolver, as S3 requests use it) read the store as of its latest
  // beginRequest(). S3 requests call it; a dashboard request must too, or a bucket the CLI removed or
  // re-pointed while no S3 request came would keep its old route on these pages.
  app.use('*', async (_c, next) => {
    await store.beginRequest();
    await next();
  });

  app.get('/', (c) => c.redirect('/storage', 303));

  app.post('/signout', async (c) => {
    await readForm(c, []);
    sessions.destroy(c.get('sessionId'));
    deleteCookie(c, sessionCookieName(c), { path: '/', secure: isHttps(c) });
    return c.redirect('/signin?why=signed-out', 303);
  });

  // ---- Storage: buckets and workspace keys ----------------------------------------------------

  const storageView = async (): Promise<StorageView> => {
    const keys = await store.keys.list();
    const bucketKeyCounts = new Map<string, number>();
    for (const key of keys) if (key.bucket !== null) bucketKeyCounts.set(key.bucket, (bucketKeyCounts.get(key.bucket) ?? 0) + 1);
    const rows: BucketRow[] = [];
    let bucketsError: string | null = null;
    const registered = new Map((await store.buckets.list()).map((record) => [record.name, record]));
    let listed: Array<{ name: string; createdAt: Date | null }> = [...registered.values()];
    try {
      listed = await deps.resolver.listBuckets();
    } catch (error) {
      bucketsError = `Only registered buckets are shown: ${messageOf(error)}`;
    }
    for (const bucket of listed) {
      const record = registered.get(bucket.name);
      rows.push({
        name: bucket.name,
        routing: record ? routingOf(record) : await discoveredRouting(bucket.name),
        source: record ? 'registered' : 'found upstream',
        bucketKeys: bucketKeyCounts.get(bucket.name) ?? 0,
        createdAt: bucket.createdAt,
      });
    }
    return {
      buckets: rows,
      bucketsError,
      workspaceKeys: keys.filter((key) => key.bucket === null),
      datacenters: deps.lifecycle?.datacenters ?? RUNPOD_S3_DATACENTERS,
      canCreateOnRunpod: deps.lifecycle?.canCreateOnRunpod ?? false,
      defaultDatacenter: config.runpodDefaultDatacenter,
    };
  };

  const discoveredRouting = async (name: string): Promise<string> => {
    try {
      const target = await deps.resolver.resolve(name);
      return target === null ? 'no route' : `${describeUpstream(target)} · bucket ${target.bucket}`;
    } catch (error) {
      return `unavailable: ${messageOf(error)}`;
    }
  };

  app.get('/storage', async (c) => c.html(<StoragePage ctx={pageContext(c.get('session'))} view={await storageView()} now={new Date(now())} />));

  // ---- Keys ------------------------------------------------------------------------------------

  app.post('/keys', async (c) => {
    const session = c.get('session');
    const form = await readForm(c, ['name', 'bucket', 'permissions', 'preset', 'expiresIn', 'rateLimit', 'rateBurst', 'allowedIps', 'prefix']);
    const bucket = text(form.bucket) || null;
    const input: CreateKeyInput = {
      name: text(form.name),
      bucket,
      expiresIn: text(form.expiresIn).trim() === '' ? null : text(form.expiresIn),
      rateLimit: text(form.rateLimit).trim() || null,
      rateBurst: text(form.rateBurst).trim() || null,
      allowedIps: text(form.allowedIps).trim() || null,
      prefix: text(form.prefix) || null,
      ...(bucket === null ? { permissions: list(form.permissions) } : { preset: text(form.preset) }),
    };
    let key: AccessKeyWithSecret;
    try {
      key = await store.keys.create(input);
    } catch (error) {
      if (!(error instanceof KeyValidationError)) throw error;
      const state = { error: error.message, values: form };
      if (bucket === null)
        return c.html(<StoragePage ctx={pageContext(session)} view={{ ...(await storageView()), keyForm: state }} now={new Date(now())} />, 400);
      const summary = await bucketSummary(bucket);
      if (summary === null) return notFound(c, `No bucket "${bucket}".`);
      return c.html(bucketKeysPage(session, summary, state), 400);
    }
    return showSecretOnce(c, session, key, null);
  });

  const showSecretOnce = (c: Context<Env>, session: Session, key: AccessKeyWithSecret, replaces: string | null) => {
    const secret: OneTimeSecret = {
      key,
      environment: environmentBlock(key, config),
      boto3: boto3Snippet(key, config),
      endpoint: config.publicUrl,
      region: config.region,
      replaces,
    };
    const handle = sessions.keepOnce(session, secret);
    return c.redirect(`/keys/${key.accessKeyId}/secret?once=${handle}`, 303);
  };

  app.get('/keys/:id/secret', (c) => {
    const session = c.get('session');
    // A HEAD (link preview, prefetch) must not use up the one showing.
    if (c.req.method === 'HEAD') return c.body(null, 200);
    const id = c.req.param('id');
    const secret = sessions.takeOnce(session, c.req.query('once'), (value) => (value as OneTimeSecret).key.accessKeyId === id) as OneTimeSecret | null;
    if (secret === null) return c.html(<SecretGonePage ctx={pageContext(session)} />, 410);
    return c.html(<SecretPage ctx={pageContext(session)} secret={secret} />);
  });

  app.get('/keys/:id', async (c) => {
    const key = await findKey(c.req.param('id'));
    if (key === null) return notFound(c, `No access key "${c.req.param('id')}"; it may have been revoked.`);
    return c.html(<KeyPage ctx={pageContext(c.get('session'))} accessKey={key} endpoint={config.publicUrl} region={config.region} now={new Date(now())} />);
  });

  app.get('/keys/:id/revoke', async (c) => {
    const key = await findKey(c.req.param('id'));
    if (key === null) return notFound(c, `No access key "${c.req.param('id')}"; it may already have been revoked.`);
    return c.html(<RevokeConfirmPage ctx={pageContext(c.get('session'))} accessKey={key} />);
  });

  app.post('/keys/:id/revoke', async (c) => {
    await readForm(c, []);
    const key = await findKey(c.req.param('id'));
    if (key === null || !(await store.keys.delete(key.accessKeyId)))
      return notFound(c, `No access key "${c.req.param('id')}"; it may already have been revoked.`);
    c.get('session').notices.push(`Key ${key.name} (${key.accessKeyId}) is revoked: its next request is refused.`);
    return c.redirect(key.bucket === null ? '/storage' : `/buckets/${encodeURIComponent(key.bucket)}`, 303);
  });

  for (const [action, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(`/keys/:id/${action}`, async (c) => {
      await readForm(c, []);
      const id = c.req.param('id');
      const key = isAccessKeyId(id) ? await store.keys.setDisabled(id, disabled) : null;
      if (key === null) return notFound(c, `No access key "${c.req.param('id')}"; it may have been revoked.`);
      c.get('session').notices.push(disabled ? `Key ${key.name} is disabled: its next request is refused.` : `Key ${key.name} is enabled again.`);
      return c.redirect(`/keys/${key.accessKeyId}`, 303);
    });
  }

  app.post('/keys/:id/rotate', async (c) => {
    await readForm(c, []);
    const original = await findKey(c.req.param('id'));
    if (original === null) return notFound(c, `No access key "${c.req.param('id')}"; it may have been revoked.`);
    const lifetimeSeconds = original.expiresAt === null ? null : Math.max(1, Math.round((original.expiresAt.getTime() - original.createdAt.getTime()) / 1000));
    const twin = await store.keys.create({
      name: original.name,
      bucket: original.bucket,
      permissions: [...original.permissions],
      expiresIn: lifetimeSeconds,
      rateLimit: original.rateLimit?.requestsPerSecond ?? null,
      rateBurst: original.rateLimit?.burst ?? null,
      allowedIps: original.allowedIps === null ? null : [...original.allowedIps],
      prefix: original.prefix,
    });
    return showSecretOnce(c, c.get('session'), twin, original.accessKeyId);
  });

  // ---- Buckets -------------------------------------------------------------------------------

  app.post('/buckets', async (c) => {
    const form = await readForm(c, ['name', 'datacenter', 'upstreamBucket', 'endpoint', 'region']);
    const input: AddBucketInput = {
      name: text(form.name).trim(),
      datacenter: text(form.datacenter).trim() || null,
      upstreamBucket: text(form.upstreamBucket).trim() || null,
      endpoint: text(form.endpoint).trim() || null,
      region: text(form.region).trim() || null,
    };
    try {
      await store.buckets.add(input);
    } catch (error) {
      if (!(error instanceof BucketValidationError)) throw error;
      return storageWithBucketError(c, 'register', error.message, form);
    }
    c.get('session').notices.push(`Bucket ${input.name} is registered.`);
    return c.redirect(`/buckets/${encodeURIComponent(input.name)}`, 303);
  });

  app.post('/buckets/create', async (c) => {
    const form = await readForm(c, ['name', 'datacenter']);
    const lifecycle = deps.lifecycle;
    if (!lifecycle?.canCreateOnRunpod) {
      return storageWithBucketError(c, 'create', 'Creating buckets on RunPod needs RUNPOD_API_KEY and the RunPod S3 credentials on the gateway.', form);
    }
    const name = text(form.name).trim();
    try {
      await lifecycle.createRunpodBucket({ name, datacenter: text(form.datacenter).trim() || null });
    } catch (error) {
      return storageWithBucketError(c, 'create', messageOf(error), form);
    }
    c.get('session').notices.push(`Bucket ${name} is created.`);
    return c.redirect(`/buckets/${encodeURIComponent(name)}`, 303);
  });

  const storageWithBucketError = async (c: Context<Env>, which: 'register' | 'create', message: string, form: Record<string, string | string[]>) => {
    const values = Object.fromEntries(Object.entries(form).map(([name, value]) => [name, text(value)]));
    const view = { ...(await storageView()), bucketForm: { which, error: message, values } };
    return c.html(<StoragePage ctx={pageContext(c.get('session'))} view={view} now={new Date(now())} />, 400);
  };

  const bucketSummary = async (name: string): Promise<BucketSummary | null> => {
    const record = await store.buckets.get(name);
    if (record !== null) return { name, routing: routingOf(record), registered: true, createdAt: record.createdAt };
    let target;
    try {
      target = await deps.resolver.resolve(name);
    } catch (error) {
      return { name, routing: `route unavailable: ${messageOf(error)}`, registered: false, createdAt: null };
    }
    return target === null
      ? null
      : { name, routing: `${describeUpstream(target)} · bucket ${target.bucket} (found upstream)`, registered: false, createdAt: null };
  };

  /** Registers `/buckets/:name<suffix>` for a method; the handler gets the bucket, or the page is a 404. */
  const onBucket = (method: 'get' | 'post', suffix: string, handler: (c: Context<Env>, bucket: BucketSummary) => Response | Promise<Response>) => {
    app[method](`/buckets/:name${suffix}`, async (c) => {
      // Only names a bucket can have reach the registry, the resolver or an upstream.
      if (bucketNameProblem(c.req.param('name')) !== null) return notFound(c, `"${c.req.param('name')}" is not a bucket name.`);
      const bucket = await bucketSummary(c.req.param('name'));
      if (bucket === null) return notFound(c, `No bucket "${c.req.param('name')}" is registered or found upstream.`);
      return handler(c, bucket);
    });
  };

  const bucketKeysPage = async (session: Session, bucket: BucketSummary, form?: { error: string; values: Record<string, string | string[]> }) => {
    const keys = await store.keys.list();
    return (
      <BucketKeysPage
        ctx={pageContext(session)}
        bucket={bucket}
        bucketKeys={keys.filter((key) => key.bucket === bucket.name)}
        workspaceKeys={keys.filter((key) => key.bucket === null).length}
        now={new Date(now())}
        form={form}
      />
    );
  };

  onBucket('get', '', async (c, bucket) => c.html(await bucketKeysPage(c.get('session'), bucket)));

  /** Keys that reach the bucket and have not expired; per-bucket ones first, then newest first. */
  const keysFor = async (bucket: string, permission?: 'read') =>
    (await store.keys.list())
      .filter(
        (key) =>
          (key.bucket === bucket || key.bucket === null) && !isExpired(key, new Date(now())) && (permission === undefined || hasPermission(key, permission)),
      )
      .sort((a, b) => Number(a.bucket === null) - Number(b.bucket === null) || b.createdAt.getTime() - a.createdAt.getTime());

  onBucket('get', '/objects', async (c, bucket) => {
    const prefix = c.req.query('prefix') ?? '';
    const pageToken = c.req.query('page') ?? null;
    let page = null;
    let error = null;
    try {
      page = await deps.objects.list(bucket.name, { prefix, delimiter: '/', pageToken });
    } catch (problem) {
      error = `The objects could not be listed: ${messageOf(problem)}`;
    }
    const view = { page, error, readers: await keysFor(bucket.name, 'read'), pageToken };
    return c.html(<ObjectsPage ctx={pageContext(c.get('session'))} bucket={bucket} view={view} prefix={prefix} />, error === null ? 200 : 502);
  });

  // A POST (CSRF token, same origin): a GET would let any page on the same site mint a download link.
  onBucket('post', '/objects/download', async (c, bucket) => {
    const objectKey = text((await readForm(c, ['key'])).key);
    // The narrowest reader that may read this object (a prefixed key only under its prefix).
    const signer = (await keysFor(bucket.name, 'read')).find((key) => key.prefix === null || objectKey.startsWith(key.prefix));
    if (objectKey === '' || signer === undefined) return notFound(c, 'Name an object, and create a key that can read this bucket to sign the download.');
    try {
      const link = await issuePresignedUrl(store.keys, config, {
        accessKeyId: signer.accessKeyId,
        target: `s3://${bucket.name}/${objectKey}`,
        method: 'GET',
        expiresIn: DOWNLOAD_LINK_SECONDS,
      });
      return c.redirect(link.url, 303);
    } catch (error) {
      if (!(error instanceof PresignError)) throw error;
      return c.html(<ErrorPage ctx={pageContext(c.get('session'))} title="Cannot download" message={error.message} />, 400);
    }
  });

  onBucket('get', '/objects/delete', (c, bucket) => {
    const objectKey = c.req.query('key') ?? '';
    if (objectKey === '') return notFound(c, 'Name the object to delete.');
    return c.html(<DeleteObjectConfirmPage ctx={pageContext(c.get('session'))} bucket={bucket} objectKey={objectKey} />);
  });

  onBucket('post', '/objects/delete', async (c, bucket) => {
    const form = await readForm(c, ['key']);
    const objectKey = text(form.key);
    try {
      await deps.objects.delete(bucket.name, objectKey);
    } catch (error) {
      const status = error instanceof S3Error && error.status < 500 ? 400 : 502;
      return c.html(
        <ErrorPage ctx={pageContext(c.get('session'))} title="Not deleted" message={`${objectKey} was not deleted: ${messageOf(error)}`} />,
        status,
      );
    }
    c.get('session').notices.push(`Deleted ${objectKey}.`);
    const folder = objectKey.includes('/') ? objectKey.slice(0, objectKey.lastIndexOf('/') + 1) : '';
    return c.redirect(
      `/buckets/${encodeURIComponent(bucket.name)}/objects${folder === '' ? '' : `?${new URLSearchParams({ prefix: folder }).toString()}`}`,
      303,
    );
  });

  // ---- CORS ----------------------------------------------------------------------------------

  const corsRules = async (bucket: string): Promise<CorsRule[]> => (await store.buckets.get(bucket))?.cors ?? [];
  const corsPage = async (
    c: Context<Env>,
    bucket: BucketSummary,
    extra: { error?: string; draft?: Record<string, string | string[]>; json?: string } = {},
    status: 200 | 400 = 200,
  ) => c.html(<CorsPage ctx={pageContext(c.get('session'))} bucket={bucket} rules={await corsRules(bucket.name)} {...extra} />, status);
  /** Saves the rules (an empty list removes them); null when the bucket is not registered. */
  const saveCors = async (c: Context<Env>, bucket: BucketSummary, rules: CorsRule[], notice: string) => {
    if ((await store.buckets.setCors(bucket.name, rules.length === 0 ? null : rules)) === null) {
      return corsPage(c, bucket, { error: 'CORS rules are kept in the registry: register this bucket first (Storage → Register).' }, 400);
    }
    c.get('session').notices.push(notice);
    return c.redirect(`/buckets/${encodeURIComponent(bucket.name)}/cors`, 303);
  };

  onBucket('get', '/cors', (c, bucket) => corsPage(c, bucket));

  onBucket('post', '/cors/add', async (c, bucket) => {
    const form = await readForm(c, ['origins', 'methods', 'headers', 'expose', 'maxAge']);
    const rule: Record<string, unknown> = { allowedOrigins: words(text(form.origins)), allowedMethods: list(form.methods) };
    if (words(text(form.headers)).length > 0) rule.allowedHeaders = words(text(form.headers));
    if (words(text(form.expose)).length > 0) rule.exposeHeaders = words(text(form.expose));
    const maxAge = text(form.maxAge).trim();
    if (maxAge !== '') rule.maxAgeSeconds = /^\d{1,9}$/.test(maxAge) ? Number(maxAge) : maxAge;
    try {
      return await saveCors(c, bucket, parseCorsDocument([...(await corsRules(bucket.name)), rule]), 'CORS rule added.');
    } catch (error) {
      if (!(error instanceof CorsDocumentError)) throw error;
      return corsPage(c, bucket, { error: error.message, draft: form }, 400);
    }
  });

  onBucket('post', '/cors/remove', async (c, bucket) => {
    const form = await readForm(c, ['index']);
    const index = Number(text(form.index));
    const rules = await corsRules(bucket.name);
    if (!Number.isInteger(index) || index < 0 || index >= rules.length)
      return corsPage(c, bucket, { error: 'That rule no longer exists; the list is shown as it is now.' }, 400);
    return saveCors(c, bucket, rules.toSpliced(index, 1), 'CORS rule removed.');
  });

  onBucket('post', '/cors/json', async (c, bucket) => {
    const form = await readForm(c, ['document']);
    const json = text(form.document);
    try {
      return await saveCors(c, bucket, parseCorsDocument(JSON.parse(json)), 'CORS rules saved.');
    } catch (error) {
      if (error instanceof SyntaxError) return corsPage(c, bucket, { error: `The rules are not valid JSON: ${error.message}`, json }, 400);
      if (error instanceof CorsDocumentError) return corsPage(c, bucket, { error: error.message, json }, 400);
      throw error;
    }
  });

  // ---- Presigned links -----------------------------------------------------------------------

  onBucket('get', '/links', async (c, bucket) => c.html(<LinksPage ctx={pageContext(c.get('session'))} bucket={bucket} keys={await keysFor(bucket.name)} />));

  onBucket('post', '/links', async (c, bucket) => {
    const form = await readForm(c, ['accessKeyId', 'objectKey', 'method', 'expiresIn']);
    const values = { accessKeyId: text(form.accessKeyId), objectKey: text(form.objectKey), method: text(form.method), expiresIn: text(form.expiresIn) };
    const keys = await keysFor(bucket.name);
    const page = (extra: { error?: string; issued?: { url: string; method: string; expiresAt: Date } }, status: 200 | 400 = 200) =>
      c.html(<LinksPage ctx={pageContext(c.get('session'))} bucket={bucket} keys={keys} values={values} {...extra} />, status);
    if (values.objectKey === '') return page({ error: 'Name the object the link is for.' }, 400);
    try {
      const issued = await issuePresignedUrl(store.keys, config, {
        accessKeyId: values.accessKeyId,
        target: `s3://${bucket.name}/${values.objectKey}`,
        method: values.method,
        expiresIn: values.expiresIn.trim() === '' ? undefined : values.expiresIn.trim(),
      });
      return page({ issued });
    } catch (error) {
      if (error instanceof PresignError) return page({ error: error.message }, 400);
      throw error;
    }
  });

  // ---- Settings: unregister, delete the volume ---------------------------------------------

  const settingsPage = async (c: Context<Env>, bucket: BucketSummary, error: string | null = null) => {
    const isRunpod = (await deps.resolver.resolve(bucket.name).catch(() => null))?.kind === 'runpod';
    return c.html(
      <SettingsPage
        ctx={pageContext(c.get('session'))}
        bucket={bucket}
        isRunpod={isRunpod}
        canDeleteVolume={deps.lifecycle?.canDeleteVolumes ?? false}
        error={error}
      />,
      error === null ? 200 : 400,
    );
  };

  onBucket('get', '/settings', (c, bucket) => settingsPage(c, bucket));

  onBucket('post', '/unregister', async (c, bucket) => {
    await readForm(c, []);
    if (!(await store.buckets.remove(bucket.name))) return settingsPage(c, bucket, 'This bucket is not registered.');
    c.get('session').notices.push(`Bucket ${bucket.name} is unregistered; its data is untouched.`);
    return c.redirect('/storage', 303);
  });

  onBucket('post', '/delete', async (c, bucket) => {
    const form = await readForm(c, ['confirm']);
    if (text(form.confirm).trim() !== bucket.name) return settingsPage(c, bucket, `Type the bucket name (${bucket.name}) to confirm.`);
    if (!deps.lifecycle?.canDeleteVolumes) return settingsPage(c, bucket, 'Deleting network volumes is off (KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE).');
    try {
      await deps.lifecycle.deleteRunpodBucket(bucket.name);
    } catch (error) {
      return settingsPage(c, bucket, messageOf(error));
    }
    c.get('session').notices.push(`Bucket ${bucket.name} and its network volume are deleted.`);
    return c.redirect('/storage', 303);
  });

  app.notFound((c) => notFound(c, `No page ${c.req.path}.`));

  app.onError((error, c) => {
    if (error instanceof FormProblem) {
      return c.html(<ErrorPage ctx={contextOf(c)} title="Bad request" message={error.message} />, 400);
    }
    console.error(JSON.stringify({ level: 'error', msg: 'dashboard error', method: c.req.method, path: c.req.path, error: storeErrorMessage(error) }));
    if (isStoreUnavailable(error)) {
      return c.html(
        <ErrorPage ctx={contextOf(c)} title="Key store unreachable" message="The key store (PostgreSQL) cannot be reached right now; try again shortly." />,
        503,
      );
    }
    return c.html(<ErrorPage ctx={contextOf(c)} title="Something went wrong" message="The page failed unexpectedly; the server log has details." />, 500);
  });

  const findKey = async (id: string): Promise<AccessKey | null> => (isAccessKeyId(id) ? store.keys.get(id) : null);

  return app;
}

const noSession: PageContext = { csrfToken: null, notices: [] };

/** The page context for a session: its CSRF token and its pending notices (shown once). */
function pageContext(session: Session): PageContext {
  return { csrfToken: session.csrfToken, notices: session.notices.splice(0) };
}

function contextOf(c: Context<Env>): PageContext {
  const session = c.get('session') as Session | undefined;
  return session === undefined ? noSession : pageContext(session);
}

function notFound(c: Context<Env>, message: string): Response {
  return c.html(<ErrorPage ctx={contextOf(c)} title="Not found" message={message} />, 404) as Response;
}

const securityHeaders: MiddlewareHandler = async (c, next) => {
  await next();
  c.header('Content-Security-Policy', CONTENT_SECURITY_POLICY);
  c.header('X-Frame-Options', 'DENY');
  c.header('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: with no-referrer the browser sends `Origin: null` on our own form posts.
  c.header('Referrer-Policy', 'same-origin');
  c.header('Cross-Origin-Opener-Policy', 'same-origin');
  if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
};

function asset(c: Context<Env>, body: string, type: string): Response {
  // Versioned URLs (?v=<hash of the content>): a changed asset gets a new URL, so caching is safe.
  const cache = c.req.query('v') === ASSET_VERSION ? 'public, max-age=31536000, immutable' : 'no-cache';
  return c.body(body, 200, { 'Content-Type': type, 'Cache-Control': cache });
}

function signInStatus(why: string | undefined): string | null {
  if (why === 'expired') return 'Your session has ended; sign in again.';
  if (why === 'signed-out') return 'You are signed out.';
  return null;
}

/** Whether the request says it comes from this origin, or says nothing (then the CSRF token decides). */
function sameOrigin(c: Context<Env>): boolean {
  const site = c.req.header('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin') return false;
  const origin = c.req.header('origin');
  if (origin === undefined) return true;
  const host = c.req.header('host');
  return host !== undefined && origin === `${isHttps(c) ? 'https' : 'http'}://${host}`;
}

/** Over https the cookie is `__Host-` prefixed: Secure, host-only, Path=/, so no sibling site can set it. */
function sessionCookieName(c: Context<Env>): string {
  return isHttps(c) ? `__Host-${SESSION_COOKIE}` : SESSION_COOKIE;
}

/** Every value of the session cookie the request carries (a sibling site can add its own). */
function presentedSessionIds(c: Context<Env>): string[] {
  const name = sessionCookieName(c);
  const ids: string[] = [];
  for (const part of (c.req.header('cookie') ?? '').split(';')) {
    const separator = part.indexOf('=');
    if (separator > 0 && part.slice(0, separator).trim() === name) ids.push(part.slice(separator + 1).trim());
  }
  return ids.slice(0, 8);
}

/** Served over https (directly, or by a TLS-terminating proxy that says so): the cookie gets Secure. */
function isHttps(c: Context<Env>): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() === 'https';
}

/**
 * The form's fields (URL-encoded only, within the admin listener's body limit). With `allowed`,
 * any other field than those and `_csrf` is refused: the dashboard's own forms never send one.
 */
async function readForm(c: Context<Env>, allowed?: readonly string[]): Promise<Record<string, string | string[]>> {
  const type = c.req.header('content-type')?.split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new FormProblem('Send the form as application/x-www-form-urlencoded, as the dashboard pages do.');
  const body = await c.req.parseBody({ all: true });
  const form: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(body)) {
    if (allowed !== undefined && name !== '_csrf' && !allowed.includes(name)) throw new FormProblem(`Unexpected form field "${name}".`);
    if (Array.isArray(value) ? value.some((item) => typeof item !== 'string') : typeof value !== 'string')
      throw new FormProblem('Files are not accepted here.');
    form[name] = value as string | string[];
  }
  return form;
}

/** A single-valued field ('' when absent; the first value when repeated). */
function text(value: string | string[] | undefined): string {
  return Array.isArray(value) ? (value[0] ?? '') : (value ?? '');
}

function list(value: string | string[] | undefined): string[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function words(value: string): string[] {
  return value.split(/\s+/).filter((word) => word !== '');
}

function routingOf(record: BucketRecord): string {
  if (record.datacenter !== null) return `RunPod ${record.datacenter} · volume ${record.upstreamBucket}`;
  if (record.endpoint !== null) return `${record.endpoint} (${record.region ?? 'no region'}) · bucket ${record.upstreamBucket}`;
  return `default upstream · bucket ${record.upstreamBucket}`;
}

function messageOf(error: unknown): string {
  if (error instanceof S3Error || error instanceof Error) return error.message;
  return String(error);
}
