//! Reports: per XLA and period, the value against its target with the
//! delta from the period before, the trend and the per-group breakdown; the
//! SLA-beside-XLA scorecard; and the X/O/T view that says whether a drop in
//! experience came with a technical drop, a process drop, or neither.

use super::definition::{Direction, XlaDefinition};
use super::engine::{Engine, PeriodScore, ScoreError};
use super::period::Window;
use super::target::{PeriodTarget, target_for};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xla_store::{Aggregation, Bucket, SeriesQuery, StoreError, TicketOutcomes, UnmatchedAnswers};

/// Periods shown in a report's trend, the reported one included.
pub const TREND_PERIODS: usize = 6;

/// One XLA for one period.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XlaReport {
    /// The XLA's id.
    pub xla: String,
    /// Its name.
    pub name: String,
    /// Its tenant.
    pub tenant: String,
    /// The period, e.g. `2026-10`.
    pub period: String,
    /// The value; `None` without data.
    pub value: Option<f64>,
    /// Observations or subjects behind it.
    pub sample_size: u64,
    /// The period's target and its basis.
    pub target: PeriodTarget,
    /// Whether the value meets the target (`None` without value or target).
    pub met: Option<bool>,
    /// Points beyond the target (negative when short).
    pub margin: Option<f64>,
    /// The previous period's value.
    pub previous: Option<f64>,
    /// Change from the previous period.
    pub delta: Option<f64>,
    /// The last periods, oldest first, this one last.
    pub trend: Vec<TrendPoint>,
    /// Better, worse or steady over the trend.
    pub trend_direction: TrendDirection,
    /// Per-group values, worst first.
    pub groups: Vec<GroupResult>,
    /// Money the period's result moves, when the contract says.
    pub money: Option<Money>,
    /// Answers the per-group breakdown could not join to a ticket (unknown
    /// ticket, or one of its number that is not plausibly theirs: another
    /// type, opened after the answer), counted and listed; in no group, but
    /// in `value`. `None` when the groups needed no join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmatched_answers: Option<UnmatchedAnswers>,
    /// Gaps overlapping the period: spans a connector of the tenant said it
    /// delivered only in part (a truncated export, a cap reached), not yet
    /// read again in full. The value is computed over partial data while
    /// any is listed. Empty when the period's data is complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partial: Vec<xla_store::SourceGap>,
}

/// One period of a trend.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendPoint {
    /// The period label.
    pub period: String,
    /// Its value.
    pub value: Option<f64>,
}

/// Which way the trend goes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrendDirection {
    /// Better over the trend's periods.
    Improving,
    /// Worse.
    Declining,
    /// Within a point either way, or too little data.
    Steady,
}

/// One group's value.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupResult {
    /// The group (e.g. a service).
    pub group: String,
    /// Its value.
    pub value: f64,
    /// Behind it.
    pub sample_size: u64,
    /// Whether it meets the XLA's target.
    pub met: Option<bool>,
}

/// A period's money under the contract.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Money {
    /// Service credit owed for falling short (capped).
    pub penalty: f64,
    /// Gain share earned beyond target (capped).
    pub gain_share: f64,
}

