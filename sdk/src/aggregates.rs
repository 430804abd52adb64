//! A scorer's aggregates by group and metric, checked before any formula
//! sees them.
//!
//! The host sends, per metric, one aggregate for the whole window (group
//! `None`) and one per group when the XLA has a group-by. [`AggregateTable`]
//! indexes them, refuses a (metric, group) sent twice, and lists groups in a
//! fixed order (the whole window first, then groups by name), so scores come
//! out in the same order for the same input. The `check_*` functions reject
//! values a metric cannot take, naming the metric and the group.

use crate::formulas::Ratings;
use crate::{Aggregate, PluginError, ScoreInput};
use std::collections::BTreeMap;

/// How an error message names a group: ``group `VPN` `` or `the whole window`.
pub fn group_label(group: Option<&str>) -> String {
    match group {
        Some(group) => format!("group `{group}`"),
        None => "the whole window".into(),
    }
}

fn label(aggregate: &Aggregate) -> String {
    format!("`{}` for {}", aggregate.metric, group_label(aggregate.group.as_deref()))
}

/// The aggregates of one [`ScoreInput`], by group and metric.
#[derive(Debug, Clone, Default)]
pub struct AggregateTable<'a> {
    groups: BTreeMap<Option<&'a str>, BTreeMap<&'a str, &'a Aggregate>>,
}

impl<'a> AggregateTable<'a> {
    /// Indexes the input's aggregates.
    ///
    /// Fails with [`PluginError::BadData`] when one (metric, group) comes
    /// twice or a non-empty aggregate's sum, min or max is not a finite
    /// number.
    pub fn new(input: &'a ScoreInput) -> Result<AggregateTable<'a>, PluginError> {
        let mut groups: BTreeMap<Option<&str>, BTreeMap<&str, &Aggregate>> = BTreeMap::new();
        for aggregate in &input.aggregates {
            if aggregate.count > 0
                && ![aggregate.sum, aggregate.min, aggregate.max]
                    .iter()
                    .all(|v| v.is_finite())
            {
                return Err(PluginError::BadData(format!(
                    "{}: sum, min and max must be finite numbers, got {}, {} and {}",
                    label(aggregate),
                    aggregate.sum,
                    aggregate.min,
                    aggregate.max
                )));
            }
            let metrics = groups.entry(aggregate.group.as_deref()).or_default();
            if metrics.insert(aggregate.metric.as_str(), aggregate).is_some() {
                return Err(PluginError::BadData(format!(
                    "{} came twice; expected one aggregate per metric and group",
                    label(aggregate)
                )));
            }
        }
        Ok(AggregateTable { groups })
    }

    /// Every group that has an aggregate of any metric: `None` (the whole
    /// window) first, then groups by name.
    pub fn groups(&self) -> impl Iterator<Item = Option<&'a str>> + '_ {
        self.groups.keys().copied()
    }

    /// The aggregate of `metric` for `group`, when it holds observations.
    pub fn get(&self, group: Option<&str>, metric: &str) -> Option<&'a Aggregate> {
        self.groups
            .get(&group)
            .and_then(|metrics| metrics.get(metric))
            .copied()
            .filter(|a| a.count > 0)
    }

    /// The aggregates of `metric` that hold observations, in group order.
    pub fn of_metric<'s>(&'s self, metric: &'s str) -> impl Iterator<Item = &'a Aggregate> + 's {
        self.groups.keys().filter_map(move |group| self.get(*group, metric))
    }
}

/// Checks that a boolean metric's aggregate holds only 0s and 1s: min and
/// max within 0..=1 and the sum (the number of 1s) a whole number within
/// 0..=count.
pub fn check_bool(aggregate: &Aggregate) -> Result<(), PluginError> {
    check_range(aggregate, 0.0, 1.0)?;
    let sum = aggregate.sum;
    if sum < 0.0 || sum > aggregate.count as f64 || sum.fract() != 0.0 {
        return Err(PluginError::BadData(format!(
            "{}: a boolean metric's sum counts its 1s, so it must be a whole number within 0..={}, got {}",
            label(aggregate),
            aggregate.count,
            aggregate.sum
        )));
    }
    Ok(())
}

