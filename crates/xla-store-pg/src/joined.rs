//! The ticket join, kept at write time (`migrations/0003_ticket_join.sql`):
//! a survey answer or an SLA record counts under its ticket's dimensions,
//! so that happiness by assignment group or the SLA-beside-XLA scorecard
//! reads a few rows per day instead of joining a month of raw rows.
//!
//! The unit of work is a ticket number. A commit that changes any row of a
//! number (a ticket, its opening, a value naming it) works the whole number
//! out again from its stored rows, raw and retired, with the one rule
//! ([`xla_store::pick_ticket`]): where each of its values counts
//! (`joined_values`), and what each of its tickets came to
//! (`joined_tickets`), whose change is an exact increment of the day's
//! `outcome_cells`. A late ticket, a reassignment, a retracted ticket or a
//! replaced answer all end the same way as if the rows had come in any
//! other order. Commits lock the numbers they touch (advisory, in sorted
//! order, after the rollup days' locks), so two hosts writing a ticket and
//! its answer at once settle it one after the other.
//!
//! Retention never touches these tables: retired days keep counting, as on
//! sled.

use super::join::{JoinRow, Rows, Tickets, rows};
use super::write::{Stored, dimension, lock_key, tenant_lock};
use super::{OrStore, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use tokio_postgres::Transaction;
use xla_store::{
    AnswerFacts, JOIN_KEY, JOIN_OPENING, JOIN_TYPE_DIMENSION, JOIN_VIA, JOINED_METRICS, OUTCOME_RATING_METRIC,
    OUTCOME_SLA_METRIC, RetiredRecord, TicketOutcome, UNROLLED_DIMENSIONS, Unjoined, day_of, is_joined_metric,
};
use xla_types::Observation;

/// Numbers settled per statement when the join is built from stored rows.
const REBUILD_CHUNK: usize = 2_000;

/// Whether the join reads rows of `metric`.
pub(crate) fn joins(metric: &str) -> bool {
    metric == JOIN_VIA || metric == JOIN_OPENING || is_joined_metric(metric)
}

/// The metrics whose rows the join reads.
fn join_metrics() -> Vec<&'static str> {
    let mut metrics = vec![JOIN_VIA, JOIN_OPENING];
    metrics.extend_from_slice(JOINED_METRICS);
    metrics
}

/// A removed row's ticket number (a retired row keeps it apart).
fn removed_number(stored: &Stored) -> Option<&str> {
    stored
        .ticket
        .as_deref()
        .or_else(|| dimension(&stored.dimensions, JOIN_KEY))
}

/// How a reason is stored: as xla-store names it (`no_ticket`...).
fn reason_name(reason: &Unjoined) -> Result<String, StoreError> {
    match serde_json::to_value(reason) {
        Ok(serde_json::Value::String(name)) => Ok(name),
        _ => Err(StoreError::corrupt("an unjoined reason has no name")),
    }
}

/// The reason a stored name says.
pub(crate) fn parse_reason(name: &str) -> Result<Unjoined, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| StoreError::corrupt(format!("an unknown unjoined reason {name:?}")))
}

/// A ticket's rolled-up dimensions (its cells' keys): every one but the
/// per-subject ones.
pub(crate) fn rolled_up(dimensions: &[(String, String)]) -> impl Iterator<Item = &(String, String)> {
    dimensions
        .iter()
        .filter(|(k, _)| !UNROLLED_DIMENSIONS.contains(&k.as_str()))
}

/// A ticket's rolled-up dimensions as stored with its values: a JSON
/// object (`ticket_dimensions->>'assignment_group'`).
fn rolled_up_object(dimensions: &[(String, String)]) -> serde_json::Value {
    rolled_up(dimensions)
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Lock buckets of ticket numbers per tenant: a commit locks the buckets
/// of the numbers it touches, not each number (PostgreSQL's lock table
/// holds some thousands of locks across all sessions).
const LOCK_BUCKETS: u64 = 256;

/// What a commit changed of the join.
#[derive(Default)]
struct Changes<'b> {
    /// Every ticket number a removed or stored row names.
    numbers: BTreeSet<&'b str>,
    /// The numbers whose tickets or openings changed.
    ticket_numbers: BTreeSet<&'b str>,
    /// The joined values removed or stored, by (record id, metric).
    ids: Vec<&'b str>,
    metrics: Vec<&'b str>,
    /// The joined values stored.
    stored: Vec<&'b Observation>,
}

