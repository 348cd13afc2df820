//! The stages of a forwarded call, in the order the crate doc gives: [`authenticate`],
//! [`route`], [`admit`], [`inspect`], [`limit`], [`send`]. Each takes what the earlier ones established and
//! either passes it on or refuses with a [`Failure`]; the first refusal ends the call.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::CONTENT_LENGTH;
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::{HeaderMap, HeaderValue, Request, Response, Version};
use http_body::Body;
use hyper::body::Incoming;
use tollgate_core::RouteKind;
use tollgate_core::TokenUsage;
use tollgate_core::route::normalize_path;
use tollgate_limits::RefusalCode;
use tollgate_store::KeyRecord;

use super::call::{Call, usd_to_micro};
use super::headers::{
    header_bytes, is_event_stream, is_json, rewrite_request_headers, rewrite_response_headers,
};
use super::request_body::{Peeked, RequestBodyError, UpstreamBody, peek};
use super::response_body::GatewayBody;
use super::{Failure, error_chain};
use crate::auth;
use crate::capture::{self, RequestInfo, ResponseTap};
use crate::error::GatewayError;
use crate::keys::{CachedKey, LookupError};
use crate::metrics::{ProtocolLabels, RefusalLabels};
use crate::server::{Peer, Shared};
use crate::state::{Credential, RouteEntry, UpstreamBase};
use crate::upstream::{ResponseBody, UpstreamError};

/// The upstream's response head, ready to be streamed back.
pub(super) struct Upstream {
    pub(super) response: Response<ResponseBody>,
    /// The route as the call was sent (on `llm` routes: with the answering target's upstream,
    /// credential and API shape).
    pub(super) route: Arc<RouteEntry>,
    pub(super) request: Option<RequestInfo>,
}

/// How a call is answered when nothing refused it.
pub(super) enum Answer {
    /// With the upstream's response.
    Upstream(Upstream),
    /// By the gateway itself (`/v1/models` of an `llm` route), status 200.
    Local(Response<GatewayBody>),
}

/// Runs the stages for one call. The header size is checked first, before the key is read.
pub(super) async fn forward(
    peer: &Peer,
    req: Request<Incoming>,
    call: &mut Call,
    request_id: &HeaderValue,
) -> Result<Answer, Failure> {
    let shared = &*peer.shared;
    let (mut parts, body) = req.into_parts();

    if header_bytes(&parts.headers) > shared.config.max_header_bytes {
        return Err(GatewayError::HeaderTooLarge.into());
    }
    let (entry, key_source) = authenticate(shared, &parts.headers, call).await?;
    // `authenticate` refused an entry without a key; this only borrows the key from the entry.
    let key = known_key(&entry)?;
    let (route, path) = route(shared, parts.uri.path(), key, call)?;
    if route.record.kind == RouteKind::Llm {
        let llm_call = super::llm::LlmCall {
            parts,
            route,
            path: &path,
            key,
            key_source,
            request_id,
        };
        // Boxed: its attempts over a pool of targets make a large future, which every call on
        // other routes would otherwise carry (and copy when the call's future is boxed).
        return Box::pin(super::llm::forward(peer, llm_call, body, call)).await;
    }
    let declared_body = body.size_hint().exact();
    admit(shared, declared_body)?;
    let (upstream_body, request) = inspect(
        shared,
        route.record.kind,
        &mut parts.headers,
        body,
        declared_body,
        call,
    )
    .await?;
    let has_body = !matches!(upstream_body, UpstreamBody::Empty);
    limit(shared, key, &route, request.as_ref(), has_body, call).await?;
    let outgoing = Outgoing {
        parts,
        body: upstream_body,
        path: &path,
        key_source,
        request_id,
    };
    let response = send(peer, &route, outgoing, call).await?;
    Ok(Answer::Upstream(Upstream {
        response,
        route,
        request,
    }))
}

