//! `fcr`: first contact resolution per group, from the
//! `first_contact_resolution` aggregates (1 when a resolved ticket had no
//! reassignment and no reopen, else 0; one per resolved ticket).
//!
//! `first_contact_resolution` = 100 × sum / count: the percent of resolved
//! tickets resolved at first contact. Its sample size is the number of
//! resolved tickets; its detail counts them:
//! `{"first_contact": 42, "tickets": 50}`. A group with fewer tickets than
//! `min_sample` gets no score.

use serde::Deserialize;
use xla_sdk::aggregates::{Counting, ShareScore};
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric this scorer reads.
pub const METRIC: &str = "first_contact_resolution";

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

/// The first contact resolution scorer.
pub struct Fcr;

impl Scorer for Fcr {
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
            result: "first_contact_resolution",
            counting: Counting::Ones,
            counted: "first_contact",
            rest: ("tickets", true),
        }
        .scores(input, parameters.min_sample)
    }
}

xla_sdk::export_scorer!(Fcr);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Aggregate;
    use xla_sdk::Layer::Operational;
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        Fcr::score(&score_input(parameters, aggregates), None)
    }

    fn bools(ones: usize, zeros: usize) -> Vec<f64> {
        [vec![1.0; ones], vec![0.0; zeros]].concat()
    }

    fn detail(score: &Score) -> serde_json::Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    #[test]
    fn percent_of_ones_per_group_by_hand() {
        // Email: 3 of 4 at first contact = 75 %; VPN: 1 of 4 = 25 %; all: 4 of 8 = 50 %.
        let scores = scores(
            "",
            vec![
                aggregate(METRIC, Operational, Some("VPN"), &bools(1, 3)),
                aggregate(METRIC, Operational, Some("Email"), &bools(3, 1)),
                aggregate(METRIC, Operational, None, &bools(4, 4)),
            ],
        )
        .unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.group.as_deref(), s.value, s.sample_size))
            .collect();
        assert_eq!(got, [(None, 50.0, 8), (Some("Email"), 75.0, 4), (Some("VPN"), 25.0, 4)]);
        assert!(scores.iter().all(|s| s.name == "first_contact_resolution"));
        assert_eq!(
            detail(&scores[1]),
            serde_json::json!({"first_contact": 3, "tickets": 4})
        );
    }

    #[test]
    fn empty_groups_and_small_groups_get_nothing() {
        let scores = scores(
            r#"{"min_sample": 4}"#,
            vec![
                aggregate(METRIC, Operational, None, &bools(2, 2)),
                aggregate(METRIC, Operational, Some("Email"), &bools(1, 1)),
                aggregate(METRIC, Operational, Some("VPN"), &[]),
            ],
        )
        .unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!((scores[0].group.as_deref(), scores[0].value), (None, 50.0));
    }

    #[test]
    fn values_other_than_0_and_1_are_bad_data() {
        let err = scores("", vec![aggregate(METRIC, Operational, Some("VPN"), &[1.0, 2.0])]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(
            err.to_string().contains("`first_contact_resolution` for group `VPN`"),
            "{err}"
        );
    }

    #[test]
    fn describes_what_it_reads() {
        let info = Fcr::info();
        assert_eq!(info.metrics, [METRIC]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<serde_json::Value>(&info.parameters_schema).is_ok());
    }
}
