//! XLA definitions: what is measured, by which scorer, against which target.
//!
//! ```toml
//! [[xla]]
//! id = "incident-happiness"
//! name = "Incident happiness"
//! tenant = "acme"
//! metrics = ["happiness_rating"]
//! scorer = "happiness"              # a scorer plugin, by name
//! score = "happiness"               # which of its results is the XLA's value
//! filter = { ticket_type = "incident" }
//! group_by = "service"
//! period = "month"                  # week, month or quarter
//! direction = "higher"              # higher or lower is better
//! targets = [ { from = "2026-01-01", value = 60.0 }, { from = "2026-07-01", value = 65.0 } ]
//! contract = { model = "fixed" }    # fixed, dex (threshold) or continuous
//! penalty = { per_point = 2000.0, cap = 30000.0 }
//! gain_share = { per_point = 1000.0, cap = 20000.0 }
//! ```

use super::period::Period;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One experience level agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XlaDefinition {
    /// Stable id: lower case, digits and `-`.
    pub id: String,
    /// What people call it.
    pub name: String,
    /// The tenant whose data it reads.
    pub tenant: String,
    /// Metrics the scorer gets aggregates (and rows) of.
    pub metrics: Vec<String>,
    /// The scorer plugin's name.
    pub scorer: String,
    /// Name of the scorer result that is the XLA's value; defaults to the
    /// scorer's name.
    #[serde(default)]
    pub score: Option<String>,
    /// Scorer parameters, passed as JSON.
    #[serde(default)]
    pub parameters: Option<toml::Table>,
    /// Only observations with this dimension value (one dimension).
    #[serde(default)]
    pub filter: Option<toml::Table>,
    /// Per-group results by this dimension (a breakdown beside the value).
    #[serde(default)]
    pub group_by: Option<String>,
    /// Period length.
    pub period: Period,
    /// Whether higher or lower values are better.
    #[serde(default)]
    pub direction: Direction,
    /// Targets, each from its effective date.
    #[serde(default)]
    pub targets: Vec<Target>,
    /// How the target is set.
    #[serde(default)]
    pub contract: Contract,
    /// Money owed per point short of target (a service credit), if any.
    #[serde(default)]
    pub penalty: Option<Rate>,
    /// Money earned per point beyond target, if any.
    #[serde(default)]
    pub gain_share: Option<Rate>,
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Higher is better (happiness, DEX, compliance).
    #[default]
    Higher,
    /// Lower is better (lost time, reopen rate).
    Lower,
}

impl Direction {
    /// Whether `value` meets `target`.
    pub fn meets(self, value: f64, target: f64) -> bool {
        match self {
            Direction::Higher => value >= target,
            Direction::Lower => value <= target,
        }
    }

    /// Points by which `value` beats `target` (negative when short).
    pub fn margin(self, value: f64, target: f64) -> f64 {
        match self {
            Direction::Higher => value - target,
            Direction::Lower => target - value,
        }
    }

    /// `value` moved `points` in the better direction.
    pub fn improved(self, value: f64, points: f64) -> f64 {
        match self {
            Direction::Higher => value + points,
            Direction::Lower => value - points,
        }
    }
}

/// A target value from a date on (until the next target's date).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Effective date, `YYYY-MM-DD`: the target applies to periods starting on or after it.
    #[serde(deserialize_with = "date")]
    pub from: NaiveDate,
    /// The target value.
    pub value: f64,
}

/// How the target of a period is set.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase", deny_unknown_fields)]
pub enum Contract {
    /// A fixed experience threshold: the `targets` history.
    #[default]
    Fixed,
    /// A DEX threshold (0-100): the target is the threshold.
    Dex {
        /// DEX score the period must reach.
        threshold: f64,
    },
    /// Continuous improvement: at each review the target becomes the mean
    /// of the `baseline_periods` periods before it, improved by `step`
    /// points, and holds until the next review. Until there is enough
    /// history, the `targets` history applies.
    Continuous {
        /// Periods averaged into the baseline.
        baseline_periods: u32,
        /// Points the target moves beyond the baseline, in the better direction.
        step: f64,
        /// Periods between reviews (3 with monthly periods: quarterly reviews).
        #[serde(default = "one")]
        review_every: u32,
        /// First review period's first day; reviews fall every `review_every` periods after it.
        #[serde(deserialize_with = "date")]
        start: NaiveDate,
    },
}

fn one() -> u32 {
    1
}

/// A date written as a TOML date (`2026-01-01`) or a string (`"2026-01-01"`).
fn date<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<NaiveDate, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Toml(toml::value::Datetime),
        Text(String),
    }
    let text = match Written::deserialize(deserializer)? {
        Written::Toml(datetime) => datetime.to_string(),
        Written::Text(text) => text,
    };
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| serde::de::Error::custom(format!("`{text}` is not a date like 2026-01-01")))
}

/// Money per point, capped per period.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Amount per point of margin.
    pub per_point: f64,
    /// Most per period.
    pub cap: f64,
}

/// A definition that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("XLA `{xla}`: `{field}` {why}")]
pub struct DefinitionError {
    /// The definition's id.
    pub xla: String,
    /// The offending field.
    pub field: &'static str,
    /// What is wrong and what to write instead.
    pub why: String,
}