/// Checks that every value of the aggregate lies within `low..=high`.
pub fn check_range(aggregate: &Aggregate, low: f64, high: f64) -> Result<(), PluginError> {
    if aggregate.count == 0 || (aggregate.min >= low && aggregate.max <= high) {
        return Ok(());
    }
    Err(PluginError::BadData(format!(
        "{}: values must lie within {low}..={high}, got min {} and max {}",
        label(aggregate),
        aggregate.min,
        aggregate.max
    )))
}

/// Checks that no value of the aggregate is negative.
pub fn check_non_negative(aggregate: &Aggregate) -> Result<(), PluginError> {
    check_range(aggregate, 0.0, f64::INFINITY)
}

/// The 0-10 rating histogram of a `*_rating` metric's aggregate: present,
/// 11 counts, adding up to the aggregate's count.
pub fn ratings(aggregate: &Aggregate) -> Result<Ratings, PluginError> {
    let histogram = aggregate.histogram.as_deref().ok_or_else(|| {
        PluginError::BadData(format!(
            "{}: a 0-10 rating aggregate needs its histogram, and it has none",
            label(aggregate)
        ))
    })?;
    let ratings = Ratings::from_histogram(histogram).ok_or_else(|| {
        PluginError::BadData(format!(
            "{}: a rating histogram has 11 counts (scores 0..=10), got {}",
            label(aggregate),
            histogram.len()
        ))
    })?;
    if ratings.total() != aggregate.count {
        return Err(PluginError::BadData(format!(
            "{}: the histogram counts {} ratings but the aggregate counts {}",
            label(aggregate),
            ratings.total(),
            aggregate.count
        )));
    }
    Ok(ratings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layer;

    fn aggregate(metric: &str, group: Option<&str>, count: u64, sum: f64) -> Aggregate {
        Aggregate {
            metric: metric.into(),
            layer: Layer::Operational,
            group: group.map(str::to_string),
            count,
            sum,
            min: 0.0,
            max: 1.0,
            histogram: None,
        }
    }

    fn input(aggregates: Vec<Aggregate>) -> ScoreInput {
        ScoreInput {
            tenant: "acme".into(),
            window_start: 0,
            window_end: 1,
            group_by: Some("service".into()),
            parameters: String::new(),
            aggregates,
        }
    }

    #[test]
    fn groups_come_whole_window_first_then_by_name() {
        let input = input(vec![
            aggregate("reopened", Some("VPN"), 2, 1.0),
            aggregate("reopened", None, 5, 1.0),
            aggregate("reopened", Some("Email"), 3, 0.0),
            aggregate("reopened", Some("Printing"), 0, 0.0),
        ]);
        let table = AggregateTable::new(&input).unwrap();
        let groups: Vec<_> = table.groups().collect();
        assert_eq!(groups, [None, Some("Email"), Some("Printing"), Some("VPN")]);
        let with_data: Vec<_> = table.of_metric("reopened").map(|a| a.group.as_deref()).collect();
        assert_eq!(with_data, [None, Some("Email"), Some("VPN")]);
        assert!(table.get(Some("Printing"), "reopened").is_none());
        assert!(table.get(Some("Email"), "sla_breached").is_none());
    }

    #[test]
    fn a_metric_and_group_sent_twice_is_bad_data() {
        let input = input(vec![
            aggregate("reopened", Some("VPN"), 2, 1.0),
            aggregate("reopened", Some("VPN"), 2, 1.0),
        ]);
        let err = AggregateTable::new(&input).unwrap_err();
        assert!(
            err.to_string().contains("`reopened` for group `VPN` came twice"),
            "{err}"
        );
    }

    #[test]
    fn non_finite_sums_are_bad_data() {
        let input = input(vec![aggregate("reopened", None, 2, f64::NAN)]);
        let err = AggregateTable::new(&input).unwrap_err();
        assert!(err.to_string().contains("`reopened` for the whole window"), "{err}");
    }

    #[test]
    fn booleans_must_be_0_or_1() {
        assert!(check_bool(&aggregate("reopened", None, 4, 4.0)).is_ok());
        let err = check_bool(&aggregate("reopened", Some("VPN"), 4, 5.0)).unwrap_err();
        assert!(err.to_string().contains("`reopened` for group `VPN`"), "{err}");
        let err = check_bool(&aggregate("reopened", None, 4, 1.5)).unwrap_err();
        assert!(err.to_string().contains("whole number within 0..=4, got 1.5"), "{err}");
        let mut two = aggregate("sla_breached", None, 4, 2.0);
        two.max = 2.0;
        let err = check_bool(&two).unwrap_err();
        assert!(err.to_string().contains("within 0..=1"), "{err}");
    }

    #[test]
    fn rating_histograms_must_match_the_count() {
        let mut rated = aggregate("happiness_rating", Some("VPN"), 2, 19.0);
        let err = ratings(&rated).unwrap_err();
        assert!(err.to_string().contains("needs its histogram"), "{err}");
        rated.histogram = Some(vec![0; 10]);
        let err = ratings(&rated).unwrap_err();
        assert!(err.to_string().contains("11 counts"), "{err}");
        rated.histogram = Some(vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
        let err = ratings(&rated).unwrap_err();
        assert!(
            err.to_string().contains("counts 1 ratings but the aggregate counts 2"),
            "{err}"
        );
        rated.histogram = Some(vec![0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(ratings(&rated).unwrap().happiness(), Some(100.0));
    }
}

/// Which values of a 0/1 metric a share counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// The 1s (first contact resolution, reopen rate).
    Ones,
    /// The 0s (SLA compliance: SLAs not breached).
    Zeros,
}

/// A percent-of-booleans score: which metric, which result name, what it
/// counts, and the detail's names for the counted and all values.
#[derive(Debug, Clone, Copy)]
pub struct ShareScore<'a> {
    /// The 0/1 metric read.
    pub metric: &'a str,
    /// The result's name.
    pub result: &'a str,
    /// Which values the percent counts.
    pub counting: Counting,
    /// Detail key for the counted values, e.g. `reopened`.
    pub counted: &'a str,
    /// Detail key for the others, e.g. `tickets` (all) or `breached`.
    pub rest: (&'a str, bool),
}

impl ShareScore<'_> {
    /// One score per group (and the whole window) with at least
    /// `min_sample` values: `100 × counted / count`, sample size the count.
    /// The detail holds the counted values and, under `rest.0`, either all
    /// values (`rest.1` true) or the uncounted ones.
    pub fn scores(&self, input: &ScoreInput, min_sample: u64) -> Result<Vec<crate::Score>, PluginError> {
        let table = AggregateTable::new(input)?;
        let mut scores = Vec::new();
        for aggregate in table.of_metric(self.metric) {
            check_bool(aggregate)?;
            let percent = match self.counting {
                Counting::Ones => crate::formulas::percent_true(aggregate.sum, aggregate.count),
                Counting::Zeros => crate::formulas::percent_false(aggregate.sum, aggregate.count),
            };
            let Some(value) = percent else { continue };
            if aggregate.count < min_sample {
                continue;
            }
            let ones = aggregate.sum as u64;
            let counted = match self.counting {
                Counting::Ones => ones,
                Counting::Zeros => aggregate.count - ones,
            };
            let (rest_key, all) = self.rest;
            let rest = if all {
                aggregate.count
            } else {
                aggregate.count - counted
            };
            let mut detail = serde_json::Map::new();
            detail.insert(self.counted.into(), counted.into());
            detail.insert(rest_key.into(), rest.into());
            scores.push(crate::Score {
                name: self.result.into(),
                group: aggregate.group.clone(),
                value,
                sample_size: aggregate.count,
                detail: Some(serde_json::Value::Object(detail).to_string()),
            });
        }
        Ok(scores)
    }
}
