//! `pareto`: how concentrated perceived lost time is. HappySignals reports
//! that about 13 % of tickets cause 80 % of the lost time; this scorer
//! measures it per slice from per-ticket rows.
//!
//! The population is the tickets with a `lost_time_minutes` value (a survey
//! answer to the lost-time question, 0 included). A rated ticket whose
//! respondent skipped the question is left out: its lost time is unknown,
//! not zero, and counting it would make the concentration look sharper than
//! the answers show. A ticket's minutes are the sum of its values.
//!
//! Tickets are sorted by minutes, most first (ties by ticket number);
//! `pareto_ticket_share` = 100 × k / n, where n is the number of tickets and
//! k the fewest top tickets whose minutes reach `lost_time_share` (default
//! 80) percent of the total. The sample size is n; the detail gives the
//! total minutes, n, k, the `top` (default 10) costliest tickets with their
//! minutes, and the Pareto `curve`: 101 numbers, where `curve[i]` is
//! 100 × (minutes of the costliest ⌈i·n/100⌉ tickets) / total, in full
//! precision, so `curve[0]` = 0 and `curve[100]` = 100. A slice whose
//! tickets report no lost time at all gets no share: nothing to concentrate.
//!
//! With `cross_by`, a second ticket dimension, and a group-by in effect,
//! every group also gets a `lost_time_hotspots`: its total minutes, over its
//! n tickets, with the detail `{"cross_by", "cells"}`, one cell
//! `{value, tickets, minutes}` per value of `cross_by` among the group's
//! tickets, most minutes first (ties by value, the `null` cell last). A
//! ticket without the `cross_by` dimension counts in the `null` cell. The
//! population is the share's, and a group whose total is 0 still gets its
//! hotspots. The shares come first (the whole window, then groups by name),
//! then the hotspots (groups by name).

use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;
use xla_sdk::subject::Subject;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// Minutes of work a ticket cost its user, per survey answer.
pub const LOST_TIME: &str = "lost_time_minutes";

/// The points of the Pareto curve: every whole percent of tickets, 0 to 100.
pub const CURVE_POINTS: usize = 101;

/// The scorer's parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Parameters {
    /// Ticket dimension to slice by; the XLA's group-by when absent.
    pub group_by: Option<String>,
    /// Percent of the total lost time the top tickets must reach.
    pub lost_time_share: f64,
    /// Tickets listed in the detail.
    pub top: usize,
    /// Second ticket dimension each group's lost time is broken down by
    /// (`lost_time_hotspots`); none when absent.
    pub cross_by: Option<String>,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            group_by: None,
            lost_time_share: 80.0,
            top: 10,
            cross_by: None,
        }
    }
}

impl Parameters {
    /// Checks the values; `group_by` must already be the one in effect.
    fn check(&self) -> Result<(), PluginError> {
        if !(self.lost_time_share > 0.0 && self.lost_time_share <= 100.0) {
            return Err(PluginError::Config(format!(
                "parameters field `lost_time_share`: a percent above 0 and at most 100, got {}",
                self.lost_time_share
            )));
        }
        if self.top > 100 {
            return Err(PluginError::Config(format!(
                "parameters field `top`: at most 100 tickets, got {}",
                self.top
            )));
        }
        if let Some(cross_by) = &self.cross_by {
            if !xla_sdk::is_plain_name(cross_by) {
                return Err(PluginError::Config(format!(
                    "parameters field `cross_by`: a ticket dimension name of 1 to 64 letters, digits, `_`, `.` or `-`, \
                     such as `assignment_group`, got `{cross_by}`"
                )));
            }
            if self.group_by.as_deref() == Some(cross_by.as_str()) {
                return Err(PluginError::Config(format!(
                    "parameters field `cross_by`: `{cross_by}` is already the group-by; name another ticket dimension \
                     (e.g. `assignment_group` when grouping by `service`) or leave `cross_by` out"
                )));
            }
        }
        Ok(())
    }
}

/// The fewest tickets, costliest first, whose minutes reach `share` percent
/// of the total; `None` when the total is 0. `minutes` must be sorted, most
/// first.
pub fn tickets_for_share(minutes: &[f64], share: f64) -> Option<usize> {
    let total: f64 = minutes.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let target = total * share / 100.0;
    // A sum of the same numbers in another order can differ in its last
    // bits; without the tolerance exactly 80 % could read as just under.
    let tolerance = total * 1e-12;
    let mut cumulative = 0.0;
    for (i, m) in minutes.iter().enumerate() {
        cumulative += m;
        if cumulative + tolerance >= target {
            return Some(i + 1);
        }
    }
    Some(minutes.len())
}

