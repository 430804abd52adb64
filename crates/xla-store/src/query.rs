//! Queries over rollups: series by day, week, month or quarter, with a
//! dimension filter and a group-by, the XLA aggregations, and breakdowns
//! with Pareto shares. A backend answers [`SeriesQuery`] with merged rollup
//! cells ([`crate::Store::rollups`]); everything here is computed from those
//! cells, the same for every backend.

use super::rollup::Rollup;
use super::{DAY_MS, day_of};
use chrono::{Datelike, NaiveDate};
use std::collections::BTreeMap;

/// Width of a series bucket (UTC; weeks start on Monday).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
    let day = day_of(at);
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// A breakdown: the values of one dimension ranked by their part of a metric.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BreakdownQuery {
    /// Tenant.
    pub tenant: String,
    /// Metric.
    pub metric: String,
    /// Start, unix ms, inclusive.
    pub from: i64,
    /// End, unix ms, exclusive.
    pub to: i64,
    /// The dimension whose values are ranked.
    pub dimension: String,
    /// Rank by number of observations instead of their sum.
    pub by_count: bool,
    /// Rows to return (the total, group count and Pareto point cover all groups).
    pub top: usize,
}

impl BreakdownQuery {
    /// The series query whose rollups answer it: the window per dimension value.
    pub fn series(&self) -> SeriesQuery {
        SeriesQuery {
            tenant: self.tenant.clone(),
            metric: self.metric.clone(),
            from: self.from,
            to: self.to,
            bucket: Bucket::Day,
            filter: None,
            group_by: Some(self.dimension.clone()),
            aggregation: Aggregation::Sum,
        }
    }
}

/// Ranks the groups of `rollups` (the answer to [`BreakdownQuery::series`]).
pub fn breakdown(query: &BreakdownQuery, rollups: BTreeMap<(i64, Option<String>), Rollup>) -> Breakdown {
    let mut per_group: BTreeMap<String, f64> = BTreeMap::new();
    for ((_, group), rollup) in rollups {
        let value = if query.by_count {
            rollup.count as f64
        } else {
            rollup.sum
        };
        *per_group.entry(group.unwrap_or_default()).or_default() += value;
    }
    let mut ranked: Vec<(String, f64)> = per_group.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    // `+ 0.0`: an empty float sum is -0.0, which would serialize as `-0.0`.
    let total: f64 = ranked.iter().map(|(_, v)| v).sum::<f64>() + 0.0;
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
        if i < query.top {
            rows.push(BreakdownRow {
                group: group.clone(),
                value: *value,
                share,
                cumulative_share: cumulative,
            });
        }
    }
    Breakdown {
        rows,
        total,
        groups: ranked.len(),
        groups_for_80_percent,
    }
}

/// A series: each merged cell evaluated with the query's aggregation.
pub fn series(query: &SeriesQuery, rollups: BTreeMap<(i64, Option<String>), Rollup>) -> Vec<SeriesPoint> {
    rollups
        .into_iter()
        .map(|((bucket_start, group), rollup)| SeriesPoint {
            bucket_start,
            group,
            value: evaluate(&rollup, query.aggregation),
            count: rollup.count,
        })
        .collect()
}
