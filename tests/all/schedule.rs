//! Scheduled syncs end to end: the `json-feed` connector pulls from
//! loopback feeds on a schedule, runs against one upstream take turns,
//! new data arrives without anyone calling sync, shutdown stops promptly
//! and cuts a run without losing a batch, and `xla-host serve` does all of
//! it until SIGTERM.

use crate::support::{guests, runtime, test_cache_dir};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;
use xla_host::config::HostConfig;
use xla_host::sim::feed::{self, Feed};
use xla_host::store::{RunOutcome, RunRecord, Store};
use xla_host::sync::schedule::{FinishedRun, Scheduler, SchedulerOptions, SyncInstance};
use xla_host::sync::{self, Backoff, Quiet, SyncOptions};

pub(crate) const TOKEN: &str = "schedule-token-never-seen-by-plugins";
/// Long enough for anything here to happen; a test that waits this long
/// has failed (it is a guard against hanging, not a timing assertion).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

fn plugins_dir() -> PathBuf {
    Path::new(guests::JSON_FEED)
        .parent()
        .and_then(Path::parent)
        .expect("target/plugins")
        .to_path_buf()
}

async fn serve_feed(observations: usize) -> String {
    let feed = Arc::new(Feed::seeded(11, observations, TOKEN));
    let addr = feed::serve(feed).await.expect("feed");
    format!("http://{addr}")
}

/// One scheduled `json-feed` instance.
pub(crate) struct Instance<'a> {
    pub(crate) name: &'a str,
    pub(crate) origin: &'a str,
    pub(crate) schedule: &'a str,
    pub(crate) page_size: usize,
}

/// The host config text: the built plugins, `extra` (a `[sync]` table),
/// and the instances of tenant `acme`, their token in a file under `dir`.
pub(crate) fn config_text(dir: &Path, extra: &str, instances: &[Instance]) -> String {
    let token_file = dir.join("feed-token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token file");
    let mut text = format!(
        "[plugins]\ndir = {:?}\n\n{extra}\n",
        plugins_dir().display().to_string()
    );
    for Instance {
        name,
        origin,
        schedule,
        page_size,
    } in instances
    {
        text.push_str(&format!(
            r#"
[[connectors]]
name = "{name}"
plugin = "json-feed"
tenant = "acme"
schedule = "{schedule}"
grants = ["{origin}"]
config = {{ base_url = "{origin}/xla", page_size = {page_size} }}

[[connectors.credentials]]
origin = "{origin}"
kind = "bearer"
token = {{ file = {:?} }}
"#,
            token_file.display().to_string()
        ));
    }
    text
}

fn host_config(dir: &Path, extra: &str, instances: &[Instance]) -> HostConfig {
    let config = HostConfig::parse(&config_text(dir, extra, instances)).expect("parses");
    config.validate().expect("valid");
    config
}

fn quick(grace: Duration) -> SchedulerOptions {
    SchedulerOptions {
        sync: SyncOptions {
            backoff: Backoff {
                base: Duration::from_millis(10),
                max: Duration::from_millis(50),
                ..Backoff::default()
            },
            max_pulls: None,
            lease_ttl: xla_host::store::DEFAULT_LEASE_TTL,
        },
        grace,
        on_demand: false,
    }
}

/// A running scheduler and the runs it reports.
struct Running {
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    runs: UnboundedReceiver<FinishedRun>,
}

async fn start(config: &HostConfig, store: &Arc<dyn Store>, options: SchedulerOptions) -> Running {
    let scheduler =
        Scheduler::from_config(runtime(), config.sync_setup(), Arc::clone(store), options).expect("scheduler");
    let shutdown = CancellationToken::new();
    let (sender, runs) = unbounded_channel();
    let handle = tokio::spawn(scheduler.run(shutdown.clone(), move |run| {
        let _ = sender.send(run.clone());
    }));
    Running { shutdown, handle, runs }
}

impl Running {
    async fn next(&mut self) -> FinishedRun {
        tokio::time::timeout(PATIENCE, self.runs.recv())
            .await
            .expect("a scheduled run finishes")
            .expect("the scheduler is running")
    }

    /// Cancels and waits for the scheduler to return.
    async fn stop(self) -> Vec<FinishedRun> {
        self.shutdown.cancel();
        tokio::time::timeout(PATIENCE, self.handle)
            .await
            .expect("the scheduler stops after shutdown")
            .expect("the scheduler task ends cleanly");
        let mut runs = self.runs;
        let mut rest = Vec::new();
        while let Ok(run) = runs.try_recv() {
            rest.push(run);
        }
        rest
    }
}

