//! The tokenizer vocabularies, loaded off the request path. Loading one takes hundreds of
//! milliseconds (it is parsed from the compiled-in file), so the gateway loads the ones its
//! routes need on the blocking pool at start and whenever the routes change; a call never waits
//! for a load (the limits admission estimates by length until then, and usage estimates are
//! counted after the response, on the blocking pool).

use std::sync::atomic::{AtomicBool, Ordering};

use tollgate_core::RouteKind;
use tollgate_core::tokenize::Vocabulary;

/// The vocabulary a route kind's calls are most likely counted with: OpenAI's current models
/// use `o200k_base`, and Anthropic's models are approximated with `cl100k_base`. A call naming a
/// model of the other vocabulary has it loaded in the background on first need.
pub(crate) fn for_kind(kind: RouteKind) -> Option<Vocabulary> {
    match kind {
        RouteKind::Http => None,
        RouteKind::Openai | RouteKind::Llm => Some(Vocabulary::O200kBase),
        RouteKind::Anthropic => Some(Vocabulary::Cl100kBase),
    }
}

/// Starts loading each vocabulary that is neither loaded nor loading, on the blocking pool, and
/// returns at once. Outside a runtime nothing is started (the first count then loads it).
pub(crate) fn preload(vocabularies: impl IntoIterator<Item = Vocabulary>) {
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    for vocabulary in vocabularies {
        if vocabulary.is_loaded() || loading(vocabulary).swap(true, Ordering::AcqRel) {
            continue;
        }
        // The task ends by itself once the vocabulary is parsed; it writes nothing but the
        // vocabulary's own cell, so nothing at shutdown waits for it.
        runtime.spawn_blocking(move || {
            let started = std::time::Instant::now();
            if vocabulary.load() {
                tracing::debug!(
                    vocabulary = vocabulary.name(),
                    ms = started.elapsed().as_millis(),
                    "tokenizer vocabulary loaded"
                );
            } else {
                tracing::error!(
                    vocabulary = vocabulary.name(),
                    "tokenizer vocabulary cannot be loaded; token estimates use the length of the text"
                );
            }
        });
    }
}

fn loading(vocabulary: Vocabulary) -> &'static AtomicBool {
    static O200K: AtomicBool = AtomicBool::new(false);
    static CL100K: AtomicBool = AtomicBool::new(false);
    match vocabulary {
        Vocabulary::O200kBase => &O200K,
        Vocabulary::Cl100kBase => &CL100K,
    }
}

/// Tokens of `text` for the limits admission, which must not wait: counted with the model's
/// vocabulary once it is loaded; until then (the first moments after start, or the first call
/// naming a model of a vocabulary no route needed) the load starts in the background and the
/// text's length in bytes over four stands in, the usual rule of thumb for English text (it
/// counts fewer tokens than the vocabulary would for other scripts; the reservation is settled to
/// the call's real use when the call ends either way).
pub(crate) fn admission_tokens(model: Option<&str>, text: &str) -> usize {
    let vocabulary = Vocabulary::for_model(model.unwrap_or(""));
    match vocabulary.count_if_loaded(text) {
        Some(tokens) => tokens,
        None => {
            preload([vocabulary]);
            text.len().div_ceil(4)
        }
    }
}