/// Authenticate: the key's header and checksum (garbage is refused before any look-up), the key
/// through the cache (with the per-client limit on failed look-ups), and whether the key may be
/// used now. Returns the cache entry, known to hold a key, and the header the key came in.
async fn authenticate(
    shared: &Shared,
    headers: &HeaderMap,
    call: &mut Call,
) -> Result<(Arc<CachedKey>, auth::KeySource), Failure> {
    let presented = auth::presented_key(headers)?;
    let key_source = presented.source;
    let hash = auth::key_hash(presented.text)?;
    let entry = shared
        .keys
        .lookup(&*shared.store, &hash, call.client_addr)
        .await
        .map_err(|err| match err {
            LookupError::RateLimited => Failure::new(
                GatewayError::RateLimited,
                "too many failed key look-ups from this address",
            ),
            LookupError::Store(err) => Failure::new(
                GatewayError::StoreUnavailable,
                format!("key look-up failed: {err}"),
            ),
        })?;
    // An unknown key's hash is not recorded: it names nothing, and the usage writer would look
    // it up in the store a second time to attribute it.
    let key = known_key(&entry)?;
    call.event_mut(|e| {
        e.key_id = Some(key.id);
        e.key_hash = Some(hash);
        e.team_id = Some(key.team_id);
    });
    auth::check_usable(key, tollgate_core::time::now_ms())?;
    Ok((entry, key_source))
}

/// The key a cache entry holds; an entry without one is a hash no key has.
fn known_key(entry: &CachedKey) -> Result<&KeyRecord, Failure> {
    entry
        .record
        .as_ref()
        .ok_or_else(|| Failure::new(GatewayError::InvalidApiKey, "no key has this hash"))
}

/// Route: longest prefix on the normalised path, then the key's permission and whether the
/// route can be forwarded at all. Returns the route and the normalised path, which is what is
/// forwarded, so the upstream cannot read it as another route's.
fn route(
    shared: &Shared,
    raw_path: &str,
    key: &KeyRecord,
    call: &mut Call,
) -> Result<(Arc<RouteEntry>, String), Failure> {
    let path = normalize_path(raw_path)
        .map_err(|err| Failure::told(GatewayError::InvalidPath, err.to_string()))?;
    if path != raw_path {
        call.event_mut(|e| e.path.clone_from(&path));
    }
    let route = shared
        .routes
        .load()
        .table
        .find(&path)
        .cloned()
        .ok_or(GatewayError::NoRoute)?;
    call.event_mut(|e| {
        e.route_id = Some(route.record.id);
        e.route = Some(route.record.name.clone());
    });
    call.anthropic = route.record.kind == RouteKind::Anthropic;
    if !key.may_call(&route.record) {
        return Err(GatewayError::RouteNotAllowed.into());
    }
    // An `llm` route's upstreams are its models' targets, checked per attempt.
    if route.record.kind != RouteKind::Llm {
        upstream_base(&route)?;
    }
    if matches!(route.credential, Credential::Unusable) {
        return Err(Failure::new(
            GatewayError::RouteMisconfigured,
            "upstream credential cannot be opened",
        ));
    }
    Ok((route, path))
}

/// The route's parsed upstream URL; `None` at load means the URL did not parse.
fn upstream_base(route: &RouteEntry) -> Result<&UpstreamBase, Failure> {
    route
        .upstream
        .as_ref()
        .ok_or_else(|| Failure::new(GatewayError::RouteMisconfigured, "upstream URL unusable"))
}

/// Admit: what can be refused before the body is read — today a declared body over the size
/// limit. The limits that need the body's token estimate (rates, budgets, concurrency, model
/// allow-lists) decide in [`limit`], after [`inspect`]. `Ok` admits the call.
pub(super) fn admit(shared: &Shared, declared_body: Option<u64>) -> Result<(), Failure> {
    if declared_body.is_some_and(|len| len > shared.config.max_body_bytes) {
        return Err(Failure::new(
            GatewayError::PayloadTooLarge,
            "declared Content-Length over the limit",
        ));
    }
    Ok(())
}

