//! `msp-gain-share`: the commercial terms a managed service provider (MSP)
//! agreed with one customer (tenant `acme` in the docs), shipped as a
//! client-specific scorer. The operator binds it to that one tenant; the
//! host enforces the binding, so the scorer does not check `tenant`.
//!
//! From the window's aggregates:
//!
//! - happiness *h* = % of 9-10 minus % of 0-6 of `happiness_rating`;
//! - SLA compliance *c* = percent of `sla_breached` that are 0.
//!
//! and the parameters (defaults in brackets): `happiness_target` *H* [60],
//! `sla_target` *S* [95], `baseline` *B* [0], `credit` *C* [10,000],
//! `bonus_per_point` *p* [250], `bonus_cap` *M* [5,000]:
//!
//! - `earn_back` = *C* × clamp((*h* − *B*) / (*H* − *B*), 0, 1): the part of
//!   the period's service credit the MSP earns back, nothing at or below the
//!   baseline, all of it at or above the target, pro rata in between. Needs
//!   ratings only.
//! - `bonus` = min(*p* × (*h* − *H*), *M*) when *h* ≥ *H* and *c* ≥ *S*,
//!   else 0. Needs ratings and SLAs.
//!
//! Sample sizes: responses for `earn_back`, responses plus SLAs for `bonus`.
//! Both details repeat every input: `{tenant, happiness, responses,
//! sla_compliance, slas, targets_met, happiness_target, sla_target, baseline,
//! credit, bonus_per_point, bonus_cap}`.
//!
//! Results are for the whole window only: the amounts are the contract's,
//! and repeating them per group would count the money once per group. With
//! `per_group: true` each group is scored as its own contract line.

use serde::{Deserialize, Serialize};
use xla_sdk::aggregates::{AggregateTable, check_bool, ratings};
use xla_sdk::formulas::percent_false;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// 0-10 survey ratings.
pub const HAPPINESS: &str = "happiness_rating";
/// One per SLA definition of a ticket, 1 when breached.
pub const SLA_BREACHED: &str = "sla_breached";

/// The contract's terms.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Terms {
    /// Happiness for the full earn-back and the start of the bonus.
    pub happiness_target: f64,
    /// SLA compliance the bonus also needs.
    pub sla_target: f64,
    /// Happiness at which nothing is earned back.
    pub baseline: f64,
    /// The period's service credit.
    pub credit: f64,
    /// Bonus per happiness point above the target.
    pub bonus_per_point: f64,
    /// Largest bonus.
    pub bonus_cap: f64,
    /// Whether to score each group as its own contract line.
    #[serde(skip_serializing)]
    pub per_group: bool,
}

impl Default for Terms {
    fn default() -> Self {
        Terms {
            happiness_target: 60.0,
            sla_target: 95.0,
            baseline: 0.0,
            credit: 10_000.0,
            bonus_per_point: 250.0,
            bonus_cap: 5_000.0,
            per_group: false,
        }
    }
}

impl Terms {
    fn check(&self) -> Result<(), PluginError> {
        let fail = |field: &str, rule: &str, value: f64| {
            Err(PluginError::Config(format!(
                "parameters field `{field}`: {rule}, got {value}"
            )))
        };
        let happiness = -100.0..=100.0;
        if !happiness.contains(&self.happiness_target) {
            return fail(
                "happiness_target",
                "happiness runs from -100 to 100",
                self.happiness_target,
            );
        }
        if !happiness.contains(&self.baseline) || self.baseline >= self.happiness_target {
            return fail(
                "baseline",
                "a happiness from -100 to 100 below `happiness_target`",
                self.baseline,
            );
        }
        if !(0.0..=100.0).contains(&self.sla_target) {
            return fail("sla_target", "a percent from 0 to 100", self.sla_target);
        }
        for (field, amount) in [
            ("credit", self.credit),
            ("bonus_per_point", self.bonus_per_point),
            ("bonus_cap", self.bonus_cap),
        ] {
            if !(amount.is_finite() && amount >= 0.0) {
                return fail(field, "an amount ≥ 0", amount);
            }
        }
        Ok(())
    }

    /// The part of the credit earned back at happiness `h`.
    pub fn earn_back(&self, h: f64) -> f64 {
        let progress = (h - self.baseline) / (self.happiness_target - self.baseline);
        self.credit * progress.clamp(0.0, 1.0)
    }

    /// The bonus at happiness `h` and SLA compliance `c`.
    pub fn bonus(&self, h: f64, c: f64) -> f64 {
        if self.targets_met(h, c) {
            (self.bonus_per_point * (h - self.happiness_target)).min(self.bonus_cap)
        } else {
            0.0
        }
    }

