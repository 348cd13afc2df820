//! `inspect_request` on arbitrary bodies: it never panics, and when it rewrites a body (an OpenAI
//! stream without `include_usage`) the rewrite is valid JSON equal to the original except that
//! `stream_options.include_usage` is now `true`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tollgate_core::RouteKind;
use tollgate_gateway::capture::inspect_request;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, body)) = input.split_first() else {
        return;
    };
    let kind = match selector % 3 {
        0 => RouteKind::Http,
        1 => RouteKind::Openai,
        _ => RouteKind::Anthropic,
    };
    let (info, rewritten) = inspect_request(kind, body);
    if kind == RouteKind::Http {
        assert_eq!(info.model, None);
        assert!(rewritten.is_none());
        return;
    }
    let Some(rewritten) = rewritten else {
        assert!(!info.injected_include_usage);
        return;
    };
    assert!(info.injected_include_usage && info.stream);
    let original: Value = serde_json::from_slice(body).expect("a rewritten body was valid JSON");
    let mut edited: Value = serde_json::from_slice(&rewritten).expect("the rewrite is valid JSON");
    let options = edited
        .get_mut("stream_options")
        .and_then(Value::as_object_mut)
        .expect("the rewrite has stream_options");
    assert_eq!(options.remove("include_usage"), Some(Value::Bool(true)));
    let mut expected = original;
    let expected_fields = expected.as_object_mut().expect("an object");
    // The original may have had `stream_options` with other fields, or `include_usage: false`.
    match expected_fields.get_mut("stream_options") {
        Some(Value::Object(options)) => {
            options.remove("include_usage");
        }
        Some(_) | None => {
            expected_fields.insert("stream_options".into(), Value::Object(Default::default()));
        }
    }
    assert_eq!(
        edited, expected,
        "the rewrite changed more than include_usage"
    );
});
