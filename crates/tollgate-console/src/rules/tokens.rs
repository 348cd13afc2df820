//! Personal access tokens: names, lifetimes, whose tokens an actor may create or revoke, and the
//! audit entry of each. A console user manages their own tokens; the operator at the command
//! line creates them for any enabled user.

use tollgate_core::ApiKey;
use tollgate_core::time::now_ms;
use tollgate_store::{AccessToken, NewAccessToken, User};

use super::{Actor, RuleError, RuleResult, Rules, check_label, expiry_from};
use crate::audit::Change;

/// Whether the actor may manage `user`'s tokens; refused as "not found", never naming them.
fn require_own(actor: &Actor<'_>, user: &User) -> RuleResult<()> {
    match actor.user_id() {
        Some(id) if id != user.id => Err(RuleError::NotFound(format!(
            "user {} does not exist",
            user.id
        ))),
        _ => Ok(()),
    }
}

/// The audit summary's "for whom", when the token is not the actor's own.
fn for_whom(actor: &Actor<'_>, user: &User) -> String {
    if actor.user_id() == Some(user.id) {
        String::new()
    } else {
        format!(" for {}", user.email)
    }
}

/// Creates a token for `user` named `name` (1 to 100 characters) lasting `expires_in` (none for
/// no expiry); a disabled user gets none. Audited; the secret is returned this once.
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    user: &User,
    name: &str,
    expires_in: Option<&str>,
) -> RuleResult<(AccessToken, ApiKey)> {
    require_own(actor, user)?;
    let name = check_label("name", name)?;
    let expires_at_ms = expiry_from("expires_in", expires_in, now_ms())?;
    if user.disabled_at_ms.is_some() {
        return Err(RuleError::Conflict(format!(
            "user {} is disabled",
            user.email
        )));
    }
    let secret = ApiKey::generate_pat();
    let token = rules
        .store
        .create_access_token(NewAccessToken {
            user_id: user.id,
            name,
            token_hash: secret.hash().as_str().to_owned(),
            prefix: secret.display_prefix(),
            expires_at_ms,
        })
        .await?;
    let change = Change::new("token.create", "token", token.id).summary(format!(
        "token `{}` created{}",
        token.name,
        for_whom(actor, user)
    ));
    actor.audit(rules.store, change).await;
    Ok((token, secret))
}

/// Revokes token `id` of `user`: it stops working at once. Audited.
pub async fn revoke(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    user: &User,
    id: i64,
) -> RuleResult<AccessToken> {
    require_own(actor, user)?;
    let token = rules
        .store
        .revoke_access_token(user.id, id, now_ms())
        .await?;
    let change = Change::new("token.revoke", "token", id).summary(format!(
        "token `{}` revoked{}",
        token.name,
        for_whom(actor, user)
    ));
    actor.audit(rules.store, change).await;
    Ok(token)
}
