//! The disk spool: append-only NDJSON files of usage events that could not go to the store yet.
//!
//! Layout: `<dir>/usage-<epoch_ms>-<seq>.ndjson`, one JSON [`UsageEvent`] per line. Appends go to
//! one current file, opened lazily; it is sealed (the next append opens a new file) when it grows
//! past the size limit, when a replay starts, and after a failed write. Only sealed files are
//! replayed, so a file is never read while it is being appended to. The spool never deletes a file
//! itself: the writer deletes one with [`Spool::remove`] once every event of it is in the store.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tollgate_core::UsageEvent;
use tollgate_store::private;

use crate::metrics::Metrics;

/// Size past which the current spool file is sealed and a new one started.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

const PREFIX: &str = "usage-";
/// Where events the store refused are set aside; never replayed, kept for a human to look at.
const QUARANTINE: &str = "rejected-usage.ndjson";
const SUFFIX: &str = ".ndjson";

/// The append-only spool of usage events. Appends are synchronous and cheap (one `write` call per
/// append under a std mutex), so the request path can use it without awaiting anything.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_file_bytes: u64,
    metrics: Arc<Metrics>,
    /// Bytes in every spool file of `dir`, mirrored into the `spool_bytes` gauge.
    bytes: AtomicI64,
    /// Events in every spool file of `dir`, mirrored into the `spool_events` gauge.
    events: AtomicI64,
    /// Creation time (epoch ms) of the oldest spool file, 0 when there is none; mirrored into
    /// the metrics for `usage_oldest_unwritten_age_seconds`.
    oldest_ms: AtomicI64,
    state: Mutex<AppendState>,
}

#[derive(Debug, Default)]
struct AppendState {
    current: Option<CurrentFile>,
    /// Makes names unique within one millisecond.
    seq: u64,
    /// Reused serialisation buffer.
    buf: Vec<u8>,
    /// Events (complete lines) per spool file, by the file's `(created_ms, seq)`: counted from
    /// the file once (at open, for an earlier run's files), then kept up to date by the appends.
    counts: HashMap<(i64, u64), u64>,
}

#[derive(Debug)]
struct CurrentFile {
    file: File,
    len: u64,
    /// `(created_ms, seq)` from its name.
    id: (i64, u64),
}

/// One sealed spool file, ready to be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolFile {
    /// Where it is.
    pub path: PathBuf,
    /// Creation time from its name, epoch ms.
    pub created_ms: i64,
    /// Sequence number from its name.
    pub seq: u64,
}

/// What a spool file held.
#[derive(Debug, Default)]
pub struct SpoolContents {
    /// The events that could be read, in file order.
    pub events: Vec<UsageEvent>,
    /// An unterminated last line that did not parse (a crash in the middle of a write).
    pub torn_tail: bool,
    /// Complete lines that did not parse (corruption): those events are lost.
    pub corrupt_lines: u64,
}

impl Spool {
    /// Opens the spool in `dir` (created if missing) and counts the bytes earlier runs left there.
    pub fn open(dir: impl Into<PathBuf>, metrics: Arc<Metrics>) -> io::Result<Self> {
        Self::with_max_file_bytes(dir, metrics, DEFAULT_MAX_FILE_BYTES)
    }

    /// Like [`Spool::open`], with a custom size past which a file is sealed.
    pub fn with_max_file_bytes(
        dir: impl Into<PathBuf>,
        metrics: Arc<Metrics>,
        max_file_bytes: u64,
    ) -> io::Result<Self> {
        let dir = dir.into();
        private::create_dir(&dir).map_err(|e| with_path(e, "cannot create spool folder", &dir))?;
        let spool = Self {
            dir,
            max_file_bytes: max_file_bytes.max(1),
            metrics,
            bytes: AtomicI64::new(0),
            events: AtomicI64::new(0),
            oldest_ms: AtomicI64::new(0),
            state: Mutex::new(AppendState::default()),
        };
        spool.recount(&mut spool.lock())?;
        Ok(spool)
    }

    /// The spool folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes in the spool files.
    pub fn bytes(&self) -> i64 {
        self.bytes.load(Ordering::Acquire)
    }

    /// Usage events in the spool files.
    pub fn events(&self) -> i64 {
        self.events.load(Ordering::Acquire)
    }

