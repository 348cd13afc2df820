//! What the CLI prints: tables for people, stable JSON for scripts, one-line errors. Results (and
//! secrets, alone) go to standard output; notes for the person at the terminal go to standard
//! error, so `KEY=$(tollgate key create …)` holds the key and nothing else. A reader that hangs
//! up (`tollgate openapi | head -1`) ends the output quietly.
#![expect(
    clippy::print_stderr,
    reason = "the CLI's notes and errors go to the terminal"
)]

use std::io::Write;

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

/// Whether an error is standard output's reader having gone away: not a failure of the command.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes `text` and a newline to standard output. A reader that has gone away is ignored (the
/// command's work is done or goes on; nobody reads the rest); any other failure to write is
/// reported and ends the process, as a result nobody saw must not look like success.
fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    stdout_line(&serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Prints a line of text (a result: scripts read it).
pub fn line(text: &str) {
    stdout_line(text);
}

/// Prints a note for the person at the terminal on standard error, where it never mixes with a
/// result or a secret.
pub fn note(text: &str) {
    eprintln!("{text}");
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
    stdout_line(&table.to_string());
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

/// Prints the completion script for `shell`.
pub fn print_completions(shell: crate::cli::ShellArg) -> anyhow::Result<()> {
    use clap::CommandFactory;
    let shell: clap_complete::Shell = shell
        .as_str()
        .parse()
        .map_err(|e: String| anyhow::anyhow!("completions: {e}"))?;
    let mut script = Vec::new();
    clap_complete::generate(
        shell,
        &mut crate::cli::Cli::command(),
        "tollgate",
        &mut script,
    );
    write_all(&script)
}

/// Prints the manual page (roff): the commands, global flags and subcommands.
pub fn print_man() -> anyhow::Result<()> {
    use clap::CommandFactory;
    let mut page = Vec::new();
    clap_mangen::Man::new(crate::cli::Cli::command()).render(&mut page)?;
    write_all(&page)
}

fn write_all(bytes: &[u8]) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(anyhow::Error::from)
}