    fn targets_met(&self, h: f64, c: f64) -> bool {
        h >= self.happiness_target && c >= self.sla_target
    }
}

/// The detail of both results: every input.
#[derive(Debug, Serialize)]
struct Detail<'a> {
    tenant: &'a str,
    happiness: f64,
    responses: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    sla_compliance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    slas: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    targets_met: Option<bool>,
    #[serde(flatten)]
    terms: &'a Terms,
}

/// The gain-share scorer.
pub struct MspGainShare;

fn group_scores(
    input: &ScoreInput,
    table: &AggregateTable,
    group: Option<&str>,
    terms: &Terms,
) -> Result<Vec<Score>, PluginError> {
    let Some(rated) = table.get(group, HAPPINESS) else {
        return Ok(Vec::new());
    };
    let Some(happiness) = ratings(rated)?.happiness() else {
        return Ok(Vec::new());
    };
    let sla = table.get(group, SLA_BREACHED);
    let compliance = sla.and_then(|a| percent_false(a.sum, a.count));
    let detail = Detail {
        tenant: &input.tenant,
        happiness,
        responses: rated.count,
        sla_compliance: compliance,
        slas: sla.map(|a| a.count),
        targets_met: compliance.map(|c| terms.targets_met(happiness, c)),
        terms,
    };
    let detail = serde_json::to_string(&detail).ok();
    let score = |name: &str, value: f64, sample_size: u64| Score {
        name: name.into(),
        group: group.map(str::to_string),
        value,
        sample_size,
        detail: detail.clone(),
    };
    let mut scores = vec![score("earn_back", terms.earn_back(happiness), rated.count)];
    if let (Some(sla), Some(compliance)) = (sla, compliance) {
        scores.push(score(
            "bonus",
            terms.bonus(happiness, compliance),
            rated.count + sla.count,
        ));
    }
    Ok(scores)
}

impl Scorer for MspGainShare {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![HAPPINESS.into(), SLA_BREACHED.into()],
            needs_rows: false,
        }
    }

    fn score(input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let terms: Terms = xla_sdk::parse_parameters(&input.parameters)?;
        terms.check()?;
        let table = AggregateTable::new(input)?;
        for aggregate in table.of_metric(HAPPINESS) {
            ratings(aggregate)?;
        }
        for aggregate in table.of_metric(SLA_BREACHED) {
            check_bool(aggregate)?;
        }
        let mut scores = Vec::new();
        for group in table.groups().filter(|g| g.is_none() || terms.per_group) {
            scores.extend(group_scores(input, &table, group, &terms)?);
        }
        Ok(scores)
    }
}

