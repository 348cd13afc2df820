//! Usage capture for LLM routes: the model and stream flags from the request body, token usage
//! from JSON answers and SSE streams (OpenAI and Anthropic), and the tokenizer fallback.
//!
//! Everything here is pure: the proxy hands over the peeked request body and then each response
//! chunk, and forwards what comes back. Response chunks pass through untouched and at once, with
//! one exception: when the gateway itself asked an OpenAI upstream for `include_usage`, whole SSE
//! events are forwarded with the extra usage removed, so the client sees exactly the stream it
//! asked for, at most one event late.
//!
//! Bodies must be identity-encoded: a compressed answer is passed through but not understood.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::mem;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memchr2};
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use tollgate_core::tokenize::count_tokens;
use tollgate_core::{RouteKind, TokenUsage};

/// Most prompt or answer text kept for the tokenizer fallback, in bytes.
const TEXT_CAP: usize = 1 << 20;
/// Most bytes of a JSON answer kept to read its `usage`; a larger answer is not counted at all.
const JSON_CAP: usize = 8 << 20;
/// Most bytes of one SSE line, or of one event's data, that are read; beyond it the stream is
/// passed through unread.
const LINE_CAP: usize = 8 << 20;
/// Most bytes of one SSE event held back while the injected usage is hidden; beyond it the event
/// is released and the rest of the stream passes through as it comes.
const HELD_CAP: usize = 1 << 20;

/// What the gateway learned from an LLM request body.
#[derive(Clone, Default, PartialEq)]
pub struct RequestInfo {
    /// `model` of the body.
    pub model: Option<String>,
    /// `stream: true`.
    pub stream: bool,
    /// The gateway added `stream_options.include_usage` and must hide the usage-only chunk.
    pub injected_include_usage: bool,
    /// The prompt's text (messages, system, prompt, input), kept only for the estimation fallback.
    pub prompt_text: String,
}

// The prompt can be a megabyte of user text: logs get its size, not its content.
impl fmt::Debug for RequestInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestInfo")
            .field("model", &self.model)
            .field("stream", &self.stream)
            .field("injected_include_usage", &self.injected_include_usage)
            .field("prompt_text_bytes", &self.prompt_text.len())
            .finish()
    }
}

/// Reads an LLM request body that was peeked in full. Returns what it learned and, when the body
/// had to change (OpenAI stream without `include_usage`), the body to forward instead.
pub fn inspect_request(kind: RouteKind, body: &[u8]) -> (RequestInfo, Option<Bytes>) {
    let mut info = RequestInfo::default();
    let text_fields: &[&str] = match kind {
        RouteKind::Http => return (info, None),
        RouteKind::Openai => &["messages", "prompt", "input"],
        RouteKind::Anthropic => &["system", "messages"],
    };
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return (info, None);
    };
    info.model = fields
        .get("model")
        .and_then(Value::as_str)
        .map(str::to_owned);
    info.stream = fields.get("stream").and_then(Value::as_bool) == Some(true);
    let mut prompt = CappedText::default();
    for name in text_fields {
        if let Some(value) = fields.get(*name) {
            collect_prompt(value, &mut prompt);
        }
    }
    info.prompt_text = prompt.text;

    // Only chat and legacy completions take `stream_options`; the Responses API (`input`) refuses
    // unknown parameters and reports usage in every stream anyway.
    let asks_usage = fields
        .get("stream_options")
        .and_then(|options| options.get("include_usage"))
        .and_then(Value::as_bool)
        == Some(true);
    let completions = fields.contains_key("messages") || fields.contains_key("prompt");
    if kind == RouteKind::Openai
        && info.stream
        && completions
        && !asks_usage
        && let Some(rewritten) = with_include_usage(body)
    {
        info.injected_include_usage = true;
        return (info, Some(Bytes::from(rewritten)));
    }
    (info, None)
}

/// Appends the text a prompt value carries: strings, and the `text` / `content` of parts and
/// messages, at any depth (serde_json bounds the depth).
fn collect_prompt(value: &Value, out: &mut CappedText) {
    if out.full {
        return;
    }
    match value {
        Value::String(text) => out.push_piece(text),
        Value::Array(items) => {
            for item in items {
                collect_prompt(item, out);
            }
        }
        Value::Object(fields) => {
            for key in ["text", "content"] {
                if let Some(inner) = fields.get(key) {
                    collect_prompt(inner, out);
                }
            }
        }
        _ => {}
    }
}

/// Text gathered for the tokenizer, cut at [`TEXT_CAP`] on a character boundary.
#[derive(Default)]
struct CappedText {
    text: String,
    full: bool,
}

impl CappedText {
    /// Appends text that continues what is there (stream deltas).
    fn push(&mut self, piece: &str) {
        if self.full {
            return;
        }
        let room = TEXT_CAP.saturating_sub(self.text.len());
        if piece.len() <= room {
            self.text.push_str(piece);
            return;
        }
        let mut cut = room;
        while !piece.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(piece.get(..cut).unwrap_or_default());
        self.full = true;
    }

