//! Retention: how long raw rows are kept, per metric or layer, and what the
//! store keeps. Rollups are kept forever; retention drops only the raw rows
//! under them, in whole UTC days, so years of reports cost days of rows.
//!
//! ```toml
//! [store.retention]
//! raw_days = 730                   # every metric no rule below names
//! layers = { technical = 90 }      # device telemetry: 90 days
//! metrics = { lost_time_minutes = 1095 }
//! ```
//!
//! A metric's own rule wins over its layer's, which wins over `raw_days`;
//! a metric no rule reaches keeps its raw rows forever.

use crate::{DAY_MS, Store, StoreError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xla_types::Layer;

/// Longest retention a rule may give: a hundred years. More is a typo
/// (hours or milliseconds taken for days).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

/// `[store.retention]`: days of raw rows kept. Nothing set keeps everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionPolicy {
    /// Days of raw rows kept for a metric that neither `metrics` nor
    /// `layers` names; unset keeps them forever.
    pub raw_days: Option<u32>,
    /// Days per layer, over `raw_days`.
    #[serde(default)]
    pub layers: LayerDays,
    /// Days per metric (`dex_score`), over its layer's.
    #[serde(default)]
    pub metrics: BTreeMap<String, u32>,
}

/// Days of raw rows kept per layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDays {
    /// X: survey answers (ratings, lost time).
    pub experience: Option<u32>,
    /// O: tickets, SLAs.
    pub operational: Option<u32>,
    /// T: device telemetry.
    pub technical: Option<u32>,
}

impl LayerDays {
    fn get(&self, layer: Layer) -> Option<u32> {
        match layer {
            Layer::Experience => self.experience,
            Layer::Operational => self.operational,
            Layer::Technical => self.technical,
        }
    }
}

/// Which rule gave a metric its retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetentionRule {
    /// `metrics.<name>`.
    Metric,
    /// `layers.<layer>`.
    Layer,
    /// `raw_days`.
    Default,
}

impl RetentionPolicy {
    /// Whether any rule is set.
    pub fn is_set(&self) -> bool {
        *self != RetentionPolicy::default()
    }

    /// Checks that every rule keeps between 1 and [`MAX_RETENTION_DAYS`]
    /// days; the message names the rule.
    pub fn validate(&self) -> Result<(), String> {
        let layers = [
            ("layers.experience", self.layers.experience),
            ("layers.operational", self.layers.operational),
            ("layers.technical", self.layers.technical),
        ];
        let metrics = self.metrics.iter().map(|(m, d)| (format!("metrics.{m}"), Some(*d)));
        let rules = std::iter::once(("raw_days".to_string(), self.raw_days))
            .chain(layers.into_iter().map(|(name, days)| (name.to_string(), days)))
            .chain(metrics);
        for (name, days) in rules {
            if let Some(days) = days
                && !(1..=MAX_RETENTION_DAYS).contains(&days)
            {
                return Err(format!(
                    "[store.retention] {name} = {days}: give the days of raw rows to keep, from 1 to {MAX_RETENTION_DAYS}"
                ));
            }
        }
        Ok(())
    }

    /// Days of raw rows kept for `metric` of `layer`, and the rule that
    /// says so; `None` keeps them forever.
    pub fn days_for(&self, metric: &str, layer: Option<Layer>) -> Option<(u32, RetentionRule)> {
        if let Some(days) = self.metrics.get(metric) {
            return Some((*days, RetentionRule::Metric));
        }
        if let Some(days) = layer.and_then(|l| self.layers.get(l)) {
            return Some((days, RetentionRule::Layer));
        }
        self.raw_days.map(|days| (days, RetentionRule::Default))
    }

    /// The `metrics.<name>` rules that name none of `stored`: a typo would
    /// otherwise keep raw rows forever without a word.
    pub fn unmatched_rules(&self, stored: &[StoredMetric]) -> Vec<String> {
        self.metrics
            .keys()
            .filter(|rule| !stored.iter().any(|m| &m.metric == *rule))
            .cloned()
            .collect()
    }
}

/// What one [`Store::retire_before`] call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionSummary {
    /// Raw observations dropped.
    pub dropped: u64,
    /// The call stopped after its share of work with more to drop: call
    /// again with the same arguments to go on.
    #[serde(default)]
    pub more: bool,
}

/// A metric a tenant has stored, with its layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMetric {
    /// Tenant.
    pub tenant: String,
    /// Metric name.
    pub metric: String,
    /// The layer of its rows (of the first one read, should a source mix
    /// layers under one name); `None` when none of its rows is left.
    pub layer: Option<Layer>,
    /// Raw rows of days before this (unix ms, a UTC day's start) were
    /// dropped by retention; `None` when none was.
    #[serde(default)]
    pub retired_before: Option<i64>,
}

