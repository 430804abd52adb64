//! `xla-host store migrate`: a sled store copied into PostgreSQL, checked
//! against the original through the same store trait: rows with their
//! provenance, rollups, cursors, gaps, runs, tokens, and the days
//! retention retired (their cells as they were, the ticket join over them).

use std::path::Path;
use std::sync::Arc;
use xla_host::store::{Aggregation, Bucket, CommitBatch, DAY_MS, GroupThrough, Provenance, SeriesQuery, Store};
use xla_host::types::{Layer, Observation};

/// Runs `xla-host store migrate --from FROM --to URL`: whether it
/// succeeded, and what it wrote to stderr.
fn migrate(from: &str, url: &str) -> (bool, String) {
    let output = crate::cli::xla_host(&["store", "migrate", "--from", from, "--to", url], &[]);
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Fills a sled store in `data`: ten days of two metrics from one source,
/// a second source with its own provenance, a cursor, an open gap, two
/// runs and a token.
async fn sled_store_to_copy(data: &Path) -> Arc<dyn Store> {
    use xla_host::store::{CommitBatch, LeaseGrant, Provenance, RunOutcome, Scope, TokenRecord};
    use xla_host::types::{Gap, Layer, Observation, Span};
    let dir = data.to_path_buf();
    tokio::task::spawn_blocking(move || crate::cli::store_ten_days(&dir))
        .await
        .expect("stored");
    let store = crate::support::open_store(data);
    let now = xla_host::types::now_ms();
    let other = CommitBatch {
        tenant: "acme".into(),
        source: "hs".into(),
        provenance: Provenance {
            connector: "hs".into(),
            plugin: "happysignals".into(),
            version: "0.2.0".into(),
            sha256: "cd".repeat(32),
            sync_run: 7,
        },
        observations: (0..30)
            .map(|i| {
                Observation::new(
                    format!("r{i}"),
                    "happiness_rating",
                    Layer::Experience,
                    f64::from(i % 11),
                    now - i64::from(i) * 3_600_000,
                )
                .dim("service", if i % 2 == 0 { "VPN" } else { "Email" })
            })
            .collect(),
        partial: vec![Gap {
            span: Span {
                start: now - 7_200_000,
                end: now - 3_600_000,
            },
            reason: "the export was truncated".into(),
        }],
        cursor: Some("2026-12-01T00:00:00Z".into()),
        ..CommitBatch::default()
    };
    store.commit(other).await.expect("commit");
    let request = xla_host::sync::lease::request("acme", "hs", xla_host::store::DEFAULT_LEASE_TTL, false);
    for _ in 0..2 {
        let LeaseGrant::Granted(lease) = store.acquire_lease(&request).await.expect("lease") else {
            panic!("granted")
        };
        let mut run = store.begin_run(&lease, now).await.expect("run");
        run.outcome = RunOutcome::Completed;
        run.finished = Some(now + 1_000);
        run.inserted = 30;
        store.save_run(&run).await.expect("save");
        store.release_lease(&lease, None).await.expect("release");
    }
    let token = TokenRecord {
        id: "abc123".into(),
        sha256: "ef".repeat(32),
        name: "dashboard".into(),
        tenant: Some("acme".into()),
        scope: Scope::Read,
        created: now,
        last_used: None,
        expires: None,
        revoked: None,
    };
    store.save_token(&token).await.expect("token");
    store
}

/// `store migrate` copies a sled store into PostgreSQL (rows with their
/// provenance, rollups rebuilt, cursors, gaps, runs, tokens), verifies it,
/// resumes a copy that stopped half way, runs again without changing
/// anything, and refuses a source that is not `sled:DIR`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_copies_a_sled_store_into_postgres_and_resumes() {
    let cluster = xla_store_pg::testing::shared();
    let url = cluster.create_database().await.expect("a database");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sled = sled_store_to_copy(&data).await;
    let (instances, runs) = (
        sled.instances().await.expect("instances"),
        sled.runs("acme", "hs", 10).await.expect("runs"),
    );
    // An earlier copy stopped half way: some of a metric's rows are there.
    let half: Vec<_> = sled
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows")
        .into_iter()
        .filter(|row| row.source == "hs")
        .take(10)
        .collect();
    let copied_before = xla_store_pg::PgStore::connect(&url).await.expect("the target");
    copied_before
        .commit(xla_host::store::CommitBatch {
            tenant: "acme".into(),
            source: "hs".into(),
            provenance: half[0].provenance.clone(),
            observations: half.into_iter().map(|row| row.observation).collect(),
            ..Default::default()
        })
        .await
        .expect("a half copy");
    drop(copied_before);
    drop(sled);
    let from = format!("sled:{}", data.display());
    let (ok, stderr) = migrate(&from, &url);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("verified"), "{stderr}");

    let sled = crate::support::open_store(&data);
    let pg: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await.expect("the copy"));
    for metric in ["happiness_rating", "dex_score"] {
        let rows = |store: Arc<dyn Store>| async move {
            let mut rows = store
                .observations("acme", metric, i64::MIN, i64::MAX)
                .await
                .expect("rows");
            rows.sort_by(|a, b| (&a.source, &a.observation.id).cmp(&(&b.source, &b.observation.id)));
            rows
        };
        assert_eq!(
            rows(Arc::clone(&pg)).await,
            rows(Arc::clone(&sled)).await,
            "{metric}: rows and provenance"
        );
        let query = SeriesQuery {
            tenant: "acme".into(),
            metric: metric.into(),
            from: 0,
            to: i64::from(i32::MAX) * 1000,
            bucket: Bucket::Day,
            filter: None,
            group_by: Some("service".into()),
            aggregation: Aggregation::Avg,
        };
        assert_eq!(
            pg.series(&query).await.expect("pg"),
            sled.series(&query).await.expect("sled"),
            "{metric}"
        );
    }
    assert_eq!(pg.instances().await.expect("instances"), instances);
    assert_eq!(
        pg.cursor("acme", "hs").await.expect("cursor"),
        sled.cursor("acme", "hs").await.expect("cursor")
    );
    assert_eq!(
        pg.gaps("acme").await.expect("gaps"),
        sled.gaps("acme").await.expect("gaps")
    );
    assert_eq!(
        pg.runs("acme", "hs", 10).await.expect("runs"),
        runs,
        "runs keep their ids and records"
    );
    assert_eq!(pg.tokens().await.expect("tokens"), sled.tokens().await.expect("tokens"));
    drop(sled);

    // Again: a resume of a complete copy changes nothing.
    let (ok, stderr) = migrate(&from, &url);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("verified"), "{stderr}");
    let request = xla_host::sync::lease::request("acme", "hs", xla_host::store::DEFAULT_LEASE_TTL, false);
    let xla_host::store::LeaseGrant::Granted(lease) = pg.acquire_lease(&request).await.expect("lease") else {
        panic!("granted")
    };
    let next = pg
        .begin_run(&lease, xla_host::types::now_ms())
        .await
        .expect("a run on the copy");
    assert!(next.run > runs[0].run, "new runs come after the copied ones");

    // Refused, naming what to give: a source that is not `sled:DIR`.
    let (ok, stderr) = migrate(&data.display().to_string(), &url);
    assert!(!ok && stderr.contains("sled:DIR"), "{stderr}");
}

