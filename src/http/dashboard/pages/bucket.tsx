/** A bucket's pages: its keys, objects browser, CORS rules, presigned links and settings. */
import type { Child } from 'hono/jsx';
import type { CorsRule } from '../../../buckets/cors.js';
import type { ObjectPage } from '../../../buckets/objects.js';
import type { AccessKey } from '../../../keys/model.js';
import { CopyBlock, DataTable, ErrorBox, Field, formatBytes, formatDate, Page, PostForm, segment, Tabs, TextInput, type PageContext } from '../layout.js';
import { CreateKeyForm, KeyTable, type KeyFormState } from './keys.js';

export interface BucketSummary {
  name: string;
  routing: string;
  registered: boolean;
  createdAt: Date | null;
}

type Tab = 'keys' | 'objects' | 'cors' | 'links' | 'settings';

function BucketPage(props: { ctx: PageContext; bucket: BucketSummary; tab: Tab; title: string; children?: Child }) {
  const base = `/buckets/${segment(props.bucket.name)}`;
  const tabs: Array<[Tab, string, string]> = [
    ['keys', 'Keys', base],
    ['objects', 'Objects', `${base}/objects`],
    ['cors', 'CORS', `${base}/cors`],
    ['links', 'Presigned links', `${base}/links`],
    ['settings', 'Settings', `${base}/settings`],
  ];
  return (
    <Page title={`${props.title} · ${props.bucket.name}`} ctx={props.ctx} nav="storage">
      <p>
        <a href="/storage">← Storage</a>
      </p>
      <h1>Bucket {props.bucket.name}</h1>
      <p class="muted">
        {props.bucket.routing}
        {props.bucket.createdAt !== null && ` · registered ${formatDate(props.bucket.createdAt)}`}
      </p>
      <Tabs tabs={tabs.map(([tab, label, href]) => ({ href, label, current: tab === props.tab }))} />
      {props.children}
    </Page>
  );
}

export function BucketKeysPage(props: {
  ctx: PageContext;
  bucket: BucketSummary;
  bucketKeys: AccessKey[];
  workspaceKeys: number;
  now: Date;
  form?: KeyFormState;
}) {
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="keys" title="Keys">
      <h2 id="bucket-keys">Bucket keys</h2>
      <p class="hint">
        These keys reach this bucket only. {props.workspaceKeys} workspace-wide key{props.workspaceKeys === 1 ? '' : 's'} also reach it (see{' '}
        <a href="/storage#api-keys">Storage</a>).
      </p>
      <KeyTable keys={props.bucketKeys} showBucket={false} empty="No keys for this bucket yet." now={props.now} />
      <h2 id="create-bucket-key">Create bucket key</h2>
      <CreateKeyForm ctx={props.ctx} bucket={props.bucket.name} state={props.form} />
    </BucketPage>
  );
}

export interface ObjectsView {
  page: ObjectPage | null;
  error: string | null;
  /** Keys that can read this bucket, to sign downloads with (newest first). */
  readers: AccessKey[];
  /** The continuation token this page was read with (for "first page" links). */
  pageToken: string | null;
}

