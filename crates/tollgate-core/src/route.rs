//! Routes: a path prefix mapped to an upstream, and the longest-prefix table the gateway matches on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the gateway understands of a route's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    /// Any HTTP service: forwarded, recorded without model or tokens.
    #[default]
    Http,
    /// OpenAI-compatible API: model and token usage recorded.
    Openai,
    /// Anthropic Messages API: model and token usage recorded.
    Anthropic,
    /// Model-routed LLM endpoint: OpenAI-compatible paths and Anthropic's `/v1/messages`, each
    /// call sent to a target of the pool of the model its body names.
    Llm,
}

impl RouteKind {
    /// The name used in the store, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Openai => "openai",
            Self::Anthropic => "anthropic",
            Self::Llm => "llm",
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
            "llm" => Ok(Self::Llm),
            other => Err(format!(
                "unknown route kind `{other}` (expected http, openai, anthropic or llm)"
            )),
        }
    }
}

/// Checks a route prefix: starts with `/`, no trailing `/` (except the root), and only unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) in non-empty segments that are not `.` or `..`. A prefix is so
/// already in the form [`normalize_path`] gives, and prefix matching compares like with like.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if !prefix.starts_with('/') {
        return Err(format!("route prefix `{prefix}` must start with /"));
    }
    if prefix.len() > 256 {
        return Err("route prefix is longer than 256 characters".to_owned());
    }
    if prefix.len() > 1 && prefix.ends_with('/') {
        return Err(format!("route prefix `{prefix}` must not end with /"));
    }
    if let Some(bad) = prefix
        .chars()
        .find(|&c| c != '/' && !(c.is_ascii() && is_unreserved(c as u8)))
    {
        return Err(format!(
            "route prefix `{prefix}` may hold only letters, digits, -, ., _, ~ and /, not `{}`",
            bad.escape_default()
        ));
    }
    if prefix.len() > 1
        && prefix[1..]
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(format!(
            "route prefix `{prefix}` must not hold empty, `.` or `..` segments"
        ));
    }
    Ok(())
}

/// Why a request path was refused by [`normalize_path`]. Each message names the problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path does not start with `/`.
    #[error("the path must start with /")]
    NotAbsolute,
    /// `%2F` inside a segment: upstreams disagree on whether it separates segments.
    #[error("the path holds an encoded slash (%2F)")]
    EncodedSlash,
    /// `\` or `%5C`: some upstreams treat it as a separator.
    #[error("the path holds a backslash (\\ or %5C)")]
    Backslash,
    /// A `.` or `..` segment, plain or encoded (`%2e%2e`, `.%2E`, `..;x`).
    #[error("the path holds a `.` or `..` segment (plain or percent-encoded)")]
    DotSegment,
    /// `%25` followed by two hex digits: a second decoding would give another character.
    #[error("the path holds a double percent-encoding (%25 followed by two hex digits)")]
    DoubleEncoding,
    /// `;` or `%3B`: servers that strip path parameters (`/admin;x` → `/admin`) would see another
    /// route's path than the one matched.
    #[error("the path holds a `;` (path parameters are not accepted)")]
    Semicolon,
    /// A NUL or other control character, raw or encoded (`%00`–`%1F`, `%7F`).
    #[error("the path holds a control character (raw or %00-%1F, %7F)")]
    ControlCharacter,
    /// `%` not followed by two hex digits.
    #[error("the path holds a `%` not followed by two hex digits")]
    InvalidEscape,
}

/// One character of a path after decoding: a literal byte, or a byte that stays percent-encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PathByte {
    Literal(u8),
    Encoded(u8),
}

