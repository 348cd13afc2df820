//! The `x-mock-*` request headers that steer an answer.

use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};

/// Reply text when `x-mock-text` is absent.
pub(crate) const DEFAULT_TEXT: &str = "Hello from the tollgate mock upstream.";
/// Events of `GET /sse` when `x-mock-chunks` is absent.
pub(crate) const DEFAULT_SSE_EVENTS: usize = 5;

/// Upper bounds that keep a typo from exhausting memory or stalling a test for hours.
const MAX_DELAY_MS: u64 = 600_000;
const MAX_CHUNKS: u64 = 1_000_000;
const MAX_BODY_BYTES: u64 = 256 * 1024 * 1024;

/// What the control headers of one request asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Controls {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) cached_tokens: u64,
    pub(crate) reasoning_tokens: u64,
    pub(crate) text: Option<String>,
    pub(crate) status: Option<StatusCode>,
    pub(crate) latency: Duration,
    pub(crate) chunk_delay: Duration,
    pub(crate) chunks: Option<usize>,
    pub(crate) no_usage: bool,
    pub(crate) body_bytes: Option<usize>,
    pub(crate) hang: bool,
    pub(crate) close: bool,
    pub(crate) echo_headers: bool,
}

impl Default for Controls {
    fn default() -> Self {
        Self {
            prompt_tokens: 11,
            completion_tokens: 7,
            cached_tokens: 0,
            reasoning_tokens: 0,
            text: None,
            status: None,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            chunks: None,
            no_usage: false,
            body_bytes: None,
            hang: false,
            close: false,
            echo_headers: false,
        }
    }
}

impl Controls {
    /// Reads every `x-mock-*` header; an unknown one or a bad value is an error naming it.
    pub(crate) fn from_headers(headers: &HeaderMap) -> Result<Self, String> {
        let mut controls = Self::default();
        for (name, value) in headers {
            let Some(key) = name.as_str().strip_prefix("x-mock-") else {
                continue;
            };
            let bad = |expected: &str| {
                format!("control header {name}: expected {expected}, got {value:?}")
            };
            let number = |max: u64| {
                value
                    .to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .filter(|n| *n <= max)
                    .ok_or_else(|| bad(&format!("an integer from 0 to {max}")))
            };
            match key {
                "prompt-tokens" => controls.prompt_tokens = number(u64::from(u32::MAX))?,
                "completion-tokens" => controls.completion_tokens = number(u64::from(u32::MAX))?,
                "cached-tokens" => controls.cached_tokens = number(u64::from(u32::MAX))?,
                "reasoning-tokens" => controls.reasoning_tokens = number(u64::from(u32::MAX))?,
                "latency-ms" => controls.latency = Duration::from_millis(number(MAX_DELAY_MS)?),
                "chunk-delay-ms" => {
                    controls.chunk_delay = Duration::from_millis(number(MAX_DELAY_MS)?);
                }
                "chunks" => controls.chunks = Some(to_usize(number(MAX_CHUNKS)?)),
                "body-bytes" => controls.body_bytes = Some(to_usize(number(MAX_BODY_BYTES)?)),
                "status" => {
                    let code = number(599)?;
                    controls.status = u16::try_from(code)
                        .ok()
                        .filter(|c| *c >= 200)
                        .and_then(|c| StatusCode::from_u16(c).ok())
                        .map(Some)
                        .ok_or_else(|| bad("a status code from 200 to 599"))?;
                }
                "text" => {
                    let text = std::str::from_utf8(value.as_bytes()).map_err(|_| bad("UTF-8"))?;
                    controls.text = Some(text.to_owned());
                }
                "no-usage" => controls.no_usage = flag(value).ok_or_else(|| bad("1 or 0"))?,
                "hang" => controls.hang = flag(value).ok_or_else(|| bad("1 or 0"))?,
                "close" => controls.close = flag(value).ok_or_else(|| bad("1 or 0"))?,
                "echo-headers" => {
                    controls.echo_headers = flag(value).ok_or_else(|| bad("1 or 0"))?;
                }
                _ => return Err(format!("unknown control header {name}")),
            }
        }
        Ok(controls)
    }

