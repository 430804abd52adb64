//! The sled store against the store contract: the whole conformance suite,
//! and what only a directory-backed store can get wrong (foreign
//! directories, other format versions, a second process).

use std::sync::Arc;
use xla_store::conformance::Backend;
use xla_store::{Store, StoreError};
use xla_store_sled::SledStore;

/// The store's sled database opened directly, as a damaged or older store
/// is made. Waits for sled's lock as the store does: the threads of a store
/// just dropped can hold it a moment longer.
fn raw_sled(path: &std::path::Path) -> sled::Db {
    let started = std::time::Instant::now();
    loop {
        match sled::open(path) {
            Ok(db) => return db,
            Err(_) if started.elapsed() < std::time::Duration::from_secs(10) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("sled {} does not open: {e}", path.display()),
        }
    }
}

/// Fresh stores in temporary directories; commits skip the flush (atomicity
/// is unchanged, and the crash test covers durability). `reopen_after`:
/// the bound after which sled is closed and opened again, when not the
/// default.
struct Sled {
    reopen_after: Option<u64>,
}

impl Backend for Sled {
    type Place = tempfile::TempDir;

    async fn create(&self) -> tempfile::TempDir {
        tempfile::tempdir().expect("tempdir")
    }

    async fn open(&self, place: &tempfile::TempDir) -> Result<Arc<dyn Store>, StoreError> {
        let store = SledStore::open(&place.path().join("db"))?;
        store.set_durable(false);
        if let Some(bytes) = self.reopen_after {
            store.set_reopen_after(bytes);
        }
        Ok(Arc::new(store))
    }
}

xla_store::conformance_suite!(Sled { reopen_after: None });

/// The suite again with sled closed and opened after every commit (its
/// bound on recovery set to one byte): the reopen changes nothing a caller
/// can see.
mod reopening {
    use super::*;

    xla_store::conformance_suite!(Sled { reopen_after: Some(1) });
}

#[test]
fn foreign_and_future_directories_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let error = SledStore::open(dir.path()).err().expect("refused");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error}");
    assert!(error.to_string().contains("notes.txt"), "{error}");

    let path = dir.path().join("future");
    {
        let db = raw_sled(&path);
        db.insert(b"Mformat", &99u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let error = SledStore::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Version { found: 99, .. }), "{error}");

    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    assert!(matches!(SledStore::open(&file), Err(StoreError::Foreign { .. })));
}

#[test]
fn a_store_open_elsewhere_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let _first = SledStore::open(&path).expect("open");
    let error = SledStore::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("in use by another process"), "{error}");
    assert!(error.to_string().contains(&path.display().to_string()), "{error}");
}

/// A Nexthink-like batch of acme's: a DEX score of 70 per (record id,
/// device, time).
fn dex_scores(devices: impl Iterator<Item = (String, String, i64)>) -> xla_store::CommitBatch {
    use xla_types::{Layer, Observation};
    xla_store::CommitBatch {
        tenant: "acme".into(),
        source: "nx".into(),
        provenance: xla_store::Provenance {
            connector: "nx".into(),
            plugin: "nexthink".into(),
            version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            sync_run: 1,
        },
        observations: devices
            .map(|(id, device, at)| Observation::new(id, "dex_score", Layer::Technical, 70.0, at).dim("device", device))
            .collect(),
        ..Default::default()
    }
}

