//! Prices set from the console or the command line (migration `0012_prices`).

use async_trait::async_trait;
use tollgate_core::pricing::ModelPrice;

use crate::StoreResult;

/// A price set for a model name (or name prefix) from the console or the command line; it
/// replaces the built-in and configured prices of that name.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceOverride {
    /// The model name or prefix.
    pub model: String,
    /// The price.
    pub price: ModelPrice,
    /// Who set it (`user:<email>`, `cli:<os-user>`).
    pub updated_by: String,
    /// When, epoch milliseconds.
    pub updated_at_ms: i64,
}

/// Price overrides. Every change bumps the store revision, so every instance reloads its prices.
#[async_trait]
pub trait PriceQueries {
    /// Every override, by model name.
    async fn list_price_overrides(&self) -> StoreResult<Vec<PriceOverride>>;
    /// Creates or replaces the override of `o.model`.
    async fn set_price_override(&self, o: &PriceOverride) -> StoreResult<()>;
    /// Removes the override of `model`; whether there was one.
    async fn delete_price_override(&self, model: &str) -> StoreResult<bool>;
}
