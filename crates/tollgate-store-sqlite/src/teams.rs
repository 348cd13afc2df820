//! Teams.

use async_trait::async_trait;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use tollgate_core::time::now_ms;
use tollgate_store::{StoreResult, Team, TeamQueries};

use crate::{SqliteStore, store_error};

const TEAM_COLUMNS: &str = "id, name, created_at";

fn team_from_row(row: &SqliteRow) -> StoreResult<Team> {
    Ok(Team {
        id: row.try_get("id").map_err(store_error)?,
        name: row.try_get("name").map_err(store_error)?,
        created_at_ms: row.try_get("created_at").map_err(store_error)?,
    })
}

#[async_trait]
impl TeamQueries for SqliteStore {
    async fn ensure_team(&self, name: &str) -> StoreResult<Team> {
        // DO NOTHING on an existing name: no row changes, so the revision stays put.
        sqlx::query(
            "INSERT INTO teams (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(now_ms())
        .execute(&self.writer)
        .await
        .map_err(store_error)?;
        let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = ?"))
            .bind(name)
            .fetch_one(&self.writer)
            .await
            .map_err(store_error)?;
        team_from_row(&row)
    }

    async fn team_by_name(&self, name: &str) -> StoreResult<Option<Team>> {
        let row = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.reader)
            .await
            .map_err(store_error)?;
        row.as_ref().map(team_from_row).transpose()
    }

    async fn list_teams(&self) -> StoreResult<Vec<Team>> {
        let rows = sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams ORDER BY name"))
            .fetch_all(&self.reader)
            .await
            .map_err(store_error)?;
        rows.iter().map(team_from_row).collect()
    }
}
