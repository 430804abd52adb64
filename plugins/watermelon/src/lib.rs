//! `watermelon`: green outside, red inside. Finds the slices (services,
//! assignment groups, ...) whose SLAs look fine while their users are
//! unhappy, from per-ticket rows.
//!
//! Per ticket (one row: its `sla_breached` values, one per SLA definition,
//! and its `happiness_rating`):
//!
//! - *SLA met*: at least one SLA value and none of them 1;
//! - *rating*: the latest `happiness_rating` (a re-surveyed ticket speaks
//!   once, with its latest answer);
//! - *watermelon ticket*: SLA met and rated 0-6.
//!
//! Per slice (the whole window, and each value of the `group_by` dimension):
//!
//! - `sla_compliance` = 100 × tickets with every SLA met / tickets with SLA
//!   values (sample: tickets with SLA values);
//! - `happiness` = % of 9-10 minus % of 0-6 over the slice's rated tickets
//!   (sample: rated tickets);
//! - `watermelon_tickets` = number of watermelon tickets (sample: tickets
//!   with both SLA values and a rating); the detail lists up to 20, by
//!   ticket number;
//! - `watermelon` = 1 when `sla_compliance` ≥ `sla_target` and `happiness` <
//!   `happiness_target`, else 0 (sample: rated tickets); only for slices
//!   with both numbers and at least `min_tickets` rated tickets. The detail
//!   gives both numbers against their targets and the watermelon tickets.
//!
//! Tickets with neither SLA values nor a rating are not counted anywhere.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use xla_sdk::formulas::{NEGATIVE_SCORES, Ratings, percent_true, rating_score};
use xla_sdk::subject::Subject;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// Ratings of a ticket's survey.
pub const HAPPINESS: &str = "happiness_rating";
/// One per SLA definition of a ticket, 1 when breached.
pub const SLA_BREACHED: &str = "sla_breached";
/// Most watermelon tickets a detail lists.
pub const LISTED_TICKETS: usize = 20;

/// The scorer's parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Parameters {
    /// Ticket dimension to slice by; the XLA's group-by when absent.
    pub group_by: Option<String>,
    /// SLA compliance at or above which a slice is green outside.
    pub sla_target: f64,
    /// Happiness below which a slice is red inside.
    pub happiness_target: f64,
    /// Rated tickets a slice needs for a flag.
    pub min_tickets: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            group_by: None,
            sla_target: 90.0,
            happiness_target: 50.0,
            min_tickets: 5,
        }
    }
}

impl Parameters {
    fn check(&self) -> Result<(), PluginError> {
        if !(0.0..=100.0).contains(&self.sla_target) {
            return Err(PluginError::Config(format!(
                "parameters field `sla_target`: a percent from 0 to 100, got {}",
                self.sla_target
            )));
        }
        if !(-100.0..=100.0).contains(&self.happiness_target) {
            return Err(PluginError::Config(format!(
                "parameters field `happiness_target`: happiness runs from -100 to 100, got {}",
                self.happiness_target
            )));
        }
        if self.min_tickets == 0 {
            return Err(PluginError::Config("parameters field `min_tickets`: at least 1".into()));
        }
        Ok(())
    }
}

/// What one ticket contributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ticket {
    /// Whether every SLA was met, when it has SLA values.
    sla_met: Option<bool>,
    /// Its latest rating.
    rating: Option<u8>,
}

impl Ticket {
    fn read(subject: &Subject) -> Result<Ticket, PluginError> {
        let mut sla_met = None;
        for reading in subject.readings(SLA_BREACHED) {
            let breached = match reading.value {
                0.0 => false,
                1.0 => true,
                other => {
                    return Err(PluginError::BadData(format!(
                        "ticket `{}`: `{SLA_BREACHED}` must be 0 or 1, got {other}",
                        subject.key
                    )));
                }
            };
            sla_met = Some(sla_met.unwrap_or(true) && !breached);
        }
        let rating = match subject.latest(HAPPINESS) {
            Some(reading) => Some(rating_score(reading.value).ok_or_else(|| {
                PluginError::BadData(format!(
                    "ticket `{}`: `{HAPPINESS}` must be a whole number from 0 to 10, got {}",
                    subject.key, reading.value
                ))
            })?),
            None => None,
        };
        Ok(Ticket { sla_met, rating })
    }

