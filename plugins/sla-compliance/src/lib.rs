//! `sla-compliance`: SLA compliance per group, from the `sla_breached`
//! aggregates (one observation per SLA definition attached to a ticket, 1
//! when that SLA was breached).
//!
//! `sla_compliance` = 100 × (count − sum) / count: the percent of SLAs met
//! (18 met of 20 is 90). It counts SLAs, not tickets: a ticket with a
//! response and a resolution SLA weighs twice. The per-ticket view ("all of
//! the ticket's SLAs met") is the `watermelon` scorer's. The sample size is
//! the number of SLAs; the detail counts them: `{"met": 18, "breached": 2}`.
//! A group with fewer SLAs than `min_sample` gets no score.

use serde::Deserialize;
use xla_sdk::aggregates::{Counting, ShareScore};
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric this scorer reads.
pub const METRIC: &str = "sla_breached";

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Parameters {
    min_sample: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters { min_sample: 1 }
    }
}

/// The SLA compliance scorer.
pub struct SlaCompliance;

impl Scorer for SlaCompliance {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![METRIC.into()],
            needs_rows: false,
        }
    }

    fn score(input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let parameters: Parameters = xla_sdk::parse_parameters(&input.parameters)?;
        ShareScore {
            metric: METRIC,
            result: "sla_compliance",
            counting: Counting::Zeros,
            counted: "met",
            rest: ("breached", false),
        }
        .scores(input, parameters.min_sample)
    }
}

xla_sdk::export_scorer!(SlaCompliance);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Aggregate;
    use xla_sdk::Layer::Operational;
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        SlaCompliance::score(&score_input(parameters, aggregates), None)
    }

    fn slas(met: usize, breached: usize) -> Vec<f64> {
        [vec![0.0; met], vec![1.0; breached]].concat()
    }

    fn detail(score: &Score) -> serde_json::Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    #[test]
    fn eighteen_met_of_twenty_is_90() {
        let scores = scores("", vec![aggregate(METRIC, Operational, None, &slas(18, 2))]).unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[0].name, "sla_compliance");
        assert_eq!(
            (scores[0].group.as_deref(), scores[0].value, scores[0].sample_size),
            (None, 90.0, 20)
        );
        assert_eq!(detail(&scores[0]), serde_json::json!({"met": 18, "breached": 2}));
    }

    #[test]
    fn per_group_by_hand_in_group_order() {
        // VPN: 19 of 20 met = 95; Email: 6 of 8 = 75; all: 25 of 28.
        let scores = scores(
            "",
            vec![
                aggregate(METRIC, Operational, Some("VPN"), &slas(19, 1)),
                aggregate(METRIC, Operational, Some("Email"), &slas(6, 2)),
                aggregate(METRIC, Operational, None, &slas(25, 3)),
                aggregate(METRIC, Operational, Some("Printing"), &[]),
            ],
        )
        .unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.group.as_deref(), s.value, s.sample_size))
            .collect();
        assert_eq!(
            got,
            [
                (None, 2500.0 / 28.0, 28),
                (Some("Email"), 75.0, 8),
                (Some("VPN"), 95.0, 20)
            ]
        );
    }

    #[test]
    fn min_sample_drops_small_groups() {
        let scores = scores(
            r#"{"min_sample": 10}"#,
            vec![
                aggregate(METRIC, Operational, None, &slas(18, 2)),
                aggregate(METRIC, Operational, Some("Email"), &slas(6, 2)),
            ],
        )
        .unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!(scores[0].group, None);
    }

    #[test]
    fn values_other_than_0_and_1_are_bad_data() {
        let err = scores("", vec![aggregate(METRIC, Operational, Some("Email"), &[0.0, -1.0])]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("`sla_breached` for group `Email`"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = SlaCompliance::info();
        assert_eq!(info.metrics, [METRIC]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<serde_json::Value>(&info.parameters_schema).is_ok());
    }
}
