//! ServiceNow end to end: the simulator serves a seeded organisation in the
//! Table API's wire format (ACL-short pages, OAuth, rate limits, faults);
//! the `servicenow` connector component pulls it through the sandbox with a
//! host-held OAuth password credential; the sync engine commits it to a real
//! store. What arrives must equal the generator's truth exactly.

use crate::support::{connector, guests};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{ConnectorSession, Limits};
use xla_host::sim::org::{self, Org, OrgSpec};
use xla_host::sim::servicenow::{
    self, Fault, FaultRule, NotAPage, NotAPageRule, Requests, ServiceNowOptions, ServiceNowSim,
};
use xla_host::store::{RunOutcome, Store};
use xla_host::sync::{self, Backoff, Quiet, SyncOptions, SyncTarget};

/// 2026-09-01T00:00:00Z.
const START: i64 = 1_788_220_800_000;

async fn simulator(tickets: usize, options: ServiceNowOptions) -> ServiceNowSim {
    let org = org::generate(&OrgSpec {
        seed: 42,
        tickets,
        start: START,
        days: 30,
    });
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    servicenow::serve(Arc::new(org), options, addr)
        .await
        .expect("simulator")
}

fn session(sim: &ServiceNowSim) -> ConnectorSession {
    let options = sim.options();
    let origin = sim.base_url();
    let credential = Credential::new(
        Origin::parse(&origin).expect("origin"),
        CredentialKind::OAuth2Password {
            token_url: format!("{origin}/oauth_token.do"),
            client_id: options.client_id,
            client_secret: Secret::new(options.client_secret),
            username: options.user,
            password: Secret::new(options.password),
        },
    );
    let limits = Limits::default();
    let policy = OutboundPolicy::new(&["*".into()], &[origin], vec![credential], &limits).expect("policy");
    connector(guests::SERVICENOW).session(limits, Some(Arc::new(policy)))
}

