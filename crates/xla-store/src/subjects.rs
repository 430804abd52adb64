//! Queries that join a subject's observations across metrics and sources: one
//! row per ticket (or device) for scorers that judge tickets one by one (the
//! watermelon detector: SLA met *and* rated 0-6), and a metric grouped by a
//! dimension that only its subject's other observations carry (a survey
//! answer counts for the assignment group of its ticket).

/// What [`crate::Store::subject_rows`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectQuery {
    /// Tenant.
    pub tenant: String,
    /// The dimension that names a subject, e.g. `ticket`.
    pub key: String,
    /// Metrics whose values join into the rows.
    pub metrics: Vec<String>,
    /// Start, unix ms, inclusive.
    pub from: i64,
    /// End, unix ms, exclusive.
    pub to: i64,
    /// Only observations with this dimension value.
    pub filter: Option<(String, String)>,
    /// The metric that dates a ticket's opening back from its `at`
    /// (`resolution_hours`), read for the rule of [`plausible_join`]: a
    /// row keeps an answer (an experience value) only when a ticket of the
    /// row may be its ticket. `None`: only the ticket types are compared.
    pub opening: Option<String>,
}

/// What [`crate::Store::grouped_through`] reads.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupThrough {
    /// Tenant.
    pub tenant: String,
    /// The dimension that names a subject, e.g. `ticket`.
    pub key: String,
    /// The metric to roll up.
    pub metric: String,
    /// The dimension to group by, which `metric`'s observations lack.
    pub group_by: String,
    /// Metrics whose observations name each subject's group (`ticket_resolved`,
    /// at the ticket's resolution). They are read from
    /// [`ANSWER_LOOKBACK_MS`] before `from`; where several name the same
    /// subject (two instances' tickets of one number), the first that
    /// [`plausible_join`] accepts wins.
    pub via: Vec<String>,
    /// A metric of the same records as `via` whose value is the hours from
    /// the subject's opening to its `at` (`resolution_hours`): it dates the
    /// opening that [`plausible_join`] checks answers against. `None` skips
    /// the time check.
    pub opening: Option<String>,
    /// Start, unix ms, inclusive.
    pub from: i64,
    /// End, unix ms, exclusive.
    pub to: i64,
    /// Only observations with this dimension value.
    pub filter: Option<(String, String)>,
    /// Join from raw rows even where the store's joined rollups could
    /// answer: to check one against the other (the scoring benchmark
    /// does), never needed for the numbers themselves.
    pub from_rows: bool,
}

impl GroupThrough {
    /// Whether this is the store's own ticket join ([`crate::JOIN_KEY`]
    /// through [`crate::JOIN_VIA`] dated by [`crate::JOIN_OPENING`]) of a
    /// joined metric, without a filter, over whole UTC days, grouped by a
    /// rolled-up dimension: the grouping a backend answers from what it
    /// joined at write time, every stored ticket of a number a candidate
    /// (see [`crate::Store::grouped_through`]).
    pub fn is_store_join(&self) -> bool {
        !self.from_rows
            && self.filter.is_none()
            && self.key == crate::JOIN_KEY
            && self.via.len() == 1
            && self.via[0] == crate::JOIN_VIA
            && self.opening.as_deref() == Some(crate::JOIN_OPENING)
            && crate::is_joined_metric(&self.metric)
            && !crate::UNROLLED_DIMENSIONS.contains(&self.group_by.as_str())
            && crate::whole_days(self.from, self.to)
    }
}

/// Milliseconds an answer may seem to precede its ticket's opening before
/// the join is refused: the survey tool and the ITSM tool keep their own
/// clocks, and a ticket's `opened_at` is rounded to the second.
pub const JOIN_CLOCK_TOLERANCE_MS: i64 = 60 * 60 * 1000;

/// How far before a window the tickets of its answers are looked for: an
/// answer arrives after its ticket is resolved (HappySignals sends the
/// survey on resolution), sometimes days later, so an answer early in a
/// month belongs to a ticket resolved late in the month before.
pub const ANSWER_LOOKBACK_MS: i64 = 30 * crate::DAY_MS;

/// How many unmatched answers [`GroupedThrough::unmatched`] lists.
pub const UNMATCHED_EXAMPLES: usize = 20;

/// What the join knows of a ticket, from its operational observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TicketFacts<'a> {
    /// When it was opened, unix ms: its resolution time less its
    /// `resolution_hours`. `None` when the source gave no resolution time.
    pub opened: Option<i64>,
    /// Its `ticket_type` dimension (`incident`, `request`), if it has one.
    pub ticket_type: Option<&'a str>,
}

/// What the join knows of an answer (a survey response).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnswerFacts<'a> {
    /// When it was given, unix ms.
    pub at: i64,
    /// The `ticket_type` the survey tool names, if it names one.
    pub ticket_type: Option<&'a str>,
}

/// Why an answer was not joined to a ticket of its number.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unjoined {
    /// The answer names no ticket.
    NoTicketNumber,
    /// No ticket of that number is stored (joined from raw rows: none was
    /// resolved in the window or the [`ANSWER_LOOKBACK_MS`] before it).
    NoTicket,
    /// The ticket of that number is of another type (an answer about a
    /// request, an incident of that number).
    OtherType,
    /// The answer was given before the ticket of that number was opened
    /// (less [`JOIN_CLOCK_TOLERANCE_MS`]): it is about another ticket that
    /// carries the same number, typically one of a cloned test instance.
    BeforeTicketOpened,
}

