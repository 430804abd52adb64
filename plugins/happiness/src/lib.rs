//! `happiness`: the HappySignals-style happiness of a 0-10 rating metric per
//! group over the scoring window.
//!
//! Happiness is the share of ratings 9-10 minus the share of ratings 0-6, in
//! percent: from -100 to +100 (76 % positive and 24 % negative give +52).
//! Beside it the scorer returns each band's share, so a report can show why
//! a score moved.
//!
//! `sdk/python/examples/happiness` is its Python twin (`happiness-py`): the
//! same parameters, the same results bit for bit, the same error messages.
//! Change both together; `tests/all/python.rs` compares them.

use serde::{Deserialize, Serialize};
use xla_sdk::{Aggregate, PluginError, RowReader, Score, ScoreInput, Scorer, ScorerInfo};

/// The metric scored when the parameters name none.
pub const DEFAULT_METRIC: &str = "happiness_rating";

/// Slots of a 0-10 rating histogram: one per score 0..=10.
const HISTOGRAM_SLOTS: usize = 11;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Parameters {
    #[serde(default = "default_metric")]
    metric: String,
    #[serde(default = "one")]
    min_sample: u64,
}

impl Default for Parameters {
    fn default() -> Self {
        Parameters {
            metric: default_metric(),
            min_sample: one(),
        }
    }
}

fn default_metric() -> String {
    DEFAULT_METRIC.into()
}

fn one() -> u64 {
    1
}

/// Responses per band of a 0-10 rating: negative 0-6, neutral 7-8, positive 9-10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Bands {
    /// Ratings 9 and 10.
    pub positive: u64,
    /// Ratings 7 and 8.
    pub neutral: u64,
    /// Ratings 0 to 6.
    pub negative: u64,
}

/// Why a histogram cannot be read as bands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistogramError {
    /// It has this many counts instead of 11.
    Slots(usize),
    /// Its counts add up past `u64::MAX`.
    Overflow,
}

impl Bands {
    /// Counts the bands of an 11-count histogram (scores 0..=10).
    pub fn from_histogram(histogram: &[u64]) -> Result<Bands, HistogramError> {
        if histogram.len() != HISTOGRAM_SLOTS {
            return Err(HistogramError::Slots(histogram.len()));
        }
        // Summed wide, so that the total fits whenever the check below passes.
        let sum = |slots: &[u64]| slots.iter().map(|&c| u128::from(c)).sum::<u128>();
        let (negative, neutral, positive) = (sum(&histogram[..=6]), sum(&histogram[7..=8]), sum(&histogram[9..]));
        u64::try_from(negative + neutral + positive).map_err(|_| HistogramError::Overflow)?;
        // Each band is at most the total, which fits.
        let narrow = |n: u128| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(Bands {
            positive: narrow(positive),
            neutral: narrow(neutral),
            negative: narrow(negative),
        })
    }

    /// Number of responses.
    pub fn total(&self) -> u64 {
        self.positive.saturating_add(self.neutral).saturating_add(self.negative)
    }

    /// % of 9-10 minus % of 0-6, from -100 to +100; `None` without responses.
    ///
    /// Not rounded. The Python twin computes the same IEEE operations in the
    /// same order, so both give the same bits.
    pub fn happiness(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| 100.0 * (self.positive as f64 - self.negative as f64) / total as f64)
    }

    /// `count` as a percentage of all responses; `None` without responses.
    pub fn share(&self, count: u64) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| 100.0 * count as f64 / total as f64)
    }
}

struct Happiness;

impl Scorer for Happiness {
    fn info() -> ScorerInfo {
        ScorerInfo {
            name: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: env!("CARGO_PKG_DESCRIPTION").into(),
            parameters_schema: include_str!("../parameters.schema.json").into(),
            metrics: vec![DEFAULT_METRIC.into()],
            needs_rows: false,
        }
    }

    fn score(input: &ScoreInput, _rows: Option<&mut RowReader>) -> Result<Vec<Score>, PluginError> {
        let parameters = parameters(&input.parameters)?;
        let mut scores = Vec::new();
        for aggregate in input.aggregates.iter().filter(|a| a.metric == parameters.metric) {
            let bands = bands(aggregate)?;
            if bands.total() < parameters.min_sample {
                continue;
            }
            // An empty group has no happiness, whatever `min_sample` says.
            scores.extend(scores_of(aggregate, &bands).unwrap_or_default());
        }
        Ok(scores)
    }
}

