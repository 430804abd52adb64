//! Scoring one XLA for one period: the aggregates (and, for scorers that ask,
//! the per-ticket rows) of the XLA's tenant and window go to its scorer
//! plugin in the sandbox; the result named by the definition is the value.

use super::definition::{DefinitionError, XlaDefinition};
use super::period::Window;
use super::vocabulary::layer_of;
use std::collections::BTreeMap;
use std::sync::Arc;
use xla_runtime::plugins::{LoadedPlugin, Manifest, PluginPre};
use xla_runtime::{Aggregate, Limits, RuntimeError, Score, ScoreInput, ScorerInfo, ScorerPre};
use xla_store::{
    Aggregation, Bucket, GroupThrough, Rollup, SeriesQuery, Store, StoreError, SubjectQuery, UnmatchedAnswers,
};

/// Why an XLA could not be scored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreError {
    /// The definition is unusable.
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    /// The definition names a scorer that is not loaded.
    #[error(
        "XLA `{xla}` names scorer `{scorer}`, which is not loaded (loaded scorers: {loaded}); put its .wasm and plugin.toml in the plugins directory, or fix `scorer`"
    )]
    UnknownScorer {
        /// The XLA.
        xla: String,
        /// The scorer it names.
        scorer: String,
        /// What is loaded.
        loaded: String,
    },
    /// A client-specific scorer may only score its own tenant's XLAs.
    #[error(
        "scorer `{scorer}` is bound to tenant `{bound}` and may not score XLA `{xla}` of tenant `{tenant}`; use a scorer meant for `{tenant}`"
    )]
    TenantBinding {
        /// The XLA.
        xla: String,
        /// The scorer.
        scorer: String,
        /// The tenant it is bound to.
        bound: String,
        /// The XLA's tenant.
        tenant: String,
    },
    /// The store failed.
    #[error("XLA `{xla}`: reading the store failed: {error}")]
    Store {
        /// The XLA.
        xla: String,
        /// The store's error (in the message, so not a `source`).
        error: StoreError,
    },
    /// The scorer failed.
    #[error("XLA `{xla}`, period {period}: {error}")]
    Scorer {
        /// The XLA.
        xla: String,
        /// The period label.
        period: String,
        /// The runtime's error (names the plugin; in the message, so not a `source`).
        error: Box<RuntimeError>,
    },
}

/// A scorer plugin ready to run, with what it declared.
#[derive(Clone)]
pub struct LoadedScorer {
    /// Its manifest (name, version, sha256).
    pub manifest: Manifest,
    /// What `describe()` said.
    pub info: ScorerInfo,
    /// The tenant it is bound to, for client-specific scorers.
    pub tenant: Option<String>,
    pre: ScorerPre,
}

impl LoadedScorer {
    /// Wraps a loaded scorer plugin, asking it to describe itself. `tenant`
    /// binds a client-specific scorer to one tenant. `None` when the plugin
    /// is a connector.
    pub async fn new(
        plugin: &LoadedPlugin,
        tenant: Option<String>,
        limits: &Limits,
    ) -> Option<Result<Self, RuntimeError>> {
        let PluginPre::Scorer(pre) = &plugin.pre else {
            return None;
        };
        let info = pre.session(limits.clone()).describe().await;
        Some(info.map(|info| LoadedScorer {
            manifest: plugin.manifest.clone(),
            info,
            tenant,
            pre: pre.clone(),
        }))
    }
}

/// What one period of one XLA came to.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PeriodScore {
    /// The period.
    pub window: Window,
    /// The XLA's value (the scorer's whole-window result of the XLA's score
    /// name); `None` when the scorer returned none (no data).
    pub value: Option<f64>,
    /// Observations or subjects behind the value.
    pub sample_size: u64,
    /// Per-group results of the same name, sorted by group.
    pub groups: Vec<Score>,
    /// Every result the scorer returned.
    pub results: Vec<Score>,
    /// Answers (survey responses) the per-group join left out: their ticket
    /// is unknown, or of its number but not plausibly theirs (another type,
    /// opened after the answer; see [`xla_store::plausible_join`]). They
    /// are in no group, but in the whole-window value, which needs no join.
    /// `None` when the XLA needed no join (no group-by, or one its metrics
    /// carry); of the first metric joined when several were.
    pub unmatched_answers: Option<UnmatchedAnswers>,
}

/// Scores XLAs over one store with a set of scorers.
#[derive(Clone)]
pub struct Engine {
    store: Arc<dyn Store>,
    scorers: Arc<BTreeMap<String, LoadedScorer>>,
    limits: Limits,
}

/// The dimension that keys per-subject rows.
const ROW_KEY: &str = "ticket";

