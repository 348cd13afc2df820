//! Targets and models, on either side.

use tollgate_console::api::models::{ModelCreate, ModelView, TargetCreate, TargetView};
use tollgate_console::rules::models;

use super::*;

impl Backend {
    /// Every upstream target (instance admins).
    pub async fn targets(&self) -> Outcome<Vec<TargetView>> {
        match self {
            Self::Local(l) => Ok(models::list_targets(&l.rules(), &l.actor())
                .await?
                .iter()
                .map(TargetView::of)
                .collect::<Result<_, _>>()?),
            Self::Remote(r) => r.get("api/v1/targets").await,
        }
    }

    /// Creates a target.
    pub async fn create_target(&self, req: TargetCreate) -> Outcome<TargetView> {
        match self {
            Self::Local(l) => {
                let record = models::create_target(&l.rules(), &l.actor(), req.into()).await?;
                Ok(TargetView::of(&record)?)
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/targets", &req).await,
        }
    }

    /// Deletes a target.
    pub async fn delete_target(&self, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => {
                models::delete_target(&l.rules(), &l.actor(), id).await?;
                Ok(())
            }
            Self::Remote(r) => r.delete(&format!("api/v1/targets/{id}")).await,
        }
    }

    /// Every model.
    pub async fn models(&self) -> Outcome<Vec<ModelView>> {
        match self {
            Self::Local(l) => Ok(models::list_models(&l.rules())
                .await?
                .iter()
                .map(ModelView::of)
                .collect::<Result<_, _>>()?),
            Self::Remote(r) => r.get("api/v1/models").await,
        }
    }

    /// Creates a model.
    pub async fn create_model(&self, req: ModelCreate) -> Outcome<ModelView> {
        match self {
            Self::Local(l) => {
                let record = models::create_model(&l.rules(), &l.actor(), req.into()).await?;
                Ok(ModelView::of(&record)?)
            }
            Self::Remote(r) => r.send(Method::POST, "api/v1/models", &req).await,
        }
    }

    /// Deletes a model.
    pub async fn delete_model(&self, id: i64) -> Outcome<()> {
        match self {
            Self::Local(l) => {
                models::delete_model(&l.rules(), &l.actor(), id).await?;
                Ok(())
            }
            Self::Remote(r) => r.delete(&format!("api/v1/models/{id}")).await,
        }
    }
}
