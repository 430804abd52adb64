//! `reopen-rate`: the reopen rate per group, from the `reopened` aggregates
//! (1 when a resolved ticket was reopened at least once, else 0; one per
//! resolved ticket).
//!
//! `reopen_rate` = 100 × sum / count: the percent of resolved tickets that
//! were reopened. Its sample size is the number of resolved tickets; its
//! detail counts them: `{"reopened": 3, "tickets": 50}`. A group with fewer
//! tickets than `min_sample` gets no score.

use serde::Deserialize;
use xla_sdk::aggregates::{Counting, ShareScore};
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric this scorer reads.
pub const METRIC: &str = "reopened";

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

/// The reopen rate scorer.
pub struct ReopenRate;

impl Scorer for ReopenRate {
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
            result: "reopen_rate",
            counting: Counting::Ones,
            counted: "reopened",
            rest: ("tickets", true),
        }
        .scores(input, parameters.min_sample)
    }
}

xla_sdk::export_scorer!(ReopenRate);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Aggregate;
    use xla_sdk::Layer::Operational;
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        ReopenRate::score(&score_input(parameters, aggregates), None)
    }

    fn bools(ones: usize, zeros: usize) -> Vec<f64> {
        [vec![1.0; ones], vec![0.0; zeros]].concat()
    }

    fn detail(score: &Score) -> serde_json::Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    #[test]
    fn percent_of_ones_per_group_by_hand() {
        // Email: 1 of 20 reopened = 5 %; VPN: 3 of 12 = 25 %; all: 4 of 32 = 12.5 %.
        let scores = scores(
            "",
            vec![
                aggregate(METRIC, Operational, None, &bools(4, 28)),
                aggregate(METRIC, Operational, Some("VPN"), &bools(3, 9)),
                aggregate(METRIC, Operational, Some("Email"), &bools(1, 19)),
            ],
        )
        .unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.group.as_deref(), s.value, s.sample_size))
            .collect();
        assert_eq!(
            got,
            [(None, 12.5, 32), (Some("Email"), 5.0, 20), (Some("VPN"), 25.0, 12)]
        );
        assert!(scores.iter().all(|s| s.name == "reopen_rate"));
        assert_eq!(detail(&scores[2]), serde_json::json!({"reopened": 3, "tickets": 12}));
    }

    #[test]
    fn none_reopened_is_zero_and_empty_groups_get_nothing() {
        let scores = scores(
            "{}",
            vec![
                aggregate(METRIC, Operational, None, &bools(0, 5)),
                aggregate(METRIC, Operational, Some("VPN"), &[]),
            ],
        )
        .unwrap();
        assert_eq!(scores.len(), 1);
        assert_eq!((scores[0].group.as_deref(), scores[0].value), (None, 0.0));
    }

    #[test]
    fn a_sum_beyond_the_count_is_bad_data() {
        let mut broken = aggregate(METRIC, Operational, None, &bools(2, 2));
        broken.sum = 7.0;
        let err = scores("", vec![broken]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("`reopened` for the whole window"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = ReopenRate::info();
        assert_eq!(info.metrics, [METRIC]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<serde_json::Value>(&info.parameters_schema).is_ok());
    }
}