/// A format-4 store (blocks never compressed) opens as format 5 without
/// losing its index table, and reads as before.
#[test]
fn a_format_4_store_is_upgraded_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let batch = |range: std::ops::Range<i64>| {
        dex_scores(range.map(|i| (format!("d{i}"), format!("LAPTOP-{i}"), 86_400_000 + i)))
    };
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("open");
        store.commit(batch(0..500)).await.expect("commit");
    });
    {
        // What a format-4 store holds: every block bare (postcard), never
        // compressed. Compressed ones start with 0 and a codec byte 1, then
        // LZ4 with the raw length first.
        let db = raw_sled(&path);
        let mut bare = 0;
        for entry in db.scan_prefix(b"B") {
            let (key, value) = entry.expect("entry");
            if let [0, 1, payload @ ..] = value.as_ref() {
                let raw = lz4_flex::decompress_size_prepended(payload).expect("decompresses");
                db.insert(key, raw).expect("insert");
                bare += 1;
            }
        }
        assert!(bare > 0, "the 500 rows' block was compressed, and is now bare");
        db.insert(b"Mformat", &4u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let table = path.join("index");
    assert!(table.exists(), "the closed store has its index table");
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("upgraded");
        assert!(table.exists(), "an upgrade from format 4 keeps the table");
        let rows = store
            .observations("acme", "dex_score", 0, i64::MAX)
            .await
            .expect("rows");
        assert_eq!(rows.len(), 500);
        let replay = store.commit(batch(0..500)).await.expect("commit");
        assert_eq!(replay.unchanged, 500);
        // Retention and the stats read the bare blocks too.
        let stats = store.stats().await.expect("stats");
        assert_eq!(stats.metrics[0].raw_rows, 500);
        let retired = store
            .retire_before("acme", Some("dex_score"), 3 * 86_400_000)
            .await
            .expect("retention");
        assert_eq!(retired.dropped, 500);
    });
    let db = raw_sled(&path);
    let format = db.get(b"Mformat").expect("get").expect("format");
    assert_eq!(format.as_ref(), &xla_store_sled::FORMAT_VERSION.to_be_bytes());
}

/// A format-5 store (no ticket join kept) builds its join from the rows on
/// open: the answers group through their tickets from joined rollups as
/// they do from raw rows, and the join then follows new writes.
#[test]
fn a_format_5_store_builds_its_ticket_join_on_open() {
    upgraded_store_joins_tickets(5);
}

/// A format-6 store (join buckets never with deltas) opens as the current
/// format with its join as it was, and the commits after write deltas over
/// its buckets that read back with them.
#[test]
fn a_format_6_store_keeps_its_ticket_join_and_writes_deltas_over_it() {
    upgraded_store_joins_tickets(6);
}

/// Whether a `Y` key is a bucket's delta: the bucket's key, `0xFF`, a
/// sequence byte.
fn is_delta(key: &[u8]) -> bool {
    key.len() >= 2 && key[key.len() - 2] == 0xFF
}

