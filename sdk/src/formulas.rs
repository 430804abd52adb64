//! The formulas several scorers share, as pure functions over counts and
//! sums, so that "happiness" or "SLA compliance" means the same thing in
//! every scorer (`docs/scorers.md` states them).
//!
//! Each function returns `None` where the formula is undefined (no
//! observations) rather than a made-up number.

use std::ops::RangeInclusive;

/// Scores of a 0-10 rating that count as negative (detractors).
pub const NEGATIVE_SCORES: RangeInclusive<u8> = 0..=6;

/// Scores of a 0-10 rating that count as positive (promoters).
pub const POSITIVE_SCORES: RangeInclusive<u8> = 9..=10;

/// Mean of `count` values summing to `sum`.
///
/// ```
/// assert_eq!(xla_sdk::formulas::mean(150.0, 4), Some(37.5));
/// assert_eq!(xla_sdk::formulas::mean(0.0, 0), None);
/// ```
pub fn mean(sum: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

/// Share of 1s among `count` booleans summing to `ones`, in percent.
///
/// First contact resolution and reopen rate are this.
///
/// ```
/// assert_eq!(xla_sdk::formulas::percent_true(3.0, 4), Some(75.0));
/// ```
pub fn percent_true(ones: f64, count: u64) -> Option<f64> {
    (count > 0).then(|| 100.0 * ones / count as f64)
}

/// Share of 0s among `count` booleans summing to `ones`, in percent.
///
/// SLA compliance is this over `sla_breached`: 18 SLAs met of 20 is 90.
///
/// ```
/// assert_eq!(xla_sdk::formulas::percent_false(2.0, 20), Some(90.0));
/// ```
pub fn percent_false(ones: f64, count: u64) -> Option<f64> {
    // (count - ones) rather than 100 - share: exact for whole numbers.
    (count > 0).then(|| 100.0 * (count as f64 - ones) / count as f64)
}

/// HappySignals' happiness over a histogram of 0-10 scores: % of 9-10 minus
/// % of 0-6, from -100 to +100.
///
/// ```
/// let mut histogram = [0u64; 11];
/// histogram[10] = 76;
/// histogram[3] = 24;
/// assert_eq!(xla_sdk::formulas::happiness(&histogram), Some(52.0));
/// ```
pub fn happiness(histogram: &[u64; 11]) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let positive: u64 = histogram[9..=10].iter().sum();
    let negative: u64 = histogram[..=6].iter().sum();
    Some(100.0 * (positive as f64 - negative as f64) / total as f64)
}

/// Happiness (-100..100) mapped onto 0..100, to combine it with percentages:
/// `(happiness + 100) / 2`.
///
/// ```
/// assert_eq!(xla_sdk::formulas::happiness_percent(40.0), 70.0);
/// ```
pub fn happiness_percent(happiness: f64) -> f64 {
    (happiness + 100.0) / 2.0
}

/// The score of a 0-10 rating value, if it is one: a whole number from 0 to 10.
///
/// ```
/// use xla_sdk::formulas::rating_score;
/// assert_eq!(rating_score(7.0), Some(7));
/// assert_eq!(rating_score(7.5), None);
/// assert_eq!(rating_score(11.0), None);
/// ```
pub fn rating_score(value: f64) -> Option<u8> {
    let whole = value.is_finite() && value.fract() == 0.0 && (0.0..=10.0).contains(&value);
    // The range check above makes the cast exact.
    whole.then_some(value as u8)
}

/// A histogram of 0-10 scores, built from ratings one at a time or read
/// from an aggregate's histogram.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ratings {
    counts: [u64; 11],
}

impl Ratings {
    /// No ratings.
    pub fn new() -> Ratings {
        Ratings::default()
    }

    /// Ratings from 11 counts, one per score 0..=10; `None` for another length.
    pub fn from_histogram(counts: &[u64]) -> Option<Ratings> {
        let counts: [u64; 11] = counts.try_into().ok()?;
        Some(Ratings { counts })
    }

    /// Counts one rating of `score`, which must be 0..=10.
    ///
    /// # Panics
    ///
    /// When `score` is above 10; [`rating_score`] gives only valid scores.
    pub fn add(&mut self, score: u8) {
        self.counts[usize::from(score)] += 1;
    }

    /// Number of ratings.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Number of negative (0-6) ratings.
    pub fn negative(&self) -> u64 {
        self.counts[..=6].iter().sum()
    }

    /// The 11 counts, one per score 0..=10.
    pub fn counts(&self) -> &[u64; 11] {
        &self.counts
    }

    /// [`happiness`] of these ratings; `None` when there are none.
    pub fn happiness(&self) -> Option<f64> {
        happiness(&self.counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_and_shares_by_hand() {
        assert_eq!(mean(10.0, 4), Some(2.5));
        assert_eq!(percent_true(1.0, 8), Some(12.5));
        assert_eq!(percent_true(0.0, 0), None);
        assert_eq!(percent_false(0.0, 5), Some(100.0));
        assert_eq!(percent_false(5.0, 5), Some(0.0));
        assert_eq!(percent_false(1.0, 3), Some(100.0 * 2.0 / 3.0));
        assert_eq!(percent_false(0.0, 0), None);
    }

    #[test]
    fn happiness_counts_7_and_8_as_neutral() {
        // 2 positive (9, 10), 1 negative (6), 2 neutral (7, 8) of 5: 20 % net.
        let mut ratings = Ratings::new();
        for score in [9, 10, 6, 7, 8] {
            ratings.add(score);
        }
        assert_eq!(ratings.total(), 5);
        assert_eq!(ratings.negative(), 1);
        assert_eq!(ratings.happiness(), Some(20.0));
        assert_eq!(Ratings::new().happiness(), None);
    }

    #[test]
    fn happiness_spans_minus_100_to_100() {
        let all = |score: usize| {
            let mut h = [0u64; 11];
            h[score] = 3;
            happiness(&h)
        };
        assert_eq!(all(0), Some(-100.0));
        assert_eq!(all(6), Some(-100.0));
        assert_eq!(all(8), Some(0.0));
        assert_eq!(all(9), Some(100.0));
        assert_eq!(happiness_percent(-100.0), 0.0);
        assert_eq!(happiness_percent(100.0), 100.0);
    }

    #[test]
    fn histograms_must_have_11_counts() {
        assert!(Ratings::from_histogram(&[0; 10]).is_none());
        let ratings = Ratings::from_histogram(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(ratings.happiness(), Some(0.0));
    }

    #[test]
    fn rating_scores_are_whole_numbers_0_to_10() {
        assert_eq!(rating_score(0.0), Some(0));
        assert_eq!(rating_score(10.0), Some(10));
        assert_eq!(rating_score(-1.0), None);
        assert_eq!(rating_score(f64::NAN), None);
        assert_eq!(rating_score(f64::INFINITY), None);
    }
}
