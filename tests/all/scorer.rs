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

#[test]
fn a_scorer_sees_a_fixed_clock_no_environment_and_no_files() {
    let mut session = scorer(guests::PROBE_SCORER).session(tight_limits());
    let scores = session.score(&input("{}"), None).expect("probe scores");
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

#[test]
fn scores_are_deterministic_across_calls_and_sessions() {
    let first = scorer(guests::PROBE_SCORER)
        .session(tight_limits())
        .score(&input("{}"), None)
        .expect("scores");
    let mut session = scorer(guests::PROBE_SCORER).session(tight_limits());
    for _ in 0..3 {
        assert_eq!(
            session.score(&input("{}"), None).expect("scores"),
            first,
            "randomness is seeded, clocks fixed"
        );
    }
}

#[test]
fn a_spinning_scorer_hits_its_deadline() {
    let limits = Limits {
        deadline_ms: 200,
        ..tight_limits()
    };
    let error = scorer(guests::PROBE_SCORER)
        .session(limits)
        .score(&input(r#"{"mode":"spin"}"#), None)
        .unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
}

#[test]
fn rows_stream_through_the_reader_in_batches() {
    let rows = (0..10_000u32).map(|i| SubjectRow {
        key: format!("INC{i:07}"),
        dimensions: vec![("service".into(), "Email".into())],
        values: vec![("happiness_rating".into(), f64::from(i % 11))],
    });
    let expected: f64 = (0..10_000u32).map(|i| f64::from(i % 11)).sum();
    let scores = scorer(guests::PROBE_SCORER)
        .session(tight_limits())
        .score(&input(r#"{"mode":"rows"}"#), Some(Box::new(rows)))
        .expect("scores");
    assert_eq!(scores[0].sample_size, 10_000);
    assert_eq!(scores[0].value, expected);
}

#[test]
fn the_mean_scorer_scores_per_group() {
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
