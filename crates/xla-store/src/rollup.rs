//! Rollups: what the store keeps per tenant, metric, day and dimension value
//! so that a month's report reads thousands of cells, not millions of rows.
//!
//! A cell is exact for count, sum, min, max and the 0-10 histogram, and holds
//! a relative-error quantile sketch (buckets of about ±1 %) that can be
//! merged across cells and, because it is bucket counts, can take a value
//! out again when an observation is replaced.

use serde::{Deserialize, Serialize};

/// Relative accuracy of the quantile sketch.
const SKETCH_ALPHA: f64 = 0.01;

/// A mergeable quantile sketch over positive values (DDSketch-style log
/// buckets). The buckets are one dense run of counts from `offset`: values
/// of one metric span a few hundred buckets, and a run decodes with one
/// allocation where a map would take one per node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sketch {
    /// Values at or below zero.
    zeros: u64,
    /// Bucket index of `counts[0]`.
    offset: i32,
    /// Counts per bucket; never starts or ends with a zero.
    counts: Vec<u64>,
}

fn gamma() -> f64 {
    (1.0 + SKETCH_ALPHA) / (1.0 - SKETCH_ALPHA)
}

/// `ln(gamma)`, worked out once (it is not a `const fn`): a bucket is one
/// logarithm, not two. The same expression as ever, so buckets of stored
/// sketches do not move.
static LN_GAMMA: std::sync::LazyLock<f64> = std::sync::LazyLock::new(|| gamma().ln());

impl Sketch {
    /// The bucket of a positive finite value; `None` for the zero bucket.
    fn bucket_of(value: f64) -> Option<i32> {
        (value > 0.0 && value.is_finite()).then(|| (value.ln() / *LN_GAMMA).ceil() as i32)
    }

    /// Makes room for buckets `low..=high` and returns the slot of `low`.
    fn widen(&mut self, low: i32, high: i32) -> usize {
        if self.counts.is_empty() {
            self.offset = low;
        }
        if low < self.offset {
            let grow = (self.offset - low) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = low;
        }
        let end = (high - self.offset) as usize + 1;
        if end > self.counts.len() {
            self.counts.resize(end, 0);
        }
        (low - self.offset) as usize
    }

    /// Adds a value.
    pub fn add(&mut self, value: f64) {
        self.add_bucket(Self::bucket_of(value));
    }

    fn add_bucket(&mut self, bucket: Option<i32>) {
        match bucket {
            None => self.zeros += 1,
            Some(bucket) => {
                let slot = self.widen(bucket, bucket);
                self.counts[slot] += 1;
            }
        }
    }

    /// Takes a value out (it must have been added).
    pub fn remove(&mut self, value: f64) {
        let Some(bucket) = Self::bucket_of(value) else {
            self.zeros = self.zeros.saturating_sub(1);
            return;
        };
        let slot = i64::from(bucket) - i64::from(self.offset);
        if let Some(count) = usize::try_from(slot).ok().and_then(|s| self.counts.get_mut(s)) {
            *count = count.saturating_sub(1);
        }
        self.trim();
    }

    /// Keeps the run free of zeros at either end, so equal data compares equal.
    fn trim(&mut self) {
        let leading = self.counts.iter().take_while(|c| **c == 0).count();
        if leading == self.counts.len() {
            self.counts.clear();
            self.offset = 0;
            return;
        }
        self.counts.drain(..leading);
        self.offset += leading as i32;
        while self.counts.last() == Some(&0) {
            self.counts.pop();
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Sketch) {
        self.zeros += other.zeros;
        if other.counts.is_empty() {
            return;
        }
        let start = self.widen(other.offset, other.offset + other.counts.len() as i32 - 1);
        for (ours, theirs) in self.counts[start..].iter_mut().zip(&other.counts) {
            *ours += theirs;
        }
    }

    /// Whether a decoded sketch is one `add` could have made: buckets of
    /// finite f64 values lie within about ±36,000. A backend checks each
    /// sketch it decodes, so damaged bytes cannot make a huge allocation.
    pub fn is_sane(&self) -> bool {
        const REACH: i64 = 40_000;
        let (low, high) = (
            i64::from(self.offset),
            i64::from(self.offset) + self.counts.len() as i64,
        );
        self.counts.len() as i64 <= 2 * REACH && low >= -REACH && high <= REACH
    }

    /// Values in the sketch.
    pub fn count(&self) -> u64 {
        self.zeros + self.counts.iter().sum::<u64>()
    }

    /// The `q` quantile (0..=1), within ±1 % of a value in the data.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let count = self.count();
        if count == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * (count - 1) as f64).floor() as u64) + 1;
        if rank <= self.zeros {
            return Some(0.0);
        }
        let mut seen = self.zeros;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let g = gamma();
                return Some(2.0 * g.powi(self.offset + i as i32) / (g + 1.0));
            }
        }
        None
    }
}

/// One rollup cell.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    /// Observations.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value (meaningless when `count` is 0).
    pub min: f64,
    /// Largest value (meaningless when `count` is 0).
    pub max: f64,
    /// Counts of rounded values 0..=10, for rating metrics.
    pub histogram: Option<[u64; 11]>,
    /// Quantile sketch.
    pub sketch: Sketch,
}

