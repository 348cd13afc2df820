//! The CLI as a client of a running console: `--server URL` with `--token tgp_…` (or
//! `TOLLGATE_SERVER` / `TOLLGATE_TOKEN`) sends each data command to the console's REST API with
//! the console's own request and response types, acting as the token's user (their roles apply).
//! A remote command never opens or creates a local store, and the token is never printed.

use std::time::Duration;

use anyhow::{Context, bail};
use reqwest::{Method, StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_console::error::{ErrorBody, ErrorDetail};

use crate::backend::Failure;

/// The path whose answer streams for as long as it has rows.
const STREAMED: &str = "api/v1/usage/export";

/// A console reached over HTTP with a personal access token.
pub struct Remote {
    client: reqwest::Client,
    base: Url,
    token: SecretString,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("base", &self.base.as_str())
            .field("token", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The remote target the flags and environment name, if any: `--server` without a token (or
/// the other way round) is an error, as is a server that is not an http(s) URL.
pub fn from_flags(
    server: Option<&str>,
    token: Option<&SecretString>,
    local_flags: &[(&str, bool)],
) -> anyhow::Result<Option<Remote>> {
    let server = server.map(str::trim).filter(|s| !s.is_empty());
    let token = token.filter(|t| !t.expose_secret().trim().is_empty());
    match (server, token) {
        (None, None) => Ok(None),
        (None, Some(_)) => bail!(
            "--token (TOLLGATE_TOKEN) is for a running server: give --server URL (or \
             TOLLGATE_SERVER) too, or unset it to work on the local store"
        ),
        (Some(_), None) => bail!(
            "--server needs a personal access token: give --token tgp_… or set TOLLGATE_TOKEN \
             (create one in the console under Tokens, or with `tollgate token create` on the server)"
        ),
        (Some(server), Some(token)) => {
            if let Some((flag, _)) = local_flags.iter().find(|(_, given)| *given) {
                bail!(
                    "{flag} names a local store or configuration: with --server the server's own is \
                     used, so give one or the other"
                );
            }
            Remote::new(server, token.clone()).map(Some)
        }
    }
}

impl Remote {
    /// A client for the console at `server` (its base URL, e.g. `https://tollgate.example:8317`).
    pub fn new(server: &str, token: SecretString) -> anyhow::Result<Self> {
        let mut base = Url::parse(server).map_err(|e| {
            anyhow::anyhow!(
                "--server: `{server}` is not a URL ({e}); give e.g. http://127.0.0.1:8317"
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            bail!("--server: `{server}` is not an http:// or https:// URL");
        }
        if !token.expose_secret().trim().starts_with("tgp_") {
            bail!(
                "--token: a personal access token starts with tgp_ (create one in the console \
                 under Tokens, or with `tollgate token create` on the server)"
            );
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("tollgate-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        Ok(Self {
            client,
            base,
            token,
        })
    }

    fn url(&self, path: &str) -> Result<Url, Failure> {
        self.base
            .join(path.trim_start_matches('/'))
            .map_err(|e| Failure::Other(anyhow::anyhow!("bad request path {path}: {e}")))
    }

    /// `GET path` answered with JSON.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call::<(), T>(Method::GET, path, None).await
    }

    /// `GET path?query` answered with JSON; the query's values are percent-encoded.
    pub async fn get_query<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, Failure> {
        self.call::<(), T>(Method::GET, &with_query(path, query), None)
            .await
    }

    /// `GET path?query`, its body streamed into `out`; the bytes written.
    pub async fn stream_to(
        &self,
        path: &str,
        query: &[(&str, String)],
        out: &mut dyn std::io::Write,
    ) -> Result<u64, Failure> {
        let mut response = self
            .request::<()>(Method::GET, &with_query(path, query), None)
            .await?;
        let mut written = 0u64;
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Failure::Other(self.transport(&e)))?
        {
            out.write_all(&chunk).map_err(|e| {
                Failure::Other(anyhow::Error::from(e).context("cannot write the export"))
            })?;
            written += chunk.len() as u64;
        }
        Ok(written)
    }

    /// `method path` with a JSON body, answered with JSON.
    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
    ) -> Result<T, Failure> {
        self.call(method, path, Some(body)).await
    }

    /// `DELETE path`, answered with no content.
    pub async fn delete(&self, path: &str) -> Result<(), Failure> {
        let response = self.request::<()>(Method::DELETE, path, None).await?;
        let _ = response.bytes().await;
        Ok(())
    }

    /// `DELETE path`, answered with JSON.
    pub async fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call::<(), T>(Method::DELETE, path, None).await
    }

    /// `POST path` without a body, answered with JSON.
    pub async fn post_empty<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call::<(), T>(Method::POST, path, None).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, Failure> {
        let response = self.request(method, path, body).await?;
        let bytes = response
            .bytes()
            .await
            .map_err(|e| Failure::Other(self.transport(&e)))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Failure::Other(anyhow::anyhow!(
                "{} answered {path} with something this CLI does not understand ({e}); is it a \
                 tollgate console of the same version?",
                self.base
            ))
        })
    }

    async fn request<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, Failure> {
        let mut request = self
            .client
            .request(method, self.url(path)?)
            .bearer_auth(self.token.expose_secret().trim());
        // An answer is due within two minutes; a streamed export takes as long as it takes
        // (its body is read chunk by chunk, each awaited as it comes).
        if !path.starts_with(STREAMED) {
            request = request.timeout(Duration::from_secs(120));
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| Failure::Other(self.transport(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = response.bytes().await.unwrap_or_default();
        let detail = serde_json::from_slice::<ErrorBody>(&bytes).map_or_else(
            |_| ErrorDetail {
                code: "http_error".into(),
                message: format!(
                    "{} answered {path} with HTTP {status}; is it a tollgate console?",
                    self.base
                ),
                field: None,
            },
            |body| body.error,
        );
        if status == StatusCode::UNAUTHORIZED {
            return Err(Failure::Other(anyhow::anyhow!(
                "the server {} refused the token (401 {}): {}",
                self.base,
                detail.code,
                detail.message
            )));
        }
        Err(Failure::Refused {
            status: status.as_u16(),
            detail,
        })
    }

    /// A transport failure in one line: the server unreachable, TLS, a timeout.
    fn transport(&self, e: &reqwest::Error) -> anyhow::Error {
        let mut causes = Vec::new();
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !causes.contains(&text) {
                causes.push(text);
            }
            source = cause.source();
        }
        let detail = causes.last().cloned().unwrap_or_else(|| e.to_string());
        // rustls reports a failed handshake as an I/O error of kind InvalidData, boxed where a
        // downcast cannot reach it (a boxed error's `source` skips the box's own content), so its
        // description is what tells.
        let tls = format!("{e:?}").contains("kind: InvalidData");
        let what = if e.is_timeout() {
            "did not answer in time"
        } else if tls && self.base.scheme() == "https" {
            "cannot be reached: the TLS handshake failed (is it serving https, with a certificate \
             this machine trusts?)"
        } else if e.is_connect() {
            "cannot be reached"
        } else {
            "failed"
        };
        anyhow::anyhow!("the server {} {what}: {detail}", self.base)
    }
}

/// A path segment, percent-encoded (counter names may hold any character the rules allow).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?name=value&…`, the values percent-encoded.
fn with_query(path: &str, query: &[(&str, String)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{name}={}", segment(value)))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}
