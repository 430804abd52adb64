//! Per-subject rows for scorers: one row per ticket (or device) joining its
//! values across metrics and sources, for scorers that judge tickets one by
//! one (the watermelon detector: SLA met *and* rated 0-6).

use super::Sled;
use super::block::{Row, stored_record_fingerprint};
use super::keys;
use super::query::row_dimension;
use super::read;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use xla_store::{
    ANSWER_LOOKBACK_MS, AnswerFacts, DAY_MS, GroupThrough, GroupedThrough, JOIN_TYPE_DIMENSION, StoreError,
    SubjectQuery, SubjectRow, SubjectRowBuilder, TicketCandidate, TicketFacts, Unjoined, UnmatchedAnswer, is_rating,
    pick_ticket,
};

impl Sled {
    /// One row per value of `query.key` among the observations of
    /// `query.metrics` in the window, ordered by key. A row holds every
    /// value of those metrics (a ticket with two SLAs has two
    /// `sla_breached` values), each followed by `(<metric>.at, unix ms)`
    /// (exact in an f64) for scorers that order by time, and the union of the observations'
    /// dimensions, the key's own excepted; where sources disagree on a
    /// dimension, the first metric listed wins. Observations without the
    /// key dimension are left out.
    pub(crate) fn subject_rows(&self, query: &SubjectQuery) -> Result<Vec<SubjectRow>, StoreError> {
        let mut inner = self.lock()?;
        let (Some(tenant), Some(key)) = (inner.dict.id(&query.tenant), inner.dict.id(&query.key)) else {
            return Ok(Vec::new());
        };
        if query.from >= query.to {
            return Ok(Vec::new());
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        // The opening metric is read too: without its rows an answer given
        // before its ticket opened would join.
        let metrics: Vec<u32> = query
            .metrics
            .iter()
            .chain(&query.opening)
            .filter_map(|m| inner.dict.id(m))
            .collect();
        if self.any_retired(tenant, &metrics, from_day)? {
            return Err(StoreError::RetiredRows {
                what: "per-subject rows".into(),
            });
        }
        let filter = match &query.filter {
            None => None,
            Some((k, v)) => match inner.dict.id(k) {
                Some(k) => Some((k, v.as_str())),
                None => return Ok(Vec::new()),
            },
        };
        let type_key = inner.dict.id(JOIN_TYPE_DIMENSION);
        let (dict, index) = inner.parts(&*self.db()?, &self.path)?;
        let (dict, index) = (&*dict, &*index);
        let experience = keys::layer_code(xla_types::Layer::Experience);
        let mut rows: BTreeMap<String, SubjectRowBuilder> = BTreeMap::new();
        for metric_name in &query.metrics {
            let Some(metric) = dict.id(metric_name) else {
                continue;
            };
            let at_name = format!("{metric_name}.at");
            read::for_each_live_row(
                &*self.db()?,
                index,
                (tenant, metric),
                (from_day, to_day),
                |_, at, row| {
                    if !(query.from..query.to).contains(&at) {
                        return Ok(());
                    }
                    if let Some((k, v)) = filter
                        && row_dimension(dict, row, k) != Some(v)
                    {
                        return Ok(());
                    }
                    let Some(subject) = row_dimension(dict, row, key) else {
                        return Ok(());
                    };
                    let building = match rows.get_mut(subject) {
                        Some(building) => building,
                        None => rows.entry(subject.to_string()).or_default(),
                    };
                    let rolled = row.dims.iter().filter_map(|(k, v)| Some((*k, dict.string(*v)?)));
                    let inline = row.inline.iter().map(|(k, v)| (*k, v.as_str()));
                    for (k, v) in rolled.chain(inline).filter(|(k, _)| *k != key) {
                        if let Some(name) = dict.string(k) {
                            building.dimension(name, v);
                        }
                    }
                    let ticket_type = type_key.and_then(|k| row_dimension(dict, row, k));
                    building.value(
                        (metric_name, &at_name),
                        row.value.get(),
                        at,
                        row.layer == experience,
                        ticket_type,
                    );
                    Ok(())
                },
            )?;
        }
        let opened = self.openings(tenant, key, query, &rows, dict, index)?;
        Ok(rows
            .into_iter()
            .map(|(subject, building)| {
                let opened = opened.get(&subject).copied();
                building.finish(subject, opened)
            })
            .collect())
    }

    /// When each ticket of `rows` that has answers beside it was opened: the
    /// earliest of its `query.opening` records' `at` less their hours (read
    /// whether or not the query asked for that metric; a ticket's SLA
    /// records carry no opening).
    fn openings(
        &self,
        tenant: u32,
        key: u32,
        query: &SubjectQuery,
        rows: &BTreeMap<String, SubjectRowBuilder>,
        dict: &super::dict::Dictionary,
        index: &super::index::Index,
    ) -> Result<FxHashMap<String, i64>, StoreError> {
        let mut opened = FxHashMap::default();
        let judged = SubjectRowBuilder::judged;
        let Some(metric) = query.opening.as_deref().and_then(|m| dict.id(m)) else {
            return Ok(opened);
        };
        if !rows.values().any(judged) {
            return Ok(opened);
        }
        let days = (keys::day_of(query.from), keys::day_of(query.to - 1) + 1);
        read::for_each_live_row(&*self.db()?, index, (tenant, metric), days, |_, at, row| {
            let hours = row.value.get();
            if let Some(subject) = row_dimension(dict, row, key)
                && rows.get(subject).is_some_and(judged)
                && hours.is_finite()
                && hours >= 0.0
            {
                let at = at.saturating_sub((hours * HOUR_MS) as i64);
                opened
                    .entry(subject.to_string())
                    .and_modify(|o: &mut i64| *o = (*o).min(at))
                    .or_insert(at);
            }
            Ok(())
        })?;
        Ok(opened)
    }
}

/// A ticket a value may join: one `via` observation of its number.
struct Candidate {
    /// Its `at` (for a ticket, its resolution), unix ms.
    at: i64,
    /// Its record fingerprint: what orders tickets opened at the same
    /// time, as in the write-time join.
    fingerprint: u128,
    /// Its group, if it names one.
    group: Option<String>,
    /// Its `ticket_type`, as an index into [`Candidates::types`].
    ticket_type: Option<u8>,
}

/// Every subject's candidates: the first by subject hash, and any others
/// (the same number from another instance) beside it.
#[derive(Default)]
struct Candidates {
    first: FxHashMap<u64, Candidate>,
    more: FxHashMap<u64, Vec<Candidate>>,
    /// The few ticket types seen (`incident`, `request`).
    types: Vec<String>,
    /// Each candidate's opening, by (subject hash, `at`).
    opened: FxHashMap<(u64, i64), i64>,
}

impl Candidates {
    fn add(&mut self, subject: u64, (at, fingerprint): (i64, u128), group: Option<&str>, ticket_type: Option<&str>) {
        let ticket_type = ticket_type.and_then(|t| self.type_index(t));
        let candidate = Candidate {
            at,
            fingerprint,
            group: group.map(str::to_string),
            ticket_type,
        };
        match self.first.entry(subject) {
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(candidate);
            }
            std::collections::hash_map::Entry::Occupied(_) => self.more.entry(subject).or_default().push(candidate),
        }
    }