    /// Appends a separate piece of text (one message of a prompt).
    fn push_piece(&mut self, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.push("\n");
        }
        self.push(piece);
    }
}

// ---------------------------------------------------------------------------------------------
// Textual JSON edits. The request keeps every byte the client sent except the one member the
// gateway adds, and hidden `"usage":null` members vanish without reformatting the chunk, so
// neither side sees the gateway's hand. The scanners assume text serde_json has already accepted
// (or give up with `None`); strings are skipped with memchr so large base64 parts cost little.
// ---------------------------------------------------------------------------------------------

/// One `"key": value` of a JSON object: byte ranges of the key (with its quotes) and the value.
#[derive(Debug, Clone, PartialEq)]
struct Member {
    key: Range<usize>,
    value: Range<usize>,
}

fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index after the closing quote of the string opening at `open`.
fn string_end(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        let at = i + memchr2(b'"', b'\\', s.get(i..)?)?;
        if s.get(at) == Some(&b'"') {
            return Some(at + 1);
        }
        i = at + 2;
    }
}

/// The index after the value starting at `start`.
fn value_end(s: &[u8], start: usize) -> Option<usize> {
    match *s.get(start)? {
        b'"' => string_end(s, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = s.get(i) {
                match b {
                    b'"' => {
                        i = string_end(s, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let rest = s.get(start..)?;
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            (len > 0).then_some(start + len)
        }
    }
}

/// The members of the object opening at `open`, and the index of its closing brace.
fn object_members(s: &[u8], open: usize) -> Option<(Vec<Member>, usize)> {
    let mut members = Vec::new();
    let mut i = skip_ws(s, open + 1);
    if s.get(i) == Some(&b'}') {
        return Some((members, i));
    }
    loop {
        if s.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(s, i)?;
        let colon = skip_ws(s, key_end);
        if s.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(s, colon + 1);
        let end = value_end(s, value_start)?;
        members.push(Member {
            key: i..key_end,
            value: value_start..end,
        });
        let after = skip_ws(s, end);
        match s.get(after) {
            Some(b',') => i = skip_ws(s, after + 1),
            Some(b'}') => return Some((members, after)),
            _ => return None,
        }
    }
}

fn key_is(s: &[u8], member: &Member, name: &str) -> bool {
    let Some(raw) = s.get(member.key.clone()) else {
        return false;
    };
    if memchr(b'\\', raw).is_none() {
        return raw.get(1..raw.len().saturating_sub(1)) == Some(name.as_bytes());
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|key| key == name)
}

/// The last member named `name` (the one JSON parsers keep when a key repeats).
fn find_member<'m>(s: &[u8], members: &'m [Member], name: &str) -> Option<&'m Member> {
    members.iter().rev().find(|m| key_is(s, m, name))
}

/// `s` with `range` replaced by `with`.
fn splice(s: &[u8], range: Range<usize>, with: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() + with.len());
    out.extend_from_slice(s.get(..range.start)?);
    out.extend_from_slice(with);
    out.extend_from_slice(s.get(range.end..)?);
    Some(out)
}

/// `s` with `member` inserted as the last member of the object whose closing brace is at `close`.
fn append_member(s: &[u8], close: usize, empty: bool, member: &[u8]) -> Option<Vec<u8>> {
    let mut inserted = Vec::with_capacity(member.len() + 1);
    if !empty {
        inserted.push(b',');
    }
    inserted.extend_from_slice(member);
    splice(s, close..close, &inserted)
}

/// The request body with `stream_options.include_usage` set to `true`, other bytes unchanged.
fn with_include_usage(body: &[u8]) -> Option<Vec<u8>> {
    let open = skip_ws(body, 0);
    if body.get(open) != Some(&b'{') {
        return None;
    }
    let (members, close) = object_members(body, open)?;
    let Some(options) = find_member(body, &members, "stream_options") else {
        let member = br#""stream_options":{"include_usage":true}"#;
        return append_member(body, close, members.is_empty(), member);
    };
    if body.get(options.value.start) != Some(&b'{') {
        // `null` or a wrong type: the upstream would have refused it anyway.
        return splice(body, options.value.clone(), br#"{"include_usage":true}"#);
    }
    let (inner, inner_close) = object_members(body, options.value.start)?;
    match find_member(body, &inner, "include_usage") {
        Some(flag) => splice(body, flag.value.clone(), b"true"),
        None => append_member(
            body,
            inner_close,
            inner.is_empty(),
            br#""include_usage":true"#,
        ),
    }
}

/// The bytes to cut from the JSON object `json` so that its top-level `"usage": null` member
/// disappears together with the comma that separated it.
fn null_usage_member(json: &[u8]) -> Option<Range<usize>> {
    // OpenAI's own layout: the member comes last, compact.
    const TAIL: &[u8] = br#","usage":null}"#;
    if json.ends_with(TAIL) {
        return Some(json.len() - TAIL.len()..json.len() - 1);
    }
    let open = skip_ws(json, 0);
    if json.get(open) != Some(&b'{') {
        return None;
    }
    let (members, _) = object_members(json, open)?;
    let at = members
        .iter()
        .position(|m| key_is(json, m, "usage") && json.get(m.value.clone()) == Some(b"null"))?;
    let member = members.get(at)?;
    Some(
        match (
            at.checked_sub(1).and_then(|p| members.get(p)),
            members.get(at + 1),
        ) {
            (Some(previous), _) => previous.value.end..member.value.end,
            (None, Some(next)) => member.key.start..next.key.start,
            (None, None) => member.key.start..member.value.end,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// Response shapes. Only the fields usage capture needs are read; everything else is skipped
// without allocating. Scalars are read leniently (a string where a number was expected yields
// nothing rather than losing the whole event), and text borrows from the body when it can.
// ---------------------------------------------------------------------------------------------

/// Text of a value: a string; the joined texts of an array; the `text` member of an object.
#[derive(Debug, Default)]
struct Text<'a>(Option<Cow<'a, str>>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TextVisitor(PhantomData))
    }
}

struct TextVisitor<'a>(PhantomData<&'a ()>);

impl<'de: 'a, 'a> Visitor<'de> for TextVisitor<'a> {
    type Value = Text<'a>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("text")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Borrowed(v))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v.to_owned()))))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Text(Some(Cow::Owned(v))))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut joined = String::new();
        while let Some(Text(piece)) = seq.next_element::<Text<'a>>()? {
            joined.push_str(piece.as_deref().unwrap_or_default());
        }
        Ok(Text((!joined.is_empty()).then_some(Cow::Owned(joined))))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut text = None;
        while let Some(Text(key)) = map.next_key::<Text<'a>>()? {
            if key.as_deref() == Some("text") {
                text = map.next_value::<Text<'a>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Text(text))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Text(None))
    }
}

