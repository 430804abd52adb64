//! One subject row (for example one ticket) read into its values with their
//! timestamps, checked.
//!
//! The host sends a row's values as `(metric, value)` pairs; a subject can
//! have several values of one metric (one `sla_breached` per SLA
//! definition). Each value has a companion pair `(<metric>.at, unix ms)`:
//! the n-th `<metric>.at` of the row is the time of the n-th `<metric>`, so
//! the pairing holds whatever the interleaving. A row may carry no `.at`
//! pairs for a metric at all (its readings then have no time), but not some.

use crate::{PluginError, SubjectRow};
use std::collections::BTreeMap;

/// Suffix of the companion pair carrying a value's observation time.
pub const AT_SUFFIX: &str = ".at";

/// One value of one metric of a subject, with when it was observed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reading {
    /// The value in the metric's unit.
    pub value: f64,
    /// When it was observed, unix ms UTC, when the host said.
    pub at: Option<i64>,
}

/// A subject row with its values by metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// The join key, e.g. the ticket number `INC0012345`.
    pub key: String,
    dimensions: Vec<(String, String)>,
    readings: BTreeMap<String, Vec<Reading>>,
}

impl Subject {
    /// Reads a row; fails with [`PluginError::BadData`], naming the subject
    /// and the metric, on a value that is not a finite number, a time that
    /// is not whole milliseconds, or `.at` pairs that do not match the
    /// values one for one.
    pub fn from_row(row: SubjectRow) -> Result<Subject, PluginError> {
        let key = row.key;
        let mut values: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        let mut times: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (name, value) in row.values {
            match name.strip_suffix(AT_SUFFIX) {
                Some(metric) => {
                    let at = millis(value).ok_or_else(|| {
                        PluginError::BadData(format!(
                            "subject `{key}`: `{name}` must be unix milliseconds, got {value}"
                        ))
                    })?;
                    times.entry(metric.to_string()).or_default().push(at);
                }
                None if value.is_finite() => values.entry(name).or_default().push(value),
                None => {
                    return Err(PluginError::BadData(format!(
                        "subject `{key}`: `{name}` must be a finite number, got {value}"
                    )));
                }
            }
        }
        if let Some(metric) = times.keys().find(|m| !values.contains_key(*m)) {
            return Err(PluginError::BadData(format!(
                "subject `{key}`: `{metric}{AT_SUFFIX}` comes without a `{metric}` value"
            )));
        }
        let mut readings = BTreeMap::new();
        for (metric, values) in values {
            let at = times.remove(&metric).unwrap_or_default();
            if !at.is_empty() && at.len() != values.len() {
                return Err(PluginError::BadData(format!(
                    "subject `{key}`: {} `{metric}` values but {} `{metric}{AT_SUFFIX}` times; expected one time per value",
                    values.len(),
                    at.len()
                )));
            }
            let list = values
                .into_iter()
                .enumerate()
                .map(|(i, value)| Reading {
                    value,
                    at: at.get(i).copied(),
                })
                .collect();
            readings.insert(metric, list);
        }
        Ok(Subject {
            key,
            dimensions: row.dimensions,
            readings,
        })
    }

