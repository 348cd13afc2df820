//! Textual JSON edits. The request keeps every byte the client sent except the one member the
//! gateway adds, and hidden members vanish without reformatting the chunk, so neither side sees
//! the gateway's hand. The scanners assume text serde_json has already accepted (or give up with
//! `None`); strings are skipped with memchr so large base64 parts cost little.

use std::ops::Range;

use memchr::{memchr, memchr2};

/// One `"key": value` of a JSON object: byte ranges of the key (with its quotes) and the value.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Member {
    pub(super) key: Range<usize>,
    pub(super) value: Range<usize>,
}

pub(super) fn skip_ws(s: &[u8], mut i: usize) -> usize {
    while s
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The index after the closing quote of the string opening at `open`.
fn string_end(s: &[u8], open: usize) -> Option<usize> {
    let mut i = open + 1;
    loop {
        let at = i + memchr2(b'"', b'\\', s.get(i..)?)?;
        if s.get(at) == Some(&b'"') {
            return Some(at + 1);
        }
        i = at + 2;
    }
}

/// The index after the value starting at `start`.
fn value_end(s: &[u8], start: usize) -> Option<usize> {
    match *s.get(start)? {
        b'"' => string_end(s, start),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = start;
            while let Some(&b) = s.get(i) {
                match b {
                    b'"' => {
                        i = string_end(s, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            None
        }
        _ => {
            let rest = s.get(start..)?;
            let len = rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .unwrap_or(rest.len());
            (len > 0).then_some(start + len)
        }
    }
}

/// The members of the object opening at `open`, and the index of its closing brace.
pub(super) fn object_members(s: &[u8], open: usize) -> Option<(Vec<Member>, usize)> {
    let mut members = Vec::new();
    let mut i = skip_ws(s, open + 1);
    if s.get(i) == Some(&b'}') {
        return Some((members, i));
    }
    loop {
        if s.get(i) != Some(&b'"') {
            return None;
        }
        let key_end = string_end(s, i)?;
        let colon = skip_ws(s, key_end);
        if s.get(colon) != Some(&b':') {
            return None;
        }
        let value_start = skip_ws(s, colon + 1);
        let end = value_end(s, value_start)?;
        members.push(Member {
            key: i..key_end,
            value: value_start..end,
        });
        let after = skip_ws(s, end);
        match s.get(after) {
            Some(b',') => i = skip_ws(s, after + 1),
            Some(b'}') => return Some((members, after)),
            _ => return None,
        }
    }
}

pub(super) fn key_is(s: &[u8], member: &Member, name: &str) -> bool {
    let Some(raw) = s.get(member.key.clone()) else {
        return false;
    };
    if memchr(b'\\', raw).is_none() {
        return raw.get(1..raw.len().saturating_sub(1)) == Some(name.as_bytes());
    }
    serde_json::from_slice::<String>(raw).is_ok_and(|key| key == name)
}

/// The last member named `name` (the one JSON parsers keep when a key repeats).
pub(super) fn find_member<'m>(s: &[u8], members: &'m [Member], name: &str) -> Option<&'m Member> {
    members.iter().rev().find(|m| key_is(s, m, name))
}

/// `s` with `range` replaced by `with`.
pub(super) fn splice(s: &[u8], range: Range<usize>, with: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() + with.len());
    out.extend_from_slice(s.get(..range.start)?);
    out.extend_from_slice(with);
    out.extend_from_slice(s.get(range.end..)?);
    Some(out)
}

/// `s` with `member` inserted as the last member of the object whose closing brace is at `close`.
pub(super) fn append_member(s: &[u8], close: usize, empty: bool, member: &[u8]) -> Option<Vec<u8>> {
    let mut inserted = Vec::with_capacity(member.len() + 1);
    if !empty {
        inserted.push(b',');
    }
    inserted.extend_from_slice(member);
    splice(s, close..close, &inserted)
}
