//! Conformance of the ticket join: values grouped through their tickets
//! from the store's joined rollups equal the same grouping from raw rows
//! (and from a model of the rule), through late tickets, reassignments,
//! replaces, retractions, retention and reopening.

use super::{Backend, DAY, block_on, fresh, obs};
use crate::{
    AnswerFacts, CommitBatch, GroupThrough, GroupedThrough, Retracted, Rollup, Store, StoreError, TicketCandidate,
    TicketFacts, Unjoined, pick_ticket,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use std::collections::BTreeMap;
use xla_types::{Layer, Observation};

const HOUR: i64 = 3_600_000;

/// A ticket as the ServiceNow connector stores it: `ticket_resolved` and
/// `resolution_hours` of one record at its resolution.
fn ticket(id: &str, number: &str, group: &str, kind: &str, resolved: i64, hours: f64) -> Vec<Observation> {
    let dims = [
        ("ticket", number),
        ("ticket_type", kind),
        ("assignment_group", group),
        ("service", "VPN"),
    ];
    let mut rows = vec![
        obs(id, "ticket_resolved", 1.0, resolved, &dims),
        obs(id, "resolution_hours", hours, resolved, &dims),
    ];
    for row in &mut rows {
        row.layer = Layer::Operational;
    }
    rows
}

/// A survey answer naming a ticket (or none); an SLA record (ServiceNow's
/// `task_sla`) names no ticket type.
fn answer(id: &str, metric: &str, number: Option<&str>, kind: &str, at: i64, value: f64) -> Observation {
    let mut dims = Vec::new();
    if metric != "sla_breached" {
        dims.push(("ticket_type", kind));
    }
    dims.extend(number.map(|n| ("ticket", n)));
    obs(id, metric, value, at, &dims)
}

fn query(metric: &str, group_by: &str, from: i64, to: i64, from_rows: bool) -> GroupThrough {
    GroupThrough {
        tenant: "acme".into(),
        key: crate::JOIN_KEY.into(),
        metric: metric.into(),
        group_by: group_by.into(),
        via: vec![crate::JOIN_VIA.into()],
        opening: Some(crate::JOIN_OPENING.into()),
        from,
        to,
        filter: None,
        from_rows,
    }
}

async fn send(store: &dyn Store, source: &str, rows: &[Observation], whole: &[&str], retracted: &[Retracted]) {
    store
        .commit(CommitBatch {
            retracted_records: whole.iter().map(|s| s.to_string()).collect(),
            retractions: retracted.to_vec(),
            ..super::batch("acme", source, 1, rows, None)
        })
        .await
        .expect("commit");
}

/// Each group's (name, count, sum, min, max), and the unmatched count.
type Summary = (Vec<(String, u64, f64, f64, f64)>, u64);

/// The [`Summary`] of a grouping.
fn summary(grouped: &GroupedThrough) -> Summary {
    let groups = grouped
        .groups
        .iter()
        .filter(|(_, r)| r.count > 0)
        .map(|(g, r)| (g.clone(), r.count, r.sum, r.min, r.max))
        .collect();
    (groups, grouped.unmatched.count)
}

async fn grouped(store: &dyn Store, metric: &str, group_by: &str, from_rows: bool) -> GroupedThrough {
    store
        .grouped_through(&query(metric, group_by, 0, 10 * DAY, from_rows))
        .await
        .expect("grouped")
}

/// The grouping by assignment group from joined rollups, checked against
/// the same from raw rows.
async fn both_paths(store: &dyn Store, metric: &str) -> Summary {
    let joined = summary(&grouped(store, metric, "assignment_group", false).await);
    let raw = summary(&grouped(store, metric, "assignment_group", true).await);
    assert_eq!(joined, raw, "joined rollups and raw rows agree");
    joined
}

/// Two ratings of one ticket given in the same millisecond: the lower is
/// its rating, whichever arrived first and whatever their record ids, and
/// a rating given later takes its place.
pub fn a_tickets_ratings_in_one_millisecond_count_the_lower<B: Backend>(backend: &B) {
    block_on(async {
        let (place, store) = fresh(backend).await;
        let at = 2 * DAY;
        let mut tickets = Vec::new();
        for n in 1..=4 {
            tickets.extend(ticket(
                &format!("t{n}"),
                &format!("INC{n}"),
                "Network",
                "incident",
                DAY,
                5.0,
            ));
        }
        send(&*store, "sn", &tickets, &[], &[]).await;
        // Each ticket's two answers sent one at a time, the 9 first on two
        // tickets and the 3 first on the others, ids in either order.
        for (id, number, value) in [
            ("a1", "INC1", 9.0),
            ("a2", "INC1", 3.0),
            ("a4", "INC2", 3.0),
            ("a3", "INC2", 9.0),
            ("b2", "INC3", 9.0),
            ("b1", "INC3", 3.0),
            ("b3", "INC4", 3.0),
            ("b4", "INC4", 9.0),
        ] {
            let row = answer(id, "happiness_rating", Some(number), "incident", at, value);
            send(&*store, "hs", &[row], &[], &[]).await;
        }
        let ratings =
            |outcomes: Option<crate::OutcomesBySlice>| outcomes.expect("this backend keeps outcomes")[&None].ratings;
        let outcomes = store
            .ticket_outcomes("acme", None, 0, 10 * DAY)
            .await
            .expect("outcomes");
        let mut want = [0; 11];
        want[3] = 4;
        assert_eq!(ratings(outcomes), want, "every ticket rated 3");
        drop(store);
        let store = backend.open(&place).await.expect("reopen");
        let later = answer("a5", "happiness_rating", Some("INC1"), "incident", at + 1, 10.0);
        send(&*store, "hs", &[later], &[], &[]).await;
        let outcomes = store
            .ticket_outcomes("acme", None, 0, 10 * DAY)
            .await
            .expect("outcomes");
        (want[3], want[10]) = (3, 1);
        assert_eq!(ratings(outcomes), want, "INC1 rated 10 a millisecond later");
    });
}

/// Answers that arrive before their ticket, a ticket reassigned, an answer
/// replaced, a ticket retracted: the joined groups follow each change, as
/// the same grouping from raw rows does; retention leaves them answering,
/// and a ticket resolved long before the window still takes its answers.
pub fn joined_groups_follow_late_tickets_reassignments_and_retractions<B: Backend>(backend: &B) {
    block_on(async {
        let (place, store) = fresh(backend).await;
        let rating = "happiness_rating";
        let answers = [
            answer("a1", rating, Some("INC1"), "incident", DAY + 10 * HOUR, 3.0),
            answer("a2", rating, Some("INC1"), "incident", DAY + 11 * HOUR, 9.0),
            answer("a3", rating, Some("INC2"), "incident", 2 * DAY, 10.0),
            answer("a4", rating, None, "incident", 2 * DAY, 0.0),
        ];
        send(&*store, "hs", &answers, &[], &[]).await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (vec![], 4),
            "no ticket yet: all unmatched"
        );
        let joined = grouped(&*store, rating, "assignment_group", false).await;
        let reasons: Vec<&Unjoined> = joined.unmatched.examples.iter().map(|u| &u.reason).collect();
        assert_eq!(reasons.len(), 4);
        assert!(reasons.contains(&&Unjoined::NoTicketNumber) && reasons.contains(&&Unjoined::NoTicket));

        // The tickets arrive late: the answers move into their groups.
        let mut tickets = ticket("t1", "INC1", "Network", "incident", DAY + 8 * HOUR, 20.0);
        tickets.extend(ticket("t2", "INC2", "Desk", "incident", DAY, 5.0));
        send(&*store, "sn", &tickets, &[], &[]).await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (
                vec![
                    ("Desk".into(), 1, 10.0, 10.0, 10.0),
                    ("Network".into(), 2, 12.0, 3.0, 9.0)
                ],
                1
            )
        );
        let by_service = summary(&grouped(&*store, rating, "service", false).await);
        assert_eq!(
            by_service.0,
            [("VPN".into(), 3, 22.0, 3.0, 10.0)],
            "every ticket dimension"
        );

        // INC1 is reassigned to the Desk.
        send(
            &*store,
            "sn",
            &ticket("t1", "INC1", "Desk", "incident", DAY + 8 * HOUR, 20.0),
            &[],
            &[],
        )
        .await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (vec![("Desk".into(), 3, 22.0, 3.0, 10.0)], 1)
        );

        // The answer rated 10 is changed to 1: the Desk's extremes follow.
        send(
            &*store,
            "hs",
            &[answer("a3", rating, Some("INC2"), "incident", 2 * DAY, 1.0)],
            &[],
            &[],
        )
        .await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (vec![("Desk".into(), 3, 13.0, 1.0, 9.0)], 1)
        );

        // INC2 is retracted (cancelled at the source): its answer is unmatched again.
        send(&*store, "sn", &[], &["t2"], &[]).await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (vec![("Desk".into(), 2, 12.0, 3.0, 9.0)], 2)
        );

        // An answer retracted leaves its group.
        let gone = Retracted {
            id: "a1".into(),
            metric: rating.into(),
        };
        send(&*store, "hs", &[], &[], &[gone]).await;
        assert_eq!(
            both_paths(&*store, rating).await,
            (vec![("Desk".into(), 1, 9.0, 9.0, 9.0)], 2)
        );

        // Retention drops the raw rows: the joined groups still answer, and
        // still move when a ticket changes.
        store.retire_before("acme", None, 5 * DAY).await.expect("retention");
        let raw = store
            .grouped_through(&query(rating, "assignment_group", 0, 10 * DAY, true))
            .await;
        assert!(matches!(raw, Err(StoreError::RetiredRows { .. })), "{raw:?}");
        send(
            &*store,
            "sn",
            &ticket("t1", "INC1", "Field", "incident", DAY + 8 * HOUR, 20.0),
            &[],
            &[],
        )
        .await;
        let after = summary(&grouped(&*store, rating, "assignment_group", false).await);
        assert_eq!(after, (vec![("Field".into(), 1, 9.0, 9.0, 9.0)], 2));

        // A ticket resolved 40 days before its answer: the raw-row join
        // looks back 30 days, the joined rollups know every ticket.
        send(
            &*store,
            "sn",
            &ticket("t9", "INC9", "Network", "incident", 20 * DAY, 2.0),
            &[],
            &[],
        )
        .await;
        send(
            &*store,
            "hs",
            &[answer("a9", rating, Some("INC9"), "incident", 60 * DAY, 7.0)],
            &[],
            &[],
        )
        .await;
        let window = |from_rows| query(rating, "assignment_group", 60 * DAY, 61 * DAY, from_rows);
        let joined = summary(&store.grouped_through(&window(false)).await.expect("joined"));
        assert_eq!(joined, (vec![("Network".into(), 1, 7.0, 7.0, 7.0)], 0));
        let raw = summary(&store.grouped_through(&window(true)).await.expect("raw"));
        assert_eq!(raw, (vec![], 1));

        // All of it survives a reopen.
        drop(store);
        let store = backend.open(&place).await.expect("reopen");
        let after_reopen = summary(&grouped(&*store, rating, "assignment_group", false).await);
        assert_eq!(after_reopen, after);
    });
}

