//! The ticket join a store keeps at write time: which rows are tickets,
//! which are values joined to them (survey answers, SLA records), and the
//! one rule that picks a value's ticket. A backend that keeps joined
//! rollups (see [`crate::Store::grouped_through`]) applies it on every
//! commit, so a survey answer counts under its ticket's service and
//! assignment group without a read-time join; the read-time join applies
//! the same rule, so both give the same groups.
//!
//! Vocabulary: `docs/metrics.md`. A ticket is a [`JOIN_VIA`] row (one per
//! resolved ticket, at its resolution, carrying the ticket's dimensions);
//! the [`JOIN_OPENING`] row of the same record dates its opening; a joined
//! value is a row of a [`JOINED_METRICS`] metric that names a ticket
//! number in [`JOIN_KEY`].

use crate::{AnswerFacts, TicketFacts, Unjoined, plausible_join};

/// The dimension that names a value's ticket.
pub const JOIN_KEY: &str = "ticket";

/// The metric whose rows are the tickets: one per resolved ticket, with
/// its dimensions (service, assignment group, category, priority...).
pub const JOIN_VIA: &str = "ticket_resolved";

/// The metric of the same ticket records whose value is the hours from the
/// ticket's opening to its resolution (ServiceNow `opened_at` to
/// `resolved_at`).
pub const JOIN_OPENING: &str = "resolution_hours";

/// The dimension an answer and its ticket must agree on when both name it.
pub const JOIN_TYPE_DIMENSION: &str = "ticket_type";

/// Metrics whose values lack their ticket's dimensions and are joined to it
/// at write time: HappySignals' answers and ServiceNow's SLA records
/// (`task_sla` names its task, not the task's service). A store keeps the
/// join as rows are written, so a metric added here needs the stored rows
/// joined again (on sled a new store format whose upgrade rebuilds the
/// join, as format 6's did): its stored rows are in no ticket's state, and
/// sled's index, rebuilt, would not list them under their ticket.
pub const JOINED_METRICS: &[&str] = &[
    "happiness_rating",
    "lost_time_minutes",
    "factor_selected",
    "sla_breached",
    "sla_business_percentage",
];

/// Whether `metric`'s values are joined to their tickets at write time.
pub fn is_joined_metric(metric: &str) -> bool {
    JOINED_METRICS.contains(&metric)
}

/// What a ticket came to, from the values joined to it: whether every SLA
/// was met, and its latest rating. The unit of the SLA-beside-XLA
/// scorecard ([`crate::Store::ticket_outcomes`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TicketOutcome {
    /// `Some(true)` when it has SLA values ([`OUTCOME_SLA_METRIC`]) and
    /// none is breached (every value 0), `Some(false)` when one is; `None`
    /// without SLA values.
    pub sla_met: Option<bool>,
    /// Its latest rating ([`OUTCOME_RATING_METRIC`]), if it was rated.
    pub rating: Option<f64>,
}

impl TicketOutcome {
    /// A *watermelon ticket*: every SLA met, and rated 0-6 (a detractor).
    /// `None` unless it has both SLA values and a rating.
    pub fn watermelon(&self) -> Option<bool> {
        let (met, rating) = (self.sla_met?, self.rating?);
        Some(met && (0.0..6.5).contains(&rating))
    }
}

/// The metric whose values say whether a ticket's SLAs were breached (1).
pub const OUTCOME_SLA_METRIC: &str = "sla_breached";

/// The metric whose latest value is a ticket's rating.
pub const OUTCOME_RATING_METRIC: &str = "happiness_rating";

/// Whether a rating given at `at` (unix ms) takes the place of `latest`
/// (the time and value of the ticket's latest rating so far) as the
/// ticket's rating: one given later does; of two given in the same
/// millisecond, the lower counts (the worse experience is not hidden), so
/// the outcome never depends on the order a backend reads rows in.
pub fn is_later_rating(latest: Option<(i64, f64)>, at: i64, value: f64) -> bool {
    latest.is_none_or(|(latest_at, latest_value)| at > latest_at || (at == latest_at && value < latest_value))
}

/// The scorecard's counts over the tickets of one slice (see
/// [`crate::Store::ticket_outcomes`]).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TicketOutcomes {
    /// Tickets with SLA values.
    pub sla_tickets: u64,
    /// Of those, tickets with every SLA met.
    pub sla_met: u64,
    /// Rated tickets per latest rating 0-10, rounded (a rating outside 0-10
    /// is in no slot; the watermelon scorer refuses such ratings, the
    /// outcome cells do not).
    pub ratings: [u64; 11],
    /// Tickets with both SLA values and a rating.
    pub both: u64,
    /// Of those, watermelon tickets ([`TicketOutcome::watermelon`]).
    pub watermelons: u64,
}

