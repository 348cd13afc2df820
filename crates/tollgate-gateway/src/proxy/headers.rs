//! Header rewriting on both legs of a call: the request head the upstream gets (hop-by-hop and
//! key headers out, trustworthy forwarding headers and the route's credential in) and the
//! response head the client gets (hop-by-hop headers and any echo of the credential out).

use bytes::BytesMut;
use http::header::{
    ACCEPT_ENCODING, AUTHORIZATION, CONNECTION, CONTENT_TYPE, EXPECT, FORWARDED, HOST,
    PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use uuid::Uuid;

use crate::auth;
use crate::server::Peer;
use crate::state::{Credential, RouteEntry, UpstreamBase};

pub(super) static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub(super) static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
static X_FORWARDED_PORT: HeaderName = HeaderName::from_static("x-forwarded-port");
static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
static X_API_KEY: HeaderName = HeaderName::from_static(auth::X_API_KEY);
static API_KEY: HeaderName = HeaderName::from_static(auth::API_KEY);

/// Longest `X-Request-Id` accepted from a client; longer or odd ones are replaced.
const MAX_REQUEST_ID: usize = 128;

/// The incoming `X-Request-Id` when it is sane, else the event's id (a UUID v7).
pub(super) fn request_id(headers: &HeaderMap, event_id: &Uuid) -> (HeaderValue, String) {
    if let Some(value) = headers.get(&X_REQUEST_ID) {
        let bytes = value.as_bytes();
        if !bytes.is_empty()
            && bytes.len() <= MAX_REQUEST_ID
            && bytes.iter().all(|b| (0x21..=0x7e).contains(b))
            && let Ok(text) = value.to_str()
        {
            return (value.clone(), text.to_owned());
        }
    }
    let text = event_id.hyphenated().to_string();
    let value = HeaderValue::from_str(&text).unwrap_or(HeaderValue::from_static("unknown"));
    (value, text)
}

/// Total size of the request headers as sent on an HTTP/1.1 wire.
pub(super) fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum()
}

/// Removes hop-by-hop headers: every header named by any `Connection` header line (each may
/// list several), the `Connection` headers themselves, and the fixed list.
fn remove_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .flat_map(|value| {
            value
                .as_bytes()
                .split(|&b| b == b',')
                .map(<[u8]>::trim_ascii)
        })
        .filter(|t| !t.is_empty())
        .filter_map(|t| HeaderName::from_bytes(t).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        &CONNECTION,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
        &TE,
        &TRAILER,
        &TRANSFER_ENCODING,
        &UPGRADE,
    ] {
        headers.remove(name);
    }
}

/// Removes the header the key came in, and any other that holds a tollgate key: keys never go
/// upstream. A foreign `Authorization` beside an `X-API-Key` key is the caller's and goes on.
fn remove_keys(headers: &mut HeaderMap, source: auth::KeySource) {
    headers.remove(source.header());
    for name in [&AUTHORIZATION, &X_API_KEY, &API_KEY] {
        if headers
            .get_all(name)
            .iter()
            .any(|value| auth::holds_key(value.as_bytes()))
        {
            headers.remove(name);
        }
    }
}

/// Whether the connection comes from a configured trusted proxy.
pub(super) fn peer_is_trusted(peer: &Peer) -> bool {
    let trusted = &peer.shared.config.trusted_proxies;
    !trusted.is_empty() && trusted.is_trusted(peer.addr)
}

/// Forwarding headers the upstream can believe. `X-Real-IP`, `Forwarded`, `X-Forwarded-Host`
/// and `X-Forwarded-Port` from the client are dropped. `X-Forwarded-For` is the peer's address,
/// appended to the incoming list only when the peer is a trusted proxy; `X-Forwarded-Proto` is
/// the listener's scheme (`https` with `[gateway.tls]`) unless a trusted proxy said `http` or `https`.
fn set_forwarding_headers(headers: &mut HeaderMap, peer: &Peer, trusted: bool) {
    for name in [&X_REAL_IP, &FORWARDED, &X_FORWARDED_HOST, &X_FORWARDED_PORT] {
        headers.remove(name);
    }
    let mut forwarded_for = peer.ip_header.clone();
    if trusted {
        let mut joined = BytesMut::new();
        for previous in headers.get_all(&X_FORWARDED_FOR) {
            joined.extend_from_slice(previous.as_bytes());
            joined.extend_from_slice(b", ");
        }
        if !joined.is_empty() {
            joined.extend_from_slice(peer.ip.as_bytes());
            if let Ok(value) = HeaderValue::from_maybe_shared(joined.freeze()) {
                forwarded_for = value;
            }
        }
    }
    headers.insert(X_FORWARDED_FOR.clone(), forwarded_for);
    let proto = headers
        .get(&X_FORWARDED_PROTO)
        .filter(|_| trusted)
        .and_then(|value| match value.as_bytes() {
            v if v.eq_ignore_ascii_case(b"https") => Some("https"),
            v if v.eq_ignore_ascii_case(b"http") => Some("http"),
            _ => None,
        })
        .unwrap_or(if peer.shared.config.listener.tls.is_some() {
            "https"
        } else {
            "http"
        });
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
}

