//! Store tests: format checks, idempotent replace, atomic cursors, and the
//! property that every query over rollups equals the same query computed
//! from the raw rows, replaces included.

use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, HashMap};
use xla_types::{Layer, Observation};

fn provenance(run: u64) -> Provenance {
    Provenance {
        connector: "sn".into(),
        plugin: "servicenow".into(),
        version: "0.1.0".into(),
        sha256: "ab".repeat(32),
        sync_run: run,
    }
}

fn obs(id: &str, metric: &str, value: f64, at: i64, dims: &[(&str, &str)]) -> Observation {
    Observation {
        id: id.into(),
        metric: metric.into(),
        layer: Layer::Experience,
        value,
        at,
        dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open(&dir.path().join("db")).expect("open");
    store.set_durable(false);
    (dir, store)
}

fn commit(store: &Store, observations: &[Observation], cursor: Option<&str>) -> CommitSummary {
    store
        .commit(CommitBatch {
            tenant: "acme",
            source: "sn",
            provenance: &provenance(1),
            observations,
            cursor,
        })
        .expect("commit")
}

const DAY: i64 = 86_400_000;

#[test]
fn a_replayed_batch_changes_nothing_and_a_changed_record_replaces() {
    let (_dir, store) = open();
    let batch = [
        obs("r1", "happiness_rating", 9.0, DAY, &[("service", "Email")]),
        obs("r2", "happiness_rating", 3.0, DAY, &[("service", "VPN")]),
    ];
    assert_eq!(commit(&store, &batch, Some("c1")).inserted, 2);
    assert_eq!(commit(&store, &batch, Some("c1")).unchanged, 2);
    let total = store.rollup("acme", "happiness_rating", 1, None).expect("rollup");
    assert_eq!((total.count, total.sum), (2, 12.0));

    // r2 is re-rated and moves to another day and service.
    let changed = [obs("r2", "happiness_rating", 10.0, 2 * DAY, &[("service", "Email")])];
    assert_eq!(commit(&store, &changed, Some("c2")).replaced, 1);
    let day1 = store.rollup("acme", "happiness_rating", 1, None).expect("rollup");
    assert_eq!(
        (day1.count, day1.sum, day1.min, day1.max),
        (1, 9.0, 9.0, 9.0),
        "min and max follow a replace"
    );
    assert_eq!(
        store
            .rollup("acme", "happiness_rating", 1, Some(("service", "VPN")))
            .expect("rollup")
            .count,
        0
    );
    assert_eq!(
        store
            .rollup("acme", "happiness_rating", 2, Some(("service", "Email")))
            .expect("rollup")
            .count,
        1
    );
    assert_eq!(store.cursor("acme", "sn").expect("cursor").as_deref(), Some("c2"));
    let rows = store
        .observations("acme", "happiness_rating", 0, 10 * DAY)
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1].observation.value, 10.0);
    assert_eq!(rows[1].provenance, provenance(1));
}

#[test]
fn a_bad_observation_stores_nothing_of_its_batch() {
    let (_dir, store) = open();
    commit(&store, &[obs("r1", "lost_time_minutes", 30.0, DAY, &[])], Some("c1"));
    let bad = [
        obs("r2", "lost_time_minutes", 5.0, DAY, &[]),
        obs("r3", "lost_time_minutes", f64::NAN, DAY, &[]),
    ];
    let error = store
        .commit(CommitBatch {
            tenant: "acme",
            source: "sn",
            provenance: &provenance(2),
            observations: &bad,
            cursor: Some("c2"),
        })
        .unwrap_err();
    assert!(error.to_string().contains("`r3`"), "{error}");
    // Seconds where milliseconds belong, and a time past any calendar.
    for at in [i64::MAX, -9_000_000_000_000_000] {
        let error = store
            .commit(CommitBatch {
                tenant: "acme",
                source: "sn",
                provenance: &provenance(2),
                observations: &[obs("r5", "lost_time_minutes", 1.0, at, &[])],
                cursor: Some("c2"),
            })
            .unwrap_err();
        assert!(error.to_string().contains("unix milliseconds"), "{error}");
    }
    assert_eq!(
        store.cursor("acme", "sn").expect("cursor").as_deref(),
        Some("c1"),
        "the cursor did not move"
    );
    assert_eq!(
        store
            .rollup("acme", "lost_time_minutes", 1, None)
            .expect("rollup")
            .count,
        1
    );
    assert_eq!(
        commit(
            &store,
            &[obs("r4", "lost_time_minutes", 1.0, DAY, &[("service", "new")])],
            None
        )
        .inserted,
        1
    );
}