impl Engine {
    /// The report of `xla` for `window`.
    pub async fn report(&self, xla: &XlaDefinition, window: Window) -> Result<XlaReport, ScoreError> {
        let trend_windows = window.trailing(TREND_PERIODS);
        let mut scored: BTreeMap<Window, PeriodScore> = BTreeMap::new();
        for w in &trend_windows {
            scored.insert(*w, self.score(xla, *w).await?);
        }
        // Continuous improvement may look further back than the trend.
        let mut asked = Vec::new();
        target_for(xla, window, &mut |w| {
            asked.push(w);
            None
        });
        for w in asked {
            if let std::collections::btree_map::Entry::Vacant(entry) = scored.entry(w) {
                entry.insert(self.score(xla, w).await?);
            }
        }
        let value_of = |w: Window| scored.get(&w).and_then(|s| s.value);
        let target = target_for(xla, window, &mut |w| value_of(w));
        let current = &scored[&window];
        let value = current.value;
        let partial = self
            .partial_in(&xla.tenant, window, &self.metrics_read(xla))
            .await
            .map_err(|error| ScoreError::Store {
                xla: xla.id.clone(),
                error,
            })?;
        let previous = value_of(window.previous());
        let met = value.zip(target.value).map(|(v, t)| xla.direction.meets(v, t));
        let margin = value.zip(target.value).map(|(v, t)| xla.direction.margin(v, t));
        let trend: Vec<TrendPoint> = trend_windows
            .iter()
            .map(|w| TrendPoint {
                period: w.label(),
                value: value_of(*w),
            })
            .collect();
        let mut groups: Vec<GroupResult> = current
            .groups
            .iter()
            .filter_map(|s| {
                Some(GroupResult {
                    group: s.group.clone()?,
                    value: s.value,
                    sample_size: s.sample_size,
                    met: target.value.map(|t| xla.direction.meets(s.value, t)),
                })
            })
            .collect();
        groups.sort_by(|a, b| {
            xla.direction
                .margin(a.value, 0.0)
                .total_cmp(&xla.direction.margin(b.value, 0.0))
                .then_with(|| a.group.cmp(&b.group))
        });
        Ok(XlaReport {
            xla: xla.id.clone(),
            name: xla.name.clone(),
            tenant: xla.tenant.clone(),
            period: window.label(),
            value,
            sample_size: current.sample_size,
            met,
            margin,
            previous,
            delta: value.zip(previous).map(|(v, p)| v - p),
            trend_direction: direction_of(&trend, xla.direction),
            trend,
            groups,
            money: margin.and_then(|m| money(xla, m)),
            unmatched_answers: current.unmatched_answers.clone(),
            partial,
            target,
        })
    }

    /// The tenant's open gaps that overlap `window` and concern `metrics`
    /// (their source stored one of them, or nothing yet): a value computed
    /// from `metrics` over the window is computed over partial data while
    /// any remains. A gap of a source that feeds other metrics only leaves
    /// it whole.
    ///
    /// # Errors
    /// The store's.
    pub async fn partial_in(
        &self,
        tenant: &str,
        window: Window,
        metrics: &[String],
    ) -> Result<Vec<xla_store::SourceGap>, StoreError> {
        let span = xla_types::Span::new(window.start, window.end);
        let gaps = self.store().gaps(tenant).await?;
        Ok(gaps
            .into_iter()
            .filter(|g| g.gap.span.overlaps(&span) && g.concerns(metrics))
            .collect())
    }
}

fn direction_of(trend: &[TrendPoint], direction: Direction) -> TrendDirection {
    let values: Vec<f64> = trend.iter().filter_map(|p| p.value).collect();
    let (Some(first), Some(last)) = (values.first(), values.last()) else {
        return TrendDirection::Steady;
    };
    if values.len() < 2 {
        return TrendDirection::Steady;
    }
    let better = direction.margin(*last, *first);
    if better > 1.0 {
        TrendDirection::Improving
    } else if better < -1.0 {
        TrendDirection::Declining
    } else {
        TrendDirection::Steady
    }
}

fn money(xla: &XlaDefinition, margin: f64) -> Option<Money> {
    if xla.penalty.is_none() && xla.gain_share.is_none() {
        return None;
    }
    let penalty = xla
        .penalty
        .filter(|_| margin < 0.0)
        .map_or(0.0, |rate| (-margin * rate.per_point).min(rate.cap));
    let gain_share = xla
        .gain_share
        .filter(|_| margin > 0.0)
        .map_or(0.0, |rate| (margin * rate.per_point).min(rate.cap));
    Some(Money { penalty, gain_share })
}

