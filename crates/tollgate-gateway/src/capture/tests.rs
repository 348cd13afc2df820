//! Request inspection and the response tap, end to end, for every provider.

use bytes::Bytes;
use serde_json::Value;
use tollgate_core::tokenize::count_tokens;
use tollgate_core::{RouteKind, TokenUsage};

use super::tap::JSON_CAP;
use super::text::TEXT_CAP;
use super::*;

const MODEL: &str = "gpt-4o-mini";

/// Feeds `chunks` through a tap; returns what the client received and the captured usage.
fn run(tap: ResponseTap, chunks: &[&[u8]]) -> (Vec<u8>, CapturedUsage) {
    let mut tap = tap;
    let mut client = Vec::new();
    for chunk in chunks {
        client.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(chunk)));
    }
    client.extend_from_slice(&tap.flush());
    (client, tap.finish())
}

fn request(model: &str, injected: bool, prompt: &str) -> RequestInfo {
    RequestInfo {
        model: Some(model.to_owned()),
        stream: true,
        injected_include_usage: injected,
        prompt_text: prompt.to_owned(),
        max_tokens: None,
    }
}

fn split_at(body: &[u8], at: usize) -> Vec<&[u8]> {
    vec![&body[..at], &body[at..]]
}

fn bytewise(body: &[u8]) -> Vec<&[u8]> {
    body.chunks(1).collect()
}

fn tokens(prompt: i64, completion: i64, total: i64, cached: i64, reasoning: i64) -> TokenUsage {
    TokenUsage {
        prompt,
        completion,
        total,
        cached,
        reasoning,
    }
}

#[test]
fn every_llm_kind_has_a_provider_and_plain_http_has_none() {
    for kind in [RouteKind::Http, RouteKind::Openai, RouteKind::Anthropic] {
        assert_eq!(provider_for(kind).is_some(), kind.is_llm(), "{kind}");
    }
}

// ----- requests -------------------------------------------------------------------------

#[test]
fn openai_request_gives_model_stream_and_prompt_text() {
    let body = br#"{"model":"gpt-4o","stream":false,"messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":[{"type":"text","text":"Describe"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA"}}]}]}"#;
    let (info, rewritten) = inspect_request(RouteKind::Openai, body);
    assert_eq!(info.model.as_deref(), Some("gpt-4o"));
    assert!(!info.stream);
    assert!(!info.injected_include_usage);
    assert_eq!(info.prompt_text, "Be brief.\nDescribe");
    assert!(rewritten.is_none());

    let legacy = br#"{"model":"gpt-3.5-turbo-instruct","prompt":["one","two"]}"#;
    assert_eq!(
        inspect_request(RouteKind::Openai, legacy).0.prompt_text,
        "one\ntwo"
    );
    let responses = br#"{"model":"o3","input":[{"role":"user","content":[{"type":"input_text","text":"hi"}]}]}"#;
    assert_eq!(
        inspect_request(RouteKind::Openai, responses).0.prompt_text,
        "hi"
    );
}

#[test]
fn anthropic_request_collects_system_and_blocks_without_rewrite() {
    let body = br#"{"model":"claude-sonnet-4-5","stream":true,"max_tokens":64,
        "system":[{"type":"text","text":"You are terse."}],
        "messages":[{"role":"user","content":"Hi"},
                    {"role":"assistant","content":[{"type":"text","text":"Hello"}]}]}"#;
    let (info, rewritten) = inspect_request(RouteKind::Anthropic, body);
    assert_eq!(info.model.as_deref(), Some("claude-sonnet-4-5"));
    assert!(info.stream);
    assert!(!info.injected_include_usage);
    assert_eq!(info.prompt_text, "You are terse.\nHi\nHello");
    assert!(rewritten.is_none());
}

#[test]
fn openai_stream_without_include_usage_is_rewritten_byte_for_byte() {
    let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}], "stream": true}"#;
    let (info, rewritten) = inspect_request(RouteKind::Openai, body);
    assert!(info.stream && info.injected_include_usage);
    assert_eq!(
        rewritten.as_deref(),
        Some(&br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}], "stream": true,"stream_options":{"include_usage":true}}"#[..])
    );
}

