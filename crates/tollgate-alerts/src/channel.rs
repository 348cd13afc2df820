//! Where alerts go: a generic signed webhook or a Slack-compatible incoming webhook.

use std::fmt;

use rand::Rng;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tollgate_core::upstream::UpstreamTarget;

use crate::alert::AlertKind;

/// The longest webhook URL accepted.
const MAX_URL_LEN: usize = 2048;
/// The longest channel name accepted, in characters.
const MAX_NAME_CHARS: usize = 100;
/// What every secret from [`new_secret`] starts with, so one is recognisable when pasted.
const SECRET_PREFIX: &str = "whsec_";

/// A channel that cannot be made; each names the field that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// The URL is not an http(s) URL a webhook may use.
    #[error("url: {0}")]
    Url(String),
    /// The name is empty, too long or holds control characters.
    #[error("name: {0}")]
    Name(String),
    /// The format is neither `generic` nor `slack`.
    #[error("format: `{0}` is not one of generic, slack")]
    Format(String),
}

impl ChannelError {
    /// The input field the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            Self::Url(_) => "url",
            Self::Name(_) => "name",
            Self::Format(_) => "format",
        }
    }
}

/// How a channel's deliveries are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelFormat {
    /// A JSON body (`kind`, `summary`, `details`, `instance`, `at`, `dedup_key`), signed.
    Generic,
    /// Slack's incoming-webhook body (`text` and `blocks`); Mattermost and others take it too.
    Slack,
}

impl ChannelFormat {
    /// The name used in the API, the CLI and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Slack => "slack",
        }
    }
}

impl std::str::FromStr for ChannelFormat {
    type Err = ChannelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "generic" => Ok(Self::Generic),
            "slack" => Ok(Self::Slack),
            _ => Err(ChannelError::Format(text.to_owned())),
        }
    }
}

/// A validated webhook URL: http or https, a host, no user name or password, no fragment.
///
/// Its `Debug` and `Display` show only the scheme, host and port: a Slack webhook's path is its
/// credential, and generic webhooks often carry a token in the query.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: url::Url,
    target: UpstreamTarget,
}

