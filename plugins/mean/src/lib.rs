//! `mean`: the mean of each metric per group over the scoring window.
//!
//! The smallest useful scorer, and the one the host's call-overhead
//! benchmark runs.

use serde::Deserialize;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    #[serde(default = "one")]
    min_sample: u64,
}

fn one() -> u64 {
    1
}

struct Mean;

impl Scorer for Mean {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec!["*".into()],
            needs_rows: false,
        }
    }

    fn score(input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let parameters = if input.parameters.trim().is_empty() {
            Parameters { min_sample: 1 }
        } else {
            xla_sdk::parse_config::<Parameters>(&input.parameters)?
        };
        Ok(input
            .aggregates
            .iter()
            .filter(|a| a.count > 0 && a.count >= parameters.min_sample)
            .map(|a| Score {
                name: a.metric.clone(),
                group: a.group.clone(),
                value: a.sum / a.count as f64,
                sample_size: a.count,
                detail: None,
            })
            .collect())
    }
}

xla_sdk::export_scorer!(Mean);