export function ObjectsPage(props: { ctx: PageContext; bucket: BucketSummary; view: ObjectsView; prefix: string }) {
  const base = `/buckets/${segment(props.bucket.name)}/objects`;
  const listHref = (prefix: string, token?: string) => {
    const query = new URLSearchParams();
    if (prefix !== '') query.set('prefix', prefix);
    if (token !== undefined) query.set('page', token);
    const text = query.toString();
    return text === '' ? base : `${base}?${text}`;
  };
  const crumbs = props.prefix.split('/').slice(0, -1);
  const { page, readers } = props.view;
  const signer = readers[0];
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="objects" title="Objects">
      <form method="get" action={base} class="actions" role="search">
        <label for="prefix">Prefix</label>
        <input type="search" id="prefix" name="prefix" value={props.prefix} placeholder="folder/" />
        <button type="submit" class="secondary">
          List
        </button>
      </form>
      <nav aria-label="Folder" class="hint">
        <a href={listHref('')}>{props.bucket.name}</a>
        {crumbs.map((part, index) => (
          <>
            {' / '}
            <a href={listHref(`${crumbs.slice(0, index + 1).join('/')}/`)}>{part}</a>
          </>
        ))}
        {props.prefix !== '' && !props.prefix.endsWith('/') && ` / ${props.prefix.split('/').pop()}…`}
      </nav>
      <ErrorBox message={props.view.error} />
      {signer === undefined ? (
        <p class="hint">
          Downloads are presigned links signed with one of this bucket's keys; no key can read it yet.{' '}
          <a href={`/buckets/${segment(props.bucket.name)}`}>Create a read-only key</a> to download.
        </p>
      ) : (
        <p class="hint">
          Downloads are presigned links valid for 60 seconds, signed with key {signer.name} (<code>{signer.accessKeyId}</code>).
        </p>
      )}
      {page !== null &&
        (page.objects.length === 0 && page.commonPrefixes.length === 0 ? (
          <p class="empty">No objects{props.prefix === '' ? '' : ` under ${props.prefix}`}.</p>
        ) : (
          <DataTable columns={['Name', 'Size', 'Last modified', '']}>
            {page.commonPrefixes.map((prefix) => (
              <tr>
                <td>
                  <a href={listHref(prefix)}>{prefix.slice(props.prefix.length)}</a>
                </td>
                <td>folder</td>
                <td>—</td>
                <td></td>
              </tr>
            ))}
            {page.objects.map((object) => {
              const name = object.key.startsWith(props.prefix) ? object.key.slice(props.prefix.length) : object.key;
              const query = new URLSearchParams({ key: object.key });
              return (
                <tr>
                  <td>
                    <code>{name === '' ? object.key : name}</code>
                  </td>
                  <td>{formatBytes(object.size)}</td>
                  <td>{formatDate(object.lastModified)}</td>
                  <td>
                    <div class="actions">
                      {signer !== undefined && (
                        <PostForm action={`${base}/download`} ctx={props.ctx}>
                          <input type="hidden" name="key" value={object.key} />
                          <button type="submit" class="link" aria-label={`Download ${object.key}`}>
                            Download
                          </button>
                        </PostForm>
                      )}
                      <a href={`${base}/delete?${query.toString()}`} aria-label={`Delete ${object.key}`}>
                        Delete…
                      </a>
                    </div>
                  </td>
                </tr>
              );
            })}
          </DataTable>
        ))}
      {page !== null && (
        <p class="actions">
          {props.view.pageToken !== null && <a href={listHref(props.prefix)}>First page</a>}
          {page.nextPageToken !== null && <a href={listHref(props.prefix, page.nextPageToken)}>Next page →</a>}
        </p>
      )}
    </BucketPage>
  );
}

export function DeleteObjectConfirmPage(props: { ctx: PageContext; bucket: BucketSummary; objectKey: string }) {
  const base = `/buckets/${segment(props.bucket.name)}/objects`;
  const folder = props.objectKey.includes('/') ? props.objectKey.slice(0, props.objectKey.lastIndexOf('/') + 1) : '';
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="objects" title="Delete object">
      <h2>Delete this object?</h2>
      <p class="warning">
        <code>{props.objectKey}</code> will be deleted from {props.bucket.name}. This cannot be undone.
      </p>
      <div class="actions">
        <PostForm action={`${base}/delete`} ctx={props.ctx}>
          <input type="hidden" name="key" value={props.objectKey} />
          <button type="submit" class="danger">
            Delete object
          </button>
        </PostForm>
        <a class="button secondary" href={folder === '' ? base : `${base}?${new URLSearchParams({ prefix: folder }).toString()}`}>
          Cancel
        </a>
      </div>
    </BucketPage>
  );
}