/// The Pareto curve: element `i` (0 to 100) is the percent of the total
/// minutes held by the costliest ⌈i·n/100⌉ of the n tickets, unrounded;
/// `None` when the total is 0. `minutes` must be sorted, most first.
pub fn pareto_curve(minutes: &[f64]) -> Option<Vec<f64>> {
    let total: f64 = minutes.iter().sum();
    if total <= 0.0 {
        return None;
    }
    let n = minutes.len() as u64;
    // prefix[k]: the minutes of the costliest k tickets, summed in the same
    // order as the total, so prefix[n] is the total to the bit.
    let mut prefix = Vec::with_capacity(minutes.len() + 1);
    let mut cumulative = 0.0;
    prefix.push(cumulative);
    for m in minutes {
        cumulative += m;
        prefix.push(cumulative);
    }
    let curve = (0..CURVE_POINTS as u64)
        .map(|i| {
            // k ≤ n. In u64: on wasm32 `i * n` in usize would overflow
            // from 43 million tickets.
            let k = usize::try_from((i * n).div_ceil(100)).unwrap_or(minutes.len());
            let held = prefix[k];
            // 100 × held first: whole minutes then give whole percents exactly
            // (60 of 100 is 60, not 60.00000000000001). The last tickets may
            // hold 0 minutes, so "all of it" is tested on the sum, not on k.
            if held >= total {
                100.0
            } else {
                (100.0 * held / total).min(100.0)
            }
        })
        .collect();
    Some(curve)
}

/// One of the costliest tickets, in the detail.
#[derive(Debug, Serialize)]
struct Costly<'a> {
    ticket: &'a str,
    minutes: f64,
}

/// The detail of a `pareto_ticket_share`.
#[derive(Debug, Serialize)]
struct Detail<'a> {
    total_minutes: f64,
    tickets: usize,
    top_tickets: usize,
    lost_time_share: f64,
    top: Vec<Costly<'a>>,
    curve: Vec<f64>,
}

/// A group's tickets with one value of the `cross_by` dimension.
#[derive(Debug, Default, Clone, Copy)]
struct Cell {
    tickets: u64,
    minutes: f64,
}

/// One cell of a `lost_time_hotspots` detail; `value` is `null` for the
/// tickets without the `cross_by` dimension.
#[derive(Debug, Serialize)]
struct HotCell<'a> {
    value: Option<&'a str>,
    tickets: u64,
    minutes: f64,
}

/// The detail of a `lost_time_hotspots`.
#[derive(Debug, Serialize)]
struct HotspotDetail<'a> {
    cross_by: &'a str,
    cells: Vec<HotCell<'a>>,
}

/// Most minutes first, then by value, the `null` cell after the named ones.
fn hot_order(a: &HotCell, b: &HotCell) -> Ordering {
    b.minutes.total_cmp(&a.minutes).then_with(|| match (a.value, b.value) {
        (Some(a), Some(b)) => a.cmp(b),
        (a, b) => a.is_none().cmp(&b.is_none()),
    })
}

/// Every slice's tickets with their minutes, filled one ticket at a time.
#[derive(Debug)]
pub struct Tally {
    parameters: Parameters,
    slices: BTreeMap<Option<String>, Vec<(String, f64)>>,
    /// Per group, per value of `cross_by` (`None`: the ticket lacks it).
    cells: BTreeMap<String, BTreeMap<Option<String>, Cell>>,
}

impl Tally {
    /// An empty tally; `parameters.group_by` names the slicing dimension.
    pub fn new(parameters: Parameters) -> Result<Tally, PluginError> {
        parameters.check()?;
        Ok(Tally {
            parameters,
            slices: BTreeMap::new(),
            cells: BTreeMap::new(),
        })
    }

