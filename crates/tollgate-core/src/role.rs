//! Team roles and what each may do. The console checks every endpoint against these.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A user's role in one team. Declared least powerful first, so the order of the OpenAPI
/// document's `Role` enum is the order of power.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the team's usage, keys and routes.
    Viewer,
    /// Also manages the keys they created.
    Member,
    /// Also manages every key, route and member of the team.
    Admin,
    /// Like admin, and may make or remove owners. A team always keeps one.
    Owner,
}

impl Role {
    /// Every role, least powerful first.
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    /// The lowercase name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may manage the team's keys, routes and members.
    pub fn manages_team(self) -> bool {
        self >= Role::Admin
    }

    /// Whether this role may create keys (members manage their own).
    pub fn creates_keys(self) -> bool {
        self >= Role::Member
    }

    /// Whether this role may give or take `target` from someone who now has `current`:
    /// admins manage members and viewers, only owners touch admins and owners.
    pub fn may_assign(self, current: Option<Role>, target: Role) -> bool {
        match self {
            Role::Owner => true,
            Role::Admin => target <= Role::Member && current.is_none_or(|c| c <= Role::Member),
            Role::Member | Role::Viewer => false,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("role `{s}` is not one of owner, admin, member, viewer"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_is_power() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!(
            Role::Owner > Role::Admin && Role::Admin > Role::Member && Role::Member > Role::Viewer
        );
        assert!("root".parse::<Role>().unwrap_err().contains("root"));
    }

    #[test]
    fn admins_cannot_touch_owners_or_admins() {
        assert!(Role::Admin.may_assign(Some(Role::Viewer), Role::Member));
        assert!(Role::Admin.may_assign(None, Role::Viewer));
        assert!(!Role::Admin.may_assign(Some(Role::Owner), Role::Member));
        assert!(!Role::Admin.may_assign(Some(Role::Member), Role::Admin));
        assert!(Role::Owner.may_assign(Some(Role::Owner), Role::Viewer));
        assert!(!Role::Member.may_assign(None, Role::Viewer));
    }
}