#[test]
fn foreign_and_future_directories_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("notes.txt"), "mine").expect("write");
    let error = Store::open(dir.path()).err().expect("refused");
    assert!(matches!(error, StoreError::Foreign { .. }), "{error}");

    let path = dir.path().join("future");
    {
        let db = sled::open(&path).expect("sled");
        db.insert(keys::FORMAT, &99u32.to_be_bytes()).expect("insert");
        db.flush().expect("flush");
    }
    let error = Store::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Version { found: 99, .. }), "{error}");

    let file = dir.path().join("file");
    std::fs::write(&file, "x").expect("write");
    assert!(matches!(Store::open(&file), Err(StoreError::Foreign { .. })));
}

#[test]
fn the_store_reopens_with_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    {
        let store = Store::open(&path).expect("open");
        commit(
            &store,
            &[obs("r1", "happiness_rating", 7.0, DAY, &[("service", "Email")])],
            Some("c9"),
        );
    }
    let store = Store::open(&path).expect("reopen");
    assert_eq!(store.cursor("acme", "sn").expect("cursor").as_deref(), Some("c9"));
    assert_eq!(
        commit(
            &store,
            &[obs("r2", "happiness_rating", 8.0, DAY, &[("service", "Email")])],
            None
        )
        .inserted,
        1
    );
    assert_eq!(
        store
            .rollup("acme", "happiness_rating", 1, Some(("service", "Email")))
            .expect("rollup")
            .count,
        2
    );
}

#[test]
fn a_subject_is_seen_across_metrics_and_sources() {
    let (_dir, store) = open();
    let ticket = [("ticket", "INC0012345")];
    commit(
        &store,
        &[
            obs("resp-1", "happiness_rating", 4.0, 2 * DAY, &ticket),
            obs("other", "happiness_rating", 9.0, DAY, &[("ticket", "INC9")]),
        ],
        None,
    );
    store
        .commit(CommitBatch {
            tenant: "acme",
            source: "servicenow",
            provenance: &provenance(7),
            observations: &[
                obs("sys1", "reassignment_count", 3.0, DAY, &ticket),
                obs("sys1", "sla_breached", 0.0, DAY, &ticket),
            ],
            cursor: None,
        })
        .expect("commit");
    let seen = store.subject("acme", "ticket", "INC0012345").expect("subject");
    let metrics: Vec<&str> = seen.iter().map(|s| s.observation.metric.as_str()).collect();
    assert_eq!(metrics, ["reassignment_count", "sla_breached", "happiness_rating"]);
    assert_eq!(seen[2].source, "sn");
    // A replace moves the ticket: the old subject entry goes with it.
    commit(
        &store,
        &[obs(
            "resp-1",
            "happiness_rating",
            8.0,
            2 * DAY,
            &[("ticket", "INC0099999")],
        )],
        None,
    );
    assert_eq!(store.subject("acme", "ticket", "INC0012345").expect("subject").len(), 2);
    assert_eq!(
        store.subject("acme", "ticket", "INC0099999").expect("subject")[0]
            .observation
            .value,
        8.0
    );
}

