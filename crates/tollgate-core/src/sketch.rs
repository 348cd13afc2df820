//! Latency sketches: DDSketch-style logarithmic histograms whose quantiles carry a stated
//! relative error, merged exactly by adding counts, stored as a small versioned binary blob.
//!
//! Bucket `i` holds latencies `v` with `MIN · γ^(i-1) < v ≤ MIN · γ^i` (γ = 1.04) and answers
//! `MIN · 2γ^i / (γ + 1)` for them: every quantile read from a sketch is within
//! `(γ - 1) / (γ + 1)` ≈ 1.96 % of the true one from 0.1 ms to 10 minutes. Latencies below
//! 0.1 ms count in a zero bucket (read as 0 ms); above 10 minutes they are clamped to 10
//! minutes and counted apart, so a caller can say how many were.

use std::fmt;

/// Growth factor between bucket bounds.
pub const GAMMA: f64 = 1.04;
/// The relative error of a quantile inside the sketched range: `(γ - 1) / (γ + 1)`.
pub const RELATIVE_ERROR: f64 = (GAMMA - 1.0) / (GAMMA + 1.0);
/// Smallest latency sketched with the stated error, µs (0.1 ms); below it, the zero bucket.
pub const MIN_US: i64 = 100;
/// Largest latency sketched, µs (10 minutes); above it, clamped and counted.
pub const MAX_US: i64 = 600_000_000;
/// Number of logarithmic buckets: `ceil(log_γ(MAX / MIN)) + 1`.
pub const BUCKETS: usize = 399;
/// The encoding's version byte.
const VERSION: u8 = 1;

/// Why a stored sketch could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SketchError {
    /// Empty input.
    #[error("latency sketch is empty (no version byte)")]
    Empty,
    /// A version this build does not know.
    #[error("latency sketch has unknown version {0}")]
    Version(u8),
    /// The bytes end inside a number.
    #[error("latency sketch is truncated")]
    Truncated,
    /// A bucket index past the last bucket, or not increasing.
    #[error("latency sketch names bucket {0}, outside 0..{BUCKETS} or out of order")]
    Bucket(u64),
    /// Bytes left after the last bucket.
    #[error("latency sketch has {0} bytes after its end")]
    Trailing(usize),
    /// A count that does not fit.
    #[error("latency sketch count overflows")]
    Overflow,
}

/// A latency distribution with quantiles of bounded relative error.
///
/// The counts are kept for the window of buckets between the lowest and the highest one used
/// (DDSketch's dense store with an offset), so that a sketch of a few calls costs a few dozen
/// counts, not [`BUCKETS`].
#[derive(Clone, Default)]
pub struct LatencySketch {
    /// Latencies below [`MIN_US`].
    zero: u64,
    /// Latencies above [`MAX_US`], counted at [`MAX_US`].
    clamped: u64,
    /// The bucket of `counts[0]`.
    offset: usize,
    /// Counts of the buckets `offset..offset + counts.len()`; empty until the first latency in
    /// range, so that an empty sketch costs nothing.
    counts: Vec<u64>,
}

impl PartialEq for LatencySketch {
    /// Equal when every count is, however wide the windows kept.
    fn eq(&self, other: &Self) -> bool {
        self.zero == other.zero
            && self.clamped == other.clamped
            && (0..BUCKETS).all(|i| self.bucket(i) == other.bucket(i))
    }
}

impl Eq for LatencySketch {}

impl fmt::Debug for LatencySketch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LatencySketch")
            .field("count", &self.count())
            .field("zero", &self.zero)
            .field("clamped", &self.clamped)
            .field(
                "buckets_used",
                &self.counts.iter().filter(|c| **c > 0).count(),
            )
            .finish()
    }
}

/// The bucket of a latency of at least [`MIN_US`] and at most [`MAX_US`].
fn bucket_of(latency_us: i64) -> usize {
    #[expect(
        clippy::cast_precision_loss,
        reason = "latencies are far below 2^52 µs"
    )]
    let ratio = latency_us as f64 / MIN_US as f64;
    let index = (ratio.ln() / GAMMA.ln()).ceil();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "clamped to 0..BUCKETS first"
    )]
    let index = index.clamp(0.0, (BUCKETS - 1) as f64) as usize;
    index
}

