//! Routes: names, prefixes, upstreams, kinds and timeouts with their defaults; who may create,
//! change or delete one; the write-only upstream credential; the audit entry of each change.
//! Who may set a credential, move a route to another host, reach internal hosts or nest prefixes
//! is decided by `tollgate_core::route_policy` and `tollgate_core::upstream`; this file applies it.

use std::net::IpAddr;
use std::time::Duration;

use tollgate_core::crypto::{MasterKey, SealedRow};
use tollgate_core::llm::CredentialHeader;
use tollgate_core::route_policy::{
    self, CredentialPlan, CredentialRequest, CurrentUpstream, PolicyError, UpstreamChange,
};
use tollgate_core::upstream::{self, TargetHost, UpstreamTarget};
use tollgate_core::{Role, RouteKind, route};
use tollgate_store::{NewRoute, RouteRecord, RouteUpdate};

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// Connect timeout of a route that names none, ms.
pub const DEFAULT_CONNECT_TIMEOUT_MS: i64 = 5_000;
/// Response and idle timeout of a route that names none, ms.
pub const DEFAULT_TIMEOUT_MS: i64 = 300_000;
/// Longest timeout of either kind, ms (one hour).
pub const MAX_TIMEOUT_MS: i64 = 3_600_000;
/// Longest wait for resolving an upstream host name.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A route to create.
#[derive(Debug, Clone, Default)]
pub struct RouteDraft {
    /// Owning team; `None` for a route shared by every team (instance admins only).
    pub team_id: Option<i64>,
    /// Unique name.
    pub name: String,
    /// Unique path prefix, e.g. `/openai`.
    pub prefix: String,
    /// Upstream base URL; a trailing `/` is dropped.
    pub upstream_url: String,
    /// What the gateway understands of the traffic (default `http`).
    pub kind: Option<RouteKind>,
    /// Remove the prefix before forwarding.
    pub strip_prefix: bool,
    /// Connect timeout, ms (default 5000).
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms (default 300000).
    pub timeout_ms: Option<i64>,
    /// Enabled (default true).
    pub enabled: Option<bool>,
    /// Upstream credential the gateway injects (instance admins only; needs a master key).
    pub credential: Option<String>,
    /// The header the credential is sent in and its format (instance admins only); `None`: the
    /// kind's (`Authorization: Bearer`, `x-api-key` on anthropic routes).
    pub credential_header: Option<CredentialHeader>,
}

/// A change to a route; `None` fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct RouteChange {
    /// New name.
    pub name: Option<String>,
    /// New prefix.
    pub prefix: Option<String>,
    /// New upstream URL; a trailing `/` is dropped.
    pub upstream_url: Option<String>,
    /// New kind.
    pub kind: Option<RouteKind>,
    /// Strip the prefix.
    pub strip_prefix: Option<bool>,
    /// Connect timeout, ms.
    pub connect_timeout_ms: Option<i64>,
    /// Response and idle timeout, ms.
    pub timeout_ms: Option<i64>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// New credential; `Some(None)` removes it.
    pub credential: Option<Option<String>>,
    /// New credential header; `Some(None)` goes back to the kind's.
    pub credential_header: Option<Option<CredentialHeader>>,
}

/// What an update did besides the fields asked for.
#[derive(Debug, Clone)]
pub struct RouteUpdated {
    /// The route now.
    pub route: RouteRecord,
    /// The stored credential was dropped because the upstream moved to another origin.
    pub credential_dropped_by_move: bool,
}

/// A timeout in ms: 1 ms to 1 h. Zero is refused, never rounded up.
pub fn check_timeout(field: &'static str, ms: i64) -> RuleResult<i64> {
    if (1..=MAX_TIMEOUT_MS).contains(&ms) {
        Ok(ms)
    } else {
        Err(RuleError::invalid(
            field,
            format!("{field} must be 1 to {MAX_TIMEOUT_MS} ms"),
        ))
    }
}

/// A route kind given as text (the CLI's `--kind`).
pub fn parse_kind(kind: &str) -> RuleResult<RouteKind> {
    kind.parse()
        .map_err(|e: String| RuleError::invalid("kind", e))
}

