//! Token readings as people paste them from a tool's usage screen: `350,000`, `350K`, `1.2M`,
//! `35万`, `３５０，０００`, `Tokens: 350K`. See [`parse_reading`] for every accepted form.

use std::fmt;

/// The largest reading accepted: the store keeps counts as signed 64-bit integers.
pub const MAX_READING: u64 = i64::MAX.unsigned_abs();

/// Examples of accepted readings, for help texts and error hints.
pub const READING_EXAMPLES: [&str; 12] = [
    "350000",
    "350,000",
    "350 000",
    "350_000",
    "350K",
    "1.2M",
    "2B",
    "35万",
    "3.5亿",
    "350,000 tokens used",
    "Tokens: 350K",
    "３５０，０００",
];

/// Reads a token count from what people paste.
///
/// Accepted:
/// - plain digits: `350000`, also with leading zeros (`007`);
/// - digits grouped by threes with one kind of separator: `350,000`, `350_000`, `350 000` (any
///   space: ordinary, no-break, thin, narrow, ideographic); the first group has 1–3 digits and
///   every other group exactly 3;
/// - a multiplier, directly after the number or after spaces, with or without a decimal part:
///   `K`/`k`/`thousand` (10³), `M`/`m`/`million` (10⁶; `m` is never "milli"), `B`/`b`/`billion`
///   (10⁹), `千` (10³), `万`/`萬` (10⁴), `亿`/`億` (10⁸), and the compounds `十万`, `百万`,
///   `千万`, `十亿`, `百亿`, `千亿`, `万亿` (a multiplier product, each unit at most once, smaller
///   before larger; `十` and `百` alone are refused): `350K`, `1.2M`, `2B`, `35万`, `3.5亿`,
///   `1千万`;
/// - words around the one number, which are ignored: `350,000 tokens used`, `Tokens: 350K`;
/// - full-width digits, letters and punctuation (`３５０，０００`, `３５万`, `３５０Ｋ`), and
///   surrounding whitespace; zero-width spaces are dropped.
///
/// Refused, with a [`ReadingError`] naming the input:
/// - nothing, or no number (`tokens`), or `NaN`/`inf`;
/// - more than one number (`350 of 1000`, `350K / 1M`);
/// - a sign (`-350`, `+350K`: a reading is the tool's running total, not an amount to add);
/// - separators that do not group by threes, or mix kinds (`1,23,4`, `12,34,567`, `1.000.000`,
///   `1 000,5`);
/// - a decimal point without a multiplier (`350.0`, `1.000`: in some languages that means one
///   thousand), and a decimal part that leaves a fraction of a token (`1.2345K` is 1234.5);
/// - exponents (`1e6`), percentages (`35%`), currency (`$350`), units not listed above (`2G`,
///   `350KB`, `5 mil`), and text stuck to the number (`abc350`, `350tokens`);
/// - digits other than ASCII and full-width ones (`٣٥٠`, `²`);
/// - more than [`MAX_READING`] (`i64::MAX`).
pub fn parse_reading(text: &str) -> Result<u64, ReadingError> {
    let fail = |kind| Err(ReadingError::new(text, kind));
    let chars: Vec<char> = text.chars().filter_map(normalize).collect();
    let start = chars.iter().position(|c| *c != ' ').unwrap_or(chars.len());
    let end = chars
        .iter()
        .rposition(|c| *c != ' ')
        .map_or(start, |i| i + 1);
    let s = &chars[start..end];
    if s.is_empty() {
        return fail(ReadingErrorKind::Empty);
    }

    let Some(first) = s.iter().position(char::is_ascii_digit) else {
        if mentions_not_a_number(s) {
            return fail(ReadingErrorKind::NotANumber);
        }
        if let Some(c) = s.iter().find(|c| c.is_numeric()) {
            return fail(ReadingErrorKind::UnsupportedDigit(*c));
        }
        return fail(ReadingErrorKind::NoNumber);
    };
    let number = scan_number(s, first);
    let (multiplier, after) = match scan_multiplier(s, number.end) {
        Ok(found) => found,
        Err(kind) => return fail(kind),
    };
    if multiplier.is_some()
        && let Some(unit) = doubled_unit(s, number.end, after)
    {
        return fail(ReadingErrorKind::UnknownUnit(unit));
    }
    let before = &s[..first];
    let rest = &s[after..];

    if rest.iter().any(char::is_ascii_digit) {
        return fail(ReadingErrorKind::SeveralNumbers);
    }
    if let Some(c) = before.iter().chain(rest).find(|c| c.is_numeric()) {
        return fail(ReadingErrorKind::UnsupportedDigit(*c));
    }
    if mentions_not_a_number(before) || mentions_not_a_number(rest) {
        return fail(ReadingErrorKind::NotANumber);
    }
    if number.exponent {
        return fail(ReadingErrorKind::Exponent);
    }
    match before.iter().rev().find(|c| **c != ' ') {
        Some('-') => return fail(ReadingErrorKind::Negative),
        Some('+') => return fail(ReadingErrorKind::PlusSign),
        Some('$' | '€' | '£' | '¥') => return fail(ReadingErrorKind::Currency),
        Some('.') if before.last() == Some(&'.') => {
            return fail(ReadingErrorKind::AmbiguousSeparators);
        }
        _ => {}
    }
    // Only Latin letters: Chinese and Japanese put no space between words and numbers.
    if before.last().is_some_and(char::is_ascii_alphabetic) {
        let word: String = before
            .iter()
            .rev()
            .take_while(|c| c.is_ascii_alphabetic())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        return fail(ReadingErrorKind::TextAgainstNumber(word));
    }
    if rest.iter().find(|c| **c != ' ') == Some(&'%') {
        return fail(ReadingErrorKind::Percentage);
    }

    let Some(parts) = split_number(&s[first..number.end]) else {
        return fail(ReadingErrorKind::AmbiguousSeparators);
    };
    value(&parts, multiplier).or_else(fail)
}