/// What the store keeps of one tenant's metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricStats {
    /// Tenant.
    pub tenant: String,
    /// Metric name.
    pub metric: String,
    /// Layer of its rows (see [`StoredMetric::layer`]).
    pub layer: Option<Layer>,
    /// Raw rows that count (replaced and retracted ones excluded).
    pub raw_rows: u64,
    /// Bytes of the blocks holding raw rows, replaced rows not yet
    /// compacted included, as the backend stores them.
    pub raw_bytes: u64,
    /// Rows whose raw data retention dropped; what a later replace needs
    /// to correct the rollups (fingerprint, value, rolled-up dimensions)
    /// is kept.
    pub retired_rows: u64,
    /// Bytes of what is kept of retired rows.
    pub retired_bytes: u64,
    /// Rollup cells (one per UTC day and dimension value).
    pub rollup_cells: u64,
    /// Bytes of the rollup cells, keys included.
    pub rollup_bytes: u64,
    /// Start of the oldest UTC day with raw rows (unix ms).
    pub raw_from: Option<i64>,
    /// Start of the newest UTC day with raw rows (unix ms).
    pub raw_to: Option<i64>,
    /// Raw rows of days before this (unix ms, a UTC day's start) were
    /// dropped by retention; `None` when none was.
    pub retired_before: Option<i64>,
}

/// What the store keeps, per tenant and metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoreStats {
    /// One entry per tenant and metric, ordered by tenant, then metric.
    pub metrics: Vec<MetricStats>,
    /// Bytes the store takes on disk, every file included.
    pub disk_bytes: u64,
}

/// Refuses a retention cutoff in the future: a cutoff only ever moves
/// forward, so one in the future (seconds taken for milliseconds) would
/// retire every day to come.
///
/// # Errors
/// [`StoreError::BadRequest`] saying what to give.
pub fn check_cutoff(cutoff: i64) -> Result<(), StoreError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(i64::MAX, |d| d.as_millis() as i64);
    if cutoff > now {
        return Err(StoreError::BadRequest(format!(
            "the retention cutoff {cutoff} is in the future; give unix milliseconds before now"
        )));
    }
    Ok(())
}

/// What [`apply_retention`] did to one metric.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppliedRetention {
    /// Tenant.
    pub tenant: String,
    /// Metric name.
    pub metric: String,
    /// Days of raw rows kept, and the rule that said so.
    pub days: u32,
    /// Which rule.
    pub rule: RetentionRule,
    /// Raw rows of UTC days that ended by this (unix ms) are gone.
    pub cutoff: i64,
    /// Raw rows dropped now; `None` in a plan ([`plan_retention`]), which
    /// drops nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
}

/// What `policy` does at `now` (unix ms) to each of `stored`: the metrics a
/// rule reaches, each with its days, rule and cutoff (a UTC day's raw rows
/// go once the whole day is more than the rule's days old). Nothing is
/// dropped: [`apply_retention`] carries the plan out.
pub fn plan_retention(stored: &[StoredMetric], policy: &RetentionPolicy, now: i64) -> Vec<AppliedRetention> {
    stored
        .iter()
        .filter_map(|m| {
            let (days, rule) = policy.days_for(&m.metric, m.layer)?;
            Some(AppliedRetention {
                tenant: m.tenant.clone(),
                metric: m.metric.clone(),
                days,
                rule,
                cutoff: now.saturating_sub(i64::from(days) * DAY_MS),
                dropped: None,
            })
        })
        .collect()
}

/// Applies `policy` at `now` (unix ms) to every metric of every tenant:
/// each metric a rule reaches loses the raw rows of days older than the
/// rule's days. Rollups stay. Running it again drops nothing more.
///
/// `stop` is asked between bounded calls to the store: when it says so
/// (a shutdown), the work done so far is kept and returned, and the next
/// run goes on from there.
///
/// # Errors
/// The first [`StoreError`] of the store; metrics done before it stay done.
pub async fn apply_retention(
    store: &dyn Store,
    policy: &RetentionPolicy,
    now: i64,
    stop: &(dyn Fn() -> bool + Sync),
) -> Result<Vec<AppliedRetention>, StoreError> {
    let mut applied = Vec::new();
    if !policy.is_set() {
        return Ok(applied);
    }
    for mut planned in plan_retention(&store.stored_metrics().await?, policy, now) {
        if stop() {
            break;
        }
        let mut dropped = 0;
        loop {
            let summary = store
                .retire_before(&planned.tenant, Some(&planned.metric), planned.cutoff)
                .await?;
            dropped += summary.dropped;
            if !summary.more || stop() {
                break;
            }
        }
        planned.dropped = Some(dropped);
        applied.push(planned);
    }
    Ok(applied)
}

