/** Key pages: the key tables and create forms, one key's details, revoke confirmation, the one-time secret. */
import type { AccessKey, AccessKeyWithSecret } from '../../../keys/model.js';
import { PERMISSIONS, PRESETS, isExpired } from '../../../keys/model.js';
import { CopyBlock, DataTable, ErrorBox, Field, formatDate, Page, PostForm, segment, TextInput, type PageContext } from '../layout.js';

export interface KeyFormState {
  error?: string | null;
  values?: Record<string, string | string[]>;
}

const PERMISSION_HINTS: Record<(typeof PERMISSIONS)[number], string> = {
  read: 'list buckets and objects, download',
  write: 'upload, multipart, copy into',
  delete: 'delete objects',
  admin: 'create, configure and delete buckets',
};

export function KeyTable(props: { keys: AccessKey[]; showBucket: boolean; empty: string; now: Date }) {
  if (props.keys.length === 0) return <p class="empty">{props.empty}</p>;
  return (
    <DataTable columns={['Name', 'Access key ID', ...(props.showBucket ? ['Bucket'] : []), 'State', 'Permissions', 'Created', 'Expires', 'Last used', '']}>
      {props.keys.map((key) => (
        <tr>
          <td>
            <a href={`/keys/${segment(key.accessKeyId)}`}>{key.name}</a>
          </td>
          <td>
            <code>{key.accessKeyId}</code>
          </td>
          {props.showBucket && <td>{key.bucket ?? 'all buckets'}</td>}
          <td>{stateOf(key, props.now)}</td>
          <td>{key.permissions.join(', ')}</td>
          <td>{formatDate(key.createdAt)}</td>
          <td>{isExpired(key, props.now) ? `expired ${formatDate(key.expiresAt)}` : formatDate(key.expiresAt, 'never')}</td>
          <td>{formatDate(key.lastUsedAt, 'never')}</td>
          <td>
            <a href={`/keys/${segment(key.accessKeyId)}/revoke`} class="button danger" aria-label={`Revoke ${key.name} (${key.accessKeyId})`}>
              Revoke
            </a>
          </td>
        </tr>
      ))}
    </DataTable>
  );
}

function value(state: KeyFormState | undefined, name: string): string {
  const v = state?.values?.[name];
  return typeof v === 'string' ? v : '';
}

/** Create a workspace-wide key (the four flags) or, with `bucket`, a per-bucket key (the two presets). */
export function CreateKeyForm(props: { ctx: PageContext; bucket: string | null; state?: KeyFormState }) {
  const prefix = props.bucket === null ? 'wk' : 'bk';
  const checked = props.state?.values?.permissions;
  const chosen = Array.isArray(checked) ? checked : typeof checked === 'string' ? [checked] : ['read'];
  const preset = value(props.state, 'preset') || 'read-only';
  return (
    <PostForm action="/keys" ctx={props.ctx} class="stack card">
      <ErrorBox message={props.state?.error} />
      {props.bucket !== null && <input type="hidden" name="bucket" value={props.bucket} />}
      <Field id={`${prefix}-name`} label="Key name" hint="Who or what uses it, e.g. ci-uploader.">
        <TextInput id={`${prefix}-name`} name="name" required maxlength={128} value={value(props.state, 'name')} />
      </Field>
      {props.bucket === null ? (
        <fieldset>
          <legend>Permissions</legend>
          {PERMISSIONS.map((permission) => (
            <label>
              <input type="checkbox" name="permissions" value={permission} checked={chosen.includes(permission)} /> {permission}{' '}
              <span class="hint">({PERMISSION_HINTS[permission]})</span>
            </label>
          ))}
        </fieldset>
      ) : (
        <fieldset>
          <legend>Access</legend>
          {(Object.keys(PRESETS) as Array<keyof typeof PRESETS>).map((name) => (
            <label>
              <input type="radio" name="preset" value={name} checked={preset === name} /> {name === 'read-only' ? 'Read-only' : 'Read & Write'}{' '}
              <span class="hint">({PRESETS[name].join(', ')})</span>
            </label>
          ))}
        </fieldset>
      )}
      <Field
        id={`${prefix}-prefix`}
        label="Object key prefix (optional)"
        hint="The key may only touch object keys starting with this, e.g. team-a/; empty: any."
      >
        <TextInput id={`${prefix}-prefix`} name="prefix" value={value(props.state, 'prefix')} />
      </Field>
      <Field id={`${prefix}-expires`} label="Expires in (optional)" hint="e.g. 90m, 12h, 30d; empty: never expires.">
        <TextInput id={`${prefix}-expires`} name="expiresIn" value={value(props.state, 'expiresIn')} />
      </Field>
      <Field id={`${prefix}-rate`} label="Rate limit (optional)" hint="The key's own requests per second, e.g. 20/s or 0.5/s; empty: the gateway's limit.">
        <TextInput id={`${prefix}-rate`} name="rateLimit" value={value(props.state, 'rateLimit')} />
      </Field>
      <Field id={`${prefix}-burst`} label="Burst (optional, with a rate limit)" hint="Requests at once after being idle; default one second's worth.">
        <TextInput id={`${prefix}-burst`} name="rateBurst" inputmode="numeric" value={value(props.state, 'rateBurst')} />
      </Field>
      <Field id={`${prefix}-ips`} label="Allowed networks (optional)" hint="Where the key may be used from, e.g. 10.0.0.0/8, 2001:db8::/32; empty: anywhere.">
        <TextInput id={`${prefix}-ips`} name="allowedIps" value={value(props.state, 'allowedIps')} />
      </Field>
      <div class="actions">
        <button type="submit">{props.bucket === null ? 'Create API key' : 'Create bucket key'}</button>
      </div>
    </PostForm>
  );
}

