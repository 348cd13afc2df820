//! Who is calling: session cookies (with CSRF on writes) and personal access tokens, checked on
//! every console route except the ones listed in [`PUBLIC_PATHS`]. Passwords are Argon2id, computed
//! in the bounded [`HashPool`] with reused memory; sign-in attempts are throttled per (account,
//! client address) and per client address, where the address is the peer's unless the peer is a
//! trusted proxy ([`Origin`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;
use tollgate_core::key::{EDGE_TOKEN_PREFIX, PAT_PREFIX};
use tollgate_core::net::{TrustedProxies, canonical};
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

/// The only paths an edge access token (`tge_…`) may read.
pub const EDGE_READ_PATHS: &[&str] = &["/api/v1/edge/snapshot", "/api/v1/edge/changes"];

/// Who reads the edge data: an edge token, or an instance admin (to look at what edges see).
#[derive(Debug, Clone)]
pub enum EdgeReader {
    /// An edge access token.
    Token {
        /// Its id.
        id: i64,
    },
    /// A signed-in instance admin.
    Admin,
}

impl FromRequestParts<ConsoleState> for EdgeReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(reader) = parts.extensions.get::<EdgeReader>() {
            return Ok(reader.clone());
        }
        let caller = parts.extensions.get::<Caller>().ok_or_else(|| {
            ApiError::unauthenticated(
                "not_signed_in",
                "send an edge access token (tge_…) as Authorization: Bearer",
            )
        })?;
        caller.require_admin()?;
        Ok(EdgeReader::Admin)
    }
}

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

/// Marks a request that reached the console over its own TLS listener (`[console.tls]`).
#[derive(Debug, Clone, Copy)]
pub struct ListenerTls;

/// Where a console request comes from: the client address and whether the client used TLS.
///
/// The address is the TCP peer's, unless the peer is one of `trusted_proxies`: then it is read
/// from `X-Forwarded-For` (right to left, skipping trusted hops). `X-Forwarded-Proto` is believed
/// only from a trusted proxy too, so nobody else can choose their address or the cookie flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The client address; `None` only when the server runs without connection info.
    pub ip: Option<IpAddr>,
    /// The client reached a trusted proxy over TLS (session cookies get `Secure`).
    pub over_tls: bool,
}

impl Origin {
    /// The origin of a request from its headers and connection info.
    pub fn of(headers: &HeaderMap, extensions: &Extensions, proxies: &TrustedProxies) -> Self {
        let Some(peer) = extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| canonical(c.0.ip()))
        else {
            return Self {
                ip: None,
                over_tls: false,
            };
        };
        // A value that is not text stops the walk at the hop that sent it.
        let values = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .map(|v| v.to_str().unwrap_or("not-an-address"))
                .collect::<Vec<_>>()
        };
        let trusted = proxies.is_trusted(peer);
        let ip = proxies.client_ip(peer, values("x-forwarded-for"));
        let over_tls = extensions.get::<ListenerTls>().is_some()
            || trusted
                && values("x-forwarded-proto")
                    .iter()
                    .flat_map(|v| v.split(','))
                    .any(|proto| proto.trim().eq_ignore_ascii_case("https"));
        Self {
            ip: Some(ip),
            over_tls,
        }
    }

    /// The address as stored in audit and session rows.
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}

impl FromRequestParts<ConsoleState> for Origin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Origin::of(
            &parts.headers,
            &parts.extensions,
            &state.settings.trusted_proxies,
        ))
    }
}

/// The client address of a request ([`Origin`]'s, as text).
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl FromRequestParts<ConsoleState> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ConsoleState,
    ) -> Result<Self, Self::Rejection> {
        let origin = Origin::from_request_parts(parts, state).await?;
        Ok(ClientIp(origin.ip_string()))
    }
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
    if let Some(token) = bearer_token(req.headers()).filter(|t| t.starts_with(EDGE_TOKEN_PREFIX)) {
        let reader = resolve_edge(&state, token).await?;
        let path = req
            .extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str);
        if !path.is_some_and(|p| EDGE_READ_PATHS.contains(&p)) {
            return Err(ApiError::Forbidden(
                "an edge token reads only /api/v1/edge/snapshot and /api/v1/edge/changes".into(),
            ));
        }
        req.extensions_mut().insert(reader);
        return Ok(next.run(req).await);
    }
    let ip = Origin::of(
        req.headers(),
        req.extensions(),
        &state.settings.trusted_proxies,
    )
    .ip_string();
    let caller = resolve(&state, req.headers(), req.method(), ip).await?;
    req.extensions_mut().insert(caller);
    Ok(next.run(req).await)
}

