//! What the PostgreSQL store does where PostgreSQL itself differs from
//! sled: text it cannot keep, dimension pairs matched as pairs (not as JSON
//! sets), and a scorecard slice no ticket names.

use xla_store::{Aggregation, Bucket, CommitBatch, SeriesQuery, Store, StoreError};
use xla_store_pg::{PgStore, testing};
use xla_types::{Layer, Observation};

const DAY: i64 = 86_400_000;

async fn fresh() -> PgStore {
    let url = testing::shared().create_database().await.expect("a database");
    PgStore::connect(&url).await.expect("connect")
}

fn obs(id: &str, metric: &str, layer: Layer, at: i64, dims: &[(&str, &str)]) -> Observation {
    Observation {
        id: id.into(),
        metric: metric.into(),
        layer,
        value: 1.0,
        at,
        dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

async fn commit(store: &PgStore, observations: Vec<Observation>) -> Result<(), StoreError> {
    store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: "sn".into(),
            observations,
            ..Default::default()
        })
        .await
        .map(drop)
}

#[tokio::test]
async fn a_nul_character_is_refused_by_name_and_nothing_is_stored() {
    let store = fresh().await;
    let good = obs(
        "INC1",
        "resolution_hours",
        Layer::Operational,
        DAY,
        &[("service", "VPN")],
    );
    let bad = obs(
        "INC2",
        "resolution_hours",
        Layer::Operational,
        DAY,
        &[("service", "V\0PN")],
    );
    let error = commit(&store, vec![good, bad]).await.expect_err("refused");
    assert!(
        matches!(&error, StoreError::BadObservation { id, .. } if id == "INC2"),
        "{error}"
    );
    assert!(error.to_string().contains("NUL"), "{error}");
    let rows = store
        .observations("acme", "resolution_hours", 0, 10 * DAY)
        .await
        .expect("rows");
    assert!(rows.is_empty(), "nothing of the batch: {rows:?}");
}

#[tokio::test]
async fn a_dimension_filter_matches_key_and_value_as_a_pair() {
    let store = fresh().await;
    commit(
        &store,
        vec![
            obs(
                "a",
                "lost_time_minutes",
                Layer::Experience,
                DAY,
                &[("service", "VPN"), ("ticket", "INC1")],
            ),
            // Key and value the other way round: not `service = VPN`.
            obs(
                "b",
                "lost_time_minutes",
                Layer::Experience,
                DAY,
                &[("VPN", "service"), ("ticket", "INC2")],
            ),
        ],
    )
    .await
    .expect("commit");
    // A filter and a group-by on a per-subject dimension: read from rows.
    let query = SeriesQuery {
        tenant: "acme".into(),
        metric: "lost_time_minutes".into(),
        from: 0,
        to: 10 * DAY,
        bucket: Bucket::Month,
        filter: Some(("service".into(), "VPN".into())),
        group_by: Some("ticket".into()),
        aggregation: Aggregation::Count,
    };
    let series = store.series(&query).await.expect("series");
    let groups: Vec<(Option<String>, u64)> = series.into_iter().map(|p| (p.group, p.count)).collect();
    assert_eq!(groups, [(Some("INC1".to_string()), 1)]);
}

#[tokio::test]
async fn a_scorecard_slice_no_ticket_names_is_left_to_per_ticket_rows() {
    let store = fresh().await;
    let ticket = |id: &str, metric: &str| {
        obs(
            id,
            metric,
            Layer::Operational,
            DAY,
            &[("ticket", "INC1"), ("assignment_group", "Desk")],
        )
    };
    let mut answer = obs(
        "r1",
        "happiness_rating",
        Layer::Experience,
        DAY + 1,
        &[("ticket", "INC1"), ("region", "EMEA")],
    );
    answer.value = 9.0;
    commit(&store, vec![ticket("t1", "ticket_resolved"), answer])
        .await
        .expect("commit");
    let by_group = store
        .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
        .await
        .expect("outcomes")
        .expect("tickets name their group");
    assert_eq!(by_group[&Some("Desk".to_string())].rated(), 1);
    let by_region = store
        .ticket_outcomes("acme", Some("region"), 0, 10 * DAY)
        .await
        .expect("outcomes");
    assert_eq!(by_region, None, "only the answers name a region");
}
