//! Several hosts, one store: two `xla-host serve` processes share one
//! PostgreSQL database and one feed simulator. The host running a sync is
//! SIGKILLed mid-run, again and again, and started again; the other takes
//! the instance over once the dead host's lease runs out. In the end every
//! source record is stored exactly once, rollups count each once, the
//! run log shows no two runs of the instance overlapping, and the API of
//! either host answers the same numbers.

use crate::schedule::{Instance, PATIENCE, TOKEN, assert_one_at_a_time, config_text, stored, swappable_feed, xla_host};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;
use xla_host::sim::feed::Feed;
use xla_host::store::{Aggregation, Bucket, RunOutcome, RunRecord, SeriesQuery, Store};

const SEED: u64 = 23;
/// Records the feed gains before each kill: enough for a run of many pages.
const STEP: usize = 4_000;
/// Hosts killed mid-sync.
const KILLS: usize = 3;

/// One `serve` process and where its log goes.
struct Host {
    child: Child,
    log: PathBuf,
}

fn start(config: &Path, log: PathBuf) -> Host {
    let file = std::fs::File::create(&log).expect("a log file");
    let child = xla_host()
        .arg("--host-config")
        .arg(config)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "info,xla_sync=debug")
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .expect("serve starts");
    Host { child, log }
}