/// The upstream as stored: validated, without a trailing `/`.
fn check_upstream(url: &str) -> RuleResult<String> {
    let url = url.trim_end_matches('/');
    route::validate_upstream(url).map_err(|e| RuleError::invalid("upstream_url", e))?;
    Ok(url.to_owned())
}

/// Only instance admins choose the header a credential is sent in, as they set credentials.
fn check_header_change(actor: &Actor<'_>, changing: bool) -> RuleResult<()> {
    if changing && !actor.is_instance_admin() {
        return Err(RuleError::Forbidden(
            "only instance admins may choose how a route's credential is sent".into(),
        ));
    }
    Ok(())
}

/// A credential header given as a name and a format (`{key}` when none), as the API takes it.
pub fn parse_credential_header(
    name: Option<&str>,
    format: Option<&str>,
) -> RuleResult<Option<CredentialHeader>> {
    match (name, format) {
        (Some(name), format) => {
            CredentialHeader::new(name, format.unwrap_or(tollgate_core::llm::KEY_PLACEHOLDER))
                .map(Some)
                .map_err(|e| RuleError::invalid("credential_header", e))
        }
        (None, Some(_)) => Err(RuleError::invalid(
            "credential_format",
            "credential_format needs credential_header (the header it is sent in)",
        )),
        (None, None) => Ok(None),
    }
}

/// The master key that will seal `secret`, once the credential is known to be storable.
fn sealer<'a>(rules: &Rules<'a>, secret: &str) -> RuleResult<&'a MasterKey> {
    if secret.is_empty() || secret.len() > 4096 {
        return Err(RuleError::invalid(
            "upstream_key",
            "the upstream credential must be 1 to 4096 bytes",
        ));
    }
    rules.master_key.ok_or_else(|| RuleError::NotConfigured {
        code: "no_master_key",
        message: "storing an upstream credential needs a master key (TOLLGATE_MASTER_KEY)".into(),
    })
}

/// `secret` sealed for route `id` (bound to it: it does not open in another route's row).
fn seal(rules: &Rules<'_>, id: i64, secret: &str) -> RuleResult<Vec<u8>> {
    Ok(sealer(rules, secret)?.seal(secret.as_bytes(), SealedRow::RouteCredential(id)))
}

fn policy_error(e: PolicyError) -> RuleError {
    match e {
        PolicyError::InvalidUpstream(reason) => RuleError::invalid("upstream_url", reason),
        other => RuleError::Forbidden(other.to_string()),
    }
}

fn credential_request<T>(field: Option<&Option<T>>) -> CredentialRequest {
    match field {
        None => CredentialRequest::Unchanged,
        Some(Some(_)) => CredentialRequest::Set,
        Some(None) => CredentialRequest::Remove,
    }
}

/// Who may change a route: admins of its team, or instance admins for shared routes.
fn require_manage(actor: &Actor<'_>, team_id: Option<i64>) -> RuleResult<()> {
    match team_id {
        Some(team) => actor.require(team, Role::Admin).map(|_| ()),
        None => actor.require_admin(),
    }
}

/// Refuses an upstream a team admin may not reach: every address its host resolves to must be
/// public, not one of tollgate's own listeners, unless the instance's `upstream_allowlist` lists
/// the host or the address. Instance admins (and the operator) are not asked.
async fn check_reachable(rules: &Rules<'_>, actor: &Actor<'_>, url: &str) -> RuleResult<()> {
    if actor.is_instance_admin() {
        return Ok(());
    }
    let target = UpstreamTarget::parse(url).map_err(|e| RuleError::invalid("upstream_url", e))?;
    let addresses: Vec<IpAddr> = match &target.host {
        TargetHost::Ip(ip) => vec![*ip],
        TargetHost::Name(name) if rules.upstream_allowlist.allows_name(name) => return Ok(()),
        TargetHost::Name(name) => {
            let lookup = tokio::net::lookup_host((name.as_str(), target.port));
            match tokio::time::timeout(RESOLVE_TIMEOUT, lookup).await {
                Ok(Ok(found)) => found.map(|a| a.ip()).collect(),
                Ok(Err(e)) => {
                    return Err(RuleError::invalid(
                        "upstream_url",
                        format!("upstream host `{name}` does not resolve: {e}"),
                    ));
                }
                Err(_) => {
                    return Err(RuleError::invalid(
                        "upstream_url",
                        format!(
                            "upstream host `{name}` did not resolve within {} s",
                            RESOLVE_TIMEOUT.as_secs()
                        ),
                    ));
                }
            }
        }
    };
    if addresses.is_empty() {
        return Err(RuleError::invalid(
            "upstream_url",
            format!("upstream host `{}` has no address", target.host),
        ));
    }
    upstream::check_addresses(
        &target,
        &addresses,
        rules.upstream_allowlist,
        rules.own_listeners,
    )
    .map_err(|refused| RuleError::invalid("upstream_url", refused.to_string()))
}