/// The bearer token of a request, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Checks an edge access token: well formed, known, not revoked, not expired.
async fn resolve_edge(state: &ConsoleState, token: &str) -> ApiResult<EdgeReader> {
    let parsed = ApiKey::parse_edge_token(token)
        .map_err(|_| ApiError::unauthenticated("invalid_token", "the edge token is malformed"))?;
    let record = state
        .store
        .edge_token_by_hash(parsed.hash().as_str())
        .await?
        .ok_or_else(|| ApiError::unauthenticated("invalid_token", "the edge token is not known"))?;
    let now = now_ms();
    if record.revoked_at_ms.is_some() {
        return Err(ApiError::unauthenticated(
            "revoked_token",
            "the edge token was revoked",
        ));
    }
    if record.expires_at_ms.is_some_and(|t| t <= now) {
        return Err(ApiError::unauthenticated(
            "expired_token",
            "the edge token has expired",
        ));
    }
    // Last use is informational: its failure must not refuse the read.
    if let Err(e) = state.store.touch_edge_token(record.id, now).await {
        tracing::warn!(error = %e, token_id = record.id, "cannot record edge token use");
    }
    Ok(EdgeReader::Token { id: record.id })
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

/// OWASP's recommended Argon2id parameters: 19 MiB, 2 passes, 1 lane.
const M_COST_KIB: u32 = 19 * 1024;
const T_COST: u32 = 2;
const P_COST: u32 = 1;
/// Length of a new hash's output, bytes.
const OUTPUT_LEN: usize = 32;
/// Longest a sign-in waits for a free hashing slot before it is refused with 429.
pub const HASH_WAIT: Duration = Duration::from_secs(5);

fn params() -> Params {
    Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or_default()
}

/// Stands in for the stored hash of an unknown e-mail (or an invited user without a password), so
/// a refusal costs the same Argon2id work as a wrong password: same parameters, same output length.
/// No password matches it, and it is never accepted anyway.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$UT1UFwVSI5JIihrs30iReg$23vZ3/HEnw7aGQzJWekVjMaDz3atkT22lbhz3JFtzeM";

/// Where every Argon2 computation runs: at most `permits` at once (one per core, 1 to 4), each on a
/// blocking thread with a memory buffer that is allocated once and reused, so resident memory is
/// bounded by `permits` × 19 MiB however many sign-ins fail. A caller that gets no slot within
/// [`HASH_WAIT`] is refused with 429 and `Retry-After` instead of queueing without bound.
#[derive(Debug, Clone)]
pub struct HashPool {
    slots: Arc<Semaphore>,
    permits: usize,
    wait: Duration,
    memory: Arc<Mutex<Vec<Vec<Block>>>>,
}

impl HashPool {
    /// A pool of `permits` slots (at least 1) whose callers wait at most `wait`.
    pub fn new(permits: usize, wait: Duration) -> Self {
        let permits = permits.max(1);
        Self {
            slots: Arc::new(Semaphore::new(permits)),
            permits,
            wait,
            memory: Arc::new(Mutex::new(Vec::with_capacity(permits))),
        }
    }

    /// The process's pool: one slot per core, 1 to 4.
    pub fn global() -> &'static HashPool {
        static POOL: std::sync::LazyLock<HashPool> = std::sync::LazyLock::new(|| {
            let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
            HashPool::new(cores.clamp(1, 4), HASH_WAIT)
        });
        &POOL
    }

    /// How many computations may run at once.
    pub fn permits(&self) -> usize {
        self.permits
    }

    /// Runs `work` with a memory buffer of at least `blocks` blocks, in a slot.
    async fn run<T: Send + 'static>(
        &self,
        blocks: usize,
        work: impl FnOnce(&mut [Block]) -> T + Send + 'static,
    ) -> ApiResult<T> {
        let permit = match tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await
        {
            Ok(Ok(permit)) => permit,
            Ok(Err(_)) => return Err(ApiError::Internal("the hash pool is closed".into())),
            Err(_) => {
                return Err(ApiError::TooManyRequests {
                    message: "the server is busy checking passwords: try again in a moment".into(),
                    retry_after_secs: 2,
                });
            }
        };
        let memory = self.memory.clone();
        let keep = self.permits;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut buffer = memory
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()
                .unwrap_or_default();
            if buffer.len() < blocks {
                buffer.resize(blocks, Block::default());
            }
            let result = work(&mut buffer);
            let mut pool = memory.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < keep {
                pool.push(buffer);
            }
            result
        })
        .await
        .map_err(|e| ApiError::Internal(format!("hashing task: {e}")))
    }

    /// Hashes a password with Argon2id into a PHC string.
    pub async fn hash(&self, password: String) -> ApiResult<String> {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        self.run(params().block_count(), move |memory| {
            hash_into(memory, password.as_bytes(), &salt)
        })
        .await?
        .map_err(|e| ApiError::Internal(format!("argon2: {e}")))
    }

    /// Checks a password against a PHC string; `None` checks [`DUMMY_HASH`] (and answers false).
    pub async fn verify(&self, password: String, stored: Option<String>) -> ApiResult<bool> {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = PasswordHash::new(&stored)
            .map_err(|e| ApiError::Internal(format!("stored hash: {e}")))?;
        let blocks = Params::try_from(&parsed)
            .map_err(|e| ApiError::Internal(format!("stored hash: {e}")))?
            .block_count();
        let ok = self
            .run(blocks, move |memory| {
                verify_into(memory, password.as_bytes(), &stored)
            })
            .await?
            .map_err(|e| ApiError::Internal(format!("stored hash: {e}")))?;
        Ok(ok && known)
    }
}

