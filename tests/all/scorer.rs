//! Scorers: deterministic (fixed clock, seeded randomness), blind to the
//! host, bounded, fed rows in batches, and without any network.

use crate::support::{guests, load, runtime, scorer, tight_limits};
use std::path::Path;
use xla_host::plugins::{Pins, PluginLoadError, load_plugin};
use xla_host::runtime::{Aggregate, Layer, Limits, RuntimeError, Score, ScoreInput, SubjectRow};

fn input(parameters: &str) -> ScoreInput {
    ScoreInput {
        tenant: "acme".into(),
        window_start: 0,
        window_end: 1,
        group_by: None,
        parameters: parameters.into(),
        aggregates: Vec::new(),
    }
}

fn value(scores: &[Score], name: &str) -> f64 {
    scores
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("no score {name} in {scores:?}"))
}

#[tokio::test]
async fn a_scorer_sees_a_fixed_clock_no_environment_and_no_files() {
    let mut session = scorer(guests::PROBE_SCORER).session(tight_limits());
    let scores = session.score(&input("{}"), None).await.expect("probe scores");
    assert_eq!(
        value(&scores, "wall_clock_ms"),
        0.0,
        "the wall clock is stopped at the epoch"
    );
    assert_eq!(
        value(&scores, "monotonic_elapsed_ns"),
        0.0,
        "the monotonic clock never moves"
    );
    assert_eq!(value(&scores, "env_vars"), 0.0);
    assert_eq!(value(&scores, "fs_successes"), 0.0);
}

#[tokio::test]
async fn scores_are_deterministic_across_calls_and_sessions() {
    let first = scorer(guests::PROBE_SCORER)
        .session(tight_limits())
        .score(&input("{}"), None)
        .await
        .expect("scores");
    let mut session = scorer(guests::PROBE_SCORER).session(tight_limits());
    for _ in 0..3 {
        let again = session.score(&input("{}"), None).await.expect("scores");
        assert_eq!(again, first, "randomness is seeded, clocks fixed");
    }
}

/// Scores with `parameters` on a thread of its own, failing the test if no
/// answer comes: a test of the deadline must fail, not hang, without it.
fn score_within_30s(parameters: &'static str, limits: Limits) -> Result<Vec<Score>, RuntimeError> {
    crate::support::within(std::time::Duration::from_secs(30), move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(
            scorer(guests::PROBE_SCORER)
                .session(limits)
                .score(&input(parameters), None),
        )
    })
}

#[test]
fn a_spinning_scorer_hits_its_deadline() {
    let limits = Limits {
        deadline_ms: 200,
        ..tight_limits()
    };
    let error = score_within_30s(r#"{"mode":"spin"}"#, limits).unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
}

#[test]
fn a_sleeping_scorer_hits_its_deadline() {
    // Asleep in a host call the epoch cannot interrupt: the timer must.
    let limits = Limits {
        deadline_ms: 300,
        ..tight_limits()
    };
    let error = score_within_30s(r#"{"mode":"sleep"}"#, limits).unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
}

#[tokio::test]
async fn rows_stream_through_the_reader_in_batches() {
    let rows = (0..10_000u32).map(|i| SubjectRow {
        key: format!("INC{i:07}"),
        dimensions: vec![("service".into(), "Email".into())],
        values: vec![("happiness_rating".into(), f64::from(i % 11))],
    });
    let expected: f64 = (0..10_000u32).map(|i| f64::from(i % 11)).sum();
    let scores = scorer(guests::PROBE_SCORER)
        .session(tight_limits())
        .score(&input(r#"{"mode":"rows"}"#), Some(Box::new(rows)))
        .await
        .expect("scores");
    assert_eq!(scores[0].sample_size, 10_000);
    assert_eq!(scores[0].value, expected);
}

#[tokio::test]
async fn the_mean_scorer_scores_per_group() {
    let aggregate = |group: &str, count: u64, sum: f64| Aggregate {
        metric: "happiness_rating".into(),
        layer: Layer::Experience,
        group: Some(group.into()),
        count,
        sum,
        min: 0.0,
        max: 10.0,
        histogram: None,
    };
    let mut score_input = input(r#"{"min_sample":2}"#);
    score_input.aggregates = vec![aggregate("Email", 4, 34.0), aggregate("VPN", 1, 3.0)];
    let scores = scorer(guests::MEAN)
        .session(tight_limits())
        .score(&score_input, None)
        .await
        .expect("scores");
    assert_eq!(scores.len(), 1, "VPN is below min_sample: {scores:?}");
    assert_eq!(scores[0].group.as_deref(), Some("Email"));
    assert_eq!(scores[0].value, 8.5);
}

#[test]
fn a_scorer_that_imports_the_network_is_refused_at_load() {
    let error = load_plugin(runtime(), Path::new(guests::NET_SCORER), &Pins::default())
        .err()
        .expect("a scorer importing wasi:http must not load");
    let PluginLoadError::Runtime(RuntimeError::Link { reason, .. }) = &error else {
        panic!("expected a link error, got {error}");
    };
    assert!(
        reason.contains("wasi:http") && reason.contains("no network"),
        "{reason}"
    );
}

#[test]
fn loading_the_probe_declares_rows() {
    let plugin = load(guests::PROBE_SCORER);
    assert_eq!(plugin.manifest.name, "probe-scorer");
}
