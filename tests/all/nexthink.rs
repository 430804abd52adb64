//! Nexthink end to end: the simulator serves seeded device telemetry in the
//! NQL API's wire format (OAuth2 client credentials, execute, the export
//! flow, faults); the `nexthink` connector component pulls it through the
//! sandbox with a host-held client-credentials credential; the sync engine
//! commits it to a real store. What arrives must equal the generator's truth.
//!
//! The data are five days from 2026-10-01, in the past: without `until` a
//! sync reads up to today, so tests whose counts depend on the end either set
//! `until` or only assert what holds whatever today is.

use crate::support::{connector, guests};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{ConnectorSession, Limits, PluginError};
use xla_host::sim::nexthink::{self, Fault, FaultRule, NexthinkOptions, NexthinkSim, Requests, Route};
use xla_host::sim::org::{self, OrgSpec};
use xla_host::sim::telemetry::{self, PLANTED_MODEL, Telemetry, TelemetrySpec};
use xla_host::store::{Aggregation, Bucket, RunOutcome, SeriesQuery, Store};
use xla_host::sync::{self, Backoff, Quiet, SyncError, SyncOptions, SyncTarget};

/// 2026-10-01T00:00:00Z.
const START: i64 = 1_790_812_800_000;
const DAYS: u32 = 5;
const METRICS: [&str; 7] = [
    "dex_score",
    "boot_duration_seconds",
    "logon_duration_seconds",
    "system_crashes",
    "free_system_drive_percent",
    "high_cpu_time_ratio",
    "high_memory_time_ratio",
];

/// 300 employees (the org generator gives one per five tickets), five days.
async fn simulator(options: NexthinkOptions) -> NexthinkSim {
    let org = org::generate(&OrgSpec {
        seed: 42,
        tickets: 1_500,
        start: START,
        days: DAYS,
    });
    let telemetry = telemetry::generate(
        &org,
        &TelemetrySpec {
            seed: 42,
            days: DAYS,
            start: START,
        },
    );
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    nexthink::serve(Arc::new(telemetry), options, addr)
        .await
        .expect("simulator")
}

/// A session granted the instance, with its OAuth2 credential.
fn session(sim: &NexthinkSim) -> ConnectorSession {
    session_granting(sim, &[])
}

/// A session granted the instance (with its credential) and `more` origins,
/// with none.
fn session_granting(sim: &NexthinkSim, more: &[String]) -> ConnectorSession {
    session_with(sim, more, Vec::new())
}

/// A session granted the instance (with its credential) and `more` origins,
/// with `credentials`.
fn session_with(sim: &NexthinkSim, more: &[String], credentials: Vec<Credential>) -> ConnectorSession {
    let options = sim.options();
    let origin = sim.base_url();
    let credential = Credential::new(
        Origin::parse(&origin).expect("origin"),
        CredentialKind::OAuth2ClientCredentials {
            token_url: sim.token_url(),
            client_id: options.client_id,
            client_secret: Secret::new(options.client_secret),
            scope: Some("service:integration".into()),
        },
    );
    let limits = Limits::default();
    let mut grants = vec![origin];
    grants.extend_from_slice(more);
    let mut credentials = credentials;
    credentials.push(credential);
    let policy = OutboundPolicy::new(&["*".into()], &grants, credentials, &limits).expect("policy");
    connector(guests::NEXTHINK).session(limits, Some(Arc::new(policy)))
}

/// The five simulated days, `until` excluded.
const UNTIL: &str = r#","until":"2026-10-06""#;

fn target(sim: &NexthinkSim, extra: &str) -> SyncTarget {
    target_since(sim, "2026-10-01", extra)
}

fn target_since(sim: &NexthinkSim, since: &str, extra: &str) -> SyncTarget {
    SyncTarget {
        instance: "nexthink".into(),
        tenant: "acme".into(),
        config: format!(r#"{{"instance_url":"{}","since":"{since}"{extra}}}"#, sim.base_url()),
        plugin: "nexthink".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
    }
}

fn options() -> SyncOptions {
    SyncOptions {
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            attempts: 8,
            ..Backoff::default()
        },
        max_pulls: None,
        lease_ttl: xla_host::store::DEFAULT_LEASE_TTL,
    }
}

/// Per metric: (count, sum) over every device-day.
fn truth(telemetry: &Telemetry) -> BTreeMap<&'static str, (u64, f64)> {
    let mut want: BTreeMap<&'static str, (u64, f64)> = BTreeMap::new();
    for (_, _, day) in telemetry.iter() {
        for (metric, value) in day.metrics() {
            let entry = want.entry(metric).or_default();
            entry.0 += 1;
            entry.1 += value;
        }
    }
    want
}