/// Start of the ten days the retired-days test stores (2026-09-01, UTC).
const BASE: i64 = 1_788_220_800_000;
const HOUR_MS: i64 = 3_600_000;

/// A batch of one source's rows.
fn batch(source: &str, observations: Vec<Observation>) -> CommitBatch {
    CommitBatch {
        tenant: "acme".into(),
        source: source.into(),
        provenance: Provenance {
            connector: source.into(),
            plugin: source.into(),
            version: "1.0.0".into(),
            sha256: "ab".repeat(32),
            sync_run: 1,
        },
        observations,
        ..CommitBatch::default()
    }
}

/// Ticket `i`: resolved on day `i % 10` at 10:00 after five hours, in one
/// of three services; `service` overrides it (a reassignment).
fn ticket(i: u32, service: Option<&str>) -> Vec<Observation> {
    let at = BASE + i64::from(i % 10) * DAY_MS + 10 * HOUR_MS;
    let service = service.unwrap_or(["VPN", "Email", "Payroll"][i as usize % 3]);
    let number = format!("INC{i:07}");
    let row = |metric: &str, value: f64| {
        Observation::new(format!("sys{i}"), metric, Layer::Operational, value, at)
            .dim("ticket", &number)
            .dim("ticket_type", "incident")
            .dim("service", service)
    };
    vec![row("ticket_resolved", 1.0), row("resolution_hours", 5.0)]
}

