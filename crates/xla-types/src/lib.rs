//! The Rust types of the XLA Host plugin contract (`wit/since_v0.2.0/plugin.wit`), shared
//! by the host and the SDK so that both sides speak one vocabulary and
//! neither exposes `bindgen!` output: observations, plugin errors, what
//! plugins declare, and what scorers read and return. [`untrusted`] encodes
//! the text those types carry for the terminal and JSON it lands in.
#![deny(missing_docs)]

pub mod changes;
mod name;
pub mod untrusted;

pub use changes::{Changes, Gap, MetricValue, Record, Retraction, Span};
pub use name::Name;

/// Sets `key` to `value` in `dimensions`: an empty value is skipped, a
/// repeated key replaces the earlier value.
fn set_dimension<S: AsRef<str>>(dimensions: &mut Vec<(S, S)>, key: S, value: S) {
    if value.as_ref().is_empty() {
        return;
    }
    match dimensions.iter_mut().find(|(k, _)| k.as_ref() == key.as_ref()) {
        Some(slot) => slot.1 = value,
        None => dimensions.push((key, value)),
    }
}

use std::fmt;

/// Which of the three kinds of XLA data an observation belongs to.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// X: what the employee experienced.
    Experience,
    /// O: what the IT process did.
    Operational,
    /// T: what the technology did.
    Technical,
}

/// One measured value about one subject at one moment.
///
/// Build one with [`Observation::new`] and [`Observation::dim`]:
///
/// ```
/// use xla_types::{Layer, Observation};
/// let o = Observation::new("a1b2", "reassignment_count", Layer::Operational, 2.0, 1_760_000_000_000)
///     .dim("ticket", "INC0012345")
///     .dim("assignment_group", "Service Desk");
/// assert_eq!(o.dimension("ticket"), Some("INC0012345"));
/// ```
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Observation {
    /// Stable identifier of the source record.
    pub id: String,
    /// Metric name from the documented vocabulary.
    pub metric: String,
    /// The layer of the metric.
    pub layer: Layer,
    /// The value in the metric's unit; booleans are 0 or 1.
    pub value: f64,
    /// Unix milliseconds, UTC.
    pub at: i64,
    /// Dimension key/value pairs.
    pub dimensions: Vec<(String, String)>,
}

/// Earliest time an observation may carry: 1900-01-01T00:00:00Z, in unix ms.
pub const EARLIEST_AT: i64 = -2_208_988_800_000;
/// Latest time an observation may carry: 9999-12-31T23:59:59.999Z, in unix ms.
pub const LATEST_AT: i64 = 253_402_300_799_999;

impl Observation {
    /// Checks what every path that takes observations in (sync, import,
    /// `plugin run`, `plugin parse`, the store) requires; the error says
    /// which rule the observation breaks.
    ///
    /// Rules: an id of 1 to 512 bytes, a metric name of 1 to 128, a finite
    /// value, a time between 1900 and 9999 (outside it, a time is a unit
    /// mistake, seconds for milliseconds, or garbage), dimension keys of at
    /// most 128 bytes and values of at most 1024, no key twice.
    pub fn check(&self) -> Result<(), &'static str> {
        check_id(&self.id)?;
        check_metric(&self.metric)?;
        check_value(self.value)?;
        check_at(self.at)?;
        check_dimensions(&self.dimensions)
    }

    /// A new observation with no dimensions.
    pub fn new(id: impl Into<String>, metric: impl Into<String>, layer: Layer, value: f64, at_millis: i64) -> Self {
        Observation {
            id: id.into(),
            metric: metric.into(),
            layer,
            value,
            at: at_millis,
            dimensions: Vec::new(),
        }
    }

    /// Adds a dimension; an empty value is skipped, a repeated key replaces the earlier value.
    pub fn dim(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        set_dimension(&mut self.dimensions, key.into(), value.into());
        self
    }

    /// The value of a dimension, if set.
    pub fn dimension(&self, key: &str) -> Option<&str> {
        self.dimensions.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() || id.len() > 512 {
        return Err("the id must be 1 to 512 bytes");
    }
    Ok(())
}

fn check_metric(metric: &str) -> Result<(), &'static str> {
    if metric.is_empty() || metric.len() > 128 {
        return Err("the metric name must be 1 to 128 bytes");
    }
    Ok(())
}

fn check_value(value: f64) -> Result<(), &'static str> {
    if !value.is_finite() {
        return Err("the value is not a finite number");
    }
    Ok(())
}

fn check_at(at: i64) -> Result<(), &'static str> {
    if !(EARLIEST_AT..=LATEST_AT).contains(&at) {
        return Err("the time is not between 1900 and 9999 (unix milliseconds expected)");
    }
    Ok(())
}

fn check_dimensions<S: AsRef<str>>(dimensions: &[(S, S)]) -> Result<(), &'static str> {
    if dimensions
        .iter()
        .any(|(k, v)| k.as_ref().len() > 128 || v.as_ref().len() > 1024)
    {
        return Err("a dimension key is over 128 bytes or a value over 1024");
    }
    if has_twice(dimensions.iter().map(|(k, _)| k.as_ref())) {
        return Err("a dimension key appears twice");
    }
    Ok(())
}

