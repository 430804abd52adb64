//! The store under crashes: the real ingest process is SIGKILLed at random
//! points of a long ingest; each reopen finds every committed batch exactly
//! once, nothing of an uncommitted one, and the cursor consistent with both.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use xla_host::store::{Aggregation, Bucket, SeriesQuery};

const BATCHES: u64 = 400;
const BATCH_SIZE: u64 = 50;

/// Checks the store holds exactly batches 1..=cursor.
fn check(dir: &std::path::Path) -> u64 {
    crate::support::block_on(check_store(dir))
}

async fn check_store(dir: &std::path::Path) -> u64 {
    let store = crate::support::open_store(dir);
    let cursor: u64 = store
        .cursor("crash", "ingest")
        .await
        .expect("cursor")
        .map(|c| c.parse().expect("numeric cursor"))
        .unwrap_or(0);
    let rows = store
        .observations("crash", "lost_time_minutes", 0, i64::MAX)
        .await
        .expect("rows");
    assert_eq!(
        rows.len() as u64,
        cursor * BATCH_SIZE,
        "rows of exactly the committed batches"
    );
    let beyond = rows
        .iter()
        .filter(|r| r.observation.at > cursor as i64 * 60_000)
        .count();
    assert_eq!(beyond, 0, "nothing of an uncommitted batch");
    let series = store
        .series(&SeriesQuery {
            tenant: "crash".into(),
            metric: "lost_time_minutes".into(),
            from: 0,
            to: 86_400_000,
            bucket: Bucket::Day,
            filter: None,
            group_by: None,
            aggregation: Aggregation::Count,
        })
        .await
        .expect("series");
    let counted: u64 = series.iter().map(|p| p.count).sum();
    assert_eq!(counted, cursor * BATCH_SIZE, "rollups count each committed row once");
    if cursor > 0 {
        let ticket = format!("INC{cursor:05}{:04}", BATCH_SIZE - 1);
        assert_eq!(
            store.subject("crash", "ticket", &ticket).await.expect("subject").len(),
            1
        );
    }
    cursor
}

#[test]
fn sigkill_at_random_points_loses_nothing_committed_and_duplicates_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let mut seed: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(7);
    let mut kills = 0;
    loop {
        let mut child = Command::new(env!("CARGO_BIN_EXE_store-ingest"))
            .args([
                data.to_str().expect("utf-8"),
                &BATCHES.to_string(),
                &BATCH_SIZE.to_string(),
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn the ingest");
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let wait_for = (seed >> 33) % 25;
        let stdout = child.stdout.take().expect("stdout");
        let mut last_printed = 0;
        for line in BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .take(wait_for as usize)
        {
            last_printed = line.trim_start_matches("committed ").parse().unwrap_or(last_printed);
        }
        let finished = child.try_wait().expect("status").is_some_and(|s| s.success());
        let _ = child.kill(); // SIGKILL: no destructor, no flush, mid-write if it was writing
        let _ = child.wait();
        let cursor = check(&data);
        assert!(
            cursor >= last_printed,
            "batch {last_printed} was reported committed but is gone (cursor {cursor})"
        );
        if finished || cursor == BATCHES {
            break;
        }
        kills += 1;
        assert!(kills < 200, "the ingest made no progress");
    }
    assert_eq!(check(&data), BATCHES);
    assert!(kills >= 3, "the test killed the ingest only {kills} times");
}
