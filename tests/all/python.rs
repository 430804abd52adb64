//! Python scorers (componentize-py): loaded through the compile cache, the
//! same results as their Rust twins, and the same sandbox as any scorer.
//!
//! A Python component takes seconds to compile, so each is loaded once per
//! test binary (`happiness_py`, `python_probe`) and the shared test cache
//! keeps the compiled code between runs.

use crate::support::{guests, load, scorer, tight_limits};
use std::path::Path;
use std::sync::OnceLock;
use xla_host::plugins::{LoadedPlugin, Pins, PluginPre, load_plugin};
use xla_host::runtime::{
    Aggregate, CacheOutcome, Layer, Limits, PluginError, Runtime, RuntimeOptions, Score, ScoreInput, ScorerPre,
};

/// Room for CPython's heap, above the tight limits the Rust guests get.
fn python_limits() -> Limits {
    Limits {
        memory_mib: 128,
        ..tight_limits()
    }
}

fn scorer_of(loaded: &LoadedPlugin) -> ScorerPre {
    match &loaded.pre {
        PluginPre::Scorer(pre) => pre.clone(),
        PluginPre::Connector(_) => panic!("{} is a connector", loaded.path.display()),
    }
}

fn loaded_happiness_py() -> &'static LoadedPlugin {
    static LOADED: OnceLock<LoadedPlugin> = OnceLock::new();
    LOADED.get_or_init(|| load(guests::HAPPINESS_PY))
}

fn happiness_py() -> ScorerPre {
    scorer_of(loaded_happiness_py())
}

fn python_probe() -> ScorerPre {
    static LOADED: OnceLock<LoadedPlugin> = OnceLock::new();
    scorer_of(LOADED.get_or_init(|| load(guests::PYTHON_PROBE)))
}

#[test]
fn a_python_scorer_compiles_once_then_loads_from_the_cache() {
    let cache = tempfile::tempdir().expect("temp dir");
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        max_instances: 4,
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let wasm = Path::new(guests::HAPPINESS_PY);
    let first = load_plugin(&runtime, wasm, &Pins::default()).expect("first load");
    assert_eq!(first.cache, CacheOutcome::Miss, "a fresh cache directory holds nothing");
    let second = load_plugin(&runtime, wasm, &Pins::default()).expect("second load");
    assert_eq!(
        second.cache,
        CacheOutcome::Hit,
        "the second load must take the compiled code"
    );
    // Not asserted (timings vary with the machine), but worth seeing with --nocapture.
    println!(
        "happiness-py: compiled in {:?}, loaded from the cache in {:?}",
        first.load_time, second.load_time
    );
    let PluginPre::Scorer(pre) = second.pre else {
        panic!("happiness-py is a scorer");
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio");
    let info = tokio
        .block_on(pre.session(python_limits()).describe())
        .expect("the cached component runs");
    assert_eq!(info.name, "happiness-py");
}

// --- the twins ---------------------------------------------------------------

fn histogram(counts: [u64; 11]) -> Option<Vec<u64>> {
    Some(counts.to_vec())
}

fn rating(metric: &str, group: Option<&str>, histogram: Option<Vec<u64>>) -> Aggregate {
    let counts = histogram.clone().unwrap_or_default();
    let count = counts.iter().sum();
    let sum = counts
        .iter()
        .enumerate()
        .map(|(score, &n)| score as f64 * n as f64)
        .sum();
    Aggregate {
        metric: metric.into(),
        layer: Layer::Experience,
        group: group.map(str::to_string),
        count,
        sum,
        min: 0.0,
        max: 10.0,
        histogram,
    }
}

fn input(group_by: Option<&str>, parameters: &str, aggregates: Vec<Aggregate>) -> ScoreInput {
    ScoreInput {
        tenant: "acme".into(),
        window_start: 1_788_220_800_000,
        window_end: 1_790_812_800_000,
        group_by: group_by.map(str::to_string),
        parameters: parameters.into(),
        aggregates,
    }
}

/// Histograms from a fixed linear congruential sequence: counts with
/// awkward ratios, so the float results have bits worth comparing.
fn pseudo_random_histograms(n: usize) -> Vec<Vec<u64>> {
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..n)
        .map(|i| {
            let scale = [7, 100, 10_000, 1 << 40][i % 4];
            (0..11).map(|_| next() % scale).collect()
        })
        .collect()
}