fn hash_into(
    memory: &mut [Block],
    password: &[u8],
    salt: &[u8],
) -> argon2::password_hash::Result<String> {
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let output = Output::init_with(OUTPUT_LEN, |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut *memory)?)
    })?;
    let salt = SaltString::encode_b64(salt)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_into(
    memory: &mut [Block],
    password: &[u8],
    stored: &str,
) -> argon2::password_hash::Result<bool> {
    let parsed = PasswordHash::new(stored)?;
    let algorithm = Algorithm::try_from(parsed.algorithm)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()?
        .unwrap_or_default();
    let params = Params::try_from(&parsed)?;
    let expected = parsed.hash.ok_or(argon2::password_hash::Error::Crypto)?;
    let mut salt_buf = [0u8; 64];
    let salt = parsed
        .salt
        .ok_or(argon2::password_hash::Error::Crypto)?
        .decode_b64(&mut salt_buf)?;
    let argon2 = Argon2::new(algorithm, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        Ok(argon2.hash_password_into_with_memory(password, salt, out, &mut *memory)?)
    })?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

/// Hashes a password with Argon2id in the process's [`HashPool`].
pub async fn hash_password(password: String) -> ApiResult<String> {
    HashPool::global().hash(password).await
}

/// Checks a password against a stored hash in the process's [`HashPool`]. With no hash (unknown
/// user, or an invited user without a password yet) [`DUMMY_HASH`] is checked so timing does not tell.
pub async fn verify_password(password: String, hash: Option<String>) -> ApiResult<bool> {
    HashPool::global().verify(password, hash).await
}

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

/// Sign-in throttling, counted on every attempt before any hashing: per (account, client address)
/// and per client address, never per account alone, so a stranger hammering an account from their
/// address cannot lock its owner out at theirs.
#[derive(Debug)]
pub struct Throttle {
    per_account_address: DefaultKeyedRateLimiter<(String, IpAddr)>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl Default for Throttle {
    fn default() -> Self {
        Self::new(5, 20)
    }
}

impl Throttle {
    /// `account_address` attempts per minute on one account from one address, `address` attempts
    /// per minute from one address on any accounts, in bursts of the same size.
    pub fn new(account_address: u32, address: u32) -> Self {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Self {
            per_account_address: RateLimiter::keyed(quota(account_address)),
            per_address: RateLimiter::keyed(quota(address)),
        }
    }