pub(crate) async fn stored(store: &Arc<dyn Store>) -> usize {
    store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows")
        .len()
}

async fn runs_of(store: &Arc<dyn Store>, instances: &[&str]) -> Vec<RunRecord> {
    let mut runs: Vec<RunRecord> = Vec::new();
    for name in instances {
        runs.extend(store.runs("acme", name, 1000).await.expect("runs"));
    }
    runs.sort_by_key(|run| (run.started, run.run));
    runs
}

/// No run of `runs` (sorted by start) begins before the one before it ended.
pub(crate) fn assert_one_at_a_time(runs: &[RunRecord]) {
    for pair in runs.windows(2) {
        let ended = pair[0].finished.expect("the earlier run ended");
        assert!(
            pair[1].started >= ended,
            "run {} of `{}` started at {} before run {} of `{}` ended at {ended}",
            pair[1].run,
            pair[1].instance,
            pair[1].started,
            pair[0].run,
            pair[0].instance
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_upstream_take_turns_and_each_runs_again_on_its_schedule() {
    let shared = serve_feed(150).await;
    let roomy = serve_feed(150).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!("[[sync.upstreams]]\norigin = \"{shared}\"\nmax_concurrent = 1\n");
    let instance = |name, origin| Instance {
        name,
        origin,
        schedule: "200ms",
        page_size: 50,
    };
    let config = host_config(
        dir.path(),
        &extra,
        &[
            instance("a1", &shared),
            instance("a2", &shared),
            // The default of two at once.
            instance("b1", &roomy),
            instance("b2", &roomy),
        ],
    );
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut running = start(&config, &store, quick(Duration::from_secs(10))).await;
    let mut counts: HashMap<String, usize> = HashMap::new();
    while ["a1", "a2", "b1", "b2"]
        .iter()
        .any(|name| counts.get(*name).copied().unwrap_or(0) < 2)
    {
        let run = running.next().await;
        assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
        *counts.entry(run.instance.clone()).or_default() += 1;
    }
    running.stop().await;

    let shared_runs = runs_of(&store, &["a1", "a2"]).await;
    assert!(shared_runs.len() >= 4, "{shared_runs:?}");
    assert_one_at_a_time(&shared_runs);
    for name in ["a1", "a2", "b1", "b2"] {
        // An instance's own runs never overlap, whatever its upstream allows.
        assert_one_at_a_time(&runs_of(&store, &[name]).await);
        let runs = store.runs("acme", name, 1000).await.expect("runs");
        let inserted: u64 = runs.iter().map(|r| r.inserted).sum();
        assert_eq!(inserted, 150, "`{name}` brought each record once over all its runs");
    }
}

/// A feed whose content can be replaced while it is served, through the
/// real feed simulator's router.
pub(crate) async fn swappable_feed(feed: Feed) -> (String, Arc<Mutex<Arc<Feed>>>) {
    use tower::ServiceExt;
    let current = Arc::new(Mutex::new(Arc::new(feed)));
    let serving = Arc::clone(&current);
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let feed = Arc::clone(&serving.lock().expect("not poisoned"));
        async move {
            match feed::router(feed).oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            }
        }
    });
    let addr = crate::support::serve_on_loopback(app).await;
    (format!("http://{addr}"), current)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_new_at_the_source_arrive_without_anyone_calling_sync() {
    // Same seed, more tickets: the first 120 records are the same ones.
    let (origin, feed) = swappable_feed(Feed::seeded(5, 120, TOKEN)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = host_config(
        dir.path(),
        "",
        &[Instance {
            name: "feed",
            origin: &origin,
            schedule: "200ms",
            page_size: 50,
        }],
    );
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut running = start(&config, &store, quick(Duration::from_secs(10))).await;
    let first = running.next().await;
    assert_eq!(first.outcome(), RunOutcome::Completed, "{first:?}");
    assert_eq!(stored(&store).await, 120);

    *feed.lock().expect("not poisoned") = Arc::new(Feed::seeded(5, 200, TOKEN));
    loop {
        let run = running.next().await;
        assert_eq!(run.outcome(), RunOutcome::Completed, "{run:?}");
        if stored(&store).await == 200 {
            break;
        }
    }
    running.stop().await;
    let runs = store.runs("acme", "feed", 1000).await.expect("runs");
    let inserted: u64 = runs.iter().map(|r| r.inserted).sum();
    assert_eq!(inserted, 200, "every record exactly once: {runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_the_wait_for_the_next_run() {
    let origin = serve_feed(60).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = host_config(
        dir.path(),
        "",
        &[Instance {
            name: "hourly",
            origin: &origin,
            schedule: "1h",
            page_size: 50,
        }],
    );
    let data = dir.path().join("data");
    let store = crate::support::open_store(&data);
    let mut running = start(&config, &store, quick(Duration::from_secs(10))).await;
    let first = running.next().await;
    assert_eq!(first.outcome(), RunOutcome::Completed, "runs once at start: {first:?}");
    // The next run is an hour away; shutdown must not wait for it.
    let rest = running.stop().await;
    assert!(rest.is_empty(), "no run after shutdown: {rest:?}");
    drop(store);
    let store = crate::support::open_store(&data);
    assert_eq!(stored(&store).await, 60);
    let runs = store.runs("acme", "hourly", 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].outcome, RunOutcome::Completed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_by_shutdown_keeps_every_committed_batch_with_its_cursor() {
    let origin = serve_feed(3000).await;
    let dir = tempfile::tempdir().expect("tempdir");
    // 300 pages at 20 requests/s: the run is still going when it is cut.
    let extra = format!("[[sync.upstreams]]\norigin = \"{origin}\"\nrequests_per_second = 20\nburst = 1\n");
    let instance = Instance {
        name: "slow",
        origin: &origin,
        schedule: "1h",
        page_size: 10,
    };
    let config = host_config(dir.path(), &extra, &[instance]);
    let data = dir.path().join("data");
    let store = crate::support::open_store(&data);
    let running = start(&config, &store, quick(Duration::ZERO)).await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while store.cursor("acme", "slow").await.expect("cursor").is_none() {
        assert!(tokio::time::Instant::now() < deadline, "no batch was committed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cut = running.stop().await;
    assert_eq!(cut.len(), 1, "{cut:?}");
    assert_eq!(cut[0].outcome(), RunOutcome::Interrupted, "{cut:?}");
    assert!(
        cut[0].error.as_deref().is_some_and(|e| e.contains("shutdown")),
        "{cut:?}"
    );

    // Once the scheduler has returned nothing holds the store: it reopens,
    // and holds exactly the pages before its cursor.
    drop(store);
    let store = crate::support::open_store(&data);
    let cursor: usize = store
        .cursor("acme", "slow")
        .await
        .expect("cursor")
        .expect("a cursor")
        .parse()
        .expect("the feed's cursor is an offset");
    assert!(cursor < 3000, "the run was cut before the end");
    assert_eq!(stored(&store).await, cursor, "every committed page, each once");
    let runs = store.runs("acme", "slow", 10).await.expect("runs");
    assert_eq!(runs[0].outcome, RunOutcome::Interrupted);
    assert!(runs[0].finished.is_some(), "{:?}", runs[0]);

    // The next run resumes from the cursor and brings the rest.
    let ready = SyncInstance::prepare(runtime(), config.sync_setup(), &config.connectors[0], None).expect("ready");
    let mut session = ready.session();
    let record = sync::run(
        &mut session,
        &store,
        ready.target(),
        &SyncOptions::default(),
        &mut Quiet,
    )
    .await
    .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed);
    assert_eq!(stored(&store).await, 3000);
}

pub(crate) fn xla_host() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"));
    command
        .env("XLA_HOST_CACHE_DIR", test_cache_dir())
        .env_remove("XLA_HOST_CONFIG")
        .env_remove("XLA_HOST_DATA");
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_syncs_on_schedule_and_stops_cleanly_on_sigterm() {
    use std::io::BufRead;
    use std::process::Stdio;
    let origin = serve_feed(130).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_text(
        dir.path(),
        "",
        &[Instance {
            name: "feed",
            origin: &origin,
            schedule: "300ms",
            page_size: 50,
        }],
    );
    let host_config = dir.path().join("host.toml");
    std::fs::write(&host_config, text).expect("write the host config");
    let data = dir.path().join("data");
    let mut child = xla_host()
        .arg("--host-config")
        .arg(&host_config)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("stdout");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let first = tokio::task::spawn_blocking(move || {
        let line = received.recv_timeout(PATIENCE).expect("a finished run is printed");
        (line, received)
    });
    let (line, received) = first.await.expect("joined");
    assert!(
        line.starts_with("feed: run ") && line.contains("Completed") && line.contains("130 new"),
        "{line}"
    );

    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(kill.success());
    let output = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + PATIENCE;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                let mut stderr = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .expect("stderr")
                    .read_to_string(&mut stderr)
                    .expect("read stderr");
                return (status, stderr);
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop on SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let (status, stderr) = output.await.expect("joined");
    assert!(status.success(), "{status}: {stderr}");
    assert!(stderr.contains("feed: every 300ms"), "{stderr}");
    assert!(stderr.contains("SIGTERM") && stderr.contains("stopped"), "{stderr}");
    // Every line printed is a finished run.
    for line in received.try_iter() {
        assert!(line.starts_with("feed: run "), "{line}");
    }
    let store = crate::support::open_store(&data);
    assert_eq!(stored(&store).await, 130);
}

/// `serve` applies `[store.retention]` when it starts: the raw rows past a
/// metric's days go, and it says so; rollups and other metrics stay.
#[test]
fn serve_applies_the_retention_policy_at_start() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    crate::cli::store_ten_days(&data);
    let today = xla_host::store::day_of(xla_host::types::now_ms());
    let host_config = dir.path().join("host.toml");
    std::fs::write(&host_config, "[store.retention]\nmetrics = { dex_score = 2 }\n").expect("write the host config");
    let mut child = xla_host()
        .arg("--host-config")
        .arg(&host_config)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let stderr = child.stderr.take().expect("stderr");
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let deadline = std::time::Instant::now() + PATIENCE;
    let line = loop {
        let line = received
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("serve reports what retention dropped");
        if line.starts_with("retention:") {
            break line;
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    if xla_host::store::day_of(xla_host::types::now_ms()) != today {
        // Midnight UTC passed since the rows were stored: one more day went.
        assert!(line.contains("dropped 8 raw rows"), "{line}");
        return;
    }
    // Two days kept: today, yesterday and the day before stay (the day
    // exactly two days ago is not over two days old yet); seven go.
    assert_eq!(
        line,
        "retention: acme dex_score: dropped 7 raw rows older than 2 days (rollups kept)"
    );
    crate::support::block_on(async {
        let store = crate::support::open_store(&data);
        let rows = |metric: &'static str| {
            let store = store.clone();
            async move {
                store
                    .observations("acme", metric, i64::MIN, i64::MAX)
                    .await
                    .expect("rows")
                    .len()
            }
        };
        assert_eq!(rows("dex_score").await, 3);
        assert_eq!(rows("happiness_rating").await, 10);
    });
}

fn serve_fails(dir: &Path, text: &str) -> String {
    let host_config = dir.join("host.toml");
    std::fs::write(&host_config, text).expect("write the host config");
    let data = dir.join("data");
    let output = xla_host()
        .arg("--host-config")
        .arg(&host_config)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .output()
        .expect("the binary runs");
    assert!(!output.status.success());
    assert!(!data.exists(), "a refused config leaves no data directory");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn serve_refuses_a_config_with_nothing_scheduled_or_a_bad_limit_and_names_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let instance = |schedule| Instance {
        name: "sn-acme",
        origin: "https://acme.service-now.com",
        schedule,
        page_size: 50,
    };

    let error = serve_fails(dir.path(), &config_text(dir.path(), "", &[instance("manual")]));
    assert!(
        error.contains("no connector instance has a `schedule`")
            && error.contains("sn-acme")
            && error.contains("schedule = \"15m\""),
        "{error}"
    );

    let error = serve_fails(
        dir.path(),
        &config_text(dir.path(), "", &[instance("every 15 minutes")]),
    );
    assert!(
        error.contains("`sn-acme`") && error.contains("schedule") && error.contains("\"manual\""),
        "{error}"
    );

    let extra = "[[sync.upstreams]]\norigin = \"https://acme.service-now.com\"\nrequests_per_second = 0\n";
    let error = serve_fails(dir.path(), &config_text(dir.path(), extra, &[instance("15m")]));
    assert!(
        error.contains("[[sync.upstreams]]")
            && error.contains("https://acme.service-now.com")
            && error.contains("requests_per_second = 5"),
        "{error}"
    );

    let extra = "[sync]\nmax_concurrent_per_upstream = 0\n";
    let error = serve_fails(dir.path(), &config_text(dir.path(), extra, &[instance("15m")]));
    assert!(
        error.contains("[sync]") && error.contains("max_concurrent_per_upstream"),
        "{error}"
    );
}