impl<'b> Changes<'b> {
    fn of(removes: &[&'b Stored], inserts: &[&'b Observation]) -> Changes<'b> {
        let mut changes = Changes::default();
        for stored in removes.iter().filter(|s| joins(&s.metric)) {
            let number = removed_number(stored);
            changes.numbers.extend(number);
            if is_joined_metric(&stored.metric) {
                changes.ids.push(stored.record_id.as_str());
                changes.metrics.push(stored.metric.as_str());
            } else {
                changes.ticket_numbers.extend(number);
            }
        }
        for o in inserts.iter().filter(|o| joins(&o.metric)) {
            let number = dimension(&o.dimensions, JOIN_KEY);
            changes.numbers.extend(number);
            if is_joined_metric(&o.metric) {
                changes.ids.push(o.id.as_str());
                changes.metrics.push(o.metric.as_str());
                changes.stored.push(o);
            } else {
                changes.ticket_numbers.extend(number);
            }
        }
        changes
    }
}

/// Settles the join after a commit of `source` removed `removes` and
/// stored `inserts` (see the module's documentation). Runs in the commit's
/// transaction, after its rows are written.
///
/// A number whose tickets did not change and that has none stored (a
/// placeholder many answers share, an answer ahead of its ticket) only
/// places the commit's own values: its other values stay unjoined, so
/// importing many answers of one such number stays linear.
pub(crate) async fn settle(
    tx: &Transaction<'_>,
    tenant: &str,
    source: &str,
    removes: &[&Stored],
    inserts: &[&Observation],
) -> Result<(), StoreError> {
    let changes = Changes::of(removes, inserts);
    if changes.ids.is_empty() && changes.numbers.is_empty() {
        return Ok(());
    }
    lock_numbers(tx, tenant, &changes.numbers).await?;
    // The values this commit changed leave their places (found by key: a
    // value may have had no number, or another one).
    tx.execute(
        "DELETE FROM joined_values WHERE tenant_id = $1 AND source = $2 \
         AND (record_id, metric) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
        &[&tenant, &source, &changes.ids, &changes.metrics],
    )
    .await
    .or_store()?;
    let answers_only: Vec<&str> = changes.numbers.difference(&changes.ticket_numbers).copied().collect();
    let ticketless = ticketless(tx, tenant, &answers_only).await?;
    let settled: Vec<String> = changes
        .numbers
        .iter()
        .filter(|n| !ticketless.contains(**n))
        .map(|n| n.to_string())
        .collect();
    settle_numbers(tx, tenant, &settled).await?;
    let unmatched = Unmatched::new(&ticketless)?;
    let placed: Vec<Placed> = changes
        .stored
        .iter()
        .filter_map(|o| {
            let number = dimension(&o.dimensions, JOIN_KEY);
            unmatched.place((source, &o.id, &o.metric), number, (o.at, o.value))
        })
        .collect();
    insert_placed(tx, tenant, &placed).await
}

/// Places values whose number the commit does not settle: one naming no
/// number, or a number no stored ticket carries, counts as unmatched.
struct Unmatched<'t> {
    ticketless: &'t BTreeSet<String>,
    no_number: String,
    no_ticket: String,
}