/// The API's base URL, once the host's log says where it listens.
async fn api_url(log: &Path) -> String {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let url = text.lines().find_map(|line| {
            let rest = line.strip_prefix("API at ")?;
            Some(rest.split_whitespace().next()?.trim_end_matches("/v1").to_string())
        });
        if let Some(url) = url {
            return url;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "serve did not say where its API listens"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The pid in a lease holder's name (`host/pid/nonce`).
fn holder_pid(holder: &str) -> Option<u32> {
    holder.rsplit('/').nth(1)?.parse().ok()
}

/// The newest run of the instance, once it is running and newer than `after`.
async fn next_running(store: &Arc<dyn Store>, after: u64) -> RunRecord {
    let deadline = tokio::time::Instant::now() + PATIENCE * 2;
    loop {
        let newest = store.runs("acme", "feed", 1).await.expect("runs").pop();
        if let Some(run) = newest.filter(|r| r.run > after && r.outcome == RunOutcome::Running) {
            return run;
        }
        assert!(tokio::time::Instant::now() < deadline, "no run started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn rollup_count(store: &Arc<dyn Store>) -> f64 {
    let query = SeriesQuery {
        tenant: "acme".into(),
        metric: "happiness_rating".into(),
        from: 0,
        to: i64::from(i32::MAX) * 1000,
        bucket: Bucket::Month,
        filter: None,
        group_by: None,
        aggregation: Aggregation::Count,
    };
    let series = store.series(&query).await.expect("series");
    series.iter().filter_map(|p| p.value).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_share_a_store_and_a_killed_hosts_instance_is_taken_over_exactly() {
    let url = xla_store_pg::testing::shared()
        .create_database()
        .await
        .expect("a database");
    let (origin, feed) = swappable_feed(Feed::seeded(SEED, STEP, TOKEN)).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n\n[sync]\nlease_ttl = \"3s\"\n");
    let instance = Instance {
        name: "feed",
        origin: &origin,
        schedule: "200ms",
        page_size: 20,
    };
    let config = dir.path().join("host.toml");
    std::fs::write(&config, config_text(dir.path(), &extra, &[instance])).expect("write the config");
    let store = xla_store_pg::PgStore::connect(&url).await.expect("the store");
    let store: Arc<dyn Store> = Arc::new(store);

    let mut logs = 0;
    let mut log = || {
        logs += 1;
        dir.path().join(format!("host-{logs}.log"))
    };
    let mut hosts = vec![start(&config, log()), start(&config, log())];
    let (mut seen, mut mid_sync) = (0, Vec::new());
    for kill in 0..KILLS {
        if kill > 0 {
            *feed.lock().expect("not poisoned") = Arc::new(Feed::seeded(SEED, STEP * (kill + 1), TOKEN));
        }
        let run = next_running(&store, seen).await;
        seen = run.run;
        // A random point of the run: somewhere in its first pages.
        let delay = Duration::from_millis(20 + (xla_host::sync::retry::jitter() * 300.0) as u64);
        tokio::time::sleep(delay).await;
        let pid = run
            .holder
            .as_deref()
            .and_then(holder_pid)
            .expect("the run names its host");
        let slot = hosts
            .iter()
            .position(|h| h.child.id() == pid)
            .expect("one of the two hosts runs it");
        hosts[slot].child.kill().expect("SIGKILL");
        hosts[slot].child.wait().expect("reaped");
        let after = store.run("acme", "feed", run.run).await.expect("run").expect("logged");
        eprintln!(
            "kill {kill}: run {} of {pid} after {delay:?}: {:?}",
            run.run, after.outcome
        );
        if after.outcome == RunOutcome::Running {
            mid_sync.push(run.run);
        }
        hosts[slot] = start(&config, log());
    }

    // The survivors finish the work: every record of the feed arrives.
    // 600 pages of 20, each a PostgreSQL commit: the whole test takes about
    // 50 s alone on two cores, and this wait passed 60 s once while the
    // whole suite ran beside it. The deadline only guards against a hang
    // (a lease never taken over).
    let total = STEP * KILLS;
    let deadline = tokio::time::Instant::now() + PATIENCE * 4;
    while stored(&store).await < total {
        assert!(tokio::time::Instant::now() < deadline, "the records did not all arrive");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The API of either host answers the same numbers, every record counted.
    let created = xla_host()
        .arg("--host-config")
        .arg(&config)
        .args([
            "token", "create", "--tenant", "acme", "--scope", "read", "--name", "hosts",
        ])
        .output()
        .expect("token create runs");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let token = String::from_utf8_lossy(&created.stdout).trim().to_string();
    let mut answers = Vec::new();
    for host in &hosts {
        let url = api_url(&host.log).await;
        let series: serde_json::Value = reqwest::Client::new()
            .get(format!("{url}/v1/tenants/acme/metrics/happiness_rating/series"))
            .query(&[
                ("from", "2000-01-01T00:00:00Z"),
                ("to", "2100-01-01T00:00:00Z"),
                ("aggregation", "count"),
                ("bucket", "month"),
            ])
            .bearer_auth(&token)
            .send()
            .await
            .expect("the API answers")
            .json()
            .await
            .expect("JSON");
        answers.push(series);
    }
    assert_eq!(answers[0], answers[1], "both hosts answer the same");
    let counted: f64 = answers[0]["points"]
        .as_array()
        .unwrap_or_else(|| panic!("points in {}", answers[0]))
        .iter()
        .filter_map(|p| p["value"].as_f64())
        .sum();
    assert_eq!(counted, (STEP * KILLS) as f64, "{}", answers[0]);

    for host in &mut hosts {
        let term = std::process::Command::new("kill")
            .args(["-TERM", &host.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(term.success());
    }
    for host in &mut hosts {
        let status = host.child.wait().expect("serve stops");
        let log = std::fs::read_to_string(&host.log).unwrap_or_default();
        assert!(status.success(), "{status}: {log}");
    }

    // Every record once, in rows and in rollups.
    let rows = store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.observation.id.as_str()).collect();
    assert_eq!((rows.len(), ids.len()), (total, total), "each record stored once");
    assert_eq!(
        rollup_count(&store).await,
        total as f64,
        "rollups count each record once"
    );

    // The run log: runs of the instance one at a time, by any host; each
    // run killed mid-sync marked interrupted before its successor began.
    let mut runs = store.runs("acme", "feed", 10_000).await.expect("runs");
    runs.sort_by_key(|run| (run.started, run.run));
    assert!(runs.iter().all(|r| r.outcome != RunOutcome::Running), "{runs:#?}");
    assert_one_at_a_time(&runs);
    assert!(!mid_sync.is_empty(), "at least one kill landed mid-sync");
    for id in &mid_sync {
        let run = runs.iter().find(|r| r.run == *id).expect("in the log");
        assert_eq!(run.outcome, RunOutcome::Interrupted, "{run:?}");
        assert!(
            run.error.as_deref().is_some_and(|e| e.contains("stopped renewing")),
            "{run:?}"
        );
    }
    let hosts_seen: std::collections::BTreeSet<&str> = runs.iter().filter_map(|r| r.holder.as_deref()).collect();
    assert!(hosts_seen.len() >= 3, "runs by several processes: {hosts_seen:?}");
}