/// The parameters; blank means every default. Messages leave out serde's
/// "at line 1 column N": parameters are one short line, and the Python twin
/// can then say exactly the same.
fn parameters(json: &str) -> Result<Parameters, PluginError> {
    if json.trim().is_empty() {
        return Ok(Parameters::default());
    }
    let config = |message: String| PluginError::Config(without_position(&message).to_string());
    // Checked as a value first: serde would also take an array for a struct,
    // and text after the object.
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| config(format!("config: {e}")))?;
    if !value.is_object() {
        return Err(config(
            r#"config: expected a JSON object, e.g. {"metric":"happiness_rating","min_sample":5}"#.into(),
        ));
    }
    let parameters = xla_sdk::parse_config::<Parameters>(json).map_err(|e| match e {
        PluginError::Config(message) => config(message),
        other => other,
    })?;
    if parameters.metric.is_empty() {
        return Err(config(
            "config field `metric`: must name a 0-10 rating metric, e.g. `happiness_rating`".into(),
        ));
    }
    Ok(parameters)
}

/// `message` without a trailing " at line L column C".
fn without_position(message: &str) -> &str {
    let Some((head, position)) = message.rsplit_once(" at line ") else {
        return message;
    };
    let mut words = position.split(' ');
    let is_position = matches!(
        (words.next(), words.next(), words.next(), words.next()),
        (Some(line), Some("column"), Some(column), None)
            if line.bytes().all(|b| b.is_ascii_digit()) && column.bytes().all(|b| b.is_ascii_digit())
    );
    if is_position { head } else { message }
}

/// The bands of an aggregate, or a `bad-data` error naming its metric and group.
fn bands(aggregate: &Aggregate) -> Result<Bands, PluginError> {
    let whose = || match &aggregate.group {
        Some(group) => format!("aggregate of `{}` for group `{group}`", aggregate.metric),
        None => format!("aggregate of `{}` for the whole window", aggregate.metric),
    };
    let Some(histogram) = &aggregate.histogram else {
        return Err(PluginError::BadData(format!(
            "{} has no histogram; happiness needs the 11 counts (scores 0-10) of a 0-10 rating metric",
            whose()
        )));
    };
    Bands::from_histogram(histogram).map_err(|e| {
        PluginError::BadData(match e {
            HistogramError::Slots(n) => format!("{} has a histogram of {n} counts; expected 11 (scores 0-10)", whose()),
            HistogramError::Overflow => format!("{} has histogram counts that add up past 2^64", whose()),
        })
    })
}

/// `happiness` (with the band counts as detail) and the three shares; `None`
/// without responses.
fn scores_of(aggregate: &Aggregate, bands: &Bands) -> Option<Vec<Score>> {
    let score = |name: &str, value: f64, detail: Option<String>| Score {
        name: name.into(),
        group: aggregate.group.clone(),
        value,
        sample_size: bands.total(),
        detail,
    };
    // Serialising three integers cannot fail.
    let detail = serde_json::to_string(bands).ok();
    Some(vec![
        score("happiness", bands.happiness()?, detail),
        score("positive_share", bands.share(bands.positive)?, None),
        score("neutral_share", bands.share(bands.neutral)?, None),
        score("negative_share", bands.share(bands.negative)?, None),
    ])
}

xla_sdk::export_scorer!(Happiness);

#[cfg(test)]
mod tests {
    use super::*;
    use xla_sdk::Layer;

    fn histogram(counts: &[(usize, u64)]) -> Vec<u64> {
        let mut histogram = vec![0; HISTOGRAM_SLOTS];
        for &(score, count) in counts {
            histogram[score] = count;
        }
        histogram
    }

    fn happiness(counts: &[(usize, u64)]) -> Option<f64> {
        Bands::from_histogram(&histogram(counts))
            .expect("11 counts")
            .happiness()
    }

    #[test]
    fn seventy_six_positive_and_twenty_four_negative_give_plus_52() {
        assert_eq!(happiness(&[(10, 40), (9, 36), (3, 20), (0, 4)]), Some(52.0));
    }

    #[test]
    fn only_neutral_ratings_give_zero() {
        assert_eq!(happiness(&[(7, 12), (8, 30)]), Some(0.0));
    }

    #[test]
    fn the_bounds_are_minus_and_plus_100() {
        assert_eq!(happiness(&[(0, 3), (6, 2)]), Some(-100.0));
        assert_eq!(happiness(&[(9, 1)]), Some(100.0));
    }

    #[test]
    fn no_responses_give_no_score() {
        assert_eq!(happiness(&[]), None);
    }

    #[test]
    fn a_histogram_without_11_counts_is_refused() {
        assert_eq!(Bands::from_histogram(&[1, 2, 3]), Err(HistogramError::Slots(3)));
        assert_eq!(Bands::from_histogram(&[0; 12]), Err(HistogramError::Slots(12)));
        let mut huge = histogram(&[(10, u64::MAX)]);
        huge[0] = 1;
        assert_eq!(Bands::from_histogram(&huge), Err(HistogramError::Overflow));
    }

    fn aggregate(group: Option<&str>, histogram: Option<Vec<u64>>) -> Aggregate {
        let count = histogram.as_ref().map_or(0, |h| h.iter().sum());
        Aggregate {
            metric: DEFAULT_METRIC.into(),
            layer: Layer::Experience,
            group: group.map(str::to_string),
            count,
            sum: 0.0,
            min: 0.0,
            max: 10.0,
            histogram,
        }
    }