/// One step of the join's property test.
#[derive(Debug, Clone)]
enum Step {
    /// Ticket record `t<k>` (re)sent: number, group, type, day, hours.
    Ticket(u8, u8, u8, u8, i64, u8),
    /// Ticket record `t<k>` retracted whole.
    RetractTicket(u8),
    /// Answer `a<j>` (re)sent: number (or none), type, day, hour, value.
    Answer(u8, Option<u8>, u8, i64, i64, u8),
    /// Answer `a<j>` retracted.
    RetractAnswer(u8),
    /// Ticket record `t<k>` (as [`Step::Ticket`]) and, in the same batch,
    /// an SLA record of its number (`a<3x+2>`, breached or not).
    TicketWithSla(u8, u8, u8, u8, i64, u8, u8, bool),
    /// Raw rows of days before this one dropped.
    Retire(i64),
    /// The store closed and opened again.
    Reopen,
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0u8..5, 0u8..2, 0u8..3, 0u8..2, 0i64..7, 1u8..60)
            .prop_map(|(k, n, g, t, d, h)| Step::Ticket(k, n, g, t, d, h)),
        1 => (0u8..5).prop_map(Step::RetractTicket),
        6 => (0u8..12, prop::option::weighted(0.9, 0u8..2), 0u8..2, 0i64..8, 0i64..24, 0u8..11)
            .prop_map(|(j, n, t, d, h, v)| Step::Answer(j, n, t, d, h, v)),
        1 => (0u8..12).prop_map(Step::RetractAnswer),
        2 => (0u8..5, 0u8..2, 0u8..3, 0u8..2, 0i64..7, 1u8..60, 0u8..4, any::<bool>())
            .prop_map(|(k, n, g, t, d, h, x, b)| Step::TicketWithSla(k, n, g, t, d, h, x, b)),
        1 => (0i64..8).prop_map(Step::Retire),
        1 => Just(Step::Reopen),
    ]
}

