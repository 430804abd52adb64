//! `follow-up`: the list of unhappy end users a human should call back,
//! from per-ticket rows.
//!
//! A ticket needs a follow-up when its latest `happiness_rating` is 0-6 (a
//! re-surveyed ticket is judged by its latest answer). Per slice (the whole
//! window, and each value of the `group_by` dimension):
//!
//! - `follow_up_count` = the number of such tickets; its sample size is the
//!   number of rated tickets in the slice;
//! - its detail lists up to `limit` (default 50) of them, oldest response
//!   first (by `happiness_rating.at`; ties by ticket number; a response
//!   without a time last), each as `{ticket, rating, at, lost_time_minutes,
//!   assignment_group, service}`, the last four only when known:
//!   `{"items": [...], "limit": 50}`.
//!
//! A slice with no rated ticket gets no result; one with rated tickets but
//! none unhappy gets a count of 0.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xla_sdk::formulas::{NEGATIVE_SCORES, rating_score};
use xla_sdk::subject::Subject;
use xla_sdk::{PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// Ratings of a ticket's survey.
pub const HAPPINESS: &str = "happiness_rating";
/// Minutes of work the ticket cost its user, when answered.
pub const LOST_TIME: &str = "lost_time_minutes";

/// The scorer's parameters.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Parameters {
    /// Ticket dimension to slice by; the XLA's group-by when absent.
    pub group_by: Option<String>,
    /// Items a slice's detail lists.
    pub limit: usize,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            group_by: None,
            limit: 50,
        }
    }
}

/// Most items a detail may list, so a detail stays a detail.
pub const MAX_LIMIT: usize = 1000;

/// One ticket to follow up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Ticket number.
    pub ticket: String,
    /// Its latest rating, 0-6.
    pub rating: u8,
    /// When that rating was given, unix ms UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<i64>,
    /// Lost time the user reported, in minutes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_time_minutes: Option<f64>,
    /// Assignment group of the ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_group: Option<String>,
    /// Business service of the ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A slice: its rated tickets and those to follow up.
#[derive(Debug, Default)]
struct Slice {
    rated: u64,
    items: Vec<Item>,
}

/// Every slice's follow-ups, filled one ticket at a time.
#[derive(Debug)]
pub struct Tally {
    parameters: Parameters,
    slices: BTreeMap<Option<String>, Slice>,
}

impl Tally {
    /// An empty tally; `parameters.group_by` names the slicing dimension.
    pub fn new(parameters: Parameters) -> Result<Tally, PluginError> {
        if parameters.limit > MAX_LIMIT {
            return Err(PluginError::Config(format!(
                "parameters field `limit`: at most {MAX_LIMIT} items, got {}",
                parameters.limit
            )));
        }
        Ok(Tally {
            parameters,
            slices: BTreeMap::new(),
        })
    }

    /// Counts one ticket in the whole window and its slice.
    pub fn add(&mut self, subject: &Subject) -> Result<(), PluginError> {
        let Some(latest) = subject.latest(HAPPINESS) else {
            return Ok(());
        };
        let rating = rating_score(latest.value).ok_or_else(|| {
            PluginError::BadData(format!(
                "ticket `{}`: `{HAPPINESS}` must be a whole number from 0 to 10, got {}",
                subject.key, latest.value
            ))
        })?;
        let item = NEGATIVE_SCORES.contains(&rating).then(|| Item {
            ticket: subject.key.clone(),
            rating,
            at: latest.at,
            lost_time_minutes: subject.sum(LOST_TIME),
            assignment_group: subject.dimension("assignment_group").map(str::to_string),
            service: subject.dimension("service").map(str::to_string),
        });
        for slice in subject.slices(self.parameters.group_by.as_deref()) {
            let slice = self.slices.entry(slice.map(str::to_string)).or_default();
            slice.rated += 1;
            slice.items.extend(item.clone());
        }
        Ok(())
    }

    /// The list of every slice: the whole window first, then slices by name.
    pub fn scores(self) -> Vec<Score> {
        let limit = self.parameters.limit;
        let mut scores = Vec::new();
        for (group, mut slice) in self.slices {
            // Oldest first; unknown times last; ties by ticket number.
            slice
                .items
                .sort_by(|a, b| (a.at.is_none(), a.at, &a.ticket).cmp(&(b.at.is_none(), b.at, &b.ticket)));
            let count = slice.items.len();
            slice.items.truncate(limit);
            let detail = serde_json::json!({ "items": slice.items, "limit": limit });
            scores.push(Score {
                name: "follow_up_count".into(),
                group,
                value: count as f64,
                sample_size: slice.rated,
                detail: Some(detail.to_string()),
            });
        }
        scores
    }
}

/// The follow-up list scorer.
pub struct FollowUp;

impl Scorer for FollowUp {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![HAPPINESS.into(), LOST_TIME.into()],
            needs_rows: true,
        }
    }

    fn score(input: &ScoreInput, rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let mut parameters: Parameters = xla_sdk::parse_parameters(&input.parameters)?;
        parameters.group_by = parameters.group_by.or_else(|| input.group_by.clone());
        let mut tally = Tally::new(parameters)?;
        let rows = rows.ok_or_else(|| {
            PluginError::Permanent("follow-up reads per-ticket rows (needs_rows), and the host sent none".into())
        })?;
        rows.try_for_each(|row| tally.add(&Subject::from_row(row)?))?;
        Ok(tally.scores())
    }
}

