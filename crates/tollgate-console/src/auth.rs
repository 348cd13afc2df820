//! Who is calling: session cookies (with CSRF on writes) and personal access tokens, checked on
//! every console route except the ones listed in [`PUBLIC_PATHS`]. Passwords are Argon2id, hashed
//! on a blocking thread; sign-in attempts are throttled per account and per address.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tollgate_core::key::PAT_PREFIX;
use tollgate_core::time::now_ms;
use tollgate_core::{ApiKey, Role};
use tollgate_store::User;

use crate::ConsoleState;
use crate::error::{ApiError, ApiResult};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "tollgate_session";
/// The header cookie-authenticated writes must carry.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts.
pub const SESSION_TTL_MS: i64 = 12 * 3_600_000;

/// Console paths reachable without signing in. Everything else requires a session or a token:
/// a new route is protected unless it is added here.
pub const PUBLIC_PATHS: &[&str] = &[
    "/health",
    "/health/detailed",
    "/metrics",
    "/api/openapi.json",
    "/api/docs",
    "/api/docs.js",
    "/api/v1/auth/login",
    "/api/v1/invitations/{token}",
    "/api/v1/invitations/{token}/accept",
    // Ingest authenticates with the ingest secret instead.
    "/api/usage-log",
    "/api/v1/usage/events",
];

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A session cookie.
    Session {
        /// SHA-256 hex of the cookie value.
        id_hash: String,
    },
    /// A personal access token.
    Token {
        /// Token id.
        id: i64,
    },
}

/// The authenticated caller of a console request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user.
    pub user: User,
    /// Session or token.
    pub via: Via,
    /// Team id → role.
    pub roles: BTreeMap<i64, Role>,
    /// Client address.
    pub ip: Option<String>,
}

impl Caller {
    /// The audit log's actor string.
    pub fn actor(&self) -> String {
        match &self.via {
            Via::Session { .. } => format!("user:{}", self.user.email),
            Via::Token { id } => format!("token:{id}:{}", self.user.email),
        }
    }

    /// The caller's effective role in a team: instance admins act as owners everywhere.
    pub fn role_in(&self, team_id: i64) -> Option<Role> {
        if self.user.is_admin {
            Some(Role::Owner)
        } else {
            self.roles.get(&team_id).copied()
        }
    }

    /// Teams the caller can see; `None` for instance admins (all).
    pub fn visible_teams(&self) -> Option<Vec<i64>> {
        (!self.user.is_admin).then(|| self.roles.keys().copied().collect())
    }

    /// Requires at least `role` in `team_id`; a team the caller cannot see at all is "not found".
    pub fn require(&self, team_id: i64, role: Role) -> ApiResult<Role> {
        match self.role_in(team_id) {
            Some(r) if r >= role => Ok(r),
            Some(_) => Err(ApiError::Forbidden(format!(
                "this needs the {role} role in team {team_id}"
            ))),
            None => Err(ApiError::NotFound(format!("team {team_id} does not exist"))),
        }
    }

    /// The audit entries the caller may read: instance admins all; team owners and admins their
    /// teams' entries; everyone the entries they made.
    pub fn audit_scope(&self) -> tollgate_store::AuditFilter {
        let team_ids = self.visible_teams().map(|teams| {
            teams
                .into_iter()
                .filter(|t| self.role_in(*t).is_some_and(Role::manages_team))
                .collect::<Vec<_>>()
        });
        tollgate_store::AuditFilter {
            or_actor_user_id: team_ids.as_ref().map(|_| self.user.id),
            team_ids,
            ..tollgate_store::AuditFilter::default()
        }
    }

    /// Requires instance admin.
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden("this needs an instance admin".into()))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            ApiError::unauthenticated("not_signed_in", "sign in or send a personal access token")
        })
    }
}

