//! `dex`: Nexthink's digital employee experience score per group, from the
//! `dex_score` aggregates (0-100 per device and user per day).
//!
//! - `dex_score` = sum / count, the mean score;
//! - `dex_min` = min, the lowest score seen.
//!
//! Both carry the number of scores as their sample size. The share of
//! scores below 70 ("average or frustrating") needs the values themselves,
//! not a rollup, so this scorer does not report it. A group with fewer
//! scores than `min_sample` gets no score.

use serde::Deserialize;
use xla_sdk::aggregates::{AggregateTable, check_range};
use xla_sdk::formulas::mean;
use xla_sdk::{Aggregate, PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric this scorer reads.
pub const METRIC: &str = "dex_score";

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

/// The DEX scorer.
pub struct Dex;

fn score(name: &str, aggregate: &Aggregate, value: f64) -> Score {
    Score {
        name: name.into(),
        group: aggregate.group.clone(),
        value,
        sample_size: aggregate.count,
        detail: None,
    }
}

impl Scorer for Dex {
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
            check_range(aggregate, 0.0, 100.0)?;
            let Some(value) = mean(aggregate.sum, aggregate.count) else {
                continue;
            };
            if aggregate.count < parameters.min_sample {
                continue;
            }
            scores.push(score("dex_score", aggregate, value));
            scores.push(score("dex_min", aggregate, aggregate.min));
        }
        Ok(scores)
    }
}

xla_sdk::export_scorer!(Dex);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Layer::Technical;
    use xla_sdk::testkit::{aggregate, score_input};

    fn scores(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        Dex::score(&score_input(parameters, aggregates), None)
    }

    #[test]
    fn mean_and_min_per_group_by_hand() {
        // Laptops: 80, 60, 70 → mean 70, min 60. Desktops: 90, 85 → 87.5, 85.
        // All five: 385 / 5 = 77, min 60.
        let scores = scores(
            "",
            vec![
                aggregate(METRIC, Technical, Some("Laptops"), &[80.0, 60.0, 70.0]),
                aggregate(METRIC, Technical, None, &[80.0, 60.0, 70.0, 90.0, 85.0]),
                aggregate(METRIC, Technical, Some("Desktops"), &[90.0, 85.0]),
            ],
        )
        .unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.name.as_str(), s.group.as_deref(), s.value, s.sample_size))
            .collect();
        assert_eq!(
            got,
            [
                ("dex_score", None, 77.0, 5),
                ("dex_min", None, 60.0, 5),
                ("dex_score", Some("Desktops"), 87.5, 2),
                ("dex_min", Some("Desktops"), 85.0, 2),
                ("dex_score", Some("Laptops"), 70.0, 3),
                ("dex_min", Some("Laptops"), 60.0, 3),
            ]
        );
    }

    #[test]
    fn empty_and_small_groups_get_nothing() {
        let scores = scores(
            r#"{"min_sample": 3}"#,
            vec![
                aggregate(METRIC, Technical, None, &[50.0, 60.0, 70.0]),
                aggregate(METRIC, Technical, Some("Desktops"), &[90.0, 85.0]),
                aggregate(METRIC, Technical, Some("Tablets"), &[]),
            ],
        )
        .unwrap();
        assert_eq!(scores.len(), 2);
        assert!(scores.iter().all(|s| s.group.is_none()));
    }

    #[test]
    fn scores_outside_0_to_100_are_bad_data() {
        let err = scores("", vec![aggregate(METRIC, Technical, Some("Laptops"), &[80.0, 101.0])]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("`dex_score` for group `Laptops`"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = Dex::info();
        assert_eq!(info.metrics, [METRIC]);
        assert!(!info.needs_rows);
        assert!(serde_json::from_str::<serde_json::Value>(&info.parameters_schema).is_ok());
    }
}