    /// The value of a dimension; when the sources disagree, the first the
    /// host listed.
    pub fn dimension(&self, name: &str) -> Option<&str> {
        self.dimensions.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Every reading of `metric`, in the order the host sent them; empty
    /// when the subject has none.
    pub fn readings(&self, metric: &str) -> &[Reading] {
        self.readings.get(metric).map(Vec::as_slice).unwrap_or_default()
    }

    /// The most recent reading of `metric`: the latest time, readings
    /// without a time counting as oldest; of readings at the same time, the
    /// lowest value. That is the rule the host's stores apply to a ticket's
    /// latest rating (`xla_store::is_later_rating`), so a scorer reading rows
    /// and the store's outcome cells agree, whatever order rows come in.
    pub fn latest(&self, metric: &str) -> Option<Reading> {
        self.readings(metric)
            .iter()
            .copied()
            .max_by(|a, b| a.at.cmp(&b.at).then(b.value.total_cmp(&a.value)))
    }

    /// Sum of the readings of `metric`; `None` when the subject has none.
    pub fn sum(&self, metric: &str) -> Option<f64> {
        let readings = self.readings(metric);
        (!readings.is_empty()).then(|| readings.iter().map(|r| r.value).sum())
    }

    /// The slices the subject counts in: the whole window (`None`), then its
    /// value of the `group_by` dimension when it has one.
    pub fn slices(&self, group_by: Option<&str>) -> impl Iterator<Item = Option<&str>> {
        let group = group_by.and_then(|name| self.dimension(name));
        std::iter::once(None).chain(group.map(Some))
    }
}

/// Whole unix milliseconds within the range of `i64`.
fn millis(value: f64) -> Option<i64> {
    // `i64::MAX as f64` rounds up to 2^63, so the upper bound is exclusive.
    let fits = value.fract() == 0.0 && value >= i64::MIN as f64 && value < i64::MAX as f64;
    fits.then_some(value as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(values: &[(&str, f64)]) -> SubjectRow {
        SubjectRow {
            key: "INC0000001".into(),
            dimensions: vec![
                ("service".into(), "VPN".into()),
                ("service".into(), "Network".into()),
                ("channel".into(), "phone".into()),
            ],
            values: values.iter().map(|(m, v)| (m.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn pairs_the_nth_time_with_the_nth_value() {
        let subject = Subject::from_row(row(&[
            ("sla_breached", 0.0),
            ("happiness_rating", 4.0),
            ("sla_breached", 1.0),
            ("sla_breached.at", 1_000.0),
            ("happiness_rating.at", 5_000.0),
            ("sla_breached.at", 2_000.0),
        ]))
        .unwrap();
        let sla = subject.readings("sla_breached");
        assert_eq!(
            sla,
            [
                Reading {
                    value: 0.0,
                    at: Some(1_000)
                },
                Reading {
                    value: 1.0,
                    at: Some(2_000)
                }
            ]
        );
        assert_eq!(subject.sum("sla_breached"), Some(1.0));
        assert_eq!(subject.latest("happiness_rating").map(|r| r.value), Some(4.0));
        assert!(subject.readings("dex_score").is_empty());
        assert_eq!(subject.sum("dex_score"), None);
    }

    #[test]
    fn latest_prefers_the_latest_time_then_the_lowest_value() {
        let subject = Subject::from_row(row(&[
            ("happiness_rating", 3.0),
            ("happiness_rating", 9.0),
            ("happiness_rating", 5.0),
            ("happiness_rating", 7.0),
            ("happiness_rating.at", 10.0),
            ("happiness_rating.at", 30.0),
            ("happiness_rating.at", 30.0),
            ("happiness_rating.at", 30.0),
        ]))
        .unwrap();
        assert_eq!(
            subject.latest("happiness_rating"),
            Some(Reading {
                value: 5.0,
                at: Some(30)
            })
        );
        let untimed = Subject::from_row(row(&[("happiness_rating", 9.0), ("happiness_rating", 3.0)])).unwrap();
        assert_eq!(
            untimed.latest("happiness_rating"),
            Some(Reading { value: 3.0, at: None })
        );
    }

    #[test]
    fn slices_are_the_window_and_the_first_listed_group() {
        let subject = Subject::from_row(row(&[])).unwrap();
        let slices: Vec<_> = subject.slices(Some("service")).collect();
        assert_eq!(slices, [None, Some("VPN")]);
        let slices: Vec<_> = subject.slices(Some("country")).collect();
        assert_eq!(slices, [None]);
        assert_eq!(subject.slices(None).count(), 1);
    }

    #[test]
    fn mismatched_times_are_bad_data_naming_subject_and_metric() {
        let err = Subject::from_row(row(&[
            ("sla_breached", 0.0),
            ("sla_breached", 1.0),
            ("sla_breached.at", 1_000.0),
        ]))
        .unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("`INC0000001`") && message.contains("2 `sla_breached` values but 1"),
            "{message}"
        );

        let err = Subject::from_row(row(&[("reopened.at", 1_000.0)])).unwrap_err();
        assert!(
            err.to_string()
                .contains("`reopened.at` comes without a `reopened` value"),
            "{err}"
        );

        let err = Subject::from_row(row(&[("reopened", 1.0), ("reopened.at", 1.5)])).unwrap_err();
        assert!(err.to_string().contains("unix milliseconds"), "{err}");

        let err = Subject::from_row(row(&[("lost_time_minutes", f64::NAN)])).unwrap_err();
        assert!(
            err.to_string().contains("`lost_time_minutes` must be a finite number"),
            "{err}"
        );
    }
}
