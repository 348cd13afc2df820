//! Per-model prices, in US dollars per million tokens, configured in `tollgate.toml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::usage::TokenUsage;

/// The price of one model, dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Input (prompt) tokens.
    pub input: f64,
    /// Output (completion) tokens.
    pub output: f64,
    /// Cached input tokens; the input price when absent.
    #[serde(default)]
    pub cached_input: Option<f64>,
}

/// Model name (or name prefix) → price. The longest matching name wins, so `gpt-4o` prices
/// `gpt-4o-2024-08-06` unless that exact name has its own entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PriceTable(pub BTreeMap<String, ModelPrice>);

impl PriceTable {
    /// The price that applies to `model`.
    pub fn price_of(&self, model: &str) -> Option<&ModelPrice> {
        self.0
            .iter()
            .filter(|(name, _)| model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, p)| p)
    }

    /// The cost of a call in dollars; zero for an unpriced model.
    pub fn cost(&self, model: Option<&str>, tokens: &TokenUsage) -> f64 {
        let Some(price) = model.and_then(|m| self.price_of(m)) else {
            return 0.0;
        };
        let cached = tokens.cached.clamp(0, tokens.prompt.max(0));
        let uncached = tokens.prompt.max(0) - cached;
        #[expect(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^52"
        )]
        let dollars = uncached as f64 * price.input
            + cached as f64 * price.cached_input.unwrap_or(price.input)
            + tokens.completion.max(0) as f64 * price.output;
        dollars / 1_000_000.0
    }

    /// Checks that no price is negative or not a number.
    pub fn validate(&self) -> Result<(), String> {
        for (model, p) in &self.0 {
            let all = [Some(p.input), Some(p.output), p.cached_input];
            if all.iter().flatten().any(|v| !v.is_finite() || *v < 0.0) {
                return Err(format!(
                    "prices.{model}: prices must be finite and not negative"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_name_prices_the_call() {
        let mut t = PriceTable::default();
        t.0.insert(
            "gpt-4o".into(),
            ModelPrice {
                input: 2.5,
                output: 10.0,
                cached_input: Some(1.25),
            },
        );
        t.0.insert(
            "gpt-4o-mini".into(),
            ModelPrice {
                input: 0.15,
                output: 0.6,
                cached_input: None,
            },
        );
        let tokens = TokenUsage {
            prompt: 1_000_000,
            completion: 1_000_000,
            total: 2_000_000,
            cached: 0,
            reasoning: 0,
        };
        assert!((t.cost(Some("gpt-4o-2024-08-06"), &tokens) - 12.5).abs() < 1e-9);
        assert!((t.cost(Some("gpt-4o-mini"), &tokens) - 0.75).abs() < 1e-9);
        let cached = TokenUsage {
            cached: 1_000_000,
            ..tokens
        };
        assert!((t.cost(Some("gpt-4o"), &cached) - 11.25).abs() < 1e-9);
        assert!(t.cost(Some("claude"), &tokens).abs() < 1e-12);
        assert!(t.cost(None, &tokens).abs() < 1e-12);
    }

    #[test]
    fn negative_prices_are_refused() {
        let mut t = PriceTable::default();
        t.0.insert(
            "m".into(),
            ModelPrice {
                input: -1.0,
                output: 0.0,
                cached_input: None,
            },
        );
        assert!(t.validate().unwrap_err().contains("prices.m"));
    }
}
