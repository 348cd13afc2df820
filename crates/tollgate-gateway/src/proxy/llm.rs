//! The stages of a call on an `llm` route: the endpoint from the path, `/v1/models` answered
//! here, the body's `model` resolved (alias, exact, wildcard), then attempts over the model's
//! pool and its fallback models until one target answers. A connect error, a timeout, a 429 or a
//! 5xx moves the call to the next target — always before the client got a byte, since only a
//! head is ever judged; whatever comes after a good head is the client's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderValue, Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use serde_json::{Map, Value};
use tollgate_core::RouteKind;
use tollgate_core::llm::{self, Endpoint, Matched};
use tollgate_core::time::now_ms;
use tollgate_store::KeyRecord;

use super::Failure;
use super::call::Call;
use super::forward::{Answer, Upstream, admit, classify_upstream_error, inspect, limit};
use super::headers::rewrite_request_headers;
use super::request_body::UpstreamBody;
use super::response_body::GatewayBody;
use crate::auth;
use crate::error::GatewayError;
use crate::llm::{Availability, Catalogue, ModelEntry, TargetEntry};
use crate::metrics::{LlmAttemptLabels, LlmModelLabels, LlmTargetLabels};
use crate::server::{Peer, Shared};
use crate::state::RouteEntry;
use crate::upstream::ResponseBody;

/// One upstream attempt of a call, as the call's detail shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Attempt {
    /// The target's name.
    pub(crate) target: String,
    /// The model name sent.
    pub(crate) model: String,
    /// The upstream's status; the gateway's 502 or 504 when it did not answer.
    pub(crate) status: u16,
    /// Until the head arrived or the attempt failed, ms.
    pub(crate) ms: u64,
}

/// What the call brings to the attempts.
pub(super) struct LlmCall<'a> {
    pub(super) parts: Parts,
    pub(super) route: Arc<RouteEntry>,
    pub(super) path: &'a str,
    pub(super) key: &'a KeyRecord,
    pub(super) key_source: auth::KeySource,
    pub(super) request_id: &'a HeaderValue,
}

/// Serves a call on an `llm` route.
pub(super) async fn forward(
    peer: &Peer,
    llm_call: LlmCall<'_>,
    body: Incoming,
    call: &mut Call,
) -> Result<Answer, Failure> {
    let shared = &*peer.shared;
    let LlmCall {
        mut parts,
        route,
        path,
        key,
        key_source,
        request_id,
    } = llm_call;
    let prefix = route.record.prefix.as_str();
    let rest = if prefix == "/" {
        path
    } else {
        path.get(prefix.len()..).unwrap_or_default()
    };
    let endpoint = Endpoint::from_path(rest).ok_or_else(|| {
        Failure::told(
            GatewayError::UnknownEndpoint,
            format!(
                "`{rest}` is not served here; use /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models or /v1/messages"
            ),
        )
    })?;
    call.anthropic = endpoint.is_anthropic();
    let catalogue = Arc::clone(&shared.routes.load().models);
    if endpoint == Endpoint::Models {
        if parts.method != Method::GET {
            return Err(Failure::told(
                GatewayError::UnknownEndpoint,
                "/v1/models answers GET only",
            ));
        }
        return Ok(Answer::Local(model_list(shared, &catalogue, key)));
    }
    let declared_body = http_body::Body::size_hint(&body).exact();
    admit(shared, declared_body)?;
    let wire = if endpoint.is_anthropic() {
        RouteKind::Anthropic
    } else {
        RouteKind::Openai
    };
    let (upstream_body, request) =
        inspect(shared, wire, &mut parts.headers, body, declared_body, call).await?;
    let (UpstreamBody::Full(Some(bytes)), Some(info)) = (upstream_body, request) else {
        return Err(Failure::told(
            GatewayError::ModelRequired,
            format!(
                "the body must be JSON naming a `model`, at most {} bytes",
                shared.config.llm_peek_bytes
            ),
        ));
    };
    let Some(requested) = info.model.clone() else {
        return Err(Failure::told(
            GatewayError::ModelRequired,
            "the body names no `model`",
        ));
    };
    limit(shared, key, &route, Some(&info), true, call).await?;
    let (first, matched) = catalogue.resolve(&requested).ok_or_else(|| {
        Failure::told(
            GatewayError::ModelNotFound,
            format!("The model `{requested}` does not exist or is not served here."),
        )
    })?;
    let mut attempts = Attempts {
        peer,
        catalogue: &catalogue,
        route: &route,
        wire,
        endpoint,
        parts: &parts,
        query: parts.uri.query(),
        key_source,
        request_id,
        body: RequestBody::new(bytes),
        requested: &requested,
        made: Vec::new(),
        last: None,
        wait: None,
        latency: None,
    };
    let answered = attempts.run(first, matched).await;
    let made = std::mem::take(&mut attempts.made);
    let latency = attempts.latency.take();
    call.event_mut(|e| {
        if let Some(last) = made.last() {
            e.model = Some(last.model.clone());
        }
        e.attempts = serde_json::to_string(&made).ok();
    });
    if let Some((sent, head)) = latency {
        call.answered(sent, head);
    }
    match answered {
        Some((response, entry)) => Ok(Answer::Upstream(Upstream {
            response,
            route: entry,
            request: Some(info),
        })),
        None => match attempts.last.take() {
            Some(Last::Answer(response, entry)) => Ok(Answer::Upstream(Upstream {
                response,
                route: entry,
                request: Some(info),
            })),
            Some(Last::Failure(failure)) => Err(failure),
            None => Err(Failure::told(
                GatewayError::NoTargetAvailable,
                format!(
                    "every target of `{requested}` and of its fallback models is cooling down or at its rate ceiling; retry shortly"
                ),
            )),
        },
    }
}