impl<'t> Unmatched<'t> {
    fn new(ticketless: &'t BTreeSet<String>) -> Result<Unmatched<'t>, StoreError> {
        Ok(Unmatched {
            ticketless,
            no_number: reason_name(&Unjoined::NoTicketNumber)?,
            no_ticket: reason_name(&Unjoined::NoTicket)?,
        })
    }

    /// Where the value (source, record id, metric) of `number` at
    /// (time, value) counts; `None` when its number is settled whole.
    fn place(
        &self,
        (source, record_id, metric): (&str, &str, &str),
        number: Option<&str>,
        (at, value): (i64, f64),
    ) -> Option<Placed> {
        let reason = match number {
            None => &self.no_number,
            Some(n) if self.ticketless.contains(n) => &self.no_ticket,
            Some(_) => return None,
        };
        Some(Placed {
            source: source.to_string(),
            record_id: record_id.to_string(),
            metric: metric.to_string(),
            number: number.map(str::to_string),
            at,
            value,
            ticket: None,
            reason: Some(reason.clone()),
        })
    }
}

/// Joins again what restoring a retired day of `metric` changed (`store
/// migrate`): `gone` (source, record id, number) are the day's rows it
/// replaced, `rows` the copy's. As a commit does: the replaced rows leave
/// their places; numbers with a ticket stored, or any number of a ticket
/// metric, are worked out again whole; an answer naming a number no
/// ticket carries, or none, counts as unmatched. Runs in the restoring
/// transaction, which holds the tenant's lock exclusively.
pub(crate) async fn settle_restored(
    tx: &Transaction<'_>,
    (tenant, metric): (&str, &str),
    gone: &[(String, String, Option<String>)],
    rows: &[RetiredRecord],
) -> Result<(), StoreError> {
    let (sources, ids): (Vec<&str>, Vec<&str>) = gone.iter().map(|(s, r, _)| (s.as_str(), r.as_str())).unzip();
    tx.execute(
        "DELETE FROM joined_values WHERE tenant_id = $1 AND metric = $2 \
         AND (source, record_id) IN (SELECT * FROM unnest($3::text[], $4::text[]))",
        &[&tenant, &metric, &sources, &ids],
    )
    .await
    .or_store()?;
    let joined: Vec<&RetiredRecord> = rows.iter().filter(|r| r.joined).collect();
    let numbers: BTreeSet<&str> = gone
        .iter()
        .filter_map(|(_, _, n)| n.as_deref())
        .chain(joined.iter().filter_map(|r| r.ticket.as_deref()))
        .collect();
    let answers = is_joined_metric(metric);
    let ticketless = if answers {
        let numbers: Vec<&str> = numbers.iter().copied().collect();
        ticketless(tx, tenant, &numbers).await?
    } else {
        BTreeSet::new()
    };
    let settled: Vec<String> = numbers
        .iter()
        .filter(|n| !ticketless.contains(**n))
        .map(|n| n.to_string())
        .collect();
    for chunk in settled.chunks(REBUILD_CHUNK) {
        settle_numbers(tx, tenant, chunk).await?;
    }
    if !answers {
        return Ok(());
    }
    let unmatched = Unmatched::new(&ticketless)?;
    let placed: Vec<Placed> = joined
        .iter()
        .filter_map(|r| unmatched.place((&r.source, &r.key, metric), r.ticket.as_deref(), (r.at, r.value)))
        .collect();
    insert_placed(tx, tenant, &placed).await
}

/// Locks the buckets of `numbers` to the end of the transaction, in
/// sorted order (no deadlock between commits).
async fn lock_numbers(tx: &Transaction<'_>, tenant: &str, numbers: &BTreeSet<&str>) -> Result<(), StoreError> {
    let mut buckets: Vec<i64> = numbers
        .iter()
        .map(|n| {
            let bucket = xxhash_rust::xxh3::xxh3_64(n.as_bytes()) % LOCK_BUCKETS;
            lock_key(&[b"ticket", tenant.as_bytes(), &bucket.to_be_bytes()])
        })
        .collect();
    buckets.sort_unstable();
    buckets.dedup();
    for key in buckets {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])
            .await
            .or_store()?;
    }
    Ok(())
}

/// Those of `numbers` that no stored ticket (raw or retired) carries.
async fn ticketless(tx: &Transaction<'_>, tenant: &str, numbers: &[&str]) -> Result<BTreeSet<String>, StoreError> {
    if numbers.is_empty() {
        return Ok(BTreeSet::new());
    }
    let rows = tx
        .query(
            "SELECT n FROM unnest($2::text[]) AS u(n) \
             WHERE NOT EXISTS (SELECT 1 FROM observations o WHERE o.tenant_id = $1 AND o.ticket = u.n AND o.metric = $3) \
               AND NOT EXISTS (SELECT 1 FROM retired_observations r \
                               WHERE r.tenant_id = $1 AND r.ticket = u.n AND r.metric = $3)",
            &[&tenant, &numbers, &JOIN_VIA],
        )
        .await
        .or_store()?;
    Ok(rows.into_iter().map(|row| row.get(0)).collect())
}