/// Inspect: on LLM routes, a bounded peek at a JSON body for the model, the stream flag and the
/// prompt (and the provider's rewrite, with its new `Content-Length`); bigger bodies, and every
/// other body, stream through unread under the size limit. Returns the body to send upstream and
/// what the peek learned.
pub(super) async fn inspect(
    shared: &Shared,
    kind: RouteKind,
    headers: &mut HeaderMap,
    body: Incoming,
    declared: Option<u64>,
    call: &mut Call,
) -> Result<(UpstreamBody, Option<RequestInfo>), Failure> {
    let max_body = shared.config.max_body_bytes;
    let peek_limit = shared.config.llm_peek_bytes;
    if body.is_end_stream() {
        return Ok((UpstreamBody::Empty, None));
    }
    if !(kind.is_llm() && is_json(headers) && declared.is_none_or(|len| len <= peek_limit as u64)) {
        return Ok((UpstreamBody::stream(None, body, max_body), None));
    }
    // The whole peek has a deadline, and all peeks together a byte budget: past it the body is
    // forwarded unread (the model then comes from the response) rather than refused.
    let reserve = declared.map_or(peek_limit, |len| usize::try_from(len).unwrap_or(usize::MAX));
    let permit = u32::try_from(reserve)
        .ok()
        .and_then(|n| shared.peek_budget.clone().try_acquire_many_owned(n).ok());
    let peeked = match permit {
        None => {
            shared.metrics.peeks_skipped.inc();
            Peeked::Partial(Bytes::new(), body)
        }
        Some(_permit) => {
            let timeout = shared.config.body_read_timeout;
            tokio::time::timeout(timeout, peek(body, declared, peek_limit, max_body))
                .await
                .map_err(|_| {
                    Failure::new(
                        GatewayError::RequestTimeout,
                        format!("request body not read within {} s", timeout.as_secs()),
                    )
                })??
        }
    };
    Ok(match peeked {
        Peeked::Whole(bytes) => {
            let (info, rewritten) = capture::inspect_request(kind, &bytes);
            call.event_mut(|e| e.model.clone_from(&info.model));
            let bytes = rewritten.unwrap_or(bytes);
            headers.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            (UpstreamBody::Full(Some(bytes)), Some(info))
        }
        Peeked::Partial(prefix, rest) => (UpstreamBody::stream(Some(prefix), rest, max_body), None),
    })
}

/// Limit: on LLM routes the key's model allow-list, then the limits of the instance, the key's
/// team, the key and the route (see `tollgate_limits`). The prompt is counted only when a token
/// limit or budget applies to the call; with no limit at all nothing is looked at. An admitted
/// call keeps its admission in the event guard, which settles it with the exact use when the
/// call ends, however it ends.
pub(super) async fn limit(
    shared: &Shared,
    key: &KeyRecord,
    route: &RouteEntry,
    request: Option<&RequestInfo>,
    has_body: bool,
    call: &mut Call,
) -> Result<(), Failure> {
    let Some(limits) = shared.config.limits.as_deref() else {
        return Ok(());
    };
    let kind = route.record.kind;
    let model = request.and_then(|r| r.model.as_deref());
    if kind.is_llm() && has_body && limits.model_allowed(key.id, model) == Some(false) {
        shared
            .metrics
            .limit_refusals
            .get_or_create(&RefusalLabels {
                code: "model_not_allowed",
                scope: "key",
            })
            .inc();
        let detail = match model {
            Some(model) => format!("This API key may not call the model `{model}`."),
            None => "This API key may call only some models, and the request names none the gateway could read.".to_owned(),
        };
        return Err(Failure::told(GatewayError::ModelNotAllowed, detail));
    }
    if !limits.any() {
        return Ok(());
    }
    let route_id = route.record.id;
    let estimating = if kind.is_llm() {
        limits.needs_estimate(key.team_id, key.id, route_id)
    } else {
        None
    };
    // First with the prompt's byte count, a bound on its tokens that costs nothing to compute;
    // only when that bound does not fit is the prompt counted with the vocabulary and the call
    // asked again. Far from a limit's end no call is counted; near it the decision is the one
    // an exact count gives (calls in flight hold at most their bound until they settle).
    let (estimate_tokens, estimate_cost_micro) = match estimating {
        Some(priced) => estimate(shared, limits, model, request, Count::Bound, priced),
        None => (0, 0),
    };
    let mut req = tollgate_limits::Request {
        team_id: Some(key.team_id),
        key_id: Some(key.id),
        route_id: Some(route_id),
        estimate_tokens,
        estimate_cost_micro,
        now_ms: tollgate_core::time::now_ms(),
    };
    let limiter = limits.limiter();
    let started = Instant::now();
    let mut outcome = limiter.admit(&req).await;
    if let Some(priced) = estimating
        && outcome.as_ref().is_err_and(|r| r.by_estimate)
    {
        let (tokens, cost) = estimate(shared, limits, model, request, Count::Exact, priced);
        if tokens < req.estimate_tokens {
            req.estimate_tokens = tokens;
            req.estimate_cost_micro = cost;
            outcome = limiter.admit(&req).await;
        }
    }
    shared
        .metrics
        .observe_admission(limits.backend(), started.elapsed().as_secs_f64());
    shared
        .metrics
        .limits_degraded
        .set(i64::from(limiter.degraded()));
    match outcome {
        Ok(admission) => {
            if kind.is_llm() {
                call.rate_headers = Some(admission.headers());
            }
            call.admission = Some(admission);
            Ok(())
        }
        Err(refusal) => {
            let error = match refusal.code {
                RefusalCode::RateLimited => GatewayError::LimitRateLimited,
                RefusalCode::BudgetExceeded => GatewayError::BudgetExceeded,
                RefusalCode::ConcurrencyLimited => GatewayError::ConcurrencyLimited,
                RefusalCode::LimitsUnavailable => GatewayError::LimitsUnavailable,
            };
            shared
                .metrics
                .limit_refusals
                .get_or_create(&RefusalLabels {
                    code: refusal.code.as_str(),
                    scope: refusal.scope.map_or("none", |s| s.kind_name()),
                })
                .inc();
            let mut failure = Failure::told(error, format!("{refusal}."));
            failure.retry_after = refusal.retry_after_secs();
            Err(failure)
        }
    }
}