xla_sdk::export_scorer!(MspGainShare);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use xla_sdk::Aggregate;
    use xla_sdk::Layer::{Experience, Operational};
    use xla_sdk::testkit::{aggregate, score_input};

    fn run(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        MspGainShare::score(&score_input(parameters, aggregates), None)
    }

    fn value(scores: &[Score], name: &str) -> Option<f64> {
        scores.iter().find(|s| s.name == name).map(|s| s.value)
    }

    /// `positive` 10s, `neutral` 8s and `negative` 3s.
    fn rated(group: Option<&str>, positive: usize, neutral: usize, negative: usize) -> Aggregate {
        let values = [vec![10.0; positive], vec![8.0; neutral], vec![3.0; negative]].concat();
        aggregate(HAPPINESS, Experience, group, &values)
    }

    fn slas(group: Option<&str>, met: usize, breached: usize) -> Aggregate {
        aggregate(
            SLA_BREACHED,
            Operational,
            group,
            &[vec![0.0; met], vec![1.0; breached]].concat(),
        )
    }

    #[test]
    fn above_both_targets_a_bonus_and_the_full_credit() {
        // 8 positive, 1 neutral, 1 negative: 70. 24 of 25 SLAs met: 96.
        // Bonus 250 × (70 − 60) = 2,500; earn-back all 10,000.
        let scores = run("", vec![rated(None, 8, 1, 1), slas(None, 24, 1)]).unwrap();
        assert_eq!(value(&scores, "earn_back"), Some(10_000.0));
        assert_eq!(value(&scores, "bonus"), Some(2_500.0));
        let bonus = scores.iter().find(|s| s.name == "bonus").unwrap();
        assert_eq!((bonus.group.as_deref(), bonus.sample_size), (None, 35));
        let detail: Value = serde_json::from_str(bonus.detail.as_deref().unwrap()).unwrap();
        assert_eq!(detail["tenant"], json!("acme"));
        assert_eq!(detail["happiness"], json!(70.0));
        assert_eq!(detail["sla_compliance"], json!(96.0));
        assert_eq!(detail["targets_met"], json!(true));
        assert_eq!(detail["credit"], json!(10_000.0));
        assert!(detail.get("per_group").is_none(), "{detail}");
    }

    #[test]
    fn below_the_happiness_target_the_credit_is_earned_back_pro_rata() {
        // 5 positive, 3 neutral, 2 negative: 30, halfway from 0 to 60.
        let scores = run("", vec![rated(None, 5, 3, 2), slas(None, 25, 0)]).unwrap();
        assert_eq!(value(&scores, "earn_back"), Some(5_000.0));
        assert_eq!(value(&scores, "bonus"), Some(0.0));
        // At or below the baseline: nothing. 2 positive, 4 negative of 10: −20.
        let scores = run("", vec![rated(None, 2, 4, 4)]).unwrap();
        assert_eq!(value(&scores, "earn_back"), Some(0.0));
    }

    #[test]
    fn the_bonus_is_capped_and_needs_the_sla_target() {
        // All positive: 100 → 250 × 40 = 10,000, capped at 5,000.
        let scores = run("", vec![rated(None, 10, 0, 0), slas(None, 20, 0)]).unwrap();
        assert_eq!(value(&scores, "bonus"), Some(5_000.0));
        // 70 but 18 of 20 SLAs (90 < 95): no bonus, full earn-back.
        let scores = run("", vec![rated(None, 8, 1, 1), slas(None, 18, 2)]).unwrap();
        assert_eq!(value(&scores, "bonus"), Some(0.0));
        assert_eq!(value(&scores, "earn_back"), Some(10_000.0));
    }

    #[test]
    fn terms_come_from_parameters() {
        // Baseline 20, target 40, credit 1,000: happiness 30 earns back half.
        // 100 per point above 40 with compliance ≥ 80: at 70, 3,000, capped at 2,000.
        let parameters = r#"{"baseline": 20, "happiness_target": 40, "credit": 1000,
                             "bonus_per_point": 100, "bonus_cap": 2000, "sla_target": 80}"#;
        let scores = run(parameters, vec![rated(None, 5, 3, 2), slas(None, 18, 2)]).unwrap();
        assert_eq!(value(&scores, "earn_back"), Some(500.0));
        let scores = run(parameters, vec![rated(None, 8, 1, 1), slas(None, 18, 2)]).unwrap();
        assert_eq!(value(&scores, "bonus"), Some(2_000.0));
    }

    #[test]
    fn whole_window_only_unless_per_group() {
        let window = vec![
            rated(None, 8, 1, 1),
            slas(None, 24, 1),
            rated(Some("VPN"), 5, 3, 2),
            slas(Some("VPN"), 10, 0),
        ];
        let scores = run("", window.clone()).unwrap();
        assert!(scores.iter().all(|s| s.group.is_none()), "{scores:?}");
        let scores = run(r#"{"per_group": true}"#, window).unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.name.as_str(), s.group.as_deref(), s.value))
            .collect();
        assert_eq!(
            got,
            [
                ("earn_back", None, 10_000.0),
                ("bonus", None, 2_500.0),
                ("earn_back", Some("VPN"), 5_000.0),
                ("bonus", Some("VPN"), 0.0),
            ]
        );
    }

    #[test]
    fn without_ratings_nothing_without_slas_no_bonus() {
        assert!(run("", vec![slas(None, 20, 0)]).unwrap().is_empty());
        let scores = run("", vec![rated(None, 8, 1, 1)]).unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[0].name, "earn_back");
    }

    #[test]
    fn bad_terms_are_config_errors_and_bad_data_names_the_metric() {
        for parameters in [
            r#"{"baseline": 60}"#,
            r#"{"happiness_target": 120}"#,
            r#"{"sla_target": -1}"#,
            r#"{"credit": -5}"#,
            r#"{"metric_results": {}}"#,
        ] {
            let err = run(parameters, vec![]).unwrap_err();
            assert!(matches!(err, PluginError::Config(_)), "{parameters}: {err:?}");
        }
        let mut broken = slas(None, 3, 1);
        broken.max = 4.0;
        let err = run("", vec![broken]).unwrap_err();
        assert!(err.to_string().contains("`sla_breached` for the whole window"), "{err}");
    }

    #[test]
    fn describes_its_binding_and_what_it_reads() {
        let info = MspGainShare::info();
        assert_eq!(info.metrics, [HAPPINESS, SLA_BREACHED]);
        assert!(!info.needs_rows);
        assert!(
            info.description.contains("binds this scorer to"),
            "{}",
            info.description
        );
        assert!(serde_json::from_str::<Value>(&info.parameters_schema).is_ok());
    }
}
