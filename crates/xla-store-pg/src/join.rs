//! Joins through subjects: per-subject rows, values grouped through their
//! tickets, and the tickets' outcomes, with the one rule
//! ([`xla_store::plausible_join`], [`pick_ticket`]).
//!
//! The store's own ticket join ([`xla_store::JOIN_KEY`] through
//! [`xla_store::JOIN_VIA`] dated by [`xla_store::JOIN_OPENING`], whole
//! days) and the tickets' outcomes are read from what the write-time join
//! keeps (`joined`), as sled's joined rollups are; any other grouping joins
//! raw rows at read time, the tickets from [`ANSWER_LOOKBACK_MS`] before the
//! window. [`rows`] and [`Tickets`] serve both.

use super::joined::parse_reason;
use super::retention::{CUTOFFS, Cutoffs};
use super::write::parse_layer;
use super::{Inner, OrStore, StoreError};
use std::collections::{BTreeMap, HashMap};
use xla_store::{
    ANSWER_LOOKBACK_MS, AnswerFacts, DAY_MS, GroupThrough, GroupedThrough, JOIN_KEY, JOIN_TYPE_DIMENSION,
    OutcomesBySlice, SubjectQuery, SubjectRow, SubjectRowBuilder, TicketCandidate, TicketFacts, TicketOutcomes,
    UNMATCHED_EXAMPLES, UNROLLED_DIMENSIONS, Unjoined, UnmatchedAnswer, day_of, is_rating, pick_ticket,
};
use xla_types::Layer;

/// Milliseconds in an hour, for `resolution_hours`.
const HOUR_MS: f64 = 3_600_000.0;

/// A row as the joins read it, raw or retired (a retired row has its
/// rolled-up dimensions and its ticket number).
pub(crate) struct JoinRow {
    pub source: String,
    pub record_id: String,
    pub metric: String,
    pub at: i64,
    pub value: f64,
    pub layer: Layer,
    /// Sorted by key.
    pub dimensions: Vec<(String, String)>,
}