impl XlaDefinition {
    /// Checks everything that does not need the store or the plugins.
    pub fn validate(&self) -> Result<(), DefinitionError> {
        let bad = |field: &'static str, why: String| DefinitionError {
            xla: self.id.clone(),
            field,
            why,
        };
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.id) {
            return Err(bad(
                "id",
                "must be lower case letters, digits, `-` or `_`, e.g. `incident-happiness`".into(),
            ));
        }
        if self.tenant.trim().is_empty() {
            return Err(bad(
                "tenant",
                "is empty; name the tenant whose data the XLA reads".into(),
            ));
        }
        if self.metrics.is_empty() || self.metrics.iter().any(|m| m.trim().is_empty()) {
            return Err(bad(
                "metrics",
                "must list at least one metric, e.g. [\"happiness_rating\"]".into(),
            ));
        }
        if self.scorer.trim().is_empty() {
            return Err(bad(
                "scorer",
                "is empty; name a scorer plugin, e.g. \"happiness\"".into(),
            ));
        }
        if let Some(filter) = &self.filter {
            if filter.len() != 1 {
                return Err(bad(
                    "filter",
                    format!(
                        "names {} dimensions; give exactly one, e.g. {{ ticket_type = \"incident\" }}",
                        filter.len()
                    ),
                ));
            }
            if filter.values().any(|v| !v.is_str()) {
                return Err(bad(
                    "filter",
                    "values must be strings, e.g. { ticket_type = \"incident\" }".into(),
                ));
            }
        }
        let mut dates: Vec<NaiveDate> = self.targets.iter().map(|t| t.from).collect();
        dates.sort();
        if dates.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("targets", "has two targets from the same date; keep one".into()));
        }
        if self.targets.iter().any(|t| !t.value.is_finite()) {
            return Err(bad("targets", "holds a value that is not a number".into()));
        }
        match self.contract {
            Contract::Fixed if self.targets.is_empty() => Err(bad(
                "targets",
                "is empty; a fixed contract needs at least one, e.g. [{ from = \"2026-01-01\", value = 60.0 }]".into(),
            )),
            Contract::Dex { threshold } if !(0.0..=100.0).contains(&threshold) => Err(bad(
                "contract",
                format!("has DEX threshold {threshold}; a DEX score runs from 0 to 100 (70 is common)"),
            )),
            Contract::Continuous {
                baseline_periods,
                review_every,
                step,
                ..
            } if baseline_periods == 0 || review_every == 0 || !step.is_finite() => Err(bad(
                "contract",
                "needs baseline_periods and review_every of at least 1 and a numeric step".into(),
            )),
            _ => Ok(()),
        }?;
        for (field, rate) in [("penalty", self.penalty), ("gain_share", self.gain_share)] {
            if let Some(rate) = rate
                && !(rate.per_point.is_finite() && rate.per_point >= 0.0 && rate.cap.is_finite() && rate.cap >= 0.0)
            {
                return Err(bad(field, "needs per_point and cap of zero or more".into()));
            }
        }
        Ok(())
    }

    /// The name of the scorer result that is the XLA's value.
    pub fn score_name(&self) -> &str {
        self.score.as_deref().unwrap_or(&self.scorer)
    }

    /// The filter as (dimension, value).
    pub fn filter_pair(&self) -> Option<(String, String)> {
        let (key, value) = self.filter.as_ref()?.iter().next()?;
        Some((key.clone(), value.as_str()?.to_string()))
    }

    /// The parameters as a JSON document (`{}` when none).
    pub fn parameters_json(&self) -> String {
        self.parameters
            .as_ref()
            .and_then(|p| serde_json::to_string(p).ok())
            .unwrap_or_else(|| "{}".into())
    }

    /// The `targets` entry in force for a period starting on `day`.
    pub fn scheduled_target(&self, day: NaiveDate) -> Option<f64> {
        self.targets
            .iter()
            .filter(|t| t.from <= day)
            .max_by_key(|t| t.from)
            .map(|t| t.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> XlaDefinition {
        toml::from_str(text).expect("parses")
    }

    const BASE: &str = r#"
        id = "incident-happiness"
        name = "Incident happiness"
        tenant = "acme"
        metrics = ["happiness_rating"]
        scorer = "happiness"
        period = "month"
    "#;

    #[test]
    fn a_full_definition_reads_and_validates() {
        let xla = parse(&format!(
            "{BASE}\nfilter = {{ ticket_type = \"incident\" }}\ngroup_by = \"service\"\ntargets = [{{ from = 2026-01-01, value = 60.0 }}, {{ from = 2026-07-01, value = 65.0 }}]\npenalty = {{ per_point = 2000.0, cap = 30000.0 }}"
        ));
        assert_eq!(xla.validate(), Ok(()));
        assert_eq!(xla.filter_pair(), Some(("ticket_type".into(), "incident".into())));
        assert_eq!(xla.score_name(), "happiness");
        let day = |m| NaiveDate::from_ymd_opt(2026, m, 1).expect("date");
        assert_eq!(xla.scheduled_target(day(3)), Some(60.0));
        assert_eq!(xla.scheduled_target(day(7)), Some(65.0));
        assert_eq!(
            xla.scheduled_target(NaiveDate::from_ymd_opt(2025, 12, 1).expect("date")),
            None
        );
    }

    #[test]
    fn mistakes_name_the_field_and_the_fix() {
        let cases = [
            ("", "targets"),
            (
                "targets = [{ from = 2026-01-01, value = 1.0 }]\nfilter = { a = \"x\", b = \"y\" }",
                "filter",
            ),
            ("contract = { model = \"dex\", threshold = 170.0 }", "contract"),
            (
                "targets = [{ from = 2026-01-01, value = 1.0 }, { from = 2026-01-01, value = 2.0 }]",
                "targets",
            ),
            (
                "contract = { model = \"continuous\", baseline_periods = 0, step = 1.0, start = 2026-01-01 }",
                "contract",
            ),
        ];
        for (extra, field) in cases {
            let error = parse(&format!("{BASE}\n{extra}")).validate().expect_err(extra);
            assert_eq!(error.field, field, "{extra}");
            assert!(error.to_string().contains("incident-happiness"), "{error}");
        }
    }
}
