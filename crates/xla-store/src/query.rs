//! Queries over rollups: series by day, week, month or quarter, with a
//! dimension filter and a group-by, and the XLA aggregations. A report over a
//! month reads the month's rollup cells, never its rows, except when a
//! filter and a group-by name two different dimensions (the rollups hold one
//! dimension at a time) or a per-subject dimension (ticket, device, user,
//! which have no cells): then the rows are read.

use super::block::Row;
use super::dict::Dictionary;
use super::keys::{self, DAY_MS, SetKey};
use super::model::is_rating;
use super::read;
use super::rollup::{Rollup, decode_set};
use super::{Store, StoreError};
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// Width of a series bucket (UTC; weeks start on Monday).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// One day.
    Day,
    /// ISO week, Monday to Sunday.
    Week,
    /// Calendar month.
    Month,
    /// Calendar quarter.
    Quarter,
}

/// How a bucket's values become one number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// Number of observations.
    Count,
    /// Sum of values.
    Sum,
    /// Mean value.
    Avg,
    /// Smallest value.
    Min,
    /// Largest value.
    Max,
    /// Median (±1 %).
    P50,
    /// 90th percentile (±1 %).
    P90,
    /// Share of ratings 9-10 minus share of 0-6, in points (-100..=100).
    Happiness,
    /// Share of 1s among 0/1 values, in percent.
    ShareTrue,
}

/// A series query.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesQuery {
    /// Tenant.
    pub tenant: String,
    /// Metric.
    pub metric: String,
    /// Start, unix ms, rounded down to its UTC day.
    pub from: i64,
    /// End, unix ms, exclusive, rounded up to a UTC day.
    pub to: i64,
    /// Bucket width.
    pub bucket: Bucket,
    /// Only rows with this dimension value.
    pub filter: Option<(String, String)>,
    /// One series per value of this dimension.
    pub group_by: Option<String>,
    /// The aggregation.
    pub aggregation: Aggregation,
}

/// One point of a series.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SeriesPoint {
    /// Start of the bucket, unix ms UTC.
    pub bucket_start: i64,
    /// Group-by value.
    pub group: Option<String>,
    /// The aggregated value; `None` when it is undefined (no data for a
    /// percentile, no ratings for happiness).
    pub value: Option<f64>,
    /// Observations behind it.
    pub count: u64,
}

/// The start (unix ms, UTC) of the bucket holding `at`.
pub fn bucket_start(at: i64, bucket: Bucket) -> i64 {
    let day = keys::day_of(at);
    let start_day = match bucket {
        Bucket::Day => day,
        // 1970-01-01 was a Thursday: Monday-based weekday is (day + 3) mod 7.
        Bucket::Week => day - (i64::from(day) + 3).rem_euclid(7) as i32,
        Bucket::Month | Bucket::Quarter => {
            // Days past chrono's calendar (a window to i64::MAX) stay where they are.
            let Some(date) = epoch_date().checked_add_signed(chrono::TimeDelta::days(i64::from(day))) else {
                return i64::from(day) * DAY_MS;
            };
            let month = match bucket {
                Bucket::Quarter => (date.month0() / 3) * 3 + 1,
                _ => date.month(),
            };
            let first = NaiveDate::from_ymd_opt(date.year(), month, 1).unwrap_or(date);
            (first - epoch_date()).num_days() as i32
        }
    };
    i64::from(start_day) * DAY_MS
}

fn epoch_date() -> NaiveDate {
    NaiveDate::default()
}

/// Evaluates an aggregation over a merged rollup.
pub fn evaluate(rollup: &Rollup, aggregation: Aggregation) -> Option<f64> {
    if rollup.count == 0 {
        return match aggregation {
            Aggregation::Count | Aggregation::Sum => Some(0.0),
            _ => None,
        };
    }
    let n = rollup.count as f64;
    match aggregation {
        Aggregation::Count => Some(n),
        Aggregation::Sum => Some(rollup.sum),
        Aggregation::Avg => Some(rollup.sum / n),
        Aggregation::Min => Some(rollup.min),
        Aggregation::Max => Some(rollup.max),
        Aggregation::P50 => rollup.sketch.quantile(0.5),
        Aggregation::P90 => rollup.sketch.quantile(0.9),
        Aggregation::Happiness => rollup.histogram.as_ref().and_then(happiness),
        Aggregation::ShareTrue => Some(100.0 * rollup.sum / n),
    }
}