/// Where one joined value counts.
struct Placed {
    source: String,
    record_id: String,
    metric: String,
    number: Option<String>,
    at: i64,
    value: f64,
    /// The ticket it joined: its record and rolled-up dimensions.
    ticket: Option<(String, String, serde_json::Value)>,
    reason: Option<String>,
}

/// A ticket with an outcome, as `joined_tickets` keeps it.
#[derive(Debug, Clone, PartialEq)]
struct Judged {
    source: String,
    record_id: String,
    number: String,
    at: i64,
    /// Rolled-up dimensions, sorted by key.
    dimensions: Vec<(String, String)>,
    outcome: TicketOutcome,
}

/// Works out `numbers` again from their stored rows: their values' places,
/// their tickets' outcomes, and the outcome cells that changed. The caller
/// holds the numbers' locks (or the tenant's, exclusively).
async fn settle_numbers(tx: &Transaction<'_>, tenant: &str, numbers: &[String]) -> Result<(), StoreError> {
    if numbers.is_empty() {
        return Ok(());
    }
    let before = judged_before(tx, tenant, numbers).await?;
    for table in ["joined_values", "joined_tickets"] {
        tx.execute(
            &format!("DELETE FROM {table} WHERE tenant_id = $1 AND number = ANY($2)"),
            &[&tenant, &numbers],
        )
        .await
        .or_store()?;
    }
    let stored = rows(tx, tenant, &join_metrics(), Rows::Numbers(numbers), true).await?;
    let (placed, after) = place(stored)?;
    insert_placed(tx, tenant, &placed).await?;
    insert_judged(tx, tenant, &after).await?;
    let mut cells = OutcomeDeltas::default();
    for judged in &before {
        cells.add(judged, -1);
    }
    for judged in &after {
        cells.add(judged, 1);
    }
    cells.write(tx, tenant).await
}

