//! Edge access tokens: instance-wide tokens (`tge_…`) that read only the edge key snapshot and
//! change feed. They see every team's key hashes, so only instance admins (and the operator at
//! the command line) create, list and revoke them; every change is audited.

use tollgate_core::ApiKey;
use tollgate_core::time::now_ms;
use tollgate_store::{EdgeToken, NewEdgeToken};

use super::{Actor, RuleResult, Rules, check_label, expiry_from};
use crate::audit::Change;

/// Creates an edge token named `name` (1 to 100 characters) lasting `expires_in` (none for no
/// expiry). Instance admins only. Audited; the secret is returned this once.
pub async fn create(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    name: &str,
    expires_in: Option<&str>,
) -> RuleResult<(EdgeToken, ApiKey)> {
    actor.require_admin()?;
    let name = check_label("name", name)?;
    let expires_at_ms = expiry_from("expires_in", expires_in, now_ms())?;
    let secret = ApiKey::generate_edge_token();
    let token = rules
        .store
        .create_edge_token(NewEdgeToken {
            name,
            token_hash: secret.hash().as_str().to_owned(),
            prefix: secret.display_prefix(),
            created_by: actor.creator(),
            expires_at_ms,
        })
        .await?;
    let change = Change::new("edge_token.create", "edge_token", token.id)
        .summary(format!("edge token `{}` created", token.name));
    actor.audit(rules.store, change).await;
    Ok((token, secret))
}

/// Every edge token, newest first. Instance admins only.
pub async fn list(rules: &Rules<'_>, actor: &Actor<'_>) -> RuleResult<Vec<EdgeToken>> {
    actor.require_admin()?;
    Ok(rules.store.list_edge_tokens().await?)
}

/// Revokes edge token `id`: it stops working at once. Instance admins only. Audited.
pub async fn revoke(rules: &Rules<'_>, actor: &Actor<'_>, id: i64) -> RuleResult<EdgeToken> {
    actor.require_admin()?;
    let token = rules.store.revoke_edge_token(id, now_ms()).await?;
    let change = Change::new("edge_token.revoke", "edge_token", id)
        .summary(format!("edge token `{}` revoked", token.name));
    actor.audit(rules.store, change).await;
    Ok(token)
}
