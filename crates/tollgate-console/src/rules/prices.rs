//! Prices: the table in force (built in, configured, set from the console) for everyone to read,
//! and the console's overrides, which only instance admins (and the operator at the command
//! line) set and remove. Every change is audited and applies to the next call without a restart:
//! here through the shared [`Prices`], on other instances through the store revision.

use tollgate_core::pricing::{ModelPrice, PricedTable, Prices, check_model_name};
use tollgate_core::time::now_ms;
use tollgate_store::{PriceOverride, Store};

use super::{Actor, RuleError, RuleResult, Rules};
use crate::audit::Change;

/// The table in force after reloading the overrides from the store, and the overrides with who
/// set them. Every actor may read prices.
pub async fn list(
    rules: &Rules<'_>,
    prices: &Prices,
) -> RuleResult<(std::sync::Arc<PricedTable>, Vec<PriceOverride>)> {
    let overrides = reload(rules.store, prices).await?;
    Ok((prices.current(), overrides))
}

/// Reads the overrides from the store into `prices`; returns them.
pub async fn reload(store: &dyn Store, prices: &Prices) -> RuleResult<Vec<PriceOverride>> {
    let overrides = store.list_price_overrides().await?;
    prices.set_overrides(overrides.iter().map(|o| (o.model.as_str(), o.price)));
    Ok(overrides)
}

/// Checks a model name and a price, naming the field at fault.
pub fn check(model: &str, price: &ModelPrice) -> RuleResult<()> {
    check_model_name(model).map_err(|m| RuleError::invalid("model", m))?;
    price
        .check()
        .map_err(|(field, message)| RuleError::invalid(field, message))
}

/// Sets the price of `model` (a name or name prefix), replacing the built-in and configured
/// prices of that name. Instance admins only. Audited.
pub async fn set(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    prices: &Prices,
    model: &str,
    price: ModelPrice,
) -> RuleResult<PriceOverride> {
    actor.require_admin()?;
    check(model, &price)?;
    let before = prices
        .current()
        .entry_of(model)
        .and_then(|(name, e)| (name == model).then_some((e.source, e.price)));
    let set = PriceOverride {
        model: model.to_owned(),
        price,
        updated_by: actor.creator(),
        updated_at_ms: now_ms(),
    };
    rules.store.set_price_override(&set).await?;
    reload(rules.store, prices).await?;
    let was = match before {
        Some((source, p)) => format!(" (was {} from {})", describe(&p), source.as_str()),
        None => String::new(),
    };
    let change = Change::new("price.set", "price", model).summary(format!(
        "price of `{model}` set to {}{was}",
        describe(&price)
    ));
    actor.audit(rules.store, change).await;
    Ok(set)
}

/// Removes the console's price of `model`: the built-in or configured price of that name, if
/// any, applies again. Instance admins only. Audited.
pub async fn remove(
    rules: &Rules<'_>,
    actor: &Actor<'_>,
    prices: &Prices,
    model: &str,
) -> RuleResult<()> {
    actor.require_admin()?;
    check_model_name(model).map_err(|m| RuleError::invalid("model", m))?;
    if !rules.store.delete_price_override(model).await? {
        return Err(RuleError::NotFound(format!(
            "no price was set for `{model}` from the console"
        )));
    }
    reload(rules.store, prices).await?;
    let change = Change::new("price.remove", "price", model)
        .summary(format!("price of `{model}` set from the console removed"));
    actor.audit(rules.store, change).await;
    Ok(())
}

/// A price in one line, for the audit log.
fn describe(p: &ModelPrice) -> String {
    let mut text = format!("input ${} / output ${}", p.input, p.output);
    if let Some(c) = p.cached_input {
        text.push_str(&format!(" / cached input ${c}"));
    }
    if let Some(r) = p.reasoning {
        text.push_str(&format!(" / reasoning ${r}"));
    }
    text.push_str(" per million tokens");
    text
}