/// Places every joined value among `stored` (one number's rows, or
/// several numbers'), and judges the tickets they joined.
fn place(stored: Vec<JoinRow>) -> Result<(Vec<Placed>, Vec<Judged>), StoreError> {
    let (mut via, mut opening, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for row in stored {
        match row.metric.as_str() {
            JOIN_VIA => via.push(row),
            JOIN_OPENING => opening.push(row),
            _ => values.push(row),
        }
    }
    let mut tickets = Tickets::new(&via, JOIN_KEY, None);
    tickets.open(&opening, JOIN_KEY);
    let mut placed = Vec::with_capacity(values.len());
    // Per joined ticket (its row in `via`): its outcome, and the time and value of its latest rating.
    let mut outcomes: BTreeMap<usize, (TicketOutcome, Option<(i64, f64)>)> = BTreeMap::new();
    for row in &values {
        let number = row.dimension(JOIN_KEY);
        let facts = AnswerFacts {
            at: row.at,
            ticket_type: row.dimension(JOIN_TYPE_DIMENSION),
        };
        let mut place = Placed {
            source: row.source.clone(),
            record_id: row.record_id.clone(),
            metric: row.metric.clone(),
            number: number.map(str::to_string),
            at: row.at,
            value: row.value,
            ticket: None,
            reason: None,
        };
        match tickets.pick(number, facts) {
            Ok(ticket) => {
                let joined = &via[ticket.row];
                place.ticket = Some((
                    joined.source.clone(),
                    joined.record_id.clone(),
                    rolled_up_object(&joined.dimensions),
                ));
                let (outcome, latest) = outcomes.entry(ticket.row).or_insert((
                    TicketOutcome {
                        sla_met: None,
                        rating: None,
                    },
                    None,
                ));
                if row.metric == OUTCOME_SLA_METRIC {
                    outcome.sla_met = Some(outcome.sla_met.unwrap_or(true) && row.value == 0.0);
                } else if row.metric == OUTCOME_RATING_METRIC && xla_store::is_later_rating(*latest, row.at, row.value)
                {
                    *latest = Some((row.at, row.value));
                    outcome.rating = Some(row.value);
                }
            }
            Err(reason) => place.reason = Some(reason_name(&reason)?),
        }
        placed.push(place);
    }
    let judged = outcomes
        .into_iter()
        .filter(|(_, (outcome, _))| outcome.sla_met.is_some() || outcome.rating.is_some())
        .filter_map(|(i, (outcome, _))| {
            let ticket = &via[i];
            Some(Judged {
                source: ticket.source.clone(),
                record_id: ticket.record_id.clone(),
                number: ticket.dimension(JOIN_KEY)?.to_string(),
                at: ticket.at,
                dimensions: rolled_up(&ticket.dimensions).cloned().collect(),
                outcome,
            })
        })
        .collect();
    Ok((placed, judged))
}

async fn insert_placed(tx: &Transaction<'_>, tenant: &str, placed: &[Placed]) -> Result<(), StoreError> {
    if placed.is_empty() {
        return Ok(());
    }
    let sources: Vec<&str> = placed.iter().map(|p| p.source.as_str()).collect();
    let ids: Vec<&str> = placed.iter().map(|p| p.record_id.as_str()).collect();
    let metrics: Vec<&str> = placed.iter().map(|p| p.metric.as_str()).collect();
    let numbers: Vec<Option<&str>> = placed.iter().map(|p| p.number.as_deref()).collect();
    let ats: Vec<i64> = placed.iter().map(|p| p.at).collect();
    let values: Vec<f64> = placed.iter().map(|p| p.value).collect();
    let ticket_sources: Vec<Option<&str>> = placed.iter().map(|p| p.ticket.as_ref().map(|t| t.0.as_str())).collect();
    let ticket_records: Vec<Option<&str>> = placed.iter().map(|p| p.ticket.as_ref().map(|t| t.1.as_str())).collect();
    let ticket_dimensions: Vec<Option<&serde_json::Value>> =
        placed.iter().map(|p| p.ticket.as_ref().map(|t| &t.2)).collect();
    let reasons: Vec<Option<&str>> = placed.iter().map(|p| p.reason.as_deref()).collect();
    tx.execute(
        "INSERT INTO joined_values (tenant_id, source, record_id, metric, number, at, value, ticket_source, \
                                    ticket_record, ticket_dimensions, reason) \
         SELECT $1, s, r, m, n, a, v, ts, tr, td, re \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::float8[], $8::text[], \
                     $9::text[], $10::jsonb[], $11::text[]) AS u(s, r, m, n, a, v, ts, tr, td, re) \
         ON CONFLICT (tenant_id, source, record_id, metric) DO UPDATE SET \
             number = EXCLUDED.number, at = EXCLUDED.at, value = EXCLUDED.value, \
             ticket_source = EXCLUDED.ticket_source, ticket_record = EXCLUDED.ticket_record, \
             ticket_dimensions = EXCLUDED.ticket_dimensions, reason = EXCLUDED.reason",
        &[
            &tenant,
            &sources,
            &ids,
            &metrics,
            &numbers,
            &ats,
            &values,
            &ticket_sources,
            &ticket_records,
            &ticket_dimensions,
            &reasons,
        ],
    )
    .await
    .or_store()?;
    Ok(())
}

async fn insert_judged(tx: &Transaction<'_>, tenant: &str, judged: &[Judged]) -> Result<(), StoreError> {
    if judged.is_empty() {
        return Ok(());
    }
    let sources: Vec<&str> = judged.iter().map(|j| j.source.as_str()).collect();
    let ids: Vec<&str> = judged.iter().map(|j| j.record_id.as_str()).collect();
    let numbers: Vec<&str> = judged.iter().map(|j| j.number.as_str()).collect();
    let ats: Vec<i64> = judged.iter().map(|j| j.at).collect();
    let dimensions: Vec<serde_json::Value> = judged
        .iter()
        .map(|j| serde_json::to_value(&j.dimensions))
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::corrupt(format!("encoding dimensions: {e}")))?;
    let met: Vec<Option<bool>> = judged.iter().map(|j| j.outcome.sla_met).collect();
    let ratings: Vec<Option<f64>> = judged.iter().map(|j| j.outcome.rating).collect();
    tx.execute(
        "INSERT INTO joined_tickets (tenant_id, source, record_id, number, at, dimensions, sla_met, rating) \
         SELECT $1, s, r, n, a, d, m, ra \
         FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], $6::jsonb[], $7::bool[], $8::float8[]) \
              AS u(s, r, n, a, d, m, ra)",
        &[&tenant, &sources, &ids, &numbers, &ats, &dimensions, &met, &ratings],
    )
    .await
    .or_store()?;
    Ok(())
}