/// Refuses a team admin's prefix that covers, or sits under, a prefix of another team's or a
/// shared route. Names the other prefix, never the other team.
async fn check_prefix(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    prefix: &str,
    team_id: Option<i64>,
    except: Option<i64>,
) -> RuleResult<()> {
    if actor.is_instance_admin() {
        return Ok(());
    }
    let routes = rules.store.list_routes().await?;
    let existing = routes
        .iter()
        .filter(|r| Some(r.id) != except)
        .map(|r| (r.prefix.as_str(), r.team_id));
    match route_policy::prefix_conflict(prefix, team_id, existing) {
        Some(other) => Err(RuleError::ConflictWith {
            code: "prefix_conflict",
            message: format!(
                "prefix `{prefix}` overlaps the prefix `{other}` of a route this team does not own; choose a prefix outside it"
            ),
        }),
        None => Ok(()),
    }
}

/// The route if the actor may see it: their teams' and the shared ones; otherwise "not found".
pub async fn visible(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<RouteRecord> {
    match rules.store.route_by_id(id).await? {
        Some(r) if r.team_id.is_none_or(|t| actor.role_in(t).is_some()) => Ok(r),
        _ => Err(RuleError::NotFound(format!("route {id} does not exist"))),
    }
}

/// Creates a route (admins of its team; instance admins for shared routes), audited.
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    draft: RouteDraft,
) -> RuleResult<RouteRecord> {
    let store = rules.store;
    require_manage(actor, draft.team_id)?;
    route::validate_name(&draft.name).map_err(|e| RuleError::invalid("name", e))?;
    route::validate_prefix(&draft.prefix).map_err(|e| RuleError::invalid("prefix", e))?;
    let kind = draft.kind.unwrap_or_default();
    // An `llm` route sends calls to its models' targets: its own upstream may be left out.
    let upstream_url = if kind == RouteKind::Llm && draft.upstream_url.is_empty() {
        String::new()
    } else {
        check_upstream(&draft.upstream_url)?
    };
    route_policy::plan_upstream_change(
        None,
        UpstreamChange {
            upstream_url: (!upstream_url.is_empty()).then_some(upstream_url.as_str()),
            credential: credential_request(Some(&draft.credential)),
        },
        actor.is_instance_admin(),
    )
    .map_err(policy_error)?;
    check_header_change(actor, draft.credential_header.is_some())?;
    let connect_timeout_ms = check_timeout(
        "connect_timeout_ms",
        draft
            .connect_timeout_ms
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT_MS),
    )?;
    let timeout_ms = check_timeout("timeout_ms", draft.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS))?;
    // Checked before the route exists; sealed once it has the id the credential is bound to.
    if let Some(k) = draft.credential.as_deref() {
        sealer(rules, k)?;
    }
    if !upstream_url.is_empty() {
        check_reachable(rules, actor, &upstream_url).await?;
    }
    check_prefix(rules, actor, &draft.prefix, draft.team_id, None).await?;
    let mut record = store
        .create_route(NewRoute {
            team_id: draft.team_id,
            name: draft.name,
            prefix: draft.prefix,
            upstream_url,
            kind,
            strip_prefix: draft.strip_prefix,
            connect_timeout_ms,
            timeout_ms,
            sealed_credential: None,
            credential_header: draft.credential_header,
        })
        .await?;
    let sealed_credential = draft
        .credential
        .as_deref()
        .map(|k| seal(rules, record.id, k))
        .transpose()?;
    if draft.enabled == Some(false) || sealed_credential.is_some() {
        record = store
            .update_route(
                record.id,
                RouteUpdate {
                    enabled: (draft.enabled == Some(false)).then_some(false),
                    sealed_credential: sealed_credential.map(Some),
                    ..RouteUpdate::default()
                },
            )
            .await?;
    }
    let change = Change::new("route.create", "route", record.id)
        .team(record.team_id)
        .summary(format!(
            "route `{}` {} → {}",
            record.name, record.prefix, record.upstream_url
        ));
    actor.audit(store, change).await;
    Ok(record)
}

