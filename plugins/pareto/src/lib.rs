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
//! total minutes, n, k and the `top` (default 10) costliest tickets with
//! their minutes. A slice whose tickets report no lost time at all gets no
//! share: nothing to concentrate.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xla_sdk::subject::Subject;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// Minutes of work a ticket cost its user, per survey answer.
pub const LOST_TIME: &str = "lost_time_minutes";

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
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            group_by: None,
            lost_time_share: 80.0,
            top: 10,
        }
    }
}

impl Parameters {
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
}

/// Every slice's tickets with their minutes, filled one ticket at a time.
#[derive(Debug)]
pub struct Tally {
    parameters: Parameters,
    slices: BTreeMap<Option<String>, Vec<(String, f64)>>,
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

    /// Adds one ticket's lost time to the whole window and its slice.
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
        }
        Ok(())
    }

    /// The share of every slice: the whole window first, then slices by name.
    pub fn scores(self) -> Vec<Score> {
        let mut scores = Vec::new();
        for (group, mut tickets) in self.slices {
            tickets.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            let minutes: Vec<f64> = tickets.iter().map(|t| t.1).collect();
            let Some(k) = tickets_for_share(&minutes, self.parameters.lost_time_share) else {
                continue;
            };
            let n = tickets.len();
            let detail = Detail {
                total_minutes: minutes.iter().sum(),
                tickets: n,
                top_tickets: k,
                lost_time_share: self.parameters.lost_time_share,
                top: tickets
                    .iter()
                    .take(self.parameters.top)
                    .map(|(ticket, minutes)| Costly {
                        ticket,
                        minutes: *minutes,
                    })
                    .collect(),
            };
            scores.push(Score {
                name: "pareto_ticket_share".into(),
                group,
                value: 100.0 * k as f64 / n as f64,
                sample_size: n as u64,
                detail: serde_json::to_string(&detail).ok(),
            });
        }
        scores
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
    fn describes_what_it_reads() {
        let info = Pareto::info();
        assert_eq!(info.metrics, [LOST_TIME]);
        assert!(info.needs_rows);
        assert!(serde_json::from_str::<Value>(&info.parameters_schema).is_ok());
        let err = Pareto::score(&xla_sdk::testkit::score_input("", vec![]), None).unwrap_err();
        assert!(err.to_string().contains("needs_rows"), "{err}");
    }
}
