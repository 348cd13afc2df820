//! `parse_reading` on arbitrary UTF-8: it never panics, every count it accepts is at most
//! `i64::MAX`, and printing an accepted count (plainly and grouped by commas) reads back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::reading::{MAX_READING, parse_reading};

fuzz_target!(|text: &str| {
    if let Ok(n) = parse_reading(text) {
        assert!(n <= MAX_READING, "`{text}` read as {n}, above the maximum");
        assert_eq!(parse_reading(&n.to_string()), Ok(n), "`{text}` read as {n}");
        assert_eq!(parse_reading(&grouped(n)), Ok(n), "`{text}` read as {n}");
    }
});

/// `n` with commas between groups of three digits.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