export function CorsPage(props: {
  ctx: PageContext;
  bucket: BucketSummary;
  rules: CorsRule[];
  error?: string | null;
  draft?: Record<string, string | string[]>;
  json?: string;
}) {
  const base = `/buckets/${segment(props.bucket.name)}/cors`;
  const draft = (name: string) => {
    const v = props.draft?.[name];
    return typeof v === 'string' ? v : '';
  };
  const methods = props.draft?.methods;
  const chosen = Array.isArray(methods) ? methods : typeof methods === 'string' ? [methods] : ['GET', 'PUT'];
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="cors" title="CORS">
      <p class="hint">
        Which web pages may call this bucket from a browser (presigned uploads and downloads). Without rules, cross-origin browser requests are refused. The
        gateway answers CORS itself; the storage behind it is not changed.
      </p>
      <ErrorBox message={props.error} />
      <h2 id="cors-rules">Rules</h2>
      {props.rules.length === 0 ? (
        <p class="empty">No CORS rules: browsers on other origins cannot use this bucket.</p>
      ) : (
        <DataTable columns={['Origins', 'Methods', 'Allowed headers', 'Exposed headers', 'Max age', '']} labelledBy="cors-rules">
          {props.rules.map((rule, index) => (
            <tr>
              <td>{rule.allowedOrigins.join(' ')}</td>
              <td>{rule.allowedMethods.join(', ')}</td>
              <td>{rule.allowedHeaders?.join(' ') ?? '—'}</td>
              <td>{rule.exposeHeaders?.join(' ') ?? '—'}</td>
              <td>{rule.maxAgeSeconds === undefined ? '—' : `${rule.maxAgeSeconds} s`}</td>
              <td>
                <PostForm action={`${base}/remove`} ctx={props.ctx}>
                  <input type="hidden" name="index" value={String(index)} />
                  <button type="submit" class="link" aria-label={`Remove rule ${index + 1}`}>
                    Remove
                  </button>
                </PostForm>
              </td>
            </tr>
          ))}
        </DataTable>
      )}
      <div class="grid2">
        <section aria-labelledby="add-rule">
          <h2 id="add-rule">Add a rule</h2>
          <PostForm action={`${base}/add`} ctx={props.ctx} class="stack card">
            <Field
              id="cors-origins"
              label="Allowed origins"
              hint="One per line or space-separated, e.g. https://app.example.com; * for any; one * wildcard per origin."
            >
              <textarea id="cors-origins" name="origins" rows={3} required>
                {draft('origins')}
              </textarea>
            </Field>
            <fieldset>
              <legend>Allowed methods</legend>
              {['GET', 'PUT', 'POST', 'DELETE', 'HEAD'].map((method) => (
                <label>
                  <input type="checkbox" name="methods" value={method} checked={chosen.includes(method)} /> {method}
                </label>
              ))}
            </fieldset>
            <Field id="cors-headers" label="Allowed request headers (optional)" hint="e.g. content-type x-amz-*; * for any.">
              <TextInput id="cors-headers" name="headers" value={draft('headers')} />
            </Field>
            <Field id="cors-expose" label="Exposed response headers (optional)" hint="e.g. etag">
              <TextInput id="cors-expose" name="expose" value={draft('expose')} />
            </Field>
            <Field id="cors-maxage" label="Max age in seconds (optional)">
              <TextInput id="cors-maxage" name="maxAge" inputmode="numeric" value={draft('maxAge')} />
            </Field>
            <div class="actions">
              <button type="submit">Add rule</button>
            </div>
          </PostForm>
        </section>
        <section aria-labelledby="cors-json">
          <h2 id="cors-json">Edit as JSON</h2>
          <PostForm action={`${base}/json`} ctx={props.ctx} class="stack card">
            <Field id="cors-document" label="Rules (JSON)" hint='A list of rules, {"rules": […]}, or S3&apos;s {"CORSRules": […]}; [] removes every rule.'>
              <textarea id="cors-document" name="document" rows={12}>
                {props.json ?? JSON.stringify(props.rules, null, 2)}
              </textarea>
            </Field>
            <div class="actions">
              <button type="submit">Save rules</button>
            </div>
          </PostForm>
        </section>
      </div>
    </BucketPage>
  );
}