/// A value ready to add to rollup cells: its sketch bucket and histogram
/// slot worked out once, since one row counts in a cell per dimension.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prepared {
    value: f64,
    bucket: Option<i32>,
    /// `Some(slot)` for a rating metric; the inner `None` when the value is
    /// not a 0-10 rating.
    rating: Option<Option<usize>>,
}

impl Prepared {
    /// `value` of a metric; `rating` when the metric is a 0-10 rating
    /// ([`crate::is_rating`]).
    pub fn new(value: f64, rating: bool) -> Self {
        Prepared {
            value,
            bucket: Sketch::bucket_of(value),
            rating: rating.then(|| rating_slot(value)),
        }
    }
}

impl Rollup {
    /// Adds one value.
    pub fn add(&mut self, value: f64, rating: bool) {
        self.add_prepared(&Prepared::new(value, rating));
    }

    /// Adds one value prepared once for all the cells it counts in.
    pub fn add_prepared(&mut self, prepared: &Prepared) {
        let value = prepared.value;
        if self.count == 0 {
            self.min = value;
            self.max = value;
        } else {
            self.min = self.min.min(value);
            self.max = self.max.max(value);
        }
        self.count += 1;
        self.sum += value;
        if let Some(slot) = prepared.rating {
            let histogram = self.histogram.get_or_insert([0; 11]);
            if let Some(slot) = slot {
                histogram[slot] += 1;
            }
        }
        self.sketch.add_bucket(prepared.bucket);
    }

    /// Takes one value out. Returns false when min or max may now be wrong
    /// (the value was an extreme) and the cell must be recomputed from rows.
    pub fn remove(&mut self, value: f64) -> bool {
        self.count = self.count.saturating_sub(1);
        self.sum -= value;
        if let (Some(histogram), Some(slot)) = (self.histogram.as_mut(), rating_slot(value)) {
            histogram[slot] = histogram[slot].saturating_sub(1);
        }
        self.sketch.remove(value);
        if self.count == 0 {
            *self = Rollup::default();
            return true;
        }
        value != self.min && value != self.max
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Rollup) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            self.min = other.min;
            self.max = other.max;
        } else {
            self.min = self.min.min(other.min);
            self.max = self.max.max(other.max);
        }
        self.count += other.count;
        self.sum += other.sum;
        if let Some(theirs) = &other.histogram {
            let ours = self.histogram.get_or_insert([0; 11]);
            for (a, b) in ours.iter_mut().zip(theirs) {
                *a += b;
            }
        }
        self.sketch.merge(&other.sketch);
    }
}

/// The histogram slot of a 0-10 rating, if it is one.
fn rating_slot(value: f64) -> Option<usize> {
    (0.0..=10.0).contains(&value).then(|| value.round() as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_one_percent() {
        let mut sketch = Sketch::default();
        for v in 1..=10_000 {
            sketch.add(f64::from(v));
        }
        for (q, exact) in [(0.5, 5000.0), (0.9, 9000.0), (0.99, 9900.0)] {
            let estimate = sketch.quantile(q).expect("values");
            assert!((estimate - exact).abs() / exact < 0.011, "q{q}: {estimate} vs {exact}");
        }
    }

    #[test]
    fn a_prepared_value_adds_as_the_value_itself() {
        for rating in [false, true] {
            let (mut plain, mut prepared) = (Rollup::default(), Rollup::default());
            for v in [0.0, -2.0, 0.4, 3.0, 7.6, 10.0, 11.0, 1e9, f64::NAN, f64::INFINITY] {
                plain.add(v, rating);
                prepared.add_prepared(&Prepared::new(v, rating));
            }
            assert_eq!(format!("{plain:?}"), format!("{prepared:?}"), "rating {rating}");
        }
    }

    #[test]
    fn remove_undoes_add_except_for_extremes() {
        let mut cell = Rollup::default();
        for v in [3.0, 9.0, 10.0, 0.0] {
            cell.add(v, true);
        }
        assert!(cell.remove(9.0), "9 is not an extreme");
        assert_eq!((cell.count, cell.sum), (3, 13.0));
        assert_eq!(cell.histogram.expect("rating")[9], 0);
        assert!(!cell.remove(10.0), "10 was the max");
    }

    #[test]
    fn sketches_merge_and_remove_back_to_equal() {
        let (mut a, mut b) = (Sketch::default(), Sketch::default());
        for v in [0.5, 3.0, 700.0] {
            a.add(v);
        }
        for v in [0.0, 40.0, 1e6] {
            b.add(v);
        }
        let mut merged = a.clone();
        merged.merge(&b);
        assert_eq!(merged.count(), 6);
        for v in [0.0, 40.0, 1e6] {
            merged.remove(v);
        }
        assert_eq!(merged, a, "removing what was merged gives the same sketch");
        for v in [0.5, 3.0, 700.0] {
            merged.remove(v);
        }
        assert_eq!(merged, Sketch::default());
    }
}
