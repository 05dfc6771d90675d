/** The Storage page (buckets with routing and key counts, workspace keys) and the sign-in page. */
import type { AccessKey } from '../../../keys/model.js';
import { ErrorBox, Field, Page, PostForm, formatDate, segment, type PageContext } from '../layout.js';
import { CreateKeyForm, KeyTable, type KeyFormState } from './keys.js';

export interface BucketRow {
  name: string;
  /** Where its requests go, e.g. "RunPod EU-RO-1 · volume abc123". */
  routing: string;
  /** "registered" or how the gateway found it. */
  source: string;
  bucketKeys: number;
  createdAt: Date | null;
}

export interface StorageView {
  buckets: BucketRow[];
  /** Set when part of the bucket list could not be read (e.g. RunPod's REST API down). */
  bucketsError: string | null;
  workspaceKeys: AccessKey[];
  datacenters: readonly string[];
  canCreateOnRunpod: boolean;
  defaultDatacenter: string | null;
  keyForm?: KeyFormState;
  bucketForm?: { error?: string | null; values?: Record<string, string>; which?: 'register' | 'create' };
}

export function StoragePage(props: { ctx: PageContext; view: StorageView; now: Date }) {
  const { view } = props;
  const bucketValue = (name: string) => view.bucketForm?.values?.[name] ?? '';
  return (
    <Page title="Storage" ctx={props.ctx} nav="storage">
      <h1>Storage</h1>
      <h2 id="buckets">Buckets</h2>
      <ErrorBox message={view.bucketsError} />
      {view.buckets.length === 0 ? (
        <p class="empty">No buckets yet: register one below.</p>
      ) : (
        <div class="table-wrap">
          <table aria-labelledby="buckets">
            <thead>
              <tr>
                <th scope="col">Bucket</th>
                <th scope="col">Routing</th>
                <th scope="col">Bucket keys</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {view.buckets.map((bucket) => (
                <tr>
                  <td>
                    <a href={`/buckets/${segment(bucket.name)}`}>{bucket.name}</a>
                  </td>
                  <td>
                    {bucket.routing} <span class="muted">({bucket.source})</span>
                  </td>
                  <td>{bucket.bucketKeys}</td>
                  <td>{formatDate(bucket.createdAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <div class="grid2">
        {view.canCreateOnRunpod && (
          <section aria-labelledby="create-bucket">
            <h2 id="create-bucket">Create a bucket on RunPod</h2>
            <p class="hint">Creates a RunPod network volume and registers it under this name.</p>
            <PostForm action="/buckets/create" ctx={props.ctx} class="stack card">
              <ErrorBox message={view.bucketForm?.which === 'create' ? view.bucketForm.error : null} />
              <Field id="cb-name" label="Bucket name" hint="3-63 lowercase letters, digits, dots and hyphens.">
                <input
                  type="text"
                  id="cb-name"
                  name="name"
                  required
                  value={view.bucketForm?.which === 'create' ? bucketValue('name') : ''}
                  autocomplete="off"
                />
              </Field>
              <Field id="cb-dc" label="Datacenter">
                <select id="cb-dc" name="datacenter">
                  {view.datacenters.map((dc) => (
                    <option value={dc} selected={dc === (bucketValue('datacenter') || view.defaultDatacenter)}>
                      {dc}
                    </option>
                  ))}
                </select>
              </Field>
              <div class="actions">
                <button type="submit">Create bucket</button>
              </div>
            </PostForm>
          </section>
        )}
        <section aria-labelledby="register-bucket">
          <h2 id="register-bucket">Register an existing bucket</h2>
          <p class="hint">A RunPod network volume (datacenter + volume id) or a bucket on any S3 endpoint. Registering never changes the data.</p>
          <PostForm action="/buckets" ctx={props.ctx} class="stack card">
            <ErrorBox message={view.bucketForm?.which === 'register' ? view.bucketForm.error : null} />
            <Field id="rb-name" label="Bucket name (as clients address it)">
              <input
                type="text"
                id="rb-name"
                name="name"
                required
                value={view.bucketForm?.which === 'register' ? bucketValue('name') : ''}
                autocomplete="off"
              />
            </Field>
            <Field id="rb-dc" label="RunPod datacenter (optional)" hint="For a network volume, e.g. EU-RO-1.">
              <select id="rb-dc" name="datacenter">
                <option value="">— not RunPod —</option>
                {view.datacenters.map((dc) => (
                  <option value={dc} selected={view.bucketForm?.which === 'register' && dc === bucketValue('datacenter')}>
                    {dc}
                  </option>
                ))}
              </select>
            </Field>
            <Field
              id="rb-upstream"
              label="Upstream bucket (optional)"
              hint="The network volume id, or the bucket's name on the S3 endpoint; default: the name above."
            >
              <input
                type="text"
                id="rb-upstream"
                name="upstreamBucket"
                value={view.bucketForm?.which === 'register' ? bucketValue('upstreamBucket') : ''}
                autocomplete="off"
              />
            </Field>
            <Field id="rb-endpoint" label="S3 endpoint (optional, not RunPod)" hint="e.g. https://s3.eu-central-1.amazonaws.com; needs a region.">
              <input
                type="text"
                id="rb-endpoint"
                name="endpoint"
                value={view.bucketForm?.which === 'register' ? bucketValue('endpoint') : ''}
                autocomplete="off"
              />
            </Field>
            <Field id="rb-region" label="Region (with an endpoint)">
              <input type="text" id="rb-region" name="region" value={view.bucketForm?.which === 'register' ? bucketValue('region') : ''} autocomplete="off" />
            </Field>
            <div class="actions">
              <button type="submit">Register bucket</button>
            </div>
          </PostForm>
        </section>
      </div>
      <h2 id="api-keys">API keys (workspace-wide)</h2>
      <p class="hint">These keys reach every bucket, with the permissions they were given. Keys for one bucket live on that bucket's page.</p>
      <KeyTable keys={view.workspaceKeys} showBucket={false} empty="No workspace keys." now={props.now} />
      <h2 id="create-api-key">Create API key</h2>
      <CreateKeyForm ctx={props.ctx} bucket={null} state={view.keyForm} />
    </Page>
  );
}

export function SignInPage(props: { error?: string | null; status?: string | null }) {
  return (
    <Page title="Sign in" ctx={{ csrfToken: null, notices: props.status ? [props.status] : [] }}>
      <h1>Sign in to keygate</h1>
      <form method="post" action="/signin" class="stack card">
        <ErrorBox message={props.error} />
        <Field id="token" label="Admin token" hint="Printed once when keygate generated it, or KEYGATE_ADMIN_TOKEN.">
          <input type="password" id="token" name="token" required autocomplete="current-password" autofocus />
        </Field>
        <div class="actions">
          <button type="submit">Sign in</button>
        </div>
      </form>
    </Page>
  );
}