    /// Counts one attempt; refuses with the wait when the address, or the account from this
    /// address, is over its quota. Without an address (no connection info) all callers share one.
    pub fn check(&self, email: &str, ip: Option<IpAddr>) -> ApiResult<()> {
        let now = DefaultClock::default().now();
        let ip = ip.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), canonical);
        let result = self
            .per_address
            .check_key(&ip)
            .and_then(|()| self.per_account_address.check_key(&(email.to_owned(), ip)));
        result.map_err(|not_until| ApiError::TooManyRequests {
            message: "too many sign-in attempts: wait and try again".into(),
            retry_after_secs: not_until.wait_time_from(now).as_secs() + 1,
        })
    }

    /// Drops idle entries so the maps do not grow without bound.
    pub fn shrink(&self) {
        self.per_account_address.retain_recent();
        self.per_address.retain_recent();
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

    #[tokio::test]
    async fn hashes_made_before_the_pool_still_verify() {
        use argon2::password_hash::PasswordHasher;
        let salt = SaltString::encode_b64(b"0123456789abcdef").unwrap();
        let old = Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();
        assert!(
            verify_password("correct horse battery staple".into(), Some(old.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("nope".into(), Some(old)).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        let real = hash_into(
            &mut vec![Block::default(); params().block_count()],
            b"pw",
            b"0123456789abcdef",
        )
        .unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.version, real.version);
        assert_eq!(dummy.params, real.params);
        assert_eq!(dummy.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        assert_eq!(
            dummy.salt.map(|s| s.len()),
            real.salt.map(|s| s.len()),
            "same salt length"
        );
    }

    #[expect(
        clippy::disallowed_methods,
        reason = "the test holds the pool's only slot from a second task"
    )]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_pool_refuses_with_429_instead_of_queueing() {
        let pool = HashPool::new(1, Duration::from_millis(1));
        let busy = pool.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let hold = tokio::spawn(async move { busy.run(1, move |_| rx.recv()).await });
        tokio::time::sleep(Duration::from_millis(100)).await;
        let refused = pool.verify("x".into(), None).await;
        assert!(
            matches!(refused, Err(ApiError::TooManyRequests { .. })),
            "{refused:?}"
        );
        tx.send(()).unwrap();
        hold.await.unwrap().unwrap().unwrap();
        assert!(!pool.verify("x".into(), None).await.unwrap());
        assert_eq!(pool.memory.lock().unwrap().len(), 1, "the buffer is kept");
    }

    fn origin(peer: &str, headers: &[(&str, &str)], trusted: &[&str]) -> Origin {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let mut ext = Extensions::new();
        ext.insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4000)));
        Origin::of(&map, &ext, &TrustedProxies::parse(trusted).unwrap())
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let spoof = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
        ];
        let stranger = origin("203.0.113.9", &spoof, &["127.0.0.1"]);
        assert_eq!(stranger.ip, Some("203.0.113.9".parse().unwrap()));
        assert!(!stranger.over_tls);
        let proxied = origin("127.0.0.1", &spoof, &["127.0.0.1"]);
        assert_eq!(proxied.ip, Some("6.6.6.6".parse().unwrap()));
        assert!(proxied.over_tls);
        let plain = origin(
            "::ffff:127.0.0.1",
            &[("x-forwarded-proto", "http")],
            &["127.0.0.1"],
        );
        assert_eq!(plain.ip, Some("127.0.0.1".parse().unwrap()));
        assert!(!plain.over_tls);
        assert_eq!(
            Origin::of(
                &HeaderMap::new(),
                &Extensions::new(),
                &TrustedProxies::default()
            )
            .ip,
            None
        );
    }

    #[test]
    fn session_cookies_are_secure_behind_tls() {
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
    fn throttle_counts_per_account_and_address_and_per_address() {
        let home: IpAddr = "127.0.0.1".parse().unwrap();
        let away: IpAddr = "198.51.100.7".parse().unwrap();
        let t = Throttle::new(2, 3);
        assert!(t.check("a@b.co", Some(home)).is_ok());
        assert!(t.check("a@b.co", Some(home)).is_ok());
        assert!(matches!(
            t.check("a@b.co", Some(home)),
            Err(ApiError::TooManyRequests { .. })
        ));
        // The account is not locked for everyone: its owner elsewhere still gets in.
        assert!(t.check("a@b.co", Some(away)).is_ok());
        // The address has used 3 attempts: any account from it now waits.
        assert!(matches!(
            t.check("c@d.co", Some(home)),
            Err(ApiError::TooManyRequests { .. })
        ));
        assert!(t.check("c@d.co", Some(away)).is_ok());
    }
}