    fn input(parameters: &str, aggregates: Vec<Aggregate>) -> ScoreInput {
        ScoreInput {
            tenant: "acme".into(),
            window_start: 0,
            window_end: 1,
            group_by: Some("service".into()),
            parameters: parameters.into(),
            aggregates,
        }
    }

    fn score(parameters: &str, aggregates: Vec<Aggregate>) -> Result<Vec<Score>, PluginError> {
        Happiness::score(&input(parameters, aggregates), None)
    }

    #[test]
    fn each_group_gets_happiness_and_three_shares() {
        let scores = score(
            "",
            vec![aggregate(Some("Email"), Some(histogram(&[(10, 76), (2, 24)])))],
        )
        .expect("scores");
        let named: Vec<(&str, f64)> = scores.iter().map(|s| (s.name.as_str(), s.value)).collect();
        assert_eq!(
            named,
            [
                ("happiness", 52.0),
                ("positive_share", 76.0),
                ("neutral_share", 0.0),
                ("negative_share", 24.0)
            ]
        );
        assert!(
            scores
                .iter()
                .all(|s| s.sample_size == 100 && s.group.as_deref() == Some("Email"))
        );
        assert_eq!(
            scores[0].detail.as_deref(),
            Some(r#"{"positive":76,"neutral":0,"negative":24}"#)
        );
    }

    #[test]
    fn groups_below_min_sample_and_empty_groups_are_skipped() {
        let aggregates = vec![
            aggregate(Some("Email"), Some(histogram(&[(9, 5)]))),
            aggregate(Some("VPN"), Some(histogram(&[(9, 4)]))),
            aggregate(Some("Empty"), Some(histogram(&[]))),
        ];
        let scores = score(r#"{"min_sample":5}"#, aggregates.clone()).expect("scores");
        assert!(scores.iter().all(|s| s.group.as_deref() == Some("Email")), "{scores:?}");
        let scores = score(r#"{"min_sample":0}"#, aggregates).expect("scores");
        assert!(scores.iter().all(|s| s.group.as_deref() != Some("Empty")), "{scores:?}");
    }

    #[test]
    fn other_metrics_are_ignored_and_the_metric_is_a_parameter() {
        let mut csat = aggregate(None, Some(histogram(&[(8, 1)])));
        csat.metric = "csat_rating".into();
        let scores = score("{}", vec![csat.clone()]).expect("scores");
        assert!(scores.is_empty());
        let scores = score(r#"{"metric":"csat_rating"}"#, vec![csat]).expect("scores");
        assert_eq!(scores.len(), 4);
        assert_eq!(scores[0].group, None);
    }

    #[test]
    fn a_missing_or_short_histogram_is_bad_data_naming_metric_and_group() {
        let error = score("", vec![aggregate(Some("Email"), None)]).unwrap_err();
        assert_eq!(
            error,
            PluginError::BadData(
                "aggregate of `happiness_rating` for group `Email` has no histogram; happiness needs the 11 \
                 counts (scores 0-10) of a 0-10 rating metric"
                    .into()
            )
        );
        let error = score("", vec![aggregate(None, Some(vec![1, 2, 3]))]).unwrap_err();
        assert_eq!(
            error,
            PluginError::BadData(
                "aggregate of `happiness_rating` for the whole window has a histogram of 3 counts; expected 11 \
                 (scores 0-10)"
                    .into()
            )
        );
    }

    #[test]
    fn bad_parameters_are_config_errors_naming_the_field() {
        for (parameters, field) in [
            (r#"{"min_sample":-1}"#, "min_sample"),
            (r#"{"min_sample":"5"}"#, "min_sample"),
            (r#"{"metric":""}"#, "metric"),
            (r#"{"metric":5}"#, "metric"),
        ] {
            let Err(PluginError::Config(message)) = score(parameters, Vec::new()) else {
                panic!("{parameters} must be refused");
            };
            assert!(message.contains(&format!("`{field}`")), "{parameters}: {message}");
        }
        let Err(PluginError::Config(message)) = score(r#"{"min_samples":5}"#, Vec::new()) else {
            panic!("an unknown field must be refused");
        };
        assert!(message.contains("unknown field `min_samples`"), "{message}");
    }

    #[test]
    fn parameter_messages_leave_out_the_position() {
        let Err(PluginError::Config(message)) = score(r#"{"min_sample":-1}"#, Vec::new()) else {
            panic!("a negative min_sample must be refused");
        };
        assert_eq!(
            message,
            "config field `min_sample`: invalid value: integer `-1`, expected u64"
        );
        for not_an_object in ["[]", "5", "{} x"] {
            assert!(
                matches!(score(not_an_object, Vec::new()), Err(PluginError::Config(_))),
                "{not_an_object}"
            );
        }
        assert_eq!(without_position("a at line 1 column 16"), "a");
        assert_eq!(without_position("a at line one"), "a at line one");
    }
}
