//! Invitations to join a team.

/// Expands, inside a module of a backend crate, the [`tollgate_store::InvitationQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __invitations {
    ($store:ident, $db:ty, $for_key_share:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::time::now_ms;
        use tollgate_store::{Invitation, InvitationQueries, NewInvitation, StoreError, StoreResult};

        use super::members::parse_role;
        use super::{$store, store_error};
        use $crate::reworded;

        type DbRow = <$db as sqlx::Database>::Row;

        const INVITATION_SELECT: &str = "SELECT i.id, i.token_hash, i.email, i.team_id, \
             t.name AS team_name, i.role, i.invited_by, i.created_at, i.expires_at, i.accepted_at \
             FROM invitations i JOIN teams t ON t.id = i.team_id";

        fn invitation_from_row(row: &DbRow) -> StoreResult<Invitation> {
            let id: i64 = row.try_get("id").map_err(store_error)?;
            let role: String = row.try_get("role").map_err(store_error)?;
            Ok(Invitation {
                id,
                token_hash: row.try_get("token_hash").map_err(store_error)?,
                email: row.try_get("email").map_err(store_error)?,
                team_id: row.try_get("team_id").map_err(store_error)?,
                team_name: row.try_get("team_name").map_err(store_error)?,
                role: parse_role(&role, || format!("invitation {id}"))?,
                invited_by: row.try_get("invited_by").map_err(store_error)?,
                created_at_ms: row.try_get("created_at").map_err(store_error)?,
                expires_at_ms: row.try_get("expires_at").map_err(store_error)?,
                accepted_at_ms: row.try_get("accepted_at").map_err(store_error)?,
            })
        }

        #[async_trait]
        impl InvitationQueries for $store {
            async fn create_invitation(&self, invitation: NewInvitation) -> StoreResult<Invitation> {
                let mut tx = self.begin_write().await?;
                // Checked (and kept) first, so that a foreign key failure below can only be the inviting
                // user.
                let team: Option<i64> =
                    sqlx::query_scalar(concat!("SELECT id FROM teams WHERE id = $1", $for_key_share))
                        .bind(invitation.team_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                if team.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "team {} does not exist",
                        invitation.team_id
                    )));
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO invitations (token_hash, email, team_id, role, invited_by, created_at, \
                     expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(&invitation.token_hash)
                .bind(&invitation.email)
                .bind(invitation.team_id)
                .bind(invitation.role.as_str())
                .bind(invitation.invited_by)
                .bind(now_ms())
                .bind(invitation.expires_at_ms)
                .fetch_one(&mut *tx)
                .await
                .map_err(|e| {
                    reworded(store_error(e), |err| match err {
                        StoreError::Conflict(_) => Some(StoreError::Conflict(
                            "an invitation with this hash already exists".to_owned(),
                        )),
                        StoreError::NotFound(_) => Some(StoreError::NotFound(format!(
                            "user {} does not exist",
                            invitation.invited_by.unwrap_or_default()
                        ))),
                        _ => None,
                    })
                })?;
                let row = sqlx::query(&format!("{INVITATION_SELECT} WHERE i.id = $1"))
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(store_error)?;
                let created = invitation_from_row(&row)?;
                tx.commit().await.map_err(store_error)?;
                Ok(created)
            }

            async fn invitation_by_hash(&self, token_hash: &str) -> StoreResult<Option<Invitation>> {
                let row = sqlx::query(&format!("{INVITATION_SELECT} WHERE i.token_hash = $1"))
                    .bind(token_hash)
                    .fetch_optional(self.reader())
                    .await
                    .map_err(store_error)?;
                row.as_ref().map(invitation_from_row).transpose()
            }

            async fn list_invitations(&self, team_id: Option<i64>) -> StoreResult<Vec<Invitation>> {
                let rows = sqlx::query(&format!(
                    "{INVITATION_SELECT} WHERE CAST($1 AS BIGINT) IS NULL OR i.team_id = $1 \
                     ORDER BY i.created_at DESC, i.id DESC"
                ))
                .bind(team_id)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(invitation_from_row).collect()
            }

            async fn mark_invitation_accepted(&self, id: i64, at_ms: i64) -> StoreResult<bool> {
                // One conditional statement: of racing callers, exactly one changes the row.
                let done = sqlx::query(
                    "UPDATE invitations SET accepted_at = $1 WHERE id = $2 AND accepted_at IS NULL",
                )
                .bind(at_ms)
                .bind(id)
                .execute(self.writer())
                .await
                .map_err(store_error)?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_invitation(&self, id: i64) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM invitations WHERE id = $1")
                    .bind(id)
                    .execute(self.writer())
                    .await
                    .map_err(store_error)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound(format!(
                        "invitation {id} does not exist"
                    )));
                }
                Ok(())
            }
        }
    };
}