/// The latency (ms) a bucket answers for: the point whose relative distance to both of its
/// bounds is the same.
fn bucket_value_ms(index: usize) -> f64 {
    let exponent = i32::try_from(index).unwrap_or(i32::MAX);
    #[expect(clippy::cast_precision_loss, reason = "a small constant")]
    let min_ms = MIN_US as f64 / 1000.0;
    min_ms * 2.0 * GAMMA.powi(exponent) / (GAMMA + 1.0)
}

/// Where one latency counts in a sketch, worked out once (a logarithm) for adding it to several
/// sketches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SketchSlot(Slot);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Zero,
    Clamped,
    Bucket(usize),
}

impl SketchSlot {
    /// The slot of a latency, µs (negative counts as 0).
    pub fn of(latency_us: i64) -> Self {
        Self(if latency_us < MIN_US {
            Slot::Zero
        } else if latency_us > MAX_US {
            Slot::Clamped
        } else {
            Slot::Bucket(bucket_of(latency_us))
        })
    }
}

/// Buckets a window grows by beyond what it needs, so that a sketch filled one latency at a
/// time is not copied at every new bucket.
const WINDOW_SLACK: usize = 8;

impl LatencySketch {
    /// An empty sketch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one latency, µs (negative counts as 0).
    pub fn add(&mut self, latency_us: i64) {
        self.add_n(latency_us, 1);
    }

    /// Counts `n` latencies of the same value, µs.
    pub fn add_n(&mut self, latency_us: i64, n: u64) {
        self.add_slot_n(SketchSlot::of(latency_us), n);
    }

    /// Counts one latency whose slot is known.
    pub fn add_slot(&mut self, slot: SketchSlot) {
        self.add_slot_n(slot, 1);
    }

    fn add_slot_n(&mut self, slot: SketchSlot, n: u64) {
        match slot.0 {
            Slot::Zero => self.zero = self.zero.saturating_add(n),
            Slot::Clamped => self.clamped = self.clamped.saturating_add(n),
            Slot::Bucket(index) => {
                let slot = self.slot_mut(index);
                *slot = slot.saturating_add(n);
            }
        }
    }