    /// Adds one ticket's lost time to the whole window and its slice, and to
    /// its group's `cross_by` cell.
    pub fn add(&mut self, subject: &Subject) -> Result<(), PluginError> {
        let readings = subject.readings(LOST_TIME);
        if let Some(bad) = readings.iter().find(|r| r.value < 0.0) {
            return Err(PluginError::BadData(format!(
                "ticket `{}`: `{LOST_TIME}` cannot be negative, got {}",
                subject.key, bad.value
            )));
        }
        let Some(minutes) = subject.sum(LOST_TIME) else {
            return Ok(());
        };
        for slice in subject.slices(self.parameters.group_by.as_deref()) {
            self.slices
                .entry(slice.map(str::to_string))
                .or_default()
                .push((subject.key.clone(), minutes));
            if let (Some(group), Some(cross_by)) = (slice, self.parameters.cross_by.as_deref()) {
                let cell = self
                    .cells
                    .entry(group.to_string())
                    .or_default()
                    .entry(subject.dimension(cross_by).map(str::to_string))
                    .or_default();
                cell.tickets += 1;
                cell.minutes += minutes;
            }
        }
        Ok(())
    }

    /// The share of every slice (the whole window first, then slices by
    /// name), then with `cross_by` the hotspots of every group by name.
    pub fn scores(self) -> Vec<Score> {
        let Tally {
            parameters,
            slices,
            mut cells,
        } = self;
        let mut scores = Vec::new();
        let mut hotspots = Vec::new();
        for (group, mut tickets) in slices {
            tickets.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let minutes: Vec<f64> = tickets.iter().map(|t| t.1).collect();
            let total_minutes: f64 = minutes.iter().sum();
            let n = tickets.len();
            if let (Some(group), Some(cross_by)) = (&group, parameters.cross_by.as_deref()) {
                let group_cells = cells.remove(group).unwrap_or_default();
                hotspots.push(hotspot(group, cross_by, total_minutes, n, &group_cells));
            }
            let (Some(k), Some(curve)) = (
                tickets_for_share(&minutes, parameters.lost_time_share),
                pareto_curve(&minutes),
            ) else {
                continue;
            };
            let detail = Detail {
                total_minutes,
                tickets: n,
                top_tickets: k,
                lost_time_share: parameters.lost_time_share,
                top: tickets
                    .iter()
                    .take(parameters.top)
                    .map(|(ticket, minutes)| Costly {
                        ticket,
                        minutes: *minutes,
                    })
                    .collect(),
                curve,
            };
            scores.push(Score {
                name: "pareto_ticket_share".into(),
                group,
                value: 100.0 * k as f64 / n as f64,
                sample_size: n as u64,
                detail: serde_json::to_string(&detail).ok(),
            });
        }
        scores.extend(hotspots);
        scores
    }
}

/// The `lost_time_hotspots` of one group: its total minutes over its `n`
/// tickets, broken down by the `cross_by` cells.
fn hotspot(group: &str, cross_by: &str, total_minutes: f64, n: usize, cells: &BTreeMap<Option<String>, Cell>) -> Score {
    let mut list: Vec<HotCell> = cells
        .iter()
        .map(|(value, cell)| HotCell {
            value: value.as_deref(),
            tickets: cell.tickets,
            minutes: cell.minutes,
        })
        .collect();
    list.sort_by(hot_order);
    let detail = HotspotDetail { cross_by, cells: list };
    Score {
        name: "lost_time_hotspots".into(),
        group: Some(group.to_string()),
        value: total_minutes,
        sample_size: n as u64,
        detail: serde_json::to_string(&detail).ok(),
    }
}

/// The lost-time Pareto scorer.
pub struct Pareto;

impl Scorer for Pareto {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![LOST_TIME.into()],
            needs_rows: true,
        }
    }

    fn score(input: &ScoreInput, rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let mut parameters: Parameters = xla_sdk::parse_parameters(&input.parameters)?;
        parameters.group_by = parameters.group_by.or_else(|| input.group_by.clone());
        let mut tally = Tally::new(parameters)?;
        let rows = rows.ok_or_else(|| {
            PluginError::Permanent("pareto reads per-ticket rows (needs_rows), and the host sent none".into())
        })?;
        rows.try_for_each(|row| tally.add(&Subject::from_row(row)?))?;
        Ok(tally.scores())
    }
}