#[test]
fn rewrite_keeps_existing_stream_options_members() {
    let cases: [(&[u8], &[u8]); 4] = [
        (
            br#"{"stream":true,"messages":[],"stream_options":{"include_obfuscation":false}}"#,
            br#"{"stream":true,"messages":[],"stream_options":{"include_obfuscation":false,"include_usage":true}}"#,
        ),
        (
            br#"{"stream":true,"messages":[],"stream_options":{"include_usage":false,"x":1}}"#,
            br#"{"stream":true,"messages":[],"stream_options":{"include_usage":true,"x":1}}"#,
        ),
        (
            br#"{"stream":true,"prompt":"a","stream_options":null}"#,
            br#"{"stream":true,"prompt":"a","stream_options":{"include_usage":true}}"#,
        ),
        (
            br#"{"stream":true,"messages":[],"stream_options":{ }}"#,
            br#"{"stream":true,"messages":[],"stream_options":{ "include_usage":true}}"#,
        ),
    ];
    for (body, expected) in cases {
        let (info, rewritten) = inspect_request(RouteKind::Openai, body);
        assert!(
            info.injected_include_usage,
            "{}",
            String::from_utf8_lossy(body)
        );
        let rewritten = rewritten.unwrap();
        assert_eq!(
            &rewritten[..],
            expected,
            "{}",
            String::from_utf8_lossy(&rewritten)
        );
        let parsed: Value = serde_json::from_slice(&rewritten).unwrap();
        assert_eq!(parsed["stream_options"]["include_usage"], Value::Bool(true));
    }
}

#[test]
fn requests_that_need_no_rewrite_are_left_alone() {
    let asked =
        br#"{"model":"m","stream":true,"messages":[],"stream_options":{"include_usage":true}}"#;
    let (info, rewritten) = inspect_request(RouteKind::Openai, asked);
    assert!(info.stream && !info.injected_include_usage && rewritten.is_none());

    // The Responses API refuses stream_options and reports usage on its own.
    let responses = br#"{"model":"m","stream":true,"input":"hi"}"#;
    let (info, rewritten) = inspect_request(RouteKind::Openai, responses);
    assert!(info.stream && !info.injected_include_usage && rewritten.is_none());

    for body in [&b"not json"[..], b"[1,2]", b"", b"{\"model\":"] {
        let (info, rewritten) = inspect_request(RouteKind::Openai, body);
        assert_eq!(info, RequestInfo::default());
        assert!(rewritten.is_none());
    }
    let (info, rewritten) = inspect_request(
        RouteKind::Http,
        br#"{"model":"m","stream":true,"messages":[]}"#,
    );
    assert_eq!(info, RequestInfo::default());
    assert!(rewritten.is_none());
}

#[test]
fn prompt_text_is_capped_on_a_character_boundary() {
    let long = "é".repeat(TEXT_CAP);
    let body = serde_json::to_vec(
        &serde_json::json!({"model":"m","messages":[{"role":"user","content":long}]}),
    )
    .unwrap();
    let (info, _) = inspect_request(RouteKind::Openai, &body);
    assert_eq!(info.prompt_text.len(), TEXT_CAP);
    assert!(info.prompt_text.chars().all(|c| c == 'é'));
}

#[test]
fn request_debug_hides_the_prompt() {
    let info = request(MODEL, false, "secret plans");
    assert!(!format!("{info:?}").contains("secret"));
}

// ----- JSON answers -----------------------------------------------------------------------

