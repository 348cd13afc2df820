//! `tollgate estimate`: counts the tokens of a text with the model's BPE vocabulary — the same
//! code the gateway uses when a stream carries no usage.

use std::io::{IsTerminal, Read};
use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use tollgate_core::tokenize::Vocabulary;

use crate::cli::EstimateArgs;
use crate::output;

/// What `estimate --json` prints.
#[derive(Debug, Serialize)]
struct Estimate {
    tokens: usize,
    vocabulary: &'static str,
    model: Option<String>,
    characters: usize,
    bytes: usize,
}

/// Reads the text to count: a file, or standard input for `-` or when input is piped.
pub fn read_text(file: Option<&Path>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    match file {
        Some(path) if path.as_os_str() != "-" => {
            bytes =
                std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        }
        _ => {
            let stdin = std::io::stdin();
            if file.is_none() && stdin.is_terminal() {
                bail!("give a FILE, `-`, or pipe the text to standard input");
            }
            stdin
                .lock()
                .read_to_end(&mut bytes)
                .context("cannot read standard input")?;
        }
    }
    let shown = file.map_or_else(|| "standard input".to_owned(), |p| p.display().to_string());
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{shown} is not UTF-8 text (invalid byte at {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The vocabulary for `--vocabulary` or `--model`.
pub fn vocabulary(model: Option<&str>, name: Option<&str>) -> anyhow::Result<Vocabulary> {
    match name {
        Some(n) => Vocabulary::parse(n)
            .with_context(|| format!("--vocabulary `{n}` is not o200k_base or cl100k_base")),
        None => Ok(Vocabulary::for_model(model.unwrap_or(""))),
    }
}

/// `tollgate estimate`.
pub fn run(args: &EstimateArgs) -> anyhow::Result<()> {
    let vocab = vocabulary(args.model.as_deref(), args.vocabulary.map(|v| v.as_str()))?;
    let text = read_text(args.file.as_deref())?;
    let estimate = Estimate {
        tokens: vocab.count(&text),
        vocabulary: vocab.name(),
        model: args.model.clone(),
        characters: text.chars().count(),
        bytes: text.len(),
    };
    if args.json {
        output::json(&estimate)
    } else {
        output::line(&format!(
            "{} tokens ({}{}; {} characters)",
            estimate.tokens,
            estimate.vocabulary,
            estimate
                .model
                .as_deref()
                .map(|m| format!(" for {m}"))
                .unwrap_or_default(),
            estimate.characters
        ));
        Ok(())
    }
}