    /// The reply text of LLM answers.
    pub(crate) fn text(&self) -> &str {
        self.text.as_deref().unwrap_or(DEFAULT_TEXT)
    }

    /// The content pieces of a streamed answer: the text word by word (concatenated they give the
    /// text exactly), or with `x-mock-chunks` exactly that many words, cycling through the text.
    pub(crate) fn text_pieces(&self) -> Vec<String> {
        let text = self.text();
        match self.chunks {
            None => text.split_inclusive(' ').map(str::to_owned).collect(),
            Some(n) => {
                let words: Vec<&str> = text.split_whitespace().collect();
                if words.is_empty() {
                    return vec![String::new(); n];
                }
                (0..n)
                    .map(|i| {
                        let word = words[i % words.len()];
                        if i + 1 < n {
                            format!("{word} ")
                        } else {
                            word.to_owned()
                        }
                    })
                    .collect()
            }
        }
    }

    /// How many pieces a plain (non-SSE) body is cut into: with a chunk delay and no explicit
    /// count, two, so that the delay shows.
    pub(crate) fn body_pieces(&self) -> usize {
        match self.chunks {
            Some(n) => n,
            None if !self.chunk_delay.is_zero() => 2,
            None => 1,
        }
    }
}

fn flag(value: &HeaderValue) -> Option<bool> {
    match value.as_bytes() {
        b"1" | b"true" => Some(true),
        b"0" | b"false" => Some(false),
        _ => None,
    }
}

/// The caps above fit in `usize` on every supported target.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_static(v));
        }
        map
    }

    #[test]
    fn defaults_without_control_headers() {
        let c = Controls::from_headers(&headers(&[("content-type", "application/json")])).unwrap();
        assert_eq!(c, Controls::default());
        assert_eq!(c.text_pieces().concat(), DEFAULT_TEXT);
        assert_eq!(c.text_pieces().len(), DEFAULT_TEXT.split(' ').count());
    }

    #[test]
    fn reads_every_control_header() {
        let c = Controls::from_headers(&headers(&[
            ("x-mock-prompt-tokens", "100"),
            ("x-mock-completion-tokens", "50"),
            ("x-mock-cached-tokens", "20"),
            ("x-mock-reasoning-tokens", "5"),
            ("x-mock-text", "a b c"),
            ("x-mock-status", "503"),
            ("x-mock-latency-ms", "10"),
            ("x-mock-chunk-delay-ms", "3"),
            ("x-mock-chunks", "4"),
            ("x-mock-no-usage", "1"),
            ("x-mock-body-bytes", "123"),
            ("x-mock-hang", "true"),
            ("x-mock-close", "0"),
            ("x-mock-echo-headers", "1"),
        ]))
        .unwrap();
        assert_eq!((c.prompt_tokens, c.completion_tokens), (100, 50));
        assert_eq!((c.cached_tokens, c.reasoning_tokens), (20, 5));
        assert_eq!(c.status, Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(c.latency, Duration::from_millis(10));
        assert_eq!(c.chunk_delay, Duration::from_millis(3));
        assert_eq!((c.chunks, c.body_bytes), (Some(4), Some(123)));
        assert!(c.no_usage && c.hang && !c.close && c.echo_headers);
        assert_eq!(c.text_pieces(), ["a ", "b ", "c ", "a"]);
    }

    #[test]
    fn rejects_bad_values_and_unknown_headers() {
        for (name, value) in [
            ("x-mock-prompt-tokens", "-1"),
            ("x-mock-status", "99"),
            ("x-mock-status", "600"),
            ("x-mock-latency-ms", "soon"),
            ("x-mock-hang", "yes"),
            ("x-mock-echo-headers", "all"),
            ("x-mock-body-bytes", "999999999999"),
            ("x-mock-colour", "red"),
        ] {
            let err = Controls::from_headers(&headers(&[(name, value)])).unwrap_err();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn body_pieces_follow_delay_and_count() {
        let mut c = Controls::default();
        assert_eq!(c.body_pieces(), 1);
        c.chunk_delay = Duration::from_millis(1);
        assert_eq!(c.body_pieces(), 2);
        c.chunks = Some(7);
        assert_eq!(c.body_pieces(), 7);
    }
}