    fn is_watermelon(&self) -> bool {
        self.sla_met == Some(true) && self.rating.is_some_and(|r| NEGATIVE_SCORES.contains(&r))
    }
}

/// Counts of one slice.
#[derive(Debug, Default)]
struct Slice {
    sla_tickets: u64,
    sla_met: u64,
    ratings: Ratings,
    both: u64,
    watermelons: u64,
    /// The first [`LISTED_TICKETS`] watermelon ticket numbers in order.
    listed: BTreeSet<String>,
}

impl Slice {
    fn add(&mut self, key: &str, ticket: Ticket) {
        if let Some(met) = ticket.sla_met {
            self.sla_tickets += 1;
            self.sla_met += u64::from(met);
        }
        if let Some(rating) = ticket.rating {
            self.ratings.add(rating);
        }
        if ticket.sla_met.is_some() && ticket.rating.is_some() {
            self.both += 1;
        }
        if ticket.is_watermelon() {
            self.watermelons += 1;
            self.listed.insert(key.to_string());
            if self.listed.len() > LISTED_TICKETS {
                self.listed.pop_last();
            }
        }
    }
}

/// Slices of the window, filled one ticket at a time.
#[derive(Debug)]
pub struct Tally {
    parameters: Parameters,
    slices: BTreeMap<Option<String>, Slice>,
}

impl Tally {
    /// An empty tally; `parameters.group_by` names the slicing dimension.
    pub fn new(parameters: Parameters) -> Result<Tally, PluginError> {
        parameters.check()?;
        Ok(Tally {
            parameters,
            slices: BTreeMap::new(),
        })
    }

    /// Counts one ticket in the whole window and in its slice.
    pub fn add(&mut self, subject: &Subject) -> Result<(), PluginError> {
        let ticket = Ticket::read(subject)?;
        if ticket.sla_met.is_none() && ticket.rating.is_none() {
            return Ok(());
        }
        for slice in subject.slices(self.parameters.group_by.as_deref()) {
            self.slices
                .entry(slice.map(str::to_string))
                .or_default()
                .add(&subject.key, ticket);
        }
        Ok(())
    }

    /// The scores of every slice: the whole window first, then slices by name.
    pub fn scores(self) -> Vec<Score> {
        let parameters = &self.parameters;
        let mut scores = Vec::new();
        for (group, slice) in self.slices {
            let score = |name: &str, value: f64, sample_size: u64, detail: Option<String>| Score {
                name: name.into(),
                group: group.clone(),
                value,
                sample_size,
                detail,
            };
            let compliance = percent_true(slice.sla_met as f64, slice.sla_tickets);
            let rated = slice.ratings.total();
            let happiness = slice.ratings.happiness();
            if let Some(compliance) = compliance {
                scores.push(score("sla_compliance", compliance, slice.sla_tickets, None));
            }
            if let Some(happiness) = happiness {
                scores.push(score("happiness", happiness, rated, None));
            }
            let tickets: Vec<&String> = slice.listed.iter().collect();
            let listed = serde_json::json!({ "tickets": tickets }).to_string();
            scores.push(score(
                "watermelon_tickets",
                slice.watermelons as f64,
                slice.both,
                Some(listed),
            ));
            let (Some(compliance), Some(happiness)) = (compliance, happiness) else {
                continue;
            };
            if rated < parameters.min_tickets {
                continue;
            }
            let flag = compliance >= parameters.sla_target && happiness < parameters.happiness_target;
            let detail = Flag {
                sla_compliance: compliance,
                sla_target: parameters.sla_target,
                happiness,
                happiness_target: parameters.happiness_target,
                sla_tickets: slice.sla_tickets,
                rated_tickets: rated,
                watermelon_tickets: slice.watermelons,
                tickets,
            };
            let detail = serde_json::to_string(&detail).ok();
            scores.push(score("watermelon", if flag { 1.0 } else { 0.0 }, rated, detail));
        }
        scores
    }
}