impl TicketOutcomes {
    /// Counts one ticket.
    pub fn add(&mut self, outcome: &TicketOutcome) {
        if let Some(met) = outcome.sla_met {
            self.sla_tickets += 1;
            self.sla_met += u64::from(met);
        }
        if let Some(rating) = outcome.rating
            && (0.0..=10.0).contains(&rating)
        {
            self.ratings[rating.round() as usize] += 1;
        }
        if let Some(watermelon) = outcome.watermelon() {
            self.both += 1;
            self.watermelons += u64::from(watermelon);
        }
    }

    /// Rated tickets.
    pub fn rated(&self) -> u64 {
        self.ratings.iter().sum()
    }
}

/// What [`crate::Store::ticket_outcomes`] answers: per slice (`None`: the
/// whole window), the counts of its tickets.
pub type OutcomesBySlice = std::collections::BTreeMap<Option<String>, TicketOutcomes>;

/// One ticket of a number, as the join sees it: its facts and a key that
/// orders tickets opened at the same time (any total order both the
/// write-time and the read-time join can compute; a record fingerprint).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TicketCandidate<'a, K> {
    /// What [`plausible_join`] checks.
    pub facts: TicketFacts<'a>,
    /// The tie-break key.
    pub key: K,
}

/// The ticket a value joins among the tickets of its number: of those
/// [`plausible_join`] accepts, the one opened last (a ticket number reused
/// by a cloned or another instance: the ticket open when the answer was
/// given), ties to the smallest key; a ticket without a known opening
/// counts as opened before every other. `Err` says why none: the reason of
/// the ticket first in that order, or [`Unjoined::NoTicket`] when the number
/// has none. The result does not depend on the order of `tickets`.
pub fn pick_ticket<'t, K: Ord + Copy>(
    answer: AnswerFacts<'_>,
    tickets: impl IntoIterator<Item = TicketCandidate<'t, K>>,
) -> Result<K, Unjoined> {
    let rank = |t: &TicketCandidate<'t, K>| (std::cmp::Reverse(t.facts.opened.unwrap_or(i64::MIN)), t.key);
    let mut best: Option<(TicketCandidate<'t, K>, Result<(), Unjoined>)> = None;
    for ticket in tickets {
        let verdict = plausible_join(answer, ticket.facts);
        let better = match &best {
            None => true,
            Some((held, held_verdict)) => match (verdict.is_ok(), held_verdict.is_ok()) {
                (true, false) => true,
                (false, true) => false,
                _ => rank(&ticket) < rank(held),
            },
        };
        if better {
            best = Some((ticket, verdict));
        }
    }
    match best {
        None => Err(Unjoined::NoTicket),
        Some((ticket, Ok(()))) => Ok(ticket.key),
        Some((_, Err(reason))) => Err(reason),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600_000;

    fn ticket(opened: Option<i64>, kind: &str, key: u32) -> TicketCandidate<'_, u32> {
        TicketCandidate {
            facts: TicketFacts {
                opened,
                ticket_type: Some(kind),
            },
            key,
        }
    }

    fn answer(at: i64, kind: &str) -> AnswerFacts<'_> {
        AnswerFacts {
            at,
            ticket_type: Some(kind),
        }
    }

    #[test]
    fn the_ticket_open_when_the_answer_was_given_wins() {
        let tickets = [
            ticket(Some(0), "incident", 1),
            ticket(Some(10 * HOUR), "incident", 2),
            ticket(Some(100 * HOUR), "incident", 3),
        ];
        assert_eq!(pick_ticket(answer(20 * HOUR, "incident"), tickets), Ok(2));
        let mut reversed = tickets;
        reversed.reverse();
        assert_eq!(
            pick_ticket(answer(20 * HOUR, "incident"), reversed),
            Ok(2),
            "order-free"
        );
        assert_eq!(pick_ticket(answer(200 * HOUR, "incident"), tickets), Ok(3));
    }

    #[test]
    fn ties_and_unknown_openings() {
        let tickets = [
            ticket(None, "incident", 1),
            ticket(Some(5), "incident", 9),
            ticket(Some(5), "incident", 4),
        ];
        assert_eq!(
            pick_ticket(answer(HOUR, "incident"), tickets),
            Ok(4),
            "same opening: smallest key"
        );
        let unknown = [ticket(None, "incident", 7), ticket(None, "incident", 3)];
        assert_eq!(pick_ticket(answer(0, "incident"), unknown), Ok(3));
    }

    #[test]
    fn no_plausible_ticket_says_why() {
        let none: [TicketCandidate<'_, u32>; 0] = [];
        assert_eq!(pick_ticket(answer(0, "incident"), none), Err(Unjoined::NoTicket));
        let later = [ticket(Some(10 * HOUR), "incident", 1), ticket(Some(0), "request", 2)];
        assert_eq!(
            pick_ticket(answer(5 * HOUR, "incident"), later),
            Err(Unjoined::BeforeTicketOpened),
            "the reason of the latest-opened ticket"
        );
        assert_eq!(pick_ticket(answer(20 * HOUR, "request"), later), Ok(2));
    }
}