const KINDS: [&str; 2] = ["incident", "request"];
const GROUPS: [&str; 3] = ["Desk", "Network", "Field"];

/// Answer `a<j>`'s metric: a rating, a lost time or an SLA's breach.
fn answer_metric(j: u8) -> &'static str {
    ["happiness_rating", "lost_time_minutes", "sla_breached"][usize::from(j % 3)]
}

/// Answer `a<j>`'s value: an SLA's breach is 0 or 1.
fn answer_value(j: u8, value: u8) -> f64 {
    if answer_metric(j) == "sla_breached" {
        f64::from(value % 2)
    } else {
        f64::from(value)
    }
}

/// The model's ticket: number, group, type, resolution and opening.
#[derive(Debug, Clone)]
struct ModelTicket {
    number: u8,
    group: u8,
    kind: u8,
    resolved: i64,
    opened: i64,
}

/// Ticket record `t<k>`'s rows and what the model knows of it. Each record
/// resolves at its own minute of the hour, so no two tickets open at the
/// same time (ties are the store's to break).
fn ticket_step(k: u8, number: u8, group: u8, kind: u8, day: i64, hours: u8) -> (Vec<Observation>, ModelTicket) {
    let resolved = day * DAY + 12 * HOUR + i64::from(k) * 7 * 60_000;
    let rows = ticket(
        &format!("t{k}"),
        &format!("INC{number}"),
        GROUPS[usize::from(group)],
        KINDS[usize::from(kind)],
        resolved,
        f64::from(hours),
    );
    let opened = resolved - i64::from(hours) * HOUR;
    let model = ModelTicket {
        number,
        group,
        kind,
        resolved,
        opened,
    };
    (rows, model)
}