#[test]
fn openai_json_usage_with_details() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","model":"gpt-4o-2024-08-06",
        "choices":[{"index":0,"message":{"role":"assistant","content":"Hi there"},"finish_reason":"stop"}],
        "usage":{"prompt_tokens":120,"completion_tokens":30,"total_tokens":150,
          "prompt_tokens_details":{"cached_tokens":100,"audio_tokens":0},
          "completion_tokens_details":{"reasoning_tokens":12,"audio_tokens":0}}}"#;
    for at in [0, 1, 57, body.len() - 1, body.len()] {
        let tap = ResponseTap::new(RouteKind::Openai, request("gpt-4o", false, "hi"), false);
        let (client, usage) = run(tap, &split_at(body, at));
        assert_eq!(client, body);
        assert_eq!(usage.model.as_deref(), Some("gpt-4o-2024-08-06"));
        assert_eq!(usage.tokens, tokens(120, 30, 150, 100, 12));
        assert!(!usage.estimated);
    }
}

#[test]
fn openai_json_chunks_pass_without_copy() {
    let mut tap = ResponseTap::new(RouteKind::Openai, RequestInfo::default(), false);
    let chunk = Bytes::from_static(b"{\"usage\":{\"prompt_tokens\":1}}");
    let out = tap.on_chunk(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert_eq!(tap.finish().tokens, tokens(1, 0, 1, 0, 0));
}

#[test]
fn openai_responses_api_json_usage() {
    let body = br#"{"id":"resp_1","object":"response","model":"o3-2025-04-16","error":null,
        "output":[{"type":"message","content":[{"type":"output_text","text":"Done."}]}],
        "usage":{"input_tokens":40,"input_tokens_details":{"cached_tokens":8},
          "output_tokens":20,"output_tokens_details":{"reasoning_tokens":16},"total_tokens":60}}"#;
    let tap = ResponseTap::new(RouteKind::Openai, RequestInfo::default(), false);
    let (_, usage) = run(tap, &[body]);
    assert_eq!(usage.model.as_deref(), Some("o3-2025-04-16"));
    assert_eq!(usage.tokens, tokens(40, 20, 60, 8, 16));
    assert!(!usage.estimated);
}

#[test]
fn anthropic_json_usage_with_cache_tokens() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929",
        "content":[{"type":"text","text":"Hello"}],"stop_reason":"end_turn",
        "usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":15}}"#;
    let tap = ResponseTap::new(
        RouteKind::Anthropic,
        request("claude-sonnet-4-5", false, "x"),
        false,
    );
    let (client, usage) = run(tap, &bytewise(body));
    assert_eq!(client, body);
    assert_eq!(usage.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(usage.tokens, tokens(135, 15, 150, 100, 0));
    assert!(!usage.estimated);
}

#[test]
fn json_answer_without_usage_is_estimated_from_its_text() {
    let body =
        "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"content\":\"Grüße aus Köln 🎉\"}}]}";
    let prompt = "Say hello in German";
    let tap = ResponseTap::new(RouteKind::Openai, request("gpt-4o", false, prompt), false);
    let (_, usage) = run(tap, &bytewise(body.as_bytes()));
    let p = count_tokens(Some("gpt-4o"), prompt) as i64;
    let c = count_tokens(Some("gpt-4o"), "Grüße aus Köln 🎉") as i64;
    assert!(p > 0 && c > 0);
    assert_eq!(usage.tokens, tokens(p, c, p + c, 0, 0));
    assert!(usage.estimated);

    let body = br#"{"type":"message","model":"claude-3-haiku","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}"#;
    let tap = ResponseTap::new(RouteKind::Anthropic, RequestInfo::default(), false);
    let (_, usage) = run(tap, &[body]);
    let c = count_tokens(Some("claude-3-haiku"), "Hi there") as i64;
    assert_eq!(usage.tokens, tokens(0, c, c, 0, 0));
    assert!(usage.estimated);
}

#[test]
fn error_answers_are_not_estimated() {
    let openai =
        br#"{"error":{"message":"Rate limit","type":"requests","code":"rate_limit_exceeded"}}"#;
    let (_, usage) = run(
        ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), false),
        &[openai],
    );
    assert_eq!(
        usage,
        CapturedUsage {
            model: Some(MODEL.into()),
            ..CapturedUsage::default()
        }
    );

    let anthropic =
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let tap = ResponseTap::new(RouteKind::Anthropic, request("claude", false, "hi"), false);
    let (_, usage) = run(tap, &[anthropic]);
    assert!(usage.tokens.is_empty() && !usage.estimated);

    let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), false);
    tap.set_status(502);
    let (_, usage) = run(tap, &[b"<html>bad gateway</html>"]);
    assert!(usage.tokens.is_empty() && !usage.estimated);
}