/// What a drop in experience came with.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Experience did not drop.
    NoDrop,
    /// Device and application health dropped with it.
    Technical,
    /// The IT process (SLAs, resolution time) dropped with it.
    Process,
    /// Both.
    TechnicalAndProcess,
    /// Neither: look at the experience itself (survey factors, comments).
    Neither,
}

/// The X/O/T view of one period against the one before.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XotView {
    /// Tenant.
    pub tenant: String,
    /// Period label.
    pub period: String,
    /// Happiness (X), this period and the one before.
    pub happiness: (Option<f64>, Option<f64>),
    /// Mean lost time in minutes (X).
    pub lost_time_minutes: (Option<f64>, Option<f64>),
    /// SLA compliance in percent (O).
    pub sla_compliance: (Option<f64>, Option<f64>),
    /// Mean resolution hours (O).
    pub resolution_hours: (Option<f64>, Option<f64>),
    /// Mean DEX score (T).
    pub dex_score: (Option<f64>, Option<f64>),
    /// What the experience drop came with.
    pub cause: Cause,
    /// One sentence for people.
    pub explanation: String,
}

/// Points of happiness lost before the view calls it a drop.
const HAPPINESS_DROP: f64 = 2.0;
/// Points of DEX lost that count as a technical drop.
const DEX_DROP: f64 = 1.0;
/// Points of SLA compliance lost that count as a process drop.
const SLA_DROP: f64 = 1.0;
/// Relative rise of resolution time that counts as a process drop.
const RESOLUTION_RISE: f64 = 0.10;

impl Engine {
    /// The X/O/T view of `tenant` for `window`, from the rollups.
    pub async fn xot_view(&self, tenant: &str, window: Window) -> Result<XotView, StoreError> {
        let previous = window.previous();
        let both = async |metric: &str, aggregation: Aggregation| -> Result<(Option<f64>, Option<f64>), StoreError> {
            Ok((
                self.window_value(tenant, metric, window, aggregation).await?,
                self.window_value(tenant, metric, previous, aggregation).await?,
            ))
        };
        let happiness = both("happiness_rating", Aggregation::Happiness).await?;
        let lost_time_minutes = both("lost_time_minutes", Aggregation::Avg).await?;
        let breached = both("sla_breached", Aggregation::ShareTrue).await?;
        let sla_compliance = (breached.0.map(|b| 100.0 - b), breached.1.map(|b| 100.0 - b));
        let resolution_hours = both("resolution_hours", Aggregation::Avg).await?;
        let dex_score = both("dex_score", Aggregation::Avg).await?;
        let (cause, explanation) = attribute(
            &XotValues {
                happiness,
                sla_compliance,
                resolution_hours,
                dex_score,
            },
            previous,
        );
        Ok(XotView {
            tenant: tenant.to_string(),
            period: window.label(),
            happiness,
            lost_time_minutes,
            sla_compliance,
            resolution_hours,
            dex_score,
            cause,
            explanation,
        })
    }

    async fn window_value(
        &self,
        tenant: &str,
        metric: &str,
        window: Window,
        aggregation: Aggregation,
    ) -> Result<Option<f64>, StoreError> {
        let query = SeriesQuery {
            tenant: tenant.into(),
            metric: metric.into(),
            from: window.start,
            to: window.end,
            bucket: Bucket::Day,
            filter: None,
            group_by: None,
            aggregation,
        };
        let mut merged = xla_store::Rollup::default();
        for (_, rollup) in self.store().rollups(&query).await? {
            merged.merge(&rollup);
        }
        Ok(xla_store::evaluate(&merged, aggregation))
    }
}

/// One slice's X, O and T values, this period and the one before.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct XotValues {
    /// Happiness (X).
    pub happiness: (Option<f64>, Option<f64>),
    /// SLA compliance in percent (O).
    pub sla_compliance: (Option<f64>, Option<f64>),
    /// Mean resolution hours (O).
    pub resolution_hours: (Option<f64>, Option<f64>),
    /// Mean DEX score (T).
    pub dex_score: (Option<f64>, Option<f64>),
}

