//! The embedded web console: the single-page app built from `web/` (see `build.rs`), served at
//! `/` and `/console` of the console listener with a fallback to `index.html` for the app's own
//! paths. Hashed assets are cached for a year; everything else is revalidated by its ETag.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use rust_embed::RustEmbed;

use crate::error::ApiError;

#[derive(RustEmbed)]
#[folder = "$TOLLGATE_UI_DIR"]
struct Assets;

/// Paths that belong to the API, never to the app: an unknown one is a JSON 404.
const API_PREFIXES: &[&str] = &["/api/", "/health", "/metrics"];

/// The page addresses of the original dashboards (seeds 000 and 001), with the console page each
/// one is now: bookmarks and links into the old dashboards land on the same page here.
pub const SEED_PAGES: &[(&str, &str)] = &[
    ("dashboard", ""),
    ("system-health", "system"),
    ("audit-logs", "audit"),
    ("usage-analytics", "analytics"),
];

/// Whether this binary carries the built console (rather than the page that says how to build it).
pub const BUILT: bool = matches!(env!("TOLLGATE_UI_BUILT").as_bytes(), b"1");

/// The fallback of the console router: a file of the app, the app's page, or a JSON 404.
pub async fn fallback(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    if API_PREFIXES
        .iter()
        .any(|p| path == p.trim_end_matches('/') || path.starts_with(p))
    {
        return ApiError::NotFound("no such console path".into()).into_response();
    }
    if method != Method::GET && method != Method::HEAD {
        return ApiError::NotFound("no such console path".into()).into_response();
    }
    let under_console = path
        .strip_prefix("/console")
        .filter(|rest| rest.is_empty() || rest.starts_with('/'));
    let relative = under_console.unwrap_or(path).trim_start_matches('/');
    if let Some((_, page)) = SEED_PAGES
        .iter()
        .find(|(old, _)| relative.trim_end_matches('/') == *old)
    {
        let base = if under_console.is_some() {
            "/console/"
        } else {
            "/"
        };
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        return Redirect::permanent(&format!("{base}{page}{query}")).into_response();
    }
    match Assets::get(relative).filter(|_| !relative.is_empty()) {
        Some(file) => serve(relative, &file, &headers),
        // Not a file: a path of the app (or a missing hashed asset, which must not be the page).
        None if relative.starts_with("assets/") => {
            ApiError::NotFound("no such console asset".into()).into_response()
        }
        None => match Assets::get("index.html") {
            Some(page) => serve("index.html", &page, &headers),
            None => ApiError::NotFound("the console page is missing".into()).into_response(),
        },
    }
}

fn serve(name: &str, file: &rust_embed::EmbeddedFile, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..16]));
    let cache = if name.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        file.data.clone().into_owned().into_response()
    };
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
        h.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, value);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response
}

#[cfg(test)]
mod tests {
    /// The web console's API types are generated from `web/openapi.json`; it must be the
    /// document this code serves, or the UI compiles against an API that does not exist.
    #[test]
    fn web_openapi_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/openapi.json");
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed.trim_end() == crate::openapi_json().trim_end(),
            "web/openapi.json is stale: run `cargo run -p tollgate -- openapi > web/openapi.json`"
        );
    }
}