/// `/v1/models` in OpenAI's list shape: the names (and aliases) the key may call.
fn model_list(shared: &Shared, catalogue: &Catalogue, key: &KeyRecord) -> Response<GatewayBody> {
    let limits = shared.config.limits.as_deref();
    let data: Vec<Value> = catalogue
        .listed_names()
        .filter(|&(name, _)| {
            limits.is_none_or(|l| l.model_allowed(key.id, Some(name)) != Some(false))
        })
        .map(|(name, created_ms)| {
            serde_json::json!({
                "id": name,
                "object": "model",
                "created": created_ms / 1000,
                "owned_by": "tollgate",
            })
        })
        .collect();
    let body = serde_json::json!({"object": "list", "data": data}).to_string();
    let mut response = Response::new(GatewayBody::full(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The request body, with `model` rewritten for each target that needs another name.
struct RequestBody {
    bytes: Bytes,
    /// The body parsed, once a rewrite needed it.
    fields: Option<Map<String, Value>>,
}

impl RequestBody {
    fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            fields: None,
        }
    }

    /// The body naming `model`.
    fn naming(&mut self, requested: &str, model: &str) -> Bytes {
        if model == requested {
            return self.bytes.clone();
        }
        if self.fields.is_none() {
            self.fields = serde_json::from_slice(&self.bytes).ok();
        }
        let Some(fields) = self.fields.as_mut() else {
            return self.bytes.clone();
        };
        fields.insert("model".into(), Value::String(model.to_owned()));
        serde_json::to_vec(fields).map_or_else(|_| self.bytes.clone(), Bytes::from)
    }
}

/// The last unsuccessful outcome, answered when no attempt succeeds.
enum Last {
    /// The upstream's own refusal (429, 5xx), passed on as it came.
    Answer(Response<ResponseBody>, Arc<RouteEntry>),
    /// No answer at all.
    Failure(Failure),
}

/// What an attempt came to.
enum Outcome {
    /// A head worth passing on (anything but 429 and 5xx).
    Answered(Response<ResponseBody>, Arc<RouteEntry>),
    /// A 429 or 5xx; the next target is tried. `retry_after` as the upstream asked.
    Refused(Response<ResponseBody>, Arc<RouteEntry>, Option<Duration>),
    /// No head: connect error or timeout.
    Failed(Failure),
}

/// The attempts of one call.
struct Attempts<'a> {
    peer: &'a Peer,
    catalogue: &'a Catalogue,
    route: &'a Arc<RouteEntry>,
    wire: RouteKind,
    endpoint: Endpoint,
    parts: &'a Parts,
    query: Option<&'a str>,
    key_source: auth::KeySource,
    request_id: &'a HeaderValue,
    body: RequestBody,
    requested: &'a str,
    made: Vec<Attempt>,
    last: Option<Last>,
    /// The shortest `Retry-After` within the cap: (model, pool position, wait).
    wait: Option<(usize, usize, Duration)>,
    /// When the last attempt was sent, and until its head arrived.
    latency: Option<(Instant, Duration)>,
}

