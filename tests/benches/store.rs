//! Store benchmarks: batched insert throughput, bytes per observation on
//! disk, and a month's report with group-by from rollups against the same
//! report computed by a full scan of the month's rows, in one run.
//!
//! Run: `cargo bench -p xla-tests --bench store -- [observations] [--scattered] [--no-report]
//! [--dir DIR] [--reopen DIR] [--cold]` (`--scattered`: each batch's rows fall anywhere in the
//! 90 days, the worst case for the rollups; `--no-report`: stop after reopening, for stores too
//! large to scan a month of three times; default 10,000,000). After the insert, a process of its
//! own reopens the store and writes once: what a restarted daemon pays.
//!
//! `--dir DIR` builds the store in DIR (which must not exist) and keeps it; `--reopen DIR` only
//! measures the restarted process on a store built so (pass the same count); `--cold` empties the
//! kernel's page cache before each reopen (root only), as after a reboot. `--postgres` then runs
//! the same insert and month report on PostgreSQL (a throwaway cluster, as the tests start) in the
//! same run. Results in BENCHMARKS.md.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use xla_host::runtime::{Layer, Observation};
use xla_host::store::{Aggregation, Bucket, CommitBatch, Provenance, SeriesQuery, Store};
use xla_host::store_sled::SledStore;

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z.
const START: i64 = 1_767_225_600_000;
const BATCH: usize = 10_000;

/// Observation `i` of `total`: they arrive in time order over 90 days (as a
/// connector's incremental sync or a history import delivers them), each
/// within an hour of its place.
fn observation(i: u64, total: u64, scattered: bool) -> Observation {
    // A fixed mix: cheap to generate, many distinct tickets, few groups.
    let mix = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let place = (i as i128 * (90 * DAY) as i128 / total.max(1) as i128) as i64;
    let jitter = (mix >> 20) as i64 % 3_600_000;
    Observation {
        id: format!("{:032x}", i.wrapping_mul(0x2545_F491_4F6C_DD1D)),
        metric: "lost_time_minutes".into(),
        layer: Layer::Experience,
        value: (mix % 480) as f64,
        at: START
            + if scattered {
                (mix >> 20) as i64 % (90 * DAY)
            } else {
                (place + jitter).min(90 * DAY - 1)
            },
        dimensions: vec![
            ("assignment_group".into(), format!("group-{:02}", (mix >> 8) % 50)),
            (
                "channel".into(),
                ["phone", "email", "portal", "chat", "walk-in", "virtual_agent"][((mix >> 16) % 6) as usize].into(),
            ),
            ("service".into(), format!("service-{:02}", (mix >> 24) % 20)),
            ("ticket".into(), format!("INC{:07}", i / 2)),
        ],
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        dir_size(&p)
                    } else {
                        e.metadata().map(|m| m.len()).unwrap_or(0)
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Resident memory of this process (Linux), in MiB.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib / 1024)
}

/// Whether `name` is among the arguments.
fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

/// The argument after `name`, if any.
fn option(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Writes dirty pages out, then empties the kernel's page cache (Linux, root).
fn drop_page_cache() -> anyhow::Result<()> {
    anyhow::ensure!(std::process::Command::new("sync").status()?.success(), "sync failed");
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| anyhow::anyhow!("--cold needs root to write /proc/sys/vm/drop_caches: {e}"))
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Set in the child that measures opening: the store's path.
const REOPEN: &str = "XLA_BENCH_STORE_REOPEN";

/// Opens the store at `path` and sends the first 100 observations again,
/// as a restarted daemon's first sync would: what it costs, in time and
/// resident memory. Run in a process of its own, so that the memory is the
/// restarted process's, not what the insert left in this one.
async fn reopen(path: &std::path::Path, total: u64, scattered: bool, provenance: Provenance) -> anyhow::Result<()> {
    if flag("--cold") {
        drop_page_cache()?;
    }
    let opened = Instant::now();
    let store = SledStore::open(path)?;
    let open = opened.elapsed();
    let rss_open = resident_mib();
    let written = Instant::now();
    let replay: Vec<Observation> = (0..100).map(|i| observation(i, total, scattered)).collect();
    let summary = store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "bench".into(),
            provenance,
            observations: replay,
            cursor: None,
            ..Default::default()
        })
        .await?;
    assert_eq!(summary.unchanged, 100, "a replay changes nothing");
    let first = written.elapsed();
    println!(
        "restarted process: open {:.1} ms, first write {:.1} ms, open + first write {:.1} ms; resident memory {rss_open} MiB after open, {} MiB after the first write",
        open.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0,
        (open + first).as_secs_f64() * 1000.0,
        resident_mib()
    );
    Ok(())
}

