//! Host-side Rust types of the plugin contract, converted from the
//! generated bindings so that the rest of the host never depends on them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Which of the three kinds of XLA data an observation belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// X: what the employee experienced.
    Experience,
    /// O: what the IT process did.
    Operational,
    /// T: what the technology did.
    Technical,
}

/// One observation as a plugin emitted it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observation {
    /// Stable id of the source record.
    pub id: String,
    /// Metric name.
    pub metric: String,
    /// Layer of the metric.
    pub layer: Layer,
    /// Value in the metric's unit.
    pub value: f64,
    /// Unix milliseconds, UTC.
    pub at: i64,
    /// Dimension key/value pairs.
    pub dimensions: Vec<(String, String)>,
}

/// An error a plugin returned (not a trap).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "detail", rename_all = "kebab-case")]
pub enum PluginError {
    /// The configuration is wrong.
    Config(String),
    /// The source refused the credentials.
    Auth(String),
    /// The source asked to wait this many seconds.
    RateLimited(u32),
    /// A failure that may pass on retry.
    Transient(String),
    /// A failure that will not pass on retry.
    Permanent(String),
    /// The source sent data the plugin cannot read.
    BadData(String),
}

impl PluginError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, PluginError::RateLimited(_) | PluginError::Transient(_))
    }
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

/// A metric a plugin emits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    /// Name from the vocabulary.
    pub name: String,
    /// Layer.
    pub layer: Layer,
    /// Unit of the value.
    pub unit: String,
    /// What it means.
    pub description: String,
}

/// What a connector declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// What it reads.
    pub description: String,
    /// JSON Schema of its config.
    pub config_schema: String,
    /// Metrics it may emit.
    pub metrics: Vec<MetricInfo>,
    /// Origins it needs.
    pub hosts: Vec<String>,
    /// Media types `parse` accepts.
    pub media_types: Vec<String>,
}

/// One step of a pull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// Observations of this step.
    pub observations: Vec<Observation>,
    /// Where to continue.
    pub cursor: Option<String>,
    /// Whether more follows now.
    pub more: bool,
}

/// What a scorer declares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScorerInfo {
    /// Plugin name.
    pub name: String,
    /// Plugin version.
    pub version: String,
    /// What the score means.
    pub description: String,
    /// JSON Schema of its parameters.
    pub parameters_schema: String,
    /// Metrics it reads.
    pub metrics: Vec<String>,
    /// Whether it reads per-subject rows.
    pub needs_rows: bool,
}

/// Rollup of one metric for one group, as a scorer receives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Metric name.
    pub metric: String,
    /// Layer.
    pub layer: Layer,
    /// Group-by value.
    pub group: Option<String>,
    /// Observations.
    pub count: u64,
    /// Sum.
    pub sum: f64,
    /// Minimum.
    pub min: f64,
    /// Maximum.
    pub max: f64,
    /// 0-10 histogram for ratings.
    pub histogram: Option<Vec<u64>>,
}

/// One scoring window for one tenant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreInput {
    /// Tenant.
    pub tenant: String,
    /// Window start, unix ms inclusive.
    pub window_start: i64,
    /// Window end, unix ms exclusive.
    pub window_end: i64,
    /// Group-by dimension.
    pub group_by: Option<String>,
    /// Parameters JSON.
    pub parameters: String,
    /// Aggregates.
    pub aggregates: Vec<Aggregate>,
}

/// One subject (e.g. a ticket) with its values, streamed to scorers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubjectRow {
    /// Join key.
    pub key: String,
    /// Dimensions.
    pub dimensions: Vec<(String, String)>,
    /// Metric values.
    pub values: Vec<(String, f64)>,
}

/// One scorer result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// What is scored.
    pub name: String,
    /// Group-by value.
    pub group: Option<String>,
    /// The score.
    pub value: f64,
    /// Sample size behind it.
    pub sample_size: u64,
    /// Explanation JSON.
    pub detail: Option<String>,
}
