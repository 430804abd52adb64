//! The write-time ticket join under two hosts committing at once: one host
//! writes tickets (reassigned every round), the other their survey answers
//! and SLA records (replaced every round), interleaved on the same ticket
//! numbers. No commit fails (no deadlock), and the join kept incrementally
//! equals the join built again from the stored rows, and the grouping from
//! raw rows.

use xla_store::{CommitBatch, GroupThrough, JOIN_KEY, JOIN_OPENING, JOIN_VIA, Store};
use xla_store_pg::{PgStore, testing};
use xla_types::{Layer, Observation};

const DAY: i64 = 86_400_000;
const NUMBERS: usize = 120;
const ROUNDS: usize = 8;
const GROUPS: [&str; 3] = ["Network", "Desk", "Workplace"];

fn row(id: &str, metric: &str, value: f64, at: i64, dims: &[(&str, &str)]) -> Observation {
    Observation {
        id: id.into(),
        metric: metric.into(),
        layer: Layer::Operational,
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
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect");
    tokio::spawn(connection);
    client
        .batch_execute(
            "DROP TABLE joined_values, joined_tickets, outcome_cells; DELETE FROM xla_schema WHERE version >= 3",
        )
        .await
        .expect("forget the join");
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