/// How the prompt of an estimate is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Count {
    /// Its length in bytes: never fewer than its tokens, as every token of a byte-level BPE
    /// vocabulary spans at least one byte.
    Bound,
    /// Its tokens, counted with the model's vocabulary.
    Exact,
}

/// What a call is expected to use: its prompt (see [`Count`]) plus its `max_tokens` (or the
/// configured default), and that usage priced when `priced` (a cost budget applies).
fn estimate(
    shared: &Shared,
    limits: &crate::limits::GatewayLimits,
    model: Option<&str>,
    request: Option<&RequestInfo>,
    count: Count,
    priced: bool,
) -> (u64, i64) {
    let prompt = request.map_or(0, |r| {
        let tokens = match count {
            Count::Bound => r.prompt_text.len(),
            // Never waits for a vocabulary still loading: see `vocab::admission_tokens`.
            Count::Exact => crate::vocab::admission_tokens(model, &r.prompt_text),
        };
        u64::try_from(tokens).unwrap_or(u64::MAX)
    });
    let completion = request
        .and_then(|r| r.max_tokens)
        .unwrap_or_else(|| limits.default_estimate_tokens());
    let tokens = prompt.saturating_add(completion);
    let as_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let usage = TokenUsage {
        prompt: as_i64(prompt),
        completion: as_i64(completion),
        total: as_i64(tokens),
        ..TokenUsage::default()
    };
    // The price look-up only where a cost budget applies: no other limit reads the cost.
    let cost = if priced {
        shared
            .config
            .prices
            .current()
            .cost(model, &usage)
            .unwrap_or(0.0)
    } else {
        0.0
    };
    (tokens, usd_to_micro(cost))
}

/// The request as it leaves for the upstream, before its head is rewritten.
struct Outgoing<'a> {
    parts: Parts,
    body: UpstreamBody,
    /// The normalised path (see [`route`]).
    path: &'a str,
    key_source: auth::KeySource,
    request_id: &'a HeaderValue,
}

/// Send: the request head rewritten for the upstream (headers, URI, HTTP/1.1), then the call,
/// waiting at most the route's timeout for the response head.
async fn send(
    peer: &Peer,
    route: &RouteEntry,
    outgoing: Outgoing<'_>,
    call: &mut Call,
) -> Result<Response<ResponseBody>, Failure> {
    let shared = &*peer.shared;
    let Outgoing {
        mut parts,
        body,
        path,
        key_source,
        request_id,
    } = outgoing;
    let base = upstream_base(route)?;
    rewrite_request_headers(
        &mut parts.headers,
        peer,
        key_source,
        route,
        base,
        request_id,
    );
    parts.uri = upstream_uri(route, base, path, parts.uri.query())?;
    // The connection decides the protocol, not the client's request: the pooled client sends
    // this on h2 when ALPN chose it, and as HTTP/1.1 otherwise (a request marked HTTP/2 would be
    // refused on an HTTP/1.1 connection).
    parts.version = Version::HTTP_11;
    let span = call
        .span
        .as_ref()
        .map(|span| span.start_upstream(&mut parts.headers, &route.record.name));
    let upstream_request = Request::from_parts(parts, body);

    let sent = Instant::now();
    let outcome = tokio::time::timeout(route.timeout, route.client.request(upstream_request)).await;
    let response = match outcome {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            let failure = classify_upstream_error(&err);
            if let Some(span) = span {
                span.failed(failure.error.code());
            }
            if matches!(
                failure.error,
                GatewayError::UpstreamUnreachable | GatewayError::UpstreamTimeout
            ) {
                shared.metrics.upstream_errors.inc();
            }
            return Err(failure);
        }
        Err(_) => {
            shared.metrics.upstream_errors.inc();
            if let Some(span) = span {
                span.failed(GatewayError::UpstreamTimeout.code());
            }
            return Err(Failure::new(
                GatewayError::UpstreamTimeout,
                format!("no response head within {} ms", route.timeout.as_millis()),
            ));
        }
    };
    let elapsed = sent.elapsed();
    let protocol = if response.version() == Version::HTTP_2 {
        "h2"
    } else {
        "http/1.1"
    };
    shared
        .metrics
        .upstream_calls
        .get_or_create(&ProtocolLabels { protocol })
        .inc();
    if let Some(span) = span {
        span.answered(response.status().as_u16());
    }
    call.answered(sent, elapsed);
    shared
        .metrics
        .upstream_duration
        .observe(elapsed.as_secs_f64());
    Ok(response)
}

