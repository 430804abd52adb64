//! The sync engine end to end: a real connector component pulls from a
//! loopback source through the sandbox into a real store, batch by batch
//! with its cursor; stops and restarts, rate limits, outages and refused
//! credentials.

use crate::support::{connector, guests};
use std::sync::Arc;
use std::time::Duration;
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret};
use xla_host::runtime::{ConnectorSession, Limits, RuntimeError};
use xla_host::sim::feed::{self, Fault, Feed};
use xla_host::store::{RunOutcome, RunRecord, Store};
use xla_host::sync::{self, Backoff, Progress, Quiet, SyncOptions, SyncTarget};

const TOKEN: &str = "sync-token-never-seen-by-plugins";

struct Source {
    feed: Arc<Feed>,
    origin: String,
}

async fn source(observations: usize) -> Source {
    let feed = Arc::new(Feed::seeded(11, observations, TOKEN));
    let addr = feed::serve(feed.clone()).await.expect("feed");
    Source {
        feed,
        origin: format!("http://{addr}"),
    }
}

fn session(source: &Source, token: &str) -> ConnectorSession {
    let credential = Credential::new(
        Origin::parse(&source.origin).expect("origin"),
        CredentialKind::Bearer {
            token: Secret::new(token),
        },
    );
    let limits = Limits::default();
    let policy = OutboundPolicy::new(
        &["*".into()],
        std::slice::from_ref(&source.origin),
        vec![credential],
        &limits,
    )
    .expect("policy");
    connector(guests::JSON_FEED).session(limits, Some(Arc::new(policy)))
}

fn target(source: &Source) -> SyncTarget {
    SyncTarget {
        instance: "feed".into(),
        tenant: "acme".into(),
        config: format!(r#"{{"base_url":"{}/xla","page_size":100}}"#, source.origin),
        plugin: "json-feed".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
    }
}

async fn stored(store: &Arc<dyn Store>) -> usize {
    store
        .observations("acme", "happiness_rating", i64::MIN, i64::MAX)
        .await
        .expect("rows")
        .len()
}

/// Backoff short enough for tests; Retry-After is still honoured exactly.
fn quick() -> SyncOptions {
    SyncOptions {
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            ..Backoff::default()
        },
        max_pulls: None,
        lease_ttl: xla_host::store::DEFAULT_LEASE_TTL,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_sync_resumes_from_its_cursor_and_a_rerun_adds_nothing() {
    let source = source(730).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&source, TOKEN);
    let target = target(&source);

    let options = SyncOptions {
        max_pulls: Some(3),
        ..quick()
    };
    let first = sync::run(&mut session, &store, &target, &options, &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(
        (first.outcome, first.batches, first.inserted),
        (RunOutcome::Stopped, 3, 300)
    );
    assert_eq!(stored(&store).await, 300);

    let second = sync::run(&mut session, &store, &target, &quick(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!(
        (second.outcome, second.inserted),
        (RunOutcome::Completed, 430),
        "{second:?}"
    );
    assert_eq!(stored(&store).await, 730, "every observation exactly once");

    // Nothing new at the source: the last page comes again and changes nothing.
    let third = sync::run(&mut session, &store, &target, &quick(), &mut Quiet)
        .await
        .expect("sync");
    assert_eq!((third.inserted, third.replaced), (0, 0), "{third:?}");
    assert_eq!(stored(&store).await, 730);

    let runs = store.runs("acme", "feed", 10).await.expect("runs");
    assert_eq!(runs.len(), 3);
    assert!(runs.iter().all(|r| r.finished.is_some() && r.error.is_none()));
    assert_eq!(runs[2], first, "the log keeps each run as it ended");
    let row = &store.subject("acme", "ticket", "INC0010000").await.expect("subject")[0];
    assert_eq!(
        (row.provenance.plugin.as_str(), row.provenance.sync_run),
        ("json-feed", first.run),
        "rows carry the run that brought them"
    );
}

/// Records the waits the engine chose.
#[derive(Default)]
struct Waits(Vec<(u32, Duration)>);

impl Progress for Waits {
    fn retry(&mut self, attempt: u32, wait: Duration, _: &RuntimeError) {
        self.0.push((attempt, wait));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_wait_exactly_as_told_and_outages_back_off() {
    let source = source(250).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&source, TOKEN);
    // The first calls meet a rate limit and two outages.
    source
        .feed
        .fail_next(&[Fault::RateLimited(1), Fault::Unavailable, Fault::Unavailable]);
    let mut waits = Waits::default();
    let target = target(&source);
    let record: RunRecord = sync::run(&mut session, &store, &target, &quick(), &mut waits)
        .await
        .expect("the sync recovers");
    assert_eq!(record.outcome, RunOutcome::Completed);
    // field case 05-servicenow-throttling.json: a told wait is no retry and
    // spends no attempt; only the two outages do.
    assert_eq!(record.retries, 2);
    assert_eq!(
        waits.0.iter().map(|(attempt, _)| *attempt).collect::<Vec<_>>(),
        [1, 1, 2]
    );
    assert_eq!(
        waits.0[0],
        (1, Duration::from_secs(1)),
        "Retry-After: 1 is honoured exactly"
    );
    assert!(waits.0[1..].iter().all(|(_, wait)| *wait <= Duration::from_millis(50)));
    assert_eq!(stored(&store).await, 250, "no loss and no duplicate after retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_credential_ends_the_run_and_is_logged() {
    let source = source(50).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let mut session = session(&source, "wrong-token");
    let error = sync::run(&mut session, &store, &target(&source), &quick(), &mut Quiet)
        .await
        .expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("after 2 attempt(s) at check"), "{message}");
    assert_eq!(
        source.feed.requests(),
        2,
        "an auth failure is retried once (an expired token), then ends the run"
    );
    let runs = store.runs("acme", "feed", 1).await.expect("runs");
    assert_eq!(runs[0].outcome, RunOutcome::Failed);
    assert!(
        runs[0].error.as_deref().is_some_and(|e| e.contains("authentication")),
        "{runs:?}"
    );
    assert!(!message.contains("wrong-token"), "no secret in the error");
    assert_eq!(stored(&store).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connector_that_never_moves_its_cursor_is_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let limits = Limits::default();
    let policy = OutboundPolicy::new(&["*".into()], &[], Vec::new(), &limits).expect("policy");
    let mut session = connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    let target = SyncTarget {
        instance: "stuck".into(),
        tenant: "acme".into(),
        config: r#"{"attack":"stall"}"#.into(),
        plugin: "hostile".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
    };
    let error = sync::run(&mut session, &store, &target, &quick(), &mut Quiet)
        .await
        .expect_err("stopped");
    assert!(matches!(error, sync::SyncError::NoProgress { pulls: 3, .. }), "{error}");
    assert_eq!(
        store.runs("acme", "stuck", 1).await.expect("runs")[0].outcome,
        RunOutcome::Failed
    );
}