/// Why a pasted reading was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadingError {
    input: String,
    kind: ReadingErrorKind,
}

/// The reasons a reading is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadingErrorKind {
    /// Nothing but whitespace.
    Empty,
    /// No digits at all.
    NoNumber,
    /// `NaN`, `inf`, `∞`.
    NotANumber,
    /// More than one number.
    SeveralNumbers,
    /// A minus sign before the number.
    Negative,
    /// A plus sign before the number.
    PlusSign,
    /// `1e6`.
    Exponent,
    /// Separators that do not group digits by threes, or of mixed kinds.
    AmbiguousSeparators,
    /// A decimal point without a multiplier.
    DecimalWithoutUnit,
    /// A decimal multiple that is not a whole number of tokens; `exact` is its value.
    NotWhole {
        /// The exact value, e.g. `1234.5`.
        exact: String,
    },
    /// More than [`MAX_READING`].
    TooLarge,
    /// A unit that is not a known multiplier.
    UnknownUnit(String),
    /// Letters stuck to the number.
    TextAgainstNumber(String),
    /// `35%`.
    Percentage,
    /// `$350`.
    Currency,
    /// A digit that is neither ASCII nor full-width.
    UnsupportedDigit(char),
}

/// How much of the input an error message quotes.
const QUOTED_CHARS: usize = 80;

impl ReadingError {
    fn new(input: &str, kind: ReadingErrorKind) -> Self {
        let trimmed = input.trim();
        let shown = if trimmed.is_empty() { input } else { trimmed };
        let mut quoted: String = shown
            .chars()
            .take(QUOTED_CHARS)
            .flat_map(|c| {
                let escaped: Vec<char> = if c.is_control() {
                    c.escape_debug().collect()
                } else {
                    vec![c]
                };
                escaped
            })
            .collect();
        if shown.chars().nth(QUOTED_CHARS).is_some() {
            quoted.push('…');
        }
        Self {
            input: quoted,
            kind,
        }
    }

    /// The input as quoted in the message (trimmed, at most 80 characters, controls escaped).
    pub fn input(&self) -> &str {
        &self.input
    }