/// A token count: a non-negative number, or nothing.
#[derive(Debug, Default, Clone, Copy)]
struct Count(Option<i64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token count")
    }
    fn visit_u64<E>(self, v: u64) -> Result<Count, E> {
        Ok(Count(Some(i64::try_from(v).unwrap_or(i64::MAX))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Count, E> {
        Ok(Count((v >= 0).then_some(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Count, E> {
        // `as` saturates, so a huge float cannot wrap.
        Ok(Count((v.is_finite() && v >= 0.0).then_some(v as i64)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_str<E>(self, _: &str) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_unit<E>(self) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_none<E>(self) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Count, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Count(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Count(None))
    }
}

/// An OpenAI answer, stream chunk or Responses API event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiBody<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    #[serde(borrow)]
    choices: Option<Vec<OpenaiChoice<'a>>>,
    usage: Option<OpenaiUsage>,
    /// Responses API event type.
    #[serde(borrow, rename = "type")]
    event: Text<'a>,
    /// Responses API text delta.
    #[serde(borrow)]
    delta: Text<'a>,
    /// Responses API answer items.
    #[serde(borrow)]
    output: Option<Vec<ResponsesItem<'a>>>,
    /// Responses API stream events carry the response here (with its usage at the end).
    #[serde(borrow)]
    response: Option<ResponsesEnvelope<'a>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiChoice<'a> {
    #[serde(borrow)]
    delta: Option<OpenaiMessage<'a>>,
    #[serde(borrow)]
    message: Option<OpenaiMessage<'a>>,
    /// Legacy completions.
    #[serde(borrow)]
    text: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiMessage<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    tool_calls: Option<Vec<OpenaiToolCall<'a>>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiToolCall<'a> {
    #[serde(borrow)]
    function: Option<OpenaiFunction<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiFunction<'a> {
    #[serde(borrow)]
    arguments: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesItem<'a> {
    #[serde(borrow)]
    content: Text<'a>,
    #[serde(borrow)]
    arguments: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ResponsesEnvelope<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    usage: Option<OpenaiUsage>,
}

/// OpenAI `usage`, in the Chat Completions or the Responses API naming.
#[derive(Deserialize, Default)]
#[serde(default)]
struct OpenaiUsage {
    prompt_tokens: Count,
    completion_tokens: Count,
    total_tokens: Count,
    prompt_tokens_details: Option<UsageDetails>,
    completion_tokens_details: Option<UsageDetails>,
    input_tokens: Count,
    output_tokens: Count,
    input_tokens_details: Option<UsageDetails>,
    output_tokens_details: Option<UsageDetails>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct UsageDetails {
    cached_tokens: Count,
    reasoning_tokens: Count,
}

fn detail(details: Option<&UsageDetails>, pick: fn(&UsageDetails) -> Count) -> i64 {
    details.and_then(|d| pick(d).0).unwrap_or(0)
}

impl OpenaiUsage {
    /// The counts, when the object holds any.
    fn tokens(&self) -> Option<TokenUsage> {
        let (prompt, completion, cached, reasoning) =
            if self.prompt_tokens.0.is_some() || self.completion_tokens.0.is_some() {
                (
                    self.prompt_tokens.0,
                    self.completion_tokens.0,
                    detail(self.prompt_tokens_details.as_ref(), |d| d.cached_tokens),
                    detail(self.completion_tokens_details.as_ref(), |d| {
                        d.reasoning_tokens
                    }),
                )
            } else if self.input_tokens.0.is_some() || self.output_tokens.0.is_some() {
                (
                    self.input_tokens.0,
                    self.output_tokens.0,
                    detail(self.input_tokens_details.as_ref(), |d| d.cached_tokens),
                    detail(self.output_tokens_details.as_ref(), |d| d.reasoning_tokens),
                )
            } else {
                return None;
            };
        let prompt = prompt.unwrap_or(0);
        let completion = completion.unwrap_or(0);
        let total = self
            .total_tokens
            .0
            .unwrap_or(prompt.saturating_add(completion));
        Some(TokenUsage {
            prompt,
            completion,
            total,
            cached,
            reasoning,
        })
    }
}

/// An Anthropic message (JSON answer) or stream event.
#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicBody<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    /// The answer's usage, or `message_delta`'s.
    usage: Option<AnthropicUsage>,
    /// The answer's content blocks, joined.
    #[serde(borrow)]
    content: Text<'a>,
    /// `message_start`.
    #[serde(borrow)]
    message: Option<AnthropicStart<'a>>,
    /// `content_block_delta`.
    #[serde(borrow)]
    delta: Option<AnthropicDelta<'a>>,
    error: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicStart<'a> {
    #[serde(borrow)]
    model: Text<'a>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicDelta<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(borrow)]
    partial_json: Text<'a>,
    #[serde(borrow)]
    thinking: Text<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AnthropicUsage {
    input_tokens: Count,
    output_tokens: Count,
    cache_read_input_tokens: Count,
    cache_creation_input_tokens: Count,
}

/// Anthropic counts as they arrive: `message_start` first, `message_delta` updates.
#[derive(Default)]
struct AnthropicCounts {
    input: Option<i64>,
    output: Option<i64>,
    cache_read: Option<i64>,
    cache_creation: Option<i64>,
    /// The final figures arrived (the JSON answer, or `message_delta` in a stream).
    complete: bool,
}

impl AnthropicCounts {
    fn merge(&mut self, usage: &AnthropicUsage) {
        let updates = [
            (&mut self.input, usage.input_tokens),
            (&mut self.output, usage.output_tokens),
            (&mut self.cache_read, usage.cache_read_input_tokens),
            (&mut self.cache_creation, usage.cache_creation_input_tokens),
        ];
        for (slot, value) in updates {
            if value.0.is_some() {
                *slot = value.0;
            }
        }
    }

    fn tokens(&self) -> Option<TokenUsage> {
        if [
            self.input,
            self.output,
            self.cache_read,
            self.cache_creation,
        ]
        .iter()
        .all(Option::is_none)
        {
            return None;
        }
        let cached = self.cache_read.unwrap_or(0);
        let prompt = self
            .input
            .unwrap_or(0)
            .saturating_add(cached)
            .saturating_add(self.cache_creation.unwrap_or(0));
        let completion = self.output.unwrap_or(0);
        Some(TokenUsage {
            prompt,
            completion,
            total: prompt.saturating_add(completion),
            cached,
            reasoning: 0,
        })
    }
}

/// What the answer said so far.
#[derive(Default)]
struct Observed {
    kind: RouteKind,
    model: Option<String>,
    openai: Option<TokenUsage>,
    anthropic: AnthropicCounts,
    /// The assistant's text, for the tokenizer fallback.
    text: CappedText,
    /// The upstream answered with an error object: nothing was generated, nothing is estimated.
    failed: bool,
    /// Part of the answer could not be read: no estimate could be trusted.
    unreadable: bool,
}

/// What an SSE event means for the client's copy of the stream.
#[derive(Debug, Default, Clone, Copy)]
struct EventFacts {
    /// An OpenAI chunk with no choices and a usage object: the chunk `include_usage` adds.
    usage_only: bool,
}

impl Observed {
    fn json_answer(&mut self, body: &[u8]) {
        match self.kind {
            RouteKind::Openai => {
                if let Ok(body) = serde_json::from_slice::<OpenaiBody<'_>>(body) {
                    self.openai_body(body, false);
                }
            }
            RouteKind::Anthropic => {
                if let Ok(body) = serde_json::from_slice::<AnthropicBody<'_>>(body) {
                    self.anthropic_body(body, false);
                }
            }
            RouteKind::Http => {}
        }
    }

    fn sse_event(&mut self, data: &[u8]) -> EventFacts {
        let data = data.trim_ascii_start();
        // `[DONE]`, pings and other non-objects need no parser.
        if data.first() != Some(&b'{') {
            return EventFacts::default();
        }
        match self.kind {
            RouteKind::Openai => match serde_json::from_slice::<OpenaiBody<'_>>(data) {
                Ok(body) => {
                    let usage_only =
                        body.choices.as_ref().is_some_and(Vec::is_empty) && body.usage.is_some();
                    self.openai_body(body, true);
                    EventFacts { usage_only }
                }
                Err(_) => EventFacts::default(),
            },
            RouteKind::Anthropic => {
                if let Ok(body) = serde_json::from_slice::<AnthropicBody<'_>>(data) {
                    self.anthropic_body(body, true);
                }
                EventFacts::default()
            }
            RouteKind::Http => EventFacts::default(),
        }
    }

    fn note_model(&mut self, model: Text<'_>) {
        if self.model.is_none()
            && let Some(model) = model.0
            && !model.is_empty()
        {
            self.model = Some(model.into_owned());
        }
    }

    fn note_text(&mut self, text: Text<'_>) {
        if let Some(text) = text.0 {
            self.text.push(&text);
        }
    }

    fn openai_body(&mut self, body: OpenaiBody<'_>, streaming: bool) {
        self.failed |= body.error.is_some();
        self.note_model(body.model);
        if let Some(usage) = body.usage.as_ref().and_then(OpenaiUsage::tokens) {
            self.openai = Some(usage);
        }
        if let Some(response) = body.response {
            self.note_model(response.model);
            if let Some(usage) = response.usage.as_ref().and_then(OpenaiUsage::tokens) {
                self.openai = Some(usage);
            }
        }
        for choice in body.choices.into_iter().flatten() {
            for message in [choice.delta, choice.message].into_iter().flatten() {
                self.note_text(message.content);
                for call in message.tool_calls.into_iter().flatten() {
                    if let Some(function) = call.function {
                        self.note_text(function.arguments);
                    }
                }
            }
            self.note_text(choice.text);
        }
        if streaming {
            let text_delta = matches!(
                body.event.0.as_deref(),
                Some(
                    "response.output_text.delta"
                        | "response.refusal.delta"
                        | "response.function_call_arguments.delta"
                )
            );
            if text_delta {
                self.note_text(body.delta);
            }
        } else {
            // Streams repeat the whole output in `response.completed`: only answers are read here.
            for item in body.output.into_iter().flatten() {
                self.note_text(item.content);
                self.note_text(item.arguments);
            }
        }
    }

    fn anthropic_body(&mut self, body: AnthropicBody<'_>, streaming: bool) {
        self.failed |= body.error.is_some();
        self.note_model(body.model);
        if let Some(start) = body.message {
            self.note_model(start.model);
            if let Some(usage) = &start.usage {
                self.anthropic.merge(usage);
            }
        }
        if let Some(usage) = &body.usage {
            self.anthropic.merge(usage);
            self.anthropic.complete = true;
        }
        if let Some(delta) = body.delta {
            self.note_text(delta.text);
            self.note_text(delta.partial_json);
            self.note_text(delta.thinking);
        }
        if !streaming {
            self.note_text(body.content);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// SSE reading
// ---------------------------------------------------------------------------------------------

/// The fields of the SSE event being read.
#[derive(Default)]
struct EventData {
    /// The `data` lines joined with `\n`, as the SSE rules say.
    data: Vec<u8>,
    /// How many `data` lines.
    lines: usize,
    /// Where the first data line's value sits, from the event's first byte (while hiding).
    first_value: Range<usize>,
    /// The data passed [`LINE_CAP`]; the event is not read.
    too_big: bool,
}

enum LineKind {
    /// An empty line: the event ends.
    Blank,
    /// A `data` line; its value starts at this offset of the line.
    Data(usize),
    /// A comment or another field.
    Other,
}

impl EventData {
    fn line(&mut self, line: &[u8]) -> LineKind {
        if line.is_empty() {
            return LineKind::Blank;
        }
        let (field, value_at) = match memchr(b':', line) {
            Some(0) => return LineKind::Other,
            Some(colon) => (
                &line[..colon],
                colon + 1 + usize::from(line.get(colon + 1) == Some(&b' ')),
            ),
            None => (line, line.len()),
        };
        if field != b"data" {
            return LineKind::Other;
        }
        let value = line.get(value_at..).unwrap_or_default();
        if !self.too_big {
            if self.data.len() + value.len() + 1 > LINE_CAP {
                self.too_big = true;
                self.data = Vec::new();
            } else {
                if self.lines > 0 {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
            }
        }
        self.lines += 1;
        LineKind::Data(value_at)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.lines = 0;
        self.first_value = 0..0;
        self.too_big = false;
    }
}

/// Where [`SseReader::pump`] stopped, as offsets into the buffer it read.
struct Pumped {
    /// Start of the first unfinished line.
    line_end: usize,
    /// Start of the first unfinished event.
    event_end: usize,
    /// Where the search for the next line break resumes.
    scan: usize,
}

/// Reads an SSE stream. Passing through, `held` is the unfinished last line (for the parser
/// only; the client already has it). Hiding, `held` is the unfinished last event, not yet sent.
#[derive(Default)]
struct SseReader {
    hide: bool,
    held: Vec<u8>,
    /// Start of the unfinished line in `held` (always 0 when passing through).
    line_start: usize,
    /// Where the line-break search resumes in `held`, so no byte is scanned twice.
    scan: usize,
    event: EventData,
    /// An unfinished line passed [`LINE_CAP`]: the rest of the stream is not read.
    overflowed: bool,
}

impl SseReader {
    fn on_chunk(&mut self, chunk: Bytes, seen: &mut Observed) -> Bytes {
        if chunk.is_empty() {
            return chunk;
        }
        if self.hide {
            return self.hide_chunk(&chunk, seen);
        }
        self.pass_chunk(&chunk, seen);
        if self.held.len() > LINE_CAP {
            self.overflowed = true;
        }
        chunk
    }

    /// Reads a chunk the client gets unchanged; only an unfinished line is copied.
    fn pass_chunk(&mut self, chunk: &[u8], seen: &mut Observed) {
        let mut rest = chunk;
        if !self.held.is_empty() {
            // Complete the carried line with the chunk's bytes up to its first line break.
            let take = if self.held.ends_with(b"\r") {
                usize::from(rest.first() == Some(&b'\n'))
            } else {
                match memchr2(b'\n', b'\r', rest) {
                    None => rest.len(),
                    Some(at) if rest.get(at) == Some(&b'\n') => at + 1,
                    Some(at) => match rest.get(at + 1) {
                        Some(b'\n') => at + 2,
                        Some(_) => at + 1,
                        None => rest.len(),
                    },
                }
            };
            self.held.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let held = mem::take(&mut self.held);
            // A trailing `\r` ends its line once a byte other than `\n` is known to follow.
            let pumped = self.pump(&held, 0, self.scan, !rest.is_empty(), seen, None);
            self.held = held;
            if pumped.line_end < self.held.len() {
                self.scan = pumped.scan;
                return;
            }
            self.held.clear();
        }
        let pumped = self.pump(rest, 0, 0, false, seen, None);
        self.held.extend_from_slice(&rest[pumped.line_end..]);
        self.scan = pumped.scan - pumped.line_end;
    }

    /// Reads a chunk while hiding the injected usage: returns the complete events, edited.
    fn hide_chunk(&mut self, chunk: &[u8], seen: &mut Observed) -> Bytes {
        let mut out = BytesMut::with_capacity(self.held.len() + chunk.len());
        let mut held = mem::take(&mut self.held);
        let pumped = if held.is_empty() {
            let pumped = self.pump(chunk, 0, 0, false, seen, Some(&mut out));
            held.extend_from_slice(&chunk[pumped.event_end..]);
            pumped
        } else {
            held.extend_from_slice(chunk);
            let pumped = self.pump(
                &held,
                self.line_start,
                self.scan,
                false,
                seen,
                Some(&mut out),
            );
            held.drain(..pumped.event_end);
            pumped
        };
        self.held = held;
        self.line_start = pumped.line_end - pumped.event_end;
        self.scan = pumped.scan - pumped.event_end;
        if self.held.len() > HELD_CAP {
            // Not an event stream as OpenAI writes them; stop delaying it.
            out.extend_from_slice(&self.held);
            self.held.drain(..self.line_start);
            self.scan -= self.line_start;
            self.line_start = 0;
            self.hide = false;
        }
        out.freeze()
    }

    /// Reads the complete lines of `buf` from `line_start`, resuming the line-break search at
    /// `scan`. `buf` starts at an event's first byte when `out` is given: complete events are
    /// then written to `out`, the injected usage removed. With `eof`, a final `\r` ends a line.
    fn pump(
        &mut self,
        buf: &[u8],
        mut line_start: usize,
        mut scan: usize,
        eof: bool,
        seen: &mut Observed,
        mut out: Option<&mut BytesMut>,
    ) -> Pumped {
        let mut event_start = 0;
        loop {
            let Some(found) = buf.get(scan..).and_then(|rest| memchr2(b'\n', b'\r', rest)) else {
                scan = buf.len();
                break;
            };
            let brk = scan + found;
            // SSE lines end with `\n`, `\r\n` or a lone `\r`.
            let next = match (buf[brk], buf.get(brk + 1)) {
                (b'\n', _) => brk + 1,
                (_, Some(b'\n')) => brk + 2,
                (_, Some(_)) => brk + 1,
                (_, None) if eof => brk + 1,
                (_, None) => {
                    scan = brk;
                    break;
                }
            };
            match self.event.line(&buf[line_start..brk]) {
                LineKind::Data(value_at) => {
                    if out.is_some() && self.event.lines == 1 {
                        self.event.first_value =
                            line_start + value_at - event_start..brk - event_start;
                    }
                }
                LineKind::Blank => {
                    let facts = if self.event.lines > 0 && !self.event.too_big {
                        seen.sse_event(&self.event.data)
                    } else {
                        EventFacts::default()
                    };
                    if let Some(out) = out.as_deref_mut() {
                        emit_event(out, &buf[event_start..next], &self.event, facts);
                    }
                    self.event.clear();
                    event_start = next;
                }
                LineKind::Other => {}
            }
            line_start = next;
            scan = next;
        }
        Pumped {
            line_end: line_start,
            event_end: event_start,
            scan,
        }
    }

    /// The body ended: reads what is left and returns the bytes still owed to the client.
    fn end(&mut self, seen: &mut Observed) -> Bytes {
        let held = mem::take(&mut self.held);
        let mut out = BytesMut::new();
        let (last_line, unsent) = if self.hide {
            let pumped = self.pump(
                &held,
                self.line_start,
                self.scan,
                true,
                seen,
                Some(&mut out),
            );
            (pumped.line_end, pumped.event_end)
        } else {
            let pumped = self.pump(&held, 0, self.scan, true, seen, None);
            (pumped.line_end, held.len())
        };
        // The body stopped inside an event. Clients drop such an event, so it goes out as it
        // came, but its data still counts (some servers omit the last blank line).
        if let Some(line) = held.get(last_line..)
            && !line.is_empty()
        {
            self.event.line(line);
        }
        if self.event.lines > 0 && !self.event.too_big {
            seen.sse_event(&self.event.data);
        }
        self.event.clear();
        out.extend_from_slice(held.get(unsent..).unwrap_or_default());
        out.freeze()
    }
}

/// Writes one complete event for the client: nothing for the injected usage-only chunk, and
/// every other chunk without its `"usage":null`.
fn emit_event(out: &mut BytesMut, raw: &[u8], event: &EventData, facts: EventFacts) {
    if facts.usage_only {
        return;
    }
    // A JSON document split over several data lines is left alone; OpenAI never writes one.
    if event.lines == 1 {
        let value = event.first_value.clone();
        if let Some(cut) = raw.get(value.clone()).and_then(null_usage_member) {
            out.extend_from_slice(&raw[..value.start + cut.start]);
            out.extend_from_slice(&raw[value.start + cut.end..]);
            return;
        }
    }
    out.extend_from_slice(raw);
}

/// A copy of a JSON answer, read once the body has ended.
#[derive(Default)]
struct JsonCopy {
    bytes: Vec<u8>,
    state: JsonState,
}

#[derive(Default, PartialEq)]
enum JsonState {
    /// Nothing but whitespace yet.
    #[default]
    Start,
    Copying,
    /// Not a JSON object (audio, text, …): nothing to read.
    NotObject,
    /// Larger than [`JSON_CAP`].
    TooLarge,
}

impl JsonCopy {
    fn take(&mut self, mut chunk: &[u8]) {
        if self.state == JsonState::Start {
            let Some(first) = chunk.iter().position(|b| !b.is_ascii_whitespace()) else {
                return;
            };
            chunk = &chunk[first..];
            self.state = if chunk[0] == b'{' {
                JsonState::Copying
            } else {
                JsonState::NotObject
            };
        }
        if self.state != JsonState::Copying {
            return;
        }
        if self.bytes.len() + chunk.len() > JSON_CAP {
            self.state = JsonState::TooLarge;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(chunk);
        }
    }
}

enum BodyReader {
    /// Not an LLM route, or the body has ended.
    Done,
    Json(JsonCopy),
    Sse(SseReader),
}

/// What was captured from a response.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CapturedUsage {
    /// The model the upstream says answered (falls back to the requested one).
    pub model: Option<String>,
    /// Token counts.
    pub tokens: TokenUsage,
    /// Whether the counts come from the tokenizer rather than the upstream.
    pub estimated: bool,
}

/// Watches a response body chunk by chunk as it streams to the client.
pub struct ResponseTap {
    kind: RouteKind,
    request: RequestInfo,
    sse: bool,
    body: BodyReader,
    seen: Observed,
    /// The upstream's status was not 2xx: nothing was generated, nothing is estimated.
    error_status: bool,
}

impl fmt::Debug for ResponseTap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let reading = match &self.body {
            BodyReader::Done => "done",
            BodyReader::Json(_) => "json",
            BodyReader::Sse(reader) if reader.hide => "sse, hiding injected usage",
            BodyReader::Sse(_) => "sse",
        };
        f.debug_struct("ResponseTap")
            .field("kind", &self.kind)
            .field("request", &self.request)
            .field("reading", &reading)
            .finish_non_exhaustive()
    }
}

impl ResponseTap {
    /// A tap for one response; `sse` when the response is `text/event-stream`.
    pub fn new(kind: RouteKind, request: RequestInfo, sse: bool) -> Self {
        let body = match (kind.is_llm(), sse) {
            (false, _) => BodyReader::Done,
            (true, false) => BodyReader::Json(JsonCopy::default()),
            (true, true) => BodyReader::Sse(SseReader {
                hide: kind == RouteKind::Openai && request.injected_include_usage,
                ..SseReader::default()
            }),
        };
        let seen = Observed {
            kind,
            ..Observed::default()
        };
        Self {
            kind,
            request,
            sse,
            body,
            seen,
            error_status: false,
        }
    }

    /// Tells the tap the upstream's status: answers that are not 2xx are never estimated
    /// (usage the upstream does report is still taken).
    pub fn set_status(&mut self, status: u16) {
        self.error_status = !(200..300).contains(&status);
    }

    /// Takes one chunk from the upstream and returns what to send to the client now (usually the
    /// same bytes; less when an injected usage-only event is hidden, or a partial line is held).
    pub fn on_chunk(&mut self, chunk: Bytes) -> Bytes {
        match &mut self.body {
            BodyReader::Done => chunk,
            BodyReader::Json(copy) => {
                copy.take(&chunk);
                chunk
            }
            BodyReader::Sse(reader) => {
                let out = reader.on_chunk(chunk, &mut self.seen);
                if reader.overflowed {
                    self.seen.unreadable = true;
                    self.body = BodyReader::Done;
                }
                out
            }
        }
    }

    /// Called at the end of the upstream body: returns any held bytes to send to the client.
    pub fn flush(&mut self) -> Bytes {
        match mem::replace(&mut self.body, BodyReader::Done) {
            BodyReader::Done => Bytes::new(),
            BodyReader::Json(copy) => {
                match copy.state {
                    JsonState::Copying => self.seen.json_answer(&copy.bytes),
                    JsonState::TooLarge => self.seen.unreadable = true,
                    JsonState::Start | JsonState::NotObject => {}
                }
                Bytes::new()
            }
            BodyReader::Sse(mut reader) => reader.end(&mut self.seen),
        }
    }

    /// The usage, once the body has ended (or was cut short).
    pub fn finish(mut self) -> CapturedUsage {
        self.flush();
        let Self {
            kind,
            request,
            sse,
            seen,
            error_status,
            ..
        } = self;
        let model = seen.model.or(request.model);
        if !kind.is_llm() {
            return CapturedUsage {
                model,
                ..CapturedUsage::default()
            };
        }
        let count =
            |text: &str| i64::try_from(count_tokens(model.as_deref(), text)).unwrap_or(i64::MAX);
        let reported = match kind {
            RouteKind::Openai => seen.openai,
            RouteKind::Anthropic => seen.anthropic.tokens(),
            RouteKind::Http => None,
        };
        let (tokens, estimated) = match reported {
            // An Anthropic stream cut before `message_delta` only reported its first token.
            Some(mut tokens) if sse && kind == RouteKind::Anthropic && !seen.anthropic.complete => {
                let counted = count(&seen.text.text);
                let estimated = counted > tokens.completion;
                if estimated {
                    tokens.completion = counted;
                    tokens.total = tokens.prompt.saturating_add(counted);
                }
                (tokens, estimated)
            }
            Some(tokens) => (tokens, false),
            None if seen.failed || seen.unreadable || error_status => {
                (TokenUsage::default(), false)
            }
            None if model.is_some() || !seen.text.text.is_empty() => {
                let prompt = count(&request.prompt_text);
                let completion = count(&seen.text.text);
                let total = prompt.saturating_add(completion);
                (
                    TokenUsage {
                        prompt,
                        completion,
                        total,
                        ..TokenUsage::default()
                    },
                    true,
                )
            }
            None => (TokenUsage::default(), false),
        };
        CapturedUsage {
            model,
            tokens,
            estimated,
        }
    }
}

#[cfg(test)]
mod tests {
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
        let body =
            br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}], "stream": true}"#;
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
        let body = "{\"model\":\"gpt-4o\",\"choices\":[{\"message\":{\"content\":\"Grüße aus Köln 🎉\"}}]}";
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
            client
                .extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(&event.as_bytes()[..at])));
            client
                .extend_from_slice(&tap.on_chunk(Bytes::copy_from_slice(&event.as_bytes()[at..])));
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
    fn null_usage_member_cuts_only_the_top_level_member() {
        let cases: [(&str, Option<&str>); 7] = [
            (r#"{"a":1,"usage":null}"#, Some(r#"{"a":1}"#)),
            (r#"{"usage":null,"a":1}"#, Some(r#"{"a":1}"#)),
            (
                r#"{ "a": 1 , "usage" : null , "b": [2] }"#,
                Some(r#"{ "a": 1 , "b": [2] }"#),
            ),
            (r#"{"usage":null}"#, Some("{}")),
            (r#"{"a":{"usage":null},"b":"\"usage\":null"}"#, None),
            (r#"{"usage":{"prompt_tokens":1}}"#, None),
            (r#"[DONE]"#, None),
        ];
        for (json, expected) in cases {
            let cut = null_usage_member(json.as_bytes());
            let edited = cut.map(|cut| format!("{}{}", &json[..cut.start], &json[cut.end..]));
            assert_eq!(edited.as_deref(), expected, "{json}");
        }
    }

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
}
