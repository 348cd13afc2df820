//! Per-model prices, in US dollars per million tokens: a built-in table (`data/prices.toml`,
//! compiled in), overridden by `[prices]` in `tollgate.toml`, overridden in turn by prices set
//! from the console or the command line (kept in the store). [`Prices`] holds the table in force
//! and swaps it whole when the overrides change, so readers never wait.

mod built_in;

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::{Deserialize, Serialize};

pub use built_in::{BuiltIn, BuiltInModel, PROVIDERS, built_in, parse as parse_price_file};

use crate::usage::TokenUsage;

/// The price of one model, dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Cached input tokens; the input price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<f64>,
    /// Reasoning output tokens; the output price when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<f64>,
}

/// Highest price accepted, dollars per million tokens: far above any real one, low enough that
/// a typo of a few digits is caught.
pub const MAX_PRICE: f64 = 100_000.0;

/// Longest model name a price may be given for.
pub const MAX_MODEL_LEN: usize = 200;

impl ModelPrice {
    /// The first field that is not a finite price from 0 to [`MAX_PRICE`], with why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let fields = [
            ("input", Some(self.input)),
            ("output", Some(self.output)),
            ("cached_input", self.cached_input),
            ("reasoning", self.reasoning),
        ];
        for (field, value) in fields {
            let Some(v) = value else { continue };
            if !v.is_finite() {
                return Err((field, format!("{field} must be a number")));
            }
            if v < 0.0 {
                return Err((field, format!("{field} must not be negative")));
            }
            if v > MAX_PRICE {
                return Err((
                    field,
                    format!("{field} must be at most {MAX_PRICE} dollars per million tokens"),
                ));
            }
        }
        Ok(())
    }

    /// What `tokens` cost at this price, dollars. Cached tokens are part of the prompt, reasoning
    /// tokens part of the completion; counts out of range are clamped.
    pub fn cost(&self, tokens: &TokenUsage) -> f64 {
        let prompt = tokens.prompt.max(0);
        let cached = tokens.cached.clamp(0, prompt);
        let completion = tokens.completion.max(0);
        let reasoning = tokens.reasoning.clamp(0, completion);
        #[expect(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^52"
        )]
        let dollars = (prompt - cached) as f64 * self.input
            + cached as f64 * self.cached_input.unwrap_or(self.input)
            + (completion - reasoning) as f64 * self.output
            + reasoning as f64 * self.reasoning.unwrap_or(self.output);
        dollars / 1_000_000.0
    }
}

/// Whether `model` can be given a price: 1 to [`MAX_MODEL_LEN`] bytes, no spaces or control
/// characters. Why not, when it cannot.
pub fn check_model_name(model: &str) -> Result<(), String> {
    if model.is_empty() {
        return Err("model must not be empty".into());
    }
    if model.len() > MAX_MODEL_LEN {
        return Err(format!("model must be at most {MAX_MODEL_LEN} bytes"));
    }
    if model.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("model must not contain spaces or control characters".into());
    }
    Ok(())
}

/// Model name (or name prefix) → price, as `[prices]` of `tollgate.toml` gives it. The longest
/// matching name wins, so `gpt-4o` prices `gpt-4o-2024-08-06` unless that exact name has its
/// own entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, ModelPrice>);

impl PriceTable {
    /// The price that applies to `model` in this table alone.
    pub fn price_of(&self, model: &str) -> Option<&ModelPrice> {
        longest_prefix(&self.0, model).map(|(_, p)| p)
    }

    /// The cost of a call in dollars by this table alone; `None` when it used tokens of a model
    /// the table has no price for (see [`PricedTable::cost`]).
    pub fn cost(&self, model: Option<&str>, tokens: &TokenUsage) -> Option<f64> {
        cost_by(tokens, || model.and_then(|m| self.price_of(m)).copied())
    }

    /// Checks every name and price, naming the first bad entry.
    pub fn validate(&self) -> Result<(), String> {
        for (model, p) in &self.0 {
            check_model_name(model).map_err(|e| format!("prices: `{model}`: {e}"))?;
            p.check().map_err(|(_, e)| format!("prices.{model}: {e}"))?;
        }
        Ok(())
    }
}

/// The entry of `table` whose name is the longest prefix of `model`.
fn longest_prefix<'a, V>(table: &'a BTreeMap<String, V>, model: &str) -> Option<(&'a str, &'a V)> {
    table
        .iter()
        .filter(|(name, _)| model.starts_with(name.as_str()))
        .max_by_key(|(name, _)| name.len())
        .map(|(name, v)| (name.as_str(), v))
}

