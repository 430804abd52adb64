//! Throttling end to end (field case 05-servicenow-throttling.json): the
//! ServiceNow simulator throttles in each shape the field case shows, the
//! `servicenow` connector pulls through the sandbox, the host reads the
//! throttling headers into its per-upstream registry, and the sync engine
//! waits, backs off, or stops the run without failing it, from the
//! committed cursor. The registry's clock is injected, so an answer asking
//! for half an hour is "waited" by moving the clock, not by sleeping.

use crate::support::{connector, guests};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;
use xla_host::runtime::outbound::throttle::{self, Cause};
use xla_host::runtime::outbound::{Credential, CredentialKind, Origin, OutboundPolicy, Secret, Throttles};
use xla_host::runtime::{ConnectorSession, Limits};
use xla_host::sim::org::{self, OrgSpec};
use xla_host::sim::servicenow::{self, RateLimit, Requests, ServiceNowOptions, ServiceNowSim};
use xla_host::sim::throttle::{Throttle, ThrottleRule};
use xla_host::store::RunOutcome;
use xla_host::sync::{self, Backoff, Quiet, SyncError, SyncOptions, SyncTarget};

/// 2026-09-01T00:00:00Z.
const START: i64 = 1_788_220_800_000;

/// The host's registry on a clock that runs with the wall clock from an
/// offset the test moves.
struct Clock {
    throttles: Arc<Throttles>,
    offset: Arc<AtomicI64>,
}

impl Clock {
    fn new(backoff: throttle::Backoff) -> Clock {
        let offset = Arc::new(AtomicI64::new(0));
        let moved = Arc::clone(&offset);
        let clock = Arc::new(move || xla_host::types::now_ms() + moved.load(Ordering::SeqCst));
        let throttles = Arc::new(Throttles::new(backoff, clock, Arc::new(|| 0.5)));
        Clock { throttles, offset }
    }

    fn advance(&self, by: Duration) {
        self.offset.fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }
}

async fn simulator(options: ServiceNowOptions) -> ServiceNowSim {
    let org = org::generate(&OrgSpec {
        seed: 5,
        tickets: 400,
        start: START,
        days: 30,
    });
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    servicenow::serve(Arc::new(org), options, addr)
        .await
        .expect("simulator")
}

fn policy(sim: &ServiceNowSim, throttles: &Arc<Throttles>) -> Arc<OutboundPolicy> {
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
    let policy = OutboundPolicy::new(&["*".into()], &[origin], vec![credential], &Limits::default())
        .expect("policy")
        .with_throttles(Arc::clone(throttles));
    Arc::new(policy)
}

fn session(policy: &Arc<OutboundPolicy>) -> ConnectorSession {
    connector(guests::SERVICENOW).session(Limits::default(), Some(Arc::clone(policy)))
}

fn target(sim: &ServiceNowSim, instance: &str) -> SyncTarget {
    SyncTarget {
        instance: instance.into(),
        tenant: "acme".into(),
        config: format!(r#"{{"instance_url":"{}","page_size":100}}"#, sim.base_url()),
        plugin: "servicenow".into(),
        version: "0.1.0".into(),
        sha256: "0".repeat(64),
    }
}

fn options(attempts: u32) -> SyncOptions {
    SyncOptions {
        backoff: Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(50),
            attempts,
            ..Backoff::default()
        },
        max_pulls: None,
        lease_ttl: xla_host::store::DEFAULT_LEASE_TTL,
    }
}

fn quick_host_backoff() -> throttle::Backoff {
    throttle::Backoff {
        base: Duration::from_millis(40),
        max: Duration::from_millis(200),
    }
}

fn on(throttle: Throttle, on: Requests) -> Vec<ThrottleRule> {
    vec![ThrottleRule { throttle, on }]
}

/// A: `Retry-After: 1740` with the rule's headers. The run stops (not
/// failed) with what it committed, spends no retry, another instance on the
/// upstream sends nothing until then, and once the time has come the next
/// run resumes from the cursor and completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_case_05_a_a_long_wait_stops_the_run_without_failing_and_resumes_at_the_time() {
    let sim = simulator(ServiceNowOptions::default()).await;
    let wait = Throttle::LongWait {
        retry_after_secs: 1740,
        limit: 500,
    };
    sim.throttler().set(on(wait, Requests::Numbers(vec![3])));
    let clock = Clock::new(quick_host_backoff());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let (first_policy, second_policy) = (policy(&sim, &clock.throttles), policy(&sim, &clock.throttles));
    let mut first = session(&first_policy);

    let stopped = sync::run(&mut first, &store, &target(&sim, "snow"), &options(6), &mut Quiet)
        .await
        .expect("a long wait is not a failure");
    assert_eq!(stopped.outcome, RunOutcome::Stopped);
    assert_eq!(stopped.retries, 0, "the wait spends no retry");
    // The connector may read more than one table page per pull (references):
    // whatever it committed before the 429 stays committed.
    assert!(stopped.batches >= 1, "the pages before the 429 are committed");
    let said = stopped.error.clone().expect("the run says why it stopped");
    assert!(said.contains("1740 s") && said.contains(&sim.base_url()), "{said}");
    let cursor = store.cursor("acme", "snow").await.expect("cursor");
    assert!(cursor.is_some(), "the committed cursor is kept");

    // Another instance on the same upstream holds off: nothing reaches the source.
    let seen = sim.throttler().seen();
    let hold = second_policy.hold().expect("the upstream is held for everyone");
    assert_eq!(
        hold.origin.to_string(),
        Origin::parse(&sim.base_url()).expect("origin").to_string()
    );
    assert!(matches!(
        hold.cause,
        Cause::Told {
            header: "Retry-After",
            status: 429
        }
    ));
    let mut second = session(&second_policy);
    let other = sync::run(&mut second, &store, &target(&sim, "snow-2"), &options(6), &mut Quiet)
        .await
        .expect("held, not failed");
    assert_eq!(other.outcome, RunOutcome::Stopped);
    assert_eq!(sim.throttler().seen(), seen, "no request left for the held upstream");

    // At the time the source named, the first instance resumes from its cursor.
    clock.advance(Duration::from_secs(1740));
    let resumed = sync::run(&mut first, &store, &target(&sim, "snow"), &options(6), &mut Quiet)
        .await
        .expect("resumed");
    assert_eq!(resumed.outcome, RunOutcome::Completed);
    assert_eq!(resumed.unchanged, 0, "resumed from the cursor, not from the start");
    assert!(resumed.inserted > 0);
}