/// % of 9-10 minus % of 0-6 over a 0-10 histogram.
pub fn happiness(histogram: &[u64; 11]) -> Option<f64> {
    let total: u64 = histogram.iter().sum();
    if total == 0 {
        return None;
    }
    let positive = histogram[9] + histogram[10];
    let negative: u64 = histogram[..=6].iter().sum();
    Some(100.0 * (positive as f64 - negative as f64) / total as f64)
}

impl Store {
    /// A series of `query.aggregation` per bucket (and group).
    pub fn series(&self, query: &SeriesQuery) -> Result<Vec<SeriesPoint>, StoreError> {
        let merged = self.merged(query)?;
        Ok(merged
            .into_iter()
            .map(|((bucket_start, group), rollup)| SeriesPoint {
                bucket_start,
                group,
                value: evaluate(&rollup, query.aggregation),
                count: rollup.count,
            })
            .collect())
    }

    /// Rollups merged per (bucket, group): what a scorer's aggregates are made of.
    pub fn rollups(&self, query: &SeriesQuery) -> Result<BTreeMap<(i64, Option<String>), Rollup>, StoreError> {
        self.merged(query)
    }

    fn merged(&self, query: &SeriesQuery) -> Result<BTreeMap<(i64, Option<String>), Rollup>, StoreError> {
        let mut inner = self.lock()?;
        let dict = &inner.dict;
        let mut out: BTreeMap<(i64, Option<String>), Rollup> = BTreeMap::new();
        let (Some(tenant), Some(metric)) = (dict.id(&query.tenant), dict.id(&query.metric)) else {
            return Ok(out);
        };
        // A dimension never stored matches nothing.
        let filter_key = match &query.filter {
            None => None,
            Some((k, _)) => match dict.id(k) {
                Some(id) => Some(id),
                None => return Ok(out),
            },
        };
        let group_key = match &query.group_by {
            None => None,
            Some(g) => match dict.id(g) {
                Some(id) => Some(id),
                None => return Ok(out),
            },
        };
        if query.from >= query.to {
            return Ok(out);
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        let unrolled = |k: Option<u32>| {
            k.and_then(|k| dict.string(k))
                .is_some_and(|name| keys::UNROLLED_DIMENSIONS.contains(&name))
        };
        let two_dimensions = matches!((filter_key, group_key), (Some(f), Some(g)) if f != g);
        if two_dimensions || unrolled(filter_key) || unrolled(group_key) {
            if self.retired(tenant, from_day)? {
                return Err(StoreError::RetiredRows {
                    what: "a filter and a group-by on two different dimensions, or on a per-subject dimension".into(),
                });
            }
            let rating = is_rating(&query.metric);
            let (dict, index) = inner.parts(&self.db)?;
            let (dict, index) = (&*dict, &*index);
            let filter = query.filter.as_ref().zip(filter_key).map(|((_, v), k)| (k, v.as_str()));
            read::for_each_live_row(&self.db, index, (tenant, metric), (from_day, to_day), |_, at, row| {
                if let Some((k, v)) = filter
                    && row_dimension(dict, row, k) != Some(v)
                {
                    return Ok(());
                }
                let group = match group_key {
                    Some(g) => match row_dimension(dict, row, g) {
                        Some(value) => Some(value.to_string()),
                        None => return Ok(()),
                    },
                    None => None,
                };
                out.entry((bucket_start(at, query.bucket), group))
                    .or_default()
                    .add(row.value.get(), rating);
                Ok(())
            })?;
            return Ok(out);
        }
        let filter = match &query.filter {
            None => None,
            Some((_, v)) => match dict.id(v) {
                Some(v) => Some(v),
                None => return Ok(out),
            },
        };
        // The one set per day that answers: the filter's or the group's dimension, or all rows.
        let wanted = filter_key.or(group_key).unwrap_or(0);
        let (start, end) = keys::rollup_range(tenant, metric, from_day, to_day);
        for entry in self.db.range(start..end) {
            let (key, value) = entry?;
            let set = SetKey::parse(&key).ok_or_else(|| StoreError::corrupt("a rollup key does not parse"))?;
            if set.dim_key != wanted {
                continue;
            }
            let bucket = bucket_start(i64::from(set.day) * DAY_MS, query.bucket);
            for (dim_value, rollup) in decode_set(&value)? {
                if filter.is_some_and(|f| f != dim_value) {
                    continue;
                }
                let group = match group_key {
                    Some(_) => Some(
                        dict.string(dim_value)
                            .ok_or_else(|| StoreError::corrupt("a dictionary id is missing"))?
                            .to_string(),
                    ),
                    None => None,
                };
                out.entry((bucket, group)).or_default().merge(&rollup);
            }
        }
        Ok(out)
    }
}

/// The value of a row's dimension `key`, rolled up or inline.
pub(crate) fn row_dimension<'r>(dict: &'r Dictionary, row: &'r Row, key: u32) -> Option<&'r str> {
    if let Some((_, v)) = row.dims.iter().find(|(k, _)| *k == key) {
        return dict.string(*v);
    }
    row.inline.iter().find(|(k, _)| *k == key).map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_where_the_calendar_says() {
        // 2026-03-18T15:00:00Z, a Wednesday.
        let at = 1_773_846_000_000;
        let date = |y, m, d| (NaiveDate::from_ymd_opt(y, m, d).expect("date") - epoch_date()).num_days() * DAY_MS;
        assert_eq!(bucket_start(at, Bucket::Day), date(2026, 3, 18));
        assert_eq!(bucket_start(at, Bucket::Week), date(2026, 3, 16));
        assert_eq!(bucket_start(at, Bucket::Month), date(2026, 3, 1));
        assert_eq!(bucket_start(at, Bucket::Quarter), date(2026, 1, 1));
    }

    #[test]
    fn happiness_of_76_positive_and_24_negative_is_52() {
        let mut histogram = [0u64; 11];
        histogram[10] = 76;
        histogram[3] = 24;
        assert_eq!(happiness(&histogram), Some(52.0));
    }
}

/// One group of a breakdown.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BreakdownRow {
    /// The dimension value.
    pub group: String,
    /// The group's value (sum or count).
    pub value: f64,
    /// Its share of the total, 0..=1.
    pub share: f64,
    /// Share of this group and every larger one, 0..=1.
    pub cumulative_share: f64,
}

