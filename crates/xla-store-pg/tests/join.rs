//! The write-time ticket join: built from the stored rows when a database
//! written before it is upgraded; and under two hosts committing at once
//! (one writes tickets, reassigned every round, the other their survey
//! answers and SLA records, replaced every round, on the same ticket
//! numbers), no commit fails (no deadlock), and the join kept incrementally
//! equals the join built again from the stored rows, and the grouping from
//! raw rows.

use xla_store::{CommitBatch, GroupThrough, JOIN_KEY, JOIN_OPENING, JOIN_VIA, Store};
use xla_store_pg::{PgStore, testing};
use xla_types::{Layer, Observation};

const DAY: i64 = 86_400_000;
const NUMBERS: usize = 120;
const ROUNDS: usize = 8;
const GROUPS: [&str; 3] = ["Network", "Desk", "Workplace"];

/// A row of `metric` dated `at`, of record `id`.
fn row(id: &str, metric: &str, value: f64, at: i64, dims: &[(&str, &str)]) -> Observation {
    Observation {
        id: id.into(),
        metric: metric.into(),
        layer: if metric == "happiness_rating" {
            Layer::Experience
        } else {
            Layer::Operational
        },
        value,
        at,
        dimensions: dims.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
    }
}

/// Round `round`'s tickets: each number's group moves on every round.
fn tickets(round: usize) -> Vec<Observation> {
    let mut rows = Vec::new();
    for i in 0..NUMBERS {
        let number = format!("INC{i:04}");
        let group = GROUPS[(i + round) % GROUPS.len()];
        let dims = [
            ("ticket", number.as_str()),
            ("ticket_type", "incident"),
            ("assignment_group", group),
        ];
        let resolved = DAY + (i as i64) * 60_000;
        rows.push(row(&format!("t{i}"), JOIN_VIA, 1.0, resolved, &dims));
        rows.push(row(&format!("t{i}"), JOIN_OPENING, 1.0, resolved, &dims));
    }
    rows
}

/// Round `round`'s answers: a rating (its value moves every round) and an
/// SLA record per number; every fifth number's answers name no ticket.
fn answers(round: usize) -> Vec<Observation> {
    let mut rows = Vec::new();
    for i in 0..NUMBERS {
        let number = format!("INC{i:04}");
        let at = 2 * DAY + (i as i64) * 60_000;
        let named: Vec<(&str, &str)> = if i % 5 == 0 {
            vec![]
        } else {
            vec![("ticket", number.as_str())]
        };
        let mut rating = row(
            &format!("r{i}"),
            "happiness_rating",
            ((i + round) % 11) as f64,
            at,
            &named,
        );
        rating.layer = Layer::Experience;
        rows.push(rating);
        rows.push(row(
            &format!("s{i}"),
            "sla_breached",
            ((i + round) % 2) as f64,
            at,
            &named,
        ));
    }
    rows
}

async fn commit(store: &PgStore, source: &str, observations: Vec<Observation>) {
    store
        .commit(CommitBatch {
            tenant: "acme".into(),
            source: source.into(),
            observations,
            ..Default::default()
        })
        .await
        .expect("a commit neither fails nor deadlocks");
}

fn query(metric: &str, from_rows: bool) -> GroupThrough {
    GroupThrough {
        tenant: "acme".into(),
        key: JOIN_KEY.into(),
        metric: metric.into(),
        group_by: "assignment_group".into(),
        via: vec![JOIN_VIA.into()],
        opening: Some(JOIN_OPENING.into()),
        from: 0,
        to: 10 * DAY,
        filter: None,
        from_rows,
    }
}

/// Makes the database at `url` one of schema version 2, written before the
/// join was kept: the next host to connect builds it from the stored rows.
async fn forget_join(url: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE joined_values, joined_tickets, outcome_cells; DELETE FROM xla_schema WHERE version >= 3",
        )
        .await
        .expect("forget the join");
}

