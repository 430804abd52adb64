//! `lost-time`: the work time end users say their tickets cost them, per
//! group, from the `lost_time_minutes` aggregates.
//!
//! - `lost_time_mean` = sum / count, in minutes per answer. A survey
//!   response without a lost-time answer emits no observation, so it is not
//!   in the count: the mean covers only those who answered (as HappySignals
//!   reports it).
//! - `lost_time_total` = sum, in minutes.
//!
//! Both carry the number of answers as their sample size. A group with
//! fewer answers than `min_sample` gets neither.

use serde::Deserialize;
use xla_sdk::aggregates::{AggregateTable, check_non_negative};
use xla_sdk::{Aggregate, PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric this scorer reads.
pub const METRIC: &str = "lost_time_minutes";

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

/// The lost-time scorer.
pub struct LostTime;

fn score(name: &str, aggregate: &Aggregate, value: f64) -> Score {
    Score {
        name: name.into(),
        group: aggregate.group.clone(),
        value,
        sample_size: aggregate.count,
        detail: None,
    }
}

impl Scorer for LostTime {
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
        let table = AggregateTable::new(input)?;
        let mut scores = Vec::new();
        for aggregate in table.of_metric(METRIC) {
            check_non_negative(aggregate)?;
            if aggregate.count < parameters.min_sample {
                continue;
            }
            scores.push(score(
                "lost_time_mean",
                aggregate,
                aggregate.sum / aggregate.count as f64,
            ));
            scores.push(score("lost_time_total", aggregate, aggregate.sum));
        }
        Ok(scores)
    }
}

xla_sdk::export_scorer!(LostTime);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Layer::Experience;
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        LostTime::score(&score_input(parameters, aggregates), None)
    }

    fn values(scores: &[Score]) -> Vec<(&str, Option<&str>, f64, u64)> {
        scores
            .iter()
            .map(|s| (s.name.as_str(), s.group.as_deref(), s.value, s.sample_size))
            .collect()
    }

    #[test]
    fn mean_and_total_per_group_by_hand() {
        // Email answered 0, 120 and 15 minutes; VPN 30 and 90. The whole window
        // holds all five: 255 minutes, 51 per answer.
        let scores = scores(
            "",
            vec![
                aggregate(METRIC, Experience, Some("VPN"), &[30.0, 90.0]),
                aggregate(METRIC, Experience, None, &[30.0, 90.0, 0.0, 120.0, 15.0]),
                aggregate(METRIC, Experience, Some("Email"), &[0.0, 120.0, 15.0]),
            ],
        )
        .unwrap();
        assert_eq!(
            values(&scores),
            [
                ("lost_time_mean", None, 51.0, 5),
                ("lost_time_total", None, 255.0, 5),
                ("lost_time_mean", Some("Email"), 45.0, 3),
                ("lost_time_total", Some("Email"), 135.0, 3),
                ("lost_time_mean", Some("VPN"), 60.0, 2),
                ("lost_time_total", Some("VPN"), 120.0, 2),
            ]
        );
    }

    #[test]
    fn groups_without_answers_or_below_min_sample_get_nothing() {
        let scores = scores(
            r#"{"min_sample": 3}"#,
            vec![
                aggregate(METRIC, Experience, None, &[30.0, 90.0, 60.0]),
                aggregate(METRIC, Experience, Some("VPN"), &[30.0, 90.0]),
                aggregate(METRIC, Experience, Some("Printing"), &[]),
            ],
        )
        .unwrap();
        assert_eq!(
            values(&scores),
            [("lost_time_mean", None, 60.0, 3), ("lost_time_total", None, 180.0, 3)]
        );
    }

    #[test]
    fn negative_minutes_are_bad_data_naming_metric_and_group() {
        let err = scores("{}", vec![aggregate(METRIC, Experience, Some("VPN"), &[-5.0, 30.0])]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("`lost_time_minutes` for group `VPN`"), "{err}");
    }

    #[test]
    fn unknown_parameters_are_config_errors() {
        let err = scores(r#"{"min_samples": 3}"#, vec![]).unwrap_err();
        assert!(matches!(err, PluginError::Config(_)), "{err:?}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = LostTime::info();
        assert_eq!(info.metrics, [METRIC]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<serde_json::Value>(&info.parameters_schema).is_ok());
    }
}