async fn stored(store: &Arc<dyn Store>) -> BTreeMap<&'static str, (u64, f64)> {
    let mut got = BTreeMap::new();
    for metric in METRICS {
        let rows = store
            .observations("acme", metric, i64::MIN, i64::MAX)
            .await
            .expect("rows");
        let sum: f64 = rows.iter().map(|r| r.observation.value).sum();
        if !rows.is_empty() {
            got.insert(metric, (rows.len() as u64, sum));
        }
    }
    got
}

/// Counts exactly; sums to rounding (the store and the truth add in different orders).
async fn assert_truth(store: &Arc<dyn Store>, telemetry: &Telemetry) {
    let (got, want) = (stored(store).await, truth(telemetry));
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (metric, (count, sum)) in &want {
        let (got_count, got_sum) = got[metric];
        assert_eq!(got_count, *count, "{metric} count");
        assert!(
            (got_sum - sum).abs() <= 1e-9 * sum.abs().max(1.0),
            "{metric}: {got_sum} vs {sum}"
        );
    }
    assert_eq!(want["dex_score"].0, u64::from(DAYS) * telemetry.devices.len() as u64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_sync_brings_every_device_day_and_the_planted_model_crashes_most() {
    let sim = simulator(NexthinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, UNTIL);
    let first = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(first.outcome, RunOutcome::Completed, "{first:?}");
    let telemetry = sim.telemetry();
    assert_truth(&store, &telemetry).await;
    assert_eq!(
        first.inserted,
        7 * u64::from(DAYS) * telemetry.devices.len() as u64,
        "{first:?}"
    );

    // Crashes per device-day by model: the planted model leads.
    let series = store
        .series(&SeriesQuery {
            tenant: "acme".into(),
            metric: "system_crashes".into(),
            from: START,
            to: START + i64::from(DAYS) * telemetry::DAY_MS,
            bucket: Bucket::Month,
            filter: None,
            group_by: Some("device_model".into()),
            aggregation: Aggregation::Avg,
        })
        .await
        .expect("series");
    let top = series
        .iter()
        .max_by(|a, b| a.value.unwrap_or(0.0).total_cmp(&b.value.unwrap_or(0.0)))
        .expect("a point");
    assert_eq!(top.group.as_deref(), Some(PLANTED_MODEL), "{series:?}");
    assert!(series.len() >= 6, "{series:?}");

    // At `until` there is nothing left to ask: only check's one-day probe.
    let before = sim.requests();
    let second = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(second.outcome, RunOutcome::Completed);
    assert_eq!((second.inserted, second.replaced), (0, 0), "{second:?}");
    assert_eq!(sim.requests() - before, 1, "only check's probe");
    assert_eq!(sim.requests_to(Route::Export), u64::from(DAYS), "one export per day");
    assert_truth(&store, &telemetry).await;

    // One device-day, across its metrics and dimensions.
    let device = &telemetry.devices[7];
    let rows = store.subject("acme", "device", &device.name).await.expect("subject");
    assert_eq!(rows.len(), 7 * DAYS as usize);
    let dex = rows
        .iter()
        .find(|r| r.observation.metric == "dex_score" && r.observation.at == START + telemetry::DAY_MS)
        .expect("day 2 DEX");
    assert_eq!(dex.observation.value, telemetry.day(1)[7].dex_score());
    assert_eq!(dex.observation.id, format!("{}/2026-10-02", device.name));
    assert_eq!(dex.observation.dimension("country"), Some(device.country));
    assert_eq!(dex.observation.dimension("device_model"), Some(device.model));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_sync_up_to_until_brings_exactly_the_truth() {
    let sim = simulator(NexthinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let until = target(&sim, r#","mode":"execute","until":"2026-10-06""#);
    let first = sync::run(&mut session, &store, &until, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(first.outcome, RunOutcome::Completed, "{first:?}");
    assert_eq!(first.batches, u64::from(DAYS), "{first:?}");
    assert_truth(&store, &sim.telemetry()).await;
    let requests = sim.requests();
    let second = sync::run(&mut session, &store, &until, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!((second.inserted, second.replaced), (0, 0), "{second:?}");
    assert!(
        sim.requests() - requests <= 1,
        "past until there is nothing to ask (only check's one-day probe)"
    );

    // Four days at once are 1200 rows: over execute's cap, a permanent error naming export mode.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let capped = target(&sim, r#","mode":"execute","days_per_pull":4"#);
    let outcome = sync::run(&mut session, &store, &capped, &options(), &mut Quiet).await;
    let text = match outcome {
        Ok(record) => format!("{record:?}"),
        Err(e) => e.to_string(),
    };
    assert!(text.contains("export"), "{text}");
    assert!(stored(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_mode_recovers_with_no_loss_and_no_duplicate() {
    let rule = |fault: Fault, n: u64| FaultRule {
        fault,
        on: Requests::Numbers(vec![n]),
    };
    // A day is five requests (the export, in a pull of its own, then three
    // status polls and the file), after the run's one-day check: 26 requests
    // and the retries. The faults land across the days' exports, polls and files.
    let faults = vec![
        rule(Fault::ServerError, 2),
        rule(Fault::Throttle { retry_after_secs: 1 }, 8),
        rule(Fault::Truncated, 18),
        rule(Fault::ExpiredToken, 23),
        rule(Fault::Malformed, 27),
        rule(Fault::Slow(Duration::from_millis(300)), 29),
    ];
    let sim = simulator(NexthinkOptions {
        faults,
        ..NexthinkOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, UNTIL), &options(), &mut Quiet)
        .await
        .expect("the sync recovers from every fault");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    // The 500, the cut file and the garbled poll are retries; the host waits
    // out the 429 and renews the expired token without spending the budget.
    assert!(record.retries >= 3, "{record:?}");
    assert!(sim.requests() > 29, "the faults were all reached");
    assert_truth(&store, &sim.telemetry()).await;
    let again = sync::run(&mut session, &store, &target(&sim, UNTIL), &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!((again.inserted, again.replaced), (0, 0), "{again:?}");
}

fn results_elsewhere() -> NexthinkOptions {
    NexthinkOptions {
        results_on_other_origin: true,
        ..NexthinkOptions::default()
    }
}

/// The plugin's error behind a failed sync.
fn plugin_error(outcome: Result<xla_host::store::RunRecord, SyncError>) -> PluginError {
    match outcome {
        Err(SyncError::Connector { source, .. }) => source.plugin_error().cloned().unwrap_or_else(|| {
            panic!("a plugin error, not {source}");
        }),
        other => panic!("the sync fails in the connector, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_on_a_granted_results_origin_come_without_credentials() {
    let sim = simulator(results_elsewhere()).await;
    let storage = sim.results_url().expect("results origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    // Granted, with no credential: the host adds the instance's token only to the instance.
    let mut session = session_granting(&sim, std::slice::from_ref(&storage));
    let target = target(&sim, &format!(r#"{UNTIL},"results_origin":"{storage}""#));
    let record = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    assert_eq!(record.retries, 0, "{record:?}");
    assert_truth(&store, &sim.telemetry()).await;
    assert_eq!(
        sim.requests_to(Route::Results),
        u64::from(DAYS),
        "one file per day, from the storage"
    );
    assert_eq!(
        sim.authorized_results_requests(),
        0,
        "no Authorization reached the storage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_on_the_results_origin_is_refused_by_the_storage() {
    let sim = simulator(results_elsewhere()).await;
    let storage = sim.results_url().expect("results origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    // The operator's mistake: a credential for the storage too. S3 refuses a
    // second auth mechanism beside the link's signature.
    let bearer = Credential::new(
        Origin::parse(&storage).expect("origin"),
        CredentialKind::Bearer {
            token: Secret::new(String::from("not-for-s3")),
        },
    );
    let mut session = session_with(&sim, std::slice::from_ref(&storage), vec![bearer]);
    let target = target(&sim, &format!(r#"{UNTIL},"results_origin":"{storage}""#));
    let outcome = sync::run(&mut session, &store, &target, &options(), &mut Quiet).await;
    let PluginError::Permanent(message) = plugin_error(outcome) else {
        panic!("Permanent")
    };
    assert!(
        message.contains("without a credential") && message.contains(&storage),
        "{message}"
    );
    assert_eq!(sim.authorized_results_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_elsewhere_without_results_origin_are_refused_naming_the_field() {
    let sim = simulator(results_elsewhere()).await;
    let storage = sim.results_url().expect("results origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session_granting(&sim, std::slice::from_ref(&storage));
    let outcome = sync::run(&mut session, &store, &target(&sim, UNTIL), &options(), &mut Quiet).await;
    let PluginError::Permanent(message) = plugin_error(outcome) else {
        panic!("Permanent")
    };
    assert!(message.contains("`results_origin`"), "{message}");
    assert!(
        message.contains(&storage) && message.contains(&sim.base_url()),
        "{message}"
    );
    assert!(
        !message.contains("X-Amz-Signature"),
        "the link's signature stays out: {message}"
    );
    assert_eq!(sim.requests_to(Route::Results), 0);
    assert!(stored(&store).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_results_origin_not_granted_is_refused_by_the_sandbox() {
    let sim = simulator(results_elsewhere()).await;
    let storage = sim.results_url().expect("results origin");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, &format!(r#"{UNTIL},"results_origin":"{storage}""#));
    let outcome = sync::run(&mut session, &store, &target, &options(), &mut Quiet).await;
    let PluginError::Permanent(message) = plugin_error(outcome) else {
        panic!("Permanent")
    };
    assert!(message.contains("refused by the host sandbox"), "{message}");
    assert!(
        !message.contains("X-Amz-Signature"),
        "the link's signature stays out: {message}"
    );
    assert_eq!(
        sim.requests_to(Route::Results),
        0,
        "the refused request never left the host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_export_completes_over_several_pulls_with_one_export_request() {
    // Fourteen polls: more than three pulls' worth, so after the pull that
    // submits the export (and puts it in the cursor) three pulls in a row
    // return nothing, which the engine accepts only because the cursor moves.
    let sim = simulator(NexthinkOptions {
        polls_to_complete: 14,
        ..NexthinkOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, &format!(r#"{UNTIL},"days_per_pull":5"#));
    let record = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    assert_eq!(
        (record.batches, record.retries),
        (5, 0),
        "the submit, three waiting pulls, then the rows: {record:?}"
    );
    assert_truth(&store, &sim.telemetry()).await;
    assert_eq!(
        sim.requests_to(Route::Export),
        1,
        "the export was never submitted again"
    );
    assert_eq!(sim.requests_to(Route::Status), 14);
    assert_eq!(sim.requests_to(Route::Results), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_since_before_the_data_without_until_brings_every_device_day() {
    let sim = simulator(NexthinkOptions::default()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    // Six empty days first (three empty pulls), then the data, then empty days up to today.
    let target = target_since(&sim, "2026-09-25", r#","mode":"execute","days_per_pull":2"#);
    let first = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(first.outcome, RunOutcome::Completed, "{first:?}");
    assert_truth(&store, &sim.telemetry()).await;
    let second = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(second.outcome, RunOutcome::Completed, "{second:?}");
    assert_eq!((second.inserted, second.replaced), (0, 0), "{second:?}");
    assert_truth(&store, &sim.telemetry()).await;
}

/// Field case 11-nexthink-times.json end to end: an instance on UTC-5
/// answers in regional time unless asked for UTC. Every device-day lands on
/// its own UTC day (a regional `date` of 19:00 the evening before would move
/// each one back a day).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execute_sync_on_a_regional_clock_files_every_day_on_its_utc_day() {
    let sim = simulator(NexthinkOptions {
        regional_offset_minutes: Some(-300),
        ..NexthinkOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, &format!(r#","mode":"execute"{UNTIL}"#));
    let record = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    assert_truth(&store, &sim.telemetry()).await;
    let end = START + i64::from(DAYS) * 86_400_000;
    let rows = store
        .observations("acme", "dex_score", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    assert!(
        rows.iter().all(|r| (START..end).contains(&r.observation.at)),
        "every device-day on a UTC day of the data"
    );
}

/// Field case 12-nexthink-export-partial.json end to end: the first status
/// poll of every export fails, and the licence cuts every day's export
/// (300 devices, a limit of 250 rows). One export per day all the same; the
/// rows are stored, and the run says which days are partial and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_exports_are_stored_and_marked_partial_and_failed_polls_keep_their_export() {
    let sim = simulator(NexthinkOptions {
        export_row_limit: Some(250),
        failing_polls: vec![1],
        ..NexthinkOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, UNTIL), &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    assert_eq!(
        sim.requests_to(Route::Export),
        u64::from(DAYS),
        "a failed poll is retried on the same export"
    );
    let days: Vec<i64> = record.partial.iter().map(|g| g.span.start).collect();
    let want: Vec<i64> = (0..i64::from(DAYS)).map(|d| START + d * 86_400_000).collect();
    assert_eq!(days, want, "{:?}", record.partial);
    assert!(
        record.partial.iter().all(|g| g.reason.contains("licence")),
        "{:?}",
        record.partial
    );
    let rows = store
        .observations("acme", "dex_score", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 250 * DAYS as usize, "the rows the export had are stored");
}