impl Engine {
    /// An engine over `store` with `scorers` (by plugin name), each call
    /// under `limits`.
    pub fn new(store: Arc<dyn Store>, scorers: BTreeMap<String, LoadedScorer>, limits: Limits) -> Engine {
        Engine {
            store,
            scorers: Arc::new(scorers),
            limits,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Whether a scorer of this name is loaded.
    pub fn has_scorer(&self, name: &str) -> bool {
        self.scorers.contains_key(name)
    }

    /// The scorer an XLA names, checked against its tenant binding.
    pub fn scorer_for(&self, xla: &XlaDefinition) -> Result<&LoadedScorer, ScoreError> {
        let scorer = self.scorers.get(&xla.scorer).ok_or_else(|| ScoreError::UnknownScorer {
            xla: xla.id.clone(),
            scorer: xla.scorer.clone(),
            loaded: if self.scorers.is_empty() {
                "none".into()
            } else {
                self.scorers.keys().cloned().collect::<Vec<_>>().join(", ")
            },
        })?;
        if let Some(bound) = &scorer.tenant
            && *bound != xla.tenant
        {
            return Err(ScoreError::TenantBinding {
                xla: xla.id.clone(),
                scorer: xla.scorer.clone(),
                bound: bound.clone(),
                tenant: xla.tenant.clone(),
            });
        }
        Ok(scorer)
    }

    /// Scores `xla` for `window`.
    pub async fn score(&self, xla: &XlaDefinition, window: Window) -> Result<PeriodScore, ScoreError> {
        xla.validate()?;
        self.run_scorer(xla, window).await
    }

    /// Every metric a score of `xla` reads: its own, and the ticket
    /// records' ([`TICKET_METRICS`], [`TICKET_OPENING`]) when it groups
    /// through tickets or its scorer reads per-ticket rows. What a gap must
    /// touch to make the score partial.
    pub fn metrics_read(&self, xla: &XlaDefinition) -> Vec<String> {
        let mut metrics = xla.metrics.clone();
        let joins = xla.group_by.is_some() || self.scorer_for(xla).is_ok_and(|s| s.info.needs_rows);
        if joins {
            let tickets = TICKET_METRICS.iter().chain([&TICKET_OPENING]);
            metrics.extend(tickets.map(|m| m.to_string()));
        }
        metrics
    }

    /// Runs `xla`'s scorer over its input for `window`, without checking
    /// its targets and contract: reports built on a scorer (the scorecard)
    /// have none.
    pub async fn run_scorer(&self, xla: &XlaDefinition, window: Window) -> Result<PeriodScore, ScoreError> {
        let scorer = self.scorer_for(xla)?;
        let store_error = |error| ScoreError::Store {
            xla: xla.id.clone(),
            error,
        };
        let (input, unmatched_answers) = self.input(xla, window).await.map_err(store_error)?;
        let rows = if scorer.info.needs_rows {
            let filter = xla.filter_pair();
            let query = SubjectQuery {
                tenant: xla.tenant.clone(),
                key: ROW_KEY.into(),
                metrics: xla.metrics.clone(),
                from: window.start,
                to: window.end,
                filter,
                opening: Some(TICKET_OPENING.into()),
            };
            let rows = self.store.subject_rows(&query).await.map_err(store_error)?;
            Some(Box::new(rows.into_iter()) as Box<dyn Iterator<Item = _> + Send>)
        } else {
            None
        };
        let mut session = scorer.pre.session(self.limits.clone());
        let results = session.score(&input, rows).await.map_err(|error| ScoreError::Scorer {
            xla: xla.id.clone(),
            period: window.label(),
            error: Box::new(error),
        })?;
        Ok(PeriodScore {
            unmatched_answers,
            ..period_score(xla, window, results)
        })
    }

    /// The aggregates of the XLA's metrics over `window`: the whole window,
    /// and per group when the XLA has a group-by. Only the XLA's tenant.
    ///
    /// A group-by dimension that a metric's own observations lack (a survey
    /// response has no assignment group; its ticket does) is reached
    /// through the ticket: each value counts for the group of the ticket it
    /// belongs to, as the ticket's other sources name it, when the join is
    /// plausible; the values that join no ticket come back beside the input.
    async fn input(
        &self,
        xla: &XlaDefinition,
        window: Window,
    ) -> Result<(ScoreInput, Option<UnmatchedAnswers>), StoreError> {
        let mut aggregates = Vec::new();
        let mut unmatched = None;
        for metric in &xla.metrics {
            let whole = self.merged(xla, metric, window, None).await?;
            let count = whole.get(&None).map_or(0, |r| r.count);
            aggregates.extend(to_aggregates(metric, whole));
            let Some(group_by) = &xla.group_by else {
                continue;
            };
            let mut grouped = self.merged(xla, metric, window, Some(group_by)).await?;
            if grouped.is_empty() && count > 0 {
                let (through, left_out) = self.grouped_through_tickets(xla, metric, window, group_by).await?;
                grouped = through;
                unmatched.get_or_insert(left_out);
            }
            aggregates.extend(to_aggregates(metric, grouped));
        }
        let input = ScoreInput {
            tenant: xla.tenant.clone(),
            window_start: window.start,
            window_end: window.end,
            group_by: xla.group_by.clone(),
            parameters: xla.parameters_json(),
            aggregates,
        };
        Ok((input, unmatched))
    }

    /// One metric's rollups over the window, merged per group.
    async fn merged(
        &self,
        xla: &XlaDefinition,
        metric: &str,
        window: Window,
        group_by: Option<&String>,
    ) -> Result<BTreeMap<Option<String>, Rollup>, StoreError> {
        let query = SeriesQuery {
            tenant: xla.tenant.clone(),
            metric: metric.to_string(),
            from: window.start,
            to: window.end,
            bucket: Bucket::Day,
            filter: xla.filter_pair(),
            group_by: group_by.cloned(),
            aggregation: Aggregation::Count,
        };
        let mut merged: BTreeMap<Option<String>, Rollup> = BTreeMap::new();
        for ((_, group), rollup) in self.store.rollups(&query).await? {
            merged.entry(group).or_default().merge(&rollup);
        }
        if group_by.is_none() && merged.is_empty() {
            merged.insert(None, Rollup::default());
        }
        Ok(merged)
    }

    /// `metric` per value of `group_by` as the tickets' other observations
    /// name it, each value only under a ticket it plausibly belongs to, and
    /// the values that joined none (see [`xla_store::Store::grouped_through`]).
    async fn grouped_through_tickets(
        &self,
        xla: &XlaDefinition,
        metric: &str,
        window: Window,
        group_by: &str,
    ) -> Result<(BTreeMap<Option<String>, Rollup>, UnmatchedAnswers), StoreError> {
        let grouped = self
            .store
            .grouped_through(&GroupThrough {
                tenant: xla.tenant.clone(),
                key: ROW_KEY.into(),
                metric: metric.into(),
                group_by: group_by.into(),
                via: TICKET_METRICS.iter().map(|m| m.to_string()).collect(),
                opening: Some(TICKET_OPENING.into()),
                from: window.start,
                to: window.end,
                filter: xla.filter_pair(),
                from_rows: false,
            })
            .await?;
        let groups = grouped
            .groups
            .into_iter()
            .map(|(group, rollup)| (Some(group), rollup))
            .collect();
        Ok((groups, grouped.unmatched))
    }
}

/// Metrics that carry a ticket's own dimensions (service, assignment
/// group), through which other sources' values are grouped.
const TICKET_METRICS: &[&str] = &["ticket_resolved"];

/// The metric of the same ticket records that dates their opening back from
/// their resolution (`docs/metrics.md`: from `opened_at` to `resolved_at`).
const TICKET_OPENING: &str = "resolution_hours";

fn to_aggregates(metric: &str, merged: BTreeMap<Option<String>, Rollup>) -> impl Iterator<Item = Aggregate> + '_ {
    merged.into_iter().map(move |(group, rollup)| Aggregate {
        metric: metric.to_string(),
        layer: layer_of(metric),
        group,
        count: rollup.count,
        sum: rollup.sum,
        min: if rollup.count == 0 { 0.0 } else { rollup.min },
        max: if rollup.count == 0 { 0.0 } else { rollup.max },
        // An empty window of a rating metric still has its 11 (zero) counts.
        histogram: rollup
            .histogram
            .map(|h| h.to_vec())
            .or_else(|| xla_store::is_rating(metric).then(|| vec![0; 11])),
    })
}

fn period_score(xla: &XlaDefinition, window: Window, results: Vec<Score>) -> PeriodScore {
    let name = xla.score_name();
    let whole = results.iter().find(|s| s.name == name && s.group.is_none());
    let mut groups: Vec<Score> = results
        .iter()
        .filter(|s| s.name == name && s.group.is_some())
        .cloned()
        .collect();
    groups.sort_by(|a, b| a.group.cmp(&b.group));
    PeriodScore {
        window,
        value: whole.map(|s| s.value).filter(|v| v.is_finite()),
        sample_size: whole.map_or(0, |s| s.sample_size),
        groups,
        results,
        unmatched_answers: None,
    }
}