/// A call's cost: zero when it used no tokens, `None` when it did and `price` finds none.
fn cost_by(tokens: &TokenUsage, price: impl FnOnce() -> Option<ModelPrice>) -> Option<f64> {
    if tokens.prompt <= 0 && tokens.completion <= 0 {
        return Some(0.0);
    }
    price().map(|p| p.cost(tokens))
}

/// Where a price in force comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PriceSource {
    /// tollgate's built-in table.
    BuiltIn,
    /// `[prices]` in the configuration.
    Config,
    /// Set from the console or with `tollgate prices set`.
    Console,
}

impl PriceSource {
    /// The name used in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BuiltIn => "built_in",
            Self::Config => "config",
            Self::Console => "console",
        }
    }
}

/// One entry of the table in force.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedModel {
    /// The price.
    pub price: ModelPrice,
    /// Where it comes from.
    pub source: PriceSource,
    /// The provider the built-in table names, when the price is built in.
    pub provider: Option<&'static str>,
}

/// The prices in force: built-in, then configured, then set from the console, each layer
/// replacing the entries of the same name below it.
#[derive(Debug, Clone, PartialEq)]
pub struct PricedTable {
    entries: BTreeMap<String, PricedModel>,
    as_of: &'static str,
}

impl PricedTable {
    /// The built-in table with `config` and then `overrides` laid over it.
    pub fn build<'a>(
        built_in: &'static BuiltIn,
        config: &PriceTable,
        overrides: impl IntoIterator<Item = (&'a str, ModelPrice)>,
    ) -> Self {
        let mut entries: BTreeMap<String, PricedModel> = built_in
            .models
            .iter()
            .map(|(name, m)| {
                (
                    name.clone(),
                    PricedModel {
                        price: m.price,
                        source: PriceSource::BuiltIn,
                        provider: Some(m.provider.as_str()),
                    },
                )
            })
            .collect();
        let mut lay = |name: &str, price: ModelPrice, source: PriceSource| {
            entries.insert(
                name.to_owned(),
                PricedModel {
                    price,
                    source,
                    provider: None,
                },
            );
        };
        for (name, price) in &config.0 {
            lay(name, *price, PriceSource::Config);
        }
        for (name, price) in overrides {
            lay(name, price, PriceSource::Console);
        }
        Self {
            entries,
            as_of: built_in.as_of.as_str(),
        }
    }

    /// The date the built-in prices were taken, `YYYY-MM-DD`.
    pub fn as_of(&self) -> &'static str {
        self.as_of
    }

    /// Every entry, by name.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &PricedModel)> {
        self.entries.iter().map(|(n, m)| (n.as_str(), m))
    }

    /// The entry pricing `model` and its name: the longest name `model` starts with; for a
    /// `vendor/model` name (OpenRouter, Together) with none, the entry of the part after the
    /// last `/`.
    pub fn entry_of<'a>(&'a self, model: &str) -> Option<(&'a str, &'a PricedModel)> {
        longest_prefix(&self.entries, model).or_else(|| {
            let (_, bare) = model.rsplit_once('/')?;
            longest_prefix(&self.entries, bare)
        })
    }

    /// The cost of a call in dollars: zero when it used no tokens, `None` ("no price") when it
    /// used tokens and its model is unknown or has no price.
    pub fn cost(&self, model: Option<&str>, tokens: &TokenUsage) -> Option<f64> {
        cost_by(tokens, || {
            model.and_then(|m| self.entry_of(m)).map(|(_, e)| e.price)
        })
    }
}

/// The prices in force, shared by the gateway and the console and replaced whole when the
/// overrides change (no restart, no lock on the call path).
#[derive(Debug)]
pub struct Prices {
    built_in: &'static BuiltIn,
    config: PriceTable,
    current: ArcSwap<PricedTable>,
}

impl Prices {
    /// The built-in table with `config` over it, and no overrides yet.
    pub fn new(config: PriceTable) -> Self {
        let built_in = built_in();
        let table = PricedTable::build(built_in, &config, []);
        Self {
            built_in,
            config,
            current: ArcSwap::from_pointee(table),
        }
    }

    /// The table in force now.
    pub fn current(&self) -> Arc<PricedTable> {
        self.current.load_full()
    }

    /// Replaces the overrides: the next call is priced with them.
    pub fn set_overrides<'a>(&self, overrides: impl IntoIterator<Item = (&'a str, ModelPrice)>) {
        let table = PricedTable::build(self.built_in, &self.config, overrides);
        self.current.store(Arc::new(table));
    }

    /// The configured table (`[prices]`).
    pub fn config(&self) -> &PriceTable {
        &self.config
    }
}

impl Default for Prices {
    /// The built-in table alone.
    fn default() -> Self {
        Self::new(PriceTable::default())
    }
}

#[cfg(test)]
mod tests;