/// Whether any name appears twice.
fn has_twice<'a>(names: impl Iterator<Item = &'a str> + Clone) -> bool {
    // A record's handful of names: compared pairwise, without allocating.
    if names.clone().nth(16).is_none() {
        let mut rest = names;
        while let Some(name) = rest.next() {
            if rest.clone().any(|other| other == name) {
                return true;
            }
        }
        return false;
    }
    let mut names: Vec<&str> = names.collect();
    names.sort_unstable();
    names.windows(2).any(|w| w[0] == w[1])
}

/// Why a plugin call failed; the host retries, waits or stops depending on the case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum PluginError {
    /// The configuration is wrong: say which field and why.
    Config(String),
    /// The source refused the credentials.
    Auth(String),
    /// The source asked to wait this many seconds.
    RateLimited(u32),
    /// A failure that may pass on retry.
    Transient(String),
    /// A failure that will not pass on retry.
    Permanent(String),
    /// The source sent data the plugin cannot read: name the record.
    BadData(String),
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PluginError::Config(m) => write!(f, "configuration error: {m}"),
            PluginError::Auth(m) => write!(f, "authentication failed: {m}"),
            PluginError::RateLimited(s) => write!(f, "rate limited: retry after {s} s"),
            PluginError::Transient(m) => write!(f, "transient failure: {m}"),
            PluginError::Permanent(m) => write!(f, "permanent failure: {m}"),
            PluginError::BadData(m) => write!(f, "bad data: {m}"),
        }
    }
}

impl std::error::Error for PluginError {}

impl PluginError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PluginError::RateLimited(_) | PluginError::Transient(_))
    }
}

/// A metric a plugin emits or reads.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MetricInfo {
    /// Name from the vocabulary.
    pub name: String,
    /// Layer of the metric.
    pub layer: Layer,
    /// Unit of the value.
    pub unit: String,
    /// What the number means.
    pub description: String,
}

impl MetricInfo {
    /// Describes one metric.
    pub fn new(name: &str, layer: Layer, unit: &str, description: &str) -> Self {
        MetricInfo {
            name: name.into(),
            layer,
            unit: unit.into(),
            description: description.into(),
        }
    }
}

/// What a connector says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ConnectorInfo {
    /// Plugin name, as in `plugin.toml`.
    pub name: String,
    /// Plugin version, as in `plugin.toml`.
    pub version: String,
    /// What source this reads and how.
    pub description: String,
    /// JSON Schema of the config.
    pub config_schema: String,
    /// Metrics this connector may emit.
    pub metrics: Vec<MetricInfo>,
    /// Origins it needs; `*` for whatever the operator grants.
    pub hosts: Vec<String>,
    /// Media types `parse` accepts.
    pub media_types: Vec<String>,
}

/// One step of a pull.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Batch {
    /// What this step read.
    pub changes: Changes,
    /// Where the next pull continues.
    pub cursor: Option<String>,
    /// Whether more data follows right now.
    pub more: bool,
}

/// What a scorer says about itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScorerInfo {
    /// Plugin name, as in `plugin.toml`.
    pub name: String,
    /// Plugin version, as in `plugin.toml`.
    pub version: String,
    /// What the score means and how it is computed.
    pub description: String,
    /// JSON Schema of the parameters.
    pub parameters_schema: String,
    /// Metrics whose aggregates the scorer reads.
    pub metrics: Vec<String>,
    /// Whether the scorer reads per-subject rows.
    pub needs_rows: bool,
}

/// Rollup of one metric for one group over the scoring window.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Aggregate {
    /// Metric name.
    pub metric: String,
    /// Layer of the metric.
    pub layer: Layer,
    /// Group-by value; `None` for the whole window.
    pub group: Option<String>,
    /// Number of observations.
    pub count: u64,
    /// Sum of values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// For 0-10 ratings: counts of each score 0..=10.
    pub histogram: Option<Vec<u64>>,
}

/// Everything one scoring call sees.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreInput {
    /// Tenant the data belongs to.
    pub tenant: String,
    /// Window start, unix ms, inclusive.
    pub window_start: i64,
    /// Window end, unix ms, exclusive.
    pub window_end: i64,
    /// Group-by dimension, if any.
    pub group_by: Option<String>,
    /// Parameters (JSON) from the XLA definition.
    pub parameters: String,
    /// Aggregates of the declared metrics.
    pub aggregates: Vec<Aggregate>,
}

/// One result of a scorer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Score {
    /// What is scored.
    pub name: String,
    /// Group-by value; `None` for the whole window.
    pub group: Option<String>,
    /// The score.
    pub value: f64,
    /// Observations or subjects behind it.
    pub sample_size: u64,
    /// Optional explanation (JSON).
    pub detail: Option<String>,
}

/// One subject (e.g. a ticket) with its values across sources.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SubjectRow {
    /// The join key.
    pub key: String,
    /// Dimensions of the subject.
    pub dimensions: Vec<(String, String)>,
    /// Metric values.
    pub values: Vec<(String, f64)>,
}

/// Now, in unix milliseconds (UTC): the clock the host stamps runs, tokens
/// and commits with. A clock before 1970 reads as 0.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Whether `value` is a plain name: 1 to 64 of `[A-Za-z0-9._-]`, so it can
/// stand as it is in a URL path segment, a query value and a Prometheus
/// label. Instance names, tenants and dimension names are plain names.
pub fn is_plain_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