/// The answer to ticket `i`'s survey, two hours after its resolution; every
/// seventh names no ticket.
fn answer(i: u32, score: f64) -> Observation {
    let at = BASE + i64::from(i % 10) * DAY_MS + 12 * HOUR_MS;
    let answer = Observation::new(format!("a{i}"), "happiness_rating", Layer::Experience, score, at)
        .dim("ticket_type", "incident");
    if i.is_multiple_of(7) {
        answer
    } else {
        answer.dim("ticket", format!("INC{i:07}"))
    }
}

/// Every way the two stores can be read over the ten days, for comparing.
async fn readings(store: &dyn Store) -> Vec<String> {
    let mut readings = Vec::new();
    for metric in [
        "ticket_resolved",
        "happiness_rating",
        "sla_breached",
        "dex_score",
        "reopen_count",
    ] {
        for aggregation in [
            Aggregation::Count,
            Aggregation::Sum,
            Aggregation::Min,
            Aggregation::Max,
            Aggregation::P50,
        ] {
            for group_by in [None, Some("service")] {
                let query = SeriesQuery {
                    tenant: "acme".into(),
                    metric: metric.into(),
                    from: BASE - DAY_MS,
                    to: BASE + 11 * DAY_MS,
                    bucket: Bucket::Day,
                    filter: None,
                    group_by: group_by.map(str::to_string),
                    aggregation,
                };
                let series = store.series(&query).await.expect("series");
                readings.push(format!("{metric} {aggregation:?} by {group_by:?}: {series:?}"));
            }
        }
    }
    for metric in ["happiness_rating", "sla_breached"] {
        let grouped = store
            .grouped_through(&GroupThrough {
                tenant: "acme".into(),
                key: "ticket".into(),
                metric: metric.into(),
                group_by: "service".into(),
                via: vec!["ticket_resolved".into()],
                opening: Some("resolution_hours".into()),
                from: BASE,
                to: BASE + 10 * DAY_MS,
                filter: None,
                from_rows: false,
            })
            .await
            .expect("grouped");
        let groups: Vec<(&String, u64, f64, f64, f64)> = grouped
            .groups
            .iter()
            .map(|(g, r)| (g, r.count, r.sum, r.min, r.max))
            .collect();
        readings.push(format!("{metric} by its ticket's service: {groups:?}"));
        readings.push(format!("{metric} unmatched: {:?}", grouped.unmatched));
    }
    let outcomes = store
        .ticket_outcomes("acme", Some("service"), BASE, BASE + 10 * DAY_MS)
        .await
        .expect("outcomes");
    readings.push(format!("outcomes: {outcomes:?}"));
    let mut kept: Vec<String> = store
        .stats()
        .await
        .expect("stats")
        .metrics
        .into_iter()
        .map(|m| {
            format!(
                "{}: {} raw, {} retired, before {:?}",
                m.metric, m.raw_rows, m.retired_rows, m.retired_before
            )
        })
        .collect();
    readings.append(&mut kept);
    readings
}

/// Reads both stores the same way and compares, reading by reading.
async fn assert_same(pg: &dyn Store, sled: &dyn Store, when: &str) {
    let (pg, sled) = (readings(pg).await, readings(sled).await);
    assert_eq!(pg.len(), sled.len());
    for (pg, sled) in pg.iter().zip(&sled) {
        assert_eq!(pg, sled, "{when}");
    }
}

