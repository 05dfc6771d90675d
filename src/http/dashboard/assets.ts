/**
 * The dashboard's stylesheet and its one script, served from the admin listener itself (the
 * Content-Security-Policy allows only same-origin styles and scripts, and no inline ones). The
 * script only adds copy buttons: every action works without it.
 */
import { createHash } from 'node:crypto';

export const DASHBOARD_CSS = `
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6470; --bg: #fff; --panel: #f5f7f9; --line: #d5dae0;
  --accent: #0b5cad; --danger: #b42318; --ok: #146c2e; --warn-bg: #fff4d6; --focus: #f59e0b; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e9ed; --muted: #a3acb8; --bg: #14171b; --panel: #1d2127; --line: #343a42;
  --accent: #6cb3ff; --danger: #ff7b72; --ok: #5bd17a; --warn-bg: #3a2f10; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; flex-wrap: wrap; gap: .5rem 1.5rem; align-items: center; padding: .75rem 1.25rem; border-bottom: 1px solid var(--line); background: var(--panel); }
header.top .brand { font-weight: 700; font-size: 1.1rem; color: var(--fg); text-decoration: none; }
header.top nav { display: flex; gap: 1rem; flex: 1; }
header.top form { margin: 0; }
main { max-width: 1180px; margin: 0 auto; padding: 1rem 1.25rem 3rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 2rem 0 .75rem; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, select:focus-visible, textarea:focus-visible, summary:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .5rem .75rem; border-bottom: 1px solid var(--line); vertical-align: top; }
tr:last-child td { border-bottom: 0; }
th { background: var(--panel); font-weight: 600; white-space: nowrap; }
td code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; word-break: break-all; }
.muted { color: var(--muted); }
.empty { color: var(--muted); padding: 1rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 1rem 1.25rem; background: var(--panel); margin: 1rem 0; }
form.stack { display: grid; gap: .75rem; max-width: 40rem; }
.field { display: grid; gap: .25rem; }
.field label, fieldset legend { font-weight: 600; }
.hint { color: var(--muted); font-size: .875rem; }
fieldset { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem .75rem; margin: 0; }
fieldset label { display: inline-flex; gap: .35rem; align-items: center; margin-right: 1rem; font-weight: 400; }
input[type=text], input[type=password], input[type=search], select, textarea { font: inherit; padding: .45rem .55rem; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); width: 100%; }
textarea { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; min-height: 14rem; }
button, .button { font: inherit; display: inline-block; padding: .45rem .9rem; border-radius: 4px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; }
button.secondary, .button.secondary { background: transparent; color: var(--accent); }
button.danger, .button.danger { background: var(--danger); border-color: var(--danger); }
button.link { background: none; border: 0; padding: 0; color: var(--accent); text-decoration: underline; }
.actions { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; }
.notice { border-left: 4px solid var(--ok); background: var(--panel); padding: .6rem .9rem; margin: 1rem 0; }
.error { border-left: 4px solid var(--danger); background: var(--panel); padding: .6rem .9rem; margin: 1rem 0; }
.warning { border-left: 4px solid var(--focus); background: var(--warn-bg); padding: .6rem .9rem; margin: 1rem 0; font-weight: 600; }
.tabs { display: flex; flex-wrap: wrap; gap: .25rem; border-bottom: 1px solid var(--line); margin: 1rem 0; }
.tabs a { padding: .5rem .9rem; text-decoration: none; border: 1px solid transparent; border-bottom: 0; border-radius: 6px 6px 0 0; }
.tabs a[aria-current=page] { border-color: var(--line); background: var(--panel); color: var(--fg); font-weight: 600; }
.secret { display: grid; gap: .25rem; margin: .75rem 0; }
.secret pre { margin: 0; padding: .6rem .75rem; background: var(--bg); border: 1px solid var(--line); border-radius: 4px; overflow-x: auto; white-space: pre-wrap; word-break: break-all; }
.secret .label { display: flex; justify-content: space-between; align-items: center; font-weight: 600; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: .35rem 1rem; }
dl.details dt { font-weight: 600; }
dl.details dd { margin: 0; word-break: break-all; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(22rem, 1fr)); gap: 1rem 2rem; }
@media (max-width: 600px) { main { padding: .75rem; } th, td { padding: .4rem .5rem; } dl.details { grid-template-columns: 1fr; } .grid2 { grid-template-columns: 1fr; } }
`;

export const DASHBOARD_JS = `
'use strict';
document.querySelectorAll('button[data-copy]').forEach(function (button) {
  var source = document.getElementById(button.getAttribute('data-copy'));
  if (!source || !navigator.clipboard) return;
  button.hidden = false;
  button.addEventListener('click', function () {
    navigator.clipboard.writeText(source.textContent).then(function () {
      var label = button.textContent;
      button.textContent = 'Copied';
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  });
});
`;

/** Cache-busting suffix for the asset URLs (assets are cached; a new version gets a new URL). */
export const ASSET_VERSION = createHash('sha256').update(DASHBOARD_CSS).update(DASHBOARD_JS).digest('hex').slice(0, 12);