#[test]
fn retention_drops_rows_keeps_rollups_and_later_replaces_stay_exact() {
    let (_dir, store) = open();
    let day = |d: i64, id: &str, v: f64| {
        obs(
            id,
            "happiness_rating",
            v,
            d * DAY,
            &[("service", "Email"), ("ticket", id)],
        )
    };
    commit(&store, &[day(1, "a", 3.0), day(1, "b", 9.0), day(5, "c", 10.0)], None);
    let query = SeriesQuery {
        tenant: "acme".into(),
        metric: "happiness_rating".into(),
        from: 0,
        to: 10 * DAY,
        bucket: Bucket::Month,
        filter: None,
        group_by: Some("service".into()),
        aggregation: Aggregation::Happiness,
    };
    let before = store.series(&query).expect("series");
    assert_eq!(store.retire_before("acme", 3 * DAY).expect("retention").dropped, 2);
    assert_eq!(store.series(&query).expect("series"), before, "reports are unchanged");
    assert_eq!(
        store
            .observations("acme", "happiness_rating", 0, 10 * DAY)
            .expect("rows")
            .len(),
        1
    );
    assert!(store.subject("acme", "ticket", "a").expect("subject").is_empty());

    // The source re-rates a retired response: the old 3 leaves the rollups.
    assert_eq!(commit(&store, &[day(1, "a", 9.0)], None).replaced, 1);
    let cell = store.rollup("acme", "happiness_rating", 1, None).expect("rollup");
    assert_eq!((cell.count, cell.sum), (2, 18.0));
    assert_eq!(cell.histogram.expect("rating")[3], 0);
    // A replay of the retired record changes nothing.
    assert_eq!(commit(&store, &[day(1, "b", 9.0)], None).unchanged, 1);
}

#[test]
fn breakdowns_rank_groups_with_pareto_shares() {
    let (_dir, store) = open();
    let lost = |id: &str, minutes: f64, group: &str| {
        obs(id, "lost_time_minutes", minutes, DAY, &[("assignment_group", group)])
    };
    commit(
        &store,
        &[
            lost("a", 600.0, "Network"),
            lost("b", 200.0, "Network"),
            lost("c", 150.0, "Desk"),
            lost("d", 50.0, "Field"),
        ],
        None,
    );
    let breakdown = store
        .breakdown("acme", "lost_time_minutes", 0, 10 * DAY, "assignment_group", false, 2)
        .expect("breakdown");
    assert_eq!(
        (breakdown.total, breakdown.groups, breakdown.groups_for_80_percent),
        (1000.0, 3, 1)
    );
    assert_eq!(breakdown.rows.len(), 2);
    assert_eq!(
        (breakdown.rows[0].group.as_str(), breakdown.rows[0].share),
        ("Network", 0.8)
    );
    assert_eq!(
        (breakdown.rows[1].group.as_str(), breakdown.rows[1].cumulative_share),
        ("Desk", 0.95)
    );
}