/// Answer `a<j>`'s row.
fn answer_row(j: u8, number: Option<u8>, kind: u8, at: i64, value: f64) -> Observation {
    let number = number.map(|n| format!("INC{n}"));
    answer(
        &format!("a{j}"),
        answer_metric(j),
        number.as_deref(),
        KINDS[usize::from(kind)],
        at,
        value,
    )
}

/// Who sends answer `a<j>`: ServiceNow its SLA records, HappySignals the rest.
fn answer_source(j: u8) -> &'static str {
    if answer_metric(j) == "sla_breached" { "sn" } else { "hs" }
}

/// For any sequence of tickets, answers, reassignments, late tickets,
/// replaces, retractions, retention and reopening, grouping through
/// tickets from the joined rollups equals the grouping the rule gives over
/// the model's rows, and (while no raw row is retired) the grouping the
/// store joins from raw rows.
///
/// # Panics
/// With the shrunk failing input when they disagree.
pub fn grouping_through_tickets_from_rollups_equals_raw_rows<B: Backend>(backend: &B) {
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&prop::collection::vec(arb_step(), 1..32), |steps| {
        block_on(joined_agrees(backend, steps))
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

async fn joined_agrees<B: Backend>(backend: &B, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let place = backend.create().await;
    let mut store = backend.open(&place).await.expect("open");
    let mut tickets: BTreeMap<u8, ModelTicket> = BTreeMap::new();
    let mut answers: BTreeMap<u8, (Option<u8>, u8, i64, f64)> = BTreeMap::new();
    let mut retired = false;
    for step in steps {
        match step {
            Step::Ticket(k, number, group, kind, day, hours) => {
                let (rows, model) = ticket_step(k, number, group, kind, day, hours);
                send(&*store, "sn", &rows, &[], &[]).await;
                tickets.insert(k, model);
            }
            Step::TicketWithSla(k, number, group, kind, day, hours, x, breached) => {
                let (mut rows, model) = ticket_step(k, number, group, kind, day, hours);
                let j = 3 * x + 2;
                let at = model.resolved + i64::from(j) * 60_000;
                let value = if breached { 1.0 } else { 0.0 };
                rows.push(answer_row(j, Some(number), kind, at, value));
                send(&*store, "sn", &rows, &[], &[]).await;
                tickets.insert(k, model);
                answers.insert(j, (Some(number), kind, at, value));
            }
            Step::RetractTicket(k) => {
                send(&*store, "sn", &[], &[&format!("t{k}")], &[]).await;
                tickets.remove(&k);
            }
            Step::Answer(j, number, kind, day, hour, value) => {
                // Each answer at its own minute: a ticket's latest rating is never a tie.
                let at = day * DAY + hour * HOUR + i64::from(j) * 60_000;
                let value = answer_value(j, value);
                let row = answer_row(j, number, kind, at, value);
                send(&*store, answer_source(j), &[row], &[], &[]).await;
                answers.insert(j, (number, kind, at, value));
            }
            Step::RetractAnswer(j) => {
                let gone = Retracted {
                    id: format!("a{j}"),
                    metric: answer_metric(j).into(),
                };
                send(&*store, answer_source(j), &[], &[], &[gone]).await;
                answers.remove(&j);
            }
            Step::Retire(day) => {
                store.retire_before("acme", None, day * DAY).await.expect("retention");
                retired |= day > 0;
            }
            Step::Reopen => {
                drop(store);
                store = backend.open(&place).await.expect("reopen");
            }
        }
    }
    let outcomes = store
        .ticket_outcomes("acme", Some("assignment_group"), 0, 10 * DAY)
        .await
        .expect("outcomes");
    prop_assert_eq!(outcomes, Some(model_outcomes(&tickets, &answers)), "ticket outcomes");
    for metric in ["happiness_rating", "lost_time_minutes", "sla_breached"] {
        let want = model_grouped(&tickets, &answers, metric);
        let joined = grouped(&*store, metric, "assignment_group", false).await;
        prop_assert_eq!(&summary(&joined), &want.0, "{} from joined rollups", metric);
        let histograms =
            |g: &GroupedThrough| -> Vec<Option<[u64; 11]>> { g.groups.values().map(|r| r.histogram).collect() };
        prop_assert_eq!(histograms(&joined), want.1, "{} histograms", metric);
        if !retired {
            let raw = grouped(&*store, metric, "assignment_group", true).await;
            prop_assert_eq!(summary(&raw), summary(&joined), "{} from raw rows", metric);
        }
    }
    Ok(())
}

/// The ticket each answer joins by [`pick_ticket`], if any.
fn model_joins(
    tickets: &BTreeMap<u8, ModelTicket>,
    answers: &BTreeMap<u8, (Option<u8>, u8, i64, f64)>,
) -> BTreeMap<u8, Result<u8, Unjoined>> {
    answers
        .iter()
        .map(|(j, (number, kind, at, _))| {
            let Some(number) = number else {
                return (*j, Err(Unjoined::NoTicketNumber));
            };
            let facts = AnswerFacts {
                at: *at,
                ticket_type: (answer_metric(*j) != "sla_breached").then(|| KINDS[usize::from(*kind)]),
            };
            let candidates = tickets
                .iter()
                .filter(|(_, t)| t.number == *number)
                .map(|(k, t)| TicketCandidate {
                    facts: TicketFacts {
                        opened: Some(t.opened),
                        ticket_type: Some(KINDS[usize::from(t.kind)]),
                    },
                    key: *k,
                });
            (*j, pick_ticket(facts, candidates))
        })
        .collect()
}

/// Every ticket's outcome from the answers that join it, per group and for
/// the whole window (every model ticket resolves in it).
fn model_outcomes(
    tickets: &BTreeMap<u8, ModelTicket>,
    answers: &BTreeMap<u8, (Option<u8>, u8, i64, f64)>,
) -> crate::OutcomesBySlice {
    let joins = model_joins(tickets, answers);
    let mut out = crate::OutcomesBySlice::new();
    for (k, ticket) in tickets {
        let mut outcome = crate::TicketOutcome {
            sla_met: None,
            rating: None,
        };
        let mut latest = None;
        for (j, (_, _, at, value)) in answers.iter().filter(|(j, _)| joins[*j] == Ok(*k)) {
            match answer_metric(*j) {
                "sla_breached" => outcome.sla_met = Some(outcome.sla_met.unwrap_or(true) && *value == 0.0),
                // The latest; of two in the same millisecond, the lower.
                "happiness_rating"
                    if latest.is_none_or(|(l_at, l_value)| l_at < *at || (l_at == *at && *value < l_value)) =>
                {
                    latest = Some((*at, *value));
                    outcome.rating = Some(*value);
                }
                _ => {}
            }
        }
        if outcome.sla_met.is_none() && outcome.rating.is_none() {
            continue;
        }
        out.entry(None).or_default().add(&outcome);
        let group = GROUPS[usize::from(ticket.group)].to_string();
        out.entry(Some(group)).or_default().add(&outcome);
    }
    out
}

/// The grouping the rule gives: each answer of `metric` under the group of
/// the ticket [`pick_ticket`] picks among the tickets of its number.
fn model_grouped(
    tickets: &BTreeMap<u8, ModelTicket>,
    answers: &BTreeMap<u8, (Option<u8>, u8, i64, f64)>,
    metric: &str,
) -> (Summary, Vec<Option<[u64; 11]>>) {
    let mut groups: BTreeMap<String, Rollup> = BTreeMap::new();
    let mut unmatched = 0;
    let rating = crate::is_rating(metric);
    let joins = model_joins(tickets, answers);
    for (j, (_, _, _, value)) in answers {
        if answer_metric(*j) != metric {
            continue;
        }
        match joins[j] {
            Ok(k) => groups
                .entry(GROUPS[usize::from(tickets[&k].group)].to_string())
                .or_default()
                .add(*value, rating),
            Err(_) => unmatched += 1,
        }
    }
    let summary = groups
        .iter()
        .map(|(g, r)| (g.clone(), r.count, r.sum, r.min, r.max))
        .collect();
    let histograms = groups.values().map(|r| r.histogram).collect();
    ((summary, unmatched), histograms)
}