/// What a drop in happiness came with, and one sentence saying so:
/// happiness down more than 2 points is a drop; DEX down more than 1 point
/// a technical drop; SLA compliance down more than 1 point, or resolution
/// time up more than 10 %, a process drop. `previous` names the period
/// compared with.
pub fn attribute(v: &XotValues, previous: Window) -> (Cause, String) {
    let fell = |(now, before): (Option<f64>, Option<f64>), by: f64| now.zip(before).is_some_and(|(n, b)| b - n > by);
    let x_drop = fell(v.happiness, HAPPINESS_DROP);
    let t_drop = fell(v.dex_score, DEX_DROP);
    let o_drop = fell(v.sla_compliance, SLA_DROP)
        || v.resolution_hours
            .0
            .zip(v.resolution_hours.1)
            .is_some_and(|(n, b)| b > 0.0 && (n - b) / b > RESOLUTION_RISE);
    let cause = match (x_drop, t_drop, o_drop) {
        (false, _, _) => Cause::NoDrop,
        (true, true, true) => Cause::TechnicalAndProcess,
        (true, true, false) => Cause::Technical,
        (true, false, true) => Cause::Process,
        (true, false, false) => Cause::Neither,
    };
    let points = |(n, b): (Option<f64>, Option<f64>)| n.zip(b).map_or(0.0, |(n, b)| n - b);
    let explanation = match cause {
        Cause::NoDrop if v.happiness.0.is_none() => "No happiness ratings this period: nothing to compare.".to_string(),
        Cause::NoDrop if v.happiness.1.is_none() => {
            format!("No happiness ratings in {} to compare with.", previous.label())
        }
        Cause::NoDrop => format!(
            "Happiness did not drop ({:+.1} points from {}).",
            points(v.happiness),
            previous.label()
        ),
        Cause::Technical => format!(
            "Happiness fell {:.1} points and device health fell with it (DEX {:+.1}): look at devices and applications first.",
            -points(v.happiness),
            points(v.dex_score)
        ),
        Cause::Process => format!(
            "Happiness fell {:.1} points and the IT process fell with it (SLA compliance {:+.1} points, resolution time {:+.1} h): look at the service desk process first.",
            -points(v.happiness),
            points(v.sla_compliance),
            points(v.resolution_hours)
        ),
        Cause::TechnicalAndProcess => format!(
            "Happiness fell {:.1} points with both device health (DEX {:+.1}) and the IT process (SLA compliance {:+.1} points).",
            -points(v.happiness),
            points(v.dex_score),
            points(v.sla_compliance)
        ),
        Cause::Neither => format!(
            "Happiness fell {:.1} points while SLAs and device health held: the SLAs do not see what employees feel; read the survey factors and comments.",
            -points(v.happiness)
        ),
    };
    (cause, explanation)
}

/// The X/O/T attribution of one slice (a service by default).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct XotSlice {
    /// The slice, e.g. a service.
    pub group: String,
    /// Happiness of its rated tickets, this period and the one before.
    pub happiness: (Option<f64>, Option<f64>),
    /// Its SLA compliance in percent.
    pub sla_compliance: (Option<f64>, Option<f64>),
    /// Its tickets' mean resolution hours.
    pub resolution_hours: (Option<f64>, Option<f64>),
    /// The tenant's mean DEX score: device telemetry names no service, so
    /// every slice is compared with the organisation's device health.
    pub dex_score: (Option<f64>, Option<f64>),
    /// What its happiness drop came with.
    pub cause: Cause,
    /// One sentence for people.
    pub explanation: String,
}