    /// The count of bucket `index` (0 outside the window).
    fn bucket(&self, index: usize) -> u64 {
        index
            .checked_sub(self.offset)
            .and_then(|i| self.counts.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// The count of bucket `index` (below [`BUCKETS`]), the window grown to hold it.
    fn slot_mut(&mut self, index: usize) -> &mut u64 {
        self.cover(index, index);
        let i = index - self.offset;
        &mut self.counts[i]
    }

    /// Grows the window to hold the buckets `low..=high` (both below [`BUCKETS`]).
    fn cover(&mut self, low: usize, high: usize) {
        if self.counts.is_empty() {
            self.offset = low;
            self.counts = vec![0; high - low + 1];
            return;
        }
        let end = self.offset + self.counts.len();
        if low < self.offset {
            let start = low.saturating_sub(WINDOW_SLACK);
            let mut grown = vec![0; self.offset - start];
            grown.extend_from_slice(&self.counts);
            self.counts = grown;
            self.offset = start;
        }
        if high >= end {
            let end = (high + 1 + WINDOW_SLACK).min(BUCKETS);
            self.counts.resize(end - self.offset, 0);
        }
    }

    /// Adds every count of `other`: the sketch of both sets of latencies, exactly.
    pub fn merge(&mut self, other: &Self) {
        self.zero = self.zero.saturating_add(other.zero);
        self.clamped = self.clamped.saturating_add(other.clamped);
        if other.counts.is_empty() {
            return;
        }
        self.cover(other.offset, other.offset + other.counts.len() - 1);
        let start = other.offset - self.offset;
        for (slot, count) in self.counts[start..].iter_mut().zip(&other.counts) {
            *slot = slot.saturating_add(*count);
        }
    }

    /// How many latencies were counted.
    pub fn count(&self) -> u64 {
        self.counts
            .iter()
            .fold(self.zero.saturating_add(self.clamped), |sum, c| {
                sum.saturating_add(*c)
            })
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.count() == 0
    }

    /// How many latencies were above [`MAX_US`] (counted as [`MAX_US`]).
    pub fn clamped(&self) -> u64 {
        self.clamped
    }

    /// The latency (ms) at quantile `q` (0 to 1), DDSketch's estimate: the value of the bucket
    /// holding the sorted latency of rank `⌊q · (count - 1)⌋` (from 0). Within
    /// [`RELATIVE_ERROR`] of that latency from 0.1 ms to 10 minutes; 0 below 0.1 ms; 10 minutes
    /// for clamped latencies. `None` when the sketch is empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "counts far below 2^52; q·(count-1) is within 0..count"
        )]
        let rank = (q * (count - 1) as f64).floor() as u64;
        let mut seen = self.zero;
        if seen > rank {
            return Some(0.0);
        }
        for (i, c) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*c);
            if seen > rank {
                return Some(bucket_value_ms(self.offset + i));
            }
        }
        #[expect(clippy::cast_precision_loss, reason = "a small constant")]
        let max_ms = MAX_US as f64 / 1000.0;
        Some(max_ms)
    }

    /// The stored form: a version byte, then LEB128 numbers — the zero count, the clamped count,
    /// the number of non-empty buckets, and for each its index (as the gap from the previous
    /// one) and its count. A few bytes per non-empty bucket; one byte per field when empty.
    pub fn encode(&self) -> Vec<u8> {
        let used = self.counts.iter().filter(|c| **c > 0).count();
        let mut out = Vec::with_capacity(4 + used * 3);
        out.push(VERSION);
        put_varint(&mut out, self.zero);
        put_varint(&mut out, self.clamped);
        put_varint(&mut out, used as u64);
        let mut previous = 0_u64;
        for (i, c) in self.counts.iter().enumerate() {
            if *c > 0 {
                let index = (self.offset + i) as u64;
                put_varint(&mut out, index - previous);
                put_varint(&mut out, *c);
                previous = index;
            }
        }
        out
    }

    /// Reads the stored form written by [`LatencySketch::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, SketchError> {
        let mut sketch = Self::new();
        sketch.merge_encoded(bytes)?;
        Ok(sketch)
    }

    /// Adds the stored sketch `bytes` to this one, in place and in one pass over the bytes (no
    /// sketch is built for them, nothing is allocated unless the window grows); on an error
    /// nothing is added.
    pub fn merge_encoded(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        self.merge_walked(bytes, visit_encoded)
    }

    /// Adds every sketch of `bytes`, stored sketches one after another (as SQL's `group_concat`
    /// or `string_agg` joins a group's blobs): an encoding says how many buckets it holds, so
    /// the next one starts where it ends. On an error nothing is added.
    pub fn merge_encoded_run(&mut self, bytes: &[u8]) -> Result<(), SketchError> {
        self.merge_walked(bytes, visit_run)
    }

    /// Adds what `walk` visits in `bytes`, or nothing when it fails.
    fn merge_walked(&mut self, bytes: &[u8], walk: Walk) -> Result<(), SketchError> {
        let walked = walk(bytes, &mut |index, count| {
            let slot = self.slot_mut(index);
            *slot = slot.saturating_add(count);
        });
        match walked {
            Ok((zero, clamped)) => {
                self.zero = self.zero.saturating_add(zero);
                self.clamped = self.clamped.saturating_add(clamped);
                Ok(())
            }
            Err(e) => {
                // A second walk visits the same buckets before failing at the same place:
                // take back what the first added (only a bad blob pays for this).
                let _ = walk(bytes, &mut |index, count| {
                    let slot = self.slot_mut(index);
                    *slot = slot.saturating_sub(count);
                });
                Err(e)
            }
        }
    }
}

