/**
 * The dashboard's page shell and the small pieces every page uses. Hono's JSX escapes every value,
 * so names, keys and messages from the store or an upstream render as text, never as markup.
 */
import { raw } from 'hono/html';
import type { Child } from 'hono/jsx';
import { ASSET_VERSION } from './assets.js';

export interface PageContext {
  /** Null on the sign-in page. */
  csrfToken: string | null;
  notices: string[];
}

export function Page(props: { title: string; ctx: PageContext; children?: Child; nav?: 'storage' | 'links' | null }) {
  return (
    <>
      {raw('<!DOCTYPE html>')}
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title>{`${props.title} · keygate`}</title>
          <link rel="stylesheet" href={`/assets/dashboard.css?v=${ASSET_VERSION}`} />
          <script src={`/assets/dashboard.js?v=${ASSET_VERSION}`} defer></script>
        </head>
        <body>
          <header class="top">
            <a class="brand" href="/">
              keygate
            </a>
            {props.ctx.csrfToken !== null && (
              <>
                <nav aria-label="Main">
                  <a href="/storage" aria-current={props.nav === 'storage' ? 'page' : undefined}>
                    Storage
                  </a>
                </nav>
                <form method="post" action="/signout">
                  <Csrf token={props.ctx.csrfToken} />
                  <button type="submit" class="secondary">
                    Sign out
                  </button>
                </form>
              </>
            )}
          </header>
          <main>
            {props.ctx.notices.map((notice) => (
              <p class="notice" role="status">
                {notice}
              </p>
            ))}
            {props.children}
          </main>
        </body>
      </html>
    </>
  );
}

export function Csrf(props: { token: string }) {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/** A state-changing form: POST with the session's CSRF token. */
export function PostForm(props: { action: string; ctx: PageContext; class?: string; children?: Child }) {
  return (
    <form method="post" action={props.action} class={props.class}>
      <Csrf token={props.ctx.csrfToken ?? ''} />
      {props.children}
    </form>
  );
}

export function ErrorBox(props: { message: string | null | undefined }) {
  if (!props.message) return null;
  return (
    <p class="error" role="alert">
      {props.message}
    </p>
  );
}

export function Field(props: { id: string; label: string; hint?: string; children: Child }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && (
        <span class="hint" id={`${props.id}-hint`}>
          {props.hint}
        </span>
      )}
    </div>
  );
}

/** A labelled value to copy: the text, and a copy button the script reveals. */
export function CopyBlock(props: { id: string; label: string; value: string }) {
  return (
    <div class="secret">
      <div class="label">
        <span id={`${props.id}-label`}>{props.label}</span>
        <button type="button" class="secondary" data-copy={props.id} hidden aria-label={`Copy ${props.label}`}>
          Copy
        </button>
      </div>
      <pre id={props.id} aria-labelledby={`${props.id}-label`}>
        {props.value}
      </pre>
    </div>
  );
}

/** A one-line text field (no autocomplete: these are names and keys, not personal data). */
export function TextInput(props: { id: string; name: string; value?: string; required?: boolean; maxlength?: number; inputmode?: 'numeric' }) {
  return (
    <input
      type="text"
      id={props.id}
      name={props.name}
      value={props.value ?? ''}
      required={props.required}
      maxlength={props.maxlength}
      inputmode={props.inputmode}
      autocomplete="off"
    />
  );
}

/** A table with column headers; an empty header is the actions column. */
export function DataTable(props: { columns: string[]; labelledBy?: string; children?: Child }) {
  return (
    <div class="table-wrap">
      <table aria-labelledby={props.labelledBy}>
        <thead>
          <tr>
            {props.columns.map((column) => (
              <th scope="col">{column === '' ? <span class="muted">Actions</span> : column}</th>
            ))}
          </tr>
        </thead>
        <tbody>{props.children}</tbody>
      </table>
    </div>
  );
}

export function Tabs(props: { tabs: Array<{ href: string; label: string; current: boolean }> }) {
  return (
    <nav class="tabs" aria-label="Sections">
      {props.tabs.map((tab) => (
        <a href={tab.href} aria-current={tab.current ? 'page' : undefined}>
          {tab.label}
        </a>
      ))}
    </nav>
  );
}

export function formatDate(date: Date | null, never = '—'): string {
  return date === null ? never : `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** A path segment for links: bucket names and key ids are URL-safe, object keys are not. */
export function segment(value: string): string {
  return encodeURIComponent(value);
}