fn target(sim: &ServiceNowSim, page_size: usize) -> SyncTarget {
    SyncTarget {
        instance: "servicenow".into(),
        tenant: "acme".into(),
        config: format!(r#"{{"instance_url":"{}","page_size":{page_size}}}"#, sim.base_url()),
        plugin: "servicenow".into(),
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

fn latest_update(org: &Org) -> i64 {
    let incidents = org.incidents.iter().map(|i| i.sys_updated_on);
    let requests = org.requests.iter().map(|r| r.sys_updated_on);
    let slas = org.slas.iter().map(|s| s.sys_updated_on);
    incidents.chain(requests).chain(slas).max().unwrap_or(START)
}

/// Per metric: (count, sum), as the connector's mapping says they must be.
fn truth(org: &Org, visible: impl Fn(&str) -> bool) -> BTreeMap<&'static str, (u64, f64)> {
    let mut want: BTreeMap<&'static str, (u64, f64)> = BTreeMap::new();
    let mut add = |metric: &'static str, value: f64| {
        let entry = want.entry(metric).or_default();
        entry.0 += 1;
        entry.1 += value;
    };
    for incident in org.incidents.iter().filter(|i| visible(&i.sys_id)) {
        if !matches!(incident.state, 6 | 7) || incident.resolved_at.is_none() {
            continue;
        }
        let reassigned = f64::from(incident.reassignment_count);
        let reopened = f64::from(u8::from(incident.reopen_count > 0));
        add("ticket_resolved", 1.0);
        add("reassignment_count", reassigned);
        add("reopened", reopened);
        add(
            "first_contact_resolution",
            f64::from(u8::from(incident.reassignment_count == 0 && incident.reopen_count == 0)),
        );
    }
    // Closed complete only: 4 (Closed Incomplete, a cancelled request) and
    // 7 (Closed Skipped) were not fulfilled.
    for request in org.requests.iter().filter(|r| visible(&r.sys_id)) {
        if request.closed_at.is_some() && !matches!(request.state, 4 | 7) {
            add("ticket_resolved", 1.0);
            add("reassignment_count", f64::from(request.reassignment_count));
        }
    }
    // Breached is final in every stage but cancelled; completed is met
    // unless breached; running and paused SLAs have no outcome yet.
    for sla in org.slas.iter().filter(|s| visible(&s.sys_id)) {
        let breached = sla.has_breached || sla.stage == "breached";
        if sla.stage != "cancelled" && (breached || sla.stage == "completed") {
            add("sla_breached", f64::from(u8::from(breached)));
        }
    }
    want
}

async fn stored(store: &Arc<dyn Store>) -> BTreeMap<&'static str, (u64, f64)> {
    let mut got = BTreeMap::new();
    for metric in [
        "ticket_resolved",
        "reassignment_count",
        "reopened",
        "first_contact_resolution",
        "sla_breached",
    ] {
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

/// The same sync into the PostgreSQL store, chosen through the host's
/// config as an operator would: exactly the visible records, the same
/// rollups as on sled, the run in the run log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_into_postgres_stores_what_it_stores_into_sled() {
    let sim = simulator(600, ServiceNowOptions::default()).await;
    let url = xla_store_pg::testing::shared()
        .create_database()
        .await
        .expect("a database");
    let config = xla_host::config::HostConfig::parse(&format!("[store]\nbackend = \"postgres\"\nurl = \"{url}\"\n"))
        .expect("config");
    let postgres = config.open_store(None).await.expect("the PostgreSQL store");
    assert!(
        postgres.describe().starts_with("PostgreSQL store at "),
        "{}",
        postgres.describe()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let sled = crate::support::open_store(&dir.path().join("data"));
    let target = target(&sim, 250);
    for store in [&postgres, &sled] {
        let run = sync::run(&mut session(&sim), store, &target, &options(), &mut Quiet)
            .await
            .expect("sync");
        assert_eq!(run.outcome, RunOutcome::Completed, "{run:?}");
        let logged = store.runs("acme", &target.instance, 1).await.expect("runs");
        assert_eq!(logged.first().map(|r| r.outcome), Some(RunOutcome::Completed));
    }
    let want = truth(&sim.records(), |id| sim.is_visible(id));
    assert_eq!(stored(&postgres).await, want, "exactly the generator's visible records");
    for (metric, group) in [("resolution_hours", "assignment_group"), ("sla_breached", "service")] {
        let query = xla_host::store::SeriesQuery {
            tenant: "acme".into(),
            metric: metric.into(),
            from: 0,
            to: i64::from(i32::MAX) * 1000,
            bucket: xla_host::store::Bucket::Month,
            filter: None,
            group_by: Some(group.into()),
            aggregation: xla_host::store::Aggregation::Avg,
        };
        let (on_pg, on_sled) = (postgres.series(&query).await, sled.series(&query).await);
        assert_eq!(on_pg.expect("series"), on_sled.expect("series"), "{metric} by {group}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_brings_exactly_the_visible_records_and_changes_arrive_with_the_next() {
    let sim = simulator(
        1_200,
        ServiceNowOptions {
            acl_hidden_share: 0.15,
            ..ServiceNowOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, 250);

    // Stop part-way, change records at the source, then finish: the changed
    // records arrive in their latest state, nothing twice.
    let partial = SyncOptions {
        max_pulls: Some(3),
        ..options()
    };
    let first = sync::run(&mut session, &store, &target, &partial, &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(first.outcome, RunOutcome::Stopped);
    // Changes happen after everything already there, as the clock moves on.
    let now = latest_update(&sim.records()) + 60_000;
    let changed = sim.update_records(25, now);
    let second = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(second.outcome, RunOutcome::Completed, "{second:?}");

    let org = sim.records();
    let want = truth(&org, |id| sim.is_visible(id));
    assert!(want["ticket_resolved"].0 > 500, "a real amount of data: {want:?}");
    assert_eq!(stored(&store).await, want, "exactly the generator's visible records");

    // A later change arrives with the next sync as a replace, not a duplicate.
    let more = sim.update_records(10, now + 60_000);
    let third = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    let visible_changed = more.iter().filter(|id| sim.is_visible(id)).count() as u64;
    assert!(
        third.replaced >= visible_changed,
        "{third:?} for {visible_changed} visible changed incidents"
    );
    assert_eq!(third.inserted, 0, "{third:?}");
    assert_eq!(stored(&store).await, truth(&sim.records(), |id| sim.is_visible(id)));
    assert!(!changed.is_empty());

    // Records changed in the very second of the watermark, after it was
    // read: the keyset alone would miss those with a smaller sys_id.
    let same_second = latest_update(&sim.records());
    sim.update_records(10, same_second);
    sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(stored(&store).await, truth(&sim.records(), |id| sim.is_visible(id)));

    // One ticket, across its metrics and its SLAs.
    let incident = org
        .incidents
        .iter()
        .find(|i| sim.is_visible(&i.sys_id) && i.resolved_at.is_some() && matches!(i.state, 6 | 7))
        .expect("a resolved incident");
    let rows = store
        .subject("acme", "ticket", &incident.number)
        .await
        .expect("subject");
    let metrics: Vec<&str> = rows.iter().map(|r| r.observation.metric.as_str()).collect();
    for metric in ["resolution_hours", "reassignment_count", "ticket_resolved"] {
        assert!(
            metrics.contains(&metric),
            "{} has {metric}: {metrics:?}",
            incident.number
        );
    }
    let resolution = rows
        .iter()
        .find(|r| r.observation.metric == "resolution_hours")
        .expect("resolution");
    let hours = (incident.resolved_at.expect("resolved") - incident.opened_at) as f64 / 3_600_000.0;
    assert!((resolution.observation.value - hours).abs() < 1e-9);
    assert_eq!(resolution.observation.at, incident.resolved_at.expect("resolved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_mode_recovers_with_no_loss_and_no_duplicate() {
    let faults = vec![
        FaultRule {
            fault: Fault::ServerError,
            on: Requests::Numbers(vec![2, 3]),
        },
        FaultRule {
            fault: Fault::Throttle { retry_after_secs: 1 },
            on: Requests::Numbers(vec![5]),
        },
        FaultRule {
            fault: Fault::Truncated,
            on: Requests::Numbers(vec![7]),
        },
        FaultRule {
            fault: Fault::Malformed,
            on: Requests::Numbers(vec![9]),
        },
        FaultRule {
            fault: Fault::ExpiredToken,
            on: Requests::Numbers(vec![11]),
        },
        FaultRule {
            fault: Fault::Slow(Duration::from_millis(300)),
            on: Requests::Numbers(vec![13]),
        },
    ];
    let sim = simulator(
        600,
        ServiceNowOptions {
            acl_hidden_share: 0.1,
            faults,
            ..ServiceNowOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, 100), &options(), &mut Quiet)
        .await
        .expect("the sync recovers from every fault");
    assert_eq!(record.outcome, RunOutcome::Completed);
    // The truncated and malformed 200s are not retries of the same request:
    // the connector asks for the page again, smaller (field case 06).
    assert!(record.retries >= 3, "{record:?}");
    assert_eq!(stored(&store).await, truth(&sim.records(), |id| sim.is_visible(id)));
}

/// field case 06-servicenow-2xx-not-a-page.http end to end: after the
/// check's probe (request 1), a cancelled transaction (whole and spliced),
/// a full queue and a maintenance page,
/// then every page above 100 records cancelled. The connector halves its
/// page until the instance answers, the run completes, and the store holds
/// exactly the truth: nothing from a body that was not a page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2xx_that_is_not_a_page_is_asked_again_smaller_and_nothing_is_lost() {
    let numbered = |shape, number| NotAPageRule {
        shape,
        on: Requests::Numbers(vec![number]),
        above_limit: 0,
    };
    let sim = simulator(
        600,
        ServiceNowOptions {
            acl_hidden_share: 0.1,
            not_a_page: vec![
                numbered(NotAPage::Cancelled, 2),
                numbered(NotAPage::Spliced, 3),
                numbered(NotAPage::Queued, 4),
                numbered(NotAPage::Hibernating, 5),
                NotAPageRule {
                    shape: NotAPage::Cancelled,
                    on: Requests::Every(1),
                    above_limit: 100,
                },
            ],
            ..ServiceNowOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, 1_000), &options(), &mut Quiet)
        .await
        .expect("the sync completes");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    assert_eq!(stored(&store).await, truth(&sim.records(), |id| sim.is_visible(id)));
}

/// field case 04-servicenow-references-without-names.json end to end: an
/// instance that gives the references but not their dot-walked names. The
/// connector reads the names from the referenced tables, so every dimension
/// is the same name a dot-walk gives; none is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn references_without_names_are_resolved_through_their_tables() {
    let sim = simulator(
        400,
        ServiceNowOptions {
            dot_walking: false,
            ..ServiceNowOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, 200), &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    let org = sim.records();
    assert_eq!(stored(&store).await, truth(&org, |_| true));
    let incident = org
        .incidents
        .iter()
        .find(|i| i.resolved_at.is_some() && matches!(i.state, 6 | 7))
        .expect("a resolved incident");
    let rows = store
        .subject("acme", "ticket", &incident.number)
        .await
        .expect("subject");
    let dimension = |metric: &str, key: &str| {
        rows.iter()
            .find(|r| r.observation.metric == metric)
            .and_then(|r| r.observation.dimension(key).map(str::to_string))
    };
    assert_eq!(
        dimension("ticket_resolved", "assignment_group").as_deref(),
        Some(org.groups[incident.assignment_group].name)
    );
    assert_eq!(
        dimension("ticket_resolved", "service").as_deref(),
        Some(org.services[incident.business_service].name)
    );
    // The SLA rows name their ticket (read through `task`) and definition.
    let sla = org
        .slas
        .iter()
        .find(|s| s.ticket.kind == org::TicketKind::Incident && s.stage == "completed")
        .expect("a completed incident SLA");
    let ticket = &org.incidents[sla.ticket.index].number;
    let rows = store.subject("acme", "ticket", ticket).await.expect("subject");
    let sla_row = rows
        .iter()
        .find(|r| r.observation.id == sla.sys_id && r.observation.metric == "sla_breached")
        .expect("the SLA under its ticket's number");
    assert_eq!(
        sla_row.observation.dimension("sla"),
        Some(org.sla_definitions[sla.sla].name)
    );
    assert_eq!(sla_row.observation.dimension("ticket_type"), Some("incident"));
}

/// The real binary, killed at random points of a slow sync and restarted:
/// the store ends with exactly the generator's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_way_and_restarted_ends_with_exactly_the_truth() {
    // Warm the compile cache the binary uses, so the kills land in the sync,
    // not in compiling the plugin.
    let _ = connector(guests::SERVICENOW);
    let sim = simulator(
        2_000,
        ServiceNowOptions {
            acl_hidden_share: 0.1,
            // Every page takes a while, so the kills land mid-sync.
            faults: vec![FaultRule {
                fault: Fault::Slow(Duration::from_millis(40)),
                on: Requests::Every(1),
            }],
            ..ServiceNowOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let config = dir.path().join("host.toml");
    let base = sim.base_url();
    let plugins = std::path::Path::new(guests::SERVICENOW)
        .parent()
        .and_then(|p| p.parent())
        .expect("plugins dir");
    let options = sim.options();
    std::fs::write(
        &config,
        format!(
            r#"
[plugins]
dir = "{plugins}"

[store]
dir = "{data}"

[[connectors]]
name = "servicenow"
plugin = "servicenow"
tenant = "acme"
grants = ["{base}"]
config = {{ instance_url = "{base}", page_size = 50 }}

[[connectors.credentials]]
origin = "{base}"
kind = "oauth2-password"
token_url = "{base}/oauth_token.do"
client_id = "{client_id}"
client_secret = {{ env = "SN_CLIENT_SECRET" }}
username = "{user}"
password = {{ env = "SN_PASSWORD" }}
"#,
            plugins = plugins.display(),
            data = data.display(),
            client_id = options.client_id,
            user = options.user,
        ),
    )
    .expect("config");
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_xla-host-e2e"))
            .args(["--host-config", &config.display().to_string(), "sync", "servicenow"])
            .env("XLA_HOST_CACHE_DIR", crate::support::test_cache_dir())
            .env("SN_CLIENT_SECRET", &options.client_secret)
            .env("SN_PASSWORD", &options.password)
            .env_remove("XLA_HOST_CONFIG")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs")
    };
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64);
    for _ in 0..3 {
        let mut child = spawn();
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(600 + (seed >> 33) % 900)).await;
        let _ = child.kill();
        let _ = child.wait();
    }
    let child = spawn();
    let finished = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("joined")
        .expect("output");
    assert!(
        finished.status.success(),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let summary = String::from_utf8_lossy(&finished.stdout);
    assert!(summary.contains("Completed"), "{summary}");
    assert!(!summary.contains(&options.password), "no secret in the output");
    let store = crate::support::open_store(&data);
    assert_eq!(stored(&store).await, truth(&sim.records(), |id| sim.is_visible(id)));
    let runs = store.runs("acme", "servicenow", 10).await.expect("runs");
    assert_eq!(runs[0].outcome, RunOutcome::Completed);
    // About 90 slow pages take seconds: the kills land mid-sync, and the
    // runs they cut short are marked so; none failed.
    assert!(
        runs.iter().any(|r| r.outcome == RunOutcome::Interrupted),
        "a kill landed mid-sync: {runs:?}"
    );
    assert!(
        runs.iter()
            .all(|r| matches!(r.outcome, RunOutcome::Interrupted | RunOutcome::Completed)),
        "{runs:?}"
    );
}