/// Each group's (count, sum, min, max) and the unmatched count.
async fn summary(store: &PgStore, metric: &str, from_rows: bool) -> (Vec<(String, u64, f64, f64, f64)>, u64) {
    let grouped = store.grouped_through(&query(metric, from_rows)).await.expect("grouped");
    let groups = grouped
        .groups
        .iter()
        .map(|(g, r)| (g.clone(), r.count, r.sum, r.min, r.max))
        .collect();
    (groups, grouped.unmatched.count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_writing_tickets_and_answers_at_once_keep_the_join_exact() {
    let url = testing::shared().create_database().await.expect("a database");
    let (first, second) = (
        PgStore::connect(&url).await.expect("first host"),
        PgStore::connect(&url).await.expect("second host"),
    );
    let writes_tickets = async {
        for round in 0..ROUNDS {
            commit(&first, "sn", tickets(round)).await;
        }
    };
    let writes_answers = async {
        for round in 0..ROUNDS {
            commit(&second, "hs", answers(round)).await;
        }
    };
    tokio::join!(writes_tickets, writes_answers);

    let metrics = ["happiness_rating", "sla_breached"];
    let mut kept = Vec::new();
    for metric in metrics {
        let joined = summary(&first, metric, false).await;
        assert_eq!(
            joined,
            summary(&first, metric, true).await,
            "{metric}: joined = raw rows"
        );
        assert_eq!(joined.1, (NUMBERS / 5) as u64, "{metric}: the answers naming no ticket");
        kept.push(joined);
    }
    let outcomes = first
        .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
        .await
        .expect("outcomes");
    let judged = outcomes
        .as_ref()
        .and_then(|o| o.get(&None))
        .expect("the window's tickets");
    assert_eq!(judged.sla_tickets, (NUMBERS - NUMBERS / 5) as u64);

    // The join built again from the stored rows says the same.
    drop((first, second));
    forget_join(&url).await;
    let rebuilt = PgStore::connect(&url).await.expect("rebuild");
    for (metric, kept) in metrics.into_iter().zip(kept) {
        assert_eq!(summary(&rebuilt, metric, false).await, kept, "{metric}: rebuilt = kept");
    }
    assert_eq!(
        rebuilt
            .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
            .await
            .expect("outcomes"),
        outcomes
    );
}

/// A database migrated before the write-time ticket join (schema version
/// 2) has the join built from its rows when a host upgrades it: grouping
/// through tickets and the ticket outcomes answer as they did before.
#[tokio::test]
async fn an_upgrade_builds_the_ticket_join_from_stored_rows() {
    let url = testing::shared().create_database().await.expect("a database");
    let store = PgStore::connect(&url).await.expect("connect");
    let ticket = |id: &str, number: &str, group: &str| {
        let dims = [
            ("ticket", number),
            ("ticket_type", "incident"),
            ("assignment_group", group),
        ];
        vec![
            row(id, JOIN_VIA, 1.0, DAY + 5_000_000, &dims),
            row(id, JOIN_OPENING, 2.0, DAY + 5_000_000, &dims),
            row(id, "sla_breached", 0.0, DAY + 5_000_000, &[("ticket", number)]),
        ]
    };
    let mut rows = ticket("t1", "INC1", "Network");
    rows.extend(ticket("t2", "INC2", "Desk"));
    let answers = vec![
        row("a1", "happiness_rating", 3.0, DAY + 6_000_000, &[("ticket", "INC1")]),
        row("a2", "happiness_rating", 9.0, DAY + 7_000_000, &[("ticket", "INC2")]),
        row("a3", "happiness_rating", 7.0, DAY + 7_000_000, &[("ticket", "INC9")]),
        row("a4", "happiness_rating", 1.0, DAY + 7_000_000, &[]),
    ];
    commit(&store, "sn", rows).await;
    commit(&store, "hs", answers).await;
    let query = query("happiness_rating", false);
    let grouped = store.grouped_through(&query).await.expect("grouped");
    let outcomes = store
        .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
        .await
        .expect("outcomes")
        .expect("tickets name their group");
    assert_eq!(grouped.groups.len(), 2, "{grouped:?}");
    assert_eq!(grouped.unmatched.count, 2, "INC9 has no ticket, a4 names none");
    assert_eq!(outcomes[&None].sla_tickets, 2);
    assert_eq!(outcomes[&None].watermelons, 1, "INC1: SLA met, rated 3");
    drop(store);

    // As a version-2 database: no join kept.
    forget_join(&url).await;
    let upgraded = PgStore::connect(&url).await.expect("upgrade");
    assert_eq!(upgraded.grouped_through(&query).await.expect("grouped"), grouped);
    assert_eq!(
        upgraded
            .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
            .await
            .expect("outcomes"),
        Some(outcomes)
    );
}