/// The detail of a `watermelon` flag.
#[derive(Serialize)]
struct Flag<'a> {
    sla_compliance: f64,
    sla_target: f64,
    happiness: f64,
    happiness_target: f64,
    sla_tickets: u64,
    rated_tickets: u64,
    watermelon_tickets: u64,
    tickets: Vec<&'a String>,
}

/// The watermelon scorer.
pub struct Watermelon;

impl Scorer for Watermelon {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![SLA_BREACHED.into(), HAPPINESS.into()],
            needs_rows: true,
        }
    }

    fn score(input: &ScoreInput, rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let mut parameters: Parameters = xla_sdk::parse_parameters(&input.parameters)?;
        parameters.group_by = parameters.group_by.or_else(|| input.group_by.clone());
        let mut tally = Tally::new(parameters)?;
        let rows = rows.ok_or_else(|| {
            PluginError::Permanent("watermelon reads per-ticket rows (needs_rows), and the host sent none".into())
        })?;
        rows.try_for_each(|row| tally.add(&Subject::from_row(row)?))?;
        Ok(tally.scores())
    }
}

xla_sdk::export_scorer!(Watermelon);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use xla_sdk::SubjectRow;
    use xla_sdk::testkit::row;

    const T: i64 = 1_790_812_800_000;

    /// A ticket of `service` with one SLA value per entry of `breached` and
    /// an optional rating.
    fn ticket(key: &str, service: Option<&str>, breached: &[f64], rating: Option<f64>) -> SubjectRow {
        let dimensions: Vec<(&str, &str)> = service.iter().map(|s| ("service", *s)).collect();
        let mut values: Vec<(&str, f64, i64)> = breached.iter().map(|b| (SLA_BREACHED, *b, T)).collect();
        values.extend(rating.map(|r| (HAPPINESS, r, T + 1)));
        row(key, &dimensions, &values)
    }

    fn tally(parameters: &str, rows: Vec<SubjectRow>) -> Result<Vec<Score>, PluginError> {
        let mut parameters: Parameters = xla_sdk::parse_parameters(parameters)?;
        parameters.group_by = parameters.group_by.or(Some("service".into()));
        let mut tally = Tally::new(parameters)?;
        for row in rows {
            tally.add(&Subject::from_row(row)?)?;
        }
        Ok(tally.scores())
    }

    fn find<'a>(scores: &'a [Score], name: &str, group: Option<&str>) -> Option<&'a Score> {
        scores.iter().find(|s| s.name == name && s.group.as_deref() == group)
    }

    fn detail(score: &Score) -> Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    /// VPN: 10 tickets, every SLA met (some have two), rated 3 4 5 2 6 9 10 8 1 0.
    /// Email: 5 tickets, the one rated 3 breached an SLA; rated 9 9 10 3 8.
    /// Printing: 3 tickets, met, rated 2 2 2. One ticket has no service; one has no rating.
    fn window() -> Vec<SubjectRow> {
        let mut rows = Vec::new();
        for (i, rating) in [3.0, 4.0, 5.0, 2.0, 6.0, 9.0, 10.0, 8.0, 1.0, 0.0]
            .into_iter()
            .enumerate()
        {
            let slas: &[f64] = if i % 2 == 0 { &[0.0, 0.0] } else { &[0.0] };
            rows.push(ticket(&format!("INC10{i}"), Some("VPN"), slas, Some(rating)));
        }
        for (i, (rating, breached)) in [(9.0, 0.0), (9.0, 0.0), (10.0, 0.0), (3.0, 1.0), (8.0, 0.0)]
            .into_iter()
            .enumerate()
        {
            rows.push(ticket(
                &format!("INC20{i}"),
                Some("Email"),
                &[0.0, breached],
                Some(rating),
            ));
        }
        for i in 0..3 {
            rows.push(ticket(&format!("INC30{i}"), Some("Printing"), &[0.0], Some(2.0)));
        }
        rows.push(ticket("INC400", None, &[0.0], Some(10.0)));
        rows.push(ticket("INC500", Some("Email"), &[1.0], None));
        rows
    }

    #[test]
    fn a_green_but_unhappy_slice_is_a_watermelon() {
        let scores = tally("", window()).unwrap();
        let vpn = Some("VPN");
        assert_eq!(
            find(&scores, "sla_compliance", vpn).map(|s| (s.value, s.sample_size)),
            Some((100.0, 10))
        );
        // 2 positive (9, 10), 7 negative, 1 neutral (8) of 10: −50.
        assert_eq!(
            find(&scores, "happiness", vpn).map(|s| (s.value, s.sample_size)),
            Some((-50.0, 10))
        );
        let count = find(&scores, "watermelon_tickets", vpn).unwrap();
        assert_eq!((count.value, count.sample_size), (7.0, 10));
        let flag = find(&scores, "watermelon", vpn).unwrap();
        assert_eq!((flag.value, flag.sample_size), (1.0, 10));
        let detail = detail(flag);
        assert_eq!(detail["sla_compliance"], json!(100.0));
        assert_eq!(detail["sla_target"], json!(90.0));
        assert_eq!(detail["happiness"], json!(-50.0));
        assert_eq!(detail["happiness_target"], json!(50.0));
        assert_eq!(
            detail["tickets"],
            json!(["INC100", "INC101", "INC102", "INC103", "INC104", "INC108", "INC109"])
        );
    }

    #[test]
    fn a_slice_missing_its_sla_target_is_no_watermelon() {
        let scores = tally("", window()).unwrap();
        let email = Some("Email");
        // INC203 breached; INC500 (no rating) breached: 4 of 6 tickets with all SLAs met.
        let compliance = find(&scores, "sla_compliance", email).unwrap();
        assert_eq!((compliance.value, compliance.sample_size), (400.0 / 6.0, 6));
        // 9 9 10 3 8: 3 positive, 1 negative of 5 = 40.
        assert_eq!(find(&scores, "happiness", email).map(|s| s.value), Some(40.0));
        assert_eq!(find(&scores, "watermelon_tickets", email).map(|s| s.value), Some(0.0));
        assert_eq!(find(&scores, "watermelon", email).map(|s| s.value), Some(0.0));
    }

    #[test]
    fn the_whole_window_and_small_slices() {
        let scores = tally("", window()).unwrap();
        // Printing has 3 rated tickets, under min_tickets 5: numbers but no flag.
        assert_eq!(
            find(&scores, "happiness", Some("Printing")).map(|s| s.value),
            Some(-100.0)
        );
        assert_eq!(
            find(&scores, "watermelon_tickets", Some("Printing")).map(|s| s.value),
            Some(3.0)
        );
        assert!(find(&scores, "watermelon", Some("Printing")).is_none());
        // Whole window: 20 tickets with SLAs, 18 met (INC203, INC500 not) = 90;
        // 19 rated: positive 2 + 3 + 1 (INC400) = 6, negative 7 + 1 + 3 = 11 → −5/19.
        let compliance = find(&scores, "sla_compliance", None).unwrap();
        assert_eq!((compliance.value, compliance.sample_size), (90.0, 20));
        let happiness = find(&scores, "happiness", None).unwrap();
        assert_eq!((happiness.value, happiness.sample_size), (-500.0 / 19.0, 19));
        assert_eq!(find(&scores, "watermelon_tickets", None).map(|s| s.value), Some(10.0));
        // 90 ≥ 90 and −26 < 50: the whole window is a watermelon too.
        assert_eq!(find(&scores, "watermelon", None).map(|s| s.value), Some(1.0));
        let groups: Vec<_> = scores.iter().map(|s| s.group.as_deref()).collect();
        let mut sorted = groups.clone();
        sorted.sort();
        assert_eq!(groups, sorted, "slices come in order");
    }

    #[test]
    fn targets_come_from_parameters() {
        let scores = tally(
            r#"{"sla_target": 95, "happiness_target": -60, "min_tickets": 3}"#,
            window(),
        )
        .unwrap();
        // VPN: −50 is not below −60. Printing: 100 ≥ 95, −100 < −60, and 3 rated is now enough.
        assert_eq!(find(&scores, "watermelon", Some("VPN")).map(|s| s.value), Some(0.0));
        assert_eq!(
            find(&scores, "watermelon", Some("Printing")).map(|s| s.value),
            Some(1.0)
        );
        // The whole window's 90 is under 95.
        assert_eq!(find(&scores, "watermelon", None).map(|s| s.value), Some(0.0));
    }

    #[test]
    fn the_detail_lists_at_most_20_tickets_in_order() {
        let rows = (0..25)
            .rev()
            .map(|i| ticket(&format!("INC{i:03}"), Some("VPN"), &[0.0], Some(1.0)));
        let scores = tally("", rows.collect()).unwrap();
        let count = find(&scores, "watermelon_tickets", None).unwrap();
        assert_eq!(count.value, 25.0);
        let tickets = detail(count)["tickets"].as_array().unwrap().clone();
        assert_eq!(tickets.len(), 20);
        assert_eq!(
            (tickets[0].clone(), tickets[19].clone()),
            (json!("INC000"), json!("INC019"))
        );
    }

    #[test]
    fn the_latest_rating_counts() {
        let resurveyed = row(
            "INC1",
            &[("service", "VPN")],
            &[
                (SLA_BREACHED, 0.0, T),
                (HAPPINESS, 10.0, T + 5),
                (HAPPINESS, 2.0, T + 1),
            ],
        );
        let scores = tally("", vec![resurveyed]).unwrap();
        assert_eq!(find(&scores, "happiness", None).map(|s| s.value), Some(100.0));
        assert_eq!(find(&scores, "watermelon_tickets", None).map(|s| s.value), Some(0.0));
    }

    #[test]
    fn impossible_values_are_bad_data_naming_ticket_and_metric() {
        let err = tally("", vec![ticket("INC9", Some("VPN"), &[2.0], Some(5.0))]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("ticket `INC9`: `sla_breached`"), "{err}");
        let err = tally("", vec![ticket("INC9", Some("VPN"), &[0.0], Some(5.5))]).unwrap_err();
        assert!(err.to_string().contains("ticket `INC9`: `happiness_rating`"), "{err}");
    }

    #[test]
    fn bad_targets_are_config_errors() {
        for parameters in [
            r#"{"sla_target": 120}"#,
            r#"{"happiness_target": -101}"#,
            r#"{"min_tickets": 0}"#,
        ] {
            let err = tally(parameters, window()).unwrap_err();
            assert!(matches!(err, PluginError::Config(_)), "{parameters}: {err:?}");
        }
    }

    #[test]
    fn no_rows_no_scores_and_rows_are_required() {
        assert!(tally("", vec![]).unwrap().is_empty());
        let input = xla_sdk::testkit::score_input("", vec![]);
        let err = Watermelon::score(&input, None).unwrap_err();
        assert!(err.to_string().contains("needs_rows"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = Watermelon::info();
        assert_eq!(info.metrics, [SLA_BREACHED, HAPPINESS]);
        assert!(info.needs_rows);
        assert!(serde_json::from_str::<Value>(&info.parameters_schema).is_ok());
    }
}
