//! What the CLI prints: tables for people, stable JSON for scripts, one-line errors.
#![expect(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the CLI's output goes to the terminal"
)]

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde::Serialize;

use crate::config::Config;

/// Prints an error as one line on stderr.
pub fn error_line(error: &anyhow::Error) {
    let text = format!("{error:#}");
    eprintln!(
        "error: {}",
        text.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a line of text.
pub fn line(text: &str) {
    println!("{text}");
}

/// Prints a table with a header row.
pub fn table(header: &[&str], rows: Vec<Vec<String>>) {
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic);
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row);
    }
    println!("{table}");
}

/// Prints the effective configuration, secrets redacted.
pub fn print_config(config: &Config) -> anyhow::Result<()> {
    json(config)
}

/// Prints the console API's OpenAPI document.
pub fn print_openapi() -> anyhow::Result<()> {
    line(&tollgate_console::openapi_json());
    Ok(())
}