/// A walk over stored sketch bytes ([`visit_encoded`], [`visit_run`]): calls the visitor with each
/// non-empty bucket's index and count, answers the zero and clamped counts.
type Walk = fn(&[u8], &mut dyn FnMut(usize, u64)) -> Result<(u64, u64), SketchError>;

/// Walks a stored sketch: calls `bucket(index, count)` for each non-empty bucket (indexes
/// checked against [`BUCKETS`]), answers the zero and clamped counts.
fn visit_encoded(
    bytes: &[u8],
    bucket: &mut dyn FnMut(usize, u64),
) -> Result<(u64, u64), SketchError> {
    let (counts, rest) = visit_one(bytes, bucket)?;
    if !rest.is_empty() {
        return Err(SketchError::Trailing(rest.len()));
    }
    Ok(counts)
}

/// Walks stored sketches one after another, as [`visit_encoded`] walks one; answers the sums
/// of their zero and clamped counts. Empty input is no sketch.
fn visit_run(
    mut bytes: &[u8],
    bucket: &mut dyn FnMut(usize, u64),
) -> Result<(u64, u64), SketchError> {
    let (mut zero, mut clamped) = (0_u64, 0_u64);
    while !bytes.is_empty() {
        let ((z, c), rest) = visit_one(bytes, bucket)?;
        zero = zero.saturating_add(z);
        clamped = clamped.saturating_add(c);
        bytes = rest;
    }
    Ok((zero, clamped))
}