/// The secret of an injected credential: the token after `Bearer `, or the whole value.
fn credential_secret(credential: &Credential) -> Option<&[u8]> {
    let Credential::Header(_, value) = credential else {
        return None;
    };
    let bytes = value.as_bytes();
    let secret = if bytes.len() > 7 && bytes[..7].eq_ignore_ascii_case(b"bearer ") {
        bytes[7..].trim_ascii()
    } else {
        bytes
    };
    (!secret.is_empty()).then_some(secret)
}

/// Removes every response header or trailer that repeats the injected upstream credential (an
/// upstream that echoes request headers), so the caller never sees it.
pub(super) fn remove_credential_echo(headers: &mut HeaderMap, credential: &Credential) {
    let Some(secret) = credential_secret(credential) else {
        return;
    };
    let finder = memchr::memmem::Finder::new(secret);
    let echoed: Vec<HeaderName> = headers
        .iter()
        .filter(|(_, value)| finder.find(value.as_bytes()).is_some())
        .map(|(name, _)| name.clone())
        .collect();
    for name in echoed {
        tracing::warn!(header = %name, "upstream answer repeated the route credential; header removed");
        headers.remove(name);
    }
}

/// The request head for the upstream: hop-by-hop and key headers out, forwarding headers, the
/// request id and the route's credential in. Nothing HTTP/2 forbids is left: the hop-by-hop
/// headers (`connection` and what it names, `keep-alive`, `proxy-connection`, `te`,
/// `transfer-encoding`, `upgrade`) go, and on `https` routes, which may be carried on h2, so does
/// `host`: the client sets it from the upstream URL on HTTP/1.1 and h2 sends `:authority`.
pub(super) fn rewrite_request_headers(
    headers: &mut HeaderMap,
    peer: &Peer,
    key_source: auth::KeySource,
    route: &RouteEntry,
    base: &UpstreamBase,
    request_id: &HeaderValue,
) {
    remove_hop_by_hop(headers);
    remove_keys(headers, key_source);
    headers.remove(EXPECT);
    if base.scheme == http::uri::Scheme::HTTPS {
        headers.remove(HOST);
    } else {
        headers.insert(HOST, base.host.clone());
    }
    set_forwarding_headers(headers, peer, peer_is_trusted(peer));
    headers.insert(X_REQUEST_ID.clone(), request_id.clone());
    if let Credential::Header(name, value) = &route.credential {
        headers.insert(name.clone(), value.clone());
    }
    if route.record.kind.is_llm() {
        // Compressed answers would hide the usage from the capture.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
    }
}

/// The response head for the client: hop-by-hop headers and echoes of the route's credential
/// out, the request id in.
pub(super) fn rewrite_response_headers(
    headers: &mut HeaderMap,
    credential: &Credential,
    request_id: HeaderValue,
) {
    remove_hop_by_hop(headers);
    remove_credential_echo(headers, credential);
    headers.insert(X_REQUEST_ID.clone(), request_id);
}

/// Whether the answer is an SSE stream (`text/event-stream`).
pub(super) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| starts_with_ignore_case(v.as_bytes(), b"text/event-stream"))
}

pub(super) fn is_json(headers: &HeaderMap) -> bool {
    headers.get(CONTENT_TYPE).is_none_or(|v| {
        v.as_bytes()
            .windows(4)
            .any(|w| w.eq_ignore_ascii_case(b"json"))
    })
}

fn starts_with_ignore_case(value: &[u8], prefix: &[u8]) -> bool {
    value.len() >= prefix.len() && value[..prefix.len()].eq_ignore_ascii_case(prefix)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert(
            CONNECTION,
            HeaderValue::from_static("keep-alive, X-Secret-Hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn every_connection_line_and_every_name_in_it_is_honoured() {
        let mut h = HeaderMap::new();
        h.append(CONNECTION, HeaderValue::from_static("close"));
        h.append(CONNECTION, HeaderValue::from_static("x-a, ,X-B"));
        for name in ["x-a", "x-b", "x-kept"] {
            h.insert(name, HeaderValue::from_static("1"));
        }
        remove_hop_by_hop(&mut h);
        assert_eq!(h.keys().collect::<Vec<_>>(), ["x-kept"]);
    }

    #[test]
    fn headers_and_trailers_repeating_the_credential_go() {
        let bearer = Credential::Header(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer sk-secret-1"),
        );
        let mut trailers = HeaderMap::new();
        trailers.insert(
            "x-echo-auth",
            HeaderValue::from_static("Bearer sk-secret-1"),
        );
        trailers.insert("x-debug", HeaderValue::from_static("token=sk-secret-1;"));
        trailers.insert("x-fine", HeaderValue::from_static("sk-other"));
        remove_credential_echo(&mut trailers, &bearer);
        assert_eq!(trailers.keys().collect::<Vec<_>>(), ["x-fine"]);
        let raw = Credential::Header(
            HeaderName::from_static("x-api-key"),
            HeaderValue::from_static("ak-raw"),
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-api-key", HeaderValue::from_static("ak-raw"));
        remove_credential_echo(&mut headers, &raw);
        assert!(headers.is_empty());
        remove_credential_echo(&mut trailers, &Credential::None);
        assert_eq!(trailers.len(), 1);
    }

    #[test]
    fn request_ids_are_kept_when_sane() {
        let id = Uuid::now_v7();
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(request_id(&h, &id).1, "abc-123");
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("has space"));
        assert_eq!(request_id(&h, &id).1, id.hyphenated().to_string());
    }
}
