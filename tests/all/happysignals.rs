//! HappySignals end to end: the simulator serves the survey responses of a
//! seeded organisation (Bearer token, `meta`/`items` pages, Django-style
//! filters, a CSV export, faults); the `happysignals` connector component
//! pulls them through the sandbox with a host-held Bearer credential; the
//! sync engine commits them to a real store. What arrives must equal the
//! generator's truth exactly.

use crate::support::{connector, guests};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{ConnectorSession, Limits};
use xla_host::sim::happysignals::{self, Fault, FaultRule, HappySignalsOptions, HappySignalsSim, Requests, Shifting};
use xla_host::sim::org::{self, Org, OrgSpec, WATERMELON_SERVICE};
use xla_host::store::{RunOutcome, Store};
use xla_host::sync::{self, Backoff, Quiet, SyncOptions, SyncTarget};

/// 2026-09-01T00:00:00Z.
const START: i64 = 1_788_220_800_000;
const METRICS: [&str; 3] = ["happiness_rating", "lost_time_minutes", "factor_selected"];

async fn simulator(tickets: usize, options: HappySignalsOptions) -> HappySignalsSim {
    let org = org::generate(&OrgSpec {
        seed: 42,
        tickets,
        start: START,
        days: 30,
    });
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    happysignals::serve(Arc::new(org), options, addr)
        .await
        .expect("simulator")
}

fn session(sim: &HappySignalsSim) -> ConnectorSession {
    let origin = sim.base_url();
    let credential = Credential::new(
        Origin::parse(&origin).expect("origin"),
        CredentialKind::Bearer {
            token: Secret::new(sim.options().token),
        },
    );
    let limits = Limits::default();
    let policy = OutboundPolicy::new(&["*".into()], &[origin], vec![credential], &limits).expect("policy");
    connector(guests::HAPPYSIGNALS).session(limits, Some(Arc::new(policy)))
}

