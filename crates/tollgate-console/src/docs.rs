//! The OpenAPI document and a docs page that renders it with no internet access (no CDN).

use axum::body::Bytes;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

/// `/api/openapi.json`: the document is built on the first request (a few tens of milliseconds,
/// on the blocking pool; not at start, see `operations.rs`) and kept.
pub async fn openapi() -> Response {
    // Bytes: each answer shares the one copy instead of copying the document.
    static DOCUMENT: OnceCell<Bytes> = OnceCell::const_new();
    let document = DOCUMENT
        .get_or_init(|| async {
            Bytes::from(
                tokio::task::spawn_blocking(crate::openapi_json)
                    .await
                    .unwrap_or_else(|_| "{}".into()),
            )
        })
        .await;
    (
        [(header::CONTENT_TYPE, "application/json")],
        document.clone(),
    )
        .into_response()
}

/// `/api/docs`.
pub async fn page() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], PAGE).into_response()
}

/// `/api/docs.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

const PAGE: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tollgate API</title>
<style>
:root{--bg:#fff;--fg:#1b1f24;--muted:#57606a;--line:#d0d7de;--get:#0969da;--post:#1a7f37;--patch:#9a6700;--put:#8250df;--delete:#cf222e}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#8d96a0;--line:#30363d}}
body{font:15px/1.5 system-ui,sans-serif;background:var(--bg);color:var(--fg);max-width:960px;margin:0 auto;padding:1rem}
h2{border-bottom:1px solid var(--line);padding-bottom:.3rem;margin-top:2rem}
details{border:1px solid var(--line);border-radius:6px;margin:.4rem 0;padding:.4rem .7rem}
summary{cursor:pointer}summary:focus-visible{outline:2px solid var(--get)}
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase;font-size:.8rem}
.get{color:var(--get)}.post{color:var(--post)}.patch{color:var(--patch)}.put{color:var(--put)}.delete{color:var(--delete)}
code,pre{font-family:ui-monospace,monospace;font-size:.85rem}pre{overflow:auto;background:rgba(127,127,127,.1);padding:.5rem;border-radius:4px}
.muted{color:var(--muted)}
</style></head>
<body><h1>tollgate console API</h1>
<p class="muted">Generated from <a href="/api/openapi.json">/api/openapi.json</a>. Authenticate with the session cookie
(and <code>X-CSRF-Token</code> on writes) or <code>Authorization: Bearer tgp_…</code>.</p>
<main id="doc">Loading…</main>
<script src="/api/docs.js"></script></body></html>"#;

const SCRIPT: &str = r#"(async () => {
  const main = document.getElementById('doc');
  const el = (tag, attrs = {}, ...kids) => { const e = document.createElement(tag); Object.assign(e, attrs); e.append(...kids); return e; };
  let spec;
  try { spec = await (await fetch('/api/openapi.json')).json(); } catch (e) { main.textContent = 'Cannot load the document: ' + e; return; }
  const schemaText = (s) => JSON.stringify(s, null, 2);
  const byTag = {};
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags || ['other'])[0];
      (byTag[tag] = byTag[tag] || []).push({ path, method, op });
    }
  }
  main.textContent = '';
  for (const t of spec.tags || Object.keys(byTag).map((name) => ({ name }))) {
    const ops = byTag[t.name]; if (!ops) continue;
    main.append(el('h2', { textContent: t.name }), el('p', { className: 'muted', textContent: t.description || '' }));
    for (const { path, method, op } of ops) {
      const d = el('details', {}, el('summary', {}, el('span', { className: 'm ' + method, textContent: method }), el('code', { textContent: path }), ' — ' + (op.summary || op.description || '')));
      if (op.description) d.append(el('p', { textContent: op.description }));
      if (op.parameters) d.append(el('p', { textContent: 'Parameters: ' + op.parameters.map((p) => `${p.name} (${p.in}${p.required ? ', required' : ''})`).join(', ') }));
      const body = op.requestBody && op.requestBody.content && op.requestBody.content['application/json'];
      if (body) d.append(el('p', { textContent: 'Request body:' }), el('pre', { textContent: schemaText(body.schema) }));
      d.append(el('p', { textContent: 'Responses: ' + Object.entries(op.responses || {}).map(([code, r]) => `${code} ${r.description || ''}`).join('; ') }));
      main.append(d);
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  main.append(el('h2', { textContent: 'schemas' }));
  for (const [name, s] of Object.entries(schemas)) main.append(el('details', {}, el('summary', { textContent: name }), el('pre', { textContent: schemaText(s) })));
})();"#;
