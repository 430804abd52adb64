//! The hostile connector against the sandbox's limits. Each test fails if
//! the limit it exercises is removed: the attack would then succeed.

use crate::support::{attack, attack_within_in, connector, guests, metered_runtime, runtime, tight_limits, within};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use xla_host::runtime::outbound::OutboundPolicy;
use xla_host::runtime::{Limits, RuntimeError};

#[test]
fn an_endless_loop_hits_the_deadline_and_the_next_call_runs_on_a_fresh_instance() {
    let limits = Limits {
        deadline_ms: 300,
        ..tight_limits()
    };
    let (error, calm) = within(Duration::from_secs(30), move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            let policy = OutboundPolicy::new(&[], &[], Vec::new(), &limits).expect("empty policy");
            let mut session = connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
            let error = session.pull(&json!({"attack": "spin"}).to_string(), None).await;
            let calm = session.pull(&json!({"attack": "none"}).to_string(), None).await;
            (error, calm)
        })
    });
    let error = error.unwrap_err();
    assert!(matches!(error, RuntimeError::Deadline { .. }), "{error}");
    let message = error.to_string();
    assert!(
        message.contains("plugin `hostile` 0.1.0") && message.contains("300 ms"),
        "{message}"
    );
    assert_eq!(calm.expect("a fresh instance answers").changes.records.len(), 1);
}

#[test]
fn fuel_stops_a_loop_before_the_deadline() {
    let limits = Limits {
        deadline_ms: 600_000,
        fuel: Some(50_000_000),
        ..tight_limits()
    };
    let error = attack_within_in(
        metered_runtime(),
        Duration::from_secs(30),
        json!({"attack": "spin"}),
        limits,
    )
    .unwrap_err();
    assert!(matches!(error, RuntimeError::Fuel { limit: 50_000_000, .. }), "{error}");
}

/// Fuel is counted only by a runtime started to count it (counting costs
/// every instruction): a fuel limit on one that does not is refused before
/// the guest runs, never dropped.
#[test]
fn a_fuel_limit_on_a_runtime_that_does_not_count_fuel_is_refused() {
    let limits = Limits {
        fuel: Some(50_000_000),
        ..tight_limits()
    };
    let error = attack_within_in(runtime(), Duration::from_secs(30), json!({"attack": "spin"}), limits).unwrap_err();
    assert!(
        matches!(error, RuntimeError::FuelNotCounted { limit: 50_000_000, .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("plugin `hostile`") && message.contains("does not count fuel"),
        "{message}"
    );
}

#[tokio::test]
async fn a_memory_hog_hits_the_memory_cap() {
    let error = attack(json!({"attack": "hog", "mib": 512}), tight_limits(), &[], Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(error, RuntimeError::Memory { limit, .. } if limit == 64 << 20),
        "{error}"
    );
    assert!(error.to_string().contains("64 MiB"), "{error}");
}

#[tokio::test]
async fn a_hog_within_a_larger_cap_is_allowed() {
    // The same guest succeeds when the cap allows it: the refusal above is the cap's doing.
    let limits = Limits {
        memory_mib: 256,
        ..tight_limits()
    };
    let batch = attack(json!({"attack": "hog", "mib": 48}), limits, &[], Vec::new())
        .await
        .expect("fits under 256 MiB");
    assert_eq!(batch.changes.records[0].values[0].value, 3.0);
}

#[tokio::test]
async fn a_panic_is_a_trap_naming_the_panic_and_the_host_goes_on() {
    let error = attack(json!({"attack": "panic"}), tight_limits(), &[], Vec::new())
        .await
        .unwrap_err();
    let RuntimeError::Trap { message, .. } = &error else {
        panic!("expected a trap, got {error}");
    };
    assert!(message.contains("panicked on purpose"), "{message}");
    let calm = attack(json!({"attack": "none"}), tight_limits(), &[], Vec::new()).await;
    assert!(calm.is_ok(), "the host and other instances go on");
}

#[tokio::test]
async fn the_plugin_sees_no_environment_no_arguments_and_no_files() {
    let batch = attack(json!({"attack": "snoop"}), tight_limits(), &[], Vec::new())
        .await
        .expect("snoop returns");
    let value = |metric: &str| {
        batch
            .changes
            .observations()
            .iter()
            .find(|o| o.metric == metric)
            .map(|o| o.value)
            .unwrap_or_else(|| panic!("no {metric}"))
    };
    assert!(
        std::env::vars().count() > 0,
        "the test process has an environment to leak"
    );
    assert_eq!(value("env_vars"), 0.0, "{:?}", batch.changes);
    assert_eq!(value("args"), 0.0);
    assert_eq!(value("fs_successes"), 0.0);
}

#[tokio::test]
async fn a_huge_output_is_bounded_by_the_memory_cap() {
    // Two million 1 KiB observations would need ~2 GiB; the cap stops the guest
    // long before the host has to hold any of it.
    let error = attack(
        json!({"attack": "flood-observations", "count": 2_000_000}),
        tight_limits(),
        &[],
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, RuntimeError::Memory { .. }), "{error}");
}

/// Counts log events the host emits for plugins.
struct CountPluginEvents(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountPluginEvents {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "plugin" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[test]
fn a_log_flood_is_rate_limited() {
    use tracing_subscriber::layer::SubscriberExt;
    let events = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountPluginEvents(events.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    // The current-thread runtime keeps every event on this thread's subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let limits = Limits {
        log_per_second: 20,
        // This test is about the log's rate, not the deadline: 100,000
        // messages took over 2 s once on a loaded two-core machine (the full
        // suite running beside it), which failed the call before the count.
        deadline_ms: 10_000,
        ..tight_limits()
    };
    let lines = 50_000;
    let batch = runtime
        .block_on(attack(
            json!({"attack": "flood-log", "lines": lines}),
            limits,
            &[],
            Vec::new(),
        ))
        .expect("flooding the log is allowed, it is just not all written");
    assert_eq!(batch.changes.records[0].values[0].value, lines as f64);
    let written = events.load(Ordering::SeqCst);
    // 2 × 50,000 messages offered (stderr and the log import); a burst of 40
    // plus 20 per second of the call's duration, and one "dropped" summary.
    assert!(written > 0, "some messages get through");
    assert!(written < 500, "{written} plugin log events were written");
}
