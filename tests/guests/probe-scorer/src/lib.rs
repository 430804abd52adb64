//! A scorer for the sandbox tests: reports the clock, randomness,
//! environment and files it can see, or spins (`{"mode": "spin"}`), or
//! sleeps an hour (`{"mode": "sleep"}`), or sums the rows it is given (`{"mode": "rows"}`).

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

struct Probe;

fn score(name: &str, value: f64) -> Score {
    Score {
        name: name.into(),
        group: None,
        value,
        sample_size: 1,
        detail: None,
    }
}

fn probe() -> Vec<Score> {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as f64)
        .unwrap_or(-1.0);
    let started = std::time::Instant::now();
    let random = (RandomState::new().hash_one(42u64) >> 11) as f64;
    let env = std::env::vars().count() as f64;
    let files = [
        std::fs::read_dir("/").is_ok(),
        std::fs::read_to_string("/etc/hostname").is_ok(),
    ]
    .iter()
    .filter(|ok| **ok)
    .count() as f64;
    vec![
        score("wall_clock_ms", wall),
        score("monotonic_elapsed_ns", started.elapsed().as_nanos() as f64),
        score("random", random),
        score("env_vars", env),
        score("fs_successes", files),
    ]
}

impl Scorer for Probe {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: "{}".into(),
            metrics: Vec::new(),
            needs_rows: true,
        }
    }

    fn score(input: &ScoreInput, rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let mode: serde_json::Value =
            serde_json::from_str(&input.parameters).map_err(|e| PluginError::Config(format!("parameters: {e}")))?;
        match mode["mode"].as_str() {
            Some("spin") => {
                let mut counter = 0u64;
                loop {
                    counter = std::hint::black_box(counter.wrapping_add(1));
                }
            }
            Some("sleep") => {
                std::thread::sleep(std::time::Duration::from_secs(3600));
                Ok(Vec::new())
            }
            Some("rows") => {
                let (mut count, mut sum) = (0u64, 0.0);
                if let Some(rows) = rows {
                    rows.for_each(|row| {
                        count += 1;
                        sum += row.values.iter().map(|(_, v)| v).sum::<f64>();
                    });
                }
                Ok(vec![Score {
                    name: "row_sum".into(),
                    group: None,
                    value: sum,
                    sample_size: count,
                    detail: None,
                }])
            }
            _ => Ok(probe()),
        }
    }
}

xla_sdk::export_scorer!(Probe);