/// The client address of a request, as the console saw the connection.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// SHA-256 hex of a secret, as stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret: 32 bytes as 64 hex characters.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The middleware that authenticates every non-public console route.
pub async fn authenticate(
    State(state): State<ConsoleState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let public = req
        .extensions()
        .get::<MatchedPath>()
        .is_none_or(|p| PUBLIC_PATHS.contains(&p.as_str()));
    if public {
        return Ok(next.run(req).await);
    }
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let caller = resolve(&state, req.headers(), req.method(), ip).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

async fn resolve(
    state: &ConsoleState,
    headers: &HeaderMap,
    method: &Method,
    ip: Option<String>,
) -> ApiResult<Caller> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let now = now_ms();
    let (user_id, via) = if let Some(token) = bearer {
        if !token.starts_with(PAT_PREFIX) {
            return Err(ApiError::unauthenticated(
                "invalid_token",
                "the bearer token is not a tgp_ personal access token",
            ));
        }
        let parsed = ApiKey::parse_pat(token).map_err(|_| {
            ApiError::unauthenticated("invalid_token", "the personal access token is malformed")
        })?;
        let record = state
            .store
            .access_token_by_hash(parsed.hash().as_str())
            .await?
            .ok_or_else(|| {
                ApiError::unauthenticated("invalid_token", "the personal access token is not known")
            })?;
        if record.revoked_at_ms.is_some() {
            return Err(ApiError::unauthenticated(
                "revoked_token",
                "the personal access token was revoked",
            ));
        }
        if record.expires_at_ms.is_some_and(|t| t <= now) {
            return Err(ApiError::unauthenticated(
                "expired_token",
                "the personal access token has expired",
            ));
        }
        // Last use is informational: its failure must not refuse the call.
        if let Err(e) = state.store.touch_access_token(record.id, now).await {
            tracing::warn!(error = %e, token_id = record.id, "cannot record token use");
        }
        (record.user_id, Via::Token { id: record.id })
    } else if let Some(cookie) = session_cookie(headers) {
        let id_hash = secret_hash(&cookie);
        let session = state
            .store
            .session_by_hash(&id_hash)
            .await?
            .filter(|s| s.revoked_at_ms.is_none() && s.expires_at_ms > now)
            .ok_or_else(|| {
                ApiError::unauthenticated("session_expired", "the session has ended: sign in again")
            })?;
        if is_write(method) {
            let sent = headers
                .get(CSRF_HEADER)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if !constant_time_eq(sent.as_bytes(), session.csrf_token.as_bytes()) {
                return Err(ApiError::Csrf);
            }
        }
        (session.user_id, Via::Session { id_hash })
    } else {
        return Err(ApiError::unauthenticated(
            "not_signed_in",
            "sign in or send a personal access token",
        ));
    };
    let user = state.store.user_by_id(user_id).await?.ok_or_else(|| {
        ApiError::unauthenticated("not_signed_in", "the account no longer exists")
    })?;
    if user.disabled_at_ms.is_some() {
        return Err(ApiError::unauthenticated(
            "account_disabled",
            "the account is disabled",
        ));
    }
    let roles = state
        .store
        .memberships_of(user.id)
        .await?
        .into_iter()
        .map(|m| (m.team_id, m.role))
        .collect();
    Ok(Caller {
        user,
        via,
        roles,
        ip,
    })
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The session cookie's value, when the request carries one.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// Compares two byte strings in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value of a new session; `Secure` when the console is reached over TLS.
pub fn session_set_cookie(value: &str, secure: bool) -> String {
    cookie::Cookie::build((SESSION_COOKIE, value.to_owned()))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::milliseconds(SESSION_TTL_MS))
        .secure(secure)
        .build()
        .to_string()
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn session_clear_cookie(secure: bool) -> String {
    cookie::Cookie::build((SESSION_COOKIE, ""))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .secure(secure)
        .build()
        .to_string()
}

/// Whether the request came over TLS (terminated here or by a proxy that says so).
pub fn over_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn argon2() -> Argon2<'static> {
    // OWASP's recommended Argon2id parameters: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password with Argon2id on a blocking thread.
pub async fn hash_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt =
            SaltString::encode_b64(&salt).map_err(|e| ApiError::Internal(format!("salt: {e}")))?;
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

/// Checks a password against a stored hash on a blocking thread. With no hash (unknown user, or an
/// invited user without a password yet) a dummy hash is checked so timing does not tell.
pub async fn verify_password(password: String, hash: Option<String>) -> ApiResult<bool> {
    tokio::task::spawn_blocking(move || {
        let stored = hash.as_deref().unwrap_or(DUMMY_HASH.as_str());
        let parsed = PasswordHash::new(stored)
            .map_err(|e| ApiError::Internal(format!("stored hash: {e}")))?;
        let ok = argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && hash.is_some())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))?
}

static DUMMY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    let salt = SaltString::encode_b64(b"tollgate-dummy-salt").ok();
    salt.and_then(|s| {
        argon2()
            .hash_password(b"not a password", &s)
            .ok()
            .map(|h| h.to_string())
    })
    .unwrap_or_else(|| {
        "$argon2id$v=19$m=19456,t=2,p=1$dG9sbGdhdGU$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .into()
    })
});

