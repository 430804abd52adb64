//! Host memory a plugin makes the host hold outside its linear memory:
//! unsent `wasi:http` requests with buffered bodies, oversized methods,
//! resources hoarded from one pull into the next. Each is bounded by the
//! instance's memory cap, and the bound is measured on the real binary.
//!
//! Before these bounds, 2,000 unsent requests with bodies took the host to
//! 4.2 GB under `--memory-mib 16`, and 20 requests with a 100 MiB method
//! to 2.2 GB: each test below asks for at least ten times its margin, so
//! it fails if the bound it exercises is removed.

use crate::cli::xla_host_command;
use crate::support::{connector, guests};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use xla_host::runtime::outbound::OutboundPolicy;
use xla_host::runtime::{Limits, RuntimeError};

/// What the host may hold beyond `memory_mib` and the idle process: the
/// resources' allowance (4 MiB at 16 MiB) and allocator slack.
const MARGIN_MIB: u64 = 32;

/// Peak resident memory of `xla-host plugin run` with `config`, in MiB,
/// sampled from /proc while it runs, and whether it succeeded.
fn peak_rss_mib(config: serde_json::Value, memory_mib: u64) -> (u64, bool, String) {
    let config = config.to_string();
    let memory = memory_mib.to_string();
    let mut child = xla_host_command(&[
        "plugin",
        "run",
        guests::HOSTILE,
        "--config",
        &config,
        "--memory-mib",
        &memory,
        "--deadline-ms",
        "60000",
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("the binary runs");
    let status_file = format!("/proc/{}/status", child.id());
    let (started, mut peak_kib) = (Instant::now(), 0u64);
    let status = loop {
        if let Ok(status) = std::fs::read_to_string(&status_file) {
            peak_kib = peak_kib.max(kib(&status, "VmHWM:")).max(kib(&status, "VmRSS:"));
        }
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "plugin run did not end");
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut stderr = String::new();
    use std::io::Read;
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    (peak_kib / 1024, status.success(), stderr)
}

fn kib(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn unsent_requests_with_buffered_bodies_stay_within_the_memory_cap() {
    let memory_mib = 16;
    let (idle, ok, stderr) = peak_rss_mib(json!({"attack": "none"}), memory_mib);
    assert!(ok, "{stderr}");
    // 2,000 requests × 1 MiB bodies: 2,000 MiB asked for, 60 times the margin.
    let attack = json!({"attack": "hoard-requests", "count": 2000, "body_kib": 1024, "method_bytes": 0});
    let (peak, ok, stderr) = peak_rss_mib(attack, memory_mib);
    eprintln!("idle {idle} MiB, hoarding requests {peak} MiB");
    assert!(
        peak <= idle + memory_mib + MARGIN_MIB,
        "hoarding requests took the host from {idle} MiB to {peak} MiB (cap {memory_mib} MiB + {MARGIN_MIB} MiB margin); {stderr}"
    );
    // The guest is stopped when its resources run out, naming the plugin.
    assert!(!ok, "2,000 held requests cannot fit in 16 MiB: {stderr}");
    assert!(stderr.contains("plugin `hostile` 0.1.0 crashed"), "{stderr}");
}

#[test]
fn an_oversized_method_is_refused_before_the_host_copies_it() {
    let memory_mib = 128;
    let (idle, ok, stderr) = peak_rss_mib(json!({"attack": "none"}), memory_mib);
    assert!(ok, "{stderr}");
    // 20 requests with a 100 MiB method: 2,000 MiB asked for.
    let attack = json!({"attack": "hoard-requests", "count": 20, "body_kib": 0, "method_bytes": 100 << 20});
    let (peak, ok, stderr) = peak_rss_mib(attack, memory_mib);
    assert!(ok, "{stderr}");
    eprintln!("idle {idle} MiB, 20 methods of 100 MiB {peak} MiB");
    assert!(
        peak <= idle + memory_mib + MARGIN_MIB,
        "20 methods of 100 MiB took the host from {idle} MiB to {peak} MiB (cap {memory_mib} MiB + {MARGIN_MIB} MiB margin)"
    );
}

fn hoarding_session(memory_mib: u64) -> xla_host::runtime::ConnectorSession {
    let limits = Limits {
        memory_mib,
        deadline_ms: 20_000,
        ..Limits::default()
    };
    let policy = OutboundPolicy::new(&[], &[], Vec::new(), &limits).expect("empty policy");
    connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)))
}

