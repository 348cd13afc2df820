//! Argument definitions of `tollgate prices` (definitions only; `prices_cmd.rs` runs them).

use clap::{Args, Subcommand};

/// `tollgate prices …`.
#[derive(Debug, Subcommand)]
pub enum PricesCommand {
    /// The prices in force (built in, configured, set from the console) and their date.
    List(PricesListArgs),
    /// Set the price of a model name or prefix (instance admins): it replaces the built-in
    /// and configured price of that name, from the next call on.
    Set(PricesSetArgs),
    /// Remove a price set with `prices set` or from the console (instance admins).
    Remove(PricesRemoveArgs),
}

/// Flags of `prices list`.
#[derive(Debug, Args)]
pub struct PricesListArgs {
    /// Only models whose name contains this text (case-insensitive).
    #[arg(long)]
    pub model: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `prices set`.
#[derive(Debug, Args)]
pub struct PricesSetArgs {
    /// The model name, or a prefix (`gpt-4o` prices `gpt-4o-2024-08-06` unless that has its own).
    pub model: String,
    /// Dollars per million input (prompt) tokens.
    #[arg(long)]
    pub input: f64,
    /// Dollars per million output (completion) tokens.
    #[arg(long)]
    pub output: f64,
    /// Dollars per million cached input tokens (default: the input price).
    #[arg(long)]
    pub cached_input: Option<f64>,
    /// Dollars per million reasoning tokens (default: the output price).
    #[arg(long)]
    pub reasoning: Option<f64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Flags of `prices remove`.
#[derive(Debug, Args)]
pub struct PricesRemoveArgs {
    /// The model name or prefix whose price set from the console is removed.
    pub model: String,
}
