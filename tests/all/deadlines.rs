//! Deadlines hold on every path for as long as an instance can run: a
//! plugin's start function is bounded like a call, and a scorer that
//! loops is stopped whether it runs from `report` (the demo's scoring
//! code), from a scorer kept after its runtime value is gone, or from the
//! scheduler behind `serve`.

use crate::cli::xla_host;
use crate::support::{guests, test_cache_dir};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, Instant};
use xla_host::plugins::{Pins, PluginPre, load_plugin};
use xla_host::runtime::{Limits, Runtime, RuntimeError, RuntimeOptions, Score, ScoreInput, ScorerPre};

/// Longer than any bounded call here takes; the start functions and loops
/// under test would run for 20 s or forever.
const PATIENCE: Duration = Duration::from_secs(15);

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs the binary with `args` and asserts it failed, in time, because
/// `plugin` ran past a deadline of `limit`.
fn assert_stopped(args: &[&str], plugin: &str, limit: &str) {
    let started = Instant::now();
    let output = xla_host(args, &[]);
    assert!(started.elapsed() < PATIENCE, "ran for {:?}", started.elapsed());
    assert!(!output.status.success());
    let expected = format!("plugin `{plugin}` 0.1.0 ran past its {limit} deadline");
    assert!(stderr(&output).contains(&expected), "{}", stderr(&output));
}

#[test]
fn a_connector_whose_start_function_waits_is_stopped_at_the_deadline() {
    let args = ["plugin", "run", guests::SLOW_START, "--deadline-ms", "1000"];
    assert_stopped(&args, "slow-start", "1 s");
}

#[test]
fn a_scorer_whose_start_function_waits_is_stopped_at_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("host.toml");
    std::fs::write(&config, "[limits]\ndeadline_ms = 1000\n").expect("write config");
    let config = config.to_str().expect("utf-8");
    let args = ["--host-config", config, "plugin", "check", guests::SLOW_START_SCORER];
    assert_stopped(&args, "slow-start-scorer", "1 s");
}

/// A host config whose one XLA is scored by the probe scorer in `mode`.
fn looping_report_config(dir: &Path) -> std::path::PathBuf {
    let guests_dir = Path::new(guests::PROBE_SCORER)
        .parent()
        .and_then(Path::parent)
        .expect("target/test-guests");
    let text = format!(
        r#"[plugins]
dir = {:?}

[limits]
deadline_ms = 1000

[[xla]]
id = "looping"
name = "A scorer that never returns"
tenant = "acme"
metrics = ["resolution_hours"]
scorer = "probe-scorer"
score = "wall_clock_ms"
period = "month"
direction = "lower"
targets = [{{ from = 2026-01-01, value = 8.0 }}]
parameters = {{ mode = "spin" }}
"#,
        guests_dir.display().to_string()
    );
    let path = dir.join("host.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

#[test]
fn a_looping_scorer_is_stopped_through_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = looping_report_config(dir.path());
    let data = dir.path().join("data");
    let args = [
        "--host-config",
        config.to_str().expect("utf-8"),
        "report",
        "--period",
        "2026-03",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ];
    assert_stopped(&args, "probe-scorer", "1 s");
}

/// The probe scorer, loaded on a runtime of its own (the runtime value
/// itself is dropped: the scorer owns it, as in the demo and `report`).
fn probe_scorer() -> ScorerPre {
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(test_cache_dir()),
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let plugin = load_plugin(&runtime, Path::new(guests::PROBE_SCORER), &Pins::default()).expect("loads");
    let PluginPre::Scorer(pre) = plugin.pre else {
        panic!("probe-scorer is a scorer");
    };
    pre
}

/// One call to the probe scorer computing in a loop, under `deadline_ms`.
async fn spin(pre: &ScorerPre, deadline_ms: u64) -> Result<Vec<Score>, RuntimeError> {
    let limits = Limits {
        deadline_ms,
        ..Limits::default()
    };
    let input = ScoreInput {
        tenant: "acme".into(),
        window_start: 0,
        window_end: 1,
        group_by: None,
        parameters: json!({"mode": "spin"}).to_string(),
        aggregates: Vec::new(),
    };
    pre.session(limits).score(&input, None).await
}

/// A runtime of one thread, as the tests below run the calls on.
fn one_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio")
}

#[test]
fn a_scorer_outliving_its_runtime_value_still_meets_its_deadline() {
    // As the demo and `report` do: load the scorers, let the runtime value
    // go, then score. The scorer owns what enforces its deadline.
    let result = crate::support::within(PATIENCE, || {
        one_thread().block_on(async { spin(&probe_scorer(), 500).await })
    });
    let error = result.unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
}

