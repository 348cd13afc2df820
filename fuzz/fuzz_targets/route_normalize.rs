//! `normalize_path` on arbitrary text: it never panics, and a path it accepts is a fixed point
//! whose meaning an upstream cannot change by decoding it: decoding every escape adds no `/`, no
//! `\`, no `;` and no dot segment, so the prefix the gateway matched is the prefix the upstream sees.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::route::{normalize_path, prefix_matches};

const PREFIXES: [&str; 4] = ["/", "/ng", "/ng/admin", "/openai/v1"];

fuzz_target!(|path: &str| {
    let Ok(normal) = normalize_path(path) else {
        return;
    };
    assert_eq!(
        normalize_path(&normal).as_deref(),
        Ok(normal.as_str()),
        "not idempotent"
    );
    assert!(normal.starts_with('/') && normal.is_ascii(), "`{normal}`");
    assert!(!normal.contains("//"), "`{normal}` keeps an empty segment");
    let decoded = decode_all(&normal);
    assert_eq!(
        decoded.iter().filter(|&&b| b == b'/').count(),
        normal.bytes().filter(|&b| b == b'/').count(),
        "decoding `{normal}` makes another separator"
    );
    assert!(
        !decoded.contains(&b'\\') && !decoded.contains(&b';'),
        "`{normal}`"
    );
    let decoded = String::from_utf8_lossy(&decoded);
    assert!(
        !decoded.split('/').any(|s| s == "." || s == ".."),
        "decoding `{normal}` makes a dot segment"
    );
    for prefix in PREFIXES {
        assert_eq!(
            prefix_matches(prefix, &normal),
            prefix_matches(prefix, &decoded),
            "`{normal}` and its decoding `{decoded}` match `{prefix}` differently"
        );
    }
});

/// Every `%XX` replaced by its byte, as an upstream that decodes the whole path would.
fn decode_all(path: &str) -> Vec<u8> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(text, 16)
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}
