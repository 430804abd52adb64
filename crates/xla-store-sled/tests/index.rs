//! The index on disk (issue 15): a store opens without reading its blocks,
//! and whatever state its table file is in after a crash (behind sled by
//! some commits, missing, older than the journal kept), what a reader sees
//! and what a replay counts as unchanged are exactly what they were.
//!
//! A crash is modelled by copying the store's directory while it is open
//! (every commit is durable, so sled's files are whole) with an older copy
//! of the table's directory: what a power loss leaves when the table's
//! latest runs and manifest had not reached the disk. A table's manifest is
//! written at a checkpoint (when the store closes, or every 30 s), so the
//! tests close and reopen a store to have one there.

use std::path::Path;
use xla_store::{
    Aggregation, Bucket, CommitBatch, CommitSummary, DEFAULT_LEASE_TTL, Lease, LeaseGrant, LeaseRequest, Retracted,
    SeriesQuery, Store,
};
use xla_store_sled::SledStore;
use xla_types::{Layer, Record};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_788_220_800_000;
/// The table's directory: a manifest and its runs.
const TABLE: &str = "index";
/// The table's manifest in it.
const MANIFEST: &str = "MANIFEST";

/// The files of a table's directory, as a crash might find them.
type Snapshot = Vec<(std::ffi::OsString, Vec<u8>)>;

fn snapshot(table: &Path) -> Snapshot {
    let mut files: Snapshot = std::fs::read_dir(table)
        .expect("the table's directory")
        .map(|e| {
            let e = e.expect("entry");
            (e.file_name(), std::fs::read(e.path()).expect("read"))
        })
        .collect();
    files.sort();
    files
}

/// Tickets with three values each; `round` changes some values, so a later
/// round replaces rows of an earlier one, and retracts two.
fn batch(round: i64) -> CommitBatch {
    let records = (0..300)
        .map(|i| {
            Record::new(format!("{i:032x}"), T0 + i * DAY / 20)
                .dim("ticket", format!("INC{i:07}"))
                .dim("service", ["VPN", "SAP", "Email"][(i % 3) as usize])
                .value("resolution_hours", Layer::Operational, ((i % 7) * round) as f64)
                .value("reassignment_count", Layer::Operational, (i % 5) as f64)
                .value("ticket_resolved", Layer::Operational, 1.0)
        })
        .collect();
    CommitBatch {
        tenant: "acme".into(),
        source: "sn".into(),
        records,
        retractions: (round > 1)
            .then(|| Retracted::new(format!("{:032x}", 10 + round), "resolution_hours"))
            .into_iter()
            .collect(),
        cursor: Some(format!("c{round}")),
        ..Default::default()
    }
}

/// What a reader sees: raw rows, rollups by service, and a ticket's rows.
async fn seen(store: &dyn Store) -> Vec<String> {
    let mut seen = Vec::new();
    for metric in ["resolution_hours", "reassignment_count", "ticket_resolved"] {
        let rows = store
            .observations("acme", metric, i64::MIN, i64::MAX)
            .await
            .expect("rows");
        seen.push(format!("{rows:?}"));
        let query = SeriesQuery {
            tenant: "acme".into(),
            metric: metric.into(),
            from: T0 - DAY,
            to: T0 + 30 * DAY,
            bucket: Bucket::Day,
            filter: None,
            group_by: Some("service".into()),
            aggregation: Aggregation::Sum,
        };
        seen.push(format!("{:?}", store.rollups(&query).await.expect("rollups")));
    }
    for ticket in ["INC0000012", "INC0000013", "INC0000299"] {
        let rows = store.subject("acme", "ticket", ticket).await.expect("subject");
        assert!(!rows.is_empty(), "{ticket} has rows");
        seen.push(format!("{rows:?}"));
    }
    seen
}

