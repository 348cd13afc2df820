//! Teams.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::postgres::PgRow;
use tollgate_core::time::now_ms;
use tollgate_store::{StoreResult, Team, TeamQueries};

use crate::{PostgresStore, store_error};

const TEAM_COLUMNS: &str = "id, name, created_at";

fn team_from_row(row: &PgRow) -> StoreResult<Team> {
    Ok(Team {
        id: row.try_get("id").map_err(store_error)?,
        name: row.try_get("name").map_err(store_error)?,
        created_at_ms: row.try_get("created_at").map_err(store_error)?,
    })
}

#[async_trait]
impl TeamQueries for PostgresStore {
    async fn ensure_team(&self, name: &str) -> StoreResult<Team> {
        // DO NOTHING on an existing name: no row changes, so the revision stays put.
        sqlx::query(
            "INSERT INTO teams (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.pool)
        .await
        .map_err(store_error)?;
        let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = $1"))
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        team_from_row(&row)
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(store_error)?;
        row.as_ref().map(team_from_row).transpose()
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let rows = sqlx::query(&format!(
            "SELECT {TEAM_COLUMNS} FROM teams ORDER BY name COLLATE \"C\""
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(team_from_row).collect()
    }
}
