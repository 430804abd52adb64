//! What the store keeps: observations with their provenance.

use serde::{Deserialize, Serialize};
use xla_types::{Layer, Observation};

/// Where a batch of observations came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// Connector instance.
    pub connector: String,
    /// Plugin name.
    pub plugin: String,
    /// Plugin version.
    pub version: String,
    /// sha256 of the plugin's component.
    pub sha256: String,
    /// The sync run that brought it.
    pub sync_run: u64,
}

/// An observation as stored: the plugin's observation, its tenant and
/// source, and its provenance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredObservation {
    /// Tenant.
    pub tenant: String,
    /// Source: the connector instance that emitted it.
    pub source: String,
    /// The observation, dimensions sorted by key.
    pub observation: Observation,
    /// Where it came from.
    pub provenance: Provenance,
}

/// Whether a metric is a 0-10 rating, which gets a histogram in its rollups.
pub fn is_rating(metric: &str) -> bool {
    metric.ends_with("_rating")
}

pub(crate) fn layer_code(layer: Layer) -> u8 {
    match layer {
        Layer::Experience => 0,
        Layer::Operational => 1,
        Layer::Technical => 2,
    }
}

pub(crate) fn layer_from_code(code: u8) -> Layer {
    match code {
        0 => Layer::Experience,
        1 => Layer::Operational,
        _ => Layer::Technical,
    }
}