/// Groups ranked by their part of a metric, with Pareto shares: which
/// assignment groups hold 80 % of lost time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Breakdown {
    /// The top groups, largest first.
    pub rows: Vec<BreakdownRow>,
    /// Total over every group.
    pub total: f64,
    /// Groups in all.
    pub groups: usize,
    /// How many of the largest groups it takes to reach 80 % of the total.
    pub groups_for_80_percent: usize,
}

impl Store {
    /// The `top` values of `dimension` ranked by the sum (or, with
    /// `by_count`, the number) of a metric's observations in `[from, to)`.
    #[allow(clippy::too_many_arguments)]
    pub fn breakdown(
        &self,
        tenant: &str,
        metric: &str,
        from: i64,
        to: i64,
        dimension: &str,
        by_count: bool,
        top: usize,
    ) -> Result<Breakdown, StoreError> {
        let query = SeriesQuery {
            tenant: tenant.into(),
            metric: metric.into(),
            from,
            to,
            bucket: Bucket::Day,
            filter: None,
            group_by: Some(dimension.into()),
            aggregation: Aggregation::Sum,
        };
        let mut per_group: BTreeMap<String, f64> = BTreeMap::new();
        for ((_, group), rollup) in self.merged(&query)? {
            let value = if by_count { rollup.count as f64 } else { rollup.sum };
            *per_group.entry(group.unwrap_or_default()).or_default() += value;
        }
        let mut ranked: Vec<(String, f64)> = per_group.into_iter().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let total: f64 = ranked.iter().map(|(_, v)| v).sum();
        let fraction = |v: f64| if total > 0.0 { v / total } else { 0.0 };
        let mut running = 0.0;
        let mut groups_for_80_percent = 0;
        let mut rows = Vec::new();
        for (i, (group, value)) in ranked.iter().enumerate() {
            running += value;
            let (share, cumulative) = (fraction(*value), fraction(running));
            if groups_for_80_percent == 0 && cumulative >= 0.8 - 1e-9 {
                groups_for_80_percent = i + 1;
            }
            if i < top {
                rows.push(BreakdownRow {
                    group: group.clone(),
                    value: *value,
                    share,
                    cumulative_share: cumulative,
                });
            }
        }
        Ok(Breakdown {
            rows,
            total,
            groups: ranked.len(),
            groups_for_80_percent,
        })
    }
}