/// Copies a store's directory (sled's files and subdirectories), leaving
/// out the table.
fn copy_store(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_name() == TABLE {
            continue;
        }
        if entry.file_type().expect("type").is_dir() {
            copy_store(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

/// A crash image of the store at `store` in `dir/name`: sled's files as they
/// are, and `table` as the table's directory (none if `None`).
fn crash_image(dir: &Path, name: &str, store: &Path, table: Option<&Snapshot>) -> std::path::PathBuf {
    let image = dir.join(name);
    copy_store(store, &image);
    if let Some(table) = table {
        std::fs::create_dir_all(image.join(TABLE)).expect("mkdir");
        for (file, bytes) in table {
            std::fs::write(image.join(TABLE).join(file), bytes).expect("write table");
        }
    }
    image
}

/// Opens the store at `path`, commits `rounds`, and closes it (which
/// checkpoints its table).
async fn committed(path: &Path, rounds: &[i64]) {
    let store = SledStore::open(path).expect("open");
    for round in rounds {
        commit(&store, *round).await;
    }
}

/// What a reader of the store at `path` sees, opened and closed again.
async fn seen_at(path: &Path) -> Vec<String> {
    seen(&SledStore::open(path).expect("open")).await
}

async fn commit(store: &SledStore, round: i64) -> CommitSummary {
    store.commit(batch(round)).await.expect("commit")
}

/// Sending the last round again changes nothing: the index knows every row.
async fn assert_replay_is_unchanged(store: &SledStore, round: i64) {
    let summary = commit(store, round).await;
    assert_eq!(summary.inserted, 0, "{summary:?}");
    assert_eq!(summary.replaced, 0, "{summary:?}");
    assert_eq!(summary.unchanged, 899, "{summary:?}");
}

#[tokio::test]
async fn a_table_behind_the_store_catches_up_from_the_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        // Opens the index, and closing checkpoints its empty table.
        let store = SledStore::open(&path).expect("open");
        let rows = store.subject("acme", "ticket", "INC0000001").await.expect("subject");
        assert!(rows.is_empty());
    }
    let store = SledStore::open(&path).expect("reopen");
    let empty = snapshot(&path.join(TABLE));
    commit(&store, 1).await;
    // The table's directory as the first commit left it, its manifest
    // still before that commit.
    let after_one = snapshot(&path.join(TABLE));
    let second = commit(&store, 2).await;
    assert!(second.replaced > 0 && second.retracted == 1, "{second:?}");
    // Crash images: sled as it is now, the table as it was before both
    // commits, and between them.
    let mut images = Vec::new();
    for (name, table) in [("empty", &empty), ("after-one", &after_one)] {
        images.push(crash_image(dir.path(), name, &path, Some(table)));
    }
    drop(store);
    let store = SledStore::open(&path).expect("reopen");
    let expected = seen(&store).await;
    assert_replay_is_unchanged(&store, 2).await;
    for image in images {
        let crashed = SledStore::open(&image).expect("open the crash image");
        assert_eq!(seen(&crashed).await, expected, "{}", image.display());
        assert_replay_is_unchanged(&crashed, 2).await;
    }
}

#[tokio::test]
async fn a_missing_or_outdated_table_is_rebuilt_from_the_blocks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    committed(&path, &[1]).await;
    // Closed cleanly: the table holds round 1 and the journal no longer does.
    let outdated = snapshot(&path.join(TABLE));
    committed(&path, &[2, 3]).await;
    let missing = crash_image(dir.path(), "missing", &path, None);
    let old = crash_image(dir.path(), "old", &path, Some(&outdated));
    let store = SledStore::open(&path).expect("reopen");
    let expected = seen(&store).await;
    for image in [missing, old] {
        let rebuilt = SledStore::open(&image).expect("open");
        assert_eq!(seen(&rebuilt).await, expected, "{}", image.display());
        assert_replay_is_unchanged(&rebuilt, 3).await;
    }
    assert_replay_is_unchanged(&store, 3).await;
}