export function LinksPage(props: {
  ctx: PageContext;
  bucket: BucketSummary;
  keys: AccessKey[];
  error?: string | null;
  values?: Record<string, string>;
  issued?: { url: string; method: string; expiresAt: Date } | null;
}) {
  const v = (name: string) => props.values?.[name] ?? '';
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="links" title="Presigned links">
      <p class="hint">
        A presigned link lets anyone holding it do one thing to one object until it expires, with a key's permissions. Revoking the key voids its links.
      </p>
      {props.issued && (
        <div class="card" role="status">
          <CopyBlock id="presigned-url" label={`${props.issued.method} link, expires ${formatDate(props.issued.expiresAt)}`} value={props.issued.url} />
        </div>
      )}
      <ErrorBox message={props.error} />
      {props.keys.length === 0 ? (
        <p class="empty">
          No key can reach this bucket yet; <a href={`/buckets/${segment(props.bucket.name)}`}>create a bucket key</a> first.
        </p>
      ) : (
        <PostForm action={`/buckets/${segment(props.bucket.name)}/links`} ctx={props.ctx} class="stack card">
          <Field id="link-key" label="Sign with key">
            <select id="link-key" name="accessKeyId">
              {props.keys.map((key) => (
                <option value={key.accessKeyId} selected={key.accessKeyId === v('accessKeyId')}>
                  {`${key.name} (${key.accessKeyId}; ${key.permissions.join(', ')})`}
                </option>
              ))}
            </select>
          </Field>
          <Field id="link-object" label="Object key" hint="e.g. reports/2026/summary.pdf">
            <TextInput id="link-object" name="objectKey" required value={v('objectKey')} />
          </Field>
          <Field id="link-method" label="Allows">
            <select id="link-method" name="method">
              {[
                ['GET', 'GET: download'],
                ['PUT', 'PUT: upload (replace)'],
                ['HEAD', 'HEAD: read metadata'],
                ['DELETE', 'DELETE: delete'],
              ].map(([method, label]) => (
                <option value={method} selected={method === (v('method') || 'GET')}>
                  {label}
                </option>
              ))}
            </select>
          </Field>
          <Field id="link-expires" label="Expires in" hint="e.g. 15m, 12h, 7d (at most 7 days).">
            <TextInput id="link-expires" name="expiresIn" value={v('expiresIn') || '15m'} />
          </Field>
          <div class="actions">
            <button type="submit">Create link</button>
          </div>
        </PostForm>
      )}
    </BucketPage>
  );
}

export function SettingsPage(props: { ctx: PageContext; bucket: BucketSummary; canDeleteVolume: boolean; isRunpod: boolean; error?: string | null }) {
  const base = `/buckets/${segment(props.bucket.name)}`;
  return (
    <BucketPage ctx={props.ctx} bucket={props.bucket} tab="settings" title="Settings">
      <ErrorBox message={props.error} />
      <h2>Unregister</h2>
      {props.bucket.registered ? (
        <>
          <p>Removes the name from this gateway's registry. The data is not touched; keys for this bucket stay and work again if it is registered again.</p>
          <PostForm action={`${base}/unregister`} ctx={props.ctx}>
            <button type="submit" class="secondary">
              Unregister {props.bucket.name}
            </button>
          </PostForm>
        </>
      ) : (
        <p class="muted">This bucket is not registered (the gateway finds it on its own), so there is nothing to unregister.</p>
      )}
      {props.isRunpod && (
        <>
          <h2>Delete the network volume</h2>
          {props.canDeleteVolume ? (
            <>
              <p class="warning">Deletes the RunPod network volume behind this bucket, and with it every file. Only an empty bucket can be deleted.</p>
              <PostForm action={`${base}/delete`} ctx={props.ctx} class="stack">
                <Field id="confirm-name" label={`Type the bucket name (${props.bucket.name}) to confirm`}>
                  <TextInput id="confirm-name" name="confirm" required />
                </Field>
                <div class="actions">
                  <button type="submit" class="danger">
                    Delete bucket and volume
                  </button>
                </div>
              </PostForm>
            </>
          ) : (
            <p class="muted">Deleting network volumes is off: the operator enables it with KEYGATE_RUNPOD_ALLOW_VOLUME_DELETE=1 on the gateway.</p>
          )}
        </>
      )}
    </BucketPage>
  );
}