    /// Appends events, one line each, and hands them to the OS before returning. All or nothing
    /// per line: after a failed write the file is sealed, so a torn line can only be the last one.
    /// Survives a crash of the process (the bytes are in the kernel), not a power cut.
    pub fn append(&self, events: &[UsageEvent]) -> io::Result<()> {
        self.append_with(events, false)
    }

    /// Like [`Spool::append`], and also `fdatasync`s the file (and the folder, for a new file)
    /// before returning, so the events survive a power cut too. One sync covers every event
    /// passed: callers group concurrent events into one call (group commit).
    pub fn append_synced(&self, events: &[UsageEvent]) -> io::Result<()> {
        self.append_with(events, true)
    }

    fn append_with(&self, events: &[UsageEvent], sync: bool) -> io::Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut state = self.lock();
        let state = &mut *state;
        state.buf.clear();
        for event in events {
            serde_json::to_writer(&mut state.buf, event).map_err(io::Error::other)?;
            state.buf.push(b'\n');
        }
        let mut new_file = false;
        if state.current.is_none() {
            state.current = Some(self.create_file(&mut state.seq)?);
            new_file = true;
        }
        let Some(current) = state.current.as_mut() else {
            return Err(io::Error::other("spool file vanished"));
        };
        let written = current
            .file
            .write_all(&state.buf)
            .and_then(|()| current.file.flush())
            .and_then(|()| {
                if !sync {
                    return Ok(());
                }
                current.file.sync_data()?;
                if new_file {
                    // The new file's name must survive a power cut too.
                    File::open(&self.dir)?.sync_all()?;
                }
                Ok(())
            });
        if let Err(e) = written {
            state.current = None;
            // Part of the payload may have reached the file; count what is really there.
            if let Err(count) = self.recount(state) {
                tracing::error!(error = %count, "cannot measure the usage spool");
            }
            return Err(with_path(e, "cannot append to spool in", &self.dir));
        }
        let written = u64::try_from(state.buf.len()).unwrap_or(u64::MAX);
        current.len = current.len.saturating_add(written);
        *state.counts.entry(current.id).or_default() += events.len() as u64;
        if current.len >= self.max_file_bytes {
            state.current = None;
        }
        if state.buf.capacity() > 1024 * 1024 {
            state.buf = Vec::new();
        }
        let added = i64::try_from(written).unwrap_or(i64::MAX);
        let total = self
            .bytes
            .fetch_add(added, Ordering::AcqRel)
            .saturating_add(added);
        self.metrics.spool_bytes.set(total);
        let added_events = i64::try_from(events.len()).unwrap_or(i64::MAX);
        let events_total = self
            .events
            .fetch_add(added_events, Ordering::AcqRel)
            .saturating_add(added_events);
        self.metrics.spool_events.set(events_total);
        self.metrics.events_spooled.inc_by(events.len() as u64);
        Ok(())
    }

    /// Seals the current file and lists every spool file, oldest first. Appends made after this
    /// call go to a new file, so the listed files can be read and deleted safely.
    pub fn seal_and_list(&self) -> io::Result<Vec<SpoolFile>> {
        let mut state = self.lock();
        state.current = None;
        let mut files = self.list_files()?;
        files.sort_by_key(|f| (f.created_ms, f.seq));
        Ok(files)
    }

    /// Deletes a replayed file and updates the byte count.
    pub fn remove(&self, file: &SpoolFile) -> io::Result<()> {
        let mut state = self.lock();
        let removed = match fs::remove_file(&file.path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(with_path(e, "cannot delete spool file", &file.path))
            }
            _ => Ok(()),
        };
        self.recount(&mut state)?;
        removed
    }

    /// Appends events the store refused to the quarantine file of the spool folder, which is
    /// neither replayed nor counted in the spool's bytes. Returns its path.
    pub fn quarantine(&self, events: &[UsageEvent]) -> io::Result<PathBuf> {
        let path = self.dir.join(QUARANTINE);
        let mut buf = Vec::new();
        for event in events {
            serde_json::to_writer(&mut buf, event).map_err(io::Error::other)?;
            buf.push(b'\n');
        }
        let file = match private::new_file(&path, OpenOptions::new().append(true)) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                OpenOptions::new().append(true).open(&path)
            }
            other => other,
        };
        file.and_then(|mut file| file.write_all(&buf))
            .map_err(|e| with_path(e, "cannot write", &path))?;
        Ok(path)
    }

    /// Reads a sealed spool file. Blocking: call it from a blocking thread.
    pub fn read(file: &SpoolFile) -> io::Result<SpoolContents> {
        let data =
            fs::read(&file.path).map_err(|e| with_path(e, "cannot read spool file", &file.path))?;
        Ok(parse(&data))
    }

    fn lock(&self) -> MutexGuard<'_, AppendState> {
        // A panic while holding the lock cannot leave the state inconsistent: the worst case is a
        // torn line, which the file's sealing and replay already handle.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn create_file(&self, seq: &mut u64) -> io::Result<CurrentFile> {
        // Someone may have removed the folder since start; the events still need a home.
        private::create_dir(&self.dir)
            .map_err(|e| with_path(e, "cannot create spool folder", &self.dir))?;
        let ms = tollgate_core::time::now_ms();
        // A name left by an earlier run with a clock that went backwards is skipped, never reused.
        for _ in 0..1000 {
            *seq += 1;
            let path = self.dir.join(format!("{PREFIX}{ms}-{seq}{SUFFIX}"));
            match private::new_file(&path, OpenOptions::new().append(true)) {
                Ok(file) => {
                    let id = (ms, *seq);
                    if self
                        .oldest_ms
                        .compare_exchange(0, ms, Ordering::AcqRel, Ordering::Acquire)
                        .is_ok()
                    {
                        self.metrics.oldest_spooled_ms.store(ms, Ordering::Release);
                    }
                    return Ok(CurrentFile { file, len: 0, id });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(with_path(e, "cannot create spool file", &path)),
            }
        }
        Err(io::Error::other(format!(
            "no free spool file name in {}",
            self.dir.display()
        )))
    }

    fn list_files(&self) -> io::Result<Vec<SpoolFile>> {
        let entries = fs::read_dir(&self.dir)
            .map_err(|e| with_path(e, "cannot list spool folder", &self.dir))?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| with_path(e, "cannot list spool folder", &self.dir))?;
            let name = entry.file_name();
            let Some((created_ms, seq)) = name.to_str().and_then(parse_name) else {
                continue;
            };
            files.push(SpoolFile {
                path: entry.path(),
                created_ms,
                seq,
            });
        }
        Ok(files)
    }

    /// Sets the byte and event counts from the files on disk. Takes the guard so no append runs
    /// meanwhile. A file not seen before (an earlier run's) has its lines counted once.
    fn recount(&self, state: &mut AppendState) -> io::Result<()> {
        let mut total: u64 = 0;
        let mut oldest = 0;
        let mut counts = HashMap::with_capacity(state.counts.len());
        for file in self.list_files()? {
            match fs::metadata(&file.path) {
                Ok(meta) => {
                    let id = (file.created_ms, file.seq);
                    let lines = match state.counts.get(&id) {
                        Some(lines) => *lines,
                        None => match fs::read(&file.path) {
                            Ok(data) => memchr::memchr_iter(b'\n', &data).count() as u64,
                            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                            Err(e) => {
                                return Err(with_path(e, "cannot read spool file", &file.path));
                            }
                        },
                    };
                    counts.insert(id, lines);
                    total = total.saturating_add(meta.len());
                    if oldest == 0 || file.created_ms < oldest {
                        oldest = file.created_ms.max(1);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(with_path(e, "cannot measure spool file", &file.path)),
            }
        }
        let total = i64::try_from(total).unwrap_or(i64::MAX);
        self.bytes.store(total, Ordering::Release);
        self.metrics.spool_bytes.set(total);
        let events = i64::try_from(counts.values().sum::<u64>()).unwrap_or(i64::MAX);
        state.counts = counts;
        self.events.store(events, Ordering::Release);
        self.metrics.spool_events.set(events);
        self.oldest_ms.store(oldest, Ordering::Release);
        self.metrics
            .oldest_spooled_ms
            .store(oldest, Ordering::Release);
        Ok(())
    }
}

/// `usage-<ms>-<seq>.ndjson` → `(ms, seq)`.
fn parse_name(name: &str) -> Option<(i64, u64)> {
    let middle = name.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    let (ms, seq) = middle.split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn parse(data: &[u8]) -> SpoolContents {
    let mut contents = SpoolContents::default();
    let terminated = data.last().is_none_or(|b| *b == b'\n');
    let mut lines = data.split(|b| *b == b'\n').peekable();
    while let Some(line) = lines.next() {
        let is_last = lines.peek().is_none();
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<UsageEvent>(line) {
            Ok(event) => contents.events.push(event),
            Err(_) if is_last && !terminated => contents.torn_tail = true,
            Err(_) => contents.corrupt_lines += 1,
        }
    }
    contents
}

fn with_path(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> UsageEvent {
        UsageEvent::new(n, "POST", "/v1/chat/completions", 200)
    }

    #[test]
    fn names_parse_and_sort_numerically() {
        assert_eq!(
            parse_name("usage-1700000000000-12.ndjson"),
            Some((1_700_000_000_000, 12))
        );
        assert_eq!(parse_name("usage-1-2.ndjson.tmp"), None);
        assert_eq!(parse_name("other-1-2.ndjson"), None);
        assert_eq!(parse_name("usage-x-2.ndjson"), None);
    }

    #[test]
    fn parse_skips_a_torn_tail_and_counts_corrupt_lines() {
        let a = serde_json::to_string(&event(1)).unwrap();
        let b = serde_json::to_string(&event(2)).unwrap();
        let data = format!("{a}\nnot json\n{b}\n{}", &a[..a.len() / 2]);
        let contents = parse(data.as_bytes());
        assert_eq!(contents.events.len(), 2);
        assert!(contents.torn_tail);
        assert_eq!(contents.corrupt_lines, 1);

        // A complete event that only lost its newline is kept.
        let contents = parse(a.as_bytes());
        assert_eq!(contents.events.len(), 1);
        assert!(!contents.torn_tail);
    }

    #[test]
    fn append_rotates_by_size_and_counts_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let metrics = Metrics::new();
        let spool =
            Spool::with_max_file_bytes(dir.path().join("spool"), metrics.clone(), 200).unwrap();
        for n in 0..5 {
            spool.append(&[event(n)]).unwrap();
        }
        let files = spool.seal_and_list().unwrap();
        assert_eq!(
            files.len(),
            5,
            "each event exceeds 200 bytes, so each gets its own file"
        );
        let on_disk: u64 = files
            .iter()
            .map(|f| fs::metadata(&f.path).unwrap().len())
            .sum();
        assert_eq!(spool.bytes(), i64::try_from(on_disk).unwrap());
        assert_eq!(metrics.spool_bytes_now(), spool.bytes());
        assert_eq!(metrics.events_spooled.get(), 5);
        assert_eq!((spool.events(), metrics.spool_events.get()), (5, 5));
        let read: Vec<i64> = files
            .iter()
            .flat_map(|f| Spool::read(f).unwrap().events)
            .map(|e| e.ts_ms)
            .collect();
        assert_eq!(read, vec![0, 1, 2, 3, 4], "oldest file first");
        for f in &files {
            spool.remove(f).unwrap();
        }
        assert_eq!(spool.bytes(), 0);
        assert_eq!(metrics.spool_bytes_now(), 0);
        assert_eq!((spool.events(), metrics.spool_events.get()), (0, 0));
    }

    #[test]
    fn sealing_starts_a_new_file_and_reopen_counts_old_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), Metrics::new()).unwrap();
        spool.append(&[event(1), event(2)]).unwrap();
        let first = spool.seal_and_list().unwrap();
        assert_eq!(first.len(), 1);
        spool.append(&[event(3)]).unwrap();
        let second = spool.seal_and_list().unwrap();
        assert_eq!(second.len(), 2);
        assert_eq!(
            Spool::read(&first[0]).unwrap().events.len(),
            2,
            "the sealed file was not appended to"
        );

        let metrics = Metrics::new();
        let reopened = Spool::open(dir.path(), metrics.clone()).unwrap();
        assert_eq!(reopened.bytes(), spool.bytes());
        assert_eq!(metrics.spool_bytes_now(), spool.bytes());
        // An earlier run's files have their events counted at open.
        assert_eq!((reopened.events(), metrics.spool_events.get()), (3, 3));
    }
}