export function KeyPage(props: { ctx: PageContext; accessKey: AccessKey; endpoint: string; region: string; now: Date; error?: string | null }) {
  const key = props.accessKey;
  return (
    <Page title={`Key ${key.name}`} ctx={props.ctx} nav="storage">
      <p>
        <a href={key.bucket === null ? '/storage' : `/buckets/${segment(key.bucket)}`}>← {key.bucket === null ? 'Storage' : `Bucket ${key.bucket}`}</a>
      </p>
      <h1>Key {key.name}</h1>
      <ErrorBox message={props.error} />
      <dl class="details card">
        <dt>Access key ID</dt>
        <dd>
          <code>{key.accessKeyId}</code>
        </dd>
        <dt>Scope</dt>
        <dd>{key.bucket === null ? 'workspace-wide (every bucket)' : `bucket ${key.bucket} only`}</dd>
        <dt>State</dt>
        <dd>{stateOf(key, props.now)}</dd>
        <dt>Object key prefix</dt>
        <dd>{key.prefix === null ? 'any object key' : <code>{key.prefix}</code>}</dd>
        <dt>Permissions</dt>
        <dd>{key.permissions.join(', ')}</dd>
        <dt>Created</dt>
        <dd>{formatDate(key.createdAt)}</dd>
        <dt>Expires</dt>
        <dd>{isExpired(key, props.now) ? `expired ${formatDate(key.expiresAt)}` : formatDate(key.expiresAt, 'never')}</dd>
        <dt>Last used</dt>
        <dd>{formatDate(key.lastUsedAt, 'never')}</dd>
        <dt>Allowed from</dt>
        <dd>{key.allowedIps === null ? 'anywhere' : key.allowedIps.join(', ')}</dd>
        <dt>Rate limit</dt>
        <dd>{key.rateLimit === null ? "the gateway's" : `${key.rateLimit.requestsPerSecond} requests/s, burst ${key.rateLimit.burst}`}</dd>
        <dt>Endpoint</dt>
        <dd>
          <code>{props.endpoint}</code>
        </dd>
        <dt>Region</dt>
        <dd>
          <code>{props.region}</code>
        </dd>
        <dt>Secret</dt>
        <dd class="muted">shown once at creation; it cannot be retrieved. Rotate to get a new one.</dd>
      </dl>
      <h2>{key.disabledAt === null ? 'Disable' : 'Enable'}</h2>
      <p>
        {key.disabledAt === null
          ? 'Disabling refuses every request made with this key (403, saying it is disabled), presigned URLs included, from the next request on, and keeps the key: enable it again to resume.'
          : 'This key is refused while disabled. Enabling it makes it work again as before, its presigned URLs included.'}
      </p>
      <PostForm action={`/keys/${segment(key.accessKeyId)}/${key.disabledAt === null ? 'disable' : 'enable'}`} ctx={props.ctx}>
        <button type="submit" class="secondary">
          {key.disabledAt === null ? 'Disable this key' : 'Enable this key'}
        </button>
      </PostForm>
      <h2>Rotate</h2>
      <p>
        Creates a new key with the same name, scope and permissions (and the same lifetime, if this one expires) and shows its secret once. Switch your apps to
        it, then revoke this one.
      </p>
      <PostForm action={`/keys/${segment(key.accessKeyId)}/rotate`} ctx={props.ctx}>
        <button type="submit" class="secondary">
          Rotate: create a twin
        </button>
      </PostForm>
      <h2>Revoke</h2>
      <p>Revoking deletes the key: the very next request made with it is refused (403), presigned URLs included.</p>
      <a class="button danger" href={`/keys/${segment(key.accessKeyId)}/revoke`}>
        Revoke this key…
      </a>
    </Page>
  );
}