/// Tickets and answers stored, the store made to look like one of
/// `format`, opened again: the joined groups equal the join from raw rows,
/// before and after a later answer.
fn upgraded_store_joins_tickets(format: u32) {
    use xla_store::GroupThrough;
    use xla_types::{Layer, Observation};
    const DAY: i64 = 86_400_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let batch = |source: &str, observations: Vec<Observation>| xla_store::CommitBatch {
        source: source.into(),
        observations,
        ..dex_scores(std::iter::empty())
    };
    let ticket = |number: &str, group: &str| {
        ["ticket_resolved", "resolution_hours"].map(|metric| {
            Observation::new(number, metric, Layer::Operational, 2.0, DAY + 12 * 3_600_000)
                .dim("ticket", number)
                .dim("ticket_type", "incident")
                .dim("assignment_group", group)
        })
    };
    let answer = |id: &str, number: &str, rating: f64| {
        Observation::new(id, "happiness_rating", Layer::Experience, rating, 2 * DAY)
            .dim("ticket", number)
            .dim("ticket_type", "incident")
    };
    let query = |from_rows| GroupThrough {
        tenant: "acme".into(),
        key: "ticket".into(),
        metric: "happiness_rating".into(),
        group_by: "assignment_group".into(),
        via: vec!["ticket_resolved".into()],
        opening: Some("resolution_hours".into()),
        from: 0,
        to: 10 * DAY,
        filter: None,
        from_rows,
    };
    let answers = || {
        vec![
            answer("a1", "INC1", 9.0),
            answer("a2", "INC1", 3.0),
            answer("a3", "INC404", 10.0),
        ]
    };
    let summary = |g: &xla_store::GroupedThrough| -> (Vec<(String, u64, f64)>, u64) {
        let groups = g.groups.iter().map(|(k, r)| (k.clone(), r.count, r.sum)).collect();
        (groups, g.unmatched.count)
    };
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("open");
        let mut tickets = ticket("INC1", "Network").to_vec();
        tickets.extend(ticket("INC2", "Desk"));
        // More of their bucket: a commit changing one number writes a
        // delta, not the bucket whole.
        for n in 3..10 {
            tickets.extend(ticket(&format!("INC{n}"), "Desk"));
        }
        store.commit(batch("sn", tickets)).await.expect("tickets");
        // Format 6: the answers after the upgrade, over a bucket written whole.
        if format < 6 {
            store.commit(batch("hs", answers())).await.expect("answers");
        }
    });
    {
        let db = raw_sled(&path);
        if format < 6 {
            // What a format-5 store holds: no join state at all.
            for prefix in [b"Y", b"Z", b"S"] {
                for entry in db.scan_prefix(prefix) {
                    db.remove(entry.expect("entry").0).expect("remove");
                }
            }
        } else {
            // One commit each: every bucket whole, as format 6 kept them.
            let deltas = db
                .scan_prefix(b"Y")
                .filter(|e| is_delta(&e.as_ref().expect("entry").0))
                .count();
            assert_eq!(deltas, 0);
        }
        db.insert(b"Mformat", &format.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("upgraded");
        if format == 6 {
            store.commit(batch("hs", answers())).await.expect("answers");
        }
        let joined = store.grouped_through(&query(false)).await.expect("joined");
        let raw = store.grouped_through(&query(true)).await.expect("raw");
        assert_eq!(summary(&joined), (vec![("Network".into(), 2, 12.0)], 1));
        assert_eq!(summary(&joined), summary(&raw));
        // A ticket's rows of the join's metrics are read through the join
        // (the index does not list them under the ticket): all there.
        let mut rows: Vec<(String, String)> = store
            .subject("acme", "ticket", "INC1")
            .await
            .expect("subject")
            .into_iter()
            .map(|r| (r.observation.id, r.observation.metric))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [
                ("INC1".to_string(), "resolution_hours".to_string()),
                ("INC1".into(), "ticket_resolved".into()),
                ("a1".into(), "happiness_rating".into()),
                ("a2".into(), "happiness_rating".into()),
            ]
        );
        // The join follows writes after the upgrade: INC2 takes its answer.
        store
            .commit(batch("hs", vec![answer("a4", "INC2", 8.0)]))
            .await
            .expect("answer");
        let joined = store.grouped_through(&query(false)).await.expect("joined");
        assert_eq!(
            summary(&joined),
            (vec![("Desk".into(), 1, 8.0), ("Network".into(), 2, 12.0)], 1)
        );
        let raw = store.grouped_through(&query(true)).await.expect("raw");
        assert_eq!(summary(&joined), summary(&raw));
    });
    if format == 6 {
        let db = raw_sled(&path);
        let deltas = db
            .scan_prefix(b"Y")
            .filter(|e| is_delta(&e.as_ref().expect("entry").0))
            .count();
        assert_eq!(
            deltas, 2,
            "two commits over the bucket of INC1 and INC2, written as deltas"
        );
    }
    let db = raw_sled(&path);
    assert!(db.get(b"Mjoin-rebuild").expect("get").is_none(), "the rebuild finished");
    let format = db.get(b"Mformat").expect("get").expect("format");
    assert_eq!(format.as_ref(), &xla_store_sled::FORMAT_VERSION.to_be_bytes());
}