#[test]
fn oversized_json_answer_is_passed_but_not_counted() {
    let mut body = br#"{"choices":[{"message":{"content":""#.to_vec();
    body.resize(JSON_CAP + 10, b'a');
    body.extend_from_slice(br#""}}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#);
    let tap = ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), false);
    let chunks: Vec<&[u8]> = body.chunks(64 * 1024).collect();
    let (client, usage) = run(tap, &chunks);
    assert_eq!(client.len(), body.len());
    assert!(usage.tokens.is_empty() && !usage.estimated);
}

#[test]
fn non_llm_routes_capture_nothing() {
    let body = br#"{"usage":{"prompt_tokens":5,"completion_tokens":5}}"#;
    let (client, usage) = run(
        ResponseTap::new(RouteKind::Http, RequestInfo::default(), false),
        &[body],
    );
    assert_eq!(client, body);
    assert_eq!(usage, CapturedUsage::default());
}

// ----- OpenAI streams ---------------------------------------------------------------------

/// Chunks as OpenAI streams them without `include_usage`; with it each carries `usage:null`.
const OPENAI_CHUNKS: [&str; 5] = [
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"Grüß "},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"content":"dich, \"Welt\" 🌍"},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"a\":1}"}}]},"finish_reason":null}]}"#,
    r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
];
const STREAMED_TEXT: &str = "Grüß dich, \"Welt\" 🌍{\"a\":1}";
const USAGE_CHUNK: &str = r#"{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[],"usage":{"prompt_tokens":19,"completion_tokens":10,"total_tokens":29,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#;

fn sse(events: &[String], eol: &str) -> Vec<u8> {
    let mut out = String::new();
    for data in events {
        out.push_str(&format!("data: {data}{eol}{eol}"));
    }
    out.push_str(&format!("data: [DONE]{eol}{eol}"));
    out.into_bytes()
}

fn plain_events() -> Vec<String> {
    OPENAI_CHUNKS.iter().map(|c| (*c).to_owned()).collect()
}

/// The same chunks with `"usage":null` put in by `place`, and the usage-only chunk last.
fn injected_events(place: fn(&str) -> String) -> Vec<String> {
    let mut events: Vec<String> = OPENAI_CHUNKS.iter().map(|c| place(c)).collect();
    events.push(USAGE_CHUNK.to_owned());
    events
}

fn null_last(chunk: &str) -> String {
    format!("{},\"usage\":null}}", &chunk[..chunk.len() - 1])
}

fn null_first(chunk: &str) -> String {
    format!("{{\"usage\":null,{}", &chunk[1..])
}

fn null_spaced_middle(chunk: &str) -> String {
    chunk.replacen(",\"object\"", ", \"usage\": null,\"object\"", 1)
}

fn expected_usage() -> CapturedUsage {
    CapturedUsage {
        model: Some("gpt-4o-mini-2024-07-18".into()),
        tokens: tokens(19, 10, 29, 0, 0),
        estimated: false,
    }
}

#[test]
fn openai_stream_with_usage_chunk_passes_unchanged() {
    let body = sse(&injected_events(null_last), "\n");
    let tap = || ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), true);
    for at in 0..=body.len() {
        let (client, usage) = run(tap(), &split_at(&body, at));
        assert_eq!(client, body, "split at {at}");
        assert_eq!(usage, expected_usage(), "split at {at}");
    }
    let (client, usage) = run(tap(), &bytewise(&body));
    assert_eq!(client, body);
    assert_eq!(usage, expected_usage());
}