/// Walks the stored sketch `bytes` starts with; answers its zero and clamped counts and the
/// bytes after it.
fn visit_one<'b>(
    bytes: &'b [u8],
    bucket: &mut dyn FnMut(usize, u64),
) -> Result<((u64, u64), &'b [u8]), SketchError> {
    let (&version, mut rest) = bytes.split_first().ok_or(SketchError::Empty)?;
    if version != VERSION {
        return Err(SketchError::Version(version));
    }
    let zero = take_varint(&mut rest)?;
    let clamped = take_varint(&mut rest)?;
    let used = take_varint(&mut rest)?;
    let mut index = 0_u64;
    for i in 0..used {
        let gap = take_varint(&mut rest)?;
        if i > 0 && gap == 0 {
            return Err(SketchError::Bucket(index));
        }
        index = index.checked_add(gap).ok_or(SketchError::Overflow)?;
        let count = take_varint(&mut rest)?;
        let slot = usize::try_from(index)
            .ok()
            .filter(|i| *i < BUCKETS)
            .ok_or(SketchError::Bucket(index))?;
        bucket(slot, count);
    }
    Ok(((zero, clamped), rest))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, SketchError> {
    let mut value = 0_u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(SketchError::Truncated)?;
        *bytes = rest;
        let part = u64::from(byte & 0x7f);
        if shift == 63 && part > 1 {
            return Err(SketchError::Overflow);
        }
        value |= part << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(SketchError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The latency of rank `⌊q · (n - 1)⌋`, ms.
    fn exact_ms(sorted_us: &[i64], q: f64) -> f64 {
        #[expect(
            clippy::cast_precision_loss,
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss
        )]
        let rank = (q * (sorted_us.len() - 1) as f64).floor() as usize;
        #[expect(clippy::cast_precision_loss)]
        let ms = sorted_us[rank] as f64 / 1000.0;
        ms
    }

    const QUANTILES: [f64; 8] = [0.0, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 1.0];

    #[test]
    fn bucket_count_covers_the_range() {
        assert_eq!(bucket_of(MIN_US), 0);
        assert_eq!(bucket_of(MAX_US), BUCKETS - 1);
        let needed = ((MAX_US as f64 / MIN_US as f64).ln() / GAMMA.ln()).ceil() as usize + 1;
        assert_eq!(needed, BUCKETS);
        const { assert!(RELATIVE_ERROR < 0.02) };
    }

    #[test]
    fn empty_zero_and_clamped() {
        let mut s = LatencySketch::new();
        assert_eq!(s.quantile_ms(0.5), None);
        assert!(s.is_empty());
        s.add(50);
        s.add(-3);
        s.add(MAX_US * 2);
        assert_eq!(s.count(), 3);
        assert_eq!(s.clamped(), 1);
        assert_eq!(s.quantile_ms(0.0), Some(0.0));
        assert_eq!(s.quantile_ms(1.0), Some(600_000.0));
        assert_eq!(s.quantile_ms(f64::NAN), Some(0.0));
        assert_eq!(LatencySketch::decode(&s.encode()), Ok(s));
        assert_eq!(LatencySketch::new().encode(), vec![VERSION, 0, 0, 0]);
    }

    #[test]
    fn a_run_of_stored_sketches_merges_as_each_would() {
        let mut parts = [
            LatencySketch::new(),
            LatencySketch::new(),
            LatencySketch::new(),
        ];
        for (i, latency_us) in [50, 1_000, 250_000, 700_000_000, 3_000, 1_000]
            .iter()
            .enumerate()
        {
            parts[i % 2].add(*latency_us);
        }
        // The third stays empty: its encoding is a header alone.
        let mut each = LatencySketch::new();
        let mut run = Vec::new();
        for part in &parts {
            each.merge_encoded(&part.encode()).expect("one sketch");
            run.extend(part.encode());
        }
        let mut merged = LatencySketch::new();
        merged.merge_encoded_run(&run).expect("a run");
        assert_eq!(merged, each);
        assert_eq!(merged.count(), 6);
        merged.merge_encoded_run(&[]).expect("no sketch");
        assert_eq!(merged.count(), 6);
        // A bad sketch anywhere in the run: an error, and nothing of the run is added.
        run.extend([1, 0, 0]);
        assert_eq!(merged.merge_encoded_run(&run), Err(SketchError::Truncated));
        assert_eq!(merged, each);
    }

    #[test]
    fn bad_bytes_are_errors_not_panics() {
        assert_eq!(LatencySketch::decode(&[]), Err(SketchError::Empty));
        assert_eq!(
            LatencySketch::decode(&[9, 0, 0, 0]),
            Err(SketchError::Version(9))
        );
        assert_eq!(
            LatencySketch::decode(&[1, 0, 0]),
            Err(SketchError::Truncated)
        );
        assert_eq!(
            LatencySketch::decode(&[1, 0, 0, 1, 0x90, 0x03, 1]),
            Err(SketchError::Bucket(400))
        );
        assert_eq!(
            LatencySketch::decode(&[1, 0, 0, 2, 5, 1, 0, 1]),
            Err(SketchError::Bucket(5))
        );
        assert_eq!(
            LatencySketch::decode(&[1, 0, 0, 0, 7]),
            Err(SketchError::Trailing(1))
        );
        assert_eq!(
            LatencySketch::decode(&[
                1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f
            ]),
            Err(SketchError::Overflow)
        );
    }

    #[test]
    fn a_bad_blob_adds_nothing() {
        let mut s = LatencySketch::new();
        s.add(5_000);
        let before = s.clone();
        // Two good buckets, then a byte too many.
        let mut bad = LatencySketch::new();
        bad.add(113);
        bad.add(50_000_000);
        let mut bytes = bad.encode();
        bytes.push(0);
        assert_eq!(s.merge_encoded(&bytes), Err(SketchError::Trailing(1)));
        assert_eq!(s, before);
        assert_eq!(s.count(), 1);
        // A bucket out of order after a good one.
        assert_eq!(
            s.merge_encoded(&[1, 0, 0, 2, 5, 1, 0, 1]),
            Err(SketchError::Bucket(5))
        );
        assert_eq!(s, before);
    }

    #[test]
    fn windows_grow_both_ways_and_merge() {
        // Filled from the middle outwards, one latency at a time: the window grows below and
        // above, and the sketch equals one filled in order.
        let values = [20_000, 19_000, 150, 400_000_000, 110, 600_000_000, 20_000];
        let mut s = LatencySketch::new();
        for v in values {
            s.add(v);
        }
        let mut sorted = values;
        sorted.sort_unstable();
        let mut ordered = LatencySketch::new();
        for v in sorted {
            ordered.add(v);
        }
        assert_eq!(s, ordered);
        assert_eq!(s.encode(), ordered.encode());
        // Disjoint windows merge into one holding both.
        let (mut low, mut high) = (LatencySketch::new(), LatencySketch::new());
        low.add(120);
        high.add(500_000_000);
        let mut merged = high.clone();
        merged.merge(&low);
        let mut both = LatencySketch::new();
        both.add(120);
        both.add(500_000_000);
        assert_eq!(merged, both);
        assert_eq!(merged.quantile_ms(0.0), both.quantile_ms(0.0));
        assert_eq!(merged.quantile_ms(1.0), both.quantile_ms(1.0));
        // A slot worked out once counts as the latency would.
        let mut by_slot = LatencySketch::new();
        for v in sorted {
            by_slot.add_slot(SketchSlot::of(v));
        }
        assert_eq!(by_slot, ordered);
        // Only the buckets between the lowest and highest used are kept (plus a little slack).
        assert!(low.counts.len() <= 1 + WINDOW_SLACK);
    }

    #[test]
    fn encoding_is_compact() {
        let mut s = LatencySketch::new();
        for us in (1_000..200_000).step_by(37) {
            s.add(us);
        }
        let bytes = s.encode();
        // 135 buckets between 1 ms and 200 ms: about three bytes each.
        assert!(bytes.len() < 135 * 4, "{} bytes", bytes.len());
        assert_eq!(LatencySketch::decode(&bytes).as_ref(), Ok(&s));
    }

    proptest! {
        #[test]
        fn quantiles_are_within_the_stated_error(
            values in prop::collection::vec(MIN_US..=MAX_US, 1..400),
        ) {
            let mut s = LatencySketch::new();
            for v in &values {
                s.add(*v);
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            for q in QUANTILES {
                let exact = exact_ms(&sorted, q);
                let got = s.quantile_ms(q).unwrap_or(f64::NAN);
                prop_assert!(
                    (got - exact).abs() <= exact * RELATIVE_ERROR * (1.0 + 1e-9),
                    "q {} exact {} got {}", q, exact, got
                );
            }
        }

        #[test]
        fn merging_equals_sketching_everything(
            a in prop::collection::vec(0_i64..=MAX_US * 2, 0..200),
            b in prop::collection::vec(0_i64..=MAX_US * 2, 0..200),
        ) {
            let (mut sa, mut sb, mut all) =
                (LatencySketch::new(), LatencySketch::new(), LatencySketch::new());
            for v in &a { sa.add(*v); all.add(*v); }
            for v in &b { sb.add(*v); all.add(*v); }
            let mut merged = LatencySketch::decode(&sa.encode()).unwrap_or_default();
            merged.merge_encoded(&sb.encode()).unwrap_or_default();
            prop_assert_eq!(merged.count(), all.count());
            prop_assert_eq!(merged.encode(), all.encode());
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(s) = LatencySketch::decode(&bytes) {
                prop_assert_eq!(LatencySketch::decode(&s.encode()), Ok(s));
            }
        }
    }

    #[test]
    fn heavy_tailed_values_across_the_whole_range() {
        // Log-uniform from 0.1 ms to 10 min: every bucket is used.
        let mut values: Vec<i64> = (0..20_000)
            .map(|i| {
                let f = f64::from(i) / 20_000.0;
                (MIN_US as f64 * (MAX_US as f64 / MIN_US as f64).powf(f)) as i64
            })
            .collect();
        let mut s = LatencySketch::new();
        for v in &values {
            s.add(*v);
        }
        values.sort_unstable();
        for q in QUANTILES {
            let exact = exact_ms(&values, q);
            let got = s.quantile_ms(q).unwrap_or(f64::NAN);
            assert!(
                (got - exact).abs() <= exact * RELATIVE_ERROR * 1.000_001,
                "{q}: {exact} {got}"
            );
        }
    }
}