/// A guest computing in a loop yields at every epoch tick: on a runtime of
/// one thread, a task beside the call (a lease renewal, the API) keeps
/// running until the deadline stops the guest.
#[test]
fn a_computing_guest_leaves_the_threads_other_tasks_running() {
    let (result, ticks) = crate::support::within(PATIENCE, || {
        one_thread().block_on(async {
            let pre = probe_scorer();
            let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
            let counting = ticks.clone();
            let beside = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    counting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
            let result = spin(&pre, 1_000).await;
            beside.abort();
            (result, ticks.load(std::sync::atomic::Ordering::Relaxed))
        })
    });
    let error = result.unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
    // About 50 in the second the guest computed; none if it held the thread.
    assert!(ticks >= 10, "the task beside the guest ran {ticks} times");
}

/// Scorer calls compute at most one per core at once, and a call waiting
/// for its turn has no deadline running yet: with one call more than there
/// are cores, all spinning until stopped, the last one starts only when a
/// first one's deadline has stopped it, and then gets its whole deadline.
/// (Without the bound every call would start at once and all would be
/// stopped about one deadline in.)
#[test]
fn scorer_calls_compute_one_per_core_and_wait_outside_their_deadline() {
    const DEADLINE_MS: u64 = 400;
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let ends = crate::support::within(PATIENCE, move || {
        one_thread().block_on(async {
            let pre = probe_scorer();
            let started = Instant::now();
            let calls = (0..=cores).map(|_| {
                let pre = pre.clone();
                async move {
                    let result = spin(&pre, DEADLINE_MS).await;
                    (result, started.elapsed())
                }
            });
            futures_util::future::join_all(calls).await
        })
    });
    for (result, _) in &ends {
        let error = result.as_ref().expect_err("a spinning call is stopped");
        assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
    }
    let last = ends.iter().map(|(_, end)| *end).max().expect("calls");
    // The last call waited for a turn (at least one deadline), then ran its
    // own: two deadlines at least, whatever the machine's speed.
    assert!(
        last >= Duration::from_millis(2 * DEADLINE_MS - 50),
        "{} calls on {cores} cores all ended within {last:?}: they computed at once",
        cores + 1
    );
}

/// A call stopped from outside before its deadline (its future dropped: a
/// run's lease lost, a shutdown, a client gone) is counted, as
/// `cancelled`, like every call that ends: /metrics shows it.
#[test]
fn a_call_stopped_from_outside_is_counted_as_cancelled() {
    let counted = crate::support::within(PATIENCE, || {
        // Local to this thread, where the one-thread runtime runs the call.
        let recorder = metrics_util::debugging::DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        metrics::with_local_recorder(&recorder, || {
            one_thread().block_on(async {
                let pre = probe_scorer();
                let stopped = tokio::time::timeout(Duration::from_millis(300), spin(&pre, 10_000)).await;
                assert!(stopped.is_err(), "the call was stopped before its deadline");
            });
        });
        snapshotter
            .snapshot()
            .into_vec()
            .into_iter()
            .filter(|(key, ..)| key.key().name() == "xla_plugin_calls_total")
            .map(|(key, _, _, value)| {
                let labels: Vec<String> = key
                    .key()
                    .labels()
                    .map(|l| format!("{}={}", l.key(), l.value()))
                    .collect();
                (labels, format!("{value:?}"))
            })
            .collect::<Vec<_>>()
    });
    let labels = |call: &str, outcome: &str| {
        vec![
            "plugin=probe-scorer".to_string(),
            format!("call={call}"),
            format!("outcome={outcome}"),
        ]
    };
    assert_eq!(
        counted,
        [
            (labels("instantiate", "ok"), "Counter(1)".to_string()),
            (labels("score", "cancelled"), "Counter(1)".to_string()),
        ]
    );
}

#[test]
fn a_looping_connector_is_stopped_through_the_scheduler() {
    let dir = tempfile::tempdir().expect("tempdir");
    let guests_dir = Path::new(guests::HOSTILE)
        .parent()
        .and_then(Path::parent)
        .expect("target/test-guests");
    let text = format!(
        r#"[plugins]
dir = {:?}

[[connectors]]
name = "spinner"
plugin = "hostile"
tenant = "acme"
schedule = "1h"
config = {{ attack = "spin" }}
limits = {{ deadline_ms = 500 }}
"#,
        guests_dir.display().to_string()
    );
    let config = dir.path().join("host.toml");
    std::fs::write(&config, text).expect("write config");
    let data = dir.path().join("data");
    let mut child = crate::cli::xla_host_command(&[
        "--host-config",
        config.to_str().expect("utf-8"),
        "serve",
        "--data-dir",
        data.to_str().expect("utf-8"),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("serve starts");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    // The first run starts at once; with retries (each stopped at 500 ms)
    // it ends failed well within the patience.
    let line = rx.recv_timeout(Duration::from_secs(60));
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let line = line.expect("the scheduled run of the looping connector ends");
    assert!(line.starts_with("spinner"), "{line}");
    assert!(line.contains("ran past its 500 ms deadline"), "{line}");
}