/// The one form the gateway matches routes on and forwards: unreserved characters decoded
/// (`%61` → `a`), other escapes in upper case (`%3b` → `%3B`), characters a path may not hold raw
/// encoded, runs of `/` collapsed (a trailing `/` is kept). Refused, since an upstream could read
/// them as something else than what was matched: encoded `/`, `\` in any form, `.` and `..`
/// segments in any encoding, double encoding, `;` path parameters, control characters and broken
/// escapes.
///
/// Takes the path only: split the query off first and forward it as it came.
pub fn normalize_path(path: &str) -> Result<String, PathError> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    let decoded = decode(bytes)?;
    for (i, byte) in decoded.iter().enumerate() {
        if *byte == PathByte::Encoded(b'%')
            && matches!(
                decoded.get(i + 1..i + 3),
                Some([PathByte::Literal(a), PathByte::Literal(b)])
                    if a.is_ascii_hexdigit() && b.is_ascii_hexdigit()
            )
        {
            return Err(PathError::DoubleEncoding);
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in decoded.split(|b| *b == PathByte::Literal(b'/')) {
        if segment.is_empty() {
            continue;
        }
        if is_dot_segment(segment) {
            return Err(PathError::DotSegment);
        }
        out.push('/');
        for byte in segment {
            match *byte {
                PathByte::Literal(b) => out.push(char::from(b)),
                PathByte::Encoded(b) => {
                    out.push('%');
                    out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
                    out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
                }
            }
        }
    }
    if out.is_empty() || bytes.last() == Some(&b'/') {
        out.push('/');
    }
    Ok(out)
}

const HEX_UPPER: [u8; 16] = *b"0123456789ABCDEF";

/// Decodes escapes of unreserved characters, keeps other escapes, encodes raw bytes a path may not
/// hold, and refuses the bytes no form may hold.
fn decode(bytes: &[u8]) -> Result<Vec<PathByte>, PathError> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let raw = bytes[i];
        let (byte, encoded) = if raw == b'%' {
            let value = bytes
                .get(i + 1..i + 3)
                .and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?))
                .ok_or(PathError::InvalidEscape)?;
            i += 3;
            match value {
                b'/' => return Err(PathError::EncodedSlash),
                value if is_unreserved(value) => (value, false),
                value => (value, true),
            }
        } else {
            i += 1;
            (raw, !is_path_char(raw))
        };
        if byte == b'\\' {
            return Err(PathError::Backslash);
        }
        if byte == b';' {
            return Err(PathError::Semicolon);
        }
        if byte < 0x20 || byte == 0x7f {
            return Err(PathError::ControlCharacter);
        }
        out.push(if encoded {
            PathByte::Encoded(byte)
        } else {
            PathByte::Literal(byte)
        });
    }
    Ok(out)
}

