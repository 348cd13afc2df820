//! Who may change what about a route: the rules the console API and the CLI both apply.
//!
//! A sealed upstream credential belongs to the origin (scheme, host, port) it was set for: pointing
//! the route at another origin drops it unless the same change sets a new one, and only an
//! instance admin may set one or move a route to another origin. A team's route prefix may not
//! cover, or sit under, another team's or a shared route's prefix.

use std::fmt;

use crate::route::prefix_matches;
use crate::upstream::UpstreamTarget;

/// A route's upstream as it stands before a change.
#[derive(Debug, Clone, Copy)]
pub struct CurrentUpstream<'a> {
    /// The stored upstream base URL.
    pub upstream_url: &'a str,
    /// Whether a sealed credential is stored.
    pub has_credential: bool,
}

/// What a request asks of the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CredentialRequest {
    /// Not mentioned.
    #[default]
    Unchanged,
    /// A new credential is given.
    Set,
    /// Remove the credential.
    Remove,
}

/// The upstream part of a create or update request.
#[derive(Debug, Clone, Copy, Default)]
pub struct UpstreamChange<'a> {
    /// The new upstream base URL, when one is given.
    pub upstream_url: Option<&'a str>,
    /// What to do with the credential.
    pub credential: CredentialRequest,
}

/// What happens to the stored credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialPlan {
    /// Stays as it is (or stays absent).
    Keep,
    /// Replaced by the one in the request.
    Set,
    /// Removed: asked for, or the route moved to another origin.
    Clear,
}

/// The outcome of an allowed change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// What to store for the credential.
    pub credential: CredentialPlan,
    /// Whether an existing route moves to another origin.
    pub origin_changed: bool,
    /// Whether a stored credential is dropped only because the route moved (worth telling).
    pub credential_dropped_by_move: bool,
}

/// Why a change is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyError {
    /// The upstream URL is not one the gateway can use (422).
    InvalidUpstream(String),
    /// Only instance admins may set an upstream credential (403).
    CredentialNeedsInstanceAdmin,
    /// Only instance admins may move a route to another origin (403).
    NewOriginNeedsInstanceAdmin {
        /// The origin the route has now.
        from: String,
        /// The origin asked for.
        to: String,
    },
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUpstream(reason) => f.write_str(reason),
            Self::CredentialNeedsInstanceAdmin => f.write_str(
                "only an instance admin may set a route's upstream credential (the gateway sends it to the upstream)",
            ),
            Self::NewOriginNeedsInstanceAdmin { from, to } => write!(
                f,
                "only an instance admin may point a route at another host: `{from}` → `{to}`"
            ),
        }
    }
}

impl std::error::Error for PolicyError {}

fn origin(target: &UpstreamTarget) -> String {
    format!("{}://{}:{}", target.scheme, target.host, target.port)
}

/// Decides what a create (`current` is `None`) or update of a route's upstream does, for a caller
/// who is or is not an instance admin.
pub fn plan_upstream_change(
    current: Option<CurrentUpstream<'_>>,
    change: UpstreamChange<'_>,
    instance_admin: bool,
) -> Result<Plan, PolicyError> {
    let new_target = change
        .upstream_url
        .map(UpstreamTarget::parse)
        .transpose()
        .map_err(PolicyError::InvalidUpstream)?;
    if change.credential == CredentialRequest::Set && !instance_admin {
        return Err(PolicyError::CredentialNeedsInstanceAdmin);
    }
    let moved = match (current, &new_target) {
        (Some(now), Some(new)) => match UpstreamTarget::parse(now.upstream_url) {
            Ok(old) if old.same_origin(new) => None,
            // A stored URL that no longer parses counts as another origin: safe side.
            Ok(old) => Some((origin(&old), origin(new))),
            Err(_) => Some((now.upstream_url.to_owned(), origin(new))),
        },
        _ => None,
    };
    if let Some((from, to)) = &moved
        && !instance_admin
    {
        return Err(PolicyError::NewOriginNeedsInstanceAdmin {
            from: from.clone(),
            to: to.clone(),
        });
    }
    let had_credential = current.is_some_and(|c| c.has_credential);
    let credential = match change.credential {
        CredentialRequest::Set => CredentialPlan::Set,
        CredentialRequest::Remove => CredentialPlan::Clear,
        CredentialRequest::Unchanged if moved.is_some() && had_credential => CredentialPlan::Clear,
        CredentialRequest::Unchanged => CredentialPlan::Keep,
    };
    Ok(Plan {
        credential,
        origin_changed: moved.is_some(),
        credential_dropped_by_move: moved.is_some()
            && had_credential
            && change.credential == CredentialRequest::Unchanged,
    })
}

/// Whether one prefix covers the other on a segment boundary (`/openai` and `/openai/v1` overlap,
/// `/openai` and `/openai2` do not).
pub fn prefixes_overlap(a: &str, b: &str) -> bool {
    prefix_matches(a, b) || prefix_matches(b, a)
}

