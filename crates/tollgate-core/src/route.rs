//! Routes: a path prefix mapped to an upstream, and the longest-prefix table the gateway matches on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the gateway understands of a route's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// Any HTTP service: forwarded, recorded without model or tokens.
    #[default]
    Http,
    /// OpenAI-compatible API: model and token usage recorded.
    Openai,
    /// Anthropic Messages API: model and token usage recorded.
    Anthropic,
}

impl RouteKind {
    /// The name used in the store, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
        }
    }

    /// Whether the gateway extracts model and tokens for this kind.
    pub fn is_llm(self) -> bool {
        !matches!(self, Self::Http)
    }
}

impl fmt::Display for RouteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RouteKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "http" => Ok(Self::Http),
            "openai" => Ok(Self::Openai),
            "anthropic" => Ok(Self::Anthropic),
            other => Err(format!(
                "unknown route kind `{other}` (expected http, openai or anthropic)"
            )),
        }
    }
}

/// Checks a route prefix: starts with `/`, no trailing `/` (except the root), no query, no `..`.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!("route prefix `{prefix}` must start with /"));
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        return Err(format!("route prefix `{prefix}` must not end with /"));
    }
    if prefix.contains(['?', '#', ' ']) || prefix.split('/').any(|s| s == ".." || s == ".") {
        return Err(format!(
            "route prefix `{prefix}` may hold only path segments"
        ));
    }
    if prefix.len() > 256 {
        return Err("route prefix is longer than 256 characters".to_owned());
    }
    Ok(())
}

/// Checks a route name: 1–64 characters of letters, digits, `-`, `_` and `.`.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 {
        return Err(format!("name `{name}` must be 1 to 64 characters"));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(format!(
            "name `{name}` may hold only letters, digits, -, _ and ."
        ));
    }
    Ok(())
}

/// Checks an upstream base URL: `http` or `https`, a host, no query or fragment.
pub fn validate_upstream(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("upstream `{url}` must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains(['@', ' ']) {
        return Err(format!("upstream `{url}` has no valid host"));
    }
    if url.contains(['?', '#']) {
        return Err(format!(
            "upstream `{url}` must not have a query or fragment"
        ));
    }
    Ok(())
}

/// Whether `path` falls under `prefix` on a segment boundary (`/openai` covers `/openai/v1`, not `/openaix`).
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// An immutable set of routes, matched by longest prefix. Rebuilt whole when routes change.
#[derive(Debug, Clone)]
pub struct RouteTable<R> {
    // Sorted by prefix length, longest first, so the first match is the longest.
    entries: Vec<(String, R)>,
}

impl<R> Default for RouteTable<R> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
        }
    }
}

impl<R> RouteTable<R> {
    /// Builds the table from `(prefix, route)` pairs.
    pub fn new(mut entries: Vec<(String, R)>) -> Self {
        entries.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        Self { entries }
    }

    /// The route with the longest prefix covering `path`.
    pub fn find(&self, path: &str) -> Option<&R> {
        self.entries
            .iter()
            .find(|(prefix, _)| prefix_matches(prefix, path))
            .map(|(_, r)| r)
    }

    /// Number of routes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the table has no routes.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_prefix_wins_on_segment_boundaries() {
        let table = RouteTable::new(vec![
            ("/".to_owned(), "root"),
            ("/openai".to_owned(), "openai"),
            ("/openai/v2".to_owned(), "v2"),
        ]);
        assert_eq!(table.find("/openai/v1/chat"), Some(&"openai"));
        assert_eq!(table.find("/openai"), Some(&"openai"));
        assert_eq!(table.find("/openai/v2/x"), Some(&"v2"));
        assert_eq!(table.find("/openaix"), Some(&"root"));
        let no_root = RouteTable::new(vec![("/svc".to_owned(), 1)]);
        assert_eq!(no_root.find("/other"), None);
        assert_eq!(no_root.find("/svcx"), None);
    }

    #[test]
    fn validation_names_the_problem() {
        assert!(validate_prefix("/ok/path").is_ok());
        assert!(validate_prefix("/").is_ok());
        assert!(
            validate_prefix("nope")
                .unwrap_err()
                .contains("start with /")
        );
        assert!(validate_prefix("/a/").is_err());
        assert!(validate_prefix("/a/../b").is_err());
        assert!(validate_upstream("https://api.openai.com").is_ok());
        assert!(validate_upstream("http://127.0.0.1:9000/base").is_ok());
        assert!(validate_upstream("ftp://x").is_err());
        assert!(validate_upstream("http://").is_err());
        assert!(validate_name("open-ai_1.x").is_ok());
        assert!(validate_name("bad name").is_err());
        assert_eq!("openai".parse::<RouteKind>(), Ok(RouteKind::Openai));
        assert!("grpc".parse::<RouteKind>().is_err());
    }
}