/// The judged tickets of `numbers` as stored (before this commit).
async fn judged_before(tx: &Transaction<'_>, tenant: &str, numbers: &[String]) -> Result<Vec<Judged>, StoreError> {
    let rows = tx
        .query(
            "SELECT source, record_id, number, at, dimensions, sla_met, rating FROM joined_tickets \
             WHERE tenant_id = $1 AND number = ANY($2)",
            &[&tenant, &numbers],
        )
        .await
        .or_store()?;
    rows.into_iter()
        .map(|row| {
            Ok(Judged {
                source: row.get(0),
                record_id: row.get(1),
                number: row.get(2),
                at: row.get(3),
                dimensions: serde_json::from_value(row.get(4))
                    .map_err(|e| StoreError::corrupt(format!("a judged ticket's dimensions: {e}")))?,
                outcome: TicketOutcome {
                    sla_met: row.get(5),
                    rating: row.get(6),
                },
            })
        })
        .collect()
}

/// Signed changes of outcome cells, by (day, dimension, value).
#[derive(Default)]
struct OutcomeDeltas {
    cells: BTreeMap<(i32, String, String), Delta>,
}

/// The change of one outcome cell: [`xla_store::TicketOutcomes`]' counts, signed.
#[derive(Default, Clone, Copy, PartialEq)]
struct Delta {
    sla_tickets: i64,
    sla_met: i64,
    ratings: [i64; 11],
    rated_sla: i64,
    watermelons: i64,
}

impl OutcomeDeltas {
    /// Counts (`sign` 1) or takes out (-1) a ticket's outcome in its day's
    /// cells: the day's total and one per rolled-up dimension.
    fn add(&mut self, judged: &Judged, sign: i64) {
        let outcome = judged.outcome;
        let day = day_of(judged.at);
        let keys = std::iter::once((String::new(), String::new())).chain(judged.dimensions.iter().cloned());
        for (dimension, value) in keys {
            let cell = self.cells.entry((day, dimension, value)).or_default();
            if let Some(met) = outcome.sla_met {
                cell.sla_tickets += sign;
                cell.sla_met += sign * i64::from(met);
            }
            if let Some(rating) = outcome.rating
                && (0.0..=10.0).contains(&rating)
            {
                cell.ratings[rating.round() as usize] += sign;
            }
            if let Some(watermelon) = outcome.watermelon() {
                cell.rated_sla += sign;
                cell.watermelons += sign * i64::from(watermelon);
            }
        }
    }

