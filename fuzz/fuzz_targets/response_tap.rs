//! The response tap (JSON copy and SSE reader) on arbitrary bytes cut into arbitrary chunks: it
//! never panics, a stream it does not edit reaches the client byte for byte, and what it captures
//! and sends does not depend on where the network cut the chunks.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use tollgate_core::RouteKind;
use tollgate_gateway::capture::{CapturedUsage, RequestInfo, ResponseTap};

fuzz_target!(|input: &[u8]| {
    let Some((&selector, rest)) = input.split_first() else {
        return;
    };
    let Some((&cut_seed, body)) = rest.split_first() else {
        return;
    };
    let kind = if selector & 1 == 0 {
        RouteKind::Openai
    } else {
        RouteKind::Anthropic
    };
    let sse = selector & 2 != 0;
    let hide = kind == RouteKind::Openai && selector & 4 != 0;
    let request = RequestInfo {
        model: Some("gpt-4o-mini".into()),
        stream: sse,
        injected_include_usage: hide,
        prompt_text: String::new(),
    };

    let (whole_out, whole_usage) = run(kind, &request, sse, &[body]);
    let chunks = cut(body, cut_seed);
    let (cut_out, cut_usage) = run(kind, &request, sse, &chunks);
    if !hide {
        assert_eq!(whole_out, body, "an unedited stream changed");
    }
    assert_eq!(whole_out, cut_out, "the output depends on chunking");
    assert_eq!(whole_usage, cut_usage, "the usage depends on chunking");
});

fn run(
    kind: RouteKind,
    request: &RequestInfo,
    sse: bool,
    chunks: &[&[u8]],
) -> (Vec<u8>, CapturedUsage) {
    let mut tap = ResponseTap::new(kind, request.clone(), sse);
    tap.set_status(200);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(chunk)));
    }
    out.extend_from_slice(&tap.flush());
    (out, tap.finish())
}

/// Cuts `body` into pieces whose lengths follow a small generator seeded by `seed` (1 to 16 bytes,
/// with an occasional empty chunk).
fn cut(body: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut state = u32::from(seed) | 1;
    let mut pieces = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let len = (state % 17) as usize;
        let (head, tail) = rest.split_at(len.min(rest.len()));
        pieces.push(head);
        rest = tail;
    }
    pieces
}