#[test]
fn passing_through_returns_the_same_bytes_without_copy() {
    let body = Bytes::from(sse(&injected_events(null_last), "\n"));
    let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), true);
    for at in [0, 7, 300, 301, body.len()] {
        let (a, b) = (body.slice(..at), body.slice(at..));
        let mut tap2 = ResponseTap::new(RouteKind::Openai, request(MODEL, false, "hi"), true);
        for part in [a, b] {
            let out = tap2.on_chunk(part.clone());
            assert_eq!(out.as_ptr(), part.as_ptr());
            assert_eq!(out.len(), part.len());
        }
        assert!(tap2.flush().is_empty());
    }
    let out = tap.on_chunk(body.clone());
    assert_eq!(out.as_ptr(), body.as_ptr());
    assert_eq!(tap.finish(), expected_usage());
}

#[test]
fn injected_usage_is_hidden_at_every_split() {
    let places: [fn(&str) -> String; 3] = [null_last, null_first, null_spaced_middle];
    for place in places {
        for eol in ["\n", "\r\n", "\r"] {
            let expected = sse(&plain_events(), eol);
            let body = sse(&injected_events(place), eol);
            let tap = || ResponseTap::new(RouteKind::Openai, request(MODEL, true, "hi"), true);
            for at in 0..=body.len() {
                let (client, usage) = run(tap(), &split_at(&body, at));
                assert_eq!(
                    String::from_utf8_lossy(&client),
                    String::from_utf8_lossy(&expected),
                    "split at {at}, eol {eol:?}"
                );
                assert_eq!(usage, expected_usage(), "split at {at}, eol {eol:?}");
            }
            let (client, usage) = run(tap(), &bytewise(&body));
            assert_eq!(client, expected, "bytewise, eol {eol:?}");
            assert_eq!(usage, expected_usage());
        }
    }
}

#[test]
fn hiding_delays_the_client_by_at_most_one_event() {
    let events = injected_events(null_last);
    let expected: Vec<String> = OPENAI_CHUNKS
        .iter()
        .map(|c| format!("data: {c}\n\n"))
        .collect();
    let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, true, "hi"), true);
    for (i, event) in events.iter().enumerate() {
        let line = format!("data: {event}\n");
        // Without its blank line the event is held back.
        assert!(tap.on_chunk(Bytes::from(line)).is_empty());
        let out = tap.on_chunk(Bytes::from_static(b"\n"));
        match expected.get(i) {
            Some(expected) => assert_eq!(String::from_utf8_lossy(&out), *expected),
            None => assert!(out.is_empty(), "the usage-only chunk reached the client"),
        }
    }
    assert_eq!(
        &tap.on_chunk(Bytes::from_static(b"data: [DONE]\n\n"))[..],
        b"data: [DONE]\n\n"
    );
    assert!(tap.flush().is_empty());
    assert_eq!(tap.finish(), expected_usage());
}

#[test]
fn hiding_keeps_comments_ids_and_other_events() {
    let body = concat!(
        ": keep-alive\n\n",
        "id: 1\nevent: chunk\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n",
        "data: [DONE]\n\n",
    );
    let expected = concat!(
        ": keep-alive\n\n",
        "id: 1\nevent: chunk\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        "data: [DONE]\n\n",
    );
    let tap = ResponseTap::new(RouteKind::Openai, request(MODEL, true, ""), true);
    let (client, usage) = run(tap, &[body.as_bytes()]);
    assert_eq!(String::from_utf8_lossy(&client), expected);
    assert_eq!(usage.tokens, tokens(3, 1, 4, 0, 0));
}

#[test]
fn flush_returns_an_unfinished_event_unchanged() {
    let tail = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2}}";
    let body = format!("data: {}\n\n{tail}", null_last(OPENAI_CHUNKS[1]));
    let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, true, ""), true);
    let first = tap.on_chunk(Bytes::from(body));
    assert_eq!(
        String::from_utf8_lossy(&first),
        format!("data: {}\n\n", OPENAI_CHUNKS[1])
    );
    assert_eq!(String::from_utf8_lossy(&tap.flush()), tail);
    // Its usage still counts.
    assert_eq!(tap.finish().tokens, tokens(7, 2, 9, 0, 0));
}