xla_sdk::export_scorer!(FollowUp);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use xla_sdk::SubjectRow;
    use xla_sdk::testkit::row;

    const T: i64 = 1_790_812_800_000;
    const MINUTE: i64 = 60_000;

    /// A ticket of `group` rated `rating` at `T + minutes`, with optional lost time.
    fn ticket(key: &str, group: &str, rating: f64, minutes: i64, lost: Option<f64>) -> SubjectRow {
        let mut values = vec![(HAPPINESS, rating, T + minutes * MINUTE)];
        values.extend(lost.map(|l| (LOST_TIME, l, T + minutes * MINUTE)));
        row(key, &[("assignment_group", group), ("service", "VPN")], &values)
    }

    fn tally(parameters: &str, rows: Vec<SubjectRow>) -> Result<Vec<Score>, PluginError> {
        let mut parameters: Parameters = xla_sdk::parse_parameters(parameters)?;
        parameters.group_by = parameters.group_by.or(Some("assignment_group".into()));
        let mut tally = Tally::new(parameters)?;
        for row in rows {
            tally.add(&Subject::from_row(row)?)?;
        }
        Ok(tally.scores())
    }

    fn detail(score: &Score) -> Value {
        serde_json::from_str(score.detail.as_deref().expect("a detail")).expect("JSON detail")
    }

    fn tickets(score: &Score) -> Vec<String> {
        detail(score)["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["ticket"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    fn window() -> Vec<SubjectRow> {
        vec![
            ticket("INC5", "Service Desk", 2.0, 50, Some(90.0)),
            ticket("INC1", "Network", 6.0, 30, None),
            ticket("INC2", "Network", 7.0, 10, Some(15.0)),
            ticket("INC3", "Service Desk", 0.0, 10, None),
            ticket("INC4", "Network", 10.0, 5, None),
            ticket("INC6", "Network", 4.0, 30, Some(0.0)),
        ]
    }

    #[test]
    fn unhappy_tickets_oldest_first_per_slice() {
        let scores = tally("", window()).unwrap();
        let got: Vec<_> = scores
            .iter()
            .map(|s| (s.name.as_str(), s.group.as_deref(), s.value, s.sample_size))
            .collect();
        assert_eq!(
            got,
            [
                ("follow_up_count", None, 4.0, 6),
                ("follow_up_count", Some("Network"), 2.0, 4),
                ("follow_up_count", Some("Service Desk"), 2.0, 2),
            ]
        );
        // INC3 at +10, INC1 and INC6 both at +30 (by number), INC5 at +50.
        assert_eq!(tickets(&scores[0]), ["INC3", "INC1", "INC6", "INC5"]);
        assert_eq!(tickets(&scores[1]), ["INC1", "INC6"]);
    }

    #[test]
    fn items_carry_what_a_human_needs() {
        let scores = tally("", window()).unwrap();
        let items = detail(&scores[2])["items"].clone();
        assert_eq!(
            items,
            json!([
                {"ticket": "INC3", "rating": 0, "at": T + 10 * MINUTE,
                 "assignment_group": "Service Desk", "service": "VPN"},
                {"ticket": "INC5", "rating": 2, "at": T + 50 * MINUTE, "lost_time_minutes": 90.0,
                 "assignment_group": "Service Desk", "service": "VPN"},
            ])
        );
    }

    #[test]
    fn the_limit_cuts_the_list_not_the_count() {
        let scores = tally(r#"{"limit": 1}"#, window()).unwrap();
        assert_eq!(scores[0].value, 4.0);
        assert_eq!(tickets(&scores[0]), ["INC3"]);
        assert_eq!(detail(&scores[0])["limit"], json!(1));
        let err = tally(r#"{"limit": 5000}"#, window()).unwrap_err();
        assert!(matches!(err, PluginError::Config(_)), "{err:?}");
    }

    #[test]
    fn the_latest_rating_decides_and_untimed_responses_come_last() {
        let happier = row(
            "INC1",
            &[("assignment_group", "Network")],
            &[(HAPPINESS, 2.0, T), (HAPPINESS, 9.0, T + MINUTE)],
        );
        let untimed = SubjectRow {
            key: "INC0".into(),
            dimensions: vec![],
            values: vec![(HAPPINESS.into(), 3.0)],
        };
        let scores = tally("", vec![untimed, happier, ticket("INC9", "Network", 1.0, 500, None)]).unwrap();
        assert_eq!((scores[0].value, scores[0].sample_size), (2.0, 3));
        assert_eq!(tickets(&scores[0]), ["INC9", "INC0"]);
    }

    #[test]
    fn slices_without_ratings_get_nothing_happy_slices_get_zero() {
        let lost_only = row("INC7", &[("assignment_group", "Desktop")], &[(LOST_TIME, 30.0, T)]);
        let happy = ticket("INC8", "Network", 9.0, 0, None);
        let scores = tally("", vec![lost_only, happy]).unwrap();
        let got: Vec<_> = scores.iter().map(|s| (s.group.as_deref(), s.value)).collect();
        assert_eq!(got, [(None, 0.0), (Some("Network"), 0.0)]);
    }

    #[test]
    fn a_rating_out_of_range_is_bad_data_naming_the_ticket() {
        let err = tally("", vec![ticket("INC4", "Network", 11.0, 0, None)]).unwrap_err();
        assert!(matches!(err, PluginError::BadData(_)), "{err:?}");
        assert!(err.to_string().contains("ticket `INC4`: `happiness_rating`"), "{err}");
    }

    #[test]
    fn describes_what_it_reads() {
        let info = FollowUp::info();
        assert_eq!(info.metrics, [HAPPINESS, LOST_TIME]);
        assert!(info.needs_rows);
        assert!(serde_json::from_str::<Value>(&info.parameters_schema).is_ok());
        let err = FollowUp::score(&xla_sdk::testkit::score_input("", vec![]), None).unwrap_err();
        assert!(err.to_string().contains("needs_rows"), "{err}");
    }
}