/// The same query computed from raw rows.
fn model_series(rows: &HashMap<(String, String), Observation>, q: &SeriesQuery) -> Vec<SeriesPoint> {
    let mut groups: BTreeMap<(i64, Option<String>), Vec<f64>> = BTreeMap::new();
    for o in rows.values() {
        if o.metric != q.metric || o.at < q.from || o.at >= q.to {
            continue;
        }
        let dim = |k: &str| o.dimensions.iter().find(|(dk, _)| dk == k).map(|(_, v)| v.clone());
        if let Some((k, v)) = &q.filter
            && dim(k).as_ref() != Some(v)
        {
            continue;
        }
        let group = match &q.group_by {
            Some(g) => match dim(g) {
                Some(v) => Some(v),
                None => continue,
            },
            None => None,
        };
        groups
            .entry((bucket_start(o.at, q.bucket), group))
            .or_default()
            .push(o.value);
    }
    groups
        .into_iter()
        .map(|((bucket_start, group), values)| {
            let mut rollup = Rollup::default();
            for v in &values {
                rollup.add(*v, is_rating(&q.metric));
            }
            // Independent of the rollup for the exact aggregations.
            let n = values.len() as f64;
            let value = match q.aggregation {
                Aggregation::Count => Some(n),
                Aggregation::Sum => Some(values.iter().sum()),
                Aggregation::Avg => Some(values.iter().sum::<f64>() / n),
                Aggregation::Min => values.iter().copied().reduce(f64::min),
                Aggregation::Max => values.iter().copied().reduce(f64::max),
                Aggregation::Happiness => {
                    let pos = values.iter().filter(|v| **v >= 9.0).count() as f64;
                    let neg = values.iter().filter(|v| **v <= 6.0).count() as f64;
                    Some(100.0 * (pos - neg) / n)
                }
                Aggregation::ShareTrue => Some(100.0 * values.iter().sum::<f64>() / n),
                Aggregation::P50 | Aggregation::P90 => evaluate(&rollup, q.aggregation),
            };
            SeriesPoint {
                bucket_start,
                group,
                value,
                count: values.len() as u64,
            }
        })
        .collect()
}

fn close(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-6 * (1.0 + a.abs().max(b.abs())),
        (None, None) => true,
        _ => false,
    }
}

/// The dimensions that get rollup cells, sorted.
fn rolled(o: &Observation) -> Vec<(String, String)> {
    let mut dims: Vec<(String, String)> = o.dimensions.iter().filter(|(k, _)| k != "ticket").cloned().collect();
    dims.sort();
    dims
}