/// B: a 429 with no headers at all. Backoff with jitter, shared through the
/// host by every instance on the upstream; the run completes when the source
/// recovers, and fails naming the upstream when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_case_05_b_a_bare_429_backs_off_shared_and_the_last_error_names_the_upstream() {
    let sim = simulator(ServiceNowOptions::default()).await;
    sim.throttler()
        .set(on(Throttle::Bare, Requests::Burst { first: 2, last: 3 }));
    let clock = Clock::new(quick_host_backoff());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let (mine, theirs) = (policy(&sim, &clock.throttles), policy(&sim, &clock.throttles));
    let run = sync::run(
        &mut session(&mine),
        &store,
        &target(&sim, "snow"),
        &options(6),
        &mut Quiet,
    )
    .await
    .expect("recovers");
    assert_eq!(run.outcome, RunOutcome::Completed);
    assert_eq!(run.retries, 2, "each bare 429 spends an attempt");

    sim.throttler().set(on(Throttle::Bare, Requests::Every(1)));
    let error = sync::run(
        &mut session(&mine),
        &store,
        &target(&sim, "snow"),
        &options(3),
        &mut Quiet,
    )
    .await
    .expect_err("the budget runs out");
    assert!(matches!(error, SyncError::Throttled { attempts: 3, .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains(&sim.base_url()) && message.contains("without saying when"),
        "{message}"
    );
    let hold = theirs.hold().expect("the backoff holds the other instance too");
    assert!(matches!(hold.cause, Cause::Backoff { status: 429, .. }), "{hold}");
}

/// C: successful pages carry `X-RateLimit-Limit` and `X-RateLimit-Reset`
/// and no "remaining". The host counts its requests in the rule's window
/// and holds the upstream once they are spent: the source never has to
/// answer 429, and the run stops (not failed) until the reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_case_05_c_limit_headers_pace_requests_within_the_rules_budget() {
    let rule = RateLimit {
        limit: 3,
        window: Duration::from_secs(3600),
        rule: "b8c1e0d2a3f44f5a9e7d6c5b4a392817".into(),
    };
    let sim = simulator(ServiceNowOptions {
        rate_limit: Some(rule),
        ..ServiceNowOptions::default()
    })
    .await;
    let clock = Clock::new(quick_host_backoff());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let policy = policy(&sim, &clock.throttles);
    let run = sync::run(
        &mut session(&policy),
        &store,
        &target(&sim, "snow"),
        &options(6),
        &mut Quiet,
    )
    .await
    .expect("a spent budget is not a failure");
    assert_eq!(run.outcome, RunOutcome::Stopped);
    assert_eq!(sim.requests(), 3, "the rule's budget, and not one request past it");
    assert!(run.batches >= 1, "what the budget allowed is committed");
    let said = run.error.expect("why it stopped");
    assert!(said.contains("allows 3 requests"), "{said}");
    let hold = policy.hold().expect("held until the reset");
    assert_eq!(hold.cause, Cause::Budget { limit: 3 });
}

/// Every form of `Retry-After`: an HTTP-date is waited for as the host read
/// it, not replaced by a fixed guess, and spends no attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_case_05_retry_after_as_an_http_date_is_waited_exactly() {
    let sim = simulator(ServiceNowOptions::default()).await;
    sim.throttler()
        .set(on(Throttle::RetryAt { after_secs: 1 }, Requests::Numbers(vec![2])));
    let clock = Clock::new(quick_host_backoff());
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::support::open_store(&dir.path().join("data"));
    let policy = policy(&sim, &clock.throttles);
    let started = std::time::Instant::now();
    let run = sync::run(
        &mut session(&policy),
        &store,
        &target(&sim, "snow"),
        &options(2),
        &mut Quiet,
    )
    .await
    .expect("completes");
    assert_eq!(run.outcome, RunOutcome::Completed);
    assert_eq!(run.retries, 0, "a told wait spends no attempt");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(20),
        "waited the date, not a fixed 60 s: {took:?}"
    );
}