    /// A type's index, interned; `None` past 255 distinct types (then the
    /// type is not compared).
    fn type_index(&mut self, ticket_type: &str) -> Option<u8> {
        let index = match self.types.iter().position(|t| t == ticket_type) {
            Some(index) => index,
            None => {
                self.types.push(ticket_type.to_string());
                self.types.len() - 1
            }
        };
        u8::try_from(index).ok()
    }

    /// The group of the candidate of `subject` that `answer` joins by
    /// [`pick_ticket`] (`Ok(None)`: it joined one without a group), or why
    /// none.
    fn join(&self, subject: u64, answer: AnswerFacts<'_>) -> Result<Option<&str>, Unjoined> {
        let Some(first) = self.first.get(&subject) else {
            return Err(Unjoined::NoTicket);
        };
        let more = self.more.get(&subject).map_or(&[][..], Vec::as_slice);
        let all = || std::iter::once(first).chain(more);
        let tickets = all().enumerate().map(|(i, candidate)| TicketCandidate {
            facts: TicketFacts {
                opened: self.opened.get(&(subject, candidate.at)).copied(),
                ticket_type: candidate.ticket_type.map(|t| self.types[usize::from(t)].as_str()),
            },
            key: (candidate.fingerprint, i),
        });
        let (_, picked) = pick_ticket(answer, tickets)?;
        Ok(all().nth(picked).and_then(|c| c.group.as_deref()))
    }
}

/// Milliseconds in an hour, for `resolution_hours`.
const HOUR_MS: f64 = 3_600_000.0;