    /// Why it was refused.
    pub fn kind(&self) -> &ReadingErrorKind {
        &self.kind
    }
}

impl fmt::Display for ReadingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` is not a token count: {}", self.input, self.kind)
    }
}

impl std::error::Error for ReadingError {}

impl fmt::Display for ReadingErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty; type a number such as 350000, 350K or 1.2M"),
            Self::NoNumber => {
                f.write_str("there is no number in it; type one such as 350000, 350K or 1.2M")
            }
            Self::NotANumber => f.write_str("NaN and infinity are not token counts"),
            Self::SeveralNumbers => {
                f.write_str("it holds more than one number; paste only the total")
            }
            Self::Negative => f.write_str("a token count cannot be negative"),
            Self::PlusSign => f.write_str(
                "a reading is the tool's running total, not an amount to add; leave out the `+`",
            ),
            Self::Exponent => {
                f.write_str("exponents are not accepted; write 1000000 or 1M instead of 1e6")
            }
            Self::AmbiguousSeparators => f.write_str(
                "the separators are ambiguous; group digits by threes with one kind of \
                 separator (350,000 or 350 000 or 350_000), and use a point only before a unit \
                 (1.2M)",
            ),
            Self::DecimalWithoutUnit => f.write_str(
                "a decimal point needs a unit such as K or M (1.2M); without one, `1.000` could \
                 mean one or one thousand",
            ),
            Self::NotWhole { exact } => {
                write!(f, "that is {exact} tokens, not a whole number of tokens")
            }
            Self::TooLarge => write!(f, "it is larger than the maximum of {MAX_READING}"),
            Self::UnknownUnit(unit) => write!(
                f,
                "`{unit}` is not a known unit; use K, M, B, 千, 万 or 亿 (e.g. 350K, 1.2M, 35万)"
            ),
            Self::TextAgainstNumber(text) => write!(
                f,
                "`{text}` is stuck to the number; separate words from the number with a space"
            ),
            Self::Percentage => f.write_str("a percentage is not a token count"),
            Self::Currency => f.write_str("an amount of money is not a token count"),
            Self::UnsupportedDigit(c) => write!(
                f,
                "`{c}` is not a digit this reader understands; use 0–9 or full-width ０–９"
            ),
        }
    }
}

/// Folds full-width forms to ASCII and every space to `' '`; drops zero-width characters.
fn normalize(c: char) -> Option<char> {
    match c {
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => None,
        '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(c) - 0xFEE0),
        '\u{FFE5}' => Some('¥'),
        '\u{FFE0}' => Some('¢'),
        '\u{FFE1}' => Some('£'),
        '\u{2212}' => Some('-'),
        c if c.is_whitespace() => Some(' '),
        c => Some(c),
    }
}

fn mentions_not_a_number(s: &[char]) -> bool {
    if s.contains(&'∞') {
        return true;
    }
    let text: String = s.iter().collect::<String>().to_ascii_lowercase();
    text.split(|c: char| !c.is_alphanumeric())
        .any(|w| matches!(w, "nan" | "inf" | "infinity"))
}

/// Where a number starting at a digit ends.
struct ScannedNumber {
    /// One past its last character.
    end: usize,
    /// Whether an exponent (`e6`, `E-3`) was part of it.
    exponent: bool,
}

/// Takes digits, and separators (`,`, `_`, ` `, `.`) between digits, and an exponent.
fn scan_number(s: &[char], start: usize) -> ScannedNumber {
    let digit_at = |i: usize| s.get(i).is_some_and(char::is_ascii_digit);
    let mut i = start;
    let mut exponent = false;
    while i < s.len() {
        match s[i] {
            c if c.is_ascii_digit() => i += 1,
            ',' | '_' | ' ' | '.' if digit_at(i + 1) => i += 1,
            'e' | 'E' if digit_at(i + 1) => {
                exponent = true;
                i += 1;
            }
            'e' | 'E' if matches!(s.get(i + 1), Some('+' | '-')) && digit_at(i + 2) => {
                exponent = true;
                i += 2;
            }
            _ => break,
        }
    }
    ScannedNumber { end: i, exponent }
}

/// A multiplier: its power of ten.
type Power = u32;

/// Reads an optional multiplier at `from` (after optional spaces); returns its power of ten and
/// where the rest of the text starts.
fn scan_multiplier(s: &[char], from: usize) -> Result<(Option<Power>, usize), ReadingErrorKind> {
    let at = s[from..]
        .iter()
        .position(|c| *c != ' ')
        .map_or(s.len(), |p| from + p);
    let word_len = s[at..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    if word_len > 0 {
        let word: String = s[at..at + word_len].iter().collect();
        let power = match word.to_ascii_lowercase().as_str() {
            "k" | "thousand" => Some(3),
            "m" | "million" => Some(6),
            "b" | "billion" => Some(9),
            _ => None,
        };
        return match power {
            Some(p) => Ok((Some(p), at + word_len)),
            // Stuck to the number, or a lone letter, or a unit-like word: never silently ignored.
            None if at == from || word_len == 1 || looks_like_a_unit(&word) => {
                if matches!(word.as_str(), "e" | "E") {
                    Err(ReadingErrorKind::Exponent)
                } else {
                    Err(ReadingErrorKind::UnknownUnit(word))
                }
            }
            None => Ok((None, from)),
        };
    }
    let mut i = at;
    let mut power = 0;
    if let Some(p) = s.get(i).and_then(|c| match c {
        '十' => Some(1),
        '百' => Some(2),
        '千' => Some(3),
        _ => None,
    }) {
        power += p;
        i += 1;
    }
    if matches!(s.get(i), Some('万' | '萬')) {
        power += 4;
        i += 1;
    }
    if matches!(s.get(i), Some('亿' | '億')) {
        power += 8;
        i += 1;
    }
    if i == at {
        return Ok((None, from));
    }
    if let Some(c) = s.get(i).filter(|c| is_cjk_multiplier(**c)) {
        let unit: String = s[at..i].iter().chain(std::iter::once(c)).collect();
        return Err(ReadingErrorKind::UnknownUnit(unit));
    }
    if power < 3 {
        // 十 and 百 alone are not how anyone writes a token count.
        let unit: String = s[at..i].iter().collect();
        return Err(ReadingErrorKind::UnknownUnit(unit));
    }
    Ok((Some(power), i))
}

/// A second unit right after a multiplier (`35K万`, `35万K`): the multiplier and that unit, as
/// written.
fn doubled_unit(s: &[char], number_end: usize, after: usize) -> Option<String> {
    let at = s[after..]
        .iter()
        .position(|c| *c != ' ')
        .map_or(s.len(), |p| after + p);
    let next = *s.get(at)?;
    let word_len = s[at..]
        .iter()
        .take_while(|c| c.is_ascii_alphabetic())
        .count();
    let doubled = is_cjk_multiplier(next)
        || word_len == 1
        || (word_len > 0 && {
            let word: String = s[at..at + word_len].iter().collect();
            matches!(
                word.to_ascii_lowercase().as_str(),
                "thousand" | "million" | "billion"
            ) || looks_like_a_unit(&word)
        });
    doubled.then(|| {
        let start = s[number_end..after]
            .iter()
            .position(|c| *c != ' ')
            .map_or(after, |p| number_end + p);
        let end = if is_cjk_multiplier(next) {
            at + 1
        } else {
            at + word_len
        };
        s[start..end].iter().collect()
    })
}

fn is_cjk_multiplier(c: char) -> bool {
    matches!(c, '十' | '百' | '千' | '万' | '萬' | '亿' | '億')
}

/// Words that read as a unit nobody should have ignored.
fn looks_like_a_unit(word: &str) -> bool {
    matches!(
        word.to_ascii_lowercase().as_str(),
        "kb" | "mb"
            | "gb"
            | "tb"
            | "mil"
            | "mill"
            | "mio"
            | "mln"
            | "mn"
            | "bn"
            | "bil"
            | "mrd"
            | "tn"
            | "thousands"
            | "millions"
            | "billions"
            | "trillion"
            | "trillions"
            | "lakh"
            | "lakhs"
            | "crore"
            | "crores"
            | "hundred"
            | "hundreds"
    )
}

/// The digits of a number: its integer part (separators removed) and decimal part.
struct NumberParts {
    integer: String,
    /// `None` without a decimal point.
    fraction: Option<String>,
}

/// Splits `1,234.5` into `1234` and `5`; `None` if the separators are ambiguous.
fn split_number(number: &[char]) -> Option<NumberParts> {
    let text: String = number.iter().collect();
    let mut halves = text.split('.');
    let integer = halves.next().unwrap_or_default();
    let fraction = halves.next();
    if halves.next().is_some() || fraction.is_some_and(|f| !f.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let mut separators = integer.chars().filter(|c| !c.is_ascii_digit());
    let separator = separators.next();
    if let Some(first) = separator {
        if separators.any(|c| c != first) {
            return None;
        }
        let mut groups = integer.split(first);
        let lead = groups.next().unwrap_or_default();
        if !(1..=3).contains(&lead.len()) || groups.any(|g| g.len() != 3) {
            return None;
        }
    }
    Some(NumberParts {
        integer: integer.chars().filter(char::is_ascii_digit).collect(),
        fraction: fraction.map(str::to_owned),
    })
}

/// The whole number of tokens `parts × 10^multiplier` stands for.
fn value(parts: &NumberParts, multiplier: Option<Power>) -> Result<u64, ReadingErrorKind> {
    let fraction = match (&parts.fraction, multiplier) {
        (Some(_), None) => return Err(ReadingErrorKind::DecimalWithoutUnit),
        (Some(f), Some(_)) => f.trim_end_matches('0'),
        (None, _) => "",
    };
    let power = usize::try_from(multiplier.unwrap_or(0)).unwrap_or(usize::MAX);
    if fraction.len() > power {
        let (whole, part) = fraction.split_at(power);
        let mut exact = format!("{}{whole}", parts.integer)
            .trim_start_matches('0')
            .to_owned();
        if exact.is_empty() {
            exact.push('0');
        }
        exact.push('.');
        exact.push_str(part);
        if exact.chars().count() > QUOTED_CHARS {
            exact = exact.chars().take(QUOTED_CHARS).collect();
            exact.push('…');
        }
        return Err(ReadingErrorKind::NotWhole { exact });
    }
    let digits = format!(
        "{}{fraction}{}",
        parts.integer,
        "0".repeat(power - fraction.len())
    );
    let digits = digits.trim_start_matches('0');
    if digits.len() > 19 {
        return Err(ReadingErrorKind::TooLarge);
    }
    match digits.parse::<u64>() {
        Ok(n) if n <= MAX_READING => Ok(n),
        Ok(_) => Err(ReadingErrorKind::TooLarge),
        Err(_) if digits.is_empty() => Ok(0),
        Err(_) => Err(ReadingErrorKind::TooLarge),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn ok(text: &str, expected: u64) {
        assert_eq!(parse_reading(text), Ok(expected), "parsing `{text}`");
    }

    fn refused(text: &str, kind: ReadingErrorKind) {
        match parse_reading(text) {
            Err(e) => assert_eq!(e.kind(), &kind, "parsing `{text}`: {e}"),
            Ok(v) => panic!("`{text}` was accepted as {v}, expected {kind:?}"),
        }
    }

    #[test]
    fn plain_and_grouped_digits() {
        ok("350000", 350_000);
        ok("0", 0);
        ok("007", 7);
        ok("350,000", 350_000);
        ok("1,234,567", 1_234_567);
        ok("350 000", 350_000);
        ok("350\u{A0}000", 350_000);
        ok("350\u{2009}000", 350_000);
        ok("350\u{202F}000", 350_000);
        ok("350\u{3000}000", 350_000);
        ok("350_000", 350_000);
        ok("1_000_000", 1_000_000);
        ok("350\u{200B}000", 350_000);
        ok("  350000 \n", 350_000);
        ok("\t350,000\r\n", 350_000);
    }

    #[test]
    fn latin_multipliers() {
        ok("350K", 350_000);
        ok("350k", 350_000);
        ok("350 K", 350_000);
        ok("1.2M", 1_200_000);
        ok("1.5m", 1_500_000);
        ok("2B", 2_000_000_000);
        ok("2b", 2_000_000_000);
        ok("1.25B", 1_250_000_000);
        ok("0.5K", 500);
        ok("1.200M", 1_200_000);
        ok("1,234.5K", 1_234_500);
        ok("350 thousand", 350_000);
        ok("1.2 million tokens", 1_200_000);
        ok("3 Billion", 3_000_000_000);
        ok("350 000K", 350_000_000);
    }

    #[test]
    fn cjk_multipliers() {
        ok("35万", 350_000);
        ok("35萬", 350_000);
        ok("3.5亿", 350_000_000);
        ok("3.5億", 350_000_000);
        ok("1千", 1_000);
        ok("1千万", 10_000_000);
        ok("1.5千万", 15_000_000);
        ok("3十万", 300_000);
        ok("2百万", 2_000_000);
        ok("1万亿", 1_000_000_000_000);
        ok("35 万", 350_000);
        ok("35万个token", 350_000);
        ok("已用 35万 tokens", 350_000);
        ok("已用35万tokens", 350_000);
        refused("35K万", ReadingErrorKind::UnknownUnit("K万".into()));
        refused("35万K", ReadingErrorKind::UnknownUnit("万K".into()));
        refused(
            "35万 million",
            ReadingErrorKind::UnknownUnit("万 million".into()),
        );
    }

    #[test]
    fn full_width_forms() {
        ok("３５０，０００", 350_000);
        ok("３５万", 350_000);
        ok("３５０Ｋ", 350_000);
        ok("１．２Ｍ", 1_200_000);
        ok("３５０＿０００", 350_000);
        ok("Ｔｏｋｅｎｓ：３５０Ｋ", 350_000);
    }

    #[test]
    fn words_around_the_number() {
        ok("350,000 tokens used", 350_000);
        ok("Tokens: 350K", 350_000);
        ok("Tokens:350K", 350_000);
        ok("used 350,000.", 350_000);
        ok("(350K)", 350_000);
        ok("Total usage — 1.2M tokens this month", 1_200_000);
    }

    #[test]
    fn empty_and_garbage() {
        refused("", ReadingErrorKind::Empty);
        refused("   \u{3000}", ReadingErrorKind::Empty);
        refused("tokens", ReadingErrorKind::NoNumber);
        refused("abc", ReadingErrorKind::NoNumber);
        refused("K", ReadingErrorKind::NoNumber);
        refused("abc350", ReadingErrorKind::TextAgainstNumber("abc".into()));
        refused("350tokens", ReadingErrorKind::UnknownUnit("tokens".into()));
        refused("0x1F", ReadingErrorKind::UnknownUnit("x".into()));
        refused("350KB", ReadingErrorKind::UnknownUnit("KB".into()));
        refused("350KK", ReadingErrorKind::UnknownUnit("KK".into()));
        refused("2G", ReadingErrorKind::UnknownUnit("G".into()));
        refused("2 G", ReadingErrorKind::UnknownUnit("G".into()));
        refused("2T", ReadingErrorKind::UnknownUnit("T".into()));
        refused("5 mil", ReadingErrorKind::UnknownUnit("mil".into()));
        refused("35 lakh", ReadingErrorKind::UnknownUnit("lakh".into()));
        refused("3百", ReadingErrorKind::UnknownUnit("百".into()));
        refused("3亿万", ReadingErrorKind::UnknownUnit("亿万".into()));
        refused("35%", ReadingErrorKind::Percentage);
        refused("35 %", ReadingErrorKind::Percentage);
        refused("$350", ReadingErrorKind::Currency);
        refused("€ 350", ReadingErrorKind::Currency);
        refused("٣٥٠", ReadingErrorKind::UnsupportedDigit('٣'));
        refused("350²", ReadingErrorKind::UnsupportedDigit('²'));
    }

    #[test]
    fn signs_and_several_numbers() {
        refused("-350", ReadingErrorKind::Negative);
        refused("−350K", ReadingErrorKind::Negative);
        refused("－３５０", ReadingErrorKind::Negative);
        refused("- 350", ReadingErrorKind::Negative);
        refused("+350K", ReadingErrorKind::PlusSign);
        refused("350 of 1000", ReadingErrorKind::SeveralNumbers);
        refused("350K / 1M", ReadingErrorKind::SeveralNumbers);
        refused("GPT-4: 350K", ReadingErrorKind::SeveralNumbers);
        refused("350K5", ReadingErrorKind::SeveralNumbers);
        refused("1万2千", ReadingErrorKind::SeveralNumbers);
        refused("1'000", ReadingErrorKind::SeveralNumbers);
    }

    #[test]
    fn ambiguous_separators() {
        refused("1,23,4", ReadingErrorKind::AmbiguousSeparators);
        refused("12,34,567", ReadingErrorKind::AmbiguousSeparators);
        refused("350,00", ReadingErrorKind::AmbiguousSeparators);
        refused("1234,567", ReadingErrorKind::AmbiguousSeparators);
        refused("1.000.000", ReadingErrorKind::AmbiguousSeparators);
        refused("1.2.3M", ReadingErrorKind::AmbiguousSeparators);
        refused("1 000,5", ReadingErrorKind::AmbiguousSeparators);
        refused("1,000_000", ReadingErrorKind::AmbiguousSeparators);
        refused("1.234,5K", ReadingErrorKind::AmbiguousSeparators);
        refused("350 2024", ReadingErrorKind::AmbiguousSeparators);
        refused(".5M", ReadingErrorKind::AmbiguousSeparators);
    }

    #[test]
    fn decimals_must_be_whole_tokens() {
        refused("1.5", ReadingErrorKind::DecimalWithoutUnit);
        refused("350.0", ReadingErrorKind::DecimalWithoutUnit);
        refused("1.000", ReadingErrorKind::DecimalWithoutUnit);
        refused(
            "1.2345K",
            ReadingErrorKind::NotWhole {
                exact: "1234.5".into(),
            },
        );
        refused(
            "0.0001K",
            ReadingErrorKind::NotWhole {
                exact: "0.1".into(),
            },
        );
        refused(
            "1.23456万",
            ReadingErrorKind::NotWhole {
                exact: "12345.6".into(),
            },
        );
        ok("1.2345M", 1_234_500);
        ok("1.23400K", 1_234);
    }

    #[test]
    fn exponents_and_not_numbers() {
        refused("1e6", ReadingErrorKind::Exponent);
        refused("1E6", ReadingErrorKind::Exponent);
        refused("1.5e-3", ReadingErrorKind::Exponent);
        refused("2e+5", ReadingErrorKind::Exponent);
        refused("NaN", ReadingErrorKind::NotANumber);
        refused("inf", ReadingErrorKind::NotANumber);
        refused("-Infinity", ReadingErrorKind::NotANumber);
        refused("∞", ReadingErrorKind::NotANumber);
        refused("NaN 5", ReadingErrorKind::NotANumber);
    }

    #[test]
    fn overflow_beyond_i64_max() {
        ok("9223372036854775807", MAX_READING);
        ok("9,223,372,036,854,775,807", MAX_READING);
        refused("9223372036854775808", ReadingErrorKind::TooLarge);
        refused("18446744073709551616", ReadingErrorKind::TooLarge);
        refused(
            "99999999999999999999999999999999",
            ReadingErrorKind::TooLarge,
        );
        refused("9223372036854776K", ReadingErrorKind::TooLarge);
        refused("100000000000B", ReadingErrorKind::TooLarge);
        ok("9223372036B", 9_223_372_036_000_000_000);
        ok("0000000000000000000000000350", 350);
    }

    #[test]
    fn messages_quote_the_input() {
        let err = parse_reading("  1,23,4 ").unwrap_err();
        assert_eq!(err.input(), "1,23,4");
        let text = err.to_string();
        assert!(text.starts_with("`1,23,4` is not a token count"), "{text}");
        let text = parse_reading("1.2345K").unwrap_err().to_string();
        assert!(
            text.contains("`1.2345K`") && text.contains("1234.5"),
            "{text}"
        );
        let text = parse_reading("").unwrap_err().to_string();
        assert!(text.contains("``") && text.contains("empty"), "{text}");
        let text = parse_reading("a\nb").unwrap_err().to_string();
        assert!(text.contains("`a\\nb`"), "{text}");
        let long = "x".repeat(500);
        let text = parse_reading(&long).unwrap_err().to_string();
        assert!(text.contains('…') && text.len() < 300, "{text}");
        for example in READING_EXAMPLES {
            assert!(
                parse_reading(example).is_ok(),
                "example `{example}` is refused"
            );
        }
    }

    /// `n` with `sep` between groups of three digits.
    fn grouped(n: u64, sep: &str) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push_str(sep);
            }
            out.push(c);
        }
        out
    }

    fn full_width(text: &str) -> String {
        text.chars()
            .map(|c| match c {
                '!'..='~' => char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c),
                c => c,
            })
            .collect()
    }

    const MULTIPLIERS: [(&str, u64); 11] = [
        ("K", 1_000),
        ("k", 1_000),
        ("M", 1_000_000),
        ("m", 1_000_000),
        ("B", 1_000_000_000),
        ("b", 1_000_000_000),
        ("千", 1_000),
        ("万", 10_000),
        ("萬", 10_000),
        ("亿", 100_000_000),
        ("千万", 10_000_000),
    ];

    proptest! {
        #[test]
        fn formatted_numbers_round_trip(n in 0u64..=1_000_000_000_000_000) {
            for sep in [",", "_", " ", "\u{A0}", "\u{2009}", "\u{202F}", "，"] {
                let text = grouped(n, sep);
                prop_assert_eq!(parse_reading(&text), Ok(n), "{}", text);
            }
            let plain = n.to_string();
            prop_assert_eq!(parse_reading(&plain), Ok(n));
            prop_assert_eq!(parse_reading(&full_width(&plain)), Ok(n));
            prop_assert_eq!(parse_reading(&full_width(&grouped(n, ","))), Ok(n));
            prop_assert_eq!(parse_reading(&format!("  {plain} tokens used ")), Ok(n));
        }

        #[test]
        fn multipliers_multiply(x in 0u64..=1_000_000_000, which in 0usize..MULTIPLIERS.len()) {
            let (unit, factor) = MULTIPLIERS[which];
            prop_assert_eq!(parse_reading(&format!("{x}{unit}")), Ok(x * factor));
            prop_assert_eq!(parse_reading(&format!("{x} {unit}")), Ok(x * factor));
            prop_assert_eq!(parse_reading(&format!("{}{unit}", grouped(x, ","))), Ok(x * factor));
        }

        #[test]
        fn decimal_multiples(x in 0u64..=1_000_000, frac in 0u64..1000, width in 1usize..=3) {
            let frac = frac % 10u64.pow(u32::try_from(width).unwrap_or(3));
            let text = format!("{x}.{frac:0width$}M");
            let expected = x * 1_000_000 + frac * 10u64.pow(6 - u32::try_from(width).unwrap_or(3));
            prop_assert_eq!(parse_reading(&text), Ok(expected), "{}", text);
        }

        #[test]
        fn never_panics_on_any_string(text in any::<String>()) {
            if let Ok(n) = parse_reading(&text) {
                prop_assert_eq!(parse_reading(&n.to_string()), Ok(n));
            }
        }

        #[test]
        fn never_panics_on_number_like_strings(
            text in "[-+ 0-9,._eEkKmMbBgG万亿千百十%$a-z０-９，．\u{A0}]{0,24}"
        ) {
            if let Ok(n) = parse_reading(&text) {
                prop_assert!(n <= MAX_READING);
                prop_assert_eq!(parse_reading(&n.to_string()), Ok(n));
            }
        }
    }
}
