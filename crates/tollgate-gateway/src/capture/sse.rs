//! SSE framing: lines ending in `\n`, `\r\n` or a lone `\r`, `data` fields joined per event, and
//! each complete event handed to the provider. Passing through, the client gets every chunk as it
//! came and only an unfinished line is copied; hiding injected usage, whole events are held back
//! and edited before they go out.

use std::mem;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use memchr::{memchr, memchr2};

use super::provider::{EventFacts, Observed, Provider};

/// Most bytes of one SSE line, or of one event's data, that are read; beyond it the stream is
/// passed through unread.
const LINE_CAP: usize = 8 << 20;
/// Most bytes of one SSE event held back while the injected usage is hidden; beyond it the event
/// is released and the rest of the stream passes through as it comes.
const HELD_CAP: usize = 1 << 20;

/// The fields of the SSE event being read.
#[derive(Default)]
struct EventData {
    /// The `data` lines joined with `\n`, as the SSE rules say.
    data: Vec<u8>,
    /// How many `data` lines.
    lines: usize,
    /// Where the first data line's value sits, from the event's first byte (while hiding).
    first_value: Range<usize>,
    /// The data passed [`LINE_CAP`]; the event is not read.
    too_big: bool,
}

enum LineKind {
    /// An empty line: the event ends.
    Blank,
    /// A `data` line; its value starts at this offset of the line.
    Data(usize),
    /// A comment or another field.
    Other,
}

impl EventData {
    fn line(&mut self, line: &[u8]) -> LineKind {
        if line.is_empty() {
            return LineKind::Blank;
        }
        let (field, value_at) = match memchr(b':', line) {
            Some(0) => return LineKind::Other,
            Some(colon) => (
                &line[..colon],
                colon + 1 + usize::from(line.get(colon + 1) == Some(&b' ')),
            ),
            None => (line, line.len()),
        };
        if field != b"data" {
            return LineKind::Other;
        }
        let value = line.get(value_at..).unwrap_or_default();
        if !self.too_big {
            if self.data.len() + value.len() + 1 > LINE_CAP {
                self.too_big = true;
                self.data = Vec::new();
            } else {
                if self.lines > 0 {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
            }
        }
        self.lines += 1;
        LineKind::Data(value_at)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.lines = 0;
        self.first_value = 0..0;
        self.too_big = false;
    }
}

/// Where [`SseReader::pump`] stopped, as offsets into the buffer it read.
struct Pumped {
    /// Start of the first unfinished line.
    line_end: usize,
    /// Start of the first unfinished event.
    event_end: usize,
    /// Where the search for the next line break resumes.
    scan: usize,
}

/// Reads an SSE stream. Passing through, `held` is the unfinished last line (for the parser
/// only; the client already has it). Hiding, `held` is the unfinished last event, not yet sent.
pub(super) struct SseReader {
    provider: &'static dyn Provider,
    /// Events are held back and edited: the gateway asked for something the client did not.
    pub(super) hide: bool,
    held: Vec<u8>,
    /// Start of the unfinished line in `held` (always 0 when passing through).
    line_start: usize,
    /// Where the line-break search resumes in `held`, so no byte is scanned twice.
    scan: usize,
    event: EventData,
    /// An unfinished line passed [`LINE_CAP`]: the rest of the stream is not read.
    pub(super) overflowed: bool,
}

impl SseReader {
    pub(super) fn new(provider: &'static dyn Provider, hide: bool) -> Self {
        Self {
            provider,
            hide,
            held: Vec::new(),
            line_start: 0,
            scan: 0,
            event: EventData::default(),
            overflowed: false,
        }
    }

    pub(super) fn on_chunk(&mut self, chunk: Bytes, seen: &mut Observed) -> Bytes {
        if chunk.is_empty() {
            return chunk;
        }
        if self.hide {
            return self.hide_chunk(&chunk, seen);
        }
        self.pass_chunk(&chunk, seen);
        if self.held.len() > LINE_CAP {
            self.overflowed = true;
        }
        chunk
    }

    /// Reads a chunk the client gets unchanged; only an unfinished line is copied.
    fn pass_chunk(&mut self, chunk: &[u8], seen: &mut Observed) {
        let mut rest = chunk;
        if !self.held.is_empty() {
            // Complete the carried line with the chunk's bytes up to its first line break.
            let take = if self.held.ends_with(b"\r") {
                usize::from(rest.first() == Some(&b'\n'))
            } else {
                match memchr2(b'\n', b'\r', rest) {
                    None => rest.len(),
                    Some(at) if rest.get(at) == Some(&b'\n') => at + 1,
                    Some(at) => match rest.get(at + 1) {
                        Some(b'\n') => at + 2,
                        Some(_) => at + 1,
                        None => rest.len(),
                    },
                }
            };
            self.held.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            let held = mem::take(&mut self.held);
            // A trailing `\r` ends its line once a byte other than `\n` is known to follow.
            let pumped = self.pump(&held, 0, self.scan, !rest.is_empty(), seen, None);
            self.held = held;
            if pumped.line_end < self.held.len() {
                self.scan = pumped.scan;
                return;
            }
            self.held.clear();
        }
        let pumped = self.pump(rest, 0, 0, false, seen, None);
        self.held.extend_from_slice(&rest[pumped.line_end..]);
        self.scan = pumped.scan - pumped.line_end;
    }