/// A query shape: a filter and a group-by.
type Shape = (Option<(&'static str, &'static str)>, Option<&'static str>);

fn arb_observation() -> impl Strategy<Value = Observation> {
    (0u8..12, 0u8..2, 0i64..40, 0u8..11, 0u8..3, 0u8..3).prop_map(|(id, metric, hour, value, service, group)| {
        let metric = ["happiness_rating", "resolution_hours"][metric as usize];
        let services = ["Email", "VPN", "Laptop"];
        let groups = ["Desk", "Network", "Field"];
        let mut dims = vec![("service".to_string(), services[service as usize].to_string())];
        if group < 2 {
            dims.push(("assignment_group".to_string(), groups[group as usize].to_string()));
        }
        // A per-subject dimension: kept inline, indexed as a subject, no cells.
        dims.push(("ticket".to_string(), format!("INC{}", (id + value) % 4)));
        Observation {
            id: format!("r{id}"),
            metric: metric.into(),
            layer: Layer::Experience,
            value: f64::from(value),
            at: 3 * DAY + hour * 3_600_000 * 5,
            dimensions: dims,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn rollup_queries_equal_raw_queries(
        batches in prop::collection::vec(prop::collection::vec(arb_observation(), 1..12), 1..6),
        retire in prop::option::of((0usize..6, 0i64..9)),
        reopen in prop::option::of(0usize..6),
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("db");
        let mut store = Store::open(&path).expect("open");
        let mut model: HashMap<(String, String), Observation> = HashMap::new();
        // Whether each record's raw row is still there (retention drops them).
        let mut visible: HashMap<(String, String), bool> = HashMap::new();
        let mut retired = false;
        for (i, batch) in batches.iter().enumerate() {
            if let Some((after, days)) = retire
                && after == i
            {
                store.retire_before("acme", days * DAY).expect("retention");
                retired = true;
                for (key, o) in &model {
                    if o.at < days * DAY {
                        visible.insert(key.clone(), false);
                    }
                }
            }
            // The in-memory index is rebuilt from disk: it must come back the same.
            if reopen == Some(i) {
                drop(store);
                store = Store::open(&path).expect("reopen");
            }
            commit(&store, batch, None);
            for o in batch {
                let key = (o.id.clone(), o.metric.clone());
                // A retired row keeps only what the rollups need: a record
                // equal in that is a replay and stays retired.
                let replay = match (model.get(&key), visible.get(&key)) {
                    (Some(old), Some(true)) => old == o,
                    (Some(old), _) => old.at / DAY == o.at / DAY && old.value == o.value && rolled(old) == rolled(o),
                    (None, _) => false,
                };
                if !replay {
                    visible.insert(key.clone(), true);
                }
                model.insert(key, o.clone());
            }
        }
        let aggregations = [Aggregation::Count, Aggregation::Sum, Aggregation::Avg, Aggregation::Min, Aggregation::Max, Aggregation::P50, Aggregation::P90, Aggregation::Happiness];
        let shapes: [Shape; 6] = [
            (None, None),
            (Some(("service", "Email")), None),
            (None, Some("assignment_group")),
            (Some(("service", "VPN")), Some("assignment_group")),
            (Some(("assignment_group", "Desk")), Some("assignment_group")),
            (Some(("service", "Email")), Some("ticket")),
        ];
        for metric in ["happiness_rating", "resolution_hours"] {
            for bucket in [Bucket::Day, Bucket::Week, Bucket::Month, Bucket::Quarter] {
                for (filter, group_by) in shapes {
                    for aggregation in aggregations {
                        if aggregation == Aggregation::Happiness && metric != "happiness_rating" {
                            continue;
                        }
                        // Retired days keep min and max as they were (their rows are gone).
                        if retired && matches!(aggregation, Aggregation::Min | Aggregation::Max) {
                            continue;
                        }
                        let q = SeriesQuery {
                            tenant: "acme".into(),
                            metric: metric.into(),
                            from: 0,
                            to: 30 * DAY,
                            bucket,
                            filter: filter.map(|(k, v)| (k.to_string(), v.to_string())),
                            group_by: group_by.map(str::to_string),
                            aggregation,
                        };
                        let got = match store.series(&q) {
                            Err(StoreError::RetiredRows { .. }) if retired => continue,
                            other => other.expect("series"),
                        };
                        let want = model_series(&model, &q);
                        prop_assert_eq!(got.len(), want.len(), "{:?}", q);
                        for (g, w) in got.iter().zip(&want) {
                            prop_assert_eq!((g.bucket_start, &g.group, g.count), (w.bucket_start, &w.group, w.count), "{:?}", q);
                            prop_assert!(close(g.value, w.value), "{:?}: {:?} vs {:?}", q, g.value, w.value);
                        }
                    }
                }
            }
        }
        // Raw rows and subjects equal the model's, live rows only (retired days have none).
        let live = |o: &Observation| visible[&(o.id.clone(), o.metric.clone())];
        let mut want: Vec<(i64, String, String, u64)> = model
            .values()
            .filter(|o| live(o))
            .map(|o| (o.at, o.id.clone(), o.metric.clone(), o.value.to_bits()))
            .collect();
        want.sort();
        let mut got: Vec<(i64, String, String, u64)> = ["happiness_rating", "resolution_hours"]
            .iter()
            .flat_map(|m| store.observations("acme", m, 0, 30 * DAY).expect("rows"))
            .map(|s| (s.observation.at, s.observation.id, s.observation.metric, s.observation.value.to_bits()))
            .collect();
        got.sort();
        prop_assert_eq!(&got, &want);
        for ticket in ["INC0", "INC1", "INC2", "INC3"] {
            let mut want: Vec<(String, String)> = model
                .values()
                .filter(|o| live(o) && o.dimensions.iter().any(|(k, v)| k == "ticket" && v == ticket))
                .map(|o| (o.id.clone(), o.metric.clone()))
                .collect();
            want.sort();
            let mut got: Vec<(String, String)> = store
                .subject("acme", "ticket", ticket)
                .expect("subject")
                .into_iter()
                .map(|s| (s.observation.id, s.observation.metric))
                .collect();
            got.sort();
            prop_assert_eq!(got, want, "subject {}", ticket);
        }
    }
}

#[test]
fn a_query_that_needs_retired_rows_says_so() {
    let (_dir, store) = open();
    let row = |id: &str, d: i64| {
        obs(
            id,
            "resolution_hours",
            4.0,
            d * DAY,
            &[("service", "VPN"), ("assignment_group", "Desk")],
        )
    };
    commit(&store, &[row("a", 1), row("b", 5)], None);
    store.retire_before("acme", 3 * DAY).expect("retention");
    let series = store.series(&SeriesQuery {
        tenant: "acme".into(),
        metric: "resolution_hours".into(),
        from: 0,
        to: 10 * DAY,
        bucket: Bucket::Month,
        filter: Some(("service".into(), "VPN".into())),
        group_by: Some("assignment_group".into()),
        aggregation: Aggregation::Count,
    });
    assert!(matches!(series, Err(StoreError::RetiredRows { .. })), "{series:?}");
}

#[test]
fn a_replaced_row_stays_replaced_after_reopen_and_blocks_compact() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let row = |id: &str, v: f64, day: i64| {
        obs(
            id,
            "lost_time_minutes",
            v,
            day * DAY,
            &[("service", "VPN"), ("ticket", id)],
        )
    };
    {
        let store = Store::open(&path).expect("open");
        // One block of three rows on day 5; then r1 moves to day 2, leaving a
        // stale row behind in a block that still has live rows.
        commit(
            &store,
            &[row("r1", 10.0, 5), row("r2", 20.0, 5), row("r3", 30.0, 5)],
            None,
        );
        assert_eq!(commit(&store, &[row("r1", 11.0, 2)], None).replaced, 1);
    }
    let store = Store::open(&path).expect("reopen");
    let rows = store
        .observations("acme", "lost_time_minutes", 0, 10 * DAY)
        .expect("rows");
    let seen: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.observation.id.as_str(), r.observation.value))
        .collect();
    assert_eq!(
        seen,
        [("r1", 11.0), ("r2", 20.0), ("r3", 30.0)],
        "the newer row wins after reopen"
    );
    assert_eq!(store.subject("acme", "ticket", "r1").expect("subject").len(), 1);
    // A replay after reopen is a replay, and a change retracts the right row.
    assert_eq!(commit(&store, &[row("r1", 11.0, 2)], None).unchanged, 1);
    assert_eq!(commit(&store, &[row("r2", 25.0, 5)], None).replaced, 1);
    let day5 = store.rollup("acme", "lost_time_minutes", 5, None).expect("rollup");
    assert_eq!(
        (day5.count, day5.sum, day5.min, day5.max),
        (2, 55.0, 25.0, 30.0),
        "20 left, min recomputed"
    );
    let day5 = store
        .rollup("acme", "lost_time_minutes", 5, Some(("service", "VPN")))
        .expect("rollup");
    assert_eq!((day5.count, day5.sum, day5.min), (2, 55.0, 25.0));
    // Two of three rows left the first block: it was compacted, and what is
    // left reads back the same after another reopen.
    drop(store);
    let store = Store::open(&path).expect("reopen");
    let rows = store
        .observations("acme", "lost_time_minutes", 0, 10 * DAY)
        .expect("rows");
    let seen: Vec<(&str, f64)> = rows
        .iter()
        .map(|r| (r.observation.id.as_str(), r.observation.value))
        .collect();
    assert_eq!(seen, [("r1", 11.0), ("r2", 25.0), ("r3", 30.0)]);
}

#[test]
fn a_store_open_elsewhere_is_refused_by_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("db");
    let _first = Store::open(&path).expect("open");
    let error = Store::open(&path).err().expect("refused");
    assert!(matches!(error, StoreError::Locked { .. }), "{error}");
    assert!(error.to_string().contains("in use by another process"), "{error}");
}