/// Retention goes through a large backlog in batches, each taking the
/// store's lock on its own, and a call does a bounded share of it: it says
/// there is more, and the next call goes on where it stopped.
#[test]
fn retention_of_many_blocks_goes_batch_by_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let day = 86_400_000;
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&dir.path().join("db")).expect("open");
        store.set_durable(false);
        // 1,400 commits of two devices each: 1,400 blocks, 200 a day on days 0 to 6.
        for i in 0..1_400i64 {
            let devices = (0..2).map(|d| (format!("d{i}-{d}"), format!("LAPTOP-{d}"), (i % 7) * day + i));
            store.commit(dex_scores(devices)).await.expect("commit");
        }
        // Days 0 to 5 go: 1,200 blocks, more than one call's 1,024.
        let first = store.retire_before("acme", None, 6 * day).await.expect("retention");
        assert_eq!((first.dropped, first.more), (2_048, true));
        let second = store.retire_before("acme", None, 6 * day).await.expect("retention");
        assert_eq!((second.dropped, second.more), (352, false));
        let left = store
            .observations("acme", "dex_score", 0, i64::MAX)
            .await
            .expect("rows");
        assert_eq!(left.len(), 400);
        assert!(left.iter().all(|r| r.observation.at >= 6 * day));
        let stats = store.stats().await.expect("stats");
        assert_eq!((stats.metrics[0].raw_rows, stats.metrics[0].retired_rows), (400, 2_400));
        // A policy goes call by call to the end, and stops when asked to.
        let policy = xla_store::RetentionPolicy {
            raw_days: Some(1),
            ..Default::default()
        };
        let now = 8 * day;
        let stopped = xla_store::apply_retention(&store, &policy, now, &|| true)
            .await
            .expect("retention");
        assert!(stopped.is_empty(), "asked to stop before the first metric: {stopped:?}");
        let applied = xla_store::apply_retention(&store, &policy, now, &|| false)
            .await
            .expect("retention");
        assert_eq!(applied[0].dropped, Some(400));
    });
}

/// A format-2 store (before sources' written metric sets) is upgraded on
/// open: its gaps and whole-record retractions concern the metrics its
/// sources stored before the upgrade.
#[test]
fn a_format_2_store_is_upgraded_with_what_each_source_wrote() {
    use xla_store::{CommitBatch, Provenance};
    use xla_types::{Gap, Layer, Observation, Span};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let day = 86_400_000;
    let observation = |id: &str, metric: &str, value: f64| Observation {
        id: id.into(),
        metric: metric.into(),
        layer: Layer::Experience,
        value,
        at: day + 1,
        dimensions: vec![("service".into(), "Email".into())],
    };
    let batch = |observations: Vec<Observation>, partial: Vec<Gap>, whole: Vec<String>| CommitBatch {
        tenant: "acme".into(),
        source: "hs".into(),
        provenance: Provenance {
            connector: "hs".into(),
            plugin: "happysignals".into(),
            version: "0.1.0".into(),
            sha256: "ab".repeat(32),
            sync_run: 1,
        },
        observations,
        partial,
        retracted_records: whole,
        ..Default::default()
    };
    let gap = Gap {
        span: Span::new(day, 2 * day),
        reason: "a cap was reached".into(),
    };
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("open");
        let values = vec![
            observation("r1", "happiness_rating", 9.0),
            observation("r1", "lost_time_minutes", 30.0),
        ];
        store
            .commit(batch(values, vec![gap.clone()], vec![]))
            .await
            .expect("commit");
    });
    {
        // What a format-2 store holds: no written sets.
        let db = raw_sled(&path);
        for key in db.scan_prefix(b"W").keys() {
            db.remove(key.expect("key")).expect("remove");
        }
        db.insert(b"Mformat", &2u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    xla_store::conformance::block_on(async {
        let store = SledStore::open(&path).expect("upgraded");
        let gaps = store.gaps("acme").await.expect("gaps");
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].metrics, ["happiness_rating", "lost_time_minutes"]);
        let summary = store
            .commit(batch(vec![], vec![], vec!["r1".into()]))
            .await
            .expect("commit");
        assert_eq!(summary.retracted, 2, "both values of r1, stored before the upgrade");
    });
    let db = raw_sled(&path);
    let format = db.get(b"Mformat").expect("get").expect("format");
    assert_eq!(format.as_ref(), &xla_store_sled::FORMAT_VERSION.to_be_bytes());
}