/// Runs [`reopen`] in a process of its own.
fn reopen_in_child(path: &std::path::Path, total: u64, scattered: bool) -> anyhow::Result<()> {
    let status = std::process::Command::new(std::env::current_exe()?)
        .arg(total.to_string())
        .args(scattered.then_some("--scattered"))
        .args(flag("--cold").then_some("--cold"))
        .env(REOPEN, path)
        .status()?;
    anyhow::ensure!(status.success(), "the reopening process failed: {status}");
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `RUST_LOG=xla_store_sled=debug` shows each time the store opens sled again.
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let scattered = flag("--scattered");
    let total: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let provenance = Provenance {
        connector: "bench".into(),
        plugin: "bench".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
        sync_run: 1,
    };
    if let Some(path) = std::env::var_os(REOPEN) {
        return reopen(std::path::Path::new(&path), total, scattered, provenance).await;
    }
    if let Some(path) = option("--reopen") {
        return reopen_in_child(std::path::Path::new(&path), total, scattered);
    }
    let dir = tempfile::tempdir()?;
    let path = match option("--dir") {
        Some(kept) => {
            anyhow::ensure!(!std::path::Path::new(&kept).exists(), "--dir {kept}: it exists already");
            kept.into()
        }
        None => dir.path().join("store"),
    };
    let store = SledStore::open(&path)?;
    let insert = insert(&store, total, scattered, &provenance).await?;
    drop(store);
    let bytes = dir_size(&path);
    println!(
        "insert: {total} observations in {:.1} s = {:.0} observations/s (batches of {BATCH}, each durable)",
        insert.as_secs_f64(),
        total as f64 / insert.as_secs_f64()
    );
    let index = dir_size(&path.join("index"));
    println!(
        "disk: {bytes} bytes = {:.1} bytes/observation ({:.1} of them the index's table)",
        bytes as f64 / total as f64,
        index as f64 / total as f64
    );
    reopen_in_child(&path, total, scattered)?;

    if flag("--no-report") {
        return Ok(());
    }
    let store = SledStore::open(&path)?;
    month_report(&store, "sled").await?;
    drop(store);
    if flag("--postgres") {
        postgres(total, scattered, &provenance).await?;
    }
    Ok(())
}

/// A month's report from rollups, against the same computed by scanning
/// the month's rows: both timed, and checked equal.
async fn month_report(store: &dyn Store, backend: &str) -> anyhow::Result<()> {
    let (from, to) = (START + 31 * DAY, START + 59 * DAY); // February 2026
    let query = SeriesQuery {
        tenant: "acme".into(),
        metric: "lost_time_minutes".into(),
        from,
        to,
        bucket: Bucket::Month,
        filter: None,
        group_by: Some("assignment_group".into()),
        aggregation: Aggregation::Avg,
    };
    let mut rollup_times = Vec::new();
    let mut report = Vec::new();
    for _ in 0..7 {
        let t = Instant::now();
        report = store.series(&query).await?;
        rollup_times.push(t.elapsed());
    }
    let mut scan_times = Vec::new();
    let mut scanned: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for _ in 0..3 {
        let t = Instant::now();
        scanned.clear();
        for row in store.observations("acme", "lost_time_minutes", from, to).await? {
            let group = row
                .observation
                .dimensions
                .iter()
                .find(|(k, _)| k == "assignment_group")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let entry = scanned.entry(group).or_default();
            entry.0 += row.observation.value;
            entry.1 += 1;
        }
        scan_times.push(t.elapsed());
    }
    for point in &report {
        let (sum, count) = scanned[point.group.as_deref().unwrap_or_default()];
        assert_eq!(point.count, count, "rollups and scan agree on {:?}", point.group);
        assert!((point.value.unwrap_or_default() - sum / count as f64).abs() < 1e-6);
    }
    let (fast, slow) = (median(rollup_times), median(scan_times));
    let rows: u64 = report.iter().map(|p| p.count).sum();
    println!(
        "{backend}: month report (avg lost time by assignment group, {} groups, {rows} rows): rollups {:.2} ms, full scan {:.0} ms, {:.0}x",
        report.len(),
        fast.as_secs_f64() * 1000.0,
        slow.as_secs_f64() * 1000.0,
        slow.as_secs_f64() / fast.as_secs_f64()
    );
    Ok(())
}

/// Commits `total` observations in batches of [`BATCH`], each with its
/// cursor: the time spent in commits only.
async fn insert(store: &dyn Store, total: u64, scattered: bool, provenance: &Provenance) -> anyhow::Result<Duration> {
    // Only the commits are timed, not making the observations.
    let mut insert = Duration::ZERO;
    let mut next = 0u64;
    while next < total {
        let end = (next + BATCH as u64).min(total);
        let batch: Vec<Observation> = (next..end).map(|i| observation(i, total, scattered)).collect();
        let cursor = end.to_string();
        let started = Instant::now();
        store
            .commit(CommitBatch {
                tenant: "acme".into(),
                source: "bench".into(),
                provenance: provenance.clone(),
                observations: batch,
                cursor: Some(cursor),
                ..Default::default()
            })
            .await?;
        insert += started.elapsed();
        next = end;
    }
    Ok(insert)
}

/// The same insert and month report on PostgreSQL (a throwaway cluster this
/// process starts, as the tests do), after sled's, in the same run.
async fn postgres(total: u64, scattered: bool, provenance: &Provenance) -> anyhow::Result<()> {
    let url = xla_store_pg::testing::shared().create_database().await?;
    let store = xla_store_pg::PgStore::connect(&url).await?;
    let insert = insert(&store, total, scattered, provenance).await?;
    let bytes = store.stats().await?.disk_bytes;
    println!(
        "postgres: insert: {total} observations in {:.1} s = {:.0} observations/s (batches of {BATCH}, each committed)",
        insert.as_secs_f64(),
        total as f64 / insert.as_secs_f64()
    );
    println!(
        "postgres: disk: {bytes} bytes = {:.1} bytes/observation (the database's size)",
        bytes as f64 / total as f64
    );
    month_report(&store, "postgres").await
}
