//! Token counting with the model's BPE vocabulary, used by the gateway's fallback and `tollgate estimate`.

use std::sync::OnceLock;

use tiktoken_rs::CoreBPE;

/// A BPE vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vocabulary {
    /// GPT-4o, GPT-4.1, GPT-5, o-series.
    O200kBase,
    /// GPT-4, GPT-3.5, text-embedding-3; also the approximation used for other vendors' models.
    Cl100kBase,
}

impl Vocabulary {
    /// The vocabulary for a model name; unknown models use `o200k_base`, the current default.
    pub fn for_model(model: &str) -> Self {
        let m = model.to_ascii_lowercase();
        let m = m.rsplit('/').next().unwrap_or(&m);
        let cl100k = ["gpt-4-", "gpt-3.5", "gpt-35", "text-embedding-", "claude"];
        if m == "gpt-4" || cl100k.iter().any(|p| m.starts_with(p)) && !m.starts_with("gpt-4o") {
            Self::Cl100kBase
        } else {
            Self::O200kBase
        }
    }

    /// The vocabulary's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }

    /// Parses a vocabulary name.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "o200k_base" => Some(Self::O200kBase),
            "cl100k_base" => Some(Self::Cl100kBase),
            _ => None,
        }
    }

    /// Every vocabulary.
    pub const ALL: [Self; 2] = [Self::O200kBase, Self::Cl100kBase];

    /// Counts the tokens of `text` (special tokens treated as text). The vocabulary loads on
    /// first use, which takes hundreds of milliseconds: the gateway loads the ones its routes
    /// need in the background ([`Vocabulary::load`]) and uses [`Vocabulary::count_if_loaded`]
    /// where it must not wait.
    pub fn count(self, text: &str) -> usize {
        match self.bpe() {
            Some(bpe) => bpe.encode_ordinary(text).len(),
            // The vocabularies are compiled in; failing to load them would be a build defect.
            // Fall back to the usual four-characters-a-token rule rather than refuse to count.
            None => text.chars().count().div_ceil(4),
        }
    }

    /// Counts the tokens of `text` if the vocabulary is loaded already; `None` otherwise (never
    /// waits for a load, even one in progress on another thread).
    pub fn count_if_loaded(self, text: &str) -> Option<usize> {
        let loaded = self.cell().get()?;
        Some(match loaded {
            Some(bpe) => bpe.encode_ordinary(text).len(),
            None => text.chars().count().div_ceil(4),
        })
    }

    /// Whether the vocabulary is loaded (a later count does not wait).
    pub fn is_loaded(self) -> bool {
        self.cell().get().is_some()
    }

    /// Loads the vocabulary now if it is not loaded yet (blocking: hundreds of milliseconds);
    /// returns whether it loaded.
    pub fn load(self) -> bool {
        self.bpe().is_some()
    }

    fn cell(self) -> &'static OnceLock<Option<CoreBPE>> {
        static O200K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        static CL100K: OnceLock<Option<CoreBPE>> = OnceLock::new();
        match self {
            Self::O200kBase => &O200K,
            Self::Cl100kBase => &CL100K,
        }
    }

    fn bpe(self) -> Option<&'static CoreBPE> {
        self.cell()
            .get_or_init(|| match self {
                Self::O200kBase => tiktoken_rs::o200k_base().ok(),
                Self::Cl100kBase => tiktoken_rs::cl100k_base().ok(),
            })
            .as_ref()
    }
}

/// Counts `text` with the vocabulary of `model`.
pub fn count_tokens(model: Option<&str>, text: &str) -> usize {
    Vocabulary::for_model(model.unwrap_or("")).count(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_map_to_their_vocabulary() {
        assert_eq!(Vocabulary::for_model("gpt-4o-mini"), Vocabulary::O200kBase);
        assert_eq!(Vocabulary::for_model("gpt-4"), Vocabulary::Cl100kBase);
        assert_eq!(Vocabulary::for_model("gpt-4-turbo"), Vocabulary::Cl100kBase);
        assert_eq!(
            Vocabulary::for_model("gpt-3.5-turbo"),
            Vocabulary::Cl100kBase
        );
        assert_eq!(Vocabulary::for_model("openai/gpt-5"), Vocabulary::O200kBase);
        assert_eq!(
            Vocabulary::for_model("claude-sonnet-4"),
            Vocabulary::Cl100kBase
        );
    }

    #[test]
    fn counts_match_the_published_vocabularies() {
        // Reference counts from OpenAI's tiktoken for these exact strings.
        assert_eq!(Vocabulary::Cl100kBase.count("hello world"), 2);
        assert_eq!(Vocabulary::O200kBase.count("hello world"), 2);
        assert_eq!(Vocabulary::Cl100kBase.count(""), 0);
        assert!(Vocabulary::O200kBase.count("你好，世界") >= 2);
    }

    #[test]
    fn a_loaded_vocabulary_counts_without_waiting() {
        assert!(Vocabulary::Cl100kBase.load());
        assert!(Vocabulary::Cl100kBase.is_loaded());
        assert_eq!(
            Vocabulary::Cl100kBase.count_if_loaded("hello world"),
            Some(Vocabulary::Cl100kBase.count("hello world"))
        );
    }
}