    /// Adds the changes to the stored cells, each an atomic increment.
    async fn write(self, tx: &Transaction<'_>, tenant: &str) -> Result<(), StoreError> {
        let changed: Vec<_> = self.cells.into_iter().filter(|(_, d)| *d != Delta::default()).collect();
        if changed.is_empty() {
            return Ok(());
        }
        let days: Vec<i32> = changed.iter().map(|((d, _, _), _)| *d).collect();
        let dimensions: Vec<&str> = changed.iter().map(|((_, k, _), _)| k.as_str()).collect();
        let values: Vec<&str> = changed.iter().map(|((_, _, v), _)| v.as_str()).collect();
        let sla_tickets: Vec<i64> = changed.iter().map(|(_, d)| d.sla_tickets).collect();
        let sla_met: Vec<i64> = changed.iter().map(|(_, d)| d.sla_met).collect();
        // One text per cell ("{1,0,...}"): unnest flattens a 2-D array.
        let ratings: Vec<String> = changed
            .iter()
            .map(|(_, d)| {
                let slots: Vec<String> = d.ratings.iter().map(i64::to_string).collect();
                format!("{{{}}}", slots.join(","))
            })
            .collect();
        let rated_sla: Vec<i64> = changed.iter().map(|(_, d)| d.rated_sla).collect();
        let watermelons: Vec<i64> = changed.iter().map(|(_, d)| d.watermelons).collect();
        tx.execute(
            "INSERT INTO outcome_cells AS c (tenant_id, day, dimension, value, sla_tickets, sla_met, ratings, \
                                             rated_sla, watermelons) \
             SELECT $1, d, k, v, st, sm, r::bigint[], rs, w \
             FROM unnest($2::int[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[], $8::bigint[], \
                         $9::bigint[]) AS u(d, k, v, st, sm, r, rs, w) \
             ORDER BY d, k, v \
             ON CONFLICT (tenant_id, day, dimension, value) DO UPDATE SET \
                 sla_tickets = c.sla_tickets + EXCLUDED.sla_tickets, \
                 sla_met = c.sla_met + EXCLUDED.sla_met, \
                 ratings = ARRAY(SELECT a + b FROM unnest(c.ratings, EXCLUDED.ratings) WITH ORDINALITY AS p(a, b, i) \
                                 ORDER BY i), \
                 rated_sla = c.rated_sla + EXCLUDED.rated_sla, \
                 watermelons = c.watermelons + EXCLUDED.watermelons",
            &[
                &tenant,
                &days,
                &dimensions,
                &values,
                &sla_tickets,
                &sla_met,
                &ratings,
                &rated_sla,
                &watermelons,
            ],
        )
        .await
        .or_store()?;
        Ok(())
    }
}

/// Builds the join from the stored rows of every tenant: the upgrade of a
/// database written before schema version 3, run inside its migration.
pub(crate) async fn rebuild(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let metrics = join_metrics();
    let tenants = tx
        .query(
            "SELECT DISTINCT tenant_id FROM written_metrics WHERE metric = ANY($1) ORDER BY 1",
            &[&metrics],
        )
        .await
        .or_store()?;
    for tenant in tenants {
        let tenant: String = tenant.get(0);
        // Exclusive: commits of hosts still running the previous version
        // (which hold it shared) wait until the join is built.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&tenant_lock(&tenant)])
            .await
            .or_store()?;
        tracing::info!(
            tenant,
            "building the ticket join of a PostgreSQL store written before it kept one"
        );
        let numbers: Vec<String> = tx
            .query(
                "SELECT ticket FROM observations WHERE tenant_id = $1 AND metric = ANY($2) AND ticket IS NOT NULL \
                 UNION SELECT ticket FROM retired_observations \
                       WHERE tenant_id = $1 AND metric = ANY($2) AND ticket IS NOT NULL",
                &[&tenant, &metrics],
            )
            .await
            .or_store()?
            .into_iter()
            .map(|row| row.get(0))
            .collect();
        for chunk in numbers.chunks(REBUILD_CHUNK) {
            settle_numbers(tx, &tenant, chunk).await?;
        }
        let unnumbered: Vec<&str> = JOINED_METRICS.to_vec();
        tx.execute(
            "INSERT INTO joined_values (tenant_id, source, record_id, metric, number, at, value, reason) \
             SELECT tenant_id, source, record_id, metric, NULL, at, value, $3 FROM observations \
             WHERE tenant_id = $1 AND metric = ANY($2) AND ticket IS NULL \
             UNION ALL \
             SELECT tenant_id, source, record_id, metric, NULL, at, value, $3 FROM retired_observations \
             WHERE tenant_id = $1 AND metric = ANY($2) AND ticket IS NULL",
            &[&tenant, &unnumbered, &reason_name(&Unjoined::NoTicketNumber)?],
        )
        .await
        .or_store()?;
    }
    Ok(())
}