#[test]
fn stream_without_usage_is_estimated_from_the_streamed_text() {
    let body = sse(&plain_events(), "\n");
    let prompt = "Greet the world in German, then call a tool.";
    let p = count_tokens(Some("gpt-4o-mini-2024-07-18"), prompt) as i64;
    let c = count_tokens(Some("gpt-4o-mini-2024-07-18"), STREAMED_TEXT) as i64;
    let tap = || ResponseTap::new(RouteKind::Openai, request(MODEL, false, prompt), true);
    // Every split, which cuts `ü`, `🌍` and CRLF pairs somewhere.
    for at in 0..=body.len() {
        let mut tap = tap();
        for part in split_at(&body, at) {
            tap.on_chunk(Bytes::copy_from_slice(part));
        }
        assert_eq!(tap.seen.text.text, STREAMED_TEXT, "split at {at}");
        let usage = tap.finish();
        assert_eq!(usage.tokens, tokens(p, c, p + c, 0, 0));
        assert!(usage.estimated);
    }
    let (_, usage) = run(tap(), &bytewise(&body));
    assert_eq!(usage.tokens, tokens(p, c, p + c, 0, 0));
    assert!(usage.estimated);
}

#[test]
fn multibyte_character_split_across_chunks() {
    let event = "data: {\"choices\":[{\"delta\":{\"content\":\"日本\"}}]}\n\n";
    let at = event.find('日').unwrap() + 1;
    for hide in [false, true] {
        let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, hide, ""), true);
        let mut client = Vec::new();
        client.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(&event.as_bytes()[..at])));
        client.extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(&event.as_bytes()[at..])));
        client.extend_from_slice(&tap.flush());
        assert_eq!(client, event.as_bytes());
        assert_eq!(tap.seen.text.text, "日本");
    }
}

#[test]
fn responses_api_stream_usage() {
    let body = concat!(
        "event: response.created\n",
        "data: {\"type\":\"response.created\",\"response\":{\"model\":\"o4-mini\",\"usage\":null}}\n\n",
        "event: response.output_text.delta\n",
        "data: {\"type\":\"response.output_text.delta\",\"delta\":\"Hi\"}\n\n",
        "event: response.completed\n",
        "data: {\"type\":\"response.completed\",\"response\":{\"model\":\"o4-mini\",\"output\":[{\"content\":[{\"text\":\"Hi\"}]}],",
        "\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":5,",
        "\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":14}}}\n\n",
    );
    let tap = ResponseTap::new(RouteKind::Openai, RequestInfo::default(), true);
    let (client, usage) = run(tap, &bytewise(body.as_bytes()));
    assert_eq!(client, body.as_bytes());
    assert_eq!(usage.model.as_deref(), Some("o4-mini"));
    assert_eq!(usage.tokens, tokens(9, 5, 14, 0, 3));
    assert!(!usage.estimated);
}

// ----- Anthropic streams ------------------------------------------------------------------