/// Changes a route (as [`create`] for who may), audited. Moving it to another origin drops its
/// credential unless the same change sets one.
pub async fn update(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    id: i64,
    change: RouteChange,
) -> RuleResult<RouteUpdated> {
    let store = rules.store;
    let current = visible(rules, actor, id).await?;
    require_manage(actor, current.team_id)?;
    if let Some(name) = &change.name {
        route::validate_name(name).map_err(|e| RuleError::invalid("name", e))?;
    }
    if let Some(prefix) = &change.prefix {
        route::validate_prefix(prefix).map_err(|e| RuleError::invalid("prefix", e))?;
    }
    let upstream_url = change
        .upstream_url
        .as_deref()
        .map(check_upstream)
        .transpose()?;
    let kind = change.kind;
    check_header_change(actor, change.credential_header.is_some())?;
    let connect_timeout_ms = change
        .connect_timeout_ms
        .map(|v| check_timeout("connect_timeout_ms", v))
        .transpose()?;
    let timeout_ms = change
        .timeout_ms
        .map(|v| check_timeout("timeout_ms", v))
        .transpose()?;
    let plan = route_policy::plan_upstream_change(
        Some(CurrentUpstream {
            upstream_url: &current.upstream_url,
            has_credential: current.sealed_credential.is_some(),
        }),
        UpstreamChange {
            upstream_url: upstream_url.as_deref(),
            credential: credential_request(change.credential.as_ref()),
        },
        actor.is_instance_admin(),
    )
    .map_err(policy_error)?;
    let sealed_credential = match (plan.credential, &change.credential) {
        (CredentialPlan::Set, Some(Some(k))) => Some(Some(seal(rules, id, k)?)),
        (CredentialPlan::Clear, _) => Some(None),
        _ => None,
    };
    if let Some(url) = &upstream_url {
        check_reachable(rules, actor, url).await?;
    }
    if let Some(prefix) = &change.prefix {
        check_prefix(rules, actor, prefix, current.team_id, Some(id)).await?;
    }
    let update = RouteUpdate {
        name: change.name,
        prefix: change.prefix,
        upstream_url,
        kind,
        strip_prefix: change.strip_prefix,
        connect_timeout_ms,
        timeout_ms,
        enabled: change.enabled,
        sealed_credential,
        credential_header: change.credential_header,
        team_id: None,
    };
    let updated = store.update_route(id, update).await?;
    let entry = Change::new("route.update", "route", id)
        .team(updated.team_id)
        .summary(if plan.credential_dropped_by_move {
            format!(
                "route `{}` changed; its upstream credential was removed because the upstream moved to another host",
                updated.name
            )
        } else {
            format!("route `{}` changed", updated.name)
        });
    actor.audit(store, entry).await;
    Ok(RouteUpdated {
        route: updated,
        credential_dropped_by_move: plan.credential_dropped_by_move,
    })
}

/// Deletes a route (as [`create`] for who may); keys that listed it lose it. Audited.
pub async fn delete(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<RouteRecord> {
    let store = rules.store;
    let current = visible(rules, actor, id).await?;
    require_manage(actor, current.team_id)?;
    store.delete_route(&current.name).await?;
    let change = Change::new("route.delete", "route", id)
        .team(current.team_id)
        .summary(format!("route `{}` deleted", current.name));
    actor.audit(store, change).await;
    Ok(current)
}