impl Upstream {
    /// The response for the client: the upstream's head rewritten, its body streamed through
    /// the usage tap on LLM routes. The call's event moves into the body.
    pub(super) fn into_response(
        self,
        call: Call,
        request_id: HeaderValue,
    ) -> Response<GatewayBody> {
        let Self {
            response,
            route,
            request,
        } = self;
        let (mut parts, body) = response.into_parts();
        rewrite_response_headers(&mut parts.headers, &route.credential, request_id);
        super::add_rate_headers(&mut parts.headers, call.rate_headers.as_ref());
        parts.version = Version::HTTP_11;
        let kind = route.record.kind;
        let tap = kind.is_llm().then(|| {
            let sse = is_event_stream(&parts.headers);
            if sse {
                // The tap may hide an injected usage-only event, so the length can change.
                parts.headers.remove(CONTENT_LENGTH);
            }
            ResponseTap::new(kind, request.unwrap_or_default(), sse)
        });
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let status = parts.status.as_u16();
        let body = GatewayBody::proxied(body, &route, tap, call, status, declared);
        Response::from_parts(parts, body)
    }
}

pub(super) fn classify_upstream_error(err: &UpstreamError) -> Failure {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(body) = current.downcast_ref::<RequestBodyError>() {
            return match body {
                RequestBodyError::TooLarge => Failure::new(
                    GatewayError::PayloadTooLarge,
                    "streamed request body over the limit",
                ),
                RequestBodyError::Client(_) => Failure::new(
                    GatewayError::ClientClosed,
                    format!("request body failed: {}", error_chain(err)),
                ),
            };
        }
        if err.is_connect()
            && current
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return Failure::new(
                GatewayError::UpstreamTimeout,
                format!("connect: {}", error_chain(err)),
            );
        }
        source = current.source();
    }
    let stage = if err.is_connect() {
        "connect"
    } else {
        "before the response head"
    };
    Failure::new(
        GatewayError::UpstreamUnreachable,
        format!("{stage}: {}", error_chain(err)),
    )
}

/// `route.upstream_url` + the normalised path (without the prefix when stripping) + the query as
/// the client sent it.
fn upstream_uri(
    route: &RouteEntry,
    base: &crate::state::UpstreamBase,
    path: &str,
    query: Option<&str>,
) -> Result<Uri, Failure> {
    let prefix = route.record.prefix.as_str();
    let rest = if route.record.strip_prefix && prefix != "/" {
        path.get(prefix.len()..).unwrap_or_default()
    } else {
        path
    };
    let mut target =
        String::with_capacity(base.path.len() + rest.len() + query.map_or(0, |q| q.len() + 1) + 1);
    target.push_str(&base.path);
    if rest.is_empty() {
        if target.is_empty() {
            target.push('/');
        }
    } else {
        target.push_str(rest);
    }
    if let Some(query) = query {
        target.push('?');
        target.push_str(query);
    }
    let path_and_query = PathAndQuery::from_maybe_shared(Bytes::from(target))
        .map_err(|_| Failure::new(GatewayError::InvalidPath, "upstream path does not parse"))?;
    let mut parts = http::uri::Parts::default();
    parts.scheme = Some(base.scheme.clone());
    parts.authority = Some(base.authority.clone());
    parts.path_and_query = Some(path_and_query);
    Uri::from_parts(parts)
        .map_err(|_| Failure::new(GatewayError::InvalidPath, "upstream URI does not parse"))
}