impl JoinRow {
    pub(crate) fn dimension(&self, key: &str) -> Option<&str> {
        super::write::dimension(&self.dimensions, key)
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
pub(crate) enum Rows<'a> {
    /// Of the window `[from, to)`.
    Window(i64, i64),
    /// Of these ticket numbers, whenever.
    Numbers(&'a [String]),
}

/// The rows of `metrics` that `which` selects, raw and (with `retired`)
/// retired, ordered by time.
pub(crate) async fn rows(
    client: &(impl tokio_postgres::GenericClient + Sync),
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
pub(crate) struct Ticket {
    /// Its row among the tickets [`Tickets::new`] was given.
    pub row: usize,
    tie: u128,
    at: i64,
    group: Option<String>,
    ticket_type: Option<String>,
}

/// Tickets by number, with when each was opened.
#[derive(Default)]
pub(crate) struct Tickets {
    by_number: HashMap<String, Vec<Ticket>>,
    /// The earliest opening per (number, resolution time).
    opened: HashMap<(String, i64), i64>,
}

impl Tickets {
    /// The tickets among `via` rows, each under its number, with `group_by`'s value.
    pub(crate) fn new(via: &[JoinRow], key: &str, group_by: Option<&str>) -> Tickets {
        let mut tickets = Tickets::default();
        for (i, row) in via.iter().enumerate() {
            let Some(number) = row.dimension(key) else { continue };
            tickets.by_number.entry(number.to_string()).or_default().push(Ticket {
                row: i,
                tie: row.tie_key(),
                at: row.at,
                group: group_by.and_then(|g| row.dimension(g)).map(str::to_string),
                ticket_type: row.dimension(JOIN_TYPE_DIMENSION).map(str::to_string),
            });
        }
        tickets
    }

    /// Notes when tickets were opened, from `opening` rows (hours before
    /// the row's time).
    pub(crate) fn open(&mut self, opening: &[JoinRow], key: &str) {
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
    pub(crate) fn pick(&self, number: Option<&str>, answer: AnswerFacts<'_>) -> Result<&Ticket, Unjoined> {
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

/// `query.metric` rolled up per value of `query.group_by` of the ticket
/// each value joins (see [`xla_store::Store::grouped_through`]).
pub(crate) async fn grouped_through(inner: &Inner, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
    let mut out = GroupedThrough::default();
    if query.from >= query.to {
        return Ok(out);
    }
    let pooled = inner.client().await?;
    let client: &tokio_postgres::Client = &pooled;
    let key = query.key.as_str();
    let via: Vec<&str> = query.via.iter().map(String::as_str).collect();
    if query.is_store_join() {
        drop(pooled);
        return joined_groups(inner, query).await;
    }
    let (values, mut tickets, opening) = {
        let from_day = day_of(query.from);
        let mut read: Vec<&str> = vec![query.metric.as_str()];
        read.extend(query.opening.as_deref());
        read.extend(via.iter().copied());
        if any_retired(client, &query.tenant, &read, from_day).await? {
            return Err(StoreError::RetiredRows {
                what: "values grouped through their subjects".into(),
            });
        }
        // The tickets from the look-back before the window, but not from
        // days retention retired.
        let mut via_from = query.from.saturating_sub(ANSWER_LOOKBACK_MS);
        while day_of(via_from) < from_day && any_retired(client, &query.tenant, &via, day_of(via_from)).await? {
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
            client,
            &query.tenant,
            &[&query.metric],
            Rows::Window(query.from, query.to),
            false,
        )
        .await?;
        let tickets = rows(client, &query.tenant, &via, Rows::Window(via_from, query.to), false).await?;
        let opening = match &query.opening {
            Some(m) => rows(client, &query.tenant, &[m], Rows::Window(via_from, query.to), false).await?,
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

/// The store's own ticket join read from `joined_values` (kept at write
/// time, see `joined`): each group's rollup, built from its distinct
/// values and their counts, and the values that joined no ticket; all
/// from one snapshot, so a commit in between cannot count a value twice.
async fn joined_groups(inner: &Inner, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
    let mut pooled = inner.client().await?;
    let client = pooled
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .or_store()?;
    let mut out = GroupedThrough::default();
    let window = [
        &query.tenant as &(dyn tokio_postgres::types::ToSql + Sync),
        &query.metric,
        &query.from,
        &query.to,
    ];
    let groups = client
        .query(
            "SELECT ticket_dimensions->>$5, value, count(*) FROM joined_values \
             WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 \
               AND ticket_record IS NOT NULL AND ticket_dimensions ? $5 \
             GROUP BY 1, 2 ORDER BY 1, 2",
            &[window[0], window[1], window[2], window[3], &query.group_by],
        )
        .await
        .or_store()?;
    let rating = is_rating(&query.metric);
    for row in groups {
        let (group, value, count): (String, f64, i64) = (row.get(0), row.get(1), row.get(2));
        let rollup = out.groups.entry(group).or_default();
        for _ in 0..count {
            rollup.add(value, rating);
        }
    }
    out.unmatched.count = client
        .query_one(
            "SELECT count(*) FROM joined_values \
             WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 AND ticket_record IS NULL",
            &window,
        )
        .await
        .or_store()?
        .get::<_, i64>(0) as u64;
    if out.unmatched.count > 0 {
        let examples = client
            .query(
                "SELECT record_id, number, at, reason FROM joined_values \
                 WHERE tenant_id = $1 AND metric = $2 AND at >= $3 AND at < $4 AND ticket_record IS NULL \
                 ORDER BY at, source, record_id LIMIT $5",
                &[window[0], window[1], window[2], window[3], &(UNMATCHED_EXAMPLES as i64)],
            )
            .await
            .or_store()?;
        for row in examples {
            let reason: Option<String> = row.get(3);
            out.unmatched.examples.push(UnmatchedAnswer {
                id: row.get(0),
                ticket: row.get(1),
                at: row.get(2),
                reason: parse_reason(reason.as_deref().unwrap_or_default())?,
            });
        }
    }
    client.commit().await.or_store()?;
    Ok(out)
}

/// What the tickets resolved in `[from, to)` came to, per value of
/// `group_by` and for the whole window (see
/// [`xla_store::Store::ticket_outcomes`]), from the outcome cells the
/// write-time join keeps.
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
    let (from_day, to_day) = (day_of(from), day_of(to - 1) + 1);
    let cells = client
        .query(
            "SELECT dimension, value, sla_tickets, sla_met, ratings, rated_sla, watermelons FROM outcome_cells \
             WHERE tenant_id = $1 AND day >= $2 AND day < $3 AND (dimension = '' OR dimension = $4)",
            &[&tenant, &from_day, &to_day, &group_by.unwrap_or_default()],
        )
        .await
        .or_store()?;
    // A negative count would be a cell the join let drift: said, not hidden.
    let counted = |n: i64| {
        if n < 0 {
            tracing::error!(
                tenant,
                count = n,
                "an outcome cell of the PostgreSQL store went negative"
            );
        }
        n.max(0) as u64
    };
    for row in cells {
        let dimension: String = row.get(0);
        let slice = (!dimension.is_empty()).then(|| row.get::<_, String>(1));
        let counts = out.entry(slice).or_default();
        counts.sla_tickets += counted(row.get(2));
        counts.sla_met += counted(row.get(3));
        let ratings: Vec<i64> = row.get(4);
        for (mine, theirs) in counts.ratings.iter_mut().zip(ratings) {
            *mine += counted(theirs);
        }
        counts.both += counted(row.get(5));
        counts.watermelons += counted(row.get(6));
    }
    // Cells a change emptied count nothing.
    out.retain(|_, counts| *counts != TicketOutcomes::default());
    // A slice no ticket names (a dimension only the answers carry):
    // per-ticket rows, whose dimensions are the union of their values',
    // answer it.
    if group_by.is_some() && out.len() == 1 && out.contains_key(&None) {
        return Ok(None);
    }
    Ok(Some(out))
}

/// One row per value of `query.key` (see [`xla_store::Store::subject_rows`]).
pub(crate) async fn subject_rows(inner: &Inner, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
    if query.from >= query.to {
        return Ok(Vec::new());
    }
    let pooled = inner.client().await?;
    let client: &tokio_postgres::Client = &pooled;
    let (from_day, to_day) = (day_of(query.from), day_of(query.to - 1) + 1);
    let mut read: Vec<&str> = query.metrics.iter().map(String::as_str).collect();
    read.extend(query.opening.as_deref());
    if any_retired(client, &query.tenant, &read, from_day).await? {
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
        for row in rows(client, &query.tenant, &[metric], window, false).await? {
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
        for row in rows(client, &query.tenant, &[metric], days, false).await? {
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