impl Engine {
    /// The X/O/T attribution per slice for `window` (a month): each
    /// slice's happiness and SLA compliance from the scorecards of this
    /// period and the one before (`current`, `previous`), its resolution
    /// time from the rollups, and the tenant's DEX ([`XotSlice::dex_score`]).
    /// Slices in either scorecard, by name.
    ///
    /// # Errors
    /// Store failures.
    pub async fn xot_slices(
        &self,
        window: Window,
        view: &XotView,
        current: &Scorecard,
        previous: &Scorecard,
    ) -> Result<Vec<XotSlice>, StoreError> {
        let resolution_now = self
            .grouped_mean(&current.tenant, "resolution_hours", window, &current.group_by)
            .await?;
        let resolution_before = self
            .grouped_mean(
                &current.tenant,
                "resolution_hours",
                window.previous(),
                &current.group_by,
            )
            .await?;
        let row = |card: &Scorecard, group: &str| card.rows.iter().find(|r| r.group == group).cloned();
        let groups: std::collections::BTreeSet<&str> = current
            .rows
            .iter()
            .chain(&previous.rows)
            .map(|r| r.group.as_str())
            .collect();
        Ok(groups
            .into_iter()
            .map(|group| {
                let (now, before) = (row(current, group), row(previous, group));
                let values = XotValues {
                    happiness: (
                        now.as_ref().and_then(|r| r.happiness),
                        before.as_ref().and_then(|r| r.happiness),
                    ),
                    sla_compliance: (
                        now.as_ref().and_then(|r| r.sla_compliance),
                        before.as_ref().and_then(|r| r.sla_compliance),
                    ),
                    resolution_hours: (
                        resolution_now.get(group).copied(),
                        resolution_before.get(group).copied(),
                    ),
                    dex_score: view.dex_score,
                };
                let (cause, explanation) = attribute(&values, window.previous());
                XotSlice {
                    group: group.to_string(),
                    happiness: values.happiness,
                    sla_compliance: values.sla_compliance,
                    resolution_hours: values.resolution_hours,
                    dex_score: values.dex_score,
                    cause,
                    explanation,
                }
            })
            .collect())
    }

    async fn grouped_mean(
        &self,
        tenant: &str,
        metric: &str,
        window: Window,
        group_by: &str,
    ) -> Result<BTreeMap<String, f64>, StoreError> {
        let query = SeriesQuery {
            tenant: tenant.into(),
            metric: metric.into(),
            from: window.start,
            to: window.end,
            bucket: Bucket::Day,
            filter: None,
            group_by: Some(group_by.into()),
            aggregation: Aggregation::Avg,
        };
        let mut merged: BTreeMap<String, xla_store::Rollup> = BTreeMap::new();
        for ((_, group), rollup) in self.store().rollups(&query).await? {
            if let Some(group) = group {
                merged.entry(group).or_default().merge(&rollup);
            }
        }
        Ok(merged
            .into_iter()
            .filter_map(|(group, rollup)| xla_store::evaluate(&rollup, Aggregation::Avg).map(|v| (group, v)))
            .collect())
    }
}

/// The SLA-beside-XLA scorecard: per slice (service by default), SLA
/// compliance next to happiness, with the watermelons flagged: SLAs at
/// target while the people served are unhappy.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scorecard {
    /// Tenant.
    pub tenant: String,
    /// Period label.
    pub period: String,
    /// The slicing dimension.
    pub group_by: String,
    /// SLA compliance target, percent.
    pub sla_target: f64,
    /// Happiness target, points.
    pub happiness_target: f64,
    /// One row per slice, watermelons first, then by happiness.
    pub rows: Vec<ScorecardRow>,
}

/// One slice of the scorecard.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorecardRow {
    /// The slice, e.g. a service.
    pub group: String,
    /// Share of tickets with every SLA met, percent.
    pub sla_compliance: Option<f64>,
    /// Happiness of the slice's rated tickets.
    pub happiness: Option<f64>,
    /// Tickets with SLAs met and a rating of 0-6.
    pub watermelon_tickets: u64,
    /// SLA at target while happiness is below target.
    pub watermelon: bool,
}

/// The scorer behind the scorecard.
pub const WATERMELON_SCORER: &str = "watermelon";