/// Whether an answer may be joined to a ticket of its number; `Err` says
/// why not. The one rule for every path that joins answers to tickets (the
/// write-time join and the read-time one of
/// [`crate::Store::grouped_through`], [`crate::Store::subject_rows`]);
/// among several tickets of one number, [`crate::pick_ticket`] chooses.
///
/// A type both name must agree; an answer may not precede the ticket's
/// opening by more than [`JOIN_CLOCK_TOLERANCE_MS`]. An answer *after* the
/// ticket's resolution is the rule, and one between opening and the last
/// resolution is a reopened ticket's earlier resolution, so neither is
/// refused. The instance a ticket came from is not compared: survey
/// answers do not carry it (HappySignals' export has no instance column),
/// so a clone's answer given after the production ticket of its number was
/// opened still joins.
pub fn plausible_join(answer: AnswerFacts<'_>, ticket: TicketFacts<'_>) -> Result<(), Unjoined> {
    if let (Some(a), Some(t)) = (answer.ticket_type, ticket.ticket_type)
        && !a.eq_ignore_ascii_case(t)
    {
        return Err(Unjoined::OtherType);
    }
    if let Some(opened) = ticket.opened
        && answer.at < opened.saturating_sub(JOIN_CLOCK_TOLERANCE_MS)
    {
        return Err(Unjoined::BeforeTicketOpened);
    }
    Ok(())
}

/// One answer the join left out.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnmatchedAnswer {
    /// The answer's record id (a HappySignals response id).
    pub id: String,
    /// The ticket number it names, if any.
    pub ticket: Option<String>,
    /// When it was given, unix ms.
    pub at: i64,
    /// Why it was not joined.
    pub reason: Unjoined,
}

/// Answers that no ticket took: how many, and the first
/// [`UNMATCHED_EXAMPLES`] in store order.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct UnmatchedAnswers {
    /// How many.
    pub count: u64,
    /// Some of them.
    pub examples: Vec<UnmatchedAnswer>,
}

impl UnmatchedAnswers {
    /// Counts one, listing it while there is room.
    pub fn add(&mut self, answer: impl FnOnce() -> UnmatchedAnswer) {
        self.count += 1;
        if self.examples.len() < UNMATCHED_EXAMPLES {
            self.examples.push(answer());
        }
    }
}

/// What [`crate::Store::grouped_through`] answers.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupedThrough {
    /// The metric's rollup per group of the tickets its values joined.
    pub groups: std::collections::BTreeMap<String, crate::Rollup>,
    /// Values that joined no ticket (see [`plausible_join`]); in no group.
    pub unmatched: UnmatchedAnswers,
}

/// One subject's row as a backend reads its observations, metric by
/// metric in the query's order: the same rules on every backend.
#[derive(Debug, Default)]
pub struct SubjectRowBuilder {
    dimensions: std::collections::BTreeMap<String, String>,
    /// Values in read order; an answer's carries its index in `answers`.
    values: Vec<(String, f64, Option<usize>)>,
    /// The experience values (survey answers): when, and of which ticket type.
    answers: Vec<(i64, Option<String>)>,
    /// The ticket records (operational values): when, and of which type.
    tickets: Vec<(i64, Option<String>)>,
}

impl SubjectRowBuilder {
    /// Takes a dimension unless an earlier observation gave it (where
    /// sources disagree, the first metric listed wins).
    pub fn dimension(&mut self, key: &str, value: &str) {
        if !self.dimensions.contains_key(key) {
            self.dimensions.insert(key.to_string(), value.to_string());
        }
    }

    /// Adds one observation's value of `metric` and its time as
    /// `at_name` (`<metric>.at`). An experience value is an answer, kept by
    /// [`SubjectRowBuilder::finish`] only if a ticket of the row may take it.
    pub fn value(
        &mut self,
        (metric, at_name): (&str, &str),
        value: f64,
        at: i64,
        experience: bool,
        ticket_type: Option<&str>,
    ) {
        let ticket_type = ticket_type.map(str::to_string);
        let answer = if experience {
            self.answers.push((at, ticket_type));
            Some(self.answers.len() - 1)
        } else {
            self.tickets.push((at, ticket_type));
            None
        };
        self.values.push((metric.to_string(), value, answer));
        self.values.push((at_name.to_string(), at as f64, answer));
    }

    /// Whether the row has answers and ticket records both: only then does
    /// its ticket's opening matter.
    pub fn judged(&self) -> bool {
        !self.answers.is_empty() && !self.tickets.is_empty()
    }

    /// The row of subject `key`, without the answers that no ticket of the
    /// row may take ([`plausible_join`]; a cloned instance's answer on a
    /// production ticket of its number). A row without ticket records keeps
    /// its answers: there is nothing to judge them by. `opened` is when the
    /// row's ticket was opened, when known.
    pub fn finish(self, key: String, opened: Option<i64>) -> xla_types::SubjectRow {
        let plausible: Vec<bool> = self
            .answers
            .iter()
            .map(|(at, answer_type)| {
                self.tickets.is_empty()
                    || self.tickets.iter().any(|(_, ticket_type)| {
                        let answer = AnswerFacts {
                            at: *at,
                            ticket_type: answer_type.as_deref(),
                        };
                        let ticket = TicketFacts {
                            opened,
                            ticket_type: ticket_type.as_deref(),
                        };
                        plausible_join(answer, ticket).is_ok()
                    })
            })
            .collect();
        xla_types::SubjectRow {
            key,
            dimensions: self.dimensions.into_iter().collect(),
            values: self
                .values
                .into_iter()
                .filter(|(_, _, answer)| answer.is_none_or(|i| plausible[i]))
                .map(|(name, value, _)| (name, value))
                .collect(),
        }
    }
}
