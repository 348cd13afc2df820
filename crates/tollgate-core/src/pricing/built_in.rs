//! The built-in price table, compiled in from `data/prices.toml`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::{ModelPrice, check_model_name};

/// The data file, as checked in.
const DATA: &str = include_str!("../../data/prices.toml");

/// The providers an entry may name.
pub const PROVIDERS: [&str; 9] = [
    "openai",
    "azure",
    "anthropic",
    "gemini",
    "deepseek",
    "mistral",
    "groq",
    "xai",
    "openai_compatible",
];

/// The built-in table.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltIn {
    /// When the prices were taken, `YYYY-MM-DD`.
    pub as_of: String,
    /// Model name (or prefix) → price and provider.
    pub models: BTreeMap<String, BuiltInModel>,
    /// Why the data file could not be read, when it could not (then the table is empty; the
    /// server refuses to start, and a test keeps it from happening).
    pub error: Option<String>,
}

/// One built-in entry.
#[derive(Debug, Clone, PartialEq)]
pub struct BuiltInModel {
    /// The price.
    pub price: ModelPrice,
    /// Who sells it, one of [`PROVIDERS`].
    pub provider: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    as_of: String,
    models: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    provider: String,
    input: f64,
    output: f64,
    cached_input: Option<f64>,
    reasoning: Option<f64>,
}

/// Reads a price file in the format of `data/prices.toml`, checking every entry.
pub fn parse(text: &str) -> Result<BuiltIn, String> {
    let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
    if !is_date(&file.as_of) {
        return Err(format!("as_of: `{}` is not a YYYY-MM-DD date", file.as_of));
    }
    let mut models = BTreeMap::new();
    for (name, e) in file.models {
        check_model_name(&name).map_err(|m| format!("models.{name}: {m}"))?;
        if !PROVIDERS.contains(&e.provider.as_str()) {
            return Err(format!(
                "models.{name}.provider: `{}` is not one of {}",
                e.provider,
                PROVIDERS.join(", ")
            ));
        }
        let price = ModelPrice {
            input: e.input,
            output: e.output,
            cached_input: e.cached_input,
            reasoning: e.reasoning,
        };
        price
            .check()
            .map_err(|(field, m)| format!("models.{name}.{field}: {m}"))?;
        models.insert(
            name,
            BuiltInModel {
                price,
                provider: e.provider,
            },
        );
    }
    Ok(BuiltIn {
        as_of: file.as_of,
        models,
        error: None,
    })
}

/// Whether `text` is `YYYY-MM-DD` with a plausible month and day.
fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let num = |s: &str, len: usize| {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    matches!(
        (num(y, 4), num(m, 2), num(d, 2)),
        (Some(_), Some(1..=12), Some(1..=31))
    )
}

static BUILT_IN: LazyLock<BuiltIn> = LazyLock::new(|| {
    parse(DATA).unwrap_or_else(|error| BuiltIn {
        as_of: String::new(),
        models: BTreeMap::new(),
        error: Some(error),
    })
});

/// The built-in table.
pub fn built_in() -> &'static BuiltIn {
    &BUILT_IN
}