export function RevokeConfirmPage(props: { ctx: PageContext; accessKey: AccessKey }) {
  const key = props.accessKey;
  return (
    <Page title={`Revoke ${key.name}`} ctx={props.ctx} nav="storage">
      <h1>Revoke key {key.name}?</h1>
      <p class="warning">
        Every app, script and presigned URL using <code>{key.accessKeyId}</code> stops working on its next request. This cannot be undone.
      </p>
      <div class="actions">
        <PostForm action={`/keys/${segment(key.accessKeyId)}/revoke`} ctx={props.ctx}>
          <button type="submit" class="danger">
            Revoke {key.name}
          </button>
        </PostForm>
        <a class="button secondary" href={`/keys/${segment(key.accessKeyId)}`}>
          Cancel
        </a>
      </div>
    </Page>
  );
}

function stateOf(key: AccessKey, now: Date): string {
  if (key.disabledAt !== null) return `disabled since ${formatDate(key.disabledAt)}`;
  return isExpired(key, now) ? 'expired' : 'enabled';
}

export interface OneTimeSecret {
  key: AccessKeyWithSecret;
  environment: string[];
  boto3: string[];
  endpoint: string;
  region: string;
  /** Set when this key replaces another (rotation). */
  replaces: string | null;
}

export function SecretPage(props: { ctx: PageContext; secret: OneTimeSecret }) {
  const { key, endpoint, region } = props.secret;
  return (
    <Page title={`New key ${key.name}`} ctx={props.ctx} nav="storage">
      <h1>Key {key.name} created</h1>
      <p class="warning" role="alert">
        The secret access key is shown only once, now. It cannot be retrieved later: copy it somewhere safe before you leave this page.
      </p>
      <div class="card">
        <CopyBlock id="access-key-id" label="Access key ID" value={key.accessKeyId} />
        <CopyBlock id="secret-access-key" label="Secret access key" value={key.secretAccessKey} />
        <CopyBlock id="endpoint" label="Endpoint" value={endpoint} />
        <CopyBlock id="region" label="Region" value={region} />
        <CopyBlock id="env-block" label="Environment (aws-cli, SDKs)" value={props.secret.environment.join('\n')} />
        <CopyBlock id="boto3-snippet" label="boto3" value={props.secret.boto3.join('\n')} />
      </div>
      <p>
        Scope: {key.bucket === null ? 'every bucket' : `bucket ${key.bucket}`}; permissions: {key.permissions.join(', ')}; expires:{' '}
        {formatDate(key.expiresAt, 'never')}.
      </p>
      {props.secret.replaces !== null && (
        <p>
          This key replaces <a href={`/keys/${segment(props.secret.replaces)}`}>{props.secret.replaces}</a>: once your apps use the new one,{' '}
          <a href={`/keys/${segment(props.secret.replaces)}/revoke`}>revoke the old key</a>.
        </p>
      )}
      <p>
        <a href={`/keys/${segment(key.accessKeyId)}`}>Key details</a> ·{' '}
        <a href={key.bucket === null ? '/storage' : `/buckets/${segment(key.bucket)}`}>Back to {key.bucket === null ? 'Storage' : `bucket ${key.bucket}`}</a>
      </p>
    </Page>
  );
}

export function SecretGonePage(props: { ctx: PageContext }) {
  return (
    <Page title="Secret no longer shown" ctx={props.ctx} nav="storage">
      <h1>The secret is no longer shown</h1>
      <p>
        A key's secret is shown once, right after it is created, and cannot be retrieved again. If it was lost, rotate the key (create a twin) and revoke the
        old one.
      </p>
      <p>
        <a href="/storage">Back to Storage</a>
      </p>
    </Page>
  );
}