    /// Reads a chunk while hiding the injected usage: returns the complete events, edited.
    fn hide_chunk(&mut self, chunk: &[u8], seen: &mut Observed) -> Bytes {
        let mut out = BytesMut::with_capacity(self.held.len() + chunk.len());
        let mut held = mem::take(&mut self.held);
        let pumped = if held.is_empty() {
            let pumped = self.pump(chunk, 0, 0, false, seen, Some(&mut out));
            held.extend_from_slice(&chunk[pumped.event_end..]);
            pumped
        } else {
            held.extend_from_slice(chunk);
            let pumped = self.pump(
                &held,
                self.line_start,
                self.scan,
                false,
                seen,
                Some(&mut out),
            );
            held.drain(..pumped.event_end);
            pumped
        };
        self.held = held;
        self.line_start = pumped.line_end - pumped.event_end;
        self.scan = pumped.scan - pumped.event_end;
        if self.held.len() > HELD_CAP {
            // Not an event stream as OpenAI writes them; stop delaying it.
            out.extend_from_slice(&self.held);
            self.held.drain(..self.line_start);
            self.scan -= self.line_start;
            self.line_start = 0;
            self.hide = false;
        }
        out.freeze()
    }

    /// Reads the complete lines of `buf` from `line_start`, resuming the line-break search at
    /// `scan`. `buf` starts at an event's first byte when `out` is given: complete events are
    /// then written to `out`, the injected usage removed. With `eof`, a final `\r` ends a line.
    fn pump(
        &mut self,
        buf: &[u8],
        mut line_start: usize,
        mut scan: usize,
        eof: bool,
        seen: &mut Observed,
        mut out: Option<&mut BytesMut>,
    ) -> Pumped {
        let mut event_start = 0;
        loop {
            let Some(found) = buf.get(scan..).and_then(|rest| memchr2(b'\n', b'\r', rest)) else {
                scan = buf.len();
                break;
            };
            let brk = scan + found;
            // SSE lines end with `\n`, `\r\n` or a lone `\r`.
            let next = match (buf[brk], buf.get(brk + 1)) {
                (b'\n', _) => brk + 1,
                (_, Some(b'\n')) => brk + 2,
                (_, Some(_)) => brk + 1,
                (_, None) if eof => brk + 1,
                (_, None) => {
                    scan = brk;
                    break;
                }
            };
            match self.event.line(&buf[line_start..brk]) {
                LineKind::Data(value_at) => {
                    if out.is_some() && self.event.lines == 1 {
                        self.event.first_value =
                            line_start + value_at - event_start..brk - event_start;
                    }
                }
                LineKind::Blank => {
                    let facts = if self.event.lines > 0 && !self.event.too_big {
                        read_event(self.provider, &self.event.data, seen)
                    } else {
                        EventFacts::default()
                    };
                    if let Some(out) = out.as_deref_mut() {
                        emit_event(
                            self.provider,
                            out,
                            &buf[event_start..next],
                            &self.event,
                            facts,
                        );
                    }
                    self.event.clear();
                    event_start = next;
                }
                LineKind::Other => {}
            }
            line_start = next;
            scan = next;
        }
        Pumped {
            line_end: line_start,
            event_end: event_start,
            scan,
        }
    }

    /// The body ended: reads what is left and returns the bytes still owed to the client.
    pub(super) fn end(&mut self, seen: &mut Observed) -> Bytes {
        let held = mem::take(&mut self.held);
        let mut out = BytesMut::new();
        let (last_line, unsent) = if self.hide {
            let pumped = self.pump(
                &held,
                self.line_start,
                self.scan,
                true,
                seen,
                Some(&mut out),
            );
            (pumped.line_end, pumped.event_end)
        } else {
            let pumped = self.pump(&held, 0, self.scan, true, seen, None);
            (pumped.line_end, held.len())
        };
        // The body stopped inside an event. Clients drop such an event, so it goes out as it
        // came, but its data still counts (some servers omit the last blank line).
        if let Some(line) = held.get(last_line..)
            && !line.is_empty()
        {
            self.event.line(line);
        }
        if self.event.lines > 0 && !self.event.too_big {
            read_event(self.provider, &self.event.data, seen);
        }
        self.event.clear();
        out.extend_from_slice(held.get(unsent..).unwrap_or_default());
        out.freeze()
    }
}

/// Hands one event's data to the provider; `[DONE]`, pings and other non-objects need no parser.
fn read_event(provider: &dyn Provider, data: &[u8], seen: &mut Observed) -> EventFacts {
    let data = data.trim_ascii_start();
    if data.first() != Some(&b'{') {
        return EventFacts::default();
    }
    provider.read_event(data, seen)
}

/// Writes one complete event for the client: nothing for an injected event (OpenAI's usage-only
/// chunk), and every other event without the member the provider hides (its `"usage":null`).
fn emit_event(
    provider: &dyn Provider,
    out: &mut BytesMut,
    raw: &[u8],
    event: &EventData,
    facts: EventFacts,
) {
    if facts.injected {
        return;
    }
    // A JSON document split over several data lines is left alone; OpenAI never writes one.
    if event.lines == 1 {
        let value = event.first_value.clone();
        if let Some(cut) = raw
            .get(value.clone())
            .and_then(|value| provider.hidden_member(value))
        {
            out.extend_from_slice(&raw[..value.start + cut.start]);
            out.extend_from_slice(&raw[value.start + cut.end..]);
            return;
        }
    }
    out.extend_from_slice(raw);
}
