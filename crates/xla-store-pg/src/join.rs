//! Joins through subjects at read time: per-subject rows, values grouped
//! through their tickets, and the tickets' outcomes. PostgreSQL joins on
//! indexes (`ticket` is a column of raw and retired rows), so unlike sled
//! this backend keeps no join state: it applies the same rule
//! ([`plausible_join`], [`pick_ticket`]) to the rows when asked.
//!
//! The store's own ticket join ([`xla_store::JOIN_KEY`] through
//! [`JOIN_VIA`] dated by [`JOIN_OPENING`], whole days) reads retired rows
//! too and every ticket of a number, whenever resolved, as sled's joined
//! rollups do; any other grouping reads raw rows, the tickets from
//! [`ANSWER_LOOKBACK_MS`] before the window.

use super::retention::{CUTOFFS, Cutoffs};
use super::write::parse_layer;
use super::{Inner, OrStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use xla_store::{
    ANSWER_LOOKBACK_MS, AnswerFacts, DAY_MS, GroupThrough, GroupedThrough, JOIN_KEY, JOIN_OPENING, JOIN_TYPE_DIMENSION,
    JOIN_VIA, OUTCOME_RATING_METRIC, OUTCOME_SLA_METRIC, OutcomesBySlice, SubjectQuery, SubjectRow, SubjectRowBuilder,
    TicketCandidate, TicketFacts, TicketOutcome, UNROLLED_DIMENSIONS, Unjoined, UnmatchedAnswer, day_of, is_rating,
    pick_ticket,
};
use xla_types::Layer;

/// Milliseconds in an hour, for `resolution_hours`.
const HOUR_MS: f64 = 3_600_000.0;

/// A row as the joins read it, raw or retired (a retired row has its
/// rolled-up dimensions and its ticket number).
struct JoinRow {
    source: String,
    record_id: String,
    metric: String,
    at: i64,
    value: f64,
    layer: Layer,
    /// Sorted by key.
    dimensions: Vec<(String, String)>,
}

impl JoinRow {
    fn dimension(&self, key: &str) -> Option<&str> {
        self.dimensions.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// What orders tickets opened at the same time: a hash of the record.
    fn tie_key(&self) -> u128 {
        let mut bytes = self.source.clone().into_bytes();
        bytes.push(0);
        bytes.extend_from_slice(self.record_id.as_bytes());
        xxhash_rust::xxh3::xxh3_128(&bytes)
    }
}

/// Which rows [`rows`] reads.
enum Rows<'a> {
    /// Of the window `[from, to)`.
    Window(i64, i64),
    /// Of these ticket numbers, whenever.
    Numbers(&'a [String]),
}

/// The rows of `metrics` that `which` selects, raw and (with `retired`)
/// retired, ordered by time.
async fn rows(
    client: &tokio_postgres::Client,
    tenant: &str,
    metrics: &[&str],
    which: Rows<'_>,
    retired: bool,
) -> Result<Vec<JoinRow>, StoreError> {
    let (condition, window, numbers) = match which {
        Rows::Window(from, to) => ("at >= $3 AND at < $4", Some((from, to)), None),
        Rows::Numbers(numbers) => ("ticket = ANY($3)", None, Some(numbers)),
    };
    let raw = format!(
        "SELECT source, record_id, metric, at, value, layer, dimensions FROM observations \
         WHERE tenant_id = $1 AND metric = ANY($2) AND {condition}"
    );
    let sql = if retired {
        format!(
            "{raw} UNION ALL \
             SELECT source, record_id, metric, at, value, layer, \
                    CASE WHEN ticket IS NULL THEN dimensions \
                         ELSE dimensions || jsonb_build_array(jsonb_build_array('{JOIN_KEY}', ticket)) END \
             FROM retired_observations WHERE tenant_id = $1 AND metric = ANY($2) AND {condition} \
             ORDER BY 4, 1, 2"
        )
    } else {
        format!("{raw} ORDER BY 4, 1, 2")
    };
    let found = match (window, numbers) {
        (Some((from, to)), _) => client.query(&sql, &[&tenant, &metrics, &from, &to]).await,
        (None, numbers) => {
            client
                .query(&sql, &[&tenant, &metrics, &numbers.unwrap_or_default()])
                .await
        }
    }
    .or_store()?;
    found
        .into_iter()
        .map(|row| {
            let mut dimensions: Vec<(String, String)> = serde_json::from_value(row.get(6))
                .map_err(|e| StoreError::corrupt(format!("stored dimensions: {e}")))?;
            dimensions.sort();
            Ok(JoinRow {
                source: row.get(0),
                record_id: row.get(1),
                metric: row.get(2),
                at: row.get(3),
                value: row.get(4),
                layer: parse_layer(row.get(5))?,
                dimensions,
            })
        })
        .collect()
}

/// Whether raw rows of any of `metrics` on `day` may be gone.
async fn any_retired(
    client: &tokio_postgres::Client,
    tenant: &str,
    metrics: &[&str],
    day: i32,
) -> Result<bool, StoreError> {
    let cutoffs = Cutoffs::new(client.query(CUTOFFS, &[&tenant]).await.or_store()?);
    Ok(metrics.iter().any(|m| cutoffs.retired(m, day)))
}

/// One ticket a value may join.
struct Ticket {
    tie: u128,
    at: i64,
    group: Option<String>,
    ticket_type: Option<String>,
    /// The record, for the outcomes of the window's tickets.
    record: (String, String),
}

/// Tickets by number, with when each was opened.
#[derive(Default)]
struct Tickets {
    by_number: HashMap<String, Vec<Ticket>>,
    /// The earliest opening per (number, resolution time).
    opened: HashMap<(String, i64), i64>,
}

impl Tickets {
    /// The tickets among `via` rows, each under its number, with `group_by`'s value.
    fn new(via: &[JoinRow], key: &str, group_by: Option<&str>) -> Tickets {
        let mut tickets = Tickets::default();
        for row in via {
            let Some(number) = row.dimension(key) else { continue };
            tickets.by_number.entry(number.to_string()).or_default().push(Ticket {
                tie: row.tie_key(),
                at: row.at,
                group: group_by.and_then(|g| row.dimension(g)).map(str::to_string),
                ticket_type: row.dimension(JOIN_TYPE_DIMENSION).map(str::to_string),
                record: (row.source.clone(), row.record_id.clone()),
            });
        }
        tickets
    }

    /// Notes when tickets were opened, from `opening` rows (hours before
    /// the row's time).
    fn open(&mut self, opening: &[JoinRow], key: &str) {
        for row in opening {
            let hours = row.value;
            let Some(number) = row.dimension(key) else { continue };
            if !(hours.is_finite() && hours >= 0.0 && self.by_number.contains_key(number)) {
                continue;
            }
            let opened = row.at.saturating_sub((hours * HOUR_MS) as i64);
            self.opened
                .entry((number.to_string(), row.at))
                .and_modify(|o| *o = (*o).min(opened))
                .or_insert(opened);
        }
    }

    /// The ticket `answer` of `number` joins, or why none.
    fn pick(&self, number: Option<&str>, answer: AnswerFacts<'_>) -> Result<&Ticket, Unjoined> {
        let number = number.ok_or(Unjoined::NoTicketNumber)?;
        let tickets = self.by_number.get(number).ok_or(Unjoined::NoTicket)?;
        let candidates = tickets.iter().enumerate().map(|(i, ticket)| TicketCandidate {
            facts: TicketFacts {
                opened: self.opened.get(&(number.to_string(), ticket.at)).copied(),
                ticket_type: ticket.ticket_type.as_deref(),
            },
            key: (ticket.tie, i),
        });
        let (_, i) = pick_ticket(answer, candidates)?;
        Ok(&tickets[i])
    }
}

/// The distinct ticket numbers `key` names among `rows`.
fn numbers(rows: &[JoinRow], key: &str) -> Vec<String> {
    let mut numbers: Vec<String> = rows
        .iter()
        .filter_map(|r| r.dimension(key))
        .map(str::to_string)
        .collect();
    numbers.sort();
    numbers.dedup();
    numbers
}

/// `query.metric` rolled up per value of `query.group_by` of the ticket
/// each value joins (see [`xla_store::Store::grouped_through`]).
pub(crate) async fn grouped_through(inner: &Inner, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
    let mut out = GroupedThrough::default();
    if query.from >= query.to {
        return Ok(out);
    }
    let client = inner.client().await?;
    let key = query.key.as_str();
    let via: Vec<&str> = query.via.iter().map(String::as_str).collect();
    let (values, mut tickets, opening) = if query.is_store_join() {
        let values = rows(
            &client,
            &query.tenant,
            &[&query.metric],
            Rows::Window(query.from, query.to),
            true,
        )
        .await?;
        let numbers = numbers(&values, key);
        let tickets = rows(&client, &query.tenant, &via, Rows::Numbers(&numbers), true).await?;
        let opening = match &query.opening {
            Some(m) => rows(&client, &query.tenant, &[m], Rows::Numbers(&numbers), true).await?,
            None => Vec::new(),
        };
        (values, tickets, opening)
    } else {
        let from_day = day_of(query.from);
        let mut read: Vec<&str> = vec![query.metric.as_str()];
        read.extend(query.opening.as_deref());
        read.extend(via.iter().copied());
        if any_retired(&client, &query.tenant, &read, from_day).await? {
            return Err(StoreError::RetiredRows {
                what: "values grouped through their subjects".into(),
            });
        }
        // The tickets from the look-back before the window, but not from
        // days retention retired.
        let mut via_from = query.from.saturating_sub(ANSWER_LOOKBACK_MS);
        while day_of(via_from) < from_day && any_retired(&client, &query.tenant, &via, day_of(via_from)).await? {
            via_from = (i64::from(day_of(via_from)) + 1) * DAY_MS;
        }
        let filtered = |rows: Vec<JoinRow>| -> Vec<JoinRow> {
            match &query.filter {
                None => rows,
                Some((k, v)) => rows
                    .into_iter()
                    .filter(|r| r.dimension(k) == Some(v.as_str()))
                    .collect(),
            }
        };
        let values = rows(
            &client,
            &query.tenant,
            &[&query.metric],
            Rows::Window(query.from, query.to),
            false,
        )
        .await?;
        let tickets = rows(&client, &query.tenant, &via, Rows::Window(via_from, query.to), false).await?;
        let opening = match &query.opening {
            Some(m) => rows(&client, &query.tenant, &[m], Rows::Window(via_from, query.to), false).await?,
            None => Vec::new(),
        };
        (filtered(values), filtered(tickets), opening)
    };
    let mut joinable = Tickets::new(&tickets, key, Some(&query.group_by));
    joinable.open(&opening, key);
    tickets.clear();
    let rating = is_rating(&query.metric);
    for row in &values {
        let number = row.dimension(key);
        let answer = AnswerFacts {
            at: row.at,
            ticket_type: row.dimension(JOIN_TYPE_DIMENSION),
        };
        match joinable.pick(number, answer) {
            Ok(ticket) => {
                if let Some(group) = &ticket.group {
                    out.groups.entry(group.clone()).or_default().add(row.value, rating);
                }
            }
            Err(reason) => out.unmatched.add(|| UnmatchedAnswer {
                id: row.record_id.clone(),
                ticket: number.map(str::to_string),
                at: row.at,
                reason,
            }),
        }
    }
    Ok(out)
}

/// A window ticket's outcome as the answers joining it build it.
struct Outcome {
    outcome: TicketOutcome,
    /// When the rating it holds was given: a later one replaces it.
    rated_at: Option<i64>,
    /// The ticket's value of the slice's dimension.
    group: Option<String>,
}

/// What the tickets resolved in `[from, to)` came to, per value of
/// `group_by` and for the whole window (see
/// [`xla_store::Store::ticket_outcomes`]).
pub(crate) async fn ticket_outcomes(
    inner: &Inner,
    tenant: &str,
    group_by: Option<&str>,
    from: i64,
    to: i64,
) -> Result<Option<OutcomesBySlice>, StoreError> {
    if !xla_store::whole_days(from, to) || group_by.is_some_and(|g| UNROLLED_DIMENSIONS.contains(&g)) {
        return Ok(None);
    }
    let mut out = OutcomesBySlice::new();
    if from >= to {
        return Ok(Some(out));
    }
    let client = inner.client().await?;
    let resolved = rows(&client, tenant, &[JOIN_VIA], Rows::Window(from, to), true).await?;
    // A dimension no ticket names (a per-answer one): the caller judges
    // per-ticket rows instead.
    if let Some(group) = group_by
        && !resolved.is_empty()
        && !resolved.iter().any(|r| r.dimension(group).is_some())
    {
        return Ok(None);
    }
    let numbers = numbers(&resolved, JOIN_KEY);
    let every = rows(&client, tenant, &[JOIN_VIA], Rows::Numbers(&numbers), true).await?;
    let opening = rows(&client, tenant, &[JOIN_OPENING], Rows::Numbers(&numbers), true).await?;
    let answers = rows(
        &client,
        tenant,
        &[OUTCOME_SLA_METRIC, OUTCOME_RATING_METRIC],
        Rows::Numbers(&numbers),
        true,
    )
    .await?;
    let mut tickets = Tickets::new(&every, JOIN_KEY, group_by);
    tickets.open(&opening, JOIN_KEY);
    // Each window ticket's outcome and the time of the rating it holds.
    let window: HashMap<(&str, &str), &JoinRow> = resolved
        .iter()
        .filter(|r| r.dimension(JOIN_KEY).is_some())
        .map(|r| ((r.source.as_str(), r.record_id.as_str()), r))
        .collect();
    let mut outcomes: BTreeMap<(String, String), Outcome> = BTreeMap::new();
    for answer in &answers {
        let facts = AnswerFacts {
            at: answer.at,
            ticket_type: answer.dimension(JOIN_TYPE_DIMENSION),
        };
        let Ok(ticket) = tickets.pick(answer.dimension(JOIN_KEY), facts) else {
            continue;
        };
        let record = (ticket.record.0.as_str(), ticket.record.1.as_str());
        if !window.contains_key(&record) {
            continue;
        }
        let Outcome { outcome, rated_at, .. } = outcomes.entry(ticket.record.clone()).or_insert_with(|| Outcome {
            outcome: TicketOutcome {
                sla_met: None,
                rating: None,
            },
            rated_at: None,
            group: ticket.group.clone(),
        });
        if answer.metric == OUTCOME_SLA_METRIC {
            outcome.sla_met = Some(outcome.sla_met.unwrap_or(true) && answer.value == 0.0);
        } else if rated_at.is_none_or(|at| at < answer.at) {
            *rated_at = Some(answer.at);
            outcome.rating = Some(answer.value);
        }
    }
    for Outcome { outcome, group, .. } in outcomes.values() {
        out.entry(None).or_default().add(outcome);
        if let Some(group) = group {
            out.entry(Some(group.clone())).or_default().add(outcome);
        }
    }
    Ok(Some(out))
}

/// One row per value of `query.key` (see [`xla_store::Store::subject_rows`]).
pub(crate) async fn subject_rows(inner: &Inner, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
    if query.from >= query.to {
        return Ok(Vec::new());
    }
    let client = inner.client().await?;
    let (from_day, to_day) = (day_of(query.from), day_of(query.to - 1) + 1);
    let mut read: Vec<&str> = query.metrics.iter().map(String::as_str).collect();
    read.extend(query.opening.as_deref());
    if any_retired(&client, &query.tenant, &read, from_day).await? {
        return Err(StoreError::RetiredRows {
            what: "per-subject rows".into(),
        });
    }
    let days = Rows::Window(i64::from(from_day) * DAY_MS, i64::from(to_day) * DAY_MS);
    let key = query.key.as_str();
    let mut subjects: BTreeMap<String, SubjectRowBuilder> = BTreeMap::new();
    for metric in &query.metrics {
        let at_name = format!("{metric}.at");
        let window = Rows::Window(i64::from(from_day) * DAY_MS, i64::from(to_day) * DAY_MS);
        for row in rows(&client, &query.tenant, &[metric], window, false).await? {
            if !(query.from..query.to).contains(&row.at) {
                continue;
            }
            if let Some((k, v)) = &query.filter
                && row.dimension(k) != Some(v.as_str())
            {
                continue;
            }
            let Some(subject) = row.dimension(key) else { continue };
            let building = subjects.entry(subject.to_string()).or_default();
            for (k, v) in row.dimensions.iter().filter(|(k, _)| k != key) {
                building.dimension(k, v);
            }
            building.value(
                (metric, &at_name),
                row.value,
                row.at,
                row.layer == Layer::Experience,
                row.dimension(JOIN_TYPE_DIMENSION),
            );
        }
    }
    // When each judged subject's ticket was opened: the earliest opening
    // record's time less its hours.
    let mut opened: HashMap<String, i64> = HashMap::new();
    if let Some(metric) = &query.opening
        && subjects.values().any(SubjectRowBuilder::judged)
    {
        for row in rows(&client, &query.tenant, &[metric], days, false).await? {
            let hours = row.value;
            if let Some(subject) = row.dimension(key)
                && subjects.get(subject).is_some_and(SubjectRowBuilder::judged)
                && hours.is_finite()
                && hours >= 0.0
            {
                let at = row.at.saturating_sub((hours * HOUR_MS) as i64);
                opened
                    .entry(subject.to_string())
                    .and_modify(|o| *o = (*o).min(at))
                    .or_insert(at);
            }
        }
    }
    Ok(subjects
        .into_iter()
        .map(|(subject, building)| {
            let opened = opened.get(&subject).copied();
            building.finish(subject, opened)
        })
        .collect())
}