xla_sdk::export_scorer!(Pareto);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use xla_sdk::SubjectRow;
    use xla_sdk::testkit::row;

    const T: i64 = 1_790_812_800_000;

    fn ticket(key: &str, service: &str, minutes: &[f64]) -> SubjectRow {
        let values: Vec<(&str, f64, i64)> = minutes.iter().map(|m| (LOST_TIME, *m, T)).collect();
        row(key, &[("service", service)], &values)
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

    fn detail(score: &Score) -> Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    #[test]
    fn two_of_ten_tickets_holding_80_percent_is_20() {
        // 400 + 400 of 1,000 minutes: exactly 80 %.
        let mut minutes = vec![400.0, 400.0];
        minutes.extend([25.0; 8]);
        assert_eq!(tickets_for_share(&minutes, 80.0), Some(2));
        // One minute short, and a third ticket is needed.
        minutes[1] = 399.0;
        minutes[2] = 26.0;
        assert_eq!(tickets_for_share(&minutes, 80.0), Some(3));
    }

    #[test]
    fn the_benchmark_13_percent_by_hand() {
        // 100 tickets: 12 × 268 + 264 = 3,480 minutes in the top 13, 87 × 10 = 870 in
        // the rest; 3,480 of 4,350 is 80 %, and 12 tickets (3,216) are not enough.
        let mut rows = Vec::new();
        for i in 0..100 {
            let minutes = match i {
                0..12 => 268.0,
                12 => 264.0,
                _ => 10.0,
            };
            rows.push(ticket(&format!("INC{i:04}"), "Email", &[minutes]));
        }
        let scores = tally("", rows).unwrap();
        let whole = &scores[0];
        assert_eq!(
            (whole.name.as_str(), whole.group.as_deref()),
            ("pareto_ticket_share", None)
        );
        assert_eq!((whole.value, whole.sample_size), (13.0, 100));
        let detail = detail(whole);
        assert_eq!(detail["total_minutes"], json!(4350.0));
        assert_eq!(detail["tickets"], json!(100));
        assert_eq!(detail["top_tickets"], json!(13));
        let top = detail["top"].as_array().unwrap();
        assert_eq!(top.len(), 10);
        assert_eq!(top[0], json!({"ticket": "INC0000", "minutes": 268.0}));
    }

    #[test]
    fn per_slice_with_minutes_summed_per_ticket() {
        // VPN: INC1 answered twice (100 + 200), INC2 50, INC3 0 → 300 of 350 is 85.7 %:
        // one ticket of three. Email: 10, 10 → 80 % of 20 needs both: 100 %.
        // INC6 has a rating but no lost-time answer: not in the population.
        let rows = vec![
            ticket("INC1", "VPN", &[100.0, 200.0]),
            ticket("INC2", "VPN", &[50.0]),
            ticket("INC3", "VPN", &[0.0]),
            ticket("INC4", "Email", &[10.0]),
            ticket("INC5", "Email", &[10.0]),
            row("INC6", &[("service", "Email")], &[("happiness_rating", 3.0, T)]),
        ];
        let scores = tally("", rows).unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.group.as_deref(), s.value, s.sample_size))
            .collect();
        // Whole: 370 minutes, 80 % = 296: INC1 (300) alone, 1 of 5.
        assert_eq!(
            got,
            [
                (None, 20.0, 5),
                (Some("Email"), 100.0, 2),
                (Some("VPN"), 100.0 / 3.0, 3)
            ]
        );
        assert_eq!(
            detail(&scores[2])["top"][0],
            json!({"ticket": "INC1", "minutes": 300.0})
        );
        // Ties list by ticket number.
        assert_eq!(detail(&scores[1])["top"][0]["ticket"], json!("INC4"));
    }

    #[test]
    fn parameters_change_share_and_listing() {
        let mut minutes = vec![400.0, 400.0];
        minutes.extend([25.0; 8]);
        let rows: Vec<_> = minutes
            .iter()
            .enumerate()
            .map(|(i, m)| ticket(&format!("INC{i}"), "VPN", &[*m]))
            .collect();
        let scores = tally(r#"{"lost_time_share": 50, "top": 1}"#, rows).unwrap();
        // Half of 1,000 minutes is 500: 400 (40 %) is not enough, 400 + 400 is.
        assert_eq!(scores[0].value, 20.0);
        assert_eq!(detail(&scores[0])["top"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn slices_with_no_lost_time_get_nothing() {
        let scores = tally("", vec![ticket("INC1", "VPN", &[0.0]), ticket("INC2", "VPN", &[0.0])]).unwrap();
        assert!(scores.is_empty(), "{scores:?}");
        assert_eq!(tickets_for_share(&[], 80.0), None);
    }

    #[test]
    fn negative_minutes_are_bad_data_naming_the_ticket() {
        let err = tally("", vec![ticket("INC7", "VPN", &[-3.0])]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("ticket `INC7`: `lost_time_minutes`"), "{err}");
    }

    #[test]
    fn bad_parameters_are_config_errors() {
        for parameters in [
            r#"{"lost_time_share": 0}"#,
            r#"{"lost_time_share": 101}"#,
            r#"{"top": 1000}"#,
        ] {
            let err = tally(parameters, vec![]).unwrap_err();
            assert!(matches!(err, PluginError::Config(_)), "{parameters}: {err:?}");
        }
    }

    #[test]
    fn the_curve_by_hand() {
        // 60 + 20 + 15 + 5 = 100 minutes, so percents are the prefix sums.
        let curve = pareto_curve(&[60.0, 20.0, 15.0, 5.0]).unwrap();
        assert_eq!(curve.len(), 101);
        // i % of 4 tickets, rounded up: 0 → 0, 1..=25 → 1, 26..=50 → 2, 51..=75 → 3, 76.. → 4.
        let points = [0, 1, 25, 26, 50, 51, 75, 76, 100].map(|i| curve[i]);
        assert_eq!(points, [0.0, 60.0, 60.0, 80.0, 80.0, 95.0, 95.0, 100.0, 100.0]);
        assert!(curve.windows(2).all(|w| w[0] <= w[1]), "{curve:?}");

        // 3 tickets: 33 % is 0.99 of a ticket (1), 34 % is 1.02 (2), 67 % is 2.01 (3).
        let curve = pareto_curve(&[50.0, 30.0, 20.0]).unwrap();
        assert_eq!([33, 34, 66, 67].map(|i| curve[i]), [50.0, 80.0, 80.0, 100.0]);
        // Unrounded: 2 of 3 minutes.
        let curve = pareto_curve(&[2.0, 1.0]).unwrap();
        assert_eq!(curve[50], 200.0 / 3.0);
        // A ticket with 0 minutes adds nothing: half the tickets already hold all of it.
        assert_eq!(pareto_curve(&[0.2, 0.1, 0.0, 0.0]).map(|c| c[50]), Some(100.0));
        assert_eq!(pareto_curve(&[0.0, 0.0]), None);
        assert_eq!(pareto_curve(&[]), None);
    }

    #[test]
    fn the_curve_is_in_each_share_detail() {
        let rows = vec![
            ticket("INC1", "VPN", &[15.0]),
            ticket("INC2", "VPN", &[20.0, 40.0]),
            ticket("INC3", "VPN", &[5.0]),
            ticket("INC4", "VPN", &[20.0]),
        ];
        let scores = tally("", rows).unwrap();
        // Sorted INC2 60, INC4 20, INC1 15, INC3 5, as in the_curve_by_hand.
        for score in &scores {
            let curve = &detail(score)["curve"];
            assert_eq!(curve.as_array().map(Vec::len), Some(101));
            assert_eq!(
                [0, 25, 26, 50, 100].map(|i| curve[i].clone()),
                [json!(0.0), json!(60.0), json!(80.0), json!(80.0), json!(100.0)]
            );
        }
    }

    fn staffed(key: &str, dimensions: &[(&str, &str)], minutes: f64) -> SubjectRow {
        row(key, dimensions, &[(LOST_TIME, minutes, T)])
    }

    #[test]
    fn hotspots_by_hand_keep_tickets_without_the_cross_dimension() {
        let rows = vec![
            staffed("INC1", &[("service", "VPN"), ("assignment_group", "Network")], 100.0),
            staffed("INC2", &[("service", "VPN"), ("assignment_group", "Network")], 20.0),
            staffed("INC3", &[("service", "VPN"), ("assignment_group", "Desk")], 120.0),
            staffed("INC4", &[("service", "VPN")], 30.0),
            staffed("INC5", &[("service", "Email"), ("assignment_group", "Desk")], 10.0),
            staffed("INC6", &[("service", "Email"), ("assignment_group", "Network")], 0.0),
            staffed("INC7", &[("service", "Email")], 10.0),
            staffed("INC8", &[("service", "Chat"), ("assignment_group", "Desk")], 0.0),
            // No service: the whole window only.
            staffed("INC9", &[("assignment_group", "Network")], 50.0),
            // Rated without a lost-time answer: not in the population.
            row(
                "INC10",
                &[("service", "VPN"), ("assignment_group", "Desk")],
                &[("happiness_rating", 3.0, T)],
            ),
        ];
        let scores = tally(r#"{"cross_by": "assignment_group"}"#, rows).unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.name.as_str(), s.group.as_deref(), s.value, s.sample_size))
            .collect();
        // Window: 340 minutes, 80 % = 272: 120 + 100 + 50 + 30, 4 of 9. Email: 16 of 20
        // needs 10 + 10, 2 of 3. VPN: 216 of 270 needs 120 + 100, 2 of 4. Chat's 0
        // minutes get no share but do get hotspots.
        assert_eq!(
            got,
            [
                ("pareto_ticket_share", None, 100.0 * 4.0 / 9.0, 9),
                ("pareto_ticket_share", Some("Email"), 100.0 * 2.0 / 3.0, 3),
                ("pareto_ticket_share", Some("VPN"), 50.0, 4),
                ("lost_time_hotspots", Some("Chat"), 0.0, 1),
                ("lost_time_hotspots", Some("Email"), 20.0, 3),
                ("lost_time_hotspots", Some("VPN"), 270.0, 4),
            ]
        );
        // VPN: Desk and Network tie at 120 (by value), then the 30 minutes without a group.
        assert_eq!(
            detail(&scores[5]),
            json!({"cross_by": "assignment_group", "cells": [
                {"value": "Desk", "tickets": 1, "minutes": 120.0},
                {"value": "Network", "tickets": 2, "minutes": 120.0},
                {"value": null, "tickets": 1, "minutes": 30.0},
            ]})
        );
        // Email: the null cell ties with Desk at 10 and comes after it; Network's 0 stays.
        assert_eq!(
            detail(&scores[4])["cells"],
            json!([
                {"value": "Desk", "tickets": 1, "minutes": 10.0},
                {"value": null, "tickets": 1, "minutes": 10.0},
                {"value": "Network", "tickets": 1, "minutes": 0.0},
            ])
        );
        assert_eq!(
            detail(&scores[3])["cells"],
            json!([{"value": "Desk", "tickets": 1, "minutes": 0.0}])
        );
    }

    #[test]
    fn hotspots_need_a_group_by() {
        let parameters = Parameters {
            cross_by: Some("assignment_group".into()),
            ..Parameters::default()
        };
        let mut tally = Tally::new(parameters).unwrap();
        let subject = Subject::from_row(staffed("INC1", &[("assignment_group", "Desk")], 5.0)).unwrap();
        tally.add(&subject).unwrap();
        let names: Vec<_> = tally.scores().into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["pareto_ticket_share"]);
    }

    #[test]
    fn bad_cross_by_is_a_config_error_naming_the_field() {
        let long = "a".repeat(65);
        for (parameters, hint) in [
            (r#"{"cross_by": ""}"#.to_string(), "1 to 64 letters"),
            (r#"{"cross_by": "assignment group"}"#.to_string(), "1 to 64 letters"),
            (r#"{"cross_by": "gruppe/ä"}"#.to_string(), "1 to 64 letters"),
            (format!(r#"{{"cross_by": "{long}"}}"#), "1 to 64 letters"),
            (
                r#"{"cross_by": "service"}"#.to_string(),
                "`service` is already the group-by",
            ),
            (
                r#"{"group_by": "assignment_group", "cross_by": "assignment_group"}"#.to_string(),
                "name another ticket dimension",
            ),
        ] {
            let err = tally(&parameters, vec![]).unwrap_err();
            assert!(matches!(err, PluginError::Config(_)), "{parameters}: {err:?}");
            let message = err.to_string();
            assert!(
                message.contains("parameters field `cross_by`") && message.contains(hint),
                "{parameters}: {message}"
            );
        }
        // 64 characters of the allowed set are a name.
        let longest = format!(r#"{{"cross_by": "{}"}}"#, &"a._-9".repeat(13)[..64]);
        assert!(tally(&longest, vec![]).is_ok());
    }

    #[test]
    fn describes_what_it_reads() {
        let info = Pareto::info();
        assert_eq!(info.metrics, [LOST_TIME]);
        assert!(info.needs_rows);
        let schema: Value = serde_json::from_str(&info.parameters_schema).expect("JSON schema");
        assert_eq!(schema["properties"]["cross_by"]["maxLength"], json!(64));
        let err = Pareto::score(&xla_sdk::testkit::score_input("", vec![]), None).unwrap_err();
        assert!(err.to_string().contains("needs_rows"), "{err}");
    }
}