/// The first existing prefix that a new prefix of `team_id` would collide with: one of another
/// team's or a shared route (`None` team) that covers it or that it covers. The caller leaves out
/// the route being changed. Routes of the same team may nest.
pub fn prefix_conflict<'a>(
    prefix: &str,
    team_id: Option<i64>,
    existing: impl IntoIterator<Item = (&'a str, Option<i64>)>,
) -> Option<&'a str> {
    existing.into_iter().find_map(|(other, other_team)| {
        let same_team = team_id.is_some() && other_team == team_id;
        (!same_team && prefixes_overlap(prefix, other)).then_some(other)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPENAI: CurrentUpstream<'static> = CurrentUpstream {
        upstream_url: "https://api.openai.com",
        has_credential: true,
    };

    fn change(url: Option<&str>, credential: CredentialRequest) -> UpstreamChange<'_> {
        UpstreamChange {
            upstream_url: url,
            credential,
        }
    }

    #[test]
    fn moving_to_another_host_clears_the_credential() {
        let plan = plan_upstream_change(
            Some(OPENAI),
            change(Some("https://evil.example"), CredentialRequest::Unchanged),
            true,
        )
        .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Clear);
        assert!(plan.origin_changed && plan.credential_dropped_by_move);
        for other in [
            "http://api.openai.com",
            "https://api.openai.com:8443",
            "https://openai.com",
        ] {
            let plan = plan_upstream_change(
                Some(OPENAI),
                change(Some(other), CredentialRequest::Unchanged),
                true,
            )
            .unwrap();
            assert_eq!(plan.credential, CredentialPlan::Clear, "{other}");
        }
    }

    #[test]
    fn a_new_credential_in_the_same_request_is_kept() {
        let plan = plan_upstream_change(
            Some(OPENAI),
            change(Some("https://other.example"), CredentialRequest::Set),
            true,
        )
        .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Set);
        assert!(!plan.credential_dropped_by_move);
    }

    #[test]
    fn the_same_origin_keeps_the_credential_for_anyone() {
        let plan = plan_upstream_change(
            Some(OPENAI),
            change(
                Some("https://API.openai.com:443/v1"),
                CredentialRequest::Unchanged,
            ),
            false,
        )
        .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Keep);
        assert!(!plan.origin_changed);
        let plan = plan_upstream_change(
            Some(OPENAI),
            change(None, CredentialRequest::Unchanged),
            false,
        )
        .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Keep);
    }

    #[test]
    fn team_admins_may_not_set_credentials_or_move_routes() {
        assert_eq!(
            plan_upstream_change(Some(OPENAI), change(None, CredentialRequest::Set), false),
            Err(PolicyError::CredentialNeedsInstanceAdmin)
        );
        assert_eq!(
            plan_upstream_change(
                None,
                change(Some("https://api.openai.com"), CredentialRequest::Set),
                false
            ),
            Err(PolicyError::CredentialNeedsInstanceAdmin)
        );
        let err = plan_upstream_change(
            Some(OPENAI),
            change(Some("https://evil.example"), CredentialRequest::Unchanged),
            false,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            PolicyError::NewOriginNeedsInstanceAdmin { .. }
        ));
        assert!(err.to_string().contains("evil.example"), "{err}");
        // Removing a credential only takes power away: allowed.
        let plan =
            plan_upstream_change(Some(OPENAI), change(None, CredentialRequest::Remove), false)
                .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Clear);
        // A team admin may create a route to a host of their choice, without a credential.
        let plan = plan_upstream_change(
            None,
            change(Some("https://api.example"), CredentialRequest::Unchanged),
            false,
        )
        .unwrap();
        assert_eq!(plan.credential, CredentialPlan::Keep);
    }

    #[test]
    fn a_broken_url_is_invalid_not_forbidden() {
        assert!(matches!(
            plan_upstream_change(
                Some(OPENAI),
                change(Some("ftp://x"), CredentialRequest::Unchanged),
                false
            ),
            Err(PolicyError::InvalidUpstream(_))
        ));
    }

    #[test]
    fn prefixes_of_other_teams_may_not_nest() {
        let existing = [
            ("/openai", Some(1)),
            ("/shared", None),
            ("/b/deep/x", Some(2)),
        ];
        assert_eq!(
            prefix_conflict("/openai/v1", Some(2), existing),
            Some("/openai")
        );
        assert_eq!(prefix_conflict("/openai/v1", Some(1), existing), None);
        assert_eq!(prefix_conflict("/openai2", Some(2), existing), None);
        assert_eq!(
            prefix_conflict("/shared/x", Some(1), existing),
            Some("/shared")
        );
        assert_eq!(prefix_conflict("/b", Some(1), existing), Some("/b/deep/x"));
        assert_eq!(prefix_conflict("/", Some(3), existing), Some("/openai"));
        assert_eq!(
            prefix_conflict("/openai", Some(2), existing),
            Some("/openai")
        );
        assert_eq!(prefix_conflict("/c", Some(2), existing), None);
    }
}