/// Inputs on which both scorers must succeed.
fn scoring_inputs() -> Vec<(&'static str, ScoreInput)> {
    let h = "happiness_rating";
    let services = vec![
        rating(h, Some("Email"), histogram([4, 0, 0, 20, 0, 0, 0, 0, 0, 36, 40])),
        rating(h, Some("VPN"), histogram([1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3])),
        rating(h, Some("Laptops"), histogram([0, 0, 0, 0, 0, 0, 0, 12, 30, 0, 0])),
        rating(h, Some("Printing"), histogram([1, 1, 0, 0, 1, 0, 0, 1, 1, 1, 1])),
        rating(h, Some("Teams"), histogram([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])),
        rating("lost_time_minutes", Some("Email"), None),
        rating(h, None, histogram([6, 1, 0, 20, 1, 0, 0, 13, 31, 37, 44])),
    ];
    let random: Vec<Aggregate> = pseudo_random_histograms(64)
        .into_iter()
        .enumerate()
        .map(|(i, counts)| rating(h, Some(&format!("group-{i:02}")), Some(counts)))
        .collect();
    let csat = vec![
        rating(
            "csat_rating",
            Some("Email"),
            histogram([0, 0, 0, 1, 1, 2, 3, 5, 8, 13, 21]),
        ),
        rating(h, Some("Email"), None),
    ];
    vec![
        (
            "per service, min_sample 5",
            input(Some("service"), r#"{"min_sample":5}"#, services.clone()),
        ),
        (
            "per service, blank parameters",
            input(Some("service"), "", services.clone()),
        ),
        (
            "per service, min_sample 0",
            input(Some("service"), r#"{"min_sample":0}"#, services),
        ),
        (
            "whole window only",
            input(None, "{}", vec![rating(h, None, histogram([1; 11]))]),
        ),
        (
            "another metric",
            input(Some("service"), r#"{"metric":"csat_rating"}"#, csat),
        ),
        (
            "pseudo-random histograms",
            input(Some("group"), r#"{"min_sample":3}"#, random),
        ),
        (
            "no aggregates",
            input(None, r#"{"metric":"happiness_rating","min_sample":1}"#, Vec::new()),
        ),
    ]
}

/// Inputs on which both scorers must fail, and with the same error.
fn failing_inputs() -> Vec<(&'static str, ScoreInput)> {
    let h = "happiness_rating";
    let ok = rating(h, Some("Email"), histogram([1; 11]));
    let with = |aggregate: Aggregate| vec![ok.clone(), aggregate];
    let mut overflow = [0; 11];
    overflow[10] = u64::MAX;
    overflow[0] = 1;
    let params = |p: &'static str| input(None, p, vec![ok.clone()]);
    vec![
        (
            "no histogram",
            input(Some("service"), "", with(rating(h, Some("VPN"), None))),
        ),
        (
            "short histogram, whole window",
            input(None, "", with(rating(h, None, Some(vec![1, 2, 3])))),
        ),
        (
            "long histogram",
            input(Some("service"), "", with(rating(h, Some("VPN"), Some(vec![0; 12])))),
        ),
        (
            "counts past u64",
            input(
                Some("service"),
                "",
                with(rating(h, Some("VPN"), Some(overflow.to_vec()))),
            ),
        ),
        ("negative min_sample", params(r#"{"min_sample":-1}"#)),
        ("string min_sample", params(r#"{"min_sample":"5"}"#)),
        ("fractional min_sample", params(r#"{"min_sample":1.5}"#)),
        ("null min_sample", params(r#"{"min_sample":null}"#)),
        ("metric not a string", params(r#"{"metric":5}"#)),
        ("empty metric", params(r#"{"metric":""}"#)),
        ("unknown field", params(r#"{"min_samples":5}"#)),
        ("duplicate field", params(r#"{"metric":"a","metric":"b"}"#)),
        ("not an object", params("[5]")),
    ]
}

async fn score(pre: &ScorerPre, input: &ScoreInput) -> Result<Vec<Score>, PluginError> {
    pre.session(python_limits()).score(input, None).await.map_err(|e| {
        e.plugin_error()
            .cloned()
            .unwrap_or_else(|| panic!("{} failed in the runtime, not in its own code: {e}", pre.plugin()))
    })
}

/// Equal as `Score`s, and the values equal bit for bit (which `==` on f64
/// is not: it takes -0.0 for 0.0).
fn assert_same_scores(case: &str, rust: &[Score], python: &[Score]) {
    assert_eq!(rust, python, "{case}: the twins disagree");
    for (r, p) in rust.iter().zip(python) {
        assert_eq!(
            r.value.to_bits(),
            p.value.to_bits(),
            "{case}: {} of {:?}: {} vs {}",
            r.name,
            r.group,
            r.value,
            p.value
        );
    }
}

#[tokio::test]
async fn the_python_twin_scores_exactly_like_the_rust_scorer() {
    let (rust, python) = (scorer(guests::HAPPINESS), happiness_py());
    for (case, input) in scoring_inputs() {
        let expected = score(&rust, &input)
            .await
            .unwrap_or_else(|e| panic!("{case}: rust: {e}"));
        let actual = score(&python, &input)
            .await
            .unwrap_or_else(|e| panic!("{case}: python: {e}"));
        assert_same_scores(case, &expected, &actual);
    }
}

#[tokio::test]
async fn the_twins_score_the_documented_example_and_skip_small_groups() {
    let (case, input) = scoring_inputs().remove(0);
    let scores = score(&happiness_py(), &input).await.expect("scores");
    let email: Vec<(&str, f64)> = scores
        .iter()
        .filter(|s| s.group.as_deref() == Some("Email"))
        .map(|s| (s.name.as_str(), s.value))
        .collect();
    assert_eq!(
        email,
        [
            ("happiness", 52.0),
            ("positive_share", 76.0),
            ("neutral_share", 0.0),
            ("negative_share", 24.0)
        ],
        "{case}: 76 % positive and 24 % negative give +52"
    );
    let happiness = scores
        .iter()
        .find(|s| s.name == "happiness")
        .expect("a happiness score");
    assert_eq!(happiness.sample_size, 100);
    assert_eq!(
        happiness.detail.as_deref(),
        Some(r#"{"positive":76,"neutral":0,"negative":24}"#)
    );
    let groups: Vec<Option<&str>> = scores
        .iter()
        .filter(|s| s.name == "happiness")
        .map(|s| s.group.as_deref())
        .collect();
    assert_eq!(
        groups,
        [Some("Email"), Some("Laptops"), Some("Printing"), None],
        "{case}: VPN (4 responses) and Teams (none) are below min_sample 5"
    );
}

#[tokio::test]
async fn the_twins_refuse_the_same_inputs_with_the_same_errors() {
    let (rust, python) = (scorer(guests::HAPPINESS), happiness_py());
    for (case, input) in failing_inputs() {
        let expected = score(&rust, &input).await.expect_err(case);
        let actual = score(&python, &input).await.expect_err(case);
        assert_eq!(expected, actual, "{case}");
    }
}

#[tokio::test]
async fn a_missing_histogram_is_bad_data_naming_metric_and_group() {
    let (case, input) = failing_inputs().remove(0);
    let error = score(&happiness_py(), &input).await.expect_err(case);
    let PluginError::BadData(message) = error else {
        panic!("{case}: expected bad-data, got {error:?}");
    };
    assert!(
        message.contains("`happiness_rating`") && message.contains("group `VPN`") && message.contains("no histogram"),
        "{message}"
    );
}

#[tokio::test]
async fn the_twins_describe_the_same_parameters_and_metrics() {
    let rust = scorer(guests::HAPPINESS)
        .session(tight_limits())
        .describe()
        .await
        .expect("rust");
    let python = happiness_py()
        .session(python_limits())
        .describe()
        .await
        .expect("python");
    assert_eq!(
        (rust.name.as_str(), python.name.as_str()),
        ("happiness", "happiness-py")
    );
    assert_eq!(rust.version, python.version);
    assert_eq!(rust.description, python.description);
    assert_eq!(rust.parameters_schema, python.parameters_schema);
    assert_eq!(rust.metrics, python.metrics);
    assert_eq!(rust.needs_rows, python.needs_rows);
    let schema: serde_json::Value = serde_json::from_str(&python.parameters_schema).expect("the schema is JSON");
    assert_eq!(schema["properties"]["metric"]["default"], "happiness_rating");
    assert_eq!(schema["properties"]["min_sample"]["default"], 1);
}

// --- the sandbox ---------------------------------------------------------------

fn value(scores: &[Score], name: &str) -> f64 {
    scores
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("no score {name} in {scores:?}"))
}

#[tokio::test]
async fn a_python_scorer_sees_no_environment_no_files_and_no_network() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.set_nonblocking(true).expect("non-blocking");
    let port = listener.local_addr().expect("address").port();
    let parameters = format!(r#"{{"port":{port}}}"#);
    let scores = score(&python_probe(), &input(None, &parameters, Vec::new()))
        .await
        .expect("the probe scores");
    let env = scores.iter().find(|s| s.name == "env_vars").expect("env_vars");
    assert_eq!(env.value, 0.0, "variables seen: {:?}", env.detail);
    // Each failure is explained in the detail, so a probe that broke for
    // another reason (a typo, a missing module) shows here.
    let detail = |name: &str| {
        let score = scores.iter().find(|s| s.name == name).expect("probe score");
        println!("{name}: {}", score.detail.as_deref().unwrap_or_default());
        (score.value, score.detail.clone().unwrap_or_default())
    };
    let (files, why) = detail("fs_successes");
    assert_eq!(files, 0.0, "no file or directory opens: {why}");
    assert!(!why.contains("NameError") && !why.contains("TypeError"), "{why}");
    let (network, why) = detail("net_successes");
    assert_eq!(network, 0.0, "no connection, no name lookup: {why}");
    assert!(
        !why.contains("NameError") && !why.contains("ModuleNotFoundError"),
        "{why}"
    );
    assert!(listener.accept().is_err(), "nothing reached the loopback listener");
    assert_eq!(
        value(&scores, "wall_clock_s"),
        0.0,
        "the wall clock is stopped at the epoch"
    );
    assert_eq!(value(&scores, "monotonic_s"), 0.0, "the monotonic clock never moves");
}

#[tokio::test]
async fn python_scores_are_deterministic_across_calls() {
    let probe_input = input(None, "{}", Vec::new());
    let probe = python_probe();
    let first = score(&probe, &probe_input).await.expect("scores");
    let again = score(&probe, &probe_input).await.expect("scores");
    assert_eq!(first, again, "random, os.urandom and the clocks repeat on every call");

    let (_, twin_input) = scoring_inputs().remove(5);
    let python = happiness_py();
    let first = score(&python, &twin_input).await.expect("scores");
    let again = score(&python, &twin_input).await.expect("scores");
    assert_same_scores("the same input twice", &first, &again);
}

#[test]
fn the_python_example_is_installed_with_its_manifest() {
    let loaded = loaded_happiness_py();
    assert_eq!(loaded.manifest.name, "happiness-py");
    assert!(
        loaded
            .manifest
            .config_schema
            .as_deref()
            .is_some_and(|s| s.contains("min_sample")),
        "the parameters schema is inlined into the installed manifest"
    );
}