#[tokio::test]
async fn a_damaged_table_is_rebuilt_and_a_clean_close_leaves_no_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    committed(&path, &[1, 2]).await;
    {
        let db = sled::open(&path).expect("sled");
        assert_eq!(db.scan_prefix(b"J").count(), 0, "the journal was trimmed on close");
    }
    let written = || {
        std::fs::metadata(path.join(TABLE).join(MANIFEST))
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let before = written();
    let expected = seen_at(&path).await;
    assert_eq!(written(), before, "a store only read closes without writing its table");
    let mut bytes = std::fs::read(path.join(TABLE).join(MANIFEST)).expect("manifest");
    bytes[..8].copy_from_slice(b"garbage!");
    std::fs::write(path.join(TABLE).join(MANIFEST), bytes).expect("write");
    let store = SledStore::open(&path).expect("reopen with a damaged table");
    assert_eq!(seen(&store).await, expected);
    assert_replay_is_unchanged(&store, 2).await;
}

#[tokio::test]
async fn a_table_pointing_at_rows_that_are_not_there_is_caught_and_rebuilt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    committed(&path, &[1, 2]).await;
    let expected = seen_at(&path).await;
    // Every entry's value now points at a block that does not exist (a
    // run's layout: a 64-byte header with the entry count at 8, then
    // entries of a 16-byte key and an 8-byte value; a value is
    // block << 20 | slot).
    for (name, mut bytes) in snapshot(&path.join(TABLE)) {
        if !name.to_string_lossy().starts_with("run-") {
            continue;
        }
        let count = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes")) as usize;
        for entry in bytes[64..64 + 24 * count].chunks_exact_mut(24) {
            if entry[16..].iter().any(|b| *b != 0) {
                entry[16..].copy_from_slice(&((999_999u64 << 20) | 3).to_le_bytes());
            }
        }
        std::fs::write(path.join(TABLE).join(name), bytes).expect("write");
    }
    let store = SledStore::open(&path).expect("reopen with a wrong table");
    let error = store.commit(batch(2)).await.expect_err("the wrong table is caught");
    assert!(
        error.to_string().contains("does not match its blocks") && error.to_string().contains("run the sync again"),
        "{error}"
    );
    assert_replay_is_unchanged(&store, 2).await;
    assert_eq!(seen(&store).await, expected);
}

/// A record replaced and then retracted after the table's checkpoint: the
/// replay must not bring back the row the replace left stale (the table
/// still points at it, and the replace's own row is gone with the
/// retraction). Found by review.
#[tokio::test]
async fn a_replace_then_a_retraction_since_the_checkpoint_stay_retracted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    committed(&path, &[1]).await;
    let store = SledStore::open(&path).expect("reopen");
    let after_one = snapshot(&path.join(TABLE));
    let id = format!("{:032x}", 42);
    let mut replace = batch(1);
    replace.records.retain(|r| r.id == id);
    replace.records[0]
        .values
        .retain(|v| v.metric.as_str() == "resolution_hours");
    replace.records[0].values[0].value += 1000.0;
    let replaced = store.commit(replace).await.expect("replace");
    assert_eq!(replaced.replaced, 1, "{replaced:?}");
    let retract = CommitBatch {
        tenant: "acme".into(),
        source: "sn".into(),
        retractions: vec![Retracted::new(id.clone(), "resolution_hours")],
        ..Default::default()
    };
    assert_eq!(store.commit(retract).await.expect("retract").retracted, 1);
    let image = crash_image(dir.path(), "image", &path, Some(&after_one));
    drop(store);
    let store = SledStore::open(&path).expect("reopen");
    let expected = seen(&store).await;
    let crashed = SledStore::open(&image).expect("open the crash image");
    let rows = crashed
        .observations("acme", "resolution_hours", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    assert!(
        rows.iter().all(|r| r.observation.id != id),
        "the retracted record came back"
    );
    assert_eq!(seen(&crashed).await, expected);
}

