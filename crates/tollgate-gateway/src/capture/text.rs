//! The text kept for the tokenizer fallback: prompt and answer text, capped.

/// Most prompt or answer text kept for the tokenizer fallback, in bytes.
pub(super) const TEXT_CAP: usize = 1 << 20;

/// Text gathered for the tokenizer, cut at [`TEXT_CAP`] on a character boundary.
#[derive(Default)]
pub(super) struct CappedText {
    pub(super) text: String,
    pub(super) full: bool,
}

impl CappedText {
    /// Appends text that continues what is there (stream deltas).
    pub(super) fn push(&mut self, piece: &str) {
        if self.full {
            return;
        }
        let room = TEXT_CAP.saturating_sub(self.text.len());
        if piece.len() <= room {
            self.text.push_str(piece);
            return;
        }
        let mut cut = room;
        while !piece.is_char_boundary(cut) {
            cut -= 1;
        }
        self.text.push_str(piece.get(..cut).unwrap_or_default());
        self.full = true;
    }

    /// Appends a separate piece of text (one message of a prompt).
    pub(super) fn push_piece(&mut self, piece: &str) {
        if piece.is_empty() {
            return;
        }
        if !self.text.is_empty() {
            self.push("\n");
        }
        self.push(piece);
    }
}