/// One UTC day of a tenant's metric that retention retired, as a backend
/// keeps it: the day's rollup cells (which no raw row can rebuild any
/// more) and what is kept of its retired rows. What `xla-host store
/// migrate` moves from one backend to another.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetiredDay {
    /// The day: days since the unix epoch, UTC.
    pub day: i32,
    /// The day's rollup cells, exactly: `None` for the cell of all the
    /// day's rows, else the rolled-up dimension and value it counts.
    pub cells: Vec<(Option<(String, String)>, crate::Rollup)>,
    /// What is kept of each retired row that still counts (replaced and
    /// retracted ones excluded).
    pub rows: Vec<RetiredRecord>,
}

/// What a backend keeps of a retired row: enough to take it out of its
/// day's cells exactly should the source change the record, and for the
/// ticket join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetiredRecord {
    /// The connector instance that stored it.
    pub source: String,
    /// The record's id at the source; `None` where the backend kept only a
    /// fingerprint of it (sled keeps a survey answer's or SLA record's id, not others').
    pub record_id: Option<String>,
    /// The backend's own key of the record, unique among the rows of its
    /// source and metric (its id where known, else a fingerprint in hex):
    /// what stands for the id where `record_id` is `None`.
    pub key: String,
    /// Its time, unix ms; the start of its day where the backend kept
    /// only the day.
    pub at: i64,
    /// Its value.
    pub value: f64,
    /// Its layer.
    pub layer: Layer,
    /// Its rolled-up dimensions (none of [`crate::UNROLLED_DIMENSIONS`]),
    /// sorted by key.
    pub dimensions: Vec<(String, String)>,
    /// The ticket number it names (dimension [`crate::JOIN_KEY`]), kept for
    /// the ticket join.
    pub ticket: Option<String>,
    /// Whether the ticket join counts it: a row of one of the join's
    /// metrics that the backend joined. `false` for other metrics' rows,
    /// and for rows retired before the backend kept the join (they count
    /// in no group, nor as unmatched).
    pub joined: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetentionPolicy {
        RetentionPolicy {
            raw_days: Some(730),
            layers: LayerDays {
                technical: Some(90),
                ..LayerDays::default()
            },
            metrics: BTreeMap::from([("dex_score".to_string(), 30)]),
        }
    }

    #[test]
    fn a_metric_rule_wins_over_its_layer_which_wins_over_the_default() {
        let policy = policy();
        assert_eq!(
            policy.days_for("dex_score", Some(Layer::Technical)),
            Some((30, RetentionRule::Metric))
        );
        assert_eq!(
            policy.days_for("boot_duration_seconds", Some(Layer::Technical)),
            Some((90, RetentionRule::Layer))
        );
        assert_eq!(
            policy.days_for("happiness_rating", Some(Layer::Experience)),
            Some((730, RetentionRule::Default))
        );
        assert_eq!(policy.days_for("anything", None), Some((730, RetentionRule::Default)));
        assert_eq!(
            RetentionPolicy::default().days_for("dex_score", Some(Layer::Technical)),
            None
        );
    }

    #[test]
    fn the_cutoff_is_the_rule_s_days_before_now() {
        let now = 1_000 * DAY_MS + 5;
        let stored = [StoredMetric {
            tenant: "acme".into(),
            metric: "dex_score".into(),
            layer: None,
            retired_before: None,
        }];
        let cutoffs = |policy: &RetentionPolicy| -> Vec<i64> {
            plan_retention(&stored, policy, now).iter().map(|p| p.cutoff).collect()
        };
        assert_eq!(cutoffs(&policy()), [970 * DAY_MS + 5]);
        assert_eq!(cutoffs(&RetentionPolicy::default()), Vec::<i64>::new());
    }

    #[test]
    fn a_rule_out_of_range_is_named() {
        let mut policy = policy();
        assert_eq!(policy.validate(), Ok(()));
        policy.metrics.insert("dex_score".into(), 0);
        let message = policy.validate().expect_err("zero days");
        assert!(message.contains("metrics.dex_score = 0"), "{message}");
        policy.metrics.clear();
        policy.layers.technical = Some(90 * 24 * 60);
        let message = policy.validate().expect_err("minutes for days");
        assert!(message.contains("layers.technical = 129600"), "{message}");
    }
}
