//! A batch's records (contract 0.2: one id, its dimensions once, several
//! values) are stored exactly as their observations would be: the sync
//! engine hands the connector's records to the store as they came instead of
//! copying them into one observation per value (issue 14, ingest).

use std::sync::Arc;
use xla_store::{Aggregation, Bucket, CommitBatch, CommitSummary, Retracted, SeriesQuery, Store, StoreError};
use xla_store_sled::SledStore;
use xla_types::{Layer, Observation, Record};

const DAY: i64 = 86_400_000;
const T0: i64 = 1_788_220_800_000;

fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let store = SledStore::open(&dir.path().join("db")).expect("open");
    store.set_durable(false);
    Arc::new(store)
}

/// Incidents as a connector sends them: a replay, a changed value and a
/// record sent twice in one batch (the last counts).
fn records(round: i64) -> Vec<Record> {
    let mut records: Vec<Record> = (0..40)
        .map(|i| {
            Record::new(format!("{i:032x}"), T0 + i * DAY / 7)
                .dim("ticket", format!("INC{i:07}"))
                .dim("service", ["VPN", "SAP", "Email"][(i % 3) as usize])
                .dim("priority", format!("P{}", 1 + i % 4))
                .value("resolution_hours", Layer::Operational, (i * round) as f64 / 4.0)
                .value("reassignment_count", Layer::Operational, (i % 5) as f64)
                .value("ticket_resolved", Layer::Operational, 1.0)
        })
        .collect();
    records.push(
        Record::new(format!("{:032x}", 3), T0 + DAY)
            .dim("ticket", "INC0000003")
            .dim("service", "Email")
            .value("resolution_hours", Layer::Operational, 99.0),
    );
    records
}

fn batch(round: u64, observations: Vec<Observation>, records: Vec<Record>) -> CommitBatch {
    CommitBatch {
        tenant: "acme".into(),
        source: "sn".into(),
        observations,
        records,
        retractions: vec![
            Retracted::new(format!("{:032x}", 7), "resolution_hours"),
            Retracted::new(format!("{:032x}", 8), "ticket_resolved"),
        ],
        cursor: Some(format!("c{round}")),
        ..Default::default()
    }
}

/// Everything a reader sees of the tenant: raw rows, subjects and rollups.
async fn seen(store: &dyn Store) -> Vec<String> {
    let mut seen = Vec::new();
    for metric in ["resolution_hours", "reassignment_count", "ticket_resolved"] {
        seen.push(format!(
            "{:?}",
            store
                .observations("acme", metric, i64::MIN, i64::MAX)
                .await
                .expect("rows")
        ));
        for group_by in [None, Some("service".to_string()), Some("priority".to_string())] {
            let query = SeriesQuery {
                tenant: "acme".into(),
                metric: metric.into(),
                from: T0 - DAY,
                to: T0 + 10 * DAY,
                bucket: Bucket::Day,
                filter: None,
                group_by,
                aggregation: Aggregation::Sum,
            };
            seen.push(format!("{:?}", store.rollups(&query).await.expect("rollups")));
        }
    }
    seen.push(format!(
        "{:?}",
        store.subject("acme", "ticket", "INC0000003").await.expect("subject")
    ));
    seen
}

#[tokio::test]
async fn records_are_stored_as_their_observations() {
    let (as_records, as_observations) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let (a, b) = (store(&as_records), store(&as_observations));
    let mut summaries: Vec<(CommitSummary, CommitSummary)> = Vec::new();
    for round in 1..=3 {
        let recs = records(round.min(2) as i64);
        let observations: Vec<Observation> = recs.iter().flat_map(Record::observations).collect();
        let x = a.commit(batch(round, Vec::new(), recs)).await.expect("records");
        let y = b
            .commit(batch(round, observations, Vec::new()))
            .await
            .expect("observations");
        summaries.push((x, y));
    }
    for (x, y) in &summaries {
        assert_eq!(format!("{x:?}"), format!("{y:?}"));
    }
    // Round 2 changed every resolution_hours but the first; round 3 replays it.
    assert_eq!(summaries[2].0.unchanged, 40 * 3 - 2);
    assert_eq!(seen(&*a).await, seen(&*b).await);
    assert_eq!(a.cursor("acme", "sn").await.expect("cursor").as_deref(), Some("c3"));
}

#[tokio::test]
async fn one_bad_record_stores_nothing_of_its_batch() {
    let dir = tempfile::tempdir().expect("dir");
    let store = store(&dir);
    let mut recs = records(1);
    recs.push(Record::new("", T0).value("ticket_resolved", Layer::Operational, 1.0));
    let error = store.commit(batch(1, Vec::new(), recs)).await.expect_err("refused");
    assert!(matches!(error, StoreError::BadObservation { .. }), "{error}");
    let rows = store
        .observations("acme", "ticket_resolved", i64::MIN, i64::MAX)
        .await
        .expect("rows");
    assert!(rows.is_empty(), "{rows:?}");
    assert_eq!(store.cursor("acme", "sn").await.expect("cursor"), None);
}
