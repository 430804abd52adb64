//! A scorer built against the frozen contract `xla:plugin@0.1.0` directly
//! with wit-bindgen, as authors built them before 0.2 (the SDK now targets
//! 0.2). The host must load it, hand it aggregates and a row reader, and
//! read its scores back.
//!
//! Scores: `mean` per aggregate of `resolution_hours` (sum / count, sample
//! size the count), and `rows`, the number of rows read through the reader
//! with the sum of their `resolution_hours` as detail.

wit_bindgen::generate!({
    path: "../../../wit/since_v0.1.0",
    world: "xla:plugin/scorer-plugin@0.1.0",
    generate_all,
});

use exports::xla::plugin::scorer::{Guest, ScoreInput, ScoreResult, ScorerInfo};
use xla::plugin::rows::RowReader;
use xla::plugin::types::PluginError;

const METRIC: &str = "resolution_hours";

struct V01Scorer;

impl Guest for V01Scorer {
    fn describe() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: r#"{"type":"object"}"#.into(),
            metrics: vec![METRIC.into()],
            needs_rows: true,
        }
    }

    fn score(input: ScoreInput, rows: Option<RowReader>) -> Result<Vec<ScoreResult>, PluginError> {
        let mut scores: Vec<ScoreResult> = input
            .aggregates
            .iter()
            .filter(|a| a.metric == METRIC && a.count > 0)
            .map(|a| ScoreResult {
                name: "mean".into(),
                group: a.group.clone(),
                value: a.sum / a.count as f64,
                sample_size: a.count,
                detail: None,
            })
            .collect();
        if let Some(reader) = rows {
            let (count, sum) = read_all(&reader);
            scores.push(ScoreResult {
                name: "rows".into(),
                group: None,
                value: count as f64,
                sample_size: count,
                detail: Some(format!(r#"{{"{METRIC}":{sum}}}"#)),
            });
        }
        Ok(scores)
    }
}

/// Rows read to the end in batches of two (so more than one batch is
/// asked for), and the sum of their [`METRIC`] values.
fn read_all(reader: &RowReader) -> (u64, f64) {
    let (mut count, mut sum) = (0, 0.0);
    loop {
        let batch = reader.next_batch(2);
        if batch.is_empty() {
            return (count, sum);
        }
        for row in batch {
            count += 1;
            sum += row
                .values
                .iter()
                .filter(|(m, _)| m == METRIC)
                .map(|(_, v)| v)
                .sum::<f64>();
        }
    }
}

export!(V01Scorer);