/// Rated tickets a slice needs for a watermelon flag: the `watermelon`
/// scorer's default `min_tickets`.
pub const SCORECARD_MIN_TICKETS: u64 = 5;

impl Engine {
    /// The scorecard of `tenant` for `window`, sliced by `group_by`: from
    /// the store's ticket outcomes (the tickets resolved in the window,
    /// rollup cells the ticket join keeps), or, where the store keeps none
    /// or the window is not whole days, from the `watermelon` scorer over
    /// per-ticket rows ([`Engine::scorecard_from_rows`]). Both flag a slice
    /// as the scorer does: SLA compliance at or above `sla_target`,
    /// happiness below `happiness_target`, at least
    /// [`SCORECARD_MIN_TICKETS`] rated tickets.
    pub async fn scorecard(
        &self,
        tenant: &str,
        window: Window,
        group_by: &str,
        sla_target: f64,
        happiness_target: f64,
    ) -> Result<Scorecard, ScoreError> {
        let outcomes = self
            .store()
            .ticket_outcomes(tenant, Some(group_by), window.start, window.end)
            .await
            .map_err(|error| ScoreError::Store {
                xla: format!("scorecard of {tenant}"),
                error,
            })?;
        let Some(outcomes) = outcomes else {
            return self
                .scorecard_from_rows(tenant, window, group_by, sla_target, happiness_target)
                .await;
        };
        let rows = outcomes
            .into_iter()
            .filter_map(|(group, counts)| Some(scorecard_row(group?, &counts, sla_target, happiness_target)))
            .collect();
        Ok(Scorecard::of(
            tenant,
            window,
            group_by,
            (sla_target, happiness_target),
            rows,
        ))
    }

    /// The scorecard from the `watermelon` scorer over per-ticket rows of
    /// the window (values whose time falls in it): what
    /// [`Engine::scorecard`] falls back to, and a check of it.
    pub async fn scorecard_from_rows(
        &self,
        tenant: &str,
        window: Window,
        group_by: &str,
        sla_target: f64,
        happiness_target: f64,
    ) -> Result<Scorecard, ScoreError> {
        let mut parameters = toml::Table::new();
        parameters.insert("group_by".into(), group_by.into());
        parameters.insert("sla_target".into(), sla_target.into());
        parameters.insert("happiness_target".into(), happiness_target.into());
        let xla = XlaDefinition {
            id: "scorecard".into(),
            name: "SLA beside XLA".into(),
            tenant: tenant.into(),
            metrics: vec![
                "sla_breached".into(),
                "happiness_rating".into(),
                "ticket_resolved".into(),
            ],
            scorer: WATERMELON_SCORER.into(),
            score: Some("watermelon".into()),
            parameters: Some(parameters),
            filter: None,
            group_by: None,
            period: window.period,
            direction: Direction::Lower,
            targets: Vec::new(),
            contract: super::definition::Contract::Fixed,
            penalty: None,
            gain_share: None,
        };
        let scored = self.run_scorer(&xla, window).await?;
        let mut rows: BTreeMap<String, ScorecardRow> = BTreeMap::new();
        for result in &scored.results {
            let Some(group) = &result.group else { continue };
            let row = rows.entry(group.clone()).or_insert_with(|| ScorecardRow {
                group: group.clone(),
                sla_compliance: None,
                happiness: None,
                watermelon_tickets: 0,
                watermelon: false,
            });
            match result.name.as_str() {
                "sla_compliance" => row.sla_compliance = Some(result.value),
                "happiness" => row.happiness = Some(result.value),
                "watermelon_tickets" => row.watermelon_tickets = result.value.max(0.0) as u64,
                "watermelon" => row.watermelon = result.value >= 0.5,
                _ => {}
            }
        }
        let rows = rows.into_values().collect();
        Ok(Scorecard::of(
            tenant,
            window,
            group_by,
            (sla_target, happiness_target),
            rows,
        ))
    }
}

