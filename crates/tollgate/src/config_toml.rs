//! `tollgate config --format toml`: the effective configuration as a file that `--config`
//! accepts back, giving the same effective configuration. Secrets are never printed: each one
//! that is set is named in a comment instead, to be given again by its variable.

use anyhow::Context;
use serde_json::Value;

use crate::config::{Config, REDACTED};

/// The effective configuration as TOML.
pub fn render(config: &Config) -> anyhow::Result<String> {
    let mut value = serde_json::to_value(config).context("cannot serialise the configuration")?;
    let mut withheld = Vec::new();
    withhold(&mut value, "", &mut withheld);
    // A store URL is printed with its password redacted: such a URL is withheld whole.
    if let Some(url) = &config.database_url
        && value.get("database_url").and_then(Value::as_str) != Some(url.expose())
        && let Some(map) = value.as_object_mut()
    {
        map.remove("database_url");
        withheld.push("database_url".to_owned());
    }
    drop_nulls(&mut value);
    let table: toml::Table =
        toml::Table::try_from(&value).context("cannot express the configuration as TOML")?;
    let body = toml::to_string_pretty(&table).context("cannot write the configuration as TOML")?;
    let mut out = String::from(
        "# tollgate's effective configuration (`tollgate config --format toml`): defaults, the\n\
         # file, TOLLGATE_* variables and flags merged. `tollgate --config FILE` reads it back.\n",
    );
    for path in &withheld {
        out.push_str(&format!(
            "# {path} is set but not printed: give it again as TOLLGATE_{}\n",
            path.replace('.', "__").to_ascii_uppercase()
        ));
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

/// Removes every redacted secret, recording its dotted path.
fn withhold(value: &mut Value, path: &str, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        let secret: Vec<String> = map
            .iter()
            .filter(|(_, v)| v.as_str() == Some(REDACTED))
            .map(|(k, _)| k.clone())
            .collect();
        for key in secret {
            map.remove(&key);
            out.push(if path.is_empty() {
                key
            } else {
                format!("{path}.{key}")
            });
        }
        for (key, child) in map.iter_mut() {
            let child_path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            withhold(child, &child_path, out);
        }
    }
}

/// TOML has no null: an unset optional setting is simply absent.
fn drop_nulls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| !v.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}