/// Refuses weak passwords with a message that says why.
pub fn check_password_strength(password: &str, email: &str) -> ApiResult<()> {
    let len = password.chars().count();
    if len < 10 {
        return Err(ApiError::invalid(
            "password",
            "the password must be at least 10 characters",
        ));
    }
    if len > 256 {
        return Err(ApiError::invalid(
            "password",
            "the password must be at most 256 characters",
        ));
    }
    let local = email.split('@').next().unwrap_or(email);
    let entropy = zxcvbn::zxcvbn(password, &[email, local, "tollgate"]);
    if u8::from(entropy.score()) < 2 {
        let hint = entropy
            .feedback()
            .and_then(|f| f.warning().map(|w| w.to_string()))
            .unwrap_or_else(|| "it is too easy to guess".into());
        return Err(ApiError::invalid(
            "password",
            format!("the password is too weak: {hint}"),
        ));
    }
    Ok(())
}

/// Normalises and validates an e-mail address.
pub fn normalize_email(email: &str) -> ApiResult<String> {
    let email = email.trim().to_lowercase();
    if email.len() > 254 || !email_address::EmailAddress::is_valid(&email) {
        return Err(ApiError::invalid(
            "email",
            format!("`{email}` is not a valid e-mail address"),
        ));
    }
    Ok(email)
}

/// Sign-in throttling: per account and per client address, counted on every attempt.
#[derive(Debug)]
pub struct Throttle {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(5, 20)
    }
}

impl Throttle {
    /// `account` and `ip` attempts per minute, in bursts of the same size.
    pub fn new(account: u32, ip: u32) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            per_account: RateLimiter::keyed(quota(account)),
            per_ip: RateLimiter::keyed(quota(ip)),
        }
    }

    /// Counts one attempt; refuses with the wait when the account or the address is over its quota.
    pub fn check(&self, email: &str, ip: Option<&str>) -> ApiResult<()> {
        let now = DefaultClock::default().now();
        let ip_check = match ip.and_then(|i| i.parse::<IpAddr>().ok()) {
            Some(addr) => self.per_ip.check_key(&addr),
            None => Ok(()),
        };
        let result = ip_check.and_then(|()| self.per_account.check_key(&email.to_owned()));
        result.map_err(|not_until| ApiError::TooManyRequests {
            message: "too many sign-in attempts: wait and try again".into(),
            retry_after_secs: not_until.wait_time_from(now).as_secs() + 1,
        })
    }

    /// Drops idle entries so the maps do not grow without bound.
    pub fn shrink(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

/// The shared state's throttle.
pub type SharedThrottle = Arc<Throttle>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_passwords_are_named() {
        assert!(check_password_strength("short", "a@b.co").is_err());
        assert!(check_password_strength("passwordpassword", "a@b.co").is_err());
        assert!(check_password_strength("alice@example.com", "alice@example.com").is_err());
        assert!(check_password_strength("correct horse battery staple", "a@b.co").is_ok());
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            normalize_email(" Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
        assert!(normalize_email("not-an-email").is_err());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = hash_password("correct horse battery staple".into())
            .await
            .unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(
            verify_password("correct horse battery staple".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), Some(hash)).await.unwrap());
        assert!(!verify_password("anything".into(), None).await.unwrap());
    }

    #[test]
    fn session_cookies_are_secure_behind_tls() {
        let mut headers = HeaderMap::new();
        assert!(!over_tls(&headers));
        headers.insert("x-forwarded-proto", "HTTPS".parse().unwrap());
        assert!(over_tls(&headers));
        let secure = session_set_cookie("abc", true);
        let plain = session_set_cookie("abc", false);
        for c in [&secure, &plain] {
            assert!(
                c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
                "{c}"
            );
        }
        assert!(secure.contains("Secure"), "{secure}");
        assert!(!plain.contains("Secure"), "{plain}");
        assert!(session_clear_cookie(true).contains("Max-Age=0"));
    }

    #[test]
    fn throttle_refuses_after_the_quota() {
        let t = Throttle::new(2, 100);
        assert!(t.check("a@b.co", Some("127.0.0.1")).is_ok());
        assert!(t.check("a@b.co", Some("127.0.0.1")).is_ok());
        assert!(matches!(
            t.check("a@b.co", Some("127.0.0.1")),
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(t.check("c@d.co", Some("127.0.0.1")).is_ok());
    }
}