fn anthropic_stream(eol: &str, delta_usage: &str, with_end: bool) -> String {
    let mut events = vec![
        ("message_start", r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[],"stop_reason":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}}"#.to_owned()),
        ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#.to_owned()),
        ("ping", r#"{"type": "ping"}"#.to_owned()),
        ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello, "}}"#.to_owned()),
        ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"wörld"}}"#.to_owned()),
    ];
    if with_end {
        events.push((
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#.to_owned(),
        ));
        events.push((
            "message_delta",
            format!(r#"{{"type":"message_delta","delta":{{"stop_reason":"end_turn","stop_sequence":null}},"usage":{delta_usage}}}"#),
        ));
        events.push(("message_stop", r#"{"type":"message_stop"}"#.to_owned()));
    }
    events
        .iter()
        .map(|(name, data)| format!("event: {name}{eol}data: {data}{eol}{eol}"))
        .collect()
}

#[test]
fn anthropic_stream_usage_from_start_and_delta() {
    for eol in ["\n", "\r\n"] {
        let body = anthropic_stream(eol, r#"{"output_tokens":15}"#, true);
        let tap = || {
            ResponseTap::new(
                RouteKind::Anthropic,
                request("claude-sonnet-4-5", false, "hi"),
                true,
            )
        };
        let expected = CapturedUsage {
            model: Some("claude-sonnet-4-5-20250929".into()),
            tokens: tokens(135, 15, 150, 100, 0),
            estimated: false,
        };
        for at in 0..=body.len() {
            let (client, usage) = run(tap(), &split_at(body.as_bytes(), at));
            assert_eq!(client, body.as_bytes());
            assert_eq!(usage, expected, "split at {at}, eol {eol:?}");
        }
        let (_, usage) = run(tap(), &bytewise(body.as_bytes()));
        assert_eq!(usage, expected);
    }
}

#[test]
fn anthropic_message_delta_input_tokens_win() {
    let body = anthropic_stream(
        "\n",
        r#"{"input_tokens":30,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":15}"#,
        true,
    );
    let tap = ResponseTap::new(RouteKind::Anthropic, RequestInfo::default(), true);
    let (_, usage) = run(tap, &[body.as_bytes()]);
    assert_eq!(usage.tokens, tokens(140, 15, 155, 100, 0));
    assert!(!usage.estimated);
}

#[test]
fn anthropic_stream_cut_before_message_delta_estimates_the_output() {
    let body = anthropic_stream("\n", "", false);
    let tap = ResponseTap::new(
        RouteKind::Anthropic,
        request("claude-sonnet-4-5", false, "hi"),
        true,
    );
    let (_, usage) = run(tap, &[body.as_bytes()]);
    let c = count_tokens(Some("claude-sonnet-4-5-20250929"), "Hello, wörld") as i64;
    assert!(c > 1);
    assert_eq!(usage.tokens, tokens(135, c, 135 + c, 100, 0));
    assert!(usage.estimated);
}

// ----- pieces -------------------------------------------------------------------------------

#[test]
fn lenient_fields_do_not_lose_the_usage() {
    let body = br#"{"model":7,"choices":[{"message":{"content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}}],
        "usage":{"prompt_tokens":"many","completion_tokens":2.0,"total_tokens":null}}"#;
    let tap = ResponseTap::new(RouteKind::Openai, request(MODEL, false, ""), false);
    let mut tap = tap;
    tap.on_chunk(Bytes::from_static(body));
    tap.flush();
    assert_eq!(tap.seen.text.text, "ab");
    let usage = tap.finish();
    assert_eq!(usage.model.as_deref(), Some(MODEL));
    assert_eq!(usage.tokens, tokens(0, 2, 2, 0, 0));
}

#[test]
fn an_endless_line_stops_being_read_but_still_passes() {
    let mut tap = ResponseTap::new(RouteKind::Openai, request(MODEL, true, "hi"), true);
    let piece = Bytes::from(vec![b'x'; 256 * 1024]);
    let mut sent = 0;
    for _ in 0..40 {
        sent += tap.on_chunk(piece.clone()).len();
    }
    sent += tap.flush().len();
    assert_eq!(sent, 40 * piece.len());
    let usage = tap.finish();
    assert!(usage.tokens.is_empty() && !usage.estimated);
}

#[test]
fn the_completion_ceiling_is_read_from_any_of_its_names() {
    let (info, _) = inspect_request(
        RouteKind::Openai,
        br#"{"model":"gpt-4o","max_tokens":64,"messages":[]}"#,
    );
    assert_eq!(info.max_tokens, Some(64));
    let (info, _) = inspect_request(
        RouteKind::Openai,
        br#"{"model":"o3","max_completion_tokens":9,"messages":[]}"#,
    );
    assert_eq!(info.max_tokens, Some(9));
    let (info, _) = inspect_request(
        RouteKind::Anthropic,
        br#"{"model":"claude-3","max_tokens":"many","messages":[]}"#,
    );
    assert_eq!(info.max_tokens, None);
}