/// The name of sled's page-table snapshot in `store` (`snap.<log offset>`):
/// sled writes a new one each time it is opened on a log that grew.
fn sled_snapshot(store: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(store)
        .expect("read dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("snap."))
        .collect();
    names.sort();
    names.pop()
}

/// sled is closed and opened again between commits once its bound is
/// reached (here after every commit); with readers running beside the
/// writer it waits for a moment when none holds it. Nothing stored changes,
/// and a replay still finds every row.
#[tokio::test]
async fn sled_reopened_between_commits_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (reopened, plain) = (dir.path().join("reopened"), dir.path().join("plain"));
    committed(&plain, &[1, 2, 3, 4]).await;
    let store = SledStore::open(&reopened).expect("open");
    store.set_reopen_after(1);
    let mut snapshots = vec![sled_snapshot(&reopened)];
    for round in 1..=2 {
        commit(&store, round).await;
        snapshots.push(sled_snapshot(&reopened));
    }
    assert!(
        snapshots[0] < snapshots[1] && snapshots[1] < snapshots[2],
        "sled was not opened again after each commit: {snapshots:?}"
    );
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    seen(&store).await;
                }
            })
        })
        .collect();
    for round in 3..=4 {
        commit(&store, round).await;
    }
    for reader in readers {
        reader.await.expect("a reader beside the reopens");
    }
    assert_eq!(seen(&store).await, seen_at(&plain).await);
    let before = sled_snapshot(&reopened);
    assert_replay_is_unchanged(&store, 4).await;
    assert!(
        sled_snapshot(&reopened) > before,
        "opened again once the readers were done"
    );
    drop(store);
    assert_eq!(seen_at(&reopened).await, seen_at(&plain).await);
}

/// acme's `sn` lease, for this process.
async fn lease(store: &SledStore) -> Lease {
    let request = LeaseRequest {
        tenant: "acme".into(),
        instance: "sn".into(),
        holder: "test".into(),
        ttl: DEFAULT_LEASE_TTL,
        scheduled: false,
    };
    match store.acquire_lease(&request).await.expect("acquire") {
        LeaseGrant::Granted(lease) => lease,
        other => panic!("the lease is free: {other:?}"),
    }
}

/// Run ids stay consecutive through sled's reopens (sled's own id
/// generator skips millions each time it opens).
#[tokio::test]
async fn run_ids_stay_consecutive_through_reopens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SledStore::open(&dir.path().join("db")).expect("open");
    store.set_reopen_after(1);
    let first = store.begin_run(&lease(&store).await, 1).await.expect("run").run;
    commit(&store, 1).await;
    let second = store.begin_run(&lease(&store).await, 2).await.expect("run").run;
    commit(&store, 2).await;
    drop(store);
    let store = SledStore::open(&dir.path().join("db")).expect("reopen");
    let third = store.begin_run(&lease(&store).await, 3).await.expect("run").run;
    assert_eq!((second, third), (first + 1, first + 2));
}

/// The bytes of the table's runs in a store's directory.
fn table_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path.join(TABLE))
        .expect("the table's directory")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum()
}