impl Attempts<'_> {
    /// Tries the pools of `first` and its fallbacks; the answering head and its route entry, or
    /// `None` when every attempt failed (see `last`).
    async fn run(
        &mut self,
        first: usize,
        matched: Matched,
    ) -> Option<(Response<ResponseBody>, Arc<RouteEntry>)> {
        // Copies of the shared references, so that borrows of them do not hold `self`.
        let (peer, catalogue) = (self.peer, self.catalogue);
        let shared = &*peer.shared;
        let max = usize::try_from(shared.config.pools.max_attempts.max(1)).unwrap_or(1);
        let chain = catalogue.chain(first);
        for (n, &model_index) in chain.iter().enumerate() {
            let model = &catalogue.models[model_index];
            let matched = if n == 0 { matched } else { Matched::Exact };
            let mut fell_back = n == 0;
            for position in catalogue.order(model) {
                if self.made.len() >= max {
                    return None;
                }
                let target = &catalogue.targets[model.pool[position].target];
                let availability = target.health.availability(now_ms());
                if availability == Availability::Unavailable {
                    continue;
                }
                if !target.health.take_rate(target.rpm, now_ms()) {
                    if availability == Availability::Probe {
                        target.health.release_probe();
                    }
                    continue;
                }
                if !fell_back {
                    fell_back = true;
                    shared
                        .metrics
                        .llm_fallbacks
                        .get_or_create(&LlmModelLabels {
                            model: model.name.clone(),
                        })
                        .inc();
                }
                if let Some(answer) = self.attempt(model_index, position, matched).await {
                    return Some(answer);
                }
            }
        }
        // Every target refused or failed: a rate-limited one that asked for a short wait gets
        // one more try, if the attempts allow.
        if let Some((model_index, position, wait)) = self.wait.take()
            && self.made.len() < max
        {
            tokio::time::sleep(wait).await;
            let model = &catalogue.models[model_index];
            let matched = if model_index == first {
                matched
            } else {
                Matched::Exact
            };
            let target = &catalogue.targets[model.pool[position].target];
            if target.health.availability(now_ms()) != Availability::Unavailable {
                return self.attempt(model_index, position, matched).await;
            }
        }
        None
    }

    /// One attempt on the `position`-th target of model `model_index`'s pool.
    async fn attempt(
        &mut self,
        model_index: usize,
        position: usize,
        matched: Matched,
    ) -> Option<(Response<ResponseBody>, Arc<RouteEntry>)> {
        let (peer, catalogue) = (self.peer, self.catalogue);
        let shared = &*peer.shared;
        let model: &ModelEntry = &catalogue.models[model_index];
        let member = &model.pool[position];
        let target: &TargetEntry = &catalogue.targets[member.target];
        let upstream_model = model
            .upstream_model(member, self.requested, matched)
            .to_owned();
        if !self.made.is_empty() {
            shared
                .metrics
                .llm_retries
                .get_or_create(&LlmTargetLabels {
                    target: target.name.clone(),
                })
                .inc();
        }
        let started = Instant::now();
        let in_flight = target.health.start();
        let outcome = self.send(target, &upstream_model).await;
        drop(in_flight);
        let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let (status, label, reason) = match &outcome {
            Outcome::Answered(r, _) => (r.status().as_u16(), "ok", None),
            Outcome::Refused(r, _, _) if r.status() == StatusCode::TOO_MANY_REQUESTS => {
                (429, "rate_limited", Some("rate limited by the upstream"))
            }
            Outcome::Refused(r, _, _) => {
                (r.status().as_u16(), "error", Some("upstream server error"))
            }
            // The error's code, never its detail: that may quote upstream text.
            Outcome::Failed(f) => (f.error.status_code(), "unreachable", Some(f.error.code())),
        };
        target
            .health
            .record(now_ms(), reason.map(|reason| (status, reason)));
        self.made.push(Attempt {
            target: target.name.clone(),
            model: upstream_model,
            status,
            ms,
        });
        shared
            .metrics
            .llm_attempts
            .get_or_create(&LlmAttemptLabels {
                target: target.name.clone(),
                outcome: label,
            })
            .inc();
        let settings = &shared.config.pools;
        match outcome {
            Outcome::Answered(response, entry) => {
                if target.health.succeeded() {
                    shared.metrics.set_circuit(&target.name, false);
                }
                Some((response, entry))
            }
            Outcome::Refused(response, entry, retry_after) => {
                let now = now_ms();
                let retry_at = retry_after
                    .map(|d| now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
                if target.health.failed(now, settings, retry_at) {
                    shared.metrics.set_circuit(&target.name, true);
                }
                if let Some(wait) = retry_after.filter(|d| *d <= settings.retry_after_cap)
                    && self.wait.is_none_or(|(_, _, w)| wait < w)
                {
                    self.wait = Some((model_index, position, wait));
                }
                self.last = Some(Last::Answer(response, entry));
                None
            }
            Outcome::Failed(failure) => {
                if target.health.failed(now_ms(), settings, None) {
                    shared.metrics.set_circuit(&target.name, true);
                }
                self.last = Some(Last::Failure(failure));
                None
            }
        }
    }

    /// Sends the call to `target` naming `model`, and judges the head.
    async fn send(&mut self, target: &TargetEntry, model: &str) -> Outcome {
        let peer = self.peer;
        let shared = &*peer.shared;
        let Some(base) = target.base.as_ref() else {
            return Outcome::Failed(Failure::new(
                GatewayError::RouteMisconfigured,
                "target base URL unusable",
            ));
        };
        let entry = Arc::new(RouteEntry {
            record: tollgate_store::RouteRecord {
                kind: self.wire,
                ..self.route.record.clone()
            },
            upstream: Some(base.clone()),
            credential: target.credential.clone(),
            timeout: self.route.timeout,
            client: self.route.client.clone(),
        });
        let body = self.body.naming(self.requested, model);
        let mut headers = self.parts.headers.clone();
        rewrite_request_headers(
            &mut headers,
            self.peer,
            self.key_source,
            &entry,
            base,
            self.request_id,
        );
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        let path = llm::upstream_path(
            &base.path,
            target.provider,
            target.deployment.as_deref(),
            self.endpoint,
        );
        let mut target_path = path;
        let query: Vec<&str> = [target.query.as_str(), self.query.unwrap_or_default()]
            .into_iter()
            .filter(|q| !q.is_empty())
            .collect();
        if !query.is_empty() {
            target_path.push('?');
            target_path.push_str(&query.join("&"));
        }
        let Ok(path_and_query) = PathAndQuery::from_maybe_shared(Bytes::from(target_path)) else {
            return Outcome::Failed(Failure::new(
                GatewayError::RouteMisconfigured,
                "target path does not parse",
            ));
        };
        let mut uri = http::uri::Parts::default();
        uri.scheme = Some(base.scheme.clone());
        uri.authority = Some(base.authority.clone());
        uri.path_and_query = Some(path_and_query);
        let Ok(uri) = Uri::from_parts(uri) else {
            return Outcome::Failed(Failure::new(
                GatewayError::RouteMisconfigured,
                "target URI does not parse",
            ));
        };
        let mut request = Request::new(UpstreamBody::Full(Some(body)));
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = headers;
        let sent = Instant::now();
        let outcome = tokio::time::timeout(entry.timeout, entry.client.request(request)).await;
        let response = match outcome {
            Ok(Ok(response)) => response,
            Ok(Err(err)) => {
                shared.metrics.upstream_errors.inc();
                return Outcome::Failed(classify_upstream_error(&err));
            }
            Err(_) => {
                shared.metrics.upstream_errors.inc();
                return Outcome::Failed(Failure::new(
                    GatewayError::UpstreamTimeout,
                    format!("no response head within {} ms", entry.timeout.as_millis()),
                ));
            }
        };
        let elapsed = sent.elapsed();
        self.latency = Some((sent, elapsed));
        shared
            .metrics
            .upstream_duration
            .observe(elapsed.as_secs_f64());
        let status = response.status();
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            return Outcome::Refused(response, entry, retry_after);
        }
        Outcome::Answered(response, entry)
    }
}