/// A sled store whose retention retired days (of tickets, survey answers,
/// SLA records and device telemetry, a reassigned ticket among them; a
/// tenant-wide cutoff and a later one of one metric) and that took in rows
/// on retired days since (answers changed at their source, one naming no
/// ticket) is copied into PostgreSQL: every rollup of every day, the ticket
/// join over retired days (grouped by the ticket's service, unmatched
/// answers, the scorecard's outcomes) and what is kept read the same as on
/// sled. Copied again after sled changed a retired answer: the same again.
/// And on both alike: an answer of a retired day sent again replaces its
/// row, and a metric first written after the cutoffs falls under the
/// tenant-wide one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_copies_the_days_retention_retired() {
    let cluster = xla_store_pg::testing::shared();
    let url = cluster.create_database().await.expect("a database");
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sled = crate::support::open_store(&data);
    let tickets: Vec<Observation> = (0..40).flat_map(|i| ticket(i, None)).collect();
    let slas: Vec<Observation> = (0..40)
        .map(|i| {
            let at = BASE + i64::from(i % 10) * DAY_MS + 11 * HOUR_MS;
            Observation::new(
                format!("sla{i}"),
                "sla_breached",
                Layer::Operational,
                f64::from(u8::from(i % 4 == 0)),
                at,
            )
            .dim("ticket", format!("INC{i:07}"))
        })
        .collect();
    let devices: Vec<Observation> = (0..10 * 30)
        .map(|n: i64| {
            let (day, device) = (n / 30, n % 30);
            Observation::new(
                format!("dev{device}-{day}"),
                "dex_score",
                Layer::Technical,
                (40 + (device * 7 + day * 3) % 60) as f64,
                BASE + day * DAY_MS + 6 * HOUR_MS,
            )
            .dim("device", format!("LAPTOP-{device:03}"))
            .dim("service", ["VPN", "Email"][device as usize % 2])
        })
        .collect();
    for (source, rows) in [
        ("sn", tickets),
        ("sn", slas),
        ("hs", (0..40).map(|i| answer(i, f64::from(i % 11))).collect()),
        ("nx", devices),
        // INC0000003 (day 3) reassigned: its answer moves with it.
        ("sn", ticket(3, Some("Network"))),
    ] {
        sled.commit(batch(source, rows)).await.expect("commit");
    }
    let cutoff = BASE + 5 * DAY_MS;
    while sled.retire_before("acme", None, cutoff).await.expect("retire").more {}
    while sled
        .retire_before("acme", Some("dex_score"), cutoff + 2 * DAY_MS)
        .await
        .expect("retire")
        .more
    {}
    // After their days retired, two answers change at their source (the
    // second names no ticket).
    sled.commit(batch("hs", vec![answer(1, 0.0), answer(14, 9.0)]))
        .await
        .expect("commit");
    drop(sled);

    let from = format!("sled:{}", data.display());
    let (ok, stderr) = migrate(&from, &url);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("verified"), "{stderr}");
    // Tickets (two metrics) of five days and telemetry of seven: sled kept
    // the ids of answers and SLA records only (their join keeps them).
    assert!(
        stderr.contains("note: 250 retired row(s) had no record id"),
        "the rows sled kept no id of are counted: {stderr}"
    );
    let sled = crate::support::open_store(&data);
    let pg: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await.expect("the copy"));
    let retired = sled.stats().await.expect("stats").metrics;
    assert!(
        retired.iter().all(|m| m.retired_rows > 0 && m.retired_before.is_some()),
        "every metric has retired days: {retired:?}"
    );
    assert_same(&*pg, &*sled, "copied").await;

    // Copied again after sled changed an answer of a retired day.
    drop(pg);
    sled.commit(batch("hs", vec![answer(12, 1.5)])).await.expect("commit");
    drop(sled);
    let (ok, stderr) = migrate(&from, &url);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("verified"), "{stderr}");
    let sled = crate::support::open_store(&data);
    let pg: Arc<dyn Store> = Arc::new(xla_store_pg::PgStore::connect(&url).await.expect("the copy"));
    assert_same(&*pg, &*sled, "copied again").await;

    for store in [&pg, &sled] {
        // An answer of a retired day sent again: each store replaces its row.
        let summary = store.commit(batch("hs", vec![answer(2, 7.5)])).await.expect("commit");
        assert_eq!(summary.replaced, 1, "{}", store.describe());
        // A metric first written after the cutoffs, on a retired day.
        let late = Observation::new("r1", "reopen_count", Layer::Operational, 2.0, BASE + DAY_MS).dim("service", "VPN");
        store.commit(batch("sn", vec![late])).await.expect("commit");
    }
    assert_same(&*pg, &*sled, "after both took in more").await;
}