fn config(sim: &HappySignalsSim, page_size: usize) -> String {
    format!(r#"{{"base_url":"{}","page_size":{page_size}}}"#, sim.base_url())
}

fn target(sim: &HappySignalsSim, page_size: usize) -> SyncTarget {
    SyncTarget {
        instance: "happysignals".into(),
        tenant: "acme".into(),
        config: config(sim, page_size),
        plugin: "happysignals".into(),
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

/// Per metric: (count, sum), as the connector's mapping says they must be.
fn truth(org: &Org) -> BTreeMap<&'static str, (u64, f64)> {
    let mut want: BTreeMap<&'static str, (u64, f64)> = BTreeMap::new();
    let mut add = |metric: &'static str, value: f64| {
        let entry = want.entry(metric).or_default();
        entry.0 += 1;
        entry.1 += value;
    };
    for response in &org.responses {
        add("happiness_rating", f64::from(response.score));
        if let Some(minutes) = response.lost_time_minutes {
            add("lost_time_minutes", f64::from(minutes));
        }
        for _ in &response.factors {
            add("factor_selected", 1.0);
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

/// Every stored observation of the three metrics, comparable as a set.
type Key = (String, String, u64, i64, Vec<(String, String)>);

fn key(o: &xla_host::runtime::Observation) -> Key {
    let mut dimensions = o.dimensions.clone();
    dimensions.sort();
    (o.id.clone(), o.metric.clone(), o.value.to_bits(), o.at, dimensions)
}

async fn stored_keys(store: &Arc<dyn Store>) -> BTreeSet<Key> {
    let mut keys = BTreeSet::new();
    for metric in METRICS {
        let rows = store
            .observations("acme", metric, i64::MIN, i64::MAX)
            .await
            .expect("rows");
        keys.extend(rows.iter().map(|row| key(&row.observation)));
    }
    keys
}

/// `GET path` with the token, over a plain socket (HTTP/1.0: the server closes).
async fn fetch(sim: &HappySignalsSim, path: &str) -> Vec<u8> {
    let authority = sim.base_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&authority).await.expect("connect");
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAuthorization: Bearer {}\r\n\r\n",
        sim.options().token
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).await.expect("read");
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").expect("headers end");
    assert!(reply.starts_with(b"HTTP/1.0 200") || reply.starts_with(b"HTTP/1.1 200"));
    reply.split_off(split + 4)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_brings_exactly_the_responses_and_the_next_adds_nothing() {
    let sim = simulator(1_200, HappySignalsOptions::default()).await;
    let org = sim.records();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let target = target(&sim, 40);

    // Stop part-way, then finish from the cursor.
    let partial = SyncOptions {
        max_pulls: Some(3),
        ..options()
    };
    let first = sync::run(&mut session, &store, &target, &partial, &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(first.outcome, RunOutcome::Stopped);
    let second = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(second.outcome, RunOutcome::Completed, "{second:?}");

    let want = truth(&org);
    assert!(want["happiness_rating"].0 > 200, "a real amount of data: {want:?}");
    assert!(
        want["lost_time_minutes"].0 < want["happiness_rating"].0,
        "some responses leave lost time out: {want:?}"
    );
    assert_eq!(stored(&store).await, want, "exactly the generator's responses");
    assert_eq!(first.inserted + second.inserted, stored_keys(&store).await.len() as u64);

    // Nothing new at the source: the next sync adds and replaces nothing.
    let third = sync::run(&mut session, &store, &target, &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(third.outcome, RunOutcome::Completed);
    assert_eq!((third.inserted, third.replaced), (0, 0), "{third:?}");
    assert_eq!(stored(&store).await, want);

    // The planted watermelon: its tickets' users are unhappy, in the store too.
    let vpn = org.service_index(WATERMELON_SERVICE).expect("watermelon service");
    let tickets: BTreeSet<&str> = org
        .responses
        .iter()
        .filter(|r| org.ticket_service(r.ticket) == vpn)
        .map(|r| r.ticket_number.as_str())
        .collect();
    assert!(tickets.len() >= 5, "the watermelon has answered tickets");
    let scores: Vec<u8> = store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows")
        .iter()
        .filter(|r| r.observation.dimension("ticket").is_some_and(|t| tickets.contains(t)))
        .map(|r| r.observation.value as u8)
        .collect();
    let truth_scores = org
        .responses
        .iter()
        .filter(|r| org.ticket_service(r.ticket) == vpn)
        .map(|r| r.score);
    let happiness = org::happiness(scores.iter().copied()).expect("ratings");
    assert!(happiness < 0.0, "watermelon happiness {happiness}");
    assert_eq!(Some(happiness), org::happiness(truth_scores));

    // One ticket across its metrics.
    let answered = org
        .responses
        .iter()
        .find(|r| r.lost_time_minutes.is_some() && !r.factors.is_empty())
        .expect("an answered response");
    let rows = store
        .subject("acme", "ticket", &answered.ticket_number)
        .await
        .expect("subject");
    let metrics: BTreeSet<&str> = rows.iter().map(|r| r.observation.metric.as_str()).collect();
    assert_eq!(metrics, METRICS.into_iter().collect());
    let rating = rows
        .iter()
        .find(|r| r.observation.metric == "happiness_rating")
        .expect("rating");
    assert_eq!(rating.observation.value, f64::from(answered.score));
    assert_eq!(rating.observation.at, answered.created);
    let ticket_type = answered.ticket_type.to_lowercase();
    assert_eq!(rating.observation.dimension("ticket_type"), Some(ticket_type.as_str()));

    // The CSV export, imported through `parse`, says exactly what the API did.
    let csv = fetch(&sim, "/api/v2/responses/export.csv").await;
    let parsed = session
        .parse(&config(&sim, 40), "text/csv; charset=utf-8", &csv)
        .await
        .expect("the export parses");
    let parsed = parsed.observations();
    let parsed_keys: BTreeSet<Key> = parsed.iter().map(key).collect();
    assert_eq!(parsed.len(), parsed_keys.len(), "no duplicate in the export");
    assert_eq!(parsed_keys, stored_keys(&store).await);
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
            on: Requests::Burst { first: 5, last: 6 },
        },
        FaultRule {
            fault: Fault::Truncated,
            on: Requests::Numbers(vec![8]),
        },
        FaultRule {
            fault: Fault::Malformed,
            on: Requests::Numbers(vec![10]),
        },
        FaultRule {
            fault: Fault::ExpiredToken,
            on: Requests::Numbers(vec![12]),
        },
        FaultRule {
            fault: Fault::Slow(Duration::from_millis(300)),
            on: Requests::Numbers(vec![14]),
        },
    ];
    let sim = simulator(
        800,
        HappySignalsOptions {
            faults,
            ..HappySignalsOptions::default()
        },
    )
    .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, 20), &options(), &mut Quiet)
        .await
        .expect("the sync recovers from every fault");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    // Two 500s, the cut and the garbled page, the expired token: retries.
    // The two 429s are waited out by the host without spending the budget.
    assert!(record.retries >= 5, "{record:?}");
    assert!(sim.requests() > 14, "the faults were all reached");
    assert_eq!(stored(&store).await, truth(&sim.records()));
}

/// Field case 08-happysignals-paging.json end to end: the simulator lists
/// newest first whatever `ordering` asks, and after every page a response
/// arrives and the page's first is removed. Nothing that stays at the source
/// is skipped, nothing submitted after the sync started is read by it, and
/// nothing is stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_shifting_under_the_sync_lose_nothing() {
    let sim = simulator(
        800,
        HappySignalsOptions {
            shifting: Some(Shifting::default()),
            ..HappySignalsOptions::default()
        },
    )
    .await;
    let org = sim.records();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&sim);
    let record = sync::run(&mut session, &store, &target(&sim, 20), &options(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(record.outcome, RunOutcome::Completed, "{record:?}");
    let rows = store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    let stored: BTreeSet<String> = rows.iter().map(|r| r.observation.id.clone()).collect();
    assert_eq!(rows.len(), stored.len(), "no duplicate");
    let removed = sim.removed();
    assert!(
        removed.len() > 10,
        "the list moved under the sync: {} removed",
        removed.len()
    );
    let known: BTreeSet<String> = org.responses.iter().map(|r| r.id.clone()).collect();
    let missing: Vec<&String> = known
        .iter()
        .filter(|id| !removed.contains(*id) && !stored.contains(*id))
        .collect();
    assert!(missing.is_empty(), "skipped: {missing:?}");
    assert!(
        stored.is_subset(&known),
        "responses submitted during the sync wait for the next"
    );
}
