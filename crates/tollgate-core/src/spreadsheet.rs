//! Text cells for exports that people open in spreadsheets (OWASP "CSV injection").

use std::borrow::Cow;

/// First characters that make a spreadsheet read a cell as a formula (or hide one behind a control
/// character): `=`, `+`, `-`, `@`, TAB and CR.
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A text cell that a spreadsheet shows as text: a value starting with a formula character gets a
/// leading `'`, every other value is returned unchanged (borrowed).
///
/// Only for text; numbers are written as numbers (a negative amount is not a formula).
pub fn text_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_starts_get_a_quote() {
        for cell in [
            "=cmd|' /C calc'!A0",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\t=1",
            "\r=1",
        ] {
            assert_eq!(text_cell(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn plain_text_is_borrowed_unchanged() {
        for cell in ["", "prod key", "a=b", "1-2", "'quoted", " =1"] {
            assert!(
                matches!(text_cell(cell), Cow::Borrowed(c) if c == cell),
                "{cell:?}"
            );
        }
    }
}