/// `.` or `..` (after decoding, so `%2e%2E` too).
fn is_dot_segment(segment: &[PathByte]) -> bool {
    matches!(
        segment,
        [PathByte::Literal(b'.')] | [PathByte::Literal(b'.'), PathByte::Literal(b'.')]
    )
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 unreserved: `A-Z a-z 0-9 - . _ ~`.
fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// What a path segment may hold raw (RFC 3986 `pchar` without `%`), and `/`.
fn is_path_char(byte: u8) -> bool {
    is_unreserved(byte)
        || matches!(
            byte,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
        )
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
        assert!(validate_prefix("/v1.2/x_y-z~").is_ok());
        for odd in [
            "/a//b", "/a/./b", "/a%2fb", "/a%41", "/a b", "/a\\b", "/a;b", "/é", "//",
        ] {
            let err = validate_prefix(odd).unwrap_err();
            assert!(err.contains(odd), "{odd}: {err}");
        }
        assert!(validate_upstream("https://api.openai.com").is_ok());
        assert!(validate_upstream("http://127.0.0.1:9000/base").is_ok());
        assert!(validate_upstream("ftp://x").is_err());
        assert!(validate_upstream("http://").is_err());
        assert!(validate_name("open-ai_1.x").is_ok());
        assert!(validate_name("bad name").is_err());
        assert_eq!("openai".parse::<RouteKind>(), Ok(RouteKind::Openai));
        assert!("grpc".parse::<RouteKind>().is_err());
    }

    #[test]
    fn paths_are_normalised_to_one_form() {
        for (input, expected) in [
            ("/", "/"),
            ("//", "/"),
            ("/a/b", "/a/b"),
            ("/a/b/", "/a/b/"),
            ("/a//b///c//", "/a/b/c/"),
            ("//admin/x", "/admin/x"),
            ("/%61dmin/%7e%2D%2e%5f", "/admin/~-._"),
            ("/a%3fb%3Dc", "/a%3Fb%3Dc"),
            ("/sp ace/\"q\"/{}", "/sp%20ace/%22q%22/%7B%7D"),
            ("/caf\u{e9}", "/caf%C3%A9"),
            ("/.../x", "/.../x"),
            ("/.a/..b/a./a..", "/.a/..b/a./a.."),
            ("/100%25/x", "/100%25/x"),
            ("/%25zz", "/%25zz"),
            ("/a:b@c!$&'()*+,=", "/a:b@c!$&'()*+,="),
        ] {
            assert_eq!(normalize_path(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn escapes_that_could_mean_something_else_upstream_are_refused() {
        use PathError::*;
        for (input, error) in [
            ("", NotAbsolute),
            ("*", NotAbsolute),
            ("%2Fa", NotAbsolute),
            ("/ng/..%2finternal/x", EncodedSlash),
            ("/ng/admin%2Fx", EncodedSlash),
            ("/ng/%2e%2e%2finternal/x", EncodedSlash),
            ("/ng/..%5cinternal/x", Backslash),
            ("/ng/..\\internal", Backslash),
            ("/ng/%5C", Backslash),
            ("/ng/%252f", DoubleEncoding),
            ("/ng/%252e%252e/x", DoubleEncoding),
            ("/ng/%25%32%66", DoubleEncoding),
            ("/ng/%25a1", DoubleEncoding),
            ("/ng/../x", DotSegment),
            ("/ng/./x", DotSegment),
            ("/ng/..", DotSegment),
            ("/ng/.", DotSegment),
            ("/ng/%2e%2e/x", DotSegment),
            ("/ng/%2E/x", DotSegment),
            ("/ng/.%2e/x", DotSegment),
            ("/ng/%2e./x", DotSegment),
            ("/ng/..;/admin", Semicolon),
            ("/ng/admin;x/y", Semicolon),
            ("/ng/admin%3Bx/y", Semicolon),
            ("/ng/a%00b", ControlCharacter),
            ("/ng/a%0ab", ControlCharacter),
            ("/ng/a%7Fb", ControlCharacter),
            ("/ng/a\tb", ControlCharacter),
            ("/ng/a%", InvalidEscape),
            ("/ng/a%4", InvalidEscape),
            ("/ng/a%zz", InvalidEscape),
            ("/ng/a%\u{e9}", InvalidEscape),
        ] {
            assert_eq!(normalize_path(input), Err(error), "{input:?}");
        }
        assert!(PathError::EncodedSlash.to_string().contains("%2F"));
    }

    #[test]
    fn every_valid_prefix_is_already_normalised() {
        for prefix in ["/", "/ng", "/ng/admin", "/v1.2/a-b_c~d", "/..."] {
            validate_prefix(prefix).unwrap();
            assert_eq!(normalize_path(prefix).as_deref(), Ok(prefix));
        }
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        /// What an upstream that decodes everything and resolves the path (nginx with a URI in
        /// `proxy_pass`, most frameworks) makes of a path: decode every escape, treat `\` as `/`,
        /// collapse `//`, resolve `.` and `..` (RFC 3986 remove_dot_segments), drop `;` parameters.
        fn upstream_view(path: &str) -> String {
            let bytes = path.as_bytes();
            let mut decoded = Vec::new();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'%'
                    && let Some(v) = bytes
                        .get(i + 1..i + 3)
                        .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok())
                {
                    decoded.push(v);
                    i += 3;
                    continue;
                }
                decoded.push(bytes[i]);
                i += 1;
            }
            let text = String::from_utf8_lossy(&decoded).replace('\\', "/");
            let mut out: Vec<&str> = Vec::new();
            for segment in text.split('/') {
                match segment.split(';').next().unwrap_or_default() {
                    "" | "." => {}
                    ".." => {
                        out.pop();
                    }
                    other => out.push(other),
                }
            }
            format!("/{}", out.join("/"))
        }

        fn path() -> impl Strategy<Value = String> {
            let pieces = prop::sample::select(vec![
                "/", "/", "//", "ng", "admin", "internal", "x", ".", "..", "%2e", "%2E", "%2f",
                "%2F", "%5c", "\\", "%25", "%61", "%41", "2f", "2e", "%", "%3b", ";", "%00", "a",
                "~", "%7e", "é", " ", "%20", "?",
            ]);
            prop::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
        }

        const PREFIXES: [&str; 4] = ["/", "/ng", "/ng/admin", "/internal"];

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(4096))]

            #[test]
            fn normalising_is_idempotent_and_leaves_no_ambiguity(raw in path()) {
                if let Ok(once) = normalize_path(&raw) {
                    let twice = normalize_path(&once);
                    prop_assert_eq!(twice.as_deref(), Ok(once.as_str()));
                    prop_assert!(once.starts_with('/'));
                    prop_assert!(once.is_ascii());
                    prop_assert!(!once.contains("//"), "{}", once);
                    prop_assert!(
                        !once.split('/').any(|s| s == "." || s == ".."),
                        "{}", once
                    );
                }
            }

            #[test]
            fn a_prefix_match_cannot_be_escaped_upstream(raw in path()) {
                if let Ok(normal) = normalize_path(&raw) {
                    for prefix in PREFIXES {
                        // The segments the upstream resolves are the ones that were matched.
                        prop_assert_eq!(
                            prefix_matches(prefix, &normal),
                            prefix_matches(prefix, &upstream_view(&normal)),
                            "prefix {} path {} upstream {}", prefix, normal, upstream_view(&normal)
                        );
                    }
                }
            }

            #[test]
            fn arbitrary_text_never_panics(raw in "\\PC*") {
                let _ = normalize_path(&raw);
            }
        }
    }
}