impl Scorecard {
    /// The scorecard of these rows, watermelons first, then by happiness
    /// (unhappiest first), then by name. `targets`: SLA compliance and
    /// happiness.
    fn of(tenant: &str, window: Window, group_by: &str, targets: (f64, f64), mut rows: Vec<ScorecardRow>) -> Scorecard {
        rows.sort_by(|a, b| {
            b.watermelon
                .cmp(&a.watermelon)
                .then_with(|| {
                    a.happiness
                        .unwrap_or(f64::MAX)
                        .total_cmp(&b.happiness.unwrap_or(f64::MAX))
                })
                .then_with(|| a.group.cmp(&b.group))
        });
        Scorecard {
            tenant: tenant.into(),
            period: window.label(),
            group_by: group_by.into(),
            sla_target: targets.0,
            happiness_target: targets.1,
            rows,
        }
    }
}

/// A slice's scorecard row from its ticket outcomes, by the `watermelon`
/// scorer's formulas.
fn scorecard_row(group: String, counts: &TicketOutcomes, sla_target: f64, happiness_target: f64) -> ScorecardRow {
    let sla_compliance = (counts.sla_tickets > 0).then(|| 100.0 * counts.sla_met as f64 / counts.sla_tickets as f64);
    let happiness = xla_store::happiness(&counts.ratings);
    let watermelon = match (sla_compliance, happiness) {
        (Some(compliance), Some(happiness)) => {
            counts.rated() >= SCORECARD_MIN_TICKETS && compliance >= sla_target && happiness < happiness_target
        }
        _ => false,
    };
    ScorecardRow {
        group,
        sla_compliance,
        happiness,
        watermelon_tickets: counts.watermelons,
        watermelon,
    }
}

/// Everything `xla-host report` shows for one period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportBundle {
    /// One report per XLA.
    pub reports: Vec<XlaReport>,
    /// The X/O/T view per tenant.
    pub xot: Vec<XotView>,
    /// The SLA-beside-XLA scorecard per tenant (when the watermelon scorer is loaded).
    pub scorecards: Vec<Scorecard>,
}

/// What the scorecard slices by and aims at.
#[derive(Debug, Clone, PartialEq)]
pub struct ScorecardOptions {
    /// Dimension to slice by, e.g. `service`.
    pub group_by: String,
    /// SLA compliance target, percent.
    pub sla_target: f64,
    /// Happiness target, points.
    pub happiness_target: f64,
}

impl Default for ScorecardOptions {
    fn default() -> Self {
        ScorecardOptions {
            group_by: "service".into(),
            sla_target: 90.0,
            happiness_target: 50.0,
        }
    }
}

impl Engine {
    /// Reports every XLA in `xlas` for the period of its kind holding
    /// `at`, with the X/O/T view and the scorecard of each tenant for
    /// `window`.
    pub async fn report_bundle(
        &self,
        xlas: &[XlaDefinition],
        window: Window,
        scorecard: Option<&ScorecardOptions>,
    ) -> Result<ReportBundle, ScoreError> {
        let mut reports = Vec::new();
        for xla in xlas {
            reports.push(self.report(xla, xla.period.containing(window.start)).await?);
        }
        let tenants: std::collections::BTreeSet<&str> = xlas.iter().map(|x| x.tenant.as_str()).collect();
        let mut xot = Vec::new();
        let mut scorecards = Vec::new();
        for tenant in tenants {
            xot.push(self.xot_view(tenant, window).await.map_err(|error| ScoreError::Store {
                xla: format!("X/O/T view of {tenant}"),
                error,
            })?);
            if let Some(options) = scorecard
                && self.has_scorer(WATERMELON_SCORER)
            {
                scorecards.push(
                    self.scorecard(
                        tenant,
                        window,
                        &options.group_by,
                        options.sla_target,
                        options.happiness_target,
                    )
                    .await?,
                );
            }
        }
        Ok(ReportBundle {
            reports,
            xot,
            scorecards,
        })
    }
}
