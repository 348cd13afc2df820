//! Team membership, and the rule that a team keeps at least one owner.

/// Expands, inside a module of a backend crate, the [`tollgate_store::MemberQueries`] implementation of
/// `$store` over sqlx database `$db`, with the dialect fragments given (see [`crate::shared_queries`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __members {
    ($store:ident, $db:ty, $by_bytes:literal, $for_key_share:literal, $for_no_key_update:literal) => {
        use async_trait::async_trait;
        use sqlx::Row;
        use tollgate_core::Role;
        use tollgate_core::time::now_ms;
        use tollgate_store::{MemberQueries, Membership, StoreError, StoreResult};

        use super::{$store, store_error};

        type DbRow = <$db as sqlx::Database>::Row;
        /// Orders text byte by byte, whatever the database's collation.
        const BY_BYTES: &str = $by_bytes;
        type DbConnection = <$db as sqlx::Database>::Connection;

        const MEMBER_SELECT: &str = "SELECT m.team_id, t.name AS team_name, m.user_id, u.email, \
             u.display_name, m.role, m.joined_at FROM team_members m \
             JOIN teams t ON t.id = m.team_id JOIN users u ON u.id = m.user_id";

        /// Reads a stored role; `whose` names the row for the error a corrupt value gives.
        pub(crate) fn parse_role(role: &str, whose: impl FnOnce() -> String) -> StoreResult<Role> {
            role.parse::<Role>()
                .map_err(|e| StoreError::Internal(format!("{}: {e}", whose())))
        }

        fn member_from_row(row: &DbRow) -> StoreResult<Membership> {
            let team_id: i64 = row.try_get("team_id").map_err(store_error)?;
            let user_id: i64 = row.try_get("user_id").map_err(store_error)?;
            let role: String = row.try_get("role").map_err(store_error)?;
            Ok(Membership {
                team_id,
                team_name: row.try_get("team_name").map_err(store_error)?,
                user_id,
                email: row.try_get("email").map_err(store_error)?,
                display_name: row.try_get("display_name").map_err(store_error)?,
                role: parse_role(&role, || format!("member {user_id} of team {team_id}"))?,
                joined_at_ms: row.try_get("joined_at").map_err(store_error)?,
            })
        }

        /// The team's name, or `NotFound`. Locks the team row until the transaction ends, so that
        /// membership changes of one team take turns (see `ensure_another_owner`).
        async fn locked_team_name(conn: &mut DbConnection, team_id: i64) -> StoreResult<String> {
            let name: Option<String> =
                sqlx::query_scalar(concat!("SELECT name FROM teams WHERE id = $1", $for_no_key_update))
                    .bind(team_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(store_error)?;
            name.ok_or_else(|| StoreError::NotFound(format!("team {team_id} does not exist")))
        }

        /// The user's current role in the team, if a member.
        async fn current_role(
            conn: &mut DbConnection,
            team_id: i64,
            user_id: i64,
        ) -> StoreResult<Option<Role>> {
            let role: Option<String> =
                sqlx::query_scalar("SELECT role FROM team_members WHERE team_id = $1 AND user_id = $2")
                    .bind(team_id)
                    .bind(user_id)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(store_error)?;
            role.map(|r| parse_role(&r, || format!("member {user_id} of team {team_id}")))
                .transpose()
        }

        /// `Conflict` unless the team has an owner besides the one about to go.
        async fn ensure_another_owner(
            conn: &mut DbConnection,
            team_id: i64,
            team_name: &str,
        ) -> StoreResult<()> {
            let owners: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM team_members WHERE team_id = $1 AND role = $2")
                    .bind(team_id)
                    .bind(Role::Owner.as_str())
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(store_error)?;
            if owners <= 1 {
                return Err(StoreError::Conflict(format!(
                    "team `{team_name}` would have no owner left"
                )));
            }
            Ok(())
        }

        // Every membership change first locks its team's row (`locked_team_name`; on SQLite the
        // single writer with BEGIN IMMEDIATE serialises every change instead), so changes to one
        // team run one after the other, also across instances: the owner count that a change reads
        // (each statement sees what committed before it, in READ COMMITTED) still holds at its
        // commit.
        #[async_trait]
        impl MemberQueries for $store {
            async fn set_member(&self, team_id: i64, user_id: i64, role: Role) -> StoreResult<Membership> {
                let mut tx = self.begin_write().await?;
                let team = locked_team_name(&mut tx, team_id).await?;
                let user: Option<i64> =
                    sqlx::query_scalar(concat!("SELECT id FROM users WHERE id = $1", $for_key_share))
                        .bind(user_id)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(store_error)?;
                if user.is_none() {
                    return Err(StoreError::NotFound(format!(
                        "user {user_id} does not exist"
                    )));
                }
                // A team without any owner yet (made by an instance admin) may get members first.
                if current_role(&mut tx, team_id, user_id).await? == Some(Role::Owner)
                    && role != Role::Owner
                {
                    ensure_another_owner(&mut tx, team_id, &team).await?;
                }
                sqlx::query(
                    "INSERT INTO team_members (team_id, user_id, role, joined_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (team_id, user_id) DO UPDATE SET role = excluded.role",
                )
                .bind(team_id)
                .bind(user_id)
                .bind(role.as_str())
                .bind(now_ms())
                .execute(&mut *tx)
                .await
                .map_err(store_error)?;
                let row = sqlx::query(&format!(
                    "{MEMBER_SELECT} WHERE m.team_id = $1 AND m.user_id = $2"
                ))
                .bind(team_id)
                .bind(user_id)
                .fetch_one(&mut *tx)
                .await
                .map_err(store_error)?;
                let membership = member_from_row(&row)?;
                tx.commit().await.map_err(store_error)?;
                Ok(membership)
            }

            async fn remove_member(&self, team_id: i64, user_id: i64) -> StoreResult<()> {
                let mut tx = self.begin_write().await?;
                let team = locked_team_name(&mut tx, team_id).await?;
                match current_role(&mut tx, team_id, user_id).await? {
                    None => {
                        return Err(StoreError::NotFound(format!(
                            "user {user_id} is not a member of team `{team}`"
                        )));
                    }
                    Some(Role::Owner) => ensure_another_owner(&mut tx, team_id, &team).await?,
                    Some(_) => {}
                }
                sqlx::query("DELETE FROM team_members WHERE team_id = $1 AND user_id = $2")
                    .bind(team_id)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(store_error)?;
                tx.commit().await.map_err(store_error)
            }

            async fn list_members(&self, team_id: i64) -> StoreResult<Vec<Membership>> {
                let rows = sqlx::query(&format!(
                    "{MEMBER_SELECT} WHERE m.team_id = $1 ORDER BY u.email{BY_BYTES}"
                ))
                .bind(team_id)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(member_from_row).collect()
            }

            async fn memberships_of(&self, user_id: i64) -> StoreResult<Vec<Membership>> {
                let rows = sqlx::query(&format!(
                    "{MEMBER_SELECT} WHERE m.user_id = $1 ORDER BY t.name{BY_BYTES}"
                ))
                .bind(user_id)
                .fetch_all(self.reader())
                .await
                .map_err(store_error)?;
                rows.iter().map(member_from_row).collect()
            }
        }
    };
}