impl WebhookUrl {
    /// Validates `text`; the error says what is wrong without repeating the URL (it may be a
    /// credential).
    pub fn parse(text: &str) -> Result<Self, ChannelError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChannelError::Url("must not be empty".into()));
        }
        if text.len() > MAX_URL_LEN {
            return Err(ChannelError::Url(format!(
                "must be at most {MAX_URL_LEN} bytes"
            )));
        }
        if text.contains('\\') {
            return Err(ChannelError::Url("must not contain a backslash".into()));
        }
        let url =
            url::Url::parse(text).map_err(|e| ChannelError::Url(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ChannelError::Url(
                "must start with http:// or https://".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(ChannelError::Url(
                "must not carry a user name or password; put a token in the path or query".into(),
            ));
        }
        if url.fragment().is_some() {
            return Err(ChannelError::Url(
                "must not have a #fragment (it is never sent)".into(),
            ));
        }
        // The same reading of the host the upstream checks use (so `http://0x7f000001/` is the
        // loopback address it is); the text is left out of the message on purpose.
        let target = UpstreamTarget::parse(url.as_str()).map_err(|_| {
            ChannelError::Url("has no valid host (expected http(s)://host[:port]/path)".into())
        })?;
        Ok(Self { url, target })
    }

    /// The full URL, credential included: for sending and for sealing into the store only.
    pub fn expose(&self) -> &str {
        self.url.as_str()
    }

    /// Scheme, host and port.
    pub fn target(&self) -> &UpstreamTarget {
        &self.target
    }

    pub(crate) fn as_url(&self) -> &url::Url {
        &self.url
    }

    /// What the console and the CLI show once the URL is sealed, e.g.
    /// `https://hooks.slack.com/services/T0…/****`: scheme, host and port (when not the default)
    /// and at most the first two path segments. A segment is shown whole only when it reads like
    /// a word (at most 20 characters, no digit: `services`, `hooks`); otherwise only its first two
    /// characters. Whatever follows is `/****`; the query is dropped.
    pub fn display(&self) -> String {
        const WORD_MAX: usize = 20;
        let mut out = self.redacted();
        out.truncate(out.len() - "/…".len());
        let segments: Vec<&str> = self
            .url
            .path_segments()
            .map(|s| s.filter(|seg| !seg.is_empty()).collect())
            .unwrap_or_default();
        for seg in segments.iter().take(2) {
            out.push('/');
            let wordlike =
                seg.chars().count() <= WORD_MAX && !seg.chars().any(|c| c.is_ascii_digit());
            if wordlike {
                out.push_str(seg);
            } else {
                out.extend(seg.chars().take(2));
                out.push('…');
            }
        }
        if segments.len() > 2 {
            out.push_str("/****");
        }
        if segments.is_empty() {
            out.push('/');
        }
        out
    }

    /// `https://hooks.slack.com/…`: safe for lists, logs and errors.
    pub fn redacted(&self) -> String {
        let default_port = match self.target.scheme.as_str() {
            "https" => 443,
            _ => 80,
        };
        if self.target.port == default_port {
            format!("{}://{}/…", self.target.scheme, self.target.host)
        } else {
            format!(
                "{}://{}:{}/…",
                self.target.scheme, self.target.host, self.target.port
            )
        }
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WebhookUrl").field(&self.redacted()).finish()
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// One place alerts are delivered to.
#[derive(Debug, Clone)]
pub struct Channel {
    /// The store's id.
    pub id: i64,
    /// What the operator calls it.
    pub name: String,
    /// Generic JSON or Slack-compatible.
    pub format: ChannelFormat,
    /// Where deliveries are posted.
    pub url: WebhookUrl,
    /// The signing secret (generic channels sign with it; the caller keeps it sealed at rest).
    pub secret: SecretString,
    /// The alert kinds this channel takes; empty means every kind.
    pub kinds: Vec<AlertKind>,
}

impl Channel {
    /// A channel from API or CLI input, validated; every kind of alert goes to it.
    pub fn new(
        id: i64,
        name: &str,
        format: ChannelFormat,
        url: &str,
        secret: SecretString,
    ) -> Result<Self, ChannelError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(ChannelError::Name("must not be empty".into()));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(ChannelError::Name(format!(
                "must be at most {MAX_NAME_CHARS} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(ChannelError::Name(
                "must not contain control characters".into(),
            ));
        }
        Ok(Self {
            id,
            name: name.to_owned(),
            format,
            url: WebhookUrl::parse(url)?,
            secret,
            kinds: Vec::new(),
        })
    }

    /// Whether alerts of `kind` go to this channel.
    pub fn accepts(&self, kind: AlertKind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }

    pub(crate) fn secret_text(&self) -> &str {
        self.secret.expose_secret()
    }
}

/// A new channel secret: `whsec_` and 64 lower-case hex digits (32 bytes from the thread's
/// OS-seeded cryptographic generator). Shown to the operator once; the HMAC key is this whole string.
pub fn new_secret() -> SecretString {
    let mut bytes = [0_u8; 32];
    rand::rng().fill(&mut bytes);
    SecretString::from(format!("{SECRET_PREFIX}{}", hex::encode(bytes)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(url: &str) -> String {
        WebhookUrl::parse(url).unwrap_err().to_string()
    }

    #[test]
    fn webhook_urls_are_validated_without_echoing_them() {
        assert!(WebhookUrl::parse("https://hooks.example.com/services/T/B/x").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook?token=abc").is_ok());
        assert!(err("ftp://example.com/x").contains("http:// or https://"));
        assert!(err("https://user:pw@example.com/x").contains("user name or password"));
        assert!(!err("https://user:pw@example.com/x").contains("pw"));
        assert!(err("https://example.com/x#frag").contains("fragment"));
        assert!(err("").contains("empty"));
        assert!(err("not a url").starts_with("url: not a URL"));
        assert!(err("https://example.com\\@127.0.0.1/").contains("backslash"));
        assert!(err(&format!("https://example.com/{}", "a".repeat(3000))).contains("2048"));
        assert_eq!(WebhookUrl::parse("mailto:a@b").unwrap_err().field(), "url");
    }

    #[test]
    fn urls_print_only_their_origin() {
        let url = WebhookUrl::parse("https://hooks.slack.com/services/T0/B0/sekrit").unwrap();
        assert_eq!(url.redacted(), "https://hooks.slack.com/…");
        assert!(!format!("{url:?}").contains("sekrit"));
        let url = WebhookUrl::parse("http://127.0.0.1:9000/hook?token=sekrit").unwrap();
        assert_eq!(url.to_string(), "http://127.0.0.1:9000/…");
        assert_eq!(url.expose(), "http://127.0.0.1:9000/hook?token=sekrit");
    }

    #[test]
    fn display_masks_the_path_and_drops_the_query() {
        let shown = |u: &str| WebhookUrl::parse(u).unwrap().display();
        assert_eq!(
            shown("https://hooks.slack.com/services/T0AB12CD/B0EF34GH/xoxsekritsekritsekrit"),
            "https://hooks.slack.com/services/T0…/****"
        );
        assert_eq!(
            shown("http://127.0.0.1:9000/hook?token=sekrit"),
            "http://127.0.0.1:9000/hook"
        );
        assert_eq!(
            shown("https://chat.example.com/hooks/8xk3sekritgeneratedkey"),
            "https://chat.example.com/hooks/8x…"
        );
        assert_eq!(shown("https://example.com"), "https://example.com/");
        assert_eq!(
            shown("https://example.com/averyveryverylongwordwithoutdigits"),
            "https://example.com/av…"
        );
        for u in [
            "https://hooks.slack.com/services/T0AB12CD/B0EF34GH/xoxsekrit",
            "http://127.0.0.1:9000/hook?token=sekrit",
        ] {
            assert!(!shown(u).contains("sekrit"), "{u}");
        }
    }

    #[test]
    fn channel_input_is_checked_field_by_field() {
        let ok = Channel::new(
            1,
            " ops ",
            ChannelFormat::Generic,
            "https://example.com/h",
            new_secret(),
        )
        .unwrap();
        assert_eq!(ok.name, "ops");
        let e = Channel::new(1, "", ChannelFormat::Slack, "https://e.com", new_secret());
        assert_eq!(e.unwrap_err().field(), "name");
        let e = Channel::new(
            1,
            "a\nb",
            ChannelFormat::Slack,
            "https://e.com",
            new_secret(),
        );
        assert_eq!(e.unwrap_err().field(), "name");
        let e = Channel::new(
            1,
            "ops",
            ChannelFormat::Slack,
            "gopher://e.com",
            new_secret(),
        );
        assert_eq!(e.unwrap_err().field(), "url");
        assert_eq!("Slack".parse::<ChannelFormat>(), Ok(ChannelFormat::Slack));
        assert_eq!(
            "teams".parse::<ChannelFormat>().unwrap_err().field(),
            "format"
        );
    }

    #[test]
    fn secrets_are_fresh_prefixed_and_redacted() {
        let a = new_secret();
        let b = new_secret();
        let text = a.expose_secret();
        assert!(text.starts_with("whsec_") && text.len() == 6 + 64, "{text}");
        assert!(text[6..].bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(text, b.expose_secret());
        let channel = Channel::new(
            7,
            "ops",
            ChannelFormat::Slack,
            "https://hooks.slack.com/services/T0/B0/sekrit",
            a.clone(),
        )
        .unwrap();
        let debug = format!("{channel:?}");
        assert!(!debug.contains(&text[6..]), "{debug}");
        assert!(!debug.contains("sekrit"), "{debug}");
    }
}