impl Sled {
    /// `query.metric` rolled up per value of `query.group_by` as the
    /// subjects' `via` observations name it: a survey answer counts for the
    /// assignment group of its ticket, when [`xla_store::plausible_join`] accepts the
    /// pair; values that join no ticket are counted and listed as
    /// unmatched. The same join as [`xla_store::Store::subject_rows`], without
    /// building a row per subject.
    pub(crate) fn grouped_through(&self, query: &GroupThrough) -> Result<GroupedThrough, StoreError> {
        let mut inner = self.lock()?;
        let dict = &inner.dict;
        let Some(tenant) = dict.id(&query.tenant) else {
            return Ok(GroupedThrough::default());
        };
        // A key or group never stored still leaves the values unmatched or
        // groupless: they are counted, not dropped.
        let (key, group) = (dict.id(&query.key), dict.id(&query.group_by));
        let type_key = dict.id(JOIN_TYPE_DIMENSION);
        if query.from >= query.to {
            return Ok(GroupedThrough::default());
        }
        let from_day = keys::day_of(query.from);
        let to_day = keys::day_of(query.to - 1) + 1;
        if query.is_store_join() {
            let Some(metric) = dict.id(&query.metric) else {
                return Ok(GroupedThrough::default());
            };
            return super::join::grouped(&*self.db()?, dict, (tenant, metric, group), (from_day, to_day));
        }
        let via: Vec<u32> = query.via.iter().filter_map(|m| dict.id(m)).collect();
        let read: Vec<u32> = std::iter::once(&query.metric)
            .chain(&query.opening)
            .filter_map(|m| dict.id(m))
            .chain(via.iter().copied())
            .collect();
        if self.any_retired(tenant, &read, from_day)? {
            return Err(StoreError::RetiredRows {
                what: "values grouped through their subjects".into(),
            });
        }
        let (via_from, via_from_day) = self.lookback_start(tenant, &via, query.from)?;
        let filter = match &query.filter {
            None => None,
            Some((k, v)) => match inner.dict.id(k) {
                Some(k) => Some((k, v.as_str())),
                None => return Ok(GroupedThrough::default()),
            },
        };
        let (dict, index) = inner.parts(&*self.db()?, &self.path)?;
        let (dict, index) = (&*dict, &*index);
        let filtered = |row: &Row| filter.is_none_or(|(k, v)| row_dimension(dict, row, k) == Some(v));
        let subject_hash = |subject: &str| xxhash_rust::xxh3::xxh3_64(subject.as_bytes());
        let via_days = (via_from_day, to_day);
        // Pass 1: the tickets each subject may be, with their groups.
        let mut candidates = Candidates::default();
        for via in &query.via {
            let Some(metric) = dict.id(via) else { continue };
            read::for_each_live_row(&*self.db()?, index, (tenant, metric), via_days, |origin, at, row| {
                if !(via_from..query.to).contains(&at) || !filtered(row) {
                    return Ok(());
                }
                if let Some(subject) = key.and_then(|key| row_dimension(dict, row, key)) {
                    let ticket_type = type_key.and_then(|k| row_dimension(dict, row, k));
                    let fingerprint = stored_record_fingerprint(tenant, origin.source, metric, &row.id);
                    candidates.add(
                        subject_hash(subject),
                        (at, fingerprint),
                        group.and_then(|group| row_dimension(dict, row, group)),
                        ticket_type,
                    );
                }
                Ok(())
            })?;
        }
        // Pass 1b: when each was opened.
        if let Some(metric) = query.opening.as_deref().and_then(|m| dict.id(m)) {
            read::for_each_live_row(&*self.db()?, index, (tenant, metric), via_days, |_, at, row| {
                if !(via_from..query.to).contains(&at) {
                    return Ok(());
                }
                let hours = row.value.get();
                if let Some(subject) = key.and_then(|key| row_dimension(dict, row, key))
                    && hours.is_finite()
                    && hours >= 0.0
                {
                    let subject = subject_hash(subject);
                    if candidates.first.contains_key(&subject) {
                        // Several openings at one resolution: the earliest, as the write-time join.
                        let opened = at.saturating_sub((hours * HOUR_MS) as i64);
                        candidates
                            .opened
                            .entry((subject, at))
                            .and_modify(|o| *o = (*o).min(opened))
                            .or_insert(opened);
                    }
                }
                Ok(())
            })?;
        }
        // Pass 2: the metric's values under the group of the ticket each joins.
        let mut out = GroupedThrough::default();
        let Some(metric) = dict.id(&query.metric) else {
            return Ok(out);
        };
        let rating = is_rating(&query.metric);
        read::for_each_live_row(
            &*self.db()?,
            index,
            (tenant, metric),
            (from_day, to_day),
            |_, at, row| {
                if !(query.from..query.to).contains(&at) || !filtered(row) {
                    return Ok(());
                }
                let subject = key.and_then(|key| row_dimension(dict, row, key));
                let answer = AnswerFacts {
                    at,
                    ticket_type: type_key.and_then(|k| row_dimension(dict, row, k)),
                };
                let joined = match subject {
                    None => Err(Unjoined::NoTicketNumber),
                    Some(subject) => candidates.join(subject_hash(subject), answer),
                };
                match joined {
                    Ok(None) => {}
                    Ok(Some(group)) => match out.groups.get_mut(group) {
                        Some(rollup) => rollup.add(row.value.get(), rating),
                        None => out
                            .groups
                            .entry(group.to_string())
                            .or_default()
                            .add(row.value.get(), rating),
                    },
                    Err(reason) => out.unmatched.add(|| UnmatchedAnswer {
                        id: row.id.to_text(),
                        ticket: subject.map(str::to_string),
                        at,
                        reason,
                    }),
                }
                Ok(())
            },
        )?;
        Ok(out)
    }

    /// Where the `via` observations of a window starting at `from` are read
    /// from (unix ms, and its day): [`ANSWER_LOOKBACK_MS`] earlier, but not
    /// into days retention retired for any of them.
    fn lookback_start(&self, tenant: u32, via: &[u32], from: i64) -> Result<(i64, i32), StoreError> {
        let from_day = keys::day_of(from);
        let mut start = from.saturating_sub(ANSWER_LOOKBACK_MS);
        let mut day = keys::day_of(start);
        while day < from_day && self.any_retired(tenant, via, day)? {
            day += 1;
            start = i64::from(day) * DAY_MS;
        }
        Ok((start, day))
    }
}
