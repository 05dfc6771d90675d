/** The Storage page (buckets with routing and key counts, workspace keys) and the sign-in page. */
import type { AccessKey } from '../../../keys/model.js';
import { DataTable, ErrorBox, Field, formatDate, Page, PostForm, segment, TextInput, type PageContext } from '../layout.js';
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
  const formValue = (which: 'register' | 'create', name: string) => (view.bucketForm?.which === which ? (view.bucketForm.values?.[name] ?? '') : '');
  return (
    <Page title="Storage" ctx={props.ctx} nav="storage">
      <h1>Storage</h1>
      <h2 id="buckets">Buckets</h2>
      <ErrorBox message={view.bucketsError} />
      {view.buckets.length === 0 ? (
        <p class="empty">No buckets yet: register one below.</p>
      ) : (
        <DataTable columns={['Bucket', 'Routing', 'Bucket keys', 'Created']} labelledBy="buckets">
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
        </DataTable>
      )}
      <div class="grid2">
        {view.canCreateOnRunpod && (
          <section aria-labelledby="create-bucket">
            <h2 id="create-bucket">Create a bucket on RunPod</h2>
            <p class="hint">Creates a RunPod network volume and registers it under this name.</p>
            <PostForm action="/buckets/create" ctx={props.ctx} class="stack card">
              <ErrorBox message={view.bucketForm?.which === 'create' ? view.bucketForm.error : null} />
              <Field id="cb-name" label="Bucket name" hint="3-63 lowercase letters, digits, dots and hyphens.">
                <TextInput id="cb-name" name="name" required value={formValue('create', 'name')} />
              </Field>
              <Field id="cb-dc" label="Datacenter">
                <DatacenterSelect id="cb-dc" datacenters={view.datacenters} selected={formValue('create', 'datacenter') || view.defaultDatacenter} />
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
              <TextInput id="rb-name" name="name" required value={formValue('register', 'name')} />
            </Field>
            <Field id="rb-dc" label="RunPod datacenter (optional)" hint="For a network volume, e.g. EU-RO-1.">
              <DatacenterSelect id="rb-dc" datacenters={view.datacenters} selected={formValue('register', 'datacenter')} none="— not RunPod —" />
            </Field>
            <Field
              id="rb-upstream"
              label="Upstream bucket (optional)"
              hint="The network volume id, or the bucket's name on the S3 endpoint; default: the name above."
            >
              <TextInput id="rb-upstream" name="upstreamBucket" value={formValue('register', 'upstreamBucket')} />
            </Field>
            <Field id="rb-endpoint" label="S3 endpoint (optional, not RunPod)" hint="e.g. https://s3.eu-central-1.amazonaws.com; needs a region.">
              <TextInput id="rb-endpoint" name="endpoint" value={formValue('register', 'endpoint')} />
            </Field>
            <Field id="rb-region" label="Region (with an endpoint)">
              <TextInput id="rb-region" name="region" value={formValue('register', 'region')} />
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

function DatacenterSelect(props: { id: string; datacenters: readonly string[]; selected: string | null; none?: string }) {
  return (
    <select id={props.id} name="datacenter">
      {props.none !== undefined && <option value="">{props.none}</option>}
      {props.datacenters.map((dc) => (
        <option value={dc} selected={dc === props.selected}>
          {dc}
        </option>
      ))}
    </select>
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