/// No row is listed under its ticket in the table (the ticket join keeps
/// every row naming a number under it: format 8 its own rows, format 10 the
/// rows of other metrics): an answer costs the table one entry (where its
/// record's row is), not three (that, the ticket's row and its count), and
/// a ticket's `reassignment_count` one, not two and a count. A read of the
/// ticket still finds them all, after reopening and after the table is
/// rebuilt from the blocks.
#[tokio::test]
async fn a_tickets_rows_take_one_table_entry_each_and_are_found_through_the_join() {
    const ANSWERS: i64 = 2_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let answers = CommitBatch {
        tenant: "acme".into(),
        source: "hs".into(),
        records: (0..ANSWERS)
            .map(|i| {
                Record::new(format!("{:032x}", i + 1), T0 + DAY + i * 60_000)
                    .dim("ticket", format!("INC{i:07}"))
                    .value("lost_time_minutes", Layer::Experience, (i % 90) as f64)
            })
            .collect(),
        ..Default::default()
    };
    {
        let store = SledStore::open(&path).expect("open");
        store.commit(answers).await.expect("answers");
        // INC0000012's ticket arrives, with a value the join does not keep.
        store.commit(batch(1)).await.expect("tickets");
    }
    // Entries of 24 bytes, plus a filter and fences (under a byte and a
    // half): one per answer, and for batch(1)'s 300 tickets one per value
    // (900). Listing the tickets' `reassignment_count` rows under them
    // too would take 600 entries more (a row and a count each, 6,000 of
    // these bytes), the answers and the joined rows 4,600.
    let bytes = table_bytes(&path);
    let entries = ANSWERS + 900;
    assert!(
        bytes < (entries * 27) as u64,
        "{bytes} bytes of table for {entries} entries"
    );
    let metrics = |rows: Vec<xla_store::StoredObservation>| -> Vec<String> {
        let mut metrics: Vec<String> = rows.into_iter().map(|r| r.observation.metric).collect();
        metrics.sort();
        metrics
    };
    let want = [
        "lost_time_minutes",
        "reassignment_count",
        "resolution_hours",
        "ticket_resolved",
    ];
    let store = SledStore::open(&path).expect("reopen");
    let rows = store.subject("acme", "ticket", "INC0000012").await.expect("subject");
    assert_eq!(metrics(rows), want);
    let rows = store.subject("acme", "ticket", "INC0001999").await.expect("subject");
    assert_eq!(metrics(rows), ["lost_time_minutes"]);
    drop(store);
    // Without its table, the store rebuilds it from the blocks, by the same rule.
    std::fs::remove_dir_all(path.join(TABLE)).expect("remove the table");
    let store = SledStore::open(&path).expect("reopen");
    let rows = store.subject("acme", "ticket", "INC0000012").await.expect("subject");
    assert_eq!(metrics(rows), want);
    drop(store);
    assert!(table_bytes(&path) <= bytes, "the rebuilt table is no larger");
}

/// A store of format 9 listed a ticket's rows of other metrics under the
/// ticket in the table, and its join held no entry for them. The upgrade
/// notes the first block written since: a table rebuilt afterwards lists
/// the older blocks' rows under their tickets again, so a read of the
/// ticket still finds them (the unit test of `rows_of` holds the newer
/// blocks to the join alone).
#[tokio::test]
async fn a_table_rebuilt_after_the_upgrade_lists_older_blocks_rows_under_their_tickets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let reassignments = CommitBatch {
        tenant: "acme".into(),
        source: "sn".into(),
        records: (0..50)
            .map(|i| {
                Record::new(format!("{i:032x}"), T0 + i * 60_000)
                    .dim("ticket", format!("INC{i:07}"))
                    .value("reassignment_count", Layer::Operational, (i % 5) as f64)
            })
            .collect(),
        ..Default::default()
    };
    let ticket = |store: SledStore| async move {
        let rows = store.subject("acme", "ticket", "INC0000042").await.expect("subject");
        rows.into_iter().map(|r| r.observation.value).collect::<Vec<f64>>()
    };
    {
        let store = SledStore::open(&path).expect("open");
        store.commit(reassignments).await.expect("commit");
        assert_eq!(ticket(store).await, [2.0]);
    }
    {
        // The store's threads let go of sled's lock a moment after it drops.
        let db = (0..1000)
            .find_map(|_| {
                sled::open(&path)
                    .map_err(|_| std::thread::sleep(std::time::Duration::from_millis(10)))
                    .ok()
            })
            .expect("sled");
        // What format 9 left: no listing in the join (its only entries
        // here), the format, and a table (rebuilt below, as after a crash).
        for key in db.scan_prefix(b"Y").keys() {
            db.remove(key.expect("key")).expect("remove");
        }
        db.insert(b"Mformat", &9u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    std::fs::remove_dir_all(path.join(TABLE)).expect("remove the table");
    let store = SledStore::open(&path).expect("upgraded");
    assert_eq!(ticket(store).await, [2.0]);
}