fn value(batch: &xla_host::runtime::Batch, metric: &str) -> f64 {
    batch
        .changes
        .observations()
        .iter()
        .find(|o| o.metric == metric)
        .unwrap_or_else(|| panic!("no {metric}"))
        .value
}

#[tokio::test]
async fn a_method_is_capped_and_an_unsent_body_buffers_two_small_chunks() {
    let mut session = hoarding_session(256);
    let attack = json!({"attack": "hoard-requests", "count": 10, "body_kib": 1024, "method_bytes": 33});
    let batch = session.pull(&attack.to_string(), None).await.expect("within bounds");
    assert_eq!(value(&batch, "requests_held"), 10.0);
    assert_eq!(
        value(&batch, "methods_refused"),
        10.0,
        "a 33-byte method is over the cap"
    );
    // Two 16 KiB chunks per body at most (before: 2 MiB each).
    let buffered = value(&batch, "body_bytes_buffered");
    assert!(
        buffered > 0.0 && buffered <= 10.0 * 32.0 * 1024.0,
        "{buffered} bytes buffered"
    );

    let attack = json!({"attack": "hoard-requests", "count": 1, "body_kib": 0, "method_bytes": 32});
    let batch = session.pull(&attack.to_string(), None).await.expect("within bounds");
    assert_eq!(
        value(&batch, "methods_refused"),
        0.0,
        "a 32-byte method token is allowed"
    );
}

#[tokio::test]
async fn resources_hoarded_in_one_pull_are_freed_before_the_next() {
    // 16 MiB allows 64 resources; each held request takes three (request,
    // body, stream). Fifteen fit once; kept into a second pull they would not.
    let mut session = hoarding_session(16);
    let attack = json!({"attack": "hoard-requests", "count": 15, "body_kib": 16, "method_bytes": 0}).to_string();
    for pull in 1..=3 {
        let batch = session
            .pull(&attack, None)
            .await
            .unwrap_or_else(|e| panic!("pull {pull}: {e}"));
        assert_eq!(value(&batch, "requests_held"), 15.0, "pull {pull}");
    }
    // And more than the allowance in one pull stops the plugin, naming it.
    let attack = json!({"attack": "hoard-requests", "count": 70, "body_kib": 0, "method_bytes": 0}).to_string();
    let error = session.pull(&attack, None).await.unwrap_err();
    assert!(matches!(error, RuntimeError::Trap { .. }), "{error}");
    assert!(error.to_string().contains("plugin `hostile` 0.1.0"), "{error}");
}

#[test]
fn the_resource_allowance_scales_with_the_memory_cap_within_a_floor_and_a_ceiling() {
    let slots = |memory_mib| {
        Limits {
            memory_mib,
            ..Limits::default()
        }
        .max_resources()
    };
    assert_eq!(slots(1), 64);
    assert_eq!(slots(16), 64);
    assert_eq!(slots(256), 1024);
    assert_eq!(slots(4096), 2048);
    let limits = Limits {
        memory_mib: 256,
        ..Limits::default()
    };
    assert_eq!(limits.host_memory_bytes(), 64 << 20, "a quarter of the cap");
}

#[tokio::test]
async fn a_result_whose_strings_alias_one_buffer_is_refused_at_the_memory_cap() {
    // Twelve ids pointing at one 8 MiB string: 8 MiB of guest memory, a
    // 96 MiB copy on the host, over the 64 MiB cap (wasmtime's default
    // allowance, 128 MiB, would have let it through).
    let limits = Limits {
        memory_mib: 64,
        deadline_ms: 20_000,
        ..Limits::default()
    };
    let policy = OutboundPolicy::new(&[], &[], Vec::new(), &limits).expect("empty policy");
    let mut session = connector(guests::HOSTILE).session(limits, Some(Arc::new(policy)));
    let attack = json!({"attack": "alias-strings", "count": 12, "mib": 8}).to_string();
    let error = session.pull(&attack, None).await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::Memory { limit, .. } if limit == 64 << 20),
        "{error}"
    );
    // Fewer aliases fit under the cap: the copy is allowed, and the call
    // fails for another reason (an 8 MiB id breaks the observation rules,
    // or the guest's own double free traps after the copy).
    let attack = json!({"attack": "alias-strings", "count": 2, "mib": 8}).to_string();
    let error = session.pull(&attack, None).await.unwrap_err();
    assert!(
        matches!(error, RuntimeError::BadOutput { .. } | RuntimeError::Trap { .. }),
        "{error}"
    );
}
